# shellcheck shell=bash
# Shared helpers for the integration tests in this folder. Source it; do not run it.
#
#   . "$(dirname "$0")/lib.sh"
#   it_init NAME                    temp dir $IT_TMP, EXIT trap that stops every target started
#   start_target PORT [IMPL]        start freevsa (default) or tgtd on 127.0.0.1:PORT with one LUN;
#                                   sets T_URL T_IQN T_LUN T_PORT T_LOG T_PID T_IMPL T_FILE
#   restart_target                  stop and start the last target again on the same file
#   stop_target [PORT]              SIGTERM (freevsa) / tgtadm (tgtd); returns 1 if it had to SIGKILL
#   target_alive                    process still running and it answers INQUIRY (iscsi-inq)
#   wait_port HOST PORT SECONDS     until the port accepts a TCP connection
#   retry COUNT DELAY CMD...        run CMD until it succeeds, at most COUNT times
#   check DESC CMD... / ok DESC / bad DESC / it_finish
#   not CMD / refused CMD (exit 1..123) / expect_rc N CMD   for negative checks
#                                   print "PASS|FAIL: DESC", count them; it_finish prints
#                                   "NAME: N passed, N failed" and exits 0 only if none failed
#   writer_start ARGS... / writer_stop / acks / wait_for_acks COUNT SECONDS / vw ARGS...
#                                   test/tools/verified_writer.py: `write ARGS` in the background
#                                   (WRITER_PID; journal $JOURNAL, output $WRITER_OUT/$WRITER_ERR),
#                                   SIGTERM and its exit code, acknowledgements journaled so far
#   wait_for_log FILE REGEX SECONDS until FILE has a matching line
#   field NAME TEXT                 the value of NAME=value in TEXT (the tools' summary lines)
#   pyiscsi ARGS...                 our small python iSCSI initiator, test/tools/pyiscsi.py (data digest,
#                                   mutual CHAP, raw PDUs, pipelined commands)
#
# Environment:
#   TARGET_IMPL=freevsa|tgtd   which target start_target starts (default freevsa); tgtd is the
#                              stand-in used while freevsa is being written and the reference
#                              in CONFORMANCE_COMPARE / bench
#   FREEVSA=path               the daemon (default build/daemon/freevsa under the repo root)
#   LUN_SIZE=1G BLOCK_SIZE=512 LUN_FILE=path (default: a new sparse file in $IT_TMP)
#   FREEVSA_EXTRA_CONFIG=YAML  more top-level settings for freevsa's file (e.g. "limits: {...}")
#   CHAP_USER/CHAP_SECRET      initiators must log in with these (one-way CHAP)
#   MUTUAL_USER/MUTUAL_SECRET  the target proves itself with these (mutual CHAP)
#   KEEP_TMP=1                 keep $IT_TMP (logs, configs) after the test
set -u
if [ "${BASH_SOURCE[0]}" = "$0" ]; then echo "lib.sh holds helpers for the tests beside it; it is not a test" >&2; exit 2; fi

