#!/usr/bin/env bash
# replication_standby_kill.sh - the standby dies and returns; the resync copies only what changed.
# timeout: 400
#
# A verified writer (test/tools/verified_writer.py: every write journaled when sent and when
# acknowledged) writes random 4 KiB blocks through the primary a while:
#  1. the standby b is killed with SIGKILL; a keeps serving and records what b misses in its
#     dirty bitmap; the writer stops; then b starts again while a second writer run goes on,
#     so the resync and application writes overlap. The resync must copy only the blocks the
#     bitmap named (bytes resynced against bytes written while b was away, both reported);
#  2. b is killed again in the middle of a resync (held slow by a fixed resync rate) and
#     restarted: the resync picks up where it stopped and finishes.
# After each round every acknowledged write is verified through a's portal, and with both
# nodes stopped at the end, on both backing files; the replicas' data areas are bit-identical.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/lib_cluster.sh"
it_init replication_standby_kill
cluster_init 3430 || exit 2
# A fixed rate keeps the round-2 resync long enough to interrupt it.
cluster_config a RESYNC_RATE=16M
cluster_config b RESYNC_RATE=16M
JOURNAL=$IT_TMP/journal
WRITE=(--portal "$(portal a)" --failover-portal "$(portal a)" --target "$C_IQN" --offset 16M --size 96M --depth 8
  --seconds 120 --failover-timeout 30 --io-timeout 10)

node_start a || exit 2
node_start b || exit 2
check "the cluster is in sync" wait_in_sync 60
resynced() { status_field a "v['bytes_resynced']"; }
# --- round 1: kill b, write, bring it back under load
echo "--- round 1: the standby is killed and comes back while writes go on"
writer_start "${WRITE[@]}"
check "the writer gets 2000 writes acknowledged" wait_for_acks 2000 30
node_kill b
at_kill=$(acks)
check "a keeps acknowledging writes without b (3000 more)" wait_for_acks $((at_kill + 3000)) 30
check "a sees b gone" wait_for a "p['connection']" Connecting 10
check "writer 1 stops cleanly" writer_stop
away_writes=$(($(acks) - at_kill))
dirty=$(status_field a "v['out_of_sync_bytes']")
before=$(resynced)
log "while b was away: $away_writes writes of 4 KiB acknowledged ($((away_writes * 4096)) bytes), $dirty bytes out of sync"
# Besides the writes b missed, the bitmap names those b acknowledged but had not confirmed
# durable when it died (docs/durability.md): at most two epochs of 1024 writes.
unconfirmed_max=$((2 * 1024 * 4096))
check "a's bitmap names what b missed ($dirty bytes, at most $((away_writes * 4096)) + $unconfirmed_max unconfirmed)" \
  [ "${dirty:-0}" -gt 0 -a "${dirty:-0}" -le $((away_writes * 4096 + unconfirmed_max)) ]
check "a reports b's disk as Outdated" [ "$(status_field a "p['disk_state']")" = Outdated ]
second_start=$(acks)
node_start b || exit 2
writer_start "${WRITE[@]}"
check "b resyncs while writes go on; in sync again within 60 s" wait_in_sync 60
check "writes were acknowledged during the resync" wait_for_acks $((second_start + 500)) 30
check "writer 2 stops cleanly" writer_stop
during=$(($(acks) - second_start))
copied=$(($(resynced) - before))
log "round 1: resync copied $copied bytes; $dirty were out of sync; $during writes came in meanwhile"
echo "  round 1: bytes written while b was away $((away_writes * 4096)), out of sync $dirty, resynced $copied"
check "the resync copied every block the bitmap named and only those (plus at most the writes meanwhile: $copied of $dirty..$((dirty + during * 4096)))" \
  [ "$copied" -ge "$dirty" -a "$copied" -le $((dirty + during * 4096)) ]
check "b's log reports the finished resync" node_log_has b "resync from a finished"
verify_through a "round 1"

# --- round 2: kill b in the middle of a resync
echo "--- round 2: the standby is killed during its resync and resumes it"
node_kill b
writer_start "${WRITE[@]}"
check "writes go on while b is away" wait_for_acks $(($(acks) + 15000)) 60
check "writer 3 stops cleanly" writer_stop
dirty=$(status_field a "v['out_of_sync_bytes']")
log "round 2: $dirty bytes out of sync before b returns (resync at 16 MiB/s)"
node_start b || exit 2
check "the resync starts" wait_for a "p['connection']" SyncSource 20
sleep 1
progress=$(node_cmd a status | grep "sync:")
echo "  a:$progress"
check "status shows the resync's progress, speed and ETA" grep -Eq "sync: [0-9.]+% \(.* of .*\), [0-9.]+ [KM]iB/s, ETA [0-9]+:[0-9]+" <<<"$progress"
left=$(status_field a "v['out_of_sync_bytes']")
node_kill b
check "b was killed with part of the resync done ($left of $dirty bytes left)" [ "${left:-0}" -gt 0 -a "${left:-0}" -lt "$dirty" ]
sleep 1
left_after=$(status_field a "v['out_of_sync_bytes']")
node_start b || exit 2
check "the interrupted resync resumes and finishes within 60 s" wait_in_sync 60
b_log_line=$(grep "resync from a starting" "$IT_TMP/b.log" | tail -1)
echo "  $b_log_line"
check "the resumed resync fetched only what was left (not a full sync)" not grep -q "full sync" <<<"$b_log_line"
log "round 2: $left_after bytes were left when b came back"
verify_through a "round 2"

# --- both replicas, offline
offline_checks
echo "replication_standby_kill: $(acks) writes acknowledged in all, 0 lost required"
it_finish
