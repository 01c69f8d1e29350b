#!/usr/bin/env bash
# replication_bench.sh - replicated (two-node cluster, protocol C) against unreplicated
# (single-node) freevsa, the same kind of backing files, the same client, in the same run.
#
# Client: fio's nbd ioengine -> qemu-nbd (unix socket) -> qemu's libiscsi driver -> target, as in
# bench/bench.sh (Debian's fio has no libiscsi engine). The chain costs the same for both
# configurations: compare ratios and latency differences, not absolute figures.
# See bench/README.md, section "replication_bench.sh".
#
#   bench/replication_bench.sh     prints a table: workload, unreplicated, replicated, ratio
#
# Both configurations run side by side on 127.0.0.1 (unreplicated: iSCSI 3370; cluster: the
# integration tests' two-node cluster of test/integration/lib_cluster.sh, node a 127.0.0.1 and
# node b 127.0.0.2, iSCSI 3380, replication 3381, control 3382) and each workload is run on one,
# then on the other (the order alternates between workloads), so that background load on a busy
# machine hits both columns alike. Then the resync rate: node b is stopped, RESYNC_MB of random
# data is written through node a, b is started again and the bitmap resync timed.
#
# Environment: BENCH_SECONDS=10 (per workload and configuration), RESYNC_MB=256, DIRECT_IO=true
# (both configurations), PEER_TLS=psk (the peer link over TLS 1.3 with the key from the secret;
# default: plain TCP with a MAC on every frame), FREEVSA=path, NETWORK_THREADS / WORKER_THREADS (both configurations),
# BENCH_DIR (scratch dir, must be empty or absent; kept afterwards, without the images unless
# KEEP_TMP=1; default: a new mktemp -d dir, removed afterwards unless KEEP_TMP=1).

# lib.sh reads IT_NAME; status lines are split into words on purpose.
# shellcheck disable=SC2034,SC2046,SC2086
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../test/integration/lib.sh"
. "$HERE/../test/integration/lib_cluster.sh"

SECS=${BENCH_SECONDS:-10}
RESYNC_MB=${RESYNC_MB:-256}
DIRECT_IO=${DIRECT_IO:-true}
REGION_MB=256                # the part of the LUN the workloads touch, written before any run
U_PORT=3370                  # unreplicated iSCSI port (127.0.0.1)
C_BASEPORT=3380              # cluster: iSCSI, +1 replication, +2 control; no integration test uses them
export DIRECT_IO LUN_SIZE=1G BLOCK_SIZE=512

IT_NAME=replication-bench
KEEP_DIR=${KEEP_TMP:-}
if [ -n "${BENCH_DIR:-}" ]; then
  mkdir -p "$BENCH_DIR" || exit 2
  if [ -n "$(ls -A "$BENCH_DIR")" ]; then echo "BENCH_DIR $BENCH_DIR is not empty" >&2; exit 2; fi
  IT_TMP=$(cd "$BENCH_DIR" && pwd)
  KEEP_DIR=1
else
  IT_TMP=$(mktemp -d "${TMPDIR:-/tmp}/freevsa-replbench.XXXXXX") || exit 2
