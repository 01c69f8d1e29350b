#!/usr/bin/env bash
# replication_standby_power_loss.sh - the standby loses power; no acknowledged write is lost.
# timeout: 300
#
# The standby b runs under test/tools/power_loss_preload.c: its writes to its backing file are
# held in memory, as a disk's volatile write cache holds them, until b flushes; SIGUSR2 is the
# power loss (what is held never reaches the file), SIGKILL follows. A verified writer writes
# random 4 KiB blocks through the primary a (protocol C: each is acknowledged once both nodes
# wrote it, not once both flushed it):
#  1. b loses power while writes go on; a must mark what b acknowledged but had not confirmed
#     durable out of sync, keep serving, and resync it when b returns;
#  2. then a is killed and b promoted by hand: every write the writer was ever told is done must
#     read back through b;
#  3. a returns as secondary and resyncs from b; with both stopped, both backing files hold every
#     acknowledged write and their data areas are bit-identical.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/lib_cluster.sh"
it_init replication_standby_power_loss
PRELOAD=${POWER_LOSS_PRELOAD:-$(dirname "$(dirname "$FREEVSA")")/test/tools/libpower_loss_preload.so}
if [ ! -f "$PRELOAD" ]; then
  echo "power_loss_preload not found at $PRELOAD (build the test/tools target power_loss_preload)" >&2
  exit 2
fi
cluster_init 4470 || exit 2
cluster_config a SIZE=64M
cluster_config b SIZE=64M
JOURNAL=$IT_TMP/journal
# b's freevsa, with its disk's write cache in this process's memory.
B_FREEVSA=$IT_TMP/freevsa-volatile-disk
cat >"$B_FREEVSA" <<EOF
#!/bin/sh
POWER_LOSS_FILES=$(backing_file b) LD_PRELOAD=$PRELOAD exec $FREEVSA "\$@"
EOF
chmod +x "$B_FREEVSA"
start_b() { FREEVSA=$B_FREEVSA node_start b; }
WRITE=(--target "$C_IQN" --offset 0 --size 48M --depth 8 --seconds 60 --failover-timeout 30 --io-timeout 10)

node_start a || exit 2
start_b || exit 2
check "the cluster is in sync" wait_in_sync 60
check "b's backing file writes are held until flushed" wait_log b "power_loss_preload: writes to .* are held" 5

echo "--- 1: the standby loses power while writes go on"
writer_start --portal "$(portal a)" "${WRITE[@]}"
check "the writer gets 3000 writes acknowledged through a" wait_for_acks 3000 40
kill -USR2 "${NODE_PID[b]}"
sleep 0.2
node_kill b
held=$(grep -o "writes held and lost: [0-9]*" "$IT_TMP/b.log" | tail -1 | grep -o "[0-9]*$")
log "b lost ${held:-?} bytes it had written but not flushed"
check "b lost writes it had acknowledged ($held bytes held at the power loss)" [ "${held:-0}" -gt 0 ]
check "a sees b gone" wait_for a "p['connection']" Connecting 10
at_loss=$(acks)
check "a keeps acknowledging writes without b (1000 more)" wait_for_acks $((at_loss + 1000)) 30
check "writer 1 stops cleanly" writer_stop
dirty=$(status_field a "v['out_of_sync_bytes']")
log "a: $dirty bytes out of sync for b"
start_b || exit 2
check "b resyncs from a; in sync within 60 s" wait_in_sync 60
check "b's log reports the finished resync" node_log_has b "resync from a finished"

echo "--- 2: the primary is killed; b is promoted by hand"
writer_start --portal "$(portal a)" --failover-portal "$(portal b)" "${WRITE[@]}"
check "the writer gets 2000 more writes acknowledged through a" wait_for_acks $(($(acks) + 2000)) 40
node_kill a
at_kill=$(acks)
check "b notices that a is gone" wait_for b "p['connection']" Connecting 10
out=$(node_cmd b promote "$C_VOLUME" 2>&1); rc=$?
echo "  $out"
check "promote b without --force (its disk is UpToDate)" [ $rc -eq 0 ]
check "the writer fails over to b and goes on" wait_for_acks $((at_kill + 1000)) 40
check "writer 2 stops cleanly" writer_stop
verify_through b "after b's power loss and a's crash"

echo "--- 3: a returns as secondary and resyncs from b"
node_start a || exit 2
check "a comes back as secondary" wait_for a "v['role']" secondary 10
check "a resyncs from b; in sync within 60 s" wait_in_sync 60
offline_checks
echo "replication_standby_power_loss: $(acks) writes acknowledged, ${held:-?} bytes lost by b's power loss, 0 lost required"
it_finish
