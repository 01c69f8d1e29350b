#!/usr/bin/env bash
# replication_silent_peer.sh - a peer that stops answering while TCP stays up is given up in time.
# timeout: 240
#
# The standby b is frozen with SIGSTOP while a verified writer writes through the primary a:
# b's TCP connection stays open (the kernel still accepts bytes), but b answers nothing. With
# keepalive {ping_interval: 200ms, timeout: 1s}, a must declare b lost after about a second,
# complete the writes that waited for b (recording them for resync), and go on serving. After
# SIGCONT, b reconnects by itself, resyncs, and every acknowledged write is on both disks.
# The same then happens with the roles the other way: the frozen node is the primary, and the
# standby notices (its status and log say so) without any administrator.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/lib_cluster.sh"
it_init replication_silent_peer
cluster_init 3490 || exit 2
cluster_config a
cluster_config b
JOURNAL=$IT_TMP/journal
node_start a && node_start b || exit 2
check "the cluster is in sync" wait_in_sync 60

writer_start --portal "$(portal a)" --target "$C_IQN" --offset 0 --size 64M --depth 8 --seconds 120 \
  --failover-timeout 20 --io-timeout 10
check "writes are acknowledged" wait_for_acks 2000 30
kill -STOP "${NODE_PID[b]}"
stopped_at=$(date +%s.%N) at_stop=$(acks)
log "b frozen (SIGSTOP) after $at_stop acknowledged writes"
check "a gives b up within 3 s of the freeze" wait_for a "p['connection']" Connecting 3
given_up=$(date +%s.%N)
echo "  a gave b up $(python3 -c "print(f'{$given_up - $stopped_at:.1f}')") s after the freeze (keep-alive timeout 1 s; status polled every 0.2 s)"
check "a's log names the keep-alive timeout" node_log_has a "the peer sent nothing for [0-9]+ ms \(keep-alive timeout\)"
check "writes are acknowledged again without b (2000 more)" wait_for_acks $((at_stop + 2000)) 10
check "a records what b misses" [ "$(status_field a "v['out_of_sync_bytes']")" -gt 0 ]
kill -CONT "${NODE_PID[b]}"
check "after SIGCONT, b reconnects and resyncs by itself; in sync within 30 s" wait_in_sync 30
check "the writer stops cleanly" writer_stop
summary=$(cat "$WRITER_OUT"); echo "  $summary"
# While b resyncs its group is unavailable, and a announces each change of b's ALUA state with
# the unit attention 2A/06 (SPC-4 5.15.2.2): the writer retries the write that carried it, as
# every initiator does. Any other unacknowledged write is a failed write.
failed=$(($(field unacked "$summary") - $(field retried "$summary")))
check "the initiator saw no failover and no failed write (retried after a unit attention: $(field retried "$summary"))" \
  [ "$(field failovers "$summary")" = 0 -a "$failed" = 0 ]
verify_through a "after the freeze"

echo "--- the primary freezes"
kill -STOP "${NODE_PID[a]}"
check "b notices that the primary is silent within 3 s" wait_for b "p['connection']" Connecting 3
check "b's log names the keep-alive timeout" node_log_has b "the peer sent nothing for [0-9]+ ms \(keep-alive timeout\)"
check "b stays secondary: it never promotes itself" [ "$(status_field b "v['role']")" = secondary ]
kill -CONT "${NODE_PID[a]}"
check "after SIGCONT the two are in sync again, a primary" wait_in_sync 30
offline_checks
it_finish
