#!/usr/bin/env bash
# bench.sh - freevsa against tgtd on the same backing file, same run, same client.
#
# Client: fio's nbd ioengine -> qemu-nbd (unix socket) -> qemu's libiscsi driver -> target.
# Debian's fio has no libiscsi engine (fio --enghelp lists nbd, libaio, ... but not libiscsi), and
# qemu-img bench only steps through sequential offsets; this chain gives real random offsets and
# real queue depth on the iSCSI side (qemu-nbd keeps up to the NBD client's depth in flight).
# The chain costs the same for both targets: compare the ratio column, not absolute figures.
# See bench/README.md.
#
#   bench/bench.sh            prints one line per workload: raw file, freevsa, tgtd, freevsa/tgtd
# Environment: BENCH_SECONDS=10 (per workload), BENCH_IMPLS="freevsa tgtd", BENCH_RAW=1 (fio with
# libaio on the file itself as a third column), FREEVSA=path, BENCH_DIR (scratch, default mktemp).
# Ports 3361 (freevsa) and 3362 (tgtd), started one after the other, never at once.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../test/integration/lib.sh"
it_init bench
need_cmd fio fio || exit 2
need_cmd qemu-nbd qemu-utils qemu-block-extra || exit 2
SECS=${BENCH_SECONDS:-10}
IMPLS=${BENCH_IMPLS:-freevsa freevsa-buffered tgtd}
REGION=256M     # the part of the LUN the workloads touch; filled with data before any run

export LUN_FILE=$IT_TMP/backing.img LUN_SIZE=1G
truncate -s 1G "$LUN_FILE"
log "filling the first $REGION of the backing file with random data"
head -c 256M /dev/urandom | dd of="$LUN_FILE" bs=1M conv=notrunc status=none

WORKLOADS=(
  "randread-4k-qd1    --rw=randread  --bs=4k --iodepth=1"
  "randread-4k-qd32   --rw=randread  --bs=4k --iodepth=32"
  "randwrite-4k-qd1   --rw=randwrite --bs=4k --iodepth=1"
  "randwrite-4k-qd32  --rw=randwrite --bs=4k --iodepth=32"
  "seqread-1m-qd8     --rw=read      --bs=1M --iodepth=8"
  "seqwrite-1m-qd8    --rw=write     --bs=1M --iodepth=8"
)
declare -A RES

fio_value() {  # fio_value JSONFILE BS : IOPS for 4k workloads, MB/s for 1M workloads
  python3 - "$1" "$2" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
r, w = j["read"], j["write"]
if sys.argv[2] == "4k":
    print(f"{r['iops'] + w['iops']:.0f}")
else:
    print(f"{(r['bw_bytes'] + w['bw_bytes']) / 1e6:.1f}")
PY
}

run_col() {  # run_col COLUMN ARGS-STRING
  local col=$1 args=$2 w name bs out
  for w in "${WORKLOADS[@]}"; do
    name=${w%% *}
    bs=4k; [[ $w == *--bs=1M* ]] && bs=1M
    out=$IT_TMP/$col-$name.json
    # shellcheck disable=SC2086
    if timeout $((SECS + 60)) fio --name="$name" ${w#* } $args --size=$REGION --runtime="$SECS" --time_based \
        --ramp_time=1 --output-format=json --output="$out" >/dev/null 2>"$out.err" && [ -s "$out" ]; then
      RES[$col,$name]=$(fio_value "$out" $bs)
    else
      RES[$col,$name]=err; log "$col $name: fio failed: $(tail -2 "$out.err")"
    fi
    log "$col $name: ${RES[$col,$name]}"
  done
}

if [ "${BENCH_RAW:-1}" = 1 ]; then
  log "raw file: fio libaio O_DIRECT on $LUN_FILE"
  run_col raw "--ioengine=libaio --direct=1 --filename=$LUN_FILE"
fi

port=3361
for impl in $IMPLS; do
  if [ "${impl%-buffered}" = freevsa ] && [ ! -x "$FREEVSA" ]; then
    log "freevsa not built ($FREEVSA): column left empty"; port=$((port + 1)); continue
  fi
  # freevsa-buffered: the same binary with direct_io off, which is what tgtd's rdwr store does
  # (page cache, fdatasync on SYNCHRONIZE CACHE): the like-for-like comparison with tgtd.
  if [ "$impl" = freevsa-buffered ]; then
    DIRECT_IO=false start_target $port freevsa || { log "$impl did not start"; port=$((port + 1)); continue; }
  elif ! start_target $port "$impl"; then log "$impl did not start"; port=$((port + 1)); continue; fi
  sock=$IT_TMP/nbd-$impl.sock
  qemu-nbd --persistent --shared=4 --cache=none --socket="$sock" \
    "json:{\"driver\":\"raw\",\"file\":{\"driver\":\"iscsi\",\"transport\":\"tcp\",\"portal\":\"$T_PORTAL\",\"target\":\"$T_IQN\",\"lun\":$T_LUN,\"initiator-name\":\"$INITIATOR_IQN\"}}" \
    >"$IT_TMP/qemu-nbd-$impl.log" 2>&1 &
  nbd_pid=$!
  up=0
  for _ in $(seq 100); do
    kill -0 $nbd_pid 2>/dev/null || break
    ss -Hxl | grep -qF "$sock" && { up=1; break; }
    sleep 0.1
  done
  if [ $up = 1 ]; then
    log "$impl: fio nbd -> qemu-nbd -> $T_URL"
    run_col "$impl" "--ioengine=nbd --uri=nbd+unix:///?socket=$sock"
  else
    log "$impl: qemu-nbd did not come up: $(tail -2 "$IT_TMP/qemu-nbd-$impl.log")"
  fi
  kill "$nbd_pid" 2>/dev/null; wait "$nbd_pid" 2>/dev/null
  stop_target $port
  port=$((port + 1))
done

echo
echo "bench: ${SECS}s per workload, 4k lines in IOPS, 1M lines in MB/s; iSCSI columns through fio(nbd) -> qemu-nbd -> libiscsi"
printf '%-18s %10s %10s %10s %10s %8s %8s\n' workload raw-file freevsa fv-buffer tgtd fv/tgtd fvb/tgtd
for w in "${WORKLOADS[@]}"; do
  name=${w%% *}
  f=${RES[freevsa,$name]:--} b=${RES[freevsa-buffered,$name]:--} t=${RES[tgtd,$name]:--} r=${RES[raw,$name]:--}
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf "%.2f", a/b; else print "-" }'; }
  printf '%-18s %10s %10s %10s %10s %8s %8s\n' "$name" "$r" "$f" "$b" "$t" "$(ratio "$f" "$t")" "$(ratio "$b" "$t")"
done
