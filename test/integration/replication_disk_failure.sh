#!/usr/bin/env bash
# replication_disk_failure.sh - the primary's disk fails; the peer serves, nothing is lost.
# timeout: 300
#
# Node a runs under `ulimit -f` (RLIMIT_FSIZE): every write past 64 MiB of its backing file
# fails with EFBIG, as a disk that fails there would (the metadata is in its own small file).
# A verified writer writes through a across the whole region:
#  - the first failing write detaches a's disk (DRBD's on-io-error detach): the write and every
#    later one (reads too) are served by b's disk, and the initiator never sees an error;
#  - status and logs on both nodes say a's disk is Diskless and why;
#  - every acknowledged write reads back through a, and is on b's disk;
#  - a cannot be promoted (no disk); roles switch to b; a restarts with a working disk, gets a
#    full sync from b, and the replicas are identical.
# Without a peer to serve, the same failure reaches the initiator as sense data (WRITE ERROR).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/lib_cluster.sh"
it_init replication_disk_failure
cluster_init 3480 || exit 2
cluster_config a METADATA=external
cluster_config b METADATA=external
JOURNAL=$IT_TMP/journal
node_start a && node_start b || exit 2
check "the cluster is in sync" wait_in_sync 60
check "a stops" node_stop a
FSIZE_LIMIT_KB=65536 node_start a || exit 2
check "a, restarted with a disk that fails past 64 MiB, is primary and in sync again" wait_in_sync 30

writer_start --portal "$(portal a)" --target "$C_IQN" --offset 0 --size 128M --depth 8 --seconds 60 \
  --failover-timeout 20 --io-timeout 10
check "writes across the failing part are acknowledged (8000)" wait_for_acks 8000 60
check "the writer stops cleanly" writer_stop
summary=$(cat "$WRITER_OUT"); echo "  $summary"
check "the initiator saw no error and no failover" [ "$(field failovers "$summary")" = 0 -a "$(field unacked "$summary")" = 0 ]
check "a's disk is detached: Diskless" [ "$(status_field a "v['disk_state']")" = Diskless ]
check "a's log says its disk failed and b serves" node_log_has a "the local disk failed \(write: File too large\); it is detached: b's disk serves"
check "b sees a's disk as Diskless" wait_for b "p['disk_state']" Diskless 5
check "a is still primary and connected" [ "$(status_field a "v['role'] + ' ' + p['connection']")" = "primary Connected" ]
verify_through a "served by b's disk"
out=$(vw verify --journal "$JOURNAL" --file "$(backing_file b)" 2>&1); rc=$?
echo "$out" | sed 's/^/  /'
check "every acknowledged write is on b's disk" [ $rc -eq 0 ]

out=$(node_cmd a promote "$C_VOLUME" --force 2>&1)
check "demote a" node_cmd a demote "$C_VOLUME"
out=$(node_cmd a promote "$C_VOLUME" --force 2>&1); rc=$?
echo "  $out"
check "a, without a disk, cannot be promoted even with --force" [ $rc -eq 1 -a -n "$(grep Diskless <<<"$out")" ]
check "promote b" node_cmd b promote "$C_VOLUME"
check "a stops" node_stop a
node_start a || exit 2
check "a, restarted with a working disk, gets a full sync from b and is in sync" wait_in_sync 60
check "a's log reports a full sync from b" node_log_has a "resync from b starting: .*\(full sync\)"
check "b is primary" [ "$(status_field b "v['role']")" = primary ]

echo "--- without an UpToDate peer the error reaches the initiator"
check "demote b" node_cmd b demote "$C_VOLUME"
check "a stops" node_stop a
FSIZE_LIMIT_KB=65536 node_start a || exit 2
check "a and b connect" wait_for a "p['connection']" Connected 30
check "promote a" node_cmd a promote "$C_VOLUME"
check "a and b in sync" wait_in_sync 30
check "b stops" node_stop b
check "a sees b gone" wait_for a "p['connection']" Connecting 10
head -c 1M /dev/urandom >"$IT_TMP/one.img"
cat >"$IT_TMP/bin/write_at.py" <<'PYEOF'
"""write_at.py HOST PORT IQN OFFSET FILE : WRITE(16) of FILE at byte OFFSET; prints good or KEY/ASC/ASCQ."""
import struct, sys
import pyiscsi
host, port, iqn, offset, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
data = open(path, "rb").read()
c = pyiscsi.Conn(host, port)
c.login("iqn.2026-01.org.freevsa:it-write", iqn)
cdb = struct.pack(">BBQIBB", 0x8A, 0, offset // 512, len(data) // 512, 0, 0)
for _ in range(3):
    status, _, sense = c.scsi(0, cdb, out=data)
    if status == 0:
        print("good"); break
    if sense[2] & 0x0F != 6:
        print(f"{sense[2] & 0x0F:02X}/{sense[12]:02X}/{sense[13]:02X}"); break
c.logout()
PYEOF
got=$(timeout 30 python3 "$IT_TMP/bin/write_at.py" 127.0.0.1 "$C_ISCSI_PORT" "$C_IQN" $((100 * 1048576)) "$IT_TMP/one.img")
check "a write past the failing offset without a peer fails with MEDIUM ERROR, WRITE ERROR (03/0C/00), got $got" [ "$got" = 03/0C/00 ]
got=$(timeout 30 python3 "$IT_TMP/bin/write_at.py" 127.0.0.1 "$C_ISCSI_PORT" "$C_IQN" $((8 * 1048576)) "$IT_TMP/one.img")
check "a write below it still succeeds, got $got" [ "$got" = good ]
check "a's disk is not detached without a peer" [ "$(status_field a "v['disk_state']")" = UpToDate ]
check "a stops on SIGTERM" node_stop a
it_finish
