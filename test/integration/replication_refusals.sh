#!/usr/bin/env bash
# replication_refusals.sh - peers that must not replicate are refused, with errors that name the cause.
# timeout: 300
#
# Each case starts both nodes on fresh files with one difference between their configuration
# files (or their metadata), and checks that they never connect and that both logs and
# `freevsa status` say why:
#  - a wrong shared secret (b, which accepts, finds a's proof wrong; a learns only that it was
#    refused, since an unauthenticated peer is told nothing about b);
#  - a size mismatch;
#  - a volume UUID mismatch (b's replica was created for another cluster);
#  - a shared setting changed in one file only (the protocol), named in the error;
#  - another cluster's name.
# After each refusal, with the difference removed, the same nodes connect and sync: what was
# refused was the difference, not the nodes. Last, a node whose resync was cut short by the
# primary's death is Inconsistent: promoting it is refused unless forced, and the refusal and
# the forced promotion say what may be lost.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/lib_cluster.sh"
it_init replication_refusals
need_cmd qemu-img qemu-utils qemu-block-extra || exit 2
cluster_init 3460 || exit 2

fresh() { node_stop a; node_stop b; rm -rf "$IT_TMP/data"; mkdir -p "$IT_TMP/data/a" "$IT_TMP/data/b"; : >"$IT_TMP/a.log"; : >"$IT_TMP/b.log"; }
refused_case() {  # refused_case NAME REGEX-IN-A REGEX-IN-B : started nodes never connect, logs say why
  local name=$1
  check "$name: a logs the refusal" wait_log a "$2" 15
  check "$name: b logs the refusal" wait_log b "$3" 15
  check "$name: a never connects" [ "$(status_field a "p['connection']")" = Connecting ]
  check "$name: b never connects" [ "$(status_field b "p['connection']")" = Connecting ]
  local err
  err=$(status_field a "p['last_error']")
  echo "  a: last error: $err"
  check "$name: a's status says why" grep -Eq "$2" <<<"$err"
  check "$name: neither node became primary" [ "$(status_field a "v['role']") $(status_field b "v['role']")" = "secondary secondary" ]
}

echo "--- a wrong shared secret"
cluster_config a
cluster_config b SECRET=not-the-cluster-secret-9876543210
node_start a && node_start b || exit 2
refused_case "wrong secret" "refused this node's authentication \(its log says why: cluster.secret" \
  "the proof of node 'a' does not match: the shared secret \(cluster.secret\) differs"
check "wrong secret: no data was exchanged (b's disk is still Inconsistent)" [ "$(status_field b "v['disk_state']")" = Inconsistent ]

echo "--- a size mismatch"
fresh
cluster_config b SIZE=128M
node_start a && node_start b || exit 2
refused_case "size mismatch" "size mismatch: this node's replica holds 268435456 bytes .* b's holds 134217728 bytes" \
  "size mismatch: this node's replica holds 134217728 bytes .* a's holds 268435456 bytes"

echo "--- a volume UUID mismatch"
fresh
cluster_config b CLUSTER=othercluster
check "b's replica is created for another cluster" node_cmd b create-md "$C_VOLUME"
cluster_config b
node_start a && node_start b || exit 2
refused_case "UUID mismatch" "volume UUID mismatch: this node's metadata says [0-9a-f-]+, b's says [0-9a-f-]+" \
  "volume UUID mismatch"

echo "--- a shared setting changed on one node only"
fresh
cluster_config b PROTOCOL=A
node_start a && node_start b || exit 2
refused_case "configuration mismatch" "configuration differs .*protocol" "configuration differs .*protocol"

echo "--- another cluster"
fresh
cluster_config b CLUSTER=othercluster
node_start a && node_start b || exit 2
refused_case "other cluster" "refused this node's authentication \(its log says why: .*the cluster name" \
  "cluster mismatch: node 'a' belongs to cluster 'itcluster', node 'b' to cluster 'othercluster'"

echo "--- promoting a node whose data is not complete"
fresh
cluster_config a RESYNC_RATE=4M
cluster_config b RESYNC_RATE=4M
node_start a && node_start b || exit 2
check "in sync" wait_in_sync 60
node_stop b
head -c 32M /dev/urandom >"$IT_TMP/random.img"
check "32 MiB written through a while b is away" \
  timeout 60 qemu-img convert -n -f raw -O raw "$IT_TMP/random.img" "$(iscsi_url a)"
node_start b || exit 2
check "b's resync starts (4 MiB/s)" wait_for b "p['connection']" SyncTarget 20
node_kill a
check "b sees a gone in the middle of its resync" wait_for b "p['connection']" Connecting 10
check "b's disk is Inconsistent" [ "$(status_field b "v['disk_state']")" = Inconsistent ]
out=$(node_cmd b promote "$C_VOLUME" 2>&1); rc=$?
echo "  $out"
check "promote b is refused (exit $rc): it says what would be lost and how to force it" \
  [ $rc -eq 1 -a -n "$(grep "Inconsistent" <<<"$out" | grep "lost" | grep -e "--force")" ]
out=$(node_cmd b promote "$C_VOLUME" --force 2>&1); rc=$?
echo "  $out"
check "promote b --force succeeds with the warning (exit $rc)" [ $rc -eq 0 -a -n "$(grep "warning: forced" <<<"$out")" ]
check "b is primary" [ "$(status_field b "v['role']")" = primary ]
check "b's log carries the warning" node_log_has b "promote forced: .*Inconsistent"

echo "--- the same nodes, agreeing"
fresh
cluster_config b
node_start a && node_start b || exit 2
check "with matching configurations the nodes connect and sync" wait_in_sync 60
check "a stops on SIGTERM" node_stop a
check "b stops on SIGTERM" node_stop b
it_finish
