#!/usr/bin/env bash
# crash_consistency.sh - no acknowledged write is lost when the target is killed mid-stream.
# timeout: 300
#
# Single node (replication comes later, with the same tool): freevsa on port 3371 with a
# 256 MiB file LUN. Each round runs test/tools/verified_writer.py (depth 8, 4 KiB blocks, random
# blocks of a 64 MiB region, every send and acknowledgement journaled), kills the daemon with
# SIGKILL while writes are in flight, restarts it on the same file; the writer, which has the
# same portal as its failover target, logs in again and goes on; then it is stopped and the
# region is read back through iSCSI and checked against the journal: every block must hold
# its last acknowledged generation (or a later one that was in flight at the kill, or nothing
# if it was never acknowledged). CRASH_ROUNDS rounds (default 3), one journal for all of them.
# Afterwards, with the daemon stopped, the backing file verifies clean, and negative controls
# prove the verifier can fail: a flipped byte (CORRUPT), an older generation put back (LOST),
# zeros (LOST) and another block's data (CORRUPT) in blocks that hold acknowledged writes are
# each reported, and compare finds exactly the damaged block.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
it_init crash_consistency
export LUN_SIZE=256M
PORT=3371
ROUNDS=${CRASH_ROUNDS:-3}
JOURNAL=$IT_TMP/journal
REGION=(--offset 32M --size 64M)

start_target $PORT || exit 2
TOTAL_ACKED=0 TOTAL_UNACKED=0 KILLS=0

for ((round = 1; round <= ROUNDS; round++)); do
  echo "--- round $round of $ROUNDS"
  before=$(acks)
  writer_start --portal "$T_PORTAL" --failover-portal "$T_PORTAL" --target "$T_IQN" --lun "$T_LUN" \
    "${REGION[@]}" --depth 8 --seconds 90 --failover-timeout 30 --io-timeout 10
  werr=$WRITER_ERR wout=$WRITER_OUT
  if ! wait_for_acks $((before + 2000 + RANDOM % 8000)) 30; then
    bad "round $round: the writer did not get 2000 writes acknowledged within 30 s"
    cat "$werr"; writer_stop; break
  fi
  { kill -KILL "$T_PID"; wait "$T_PID"; } 2>/dev/null   # reaped here: no "Killed" job notice
  at_kill=$(($(acks) - before))
  KILLS=$((KILLS + 1))
  stop_target $PORT           # forgets the dead daemon
  log "round $round: freevsa killed (SIGKILL) after about $at_kill acknowledged writes of this round"
  sleep 1                     # the writer meets refused connections for a moment
  if ! LUN_FILE=$T_FILE start_target $PORT; then
    bad "round $round: freevsa does not start again on the same file after SIGKILL"
    writer_stop; break
  fi
  if wait_for_log "$werr" "failover 1:" 30; then
    inflight=$(sed -n 's/.*path failed with \([0-9]*\) write.*/\1/p' "$werr" | head -1)
    ok "round $round: killed freevsa mid-stream ($inflight writes in flight, about $at_kill acknowledged); the writer logged in again"
    [ "${inflight:-0}" -ge 1 ] || bad "round $round: no write was in flight at the kill"
  else
    bad "round $round: the writer did not log in again within 30 s of the restart"
    cat "$werr"
  fi
  resumed=$(acks)
  if wait_for_acks $((resumed + 2000)) 30; then
    ok "round $round: writes are acknowledged again after the restart"
  else
    bad "round $round: no progress after the restart"
  fi
  writer_stop; rc=$?
  summary=$(cat "$wout")
  echo "  $summary"
  [ $rc -eq 0 ] && [ "$(field failovers "$summary")" = 1 ] &&
    ok "round $round: writer stopped cleanly on SIGTERM, 1 failover" ||
    bad "round $round: writer exit $rc, summary: $summary"
  n=$(field acked "$summary"); TOTAL_ACKED=$((TOTAL_ACKED + ${n:-0}))
  n=$(field unacked "$summary"); TOTAL_UNACKED=$((TOTAL_UNACKED + ${n:-0}))
  out=$(vw verify --journal "$JOURNAL" --portal "$T_PORTAL" --target "$T_IQN" --lun "$T_LUN" 2>&1); rc=$?
  echo "$out" | sed 's/^/  /'
  [ $rc -eq 0 ] && [ "$(field lost "$out")" = 0 ] && [ "$(field corrupt "$out")" = 0 ] &&
    ok "round $round: verify through iSCSI after the kill: lost=0 corrupt=0 ($(field ok_acked "$out") blocks hold their last acknowledged write, $(field ok_in_flight "$out") an in-flight one)" ||
    bad "round $round: verify through iSCSI found lost or corrupt writes (exit $rc)"
done

