#!/usr/bin/env bash
# cluster_chap.sh - CHAP, mutual CHAP and the initiator list on a replicated volume, on both nodes.
# timeout: 180
#
# Both nodes serve vol0 with volumes[].chap, mutual_chap and allowed_initiators, and SendTargets
# with discovery_chap. On each node, with libiscsi's tools:
#  - a login without CHAP, with a wrong secret, or from an initiator outside the list is refused
#    (and the node's log names the cause); with the secret it works;
#  - mutual CHAP: with the target's secret given to libiscsi the login works; a wrong one fails;
#  - discovery: iscsi-ls without the discovery secret is refused, with it lists the target.
# Reinstatement: a live session (our python initiator, fixed ISID) does I/O - writes and reads
# on the primary, INQUIRY on the standby - while logins with its initiator name and ISID but a
# wrong secret or none are refused; its I/O goes on without a single error. A login with the
# right secret and that ISID does replace it (proving the attempts named the same session).
# check-config: the file is quiet on loopback portals and warns for an open volume on 0.0.0.0.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/lib_cluster.sh"
it_init cluster_chap
need_cmd qemu-img qemu-utils qemu-block-extra || exit 2
cluster_init 4240 || exit 2

USER_NAME=vol0-user USER_SECRET=vol0-secret-0123
TARGET_NAME=vol0-target TARGET_SECRET=vol0-target-4567
DISC_NAME=disc-user DISC_SECRET=disc-secret-89ab
PY_IQN=iqn.2026-01.org.freevsa:pyiscsi
OUTSIDER=iqn.2026-01.org.example:outsider
VOLUME_YAML="    chap: {user: $USER_NAME, secret: $USER_SECRET}
    mutual_chap: {user: $TARGET_NAME, secret: $TARGET_SECRET}
    allowed_initiators: [$INITIATOR_IQN, $PY_IQN]"
TOP_YAML="discovery_chap: {user: $DISC_NAME, secret: $DISC_SECRET}"
for n in a b; do cluster_config $n SIZE=64M "VOLUME_YAML=$VOLUME_YAML" "TOP_YAML=$TOP_YAML" || exit 2; done

check_config_quiet() {  # the file is valid and check-config warns about nothing
  local out
  out=$(cd "$IT_TMP" && "$FREEVSA" check-config --config "$1" 2>&1) || { echo "$out" >&2; return 1; }
  not grep -q warning <<<"$out"
}
check "check-config: no warning for a guarded volume on loopback portals" check_config_quiet a.yaml
sed 's/portals: \["127.0.0.1:/portals: ["0.0.0.0:/' "$IT_TMP/a.yaml" | grep -v -e '^    chap:' -e '^    mutual_chap:' \
  -e '^    allowed_initiators:' >"$IT_TMP/open.yaml"
out=$(cd "$IT_TMP" && "$FREEVSA" check-config --config open.yaml 2>&1); rc=$?
echo "$out" | sed 's/^/  /'
[ $rc -eq 0 ] && echo "$out" | grep -q "warning: open.yaml:[0-9]*: volumes\[0\]: volume 'vol0' is open to every initiator that reaches 0.0.0.0:$C_ISCSI_PORT (node a)" &&
  ok "check-config warns, file:line, about an open volume on 0.0.0.0 and still accepts the file" ||
  bad "check-config did not warn about the open volume (exit $rc)"

node_start a && node_start b || { bad "the nodes did not start"; it_finish; }
check "both nodes in sync" wait_in_sync 60
check "a's portal open" wait_port 127.0.0.1 "$C_ISCSI_PORT" 20
check "b's portal open" wait_port 127.0.0.2 "$C_ISCSI_PORT" 20

url() {  # url NODE [USER%SECRET@] [?query]
  echo "iscsi://${2:-}$(portal "$1")/$C_IQN/0${3:-}"
}
inq() {  # inq INITIATOR URL : INQUIRY through libiscsi
  timeout 20 iscsi-inq -i "$1" "$2" >/dev/null 2>&1
}
MUTUAL_QUERY="?target_user=$TARGET_NAME&target_password=$TARGET_SECRET"
WRONG_MUTUAL="?target_user=$TARGET_NAME&target_password=not-the-target-secret"

