#!/usr/bin/env bash
# timeout: 1500
# conformance.sh - libiscsi's SCSI/iSCSI conformance suite (iscsi-test-cu) against a fresh target.
#
# Starts the target (freevsa unless TARGET_IMPL=tgtd) on 127.0.0.1:3301 with a new 1 GiB sparse
# LUN, runs `iscsi-test-cu -d -v` (destructive tests allowed, both initiator names set for the
# two-initiator tests) over the ALL family - every suite once: the SCSI and LINUX families only
# repeat ALL's suites - and prints the per-suite table of summarize_conformance.py.
#
# FAILS when: a test fails in one of the suites this release must pass (REQUIRED below), one of
# them did not run, the suite did not finish within CONFORMANCE_TIMEOUT, or afterwards the target
# process is gone / does not answer INQUIRY and READ CAPACITY / does not stop on SIGTERM.
# Failures in the other suites are printed, not fatal.
#
# Environment:
#   CONFORMANCE_TESTS=ALL          -t pattern(s), comma separated (e.g. ALL.Read10,ALL.iSCSITMF)
#   CONFORMANCE_TIMEOUT=1200       seconds for one suite run
#   CONFORMANCE_COMPARE=1          also run the same suite against tgtd (port 3302, same kind of
#                                  file) and print both tables side by side (for the release note)
#   CONFORMANCE_LOG_DIR=build/conformance   where the raw logs are kept
# freevsa gets a second portal (port + 10) and iscsi-test-cu both URLs: the MultipathIO suite
# then runs over two paths to the same LUN.
# Measured here (2 cores, against tgtd 1.0.85): ALL family ~25 s, all four families ~55 s.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
it_init conformance
need_cmd iscsi-test-cu libiscsi-bin || exit 2

REQUIRED=CompareAndWrite,ExtendedCopy,Inquiry,Mandatory,ModeSense6,MultipathIO,NoMedia,OrWrite,PreventAllow,Prefetch10,Prefetch16,PrinReadKeys,PrinReportCapabilities,PrinServiceactionRange,ProutClear,ProutPreempt,ProutRegister,ProutReserve,Reserve6,Read6,Read10,Read12,Read16,ReadCapacity10,ReadCapacity16,ReadDefectData10,ReadDefectData12,ReceiveCopyResults,ReportSupportedOpcodes,StartStopUnit,TestUnitReady,Unmap,Verify10,Verify12,Verify16,Write10,Write12,Write16,WriteSame10,WriteSame16,WriteVerify10,WriteVerify12,WriteVerify16,iSCSIcmdsn,iSCSIdatasn,iSCSIResiduals,iSCSITMF
TESTS=${CONFORMANCE_TESTS:-ALL}
SUITE_TIMEOUT=${CONFORMANCE_TIMEOUT:-1200}
LOG_DIR=${CONFORMANCE_LOG_DIR:-$REPO_ROOT/build/conformance}
mkdir -p "$LOG_DIR"
SUMMARIZE="python3 $HERE/summarize_conformance.py"

run_suite() {  # run_suite IMPL PORT LOG : start a target, run the suite, check the target after
  local impl=$1 port=$2 out=$3 t0 rc urls=()
  local second=; [ "$impl" = freevsa ] && second=$((port + 10))
  SECOND_PORT=$second LUN_SIZE=1G start_target "$port" "$impl" || { bad "$impl: target did not start"; return 1; }
  urls=("$T_URL")
  [ -n "$second" ] && urls+=("iscsi://127.0.0.1:$second/$T_IQN/$T_LUN")
  log "$impl: iscsi-test-cu -t $TESTS (timeout ${SUITE_TIMEOUT}s) -> $out"
  t0=$SECONDS
  timeout -k 10 "$SUITE_TIMEOUT" iscsi-test-cu -d -v \
    -i iqn.2026-01.org.freevsa:conformance-1 -I iqn.2026-01.org.freevsa:conformance-2 \
    -t "$TESTS" "${urls[@]}" >"$out" 2>&1
  rc=$?
  echo "$impl: iscsi-test-cu finished in $((SECONDS - t0)) s (exit $rc)"
  case $rc in
    124|137) bad "$impl: iscsi-test-cu did not finish within ${SUITE_TIMEOUT}s (target hung?)"; tail -5 "$out" ;;
    *) if grep -q "Run Summary" "$out"; then ok "$impl: iscsi-test-cu ran to its summary"
       else bad "$impl: iscsi-test-cu ended without a summary (exit $rc)"; tail -5 "$out"; fi ;;
  esac
  cp "$T_LOG" "$LOG_DIR/$impl-target.log" 2>/dev/null
  check "$impl: target still running and answering INQUIRY/READ CAPACITY after the suite" target_alive
  stop_target "$port"; rc=$?
  case $rc in
    0) ok "$impl: target stopped on request" ;;
    1) bad "$impl: target did not stop within 10 s of SIGTERM (killed)" ;;
    *) bad "$impl: target process had already exited (crash?)"; tail -20 "$T_LOG" ;;
  esac
}

PRIMARY=$TARGET_IMPL
run_suite "$PRIMARY" 3301 "$LOG_DIR/$PRIMARY.log"
echo
echo "== iscsi-test-cu per suite ($PRIMARY); * = must pass =="
if $SUMMARIZE "$LOG_DIR/$PRIMARY.log" --require "$REQUIRED"; then
  ok "$PRIMARY: no failed test in the required suites"
else
  bad "$PRIMARY: required suites failed (see FAILED/ERROR lines above; log $LOG_DIR/$PRIMARY.log)"
fi

if [ "${CONFORMANCE_COMPARE:-0}" = 1 ] && [ "$PRIMARY" != tgtd ]; then
  need_cmd tgtd tgt || exit 2
  run_suite tgtd 3302 "$LOG_DIR/tgtd.log"
  echo
  echo "== side by side: $PRIMARY vs tgtd (same suite, same 1 GiB sparse file kind) =="
  $SUMMARIZE --compare "$PRIMARY=$LOG_DIR/$PRIMARY.log" "tgtd=$LOG_DIR/tgtd.log" --require "$REQUIRED" >"$IT_TMP/cmp.txt"
  sed '$d' "$IT_TMP/cmp.txt" | grep -v '^ERROR: tgtd\|^FAILED ' 
fi
echo "logs: $LOG_DIR"
it_finish