IT_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$IT_LIB_DIR/../.." && pwd)
FREEVSA=${FREEVSA:-$REPO_ROOT/build/daemon/freevsa}
case $FREEVSA in /*) ;; *) FREEVSA=$REPO_ROOT/$FREEVSA ;; esac
TARGET_IMPL=${TARGET_IMPL:-freevsa}
INITIATOR_IQN=${INITIATOR_IQN:-iqn.2026-01.org.freevsa:test-initiator}

IT_NAME=test
IT_TMP=
IT_PASS=0
IT_FAIL=0
IT_PIDS=()        # every target process we started: "impl:pid:port"
T_URL= T_AUTH_URL= T_IQN= T_LUN= T_PORT= T_LOG= T_PID= T_IMPL= T_FILE= T_PORTAL=

log() { echo "[$(date +%T)] $*" >&2; }
not() { ! "$@"; }
quiet() { "$@" >/dev/null; }
refused() {  # refused CMD... : CMD failed by itself (exit 1..123), not by a timeout, signal or missing command
  "$@"; local rc=$?
  [ $rc -ge 1 ] && [ $rc -le 123 ] && return 0
  echo "expected a refusal, got exit $rc" >&2; return 1
}
expect_rc() {  # expect_rc N CMD...
  local want=$1 rc; shift
  "$@"; rc=$?
  [ $rc -eq "$want" ] && return 0
  echo "expected exit $want, got $rc" >&2; return 1
}
ok() { IT_PASS=$((IT_PASS + 1)); echo "PASS: $*"; }
bad() { IT_FAIL=$((IT_FAIL + 1)); echo "FAIL: $*"; }
check() {  # check DESC CMD... : PASS if CMD exits 0
  local desc=$1; shift
  if "$@"; then ok "$desc"; else bad "$desc (exit $?)"; fi
}
it_finish() {
  echo "$IT_NAME: $IT_PASS passed, $IT_FAIL failed"
  [ "$IT_FAIL" -eq 0 ] && [ "$IT_PASS" -gt 0 ] && exit 0
  exit 1
}

need_cmd() {  # need_cmd CMD DEBIAN_PACKAGE... : install the packages if CMD is missing
  local c=$1; shift
  command -v "$c" >/dev/null 2>&1 && return 0
  log "$c missing: apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1 ||
    { apt-get update >/dev/null 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1; } ||
    { echo "cannot install $* (needed for $c)" >&2; return 1; }
}

it_cleanup() {
  local e
  [ -n "${WRITER_PID:-}" ] && kill -KILL "$WRITER_PID" 2>/dev/null
  for e in "${IT_PIDS[@]}"; do
    _stop_one "$e" >/dev/null 2>&1
  done
  IT_PIDS=()
  if [ -n "$IT_TMP" ] && [ -z "${KEEP_TMP:-}" ]; then rm -rf "$IT_TMP"; fi
}

it_init() {
  IT_NAME=$1
  IT_TMP=$(mktemp -d "${TMPDIR:-/tmp}/freevsa-it-$1.XXXXXX")
  trap it_cleanup EXIT
  trap 'exit 130' INT TERM
  need_cmd iscsi-inq libiscsi-bin || exit 2
  if [ "$TARGET_IMPL" = tgtd ]; then need_cmd tgtd tgt || exit 2; fi
  _install_pyiscsi
  log "$IT_NAME: target implementation $TARGET_IMPL, temp dir $IT_TMP"
}

wait_port() {  # wait_port HOST PORT SECONDS
  local host=$1 port=$2 secs=$3 i
  for ((i = 0; i < secs * 10; i++)); do
    timeout 1 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

retry() {  # retry COUNT DELAY CMD...
  local n=$1 d=$2 i; shift 2
  for ((i = 1; i <= n; i++)); do
    "$@" && return 0
    [ "$i" -lt "$n" ] && sleep "$d"
  done
  return 1
}

_write_freevsa_config() {  # FILE PORT IQN LUNFILE
  local cfg=$1 port=$2 iqn=$3 file=$4
  {
    echo "# generated by test/integration/lib.sh for $IT_NAME"
    # SECOND_PORT: a second portal of the same target, a second path to its LUNs (multipath tests)
    echo "portals: [\"127.0.0.1:$port\"${SECOND_PORT:+, \"127.0.0.1:$SECOND_PORT\"}]"
    echo "log_level: ${FREEVSA_LOG_LEVEL:-info}"
    [ -n "${NETWORK_THREADS:-}" ] && echo "network_threads: $NETWORK_THREADS"
    [ -n "${WORKER_THREADS:-}" ] && echo "worker_threads: $WORKER_THREADS"
    echo "targets:"
    echo "  - iqn: $iqn"
    echo "    luns:"
    echo "      - {lun: 0, path: \"$file\", size: ${LUN_SIZE:-1G}, block_size: ${BLOCK_SIZE:-512}, direct_io: ${DIRECT_IO:-true}}"
    if [ -n "${CHAP_USER:-}" ]; then
      echo "    chap: {user: \"$CHAP_USER\", secret: \"$CHAP_SECRET\"}"
    fi
    if [ -n "${MUTUAL_USER:-}" ]; then
      echo "    mutual_chap: {user: \"$MUTUAL_USER\", secret: \"$MUTUAL_SECRET\"}"
    fi
    echo "iscsi: {max_recv_data_segment_length: 262144}"
    if [ -n "${FREEVSA_EXTRA_CONFIG:-}" ]; then echo "$FREEVSA_EXTRA_CONFIG"; fi
  } >"$cfg"
}

start_target() {  # start_target PORT [IMPL]
  local port=$1 impl=${2:-$TARGET_IMPL}
  T_PORT=$port T_IMPL=$impl T_PORTAL=127.0.0.1:$port
  T_FILE=${LUN_FILE:-$IT_TMP/lun-$impl-$port.img}
  [ -e "$T_FILE" ] || truncate -s "${LUN_SIZE:-1G}" "$T_FILE"
  T_LOG=$IT_TMP/$impl-$port.log
  if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
    echo "port 127.0.0.1:$port is already in use by another process; not starting $impl there" >&2
    return 2
  fi
  case $impl in
  freevsa)
    [ -x "$FREEVSA" ] || { echo "freevsa binary not found at $FREEVSA (build it, or set FREEVSA / TARGET_IMPL=tgtd)" >&2; return 2; }
    T_IQN=iqn.2026-01.org.freevsa:it-$port
    T_LUN=0
    local cfg=$IT_TMP/freevsa-$port.yaml
    _write_freevsa_config "$cfg" "$port" "$T_IQN" "$T_FILE"
    "$FREEVSA" serve --config "$cfg" >>"$T_LOG" 2>&1 &
    T_PID=$!
    ;;
  tgtd)
    local ctl=$((port % 100 + 10))   # own control port per target port: several can run at once
    T_IQN=iqn.2003-01.org.reference:tgtd-$port
    T_LUN=1                            # tgtd's LUN 0 is its controller
    tgtd -f -C "$ctl" --iscsi portal=127.0.0.1:"$port" >>"$T_LOG" 2>&1 &
    T_PID=$!
    local i
    for i in $(seq 50); do tgtadm -C "$ctl" --op show --mode sys >/dev/null 2>&1 && break; sleep 0.1; done
    {
      tgtadm -C "$ctl" --lld iscsi --op new --mode target --tid 1 -T "$T_IQN" &&
      tgtadm -C "$ctl" --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$(realpath "$T_FILE")" \
        --blocksize "${BLOCK_SIZE:-512}" &&
      tgtadm -C "$ctl" --lld iscsi --op bind --mode target --tid 1 -I ALL &&
      tgtadm -C "$ctl" --lld iscsi --op update --mode target --tid 1 -n HeaderDigest -v CRC32C,None &&
      tgtadm -C "$ctl" --lld iscsi --op update --mode target --tid 1 -n DataDigest -v CRC32C,None
    } >>"$T_LOG" 2>&1 || { echo "tgtadm setup failed, see $T_LOG" >&2; kill -9 "$T_PID"; return 2; }
    if [ -n "${CHAP_USER:-}" ]; then
      tgtadm -C "$ctl" --lld iscsi --op new --mode account --user "$CHAP_USER" --password "$CHAP_SECRET" &&
      tgtadm -C "$ctl" --lld iscsi --op bind --mode account --tid 1 --user "$CHAP_USER" || return 2
    fi
    if [ -n "${MUTUAL_USER:-}" ]; then
      tgtadm -C "$ctl" --lld iscsi --op new --mode account --user "$MUTUAL_USER" --password "$MUTUAL_SECRET" &&
      tgtadm -C "$ctl" --lld iscsi --op bind --mode account --tid 1 --user "$MUTUAL_USER" --outgoing || return 2
    fi
    ;;
  *) echo "unknown TARGET_IMPL $impl (freevsa|tgtd)" >&2; return 2 ;;
  esac
  IT_PIDS+=("$impl:$T_PID:$port")
  T_URL=iscsi://127.0.0.1:$port/$T_IQN/$T_LUN
  T_AUTH_URL=$T_URL
  [ -n "${CHAP_USER:-}" ] && T_AUTH_URL="iscsi://$CHAP_USER%$CHAP_SECRET@127.0.0.1:$port/$T_IQN/$T_LUN"
  if ! wait_port 127.0.0.1 "$port" 20; then
    echo "$impl did not accept connections on 127.0.0.1:$port within 20 s; log:" >&2
    tail -20 "$T_LOG" >&2
    return 2
  fi
  log "$impl pid $T_PID serves $T_URL (log $T_LOG)"
}

_stop_one() {  # impl:pid:port ; returns 1 if the process had to be killed, 3 if it was already gone
  local impl=${1%%:*} rest=${1#*:}
  local pid=${rest%%:*} port=${rest#*:} i rc=0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 3; }
  if [ "$impl" = tgtd ]; then
    # tgtd ignores SIGTERM while it serves targets: ask it to go first
    tgtadm -C $((port % 100 + 10)) --op delete --mode system --force >/dev/null 2>&1
  fi
  kill -TERM "$pid" 2>/dev/null
  local tries=100; [ "$impl" = tgtd ] && tries=20
  for ((i = 0; i < tries; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null
    [ "$impl" = tgtd ] || rc=1   # tgtd often needs it; only freevsa must stop on SIGTERM
  fi
  wait "$pid" 2>/dev/null
  return $rc
}

stop_target() {  # stop_target [PORT] (default: the last started)
  local port=${1:-$T_PORT} e keep=() rc=0
  for e in "${IT_PIDS[@]}"; do
    if [ "${e##*:}" = "$port" ]; then
      _stop_one "$e"; rc=$?
      [ $rc -eq 1 ] && log "${e%%:*} on port $port did not stop within 10 s of SIGTERM; killed"
    else
      keep+=("$e")
    fi
  done
  IT_PIDS=("${keep[@]}")
  return $rc
}

restart_target() {
  local port=$T_PORT impl=$T_IMPL
  stop_target "$port"
  LUN_FILE=$T_FILE start_target "$port" "$impl"
}

target_alive() {  # the process is running and answers INQUIRY + TEST UNIT READY-like probes
  kill -0 "$T_PID" 2>/dev/null || { echo "target process $T_PID is gone" >&2; return 1; }
  retry 3 1 timeout 15 iscsi-inq -i "$INITIATOR_IQN" "$T_AUTH_URL" >/dev/null 2>&1 ||
    { echo "target does not answer iscsi-inq on $T_URL" >&2; return 1; }
  retry 3 1 timeout 15 iscsi-readcapacity16 -i "$INITIATOR_IQN" "$T_AUTH_URL" >/dev/null 2>&1 ||
    { echo "target does not answer READ CAPACITY(16) on $T_URL" >&2; return 1; }
}

log_has() {  # log_has REGEX : the target's log contains a matching line
  grep -Eiq "$1" "$T_LOG"
}

# ---------------------------------------------------------------------------------------------
# pyiscsi: a small iSCSI initiator in python3 (stdlib only), written for these tests. It does
# what libiscsi/qemu cannot: DataDigest=CRC32C, mutual CHAP with a data round trip, raw PDUs and
# several commands in flight. Its source is test/tools/pyiscsi.py (see test/tools/README.md);
# it_init copies it to $IT_TMP/bin (so test-local python scripts written there can
# `import pyiscsi`) and puts it on PATH as $IT_TMP/bin/pyiscsi (so timeout can run it);
# exit 1 means refused.
PYISCSI_SRC=$REPO_ROOT/test/tools/pyiscsi.py
_install_pyiscsi() {
  mkdir -p "$IT_TMP/bin"
  _write_pyiscsi "$IT_TMP/bin/pyiscsi.py" || exit 2
  printf '#!/bin/sh\nexec python3 "%s" "$@"\n' "$IT_TMP/bin/pyiscsi.py" >"$IT_TMP/bin/pyiscsi"
  chmod +x "$IT_TMP/bin/pyiscsi"
  PATH=$IT_TMP/bin:$PATH
}
_write_pyiscsi() {  # _write_pyiscsi DEST : the module, as a file of its own
  cp "$PYISCSI_SRC" "$1" || { echo "cannot copy $PYISCSI_SRC to $1" >&2; return 1; }
}

# ---------------------------------------------------------------------------------------------
# The verified writer (test/tools/verified_writer.py): writes that are journaled when sent and
# when acknowledged, and a verifier that proves afterwards that none of them was lost.
VW=$REPO_ROOT/test/tools/verified_writer.py
WRITER_PID=
vw() { timeout 300 python3 "$VW" "$@"; }
writer_start() {  # writer_start ARGS... : `write --journal $JOURNAL ARGS` in the background
  WRITER_OUT=$IT_TMP/writer-$RANDOM.out WRITER_ERR=${WRITER_OUT%.out}.err
  python3 "$VW" write --journal "$JOURNAL" "$@" >"$WRITER_OUT" 2>"$WRITER_ERR" &
  WRITER_PID=$!
}
writer_stop() {  # SIGTERM, then up to 20 s for it to drain and exit; returns its exit code
  local i rc
  kill -TERM "$WRITER_PID" 2>/dev/null
  for ((i = 0; i < 200; i++)); do kill -0 "$WRITER_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$WRITER_PID" 2>/dev/null; then
    echo "writer did not stop within 20 s of SIGTERM; killed" >&2
    kill -KILL "$WRITER_PID"
  fi
  wait "$WRITER_PID"; rc=$?
  WRITER_PID=
  return $rc
}
acks() { local n; n=$(grep -c '^A ' "$JOURNAL" 2>/dev/null); echo "${n:-0}"; }   # acknowledgements journaled
wait_for_acks() {  # wait_for_acks COUNT SECONDS : the journal holds at least COUNT acknowledgements
  local want=$1 i
  for ((i = 0; i < $2 * 10; i++)); do
    [ "$(acks)" -ge "$want" ] && return 0
    kill -0 "$WRITER_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
wait_for_log() {  # wait_for_log FILE REGEX SECONDS : until FILE has a line matching REGEX
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -Eq "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
field() {  # field NAME TEXT : the value of NAME=value in TEXT
  echo "$2" | grep -oE "(^| )$1=[^ ]*" | tail -1 | cut -d= -f2
}