# libiscsi tests the unit after login (TEST UNIT READY) and gives up on a standby's NOT READY,
# so it logs in to the primary; the standby's logins are checked with our initiator.
libiscsi_checks() {  # libiscsi_checks NODE (the primary)
  local n=$1 out
  check "$n: login without CHAP is refused" refused inq "$INITIATOR_IQN" "$(url $n)"
  check "$n: login with a wrong secret is refused" refused inq "$INITIATOR_IQN" "$(url $n "$USER_NAME%wrong-secret-000@")"
  check "$n: login with the secret works" inq "$INITIATOR_IQN" "$(url $n "$USER_NAME%$USER_SECRET@")"
  check "$n: mutual CHAP with the target's secret works" \
    inq "$INITIATOR_IQN" "$(url $n "$USER_NAME%$USER_SECRET@" "$MUTUAL_QUERY")"
  check "$n: mutual CHAP with a wrong target secret fails" \
    refused inq "$INITIATOR_IQN" "$(url $n "$USER_NAME%$USER_SECRET@" "$WRONG_MUTUAL")"
  check "$n: an initiator outside allowed_initiators is refused, even with the secret" \
    refused inq "$OUTSIDER" "$(url $n "$USER_NAME%$USER_SECRET@")"
  check "$n: qemu-img with the secret sees the volume's size" test "$(qemu_size $n "data=$USER_SECRET")" = "$C_SIZE_BYTES"
  check "$n: qemu-img with a wrong secret is refused" refused qemu_size $n "data=wrong-secret-000"
  check "$n: the log names the refused initiator" node_log_has $n "login refused.*'$OUTSIDER'.*not in the target's allowed list"
  check "$n: the log names the failed authentication" node_log_has $n "login refused \(status 0x0201\).*'$INITIATOR_IQN'"
  check "$n: discovery without the discovery secret is refused" \
    refused timeout 20 iscsi-ls -i "$INITIATOR_IQN" "iscsi://$(portal $n)"
  out=$(timeout 20 iscsi-ls -i "$INITIATOR_IQN" "iscsi://$DISC_NAME%$DISC_SECRET@$(portal $n)" 2>&1)
  grep -q "Target:$C_IQN" <<<"$out" && ok "$n: discovery with the discovery secret lists the target" ||
    bad "$n: discovery with the secret did not list $C_IQN: $out"
}

qemu_size() {  # qemu_size NODE SECRET-OBJECT-DATA : qemu-img's virtual size of the LUN, through CHAP
  local json="json:{\"driver\":\"iscsi\",\"transport\":\"tcp\",\"portal\":\"$(portal "$1")\",\"target\":\"$C_IQN\","
  json+="\"lun\":0,\"initiator-name\":\"$INITIATOR_IQN\",\"user\":\"$USER_NAME\",\"password-secret\":\"chapsec\"}"
  timeout 30 qemu-img info --object "secret,id=chapsec,$2" --output=json "$json" 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["virtual-size"])' 2>/dev/null
}

py_login() {  # py_login NODE INITIATOR [pyiscsi login options]
  local n=$1 initiator=$2; shift 2
  timeout 20 pyiscsi login --portal "$(portal $n)" --target "$C_IQN" --initiator "$initiator" "$@" >/dev/null 2>&1
}
standby_checks() {  # standby_checks NODE
  local n=$1
  check "$n (standby): login without CHAP is refused" refused py_login $n "$PY_IQN"
  check "$n (standby): login with a wrong secret is refused" refused py_login $n "$PY_IQN" --chap "$USER_NAME:wrong-secret-000"
  check "$n (standby): login with the secret and mutual CHAP works" \
    py_login $n "$PY_IQN" --chap "$USER_NAME:$USER_SECRET" --mutual "$TARGET_NAME:$TARGET_SECRET"
  check "$n (standby): mutual CHAP with a wrong target secret fails" \
    refused py_login $n "$PY_IQN" --chap "$USER_NAME:$USER_SECRET" --mutual "$TARGET_NAME:not-the-target-secret"
  check "$n (standby): an initiator outside allowed_initiators is refused" \
    refused py_login $n "$OUTSIDER" --chap "$USER_NAME:$USER_SECRET"
}

cat >"$IT_TMP/bin/reinstate.py" <<'EOF'
"""reinstate.py HOST PORT TARGET INITIATOR USER SECRET MUTUAL_USER MUTUAL_SECRET read-write|inquiry
A live session with a fixed ISID does I/O in a thread while logins with the same initiator
name and ISID but wrong or no credentials are attempted; then one with the right ones."""
import os, struct, sys, threading, time
import pyiscsi

host, port, target, initiator, user, secret, muser, msecret, mode = sys.argv[1:10]
port = int(port)
ISID = bytes([0x80, 0x12, 0x34, 0x56, 0x78, 0x9A])
good = (user, secret)
mutual = (muser, msecret)

live = pyiscsi.Conn(host, port, timeout=10)
live.login(initiator, target, chap=good, mutual=mutual, isid=ISID)
print(f"live session: TSIH {live.tsih}")

state = {"ops": 0, "error": None}
stop = threading.Event()