fi
S=$IT_TMP
NBD_PIDS=()
cleanup() {
  local p
  for p in "${NBD_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  NBD_PIDS=()
  # it_cleanup stops every daemon in IT_PIDS (SIGTERM, SIGKILL after 10 s) and removes $IT_TMP
  # unless KEEP_TMP is set.
  if [ -n "$KEEP_DIR" ]; then
    KEEP_TMP=1 it_cleanup
    [ -n "${KEEP_TMP:-}" ] || rm -f "$S"/*.bin "$S"/single/*.img "$S"/data/*/*.img
  else
    it_cleanup
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need_cmd fio fio || exit 2
need_cmd qemu-nbd qemu-utils qemu-block-extra || exit 2
need_cmd qemu-img qemu-utils || exit 2
need_cmd python3 python3 || exit 2
[ -x "$FREEVSA" ] || { echo "freevsa not built: $FREEVSA (ninja -C build, or set FREEVSA)" >&2; exit 2; }
log "scratch dir $S, ${SECS}s per workload, direct_io $DIRECT_IO"

# Every port is checked before anything starts, so that a taken one costs no set-up time.
if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$U_PORT" 2>/dev/null; then
  echo "127.0.0.1:$U_PORT is in use by another process; not starting" >&2; exit 2
fi
cluster_init "$C_BASEPORT" || exit 2

# ---- data: the workload region is written through each target before any measurement, so that
# every configuration writes over allocated blocks (a sparse hole costs an allocation).
log "making ${REGION_MB} MiB (fill) and ${RESYNC_MB} MiB (resync) of random data"
head -c "${REGION_MB}M" /dev/urandom >"$S/fill.bin"
head -c "${RESYNC_MB}M" /dev/urandom >"$S/resync.bin"

# ---- unreplicated: one node, start_target's config (lib.sh), on 127.0.0.1:$U_PORT
mkdir -p "$S/single"
LUN_FILE=$S/single/lun0.img start_target "$U_PORT" freevsa || { log "the unreplicated target did not start"; exit 1; }
U_PORTAL=$T_PORTAL U_IQN=$T_IQN U_LUN=$T_LUN

# node_state NODE: one line "connection disk peer_disk oos bytes_resynced sync writes_replicated rtt_ms"
# of the node's volume and peer, from its `freevsa status --json`; fails when unreachable.
STATE="' '.join(map(str, (p['connection'], v['disk_state'], p['disk_state'], v['out_of_sync_bytes'],
  v['bytes_resynced'], 'none' if v['sync'] is None else 'running', v['writes_replicated'],
  '-' if p.get('round_trip_ms') is None else p['round_trip_ms'])))"
node_state() { status_field "$1" "$STATE"; }
state_in_sync() {  # state_in_sync "STATE LINE": peer Connected and UpToDate, own disk UpToDate, nothing out of sync
  set -- $1
  [ "${1:-}" = Connected ] && [ "${2:-}" = UpToDate ] && [ "${3:-}" = UpToDate ] && [ "${4:-}" = 0 ] && [ "${6:-}" = none ]
}

# ---- replicated: lib_cluster.sh's two-node cluster with the LUN settings of the unreplicated
# target (those _write_freevsa_config writes), and the daemon's default keep-alive - what a
# deployment runs - rather than the tests' faster one.
C_SECRET=replbench-secret-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
for n in a b; do
  cluster_config $n CLUSTER=replbench SECRET="$C_SECRET" SIZE="$LUN_SIZE" BLOCK="$BLOCK_SIZE" DIRECT_IO="$DIRECT_IO" \
    PING_INTERVAL=500ms PEER_TIMEOUT=2s NETWORK_THREADS="${NETWORK_THREADS:-}" WORKER_THREADS="${WORKER_THREADS:-}" \
    TLS="${PEER_TLS:-}" || exit 2
done
node_start a && node_start b && wait_port 127.0.0.1 "$C_ISCSI_PORT" 20 && wait_port 127.0.0.2 "$C_ISCSI_PORT" 20 ||
  { log "the cluster did not come up"; tail -5 "$S"/[ab].log >&2; exit 1; }
log "waiting for the initial sync (both nodes Connected, UpToDate, 0 out of sync)"
wait_in_sync 180 || { log "the cluster did not reach Connected/UpToDate within 180 s"; exit 1; }
log "cluster in sync: a: $(node_state a)"

qemu_json() {  # qemu_json PORTAL IQN LUN : a qemu block spec for the iSCSI LUN
  echo "json:{\"driver\":\"raw\",\"file\":{\"driver\":\"iscsi\",\"transport\":\"tcp\",\"portal\":\"$1\",\"target\":\"$2\",\"lun\":$3,\"initiator-name\":\"$INITIATOR_IQN\"}}"
}
write_through() {  # write_through FILE PORTAL IQN LUN : FILE's bytes to the start of the LUN
  timeout 300 qemu-img convert -n -f raw -O raw "$1" "$(qemu_json "$2" "$3" "$4")"
}
log "writing the first $REGION_MB MiB of both LUNs (unreplicated, and through node a)"
write_through "$S/fill.bin" "$U_PORTAL" "$U_IQN" "$U_LUN" || { log "fill of the unreplicated LUN failed"; exit 1; }
write_through "$S/fill.bin" "$(portal a)" "$C_IQN" 0 || { log "fill through node a failed"; exit 1; }
wait_in_sync 60 || { log "cluster not in sync after the fill"; exit 1; }

