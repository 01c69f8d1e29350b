#!/usr/bin/env bash
# replication_basic.sh - two nodes hold identical replicas; roles switch by hand.
# timeout: 300
#
# Nodes a (127.0.0.1) and b (127.0.0.2), each a freevsa process, replicate a 256 MiB volume
# (protocol C). The first start runs the initial sync and makes a primary. Then:
#  - qemu-img writes a random image through a's portal; both backing files' data areas are
#    bit-identical afterwards; reading back through a gives the image;
#  - b, the standby, answers INQUIRY but refuses media access with NOT READY 04/0B (ALUA
#    standby), never LOGICAL UNIT NOT SUPPORTED;
#  - promote on b is refused while a is primary; demote a, promote b: b serves, a answers
#    04/0B; writes through b reach a's disk; switch back;
#  - a clean stop and start of both nodes needs no resync and a is primary again;
#  - `freevsa status` (text and --json) says all of it.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/lib_cluster.sh"
it_init replication_basic
need_cmd qemu-img qemu-utils qemu-block-extra || exit 2
cluster_init 3420 || exit 2
cluster_config a
cluster_config b

node_start a || exit 2
node_start b || exit 2
check "a fresh cluster syncs initially and is in sync within 60 s" wait_in_sync 60
check "a, the initial primary, is primary" [ "$(status_field a "v['role']")" = primary ]
check "b is secondary and sees a as primary" \
  [ "$(status_field b "v['role'] + ' ' + p['role']")" = "secondary primary" ]
out=$(node_cmd a status); echo "$out" | sed 's/^/  /'
check "status names the protocol and what it means" grep -q "protocol C: a write completes when both disks have it" <<<"$out"
check "status shows both nodes and their disk states" grep -Eq "^  b .*Connected +secondary +UpToDate" <<<"$out"

# --- writes through the primary reach both disks
head -c 48M /dev/urandom >"$IT_TMP/random.img"
check "qemu-img writes 48 MiB through a" timeout 120 qemu-img convert -n -f raw -O raw "$IT_TMP/random.img" "$(iscsi_url a)"
check "reading back through a gives the same data" \
  timeout 120 python3 "$REPO_ROOT/test/tools/verified_writer.py" compare "$IT_TMP/random.img" "$(iscsi_url a)" --size 48M
check "the replicas' data areas are bit-identical (256 MiB compared)" replicas_identical
writes=$(status_field a "v['writes_replicated']")
check "a counted replicated writes ($writes)" [ "${writes:-0}" -gt 0 ]

# --- UNMAP and COMPARE AND WRITE (ATS) through the primary replicate too
cat >"$IT_TMP/bin/unmap_and_ats.py" <<'PYEOF'
"""unmap_and_ats.py HOST PORT IQN : UNMAP 1 MiB at 8 MiB, then an ATS on block 100: compare with
what is there, write 0xA5; then an ATS that must miscompare. Prints one word per step."""
import struct, sys
import pyiscsi
host, port, iqn = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = pyiscsi.Conn(host, port)
c.login("iqn.2026-01.org.freevsa:it-vaai", iqn)
def run(cdb, read_len=0, out=b""):
    for _ in range(3):
        status, data, sense = c.scsi(0, cdb, read_len=read_len, out=out)
        if status != 2 or sense[2] & 0x0F != 6:
            return status, data, sense
    return status, data, sense
