#!/usr/bin/env bash
# esxi_claim.sh - the SCSI commands VMware ESXi sends when it claims a path and mounts a VMFS 6
# datastore, replayed through libiscsi by test/tools/esxi_replay (see the top of esxi_replay.c
# for the sequence and its sources), on one node and on a replicated pair.
# timeout: 300
#
# FAILS when any answer of the replay is wrong. Single node (port 3601, 1 GiB LUN):
#  - discovery: REPORT LUNS, standard INQUIRY (TPGS != 0), VPD 00h/80h/83h/B0h/B1h/B2h, the
#    NAA 6 designator (ESXi's naa.* device name), target port group and relative port; the
#    first TEST UNIT READY's unit attention; READ CAPACITY(10)/(16) with LBPME; MODE SENSE(6)
#    all/caching/control; REPORT TARGET PORT GROUPS shows VPD 83h's group active/optimized;
#    REPORT SUPPORTED OPERATION CODES lists the VAAI commands;
#  - a datastore: partition table and LVM header written and read back, 25 heartbeat ATS
#    (COMPARE AND WRITE) in a row, a stale ATS gets MISCOMPARE 0E/1D/00 with the offset of the
#    first differing byte in INFORMATION and writes nothing, WRITE SAME(16) zeroing and with
#    UNMAP, UNMAP of 1 MiB, GET LBA STATUS before and after, unmapped blocks read as zeroes,
#    SYNCHRONIZE CACHE; a second session and a restarted target report the same NAA, and the
#    heartbeat goes on from the last image after the restart;
#  - PERSISTENT RESERVE IN/OUT (READ KEYS, REPORT CAPABILITIES, REGISTER, RESERVE type 5,
#    RELEASE, unregister) and SCSI-2 RESERVE(6)/RELEASE(6); a registration with ALL_TG_PT and
#    APTPL and a Write Exclusive - Registrants Only reservation are left for the restart and
#    the takeover, which must show them, let the registrant write and refuse another host's
#    write with RESERVATION CONFLICT;
#  - EXTENDED COPY (LID1, E4h CSCDs with the LUN's NAA) with RECEIVE COPY RESULTS and VPD 8Fh,
#    and the copied blocks on the node that takes over.
# Replicated (nodes a 127.0.0.1 and b 127.0.0.2, ports 3620-3622):
#  - the replay passes against the primary a;
#  - the standby b answers INQUIRY/VPD 83h with the same NAA, RTPG shows its group standby and
#    a's active/optimized, media commands get 02/04/0B (never 05/25/00, ESXi's PDL);
#  - after demote a / promote b: b reports the same NAA, its group active/optimized, the
#    heartbeat block holds the last image a wrote (also in b's backing file), the heartbeat
#    goes on through b from that image, the unmapped range reads as zeroes on b; a is now the
#    standby path with the same answers; the replicas stay identical;
#  - b is killed (SIGKILL) and a promoted by hand: a serves the same reservation, the copied
#    and unmapped blocks, and the heartbeat goes on from the last image b wrote.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/lib_cluster.sh"
it_init esxi_claim
REPLAY=${ESXI_REPLAY:-$REPO_ROOT/build/test/tools/esxi_replay}
if [ ! -x "$REPLAY" ]; then
  echo "esxi_replay not found at $REPLAY: install libiscsi-dev (scripts/install-deps.sh) and rebuild" >&2
  exit 2
fi
t0=$SECONDS
HB_LBA=8192   # the heartbeat slot of esxi_replay.c (LBA_HEARTBEAT)

# replay DESC ARGS... : run esxi_replay, show its lines indented, PASS if it exits 0.
# Sets OUT to its output.
replay() {
  local desc=$1 rc; shift
  OUT=$(timeout 120 "$REPLAY" --initiator "$INITIATOR_IQN" "$@" 2>&1); rc=$?
  echo "$OUT" | sed 's/^/  /'
  if [ $rc -eq 0 ]; then
    ok "$desc ($(echo "$OUT" | tail -1))"
  else
    bad "$desc (exit $rc): $(echo "$OUT" | grep -c '^FAIL') failed: $(echo "$OUT" | grep '^FAIL' | head -3 | tr '\n' ' ')"
  fi
}

# skip_flags URL : every command family the replay covers must be listed by REPORT SUPPORTED
# OPERATION CODES (the replay's --skip-* flags are for other targets). Sets FLAGS (empty).
skip_flags() {
  local probe
  FLAGS=()
  probe=$(timeout 30 "$REPLAY" --initiator "$INITIATOR_IQN" --mode probe "$1" 2>&1) ||
    { bad "REPORT SUPPORTED OPERATION CODES probe failed: $probe"; return 1; }
  echo "  probe: $probe"
  # VAAI, persistent reservations and RESERVE(6) are part of the product: never skipped.
  [ "$(field pr "$probe")" = 1 ] || bad "REPORT SUPPORTED OPERATION CODES does not list PERSISTENT RESERVE IN/OUT"
  [ "$(field reserve6 "$probe")" = 1 ] || bad "REPORT SUPPORTED OPERATION CODES does not list RESERVE(6)/RELEASE(6)"
  [ "$(field xcopy "$probe")" = 1 ] || bad "REPORT SUPPORTED OPERATION CODES does not list EXTENDED COPY and RECEIVE COPY RESULTS"
}

