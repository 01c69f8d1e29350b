#!/usr/bin/env bash
# replication_primary_kill.sh - the primary dies; the standby is promoted by hand and loses nothing.
# timeout: 400
#
# A verified writer writes random 4 KiB blocks through the primary, with the other node's
# portal to fail over to. Each round kills the primary with SIGKILL while writes are in
# flight, promotes the survivor by hand (`freevsa promote`, no --force: its disk is UpToDate),
# and checks that the writer carries on there and that every write it had acknowledged is
# readable through the new primary. Then the old primary starts again: it comes back as
# secondary (never primary by itself, which could make two), resyncs from the new primary
# (its activity log names the blocks it may have written alone just before the crash), and
# the two are in sync again. Round 1 kills a, round 2 kills b. At the end, with both stopped,
# both backing files hold every acknowledged write and their data areas are bit-identical.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/lib_cluster.sh"
it_init replication_primary_kill
cluster_init 3440 || exit 2
cluster_config a
cluster_config b
JOURNAL=$IT_TMP/journal

node_start a || exit 2
node_start b || exit 2
check "the cluster is in sync" wait_in_sync 60
WRITE=(--target "$C_IQN" --offset 0 --size 128M --depth 8 --seconds 120 --failover-timeout 60 --io-timeout 10)
TOTAL_ACKED=0

for round in 1 2; do
  if [ $round = 1 ]; then old=a new=b; else old=b new=a; fi
  echo "--- round $round: primary $old is killed, $new is promoted by hand"
  writer_start --portal "$(portal $old)" --failover-portal "$(portal $new)" "${WRITE[@]}"
  check "round $round: the writer gets writes acknowledged through $old" wait_for_acks $(($(acks) + 3000)) 60
  node_kill $old
  at_kill=$(acks)
  check "round $round: $new notices that $old is gone" wait_for $new "p['connection']" Connecting 10
  out=$(node_cmd $new promote "$C_VOLUME" 2>&1); rc=$?
  echo "  $out"
  check "round $round: promote $new without --force (its disk is UpToDate)" [ $rc -eq 0 ]
  check "round $round: the writer fails over to $new and goes on" wait_for_acks $((at_kill + 3000)) 60
  check "round $round: the writer stops cleanly" writer_stop
  summary=$(cat "$WRITER_OUT"); echo "  $summary"
  TOTAL_ACKED=$((TOTAL_ACKED + $(field acked "$summary")))
  check "round $round: the writer failed over once" [ "$(field failovers "$summary")" = 1 ]
  verify_through $new "round $round, after the kill"

  writer_start --portal "$(portal $new)" "${WRITE[@]}"
  node_start $old || exit 2
  check "round $round: $old comes back as secondary" wait_for $old "v['role']" secondary 10
  check "round $round: $old resyncs from $new and both are in sync within 60 s" wait_in_sync 60
  check "round $round: $new is still the primary" [ "$(status_field $new "v['role']")" = primary ]
  line=$(grep "resync from $new finished" "$IT_TMP/$old.log" | tail -1)
  echo "  $old: $line"
  check "round $round: $old's log reports the resync from $new" test -n "$line"
  check "round $round: writes went on while $old rejoined" wait_for_acks $(($(acks) + 1000)) 30
  check "round $round: the writer stops cleanly" writer_stop
  TOTAL_ACKED=$((TOTAL_ACKED + $(field acked "$(cat "$WRITER_OUT")")))
  verify_through $new "round $round, after $old rejoined"
done

check "in sync at the end" wait_in_sync 30
offline_checks
echo "replication_primary_kill: $TOTAL_ACKED writes acknowledged, 2 primaries killed, 0 lost required"
it_finish