params = struct.pack(">HH4x", 22, 16) + struct.pack(">QI4x", 8 * 2048, 2048)
status, _, _ = run(struct.pack(">BB4xBHB", 0x42, 0, 0, len(params), 0), out=params)
print("unmap-good" if status == 0 else f"unmap-status-{status}")
status, old, _ = run(struct.pack(">BBQIBB", 0x88, 0, 100, 1, 0, 0), read_len=512)
ats = struct.pack(">BBQ3xBBB", 0x89, 0, 100, 1, 0, 0)
status, _, _ = run(ats, out=old + bytes([0xA5]) * 512)
print("ats-good" if status == 0 else f"ats-status-{status}")
status, _, sense = run(ats, out=old + bytes([0x5A]) * 512)
print("ats-miscompare" if status == 2 and sense[2] & 0x0F == 0x0E else f"ats2-status-{status}")
c.logout()
PYEOF
out=$(timeout 60 python3 "$IT_TMP/bin/unmap_and_ats.py" 127.0.0.1 "$C_ISCSI_PORT" "$C_IQN" | tr '\n' ' ')
check "UNMAP, a matching ATS and a miscompared ATS through a ($out)" [ "$out" = "unmap-good ats-good ats-miscompare " ]
check "the replicas are identical after UNMAP and ATS" replicas_identical
hole_at() {  # hole_at FILE OFFSET : the file has a hole at OFFSET
  python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); sys.exit(0 if os.lseek(fd, int(sys.argv[2]), os.SEEK_HOLE) == int(sys.argv[2]) else 1)' "$1" "$2"
}
check "the unmapped range is a hole in a's file" hole_at "$(backing_file a)" $((8 * 1048576))
check "and in b's file: UNMAP replicated as a discard" hole_at "$(backing_file b)" $((8 * 1048576))
check "b's block 100 holds the ATS's data" \
  python3 -c 'import sys; d = open(sys.argv[1], "rb").read()[100*512:101*512]; sys.exit(0 if d == bytes([0xA5]) * 512 else 1)' "$(backing_file b)"

# --- the standby refuses media access with the sense a multipath initiator understands
cat >"$IT_TMP/bin/sense_of_read.py" <<'PYEOF'
"""sense_of_read.py HOST PORT IQN [inquiry] : READ(16) of one block (or a standard INQUIRY) on
LUN 0; prints 'good' or KEY/ASC/ASCQ. libiscsi's tools cannot ask a standby: their login ends
with a TEST UNIT READY that must succeed."""
import struct, sys
import pyiscsi
host, port, iqn = sys.argv[1], int(sys.argv[2]), sys.argv[3]
inquiry = sys.argv[4:] == ["inquiry"]
c = pyiscsi.Conn(host, port)
c.login("iqn.2026-01.org.freevsa:it-sense", iqn)
cdb = bytes([0x12, 0, 0, 0, 96, 0]) if inquiry else struct.pack(">BBQIBB", 0x88, 0, 0, 1, 0, 0)
for _ in range(3):   # the first command after login may meet a unit attention
    status, data, sense = c.scsi(0, cdb, read_len=96 if inquiry else 512)
    if status == 0:
        print("good"); break
    key, asc, ascq = sense[2] & 0x0F, sense[12], sense[13]
    if key != 6:
        print(f"{key:02X}/{asc:02X}/{ascq:02X}"); break
c.logout()
PYEOF
sense_of_read() { timeout 30 python3 "$IT_TMP/bin/sense_of_read.py" "${NODE_ADDR[$1]}" "$C_ISCSI_PORT" "$C_IQN" "${@:2}"; }
check "the primary serves a READ" [ "$(sense_of_read a)" = good ]
check "libiscsi's iscsi-inq answers on the primary" quiet timeout 30 iscsi-inq -i "$INITIATOR_IQN" "$(iscsi_url a)"
check "libiscsi's READ CAPACITY(16) on the primary gives the volume's size" \
  [ "$(timeout 30 iscsi-readcapacity16 -s -i "$INITIATOR_IQN" "$(iscsi_url a)")" = "$C_SIZE_BYTES" ]
check "b answers INQUIRY as a standby" [ "$(sense_of_read b inquiry)" = good ]
got=$(sense_of_read b)
check "b refuses a READ with NOT READY, target port in standby state (02/04/0B), got $got" [ "$got" = 02/04/0B ]

# --- ALUA: each node is a target port group; the primary's is active/optimized
cat >"$IT_TMP/bin/port_groups.py" <<'PYEOF'
"""port_groups.py HOST PORT IQN : REPORT TARGET PORT GROUPS on LUN 0, printed as
'group:state[*]' (state AO, S or T; * = preferred), this node's group first."""
import struct, sys
import pyiscsi
host, port, iqn = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = pyiscsi.Conn(host, port)
c.login("iqn.2026-01.org.freevsa:it-alua", iqn)
cdb = struct.pack(">BB4xIBB", 0xA3, 0x0A, 512, 0, 0)
for _ in range(3):
    status, data, sense = c.scsi(0, cdb, read_len=512)
    if status == 0:
        break