def one_op(i):
    if mode == "read-write":
        lba = 2048 + i % 64
        block = struct.pack(">Q", i) * 64
        status, _, sense = live.scsi(0, struct.pack(">BBQIBB", 0x8A, 0, lba, 1, 0, 0), out=block)
        if status != 0:
            raise RuntimeError(f"WRITE status {status:#x} sense {sense.hex()}")
        status, data, sense = live.scsi(0, struct.pack(">BBQIBB", 0x88, 0, lba, 1, 0, 0), read_len=512)
        if status != 0 or data != block:
            raise RuntimeError(f"READ status {status:#x}, data {'ok' if data == block else 'differs'}")
    else:
        status, data, _ = live.scsi(0, bytes([0x12, 0, 0, 0, 36, 0]), read_len=36)
        if status != 0 or len(data) < 36:
            raise RuntimeError(f"INQUIRY status {status:#x}, {len(data)} bytes")

def io_loop():
    i = 0
    try:
        while not stop.is_set():
            one_op(i)
            i += 1
            state["ops"] = i
    except Exception as e:  # the live session must not fail at all
        state["error"] = f"operation {i}: {e!r}"

# The new nexus's unit attention (06/29/00) belongs to its first command: take it here.
for _ in range(5):
    status, _, sense = live.scsi(0, bytes(6))
    if status == 0 or len(sense) < 3 or sense[2] & 0x0F != 6:
        break

worker = threading.Thread(target=io_loop)
worker.start()
time.sleep(0.5)
failed = 0
for label, chap in (("a wrong secret", (user, "not-the-secret-1")), ("no CHAP", None),
                    ("a wrong user", ("someone-else", secret))):
    for attempt in range(5):
        before = state["ops"]
        c = pyiscsi.Conn(host, port, timeout=10)
        try:
            c.login(initiator, target, chap=chap, isid=ISID)
            print(f"FAIL: a login with the live session's ISID and {label} was accepted")
            failed += 1
        except pyiscsi.Refused as e:
            if attempt == 0:
                print(f"refused as it should be ({label}): {e}")
        finally:
            c.close()
        time.sleep(0.1)
    if state["error"] is not None:
        break
time.sleep(0.5)
ops_before_stop = state["ops"]
stop.set()
worker.join(30)
if state["error"] is not None:
    print(f"FAIL: the live session broke after the refused logins: {state['error']}")
    sys.exit(1)
if failed or ops_before_stop < 20:
    print(f"FAIL: {failed} accepted, {ops_before_stop} operations")
    sys.exit(1)
print(f"live session kept working: {ops_before_stop} operations, no error")

# The control: with the right secret the same ISID reinstates, and the live session ends.
new = pyiscsi.Conn(host, port, timeout=10)
new.login(initiator, target, chap=good, mutual=mutual, isid=ISID)
try:
    for i in range(50):
        one_op(i)
        time.sleep(0.1)
    print("FAIL: the old session survived a real reinstatement; the attempts may not have named it")
    sys.exit(1)
except (EOFError, OSError, RuntimeError, ValueError) as e:
    print(f"authenticated reinstatement replaced the live session ({type(e).__name__})")
new.logout()
new.close()
EOF

reinstatement() {  # reinstatement NODE read-write|inquiry
  local n=$1 mode=$2 out rc before
  before=$(grep -c 'session reinstated' "$IT_TMP/$n.log")
  out=$(timeout 90 python3 "$IT_TMP/bin/reinstate.py" "${NODE_ADDR[$n]}" "$C_ISCSI_PORT" "$C_IQN" "$PY_IQN" \
    "$USER_NAME" "$USER_SECRET" "$TARGET_NAME" "$TARGET_SECRET" "$mode" 2>&1); rc=$?
  echo "$out" | sed 's/^/  /'
  [ $rc -eq 0 ] && ok "$n: unauthenticated reinstatement attempts leave the live session doing $mode I/O" ||
    bad "$n: reinstatement attempts disturbed the live session or were accepted (exit $rc)"
  check "$n: only the authenticated login reinstated the session" \
    test "$(grep -c 'session reinstated' "$IT_TMP/$n.log")" -eq $((before + 1))
}

log "a is primary"
libiscsi_checks a
standby_checks b
reinstatement a read-write
reinstatement b inquiry

log "roles switch: b becomes primary"
check "demote a" node_cmd a demote "$C_VOLUME"
check "promote b" node_cmd b promote "$C_VOLUME"
check "b is primary" wait_for b "v['role']" primary 20
libiscsi_checks b
standby_checks a
reinstatement b read-write
reinstatement a inquiry

check "the nodes are still in sync" wait_in_sync 30
check "a stops on SIGTERM" node_stop a
check "b stops on SIGTERM" node_stop b
it_finish