start_nbd() {  # start_nbd NAME PORTAL IQN LUN : qemu-nbd on $S/nbd-NAME.sock
  local sock=$S/nbd-$1.sock pid _
  qemu-nbd --persistent --shared=4 --cache=none --socket="$sock" "$(qemu_json "$2" "$3" "$4")" >"$S/qemu-nbd-$1.log" 2>&1 &
  pid=$!
  NBD_PIDS+=("$pid")
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    ss -Hxl | grep -qF "$sock" && return 0
    sleep 0.1
  done
  log "qemu-nbd for $1 did not come up: $(tail -2 "$S/qemu-nbd-$1.log")"
  return 1
}
stop_nbds() {
  local p
  for p in "${NBD_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  NBD_PIDS=()
}
start_nbd unrep "$U_PORTAL" "$U_IQN" "$U_LUN" || exit 1
start_nbd rep "$(portal a)" "$C_IQN" 0 || exit 1

# ---- one loopback TCP round trip: 64-byte ping-pong, 127.0.0.1 -> 127.0.0.2 (the replication
# link's addresses), TCP_NODELAY, two processes; median of 2000 after 200 warm-up rounds.
RTT_US=$(timeout 60 python3 - <<'PY'
import os, socket, statistics, time
srv = socket.socket(); srv.bind(("127.0.0.2", 0)); srv.listen(1)
port = srv.getsockname()[1]
pid = os.fork()
if pid == 0:
    c, _ = srv.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        d = c.recv(65536)
        if not d: os._exit(0)
        c.sendall(d)
srv.close()
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.connect(("127.0.0.2", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
msg, out = b"x" * 64, []
for i in range(2200):
    t = time.perf_counter_ns(); s.sendall(msg); got = 0
    while got < len(msg): got += len(s.recv(len(msg) - got))
    if i >= 200: out.append(time.perf_counter_ns() - t)
s.close(); os.waitpid(pid, 0)
print(f"{statistics.median(out) / 1000:.1f} {min(out) / 1000:.1f}")
PY
) || RTT_US=
RTT_MIN=${RTT_US#* } RTT_US=${RTT_US%% *}
KA_SAMPLES=()
for _ in 1 2 3 4 5; do
  set -- $(node_state a) ; [ "${8:-}" != - ] && [ -n "${8:-}" ] && KA_SAMPLES+=("$8")
  sleep 0.6
done
KA_US=-
[ ${#KA_SAMPLES[@]} -gt 0 ] && KA_US=$(printf '%s\n' "${KA_SAMPLES[@]}" | sort -g | awk '{a[NR]=$1} END {if (NR) printf "%.1f", a[int((NR+1)/2)]*1000; else print "-"}')
log "loopback round trip: ${RTT_US:-?} us (TCP ping-pong median); peer keep-alive round trip ${KA_US} us (median of ${#KA_SAMPLES[@]})"

# ---- workloads
WORKLOADS=(
  "randwrite-4k-qd1   --rw=randwrite --bs=4k --iodepth=1"
  "randwrite-4k-qd32  --rw=randwrite --bs=4k --iodepth=32"
  "seqwrite-1m-qd8    --rw=write     --bs=1M --iodepth=8"
)
declare -A RES
VALID=1

fio_values() {  # fio_values JSONFILE : "iops MB/s lat_mean_us lat_p99_us" of the write side
  python3 - "$1" <<'PY'
import json, sys
w = json.load(open(sys.argv[1]))["jobs"][0]["write"]
lat = w["lat_ns"]
p99 = lat.get("percentile", {}).get("99.000000")
print(f"{w['iops']:.0f} {w['bw_bytes'] / 1e6:.1f} {lat['mean'] / 1000:.1f} {'-' if p99 is None else f'{p99 / 1000:.1f}'}")
PY
}

run_one() {  # run_one unrep|rep WORKLOAD
  local col=$1 w=$2 name=${2%% *} out before after v
  out=$S/$col-$name.json
  [ "$col" = rep ] && { before=$(node_state a) || before=; }
  # shellcheck disable=SC2086
  if timeout $((SECS + 60)) fio --name="$name" ${w#* } --ioengine=nbd --uri="nbd+unix:///?socket=$S/nbd-$col.sock" \
      --size=${REGION_MB}M --runtime="$SECS" --time_based --ramp_time=1 --lat_percentiles=1 \
      --output-format=json --output="$out" >/dev/null 2>"$out.err" && [ -s "$out" ] && v=$(fio_values "$out"); then
    set -- $v
    RES[$col,$name,iops]=$1 RES[$col,$name,mbs]=$2 RES[$col,$name,lat]=$3 RES[$col,$name,p99]=$4
  else
    log "$col $name: fio failed: $(tail -2 "$out.err")"
    return 1
  fi
  if [ "$col" = rep ]; then
    # The figure counts only if the writes were replicated: the peer stayed connected and in
    # sync, and writes_replicated grew.
    after=$(node_state a) || after=
    set -- $before; local wb=${7:-0}
    set -- $after
    if [ "${1:-}" != Connected ] || [ "${3:-}" != UpToDate ] || [ "${4:-1}" != 0 ] || [ "${7:-0}" -le "$wb" ]; then
      log "rep $name: replication was not in effect during the run (status after: ${after:-unreachable}); figures marked !"
      RES[$col,$name,bad]=1 VALID=0
    fi
  fi
  log "$col $name: ${RES[$col,$name,iops]} IOPS, ${RES[$col,$name,mbs]} MB/s, lat mean ${RES[$col,$name,lat]} us p99 ${RES[$col,$name,p99]} us"
}

i=0
for w in "${WORKLOADS[@]}"; do
  if [ $((i % 2)) = 0 ]; then order="unrep rep"; else order="rep unrep"; fi
  for col in $order; do run_one "$col" "$w"; done
  i=$((i + 1))
done
stop_nbds
stop_target "$U_PORT"    # the unreplicated target is done; the resync runs without it

# ---- resync: b down, RESYNC_MB written through a, b up again, time the bitmap resync
RESYNC_MBS=- RESYNC_E2E=- RESYNC_POLL=- RESYNC_LOG=- RESYNC_B=- RESYNC_NOTE=
resync() {
  local st b0 oos lines t0 t1 b1 _
  wait_in_sync 60 || { RESYNC_NOTE="cluster not in sync before the resync test"; return 1; }
  set -- $(node_state a); b0=$5
  log "resync: stopping node b (SIGTERM)"
  node_stop b
  for _ in $(seq 100); do set -- $(node_state a); [ "${1:-}" != Connected ] && break; sleep 0.1; done
  log "resync: writing $RESYNC_MB MiB of random data through node a while b is down"
  write_through "$S/resync.bin" "$(portal a)" "$C_IQN" 0 || { RESYNC_NOTE="write through node a failed"; return 1; }
  set -- $(node_state a); oos=${4:-0}
  log "resync: node a has $oos bytes out of sync (peer: ${1:-?} ${3:-?})"
  [ "$oos" -gt 0 ] || { RESYNC_NOTE="nothing out of sync after writing with b down"; return 1; }
  lines=$(wc -l <"$S/a.log")
  t0=$(date +%s.%N)
  node_spawn b    # not node_start: its wait for b's control endpoint would hide the first polls
  log "resync: node b started again (pid ${NODE_PID[b]})"
  # Poll a's status. The resync started after the last poll that saw the peer not yet connected
  # (ts: when that poll was sent) and ended before the first poll that saw it in sync returned
  # (t1): t1 - ts is an upper bound of the resync's duration.
  local end=$((SECONDS + 180)) back=0 ts='' sent now
  while [ $SECONDS -lt $end ]; do
    sent=$(date +%s.%N)
    st=$(node_state a) || st=
    now=$(date +%s.%N)
    if state_in_sync "$st"; then back=1; break; fi
    case ${st%% *} in SyncSource | Connected) ;; *) ts=$sent ;; esac
    node_alive b || break
    sleep 0.05
  done
  t1=$now
  [ $back = 1 ] || { RESYNC_NOTE="not back in sync within 180 s: a: $(node_state a)"; return 1; }
  set -- $(node_state a); b1=$5
  RESYNC_B=$((b1 - b0))
  RESYNC_E2E=$(awk -v b="$RESYNC_B" -v a="$t0" -v z="$t1" 'BEGIN { printf "%.1f", b / (z - a) / 1e6 }')
  [ -n "$ts" ] && RESYNC_POLL=$(awk -v b="$RESYNC_B" -v a="$ts" -v z="$t1" 'BEGIN { printf ">= %.1f MB/s (done within %.2f s)", b / (z - a) / 1e6, z - a }')
  # Start and end of the resync from node a's log lines of this restart (millisecond timestamps):
  #   2026-11-27T14:13:32.097 INFO  vol0: resync to b starting: 256.0 MiB to copy
  #   2026-11-27T14:13:32.525 INFO  vol0: resync to b finished: 256.0 MiB sent in 0.4 s
  RESYNC_MBS=$(tail -n +"$((lines + 1))" "$S/a.log" | python3 -c '
import re, sys
from datetime import datetime
start = end = None
for line in sys.stdin:
    m = re.match(r"(\S+) +\w+ +.*resync to b (starting|finished)", line)
    if not m: continue
    t = datetime.fromisoformat(m.group(1))
    if m.group(2) == "starting": start = t
    elif start: end = t
b = int(sys.argv[1])
print(f"{b / (end - start).total_seconds() / 1e6:.1f} {(end - start).total_seconds():.3f}" if start and end and end > start else "- -")
' "$RESYNC_B") || RESYNC_MBS="- -"
  RESYNC_LOG=$(tail -n +"$((lines + 1))" "$S/a.log" | grep -m1 "resync to b finished" | sed 's/.*resync to b finished: //')
  local blog; blog=$(grep "resync from a finished" "$S/b.log" | tail -1 | sed 's/.*resync from a finished: //')
  log "resync: $RESYNC_B bytes resynced (bytes_resynced delta; $oos were out of sync), $(awk -v a="$t0" -v z="$t1" 'BEGIN{printf "%.2f", z-a}') s from b's start to in-sync"
  log "resync: a's log: $RESYNC_LOG; b's log: $blog"
  [ "$RESYNC_B" = "$oos" ] || RESYNC_NOTE="bytes_resynced delta $RESYNC_B differs from the $oos bytes out of sync before"
}
resync || log "resync: $RESYNC_NOTE"

# ---- the replicas must hold the same data: stop both nodes (SIGTERM) and compare
node_stop a; a_rc=$?; node_stop b; b_rc=$?
[ $a_rc = 1 ] || [ $b_rc = 1 ] && log "a node needed SIGKILL to stop"
if replicas_identical >&2; then SAME=yes; else SAME=NO; VALID=0; fi
log "replicas identical after the run: $SAME"

# ---- table
ratio() { awk -v r="$1" -v u="$2" 'BEGIN { if (r+0 > 0 && u+0 > 0) printf "%.2f", r/u; else print "-" }'; }
delta() { awk -v r="$1" -v u="$2" 'BEGIN { if (r+0 > 0 && u+0 > 0) printf "%+.1f us", r-u; else print "-" }'; }
get() { local v=${RES[$1,$2,$3]:--}; [ -n "${RES[rep,$2,bad]:-}" ] && [ "$1" = rep ] && v="$v!"; echo "$v"; }
Q1=randwrite-4k-qd1 Q32=randwrite-4k-qd32 SEQ=seqwrite-1m-qd8
echo
echo "replication_bench: ${SECS}s per workload and configuration, direct_io $DIRECT_IO, through fio(nbd) -> qemu-nbd -> libiscsi"
echo "unreplicated: single node 127.0.0.1:$U_PORT; replicated: node a $(portal a), protocol C to node b ${NODE_ADDR[b]}"
printf '%-30s %12s %12s %8s %12s\n' workload unreplicated replicated rep/unrep difference
printf '%-30s %12s %12s %8s %12s\n' "$Q1 mean lat (us)" "$(get unrep $Q1 lat)" "$(get rep $Q1 lat)" \
  "$(ratio "${RES[rep,$Q1,lat]:-}" "${RES[unrep,$Q1,lat]:-}")" "$(delta "${RES[rep,$Q1,lat]:-}" "${RES[unrep,$Q1,lat]:-}")"
printf '%-30s %12s %12s %8s %12s\n' "$Q1 p99 lat (us)" "$(get unrep $Q1 p99)" "$(get rep $Q1 p99)" \
  "$(ratio "${RES[rep,$Q1,p99]:-}" "${RES[unrep,$Q1,p99]:-}")" "$(delta "${RES[rep,$Q1,p99]:-}" "${RES[unrep,$Q1,p99]:-}")"
printf '%-30s %12s %12s %8s %12s\n' "$Q1 IOPS" "$(get unrep $Q1 iops)" "$(get rep $Q1 iops)" \
  "$(ratio "${RES[rep,$Q1,iops]:-}" "${RES[unrep,$Q1,iops]:-}")" ""
printf '%-30s %12s %12s %8s %12s\n' "$Q32 IOPS" "$(get unrep $Q32 iops)" "$(get rep $Q32 iops)" \
  "$(ratio "${RES[rep,$Q32,iops]:-}" "${RES[unrep,$Q32,iops]:-}")" ""
printf '%-30s %12s %12s %8s %12s\n' "$SEQ MB/s" "$(get unrep $SEQ mbs)" "$(get rep $SEQ mbs)" \
  "$(ratio "${RES[rep,$SEQ,mbs]:-}" "${RES[unrep,$SEQ,mbs]:-}")" ""
set -- $RESYNC_MBS
printf '%-30s %12s %12s %8s %12s\n' "resync ${RESYNC_MB}M MB/s" - "${1:-}" - ""
echo "resync: ${RESYNC_B} bytes (bytes_resynced delta) in ${2:--} s between a's 'resync to b starting/finished' log lines" \
  "(a's log: ${RESYNC_LOG}); status polls, last not connected to first in sync: ${RESYNC_POLL};" \
  "from b's process start (start-up and reconnect included): ${RESYNC_E2E} MB/s${RESYNC_NOTE:+; NOTE: $RESYNC_NOTE}"
echo "loopback round trip: ${RTT_US:--} us (64-byte TCP ping-pong, median; min ${RTT_MIN:--} us); peer keep-alive round_trip_ms: ${KA_US} us (median, includes the daemons' event loops)"
echo "replicas identical after the run: $SAME"
[ $VALID = 1 ] || echo "WARNING: figures marked ! were measured while replication was not in effect, or the replicas differ"

# ---- the aims
aim1="not measured" aim2="not measured"
if [ -n "${RES[rep,$Q1,lat]:-}" ] && [ -n "${RES[unrep,$Q1,lat]:-}" ] && [ -n "$RTT_US" ] && [ -z "${RES[rep,$Q1,bad]:-}" ]; then
  aim1=$(awk -v r="${RES[rep,$Q1,lat]}" -v u="${RES[unrep,$Q1,lat]}" -v t="$RTT_US" \
    'BEGIN { d = r - u; printf "%s (delta %.1f us, limit %.1f us = RTT %.1f + 50)", (d <= t + 50 ? "met" : "not met"), d, t + 50, t }')
fi
if [ -n "${RES[rep,$SEQ,mbs]:-}" ] && [ -n "${RES[unrep,$SEQ,mbs]:-}" ] && [ -z "${RES[rep,$SEQ,bad]:-}" ]; then
  aim2=$(awk -v r="${RES[rep,$SEQ,mbs]}" -v u="${RES[unrep,$SEQ,mbs]}" \
    'BEGIN { q = r / u; printf "%s (%.0f%%)", (q >= 0.85 ? "met" : "not met"), q * 100 }')
fi
echo "aims: QD1 mean latency delta <= RTT + 50 us: $aim1; sequential replicated >= 85% of unreplicated: $aim2"
