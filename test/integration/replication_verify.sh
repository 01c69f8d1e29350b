#!/usr/bin/env bash
# replication_verify.sh - online verify finds a block corrupted on purpose; the resync repairs it.
# timeout: 300
#
#  1. Data is written through the primary a; then one 4 KiB block of b's backing file is
#     overwritten behind freevsa's back (O_DIRECT, so the daemon reads it too). `freevsa verify`
#     on a compares every block's checksum on both nodes, reports the differing range and marks
#     it out of sync; the resync that follows copies a's data over it: the replicas are
#     bit-identical again and a second verify finds nothing.
#  2. The same, with the verify started on the secondary b.
#  3. Checksum-based resync (resync.checksum: true): with b away, a rewrites blocks with the
#     data they already hold; when b returns, the resync compares checksums and sends nothing.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/lib_cluster.sh"
it_init replication_verify
need_cmd qemu-img qemu-utils qemu-block-extra || exit 2
cluster_init 3450 || exit 2
cluster_config a
cluster_config b
node_start a || exit 2
node_start b || exit 2
check "the cluster is in sync" wait_in_sync 60
head -c 32M /dev/urandom >"$IT_TMP/random.img"
check "qemu-img writes 32 MiB through a" timeout 120 qemu-img convert -n -f raw -O raw "$IT_TMP/random.img" "$(iscsi_url a)"
check "replicas identical before the damage" replicas_identical

corrupt_b() {  # corrupt_b OFFSET : 4 KiB of garbage into b's data area, past the page cache
  head -c 4096 /dev/urandom | dd of="$(backing_file b)" bs=4096 seek=$(($1 / 4096)) conv=notrunc oflag=direct status=none
}
verify_on() {  # verify_on NODE ROUND OFFSET : verify from NODE finds the block at OFFSET and the resync repairs it
  local node=$1 round=$2 offset=$3 out found
  out=$(node_cmd "$node" verify "$C_VOLUME" 2>&1)
  echo "  $out"
  check "$round: verify starts on $node" grep -q "verify started" <<<"$out"
  check "$round: the verify finishes within 60 s" wait_for "$node" "v['verify']['running'] == False and v['verify']['finished_at'] != ''" true 60
  found=$(status_field "$node" "v['verify']['out_of_sync_bytes']")
  check "$round: the verify reports the damaged range out of sync ($found bytes, a 4 KiB block within one 64 KiB compare unit)" \
    [ "${found:-0}" -ge 4096 -a "${found:-0}" -le 65536 ]
  check "$round: the verify checked the whole volume" \
    [ "$(status_field "$node" "v['verify']['checked_bytes']")" = "$C_SIZE_BYTES" ]
  check "$round: $node's log names the differing range" \
    wait_log "$node" "verify: \[$((offset / 65536 * 65536)), \+65536\) differs" 5
  check "$round: the resync repairs it; in sync within 30 s" wait_in_sync 30
  check "$round: the replicas are bit-identical again" replicas_identical
}

# --- 1: verify from the primary
corrupt_b $((8 * 1048576 + 3 * 4096))
check "the damage is real: the replicas differ" not quiet replicas_identical
verify_on a "round 1" $((8 * 1048576 + 3 * 4096))
check "round 1: the repaired block holds the data written through a" \
  quiet vw compare "$IT_TMP/random.img" "$(backing_file b)" --size 32M
out=$(node_cmd a verify "$C_VOLUME" 2>&1)
check "a second verify finishes" wait_for a "v['verify']['running']" false 60
check "a second verify finds nothing out of sync" [ "$(status_field a "v['verify']['out_of_sync_bytes']")" = 0 ]

# --- 2: verify from the secondary
corrupt_b $((20 * 1048576))
verify_on b "round 2" $((20 * 1048576))
check "round 2: the repaired block holds the data written through a" \
  quiet vw compare "$IT_TMP/random.img" "$(backing_file b)" --size 32M

# --- 3: checksum-based resync skips identical blocks
check "a stops" node_stop a
check "b stops" node_stop b
cluster_config a CHECKSUM=true
cluster_config b CHECKSUM=true
node_start a || exit 2
node_start b || exit 2
check "in sync again with checksum-based resync configured" wait_in_sync 60
node_stop b
check "a sees b gone" wait_for a "p['connection']" Connecting 10
out=$(node_cmd a verify "$C_VOLUME" 2>&1); rc=$?
echo "  $out"
check "verify is refused while the peer is away, and says why (exit $rc)" \
  [ $rc -eq 1 -a -n "$(grep "not connected to b" <<<"$out")" ]
check "qemu-img rewrites the same 32 MiB through a while b is away" \
  timeout 120 qemu-img convert -n -f raw -O raw "$IT_TMP/random.img" "$(iscsi_url a)"
dirty=$(status_field a "v['out_of_sync_bytes']")
check "a's bitmap names the rewritten blocks ($dirty bytes)" [ "${dirty:-0}" -ge $((32 * 1048576)) ]
node_start b || exit 2
check "b returns and is in sync within 60 s" wait_in_sync 60
line=$(grep "resync from a finished" "$IT_TMP/b.log" | tail -1)
echo "  b: $line"
check "the checksum-based resync found the blocks identical and copied nothing" \
  grep -Eq "finished: 0 B copied, [0-9.]+ MiB found identical" <<<"$line"
check "replicas identical" replicas_identical
check "a stops on SIGTERM" node_stop a
check "b stops on SIGTERM" node_stop b
it_finish