out=$(vw compare "$T_FILE" "iscsi://$T_PORTAL/$T_IQN/$T_LUN" 2>&1); rc=$?
echo "  $out"
[ $rc -eq 0 ] && ok "compare: the LUN read through iSCSI and its backing file are identical" ||
  bad "compare: LUN and backing file differ (exit $rc)"
check "freevsa stops on SIGTERM after the crash rounds" stop_target $PORT

out=$(vw verify --journal "$JOURNAL" --file "$T_FILE" 2>&1); rc=$?
echo "$out" | sed 's/^/  /'
[ $rc -eq 0 ] && ok "verify of the backing file, daemon stopped: lost=0 corrupt=0 over $ROUNDS runs" ||
  bad "verify of the backing file found lost or corrupt writes (exit $rc)"

# --- negative controls: damage one block that holds an acknowledged write; verify must say so
cat >"$IT_TMP/bin/damage.py" <<'PYEOF'
"""damage.py KIND IMAGE JOURNAL SAVE : damage one block holding its last acknowledged write.
KIND: flip (one byte), older (an older generation of it), zeros, other (another block's data).
Saves the original block to SAVE as 'offset' + data; prints the block number."""
import os, sys
sys.path.insert(0, os.environ["TOOLS"])
import verified_writer as vw

kind, image, journal, save = sys.argv[1:5]
replay = vw.JournalReplay([journal])
block_size = replay.region()[0]
candidates = sorted(b for b, h in replay.blocks.items() if h.last_ack and not h.later_unacked
                    and (kind != "older" or h.superseded))
block = candidates[len(candidates) // 2]
offset = block * block_size
fd = os.open(image, os.O_RDWR)
original = os.pread(fd, block_size, offset)
with open(save, "wb") as f:
    f.write(offset.to_bytes(8, "big") + original)
if kind == "flip":
    damaged = bytearray(original); damaged[1000] ^= 0x01
elif kind == "older":
    run_id, generation = max(replay.blocks[block].superseded)
    damaged = vw.block_content(block, generation, run_id, block_size)
elif kind == "zeros":
    damaged = bytes(block_size)
else:
    damaged = os.pread(fd, block_size, candidates[0] * block_size)
os.pwrite(fd, bytes(damaged), offset)
os.close(fd)
print(block)
PYEOF
restore_block() {  # restore_block IMAGE SAVE
  python3 -c 'import os, sys
raw = open(sys.argv[2], "rb").read(); fd = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(fd, raw[8:], int.from_bytes(raw[:8], "big")); os.close(fd)' "$1" "$2"
}
cp --sparse=always "$T_FILE" "$IT_TMP/pristine.img"
for spec in flip:CORRUPT older:LOST zeros:LOST other:CORRUPT; do
  kind=${spec%%:*} want=${spec#*:}
  block=$(TOOLS=$REPO_ROOT/test/tools timeout 60 python3 "$IT_TMP/bin/damage.py" "$kind" "$T_FILE" "$JOURNAL" "$IT_TMP/saved.blk")
  if [ -z "$block" ]; then bad "negative control $kind: could not damage a block"; continue; fi
  out=$(vw verify --journal "$JOURNAL" --file "$T_FILE" --show 3 2>&1); rc=$?
  echo "$out" | sed 's/^/  /'
  lc=$(echo "$want" | tr 'A-Z' 'a-z')
  [ $rc -eq 1 ] && echo "$out" | grep -q "^  $want block $block " && [ "$(field "$lc" "$out")" = 1 ] &&
    ok "negative control: $kind in block $block (acknowledged) is reported as $want, verify exits 1" ||
    bad "negative control: $kind in block $block not reported as $want (exit $rc)"
  if [ "$kind" = flip ]; then
    out=$(vw compare "$IT_TMP/pristine.img" "$T_FILE" 2>&1); rc=$?
    echo "$out" | sed 's/^/  /'
    [ $rc -eq 1 ] && [ "$(field differing_blocks "$out")" = 1 ] &&
      echo "$out" | grep -q "at byte offset $((block * 4096))$" &&
      ok "negative control: compare finds exactly the flipped block at byte $((block * 4096))" ||
      bad "negative control: compare did not pinpoint the flipped block (exit $rc)"
  fi
  restore_block "$T_FILE" "$IT_TMP/saved.blk"
done
check "after restoring the damaged blocks, compare finds the file identical again" \
  quiet vw compare "$IT_TMP/pristine.img" "$T_FILE"
check "and verify passes again" quiet vw verify --journal "$JOURNAL" --file "$T_FILE"

echo "crash_consistency: $ROUNDS rounds, $KILLS SIGKILLs, $TOTAL_ACKED writes acknowledged, $TOTAL_UNACKED in flight at kills, lost=0 required"
it_finish