naa_of() { echo "$1" | sed -n 's/^naa=\(naa\.[0-9a-f]*\).*/\1/p' | tail -1; }

# block_of FILE LBA : one 512-byte block of a backing file, as hex
block_of() { od -An -v -tx1 -j $(($2 * 512)) -N 512 "$1" | tr -d ' \n'; }

# ---------------------------------------------------------------------------------------------
# One node
LUN_SIZE=1G start_target 3601 || exit 2
skip_flags "$T_URL" || exit 1
replay "single node: the ESXi claim and VMFS mount sequence" \
  "${FLAGS[@]}" --size-bytes $((1 << 30)) --save-ats "$IT_TMP/ats-single.img" "$T_URL"
NAA=$(naa_of "$OUT")
check "single node: the LUN has an NAA device name ($NAA)" [ -n "$NAA" ]
check "single node: the target stops on SIGTERM" stop_target
LUN_FILE=$T_FILE LUN_SIZE=1G start_target 3601 || exit 2
out=$(timeout 30 "$REPLAY" --initiator "$INITIATOR_IQN" --mode identity --expect-naa "$NAA" "$T_URL" 2>&1); rc=$?
echo "$out" | sed 's/^/  /'
check "single node: after a restart VPD 83h names the same device ($NAA)" [ $rc -eq 0 ]
replay "single node, restarted: the heartbeat goes on from the image written before the restart" \
  --mode takeover "${FLAGS[@]}" --expect-naa "$NAA" --ats-image "$IT_TMP/ats-single.img" "$T_URL"
check "single node: the target stops on SIGTERM" stop_target
check "single node: no ERROR in the target's log" not grep -E " ERROR " "$T_LOG"

# ---------------------------------------------------------------------------------------------
# Two nodes: a primary, b standby
cluster_init 3620 || exit 2
cluster_config a
cluster_config b
node_start a || exit 2
node_start b || exit 2
check "the pair is in sync within 60 s" wait_in_sync 60
check "a is primary" [ "$(status_field a "v['role']")" = primary ]
skip_flags "$(iscsi_url a)" || exit 1
replay "primary a: the ESXi claim and VMFS mount sequence" \
  "${FLAGS[@]}" --size-bytes "$C_SIZE_BYTES" --save-ats "$IT_TMP/ats-a.img" "$(iscsi_url a)"
NAA=$(naa_of "$OUT")
check "primary a: the volume has an NAA device name ($NAA)" [ -n "$NAA" ]
replay "standby b: same NAA, its group standby and a's active/optimized in RTPG, media commands 02/04/0B" \
  --mode standby --expect-naa "$NAA" "$(iscsi_url b)"
check "the replicas are identical after the replay" replicas_identical
check "b's disk holds the last heartbeat image a wrote" \
  [ "$(block_of "$(backing_file b)" $HB_LBA)" = "$(od -An -v -tx1 "$IT_TMP/ats-a.img" | tr -d ' \n')" ]

check "demote a" node_cmd a demote "$C_VOLUME"
check "b sees a as secondary" wait_for b "p['role']" secondary 10
check "promote b" node_cmd b promote "$C_VOLUME"
check "a sees b as primary" wait_for a "p['role']" primary 10
replay "new primary b: same NAA, AO, the heartbeat block as a left it, ATS goes on, unmapped range zero" \
  --mode takeover "${FLAGS[@]}" --expect-naa "$NAA" --ats-image "$IT_TMP/ats-a.img" --save-ats "$IT_TMP/ats-b.img" "$(iscsi_url b)"
replay "a, now the standby path: same NAA, standby in RTPG, media commands 02/04/0B" \
  --mode standby --expect-naa "$NAA" "$(iscsi_url a)"
check "the replicas are identical after the takeover" replicas_identical
check "a's disk holds the last heartbeat image b wrote" \
  [ "$(block_of "$(backing_file a)" $HB_LBA)" = "$(od -An -v -tx1 "$IT_TMP/ats-b.img" | tr -d ' \n')" ]
check "no node logged an error" not grep -E " ERROR " "$IT_TMP/a.log" "$IT_TMP/b.log"

# The primary crashes: the standby, promoted by hand, holds the same reservations and locks.
node_kill b
check "a notices b is gone" wait_for a "p['connection']" Connecting 15
check "promote a without --force (its disk is UpToDate)" node_cmd a promote "$C_VOLUME"
replay "a after b crashed: same NAA, AO, the reservation b served, ATS goes on from b's last image" \
  --mode takeover "${FLAGS[@]}" --expect-naa "$NAA" --ats-image "$IT_TMP/ats-b.img" "$(iscsi_url a)"
check "a stops on SIGTERM" node_stop a
log "esxi_claim took $((SECONDS - t0)) s"
it_finish