names = {0x0: "AO", 0x2: "S", 0xF: "T"}
out, at = [], 4
while at + 12 <= 4 + struct.unpack(">I", data[:4])[0]:
    out.append(f"{struct.unpack('>H', data[at + 2:at + 4])[0]}:{names.get(data[at] & 0x0F, '?')}"
               + ("*" if data[at] & 0x80 else ""))
    at += 8 + 4 * data[at + 7]
print(" ".join(out))
c.logout()
PYEOF
port_groups() { timeout 30 python3 "$IT_TMP/bin/port_groups.py" "${NODE_ADDR[$1]}" "$C_ISCSI_PORT" "$C_IQN"; }
check "ALUA on a: its group 1 active/optimized and preferred, b's group 2 standby ($(port_groups a))" \
  [ "$(port_groups a)" = "1:AO* 2:S" ]
check "ALUA on b, a standby path, answers too: its group 2 standby, a's group 1 active ($(port_groups b))" \
  [ "$(port_groups b)" = "2:S 1:AO*" ]

# --- roles by hand
out=$(node_cmd b promote "$C_VOLUME" 2>&1); rc=$?
echo "  $out"
check "promote on b is refused while a is primary (exit $rc)" [ $rc -eq 1 ]
check "the refusal says to demote a first" grep -q "demote it there first" <<<"$out"
check "demote a" node_cmd a demote "$C_VOLUME"
check "b sees a as secondary" wait_for b "p['role']" secondary 10
check "promote b" node_cmd b promote "$C_VOLUME"
check "a sees b as primary" wait_for a "p['role']" primary 10
got=$(sense_of_read a)
check "a, now standby, refuses a READ with 02/04/0B, got $got" [ "$got" = 02/04/0B ]
check "b, now primary, serves a READ" [ "$(sense_of_read b)" = good ]
check "after the switch ALUA on a says b's group is active ($(port_groups a))" [ "$(port_groups a)" = "1:S 2:AO*" ]
head -c 8M /dev/urandom >"$IT_TMP/random2.img"
check "qemu-img writes 8 MiB through b" timeout 60 qemu-img convert -n -f raw -O raw "$IT_TMP/random2.img" "$(iscsi_url b)"
check "writes through b reach a: replicas identical" replicas_identical
check "switch back: demote b" node_cmd b demote "$C_VOLUME"
check "switch back: promote a" node_cmd a promote "$C_VOLUME"
check "in sync after switching back" wait_in_sync 20

# --- a clean restart of both keeps the roles and needs no resync
check "a stops on SIGTERM" node_stop a
check "b stops on SIGTERM" node_stop b
node_start b || exit 2
node_start a || exit 2
check "after a clean restart of both, in sync within 30 s" wait_in_sync 30
check "a, primary when it stopped, is primary again" wait_for a "v['role']" primary 10
check "no resync was needed after the clean restart" [ "$(status_field a "v['bytes_resynced']")" = 0 ]
check "the data written before the restart reads back through a" \
  timeout 120 python3 "$REPO_ROOT/test/tools/verified_writer.py" compare "$IT_TMP/random2.img" "$(iscsi_url a)" --size 8M
check "replicas still identical" replicas_identical
check "a stops on SIGTERM" node_stop a
check "b stops on SIGTERM" node_stop b
check "no node logged an error" not grep -E " ERROR " "$IT_TMP/a.log" "$IT_TMP/b.log"

# --- a new volume declared in sync on both nodes needs no initial sync
rm -rf "$IT_TMP/data" && mkdir -p "$IT_TMP/data/a" "$IT_TMP/data/b"
check "create-md --in-sync on a" node_cmd a create-md "$C_VOLUME" --in-sync
check "create-md --in-sync on b" node_cmd b create-md "$C_VOLUME" --in-sync
out=$(node_cmd b create-md "$C_VOLUME" --in-sync 2>&1); rc=$?
check "create-md refuses to overwrite valid metadata without --force (exit $rc)" [ $rc -eq 1 -a -n "$(grep -e --force <<<"$out")" ]
node_start a || exit 2
node_start b || exit 2
check "two replicas created in sync connect in sync" wait_in_sync 30
check "without copying anything" [ "$(status_field a "v['bytes_resynced']")" = 0 -a "$(status_field b "v['bytes_resynced']")" = 0 ]
check "a stops on SIGTERM" node_stop a
check "b stops on SIGTERM" node_stop b
it_finish
