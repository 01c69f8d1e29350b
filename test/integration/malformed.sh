#!/usr/bin/env bash
# malformed.sh - bad input never crashes or hangs the target.
#
# Each case below opens its own TCP connection(s) to the target, sends something wrong (python3
# sockets; PDUs built by lib.sh's pyiscsi module), reads whatever comes back for a moment and
# closes. After every case the target process must still be running and a normal libiscsi
# client (iscsi-inq + iscsi-readcapacity16) must get its answer. Every case is bounded (timeout
# 30 s each; random cases use a fixed seed so a failure can be replayed with MALFORMED_SEED).
# At the end freevsa must still stop cleanly on SIGTERM.
# Port 3341. TARGET_IMPL=tgtd runs it against tgtd.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
it_init malformed
start_target 3341 || exit 2
SEED=${MALFORMED_SEED:-20260101}

cat >"$IT_TMP/bin/malformed.py" <<'PYEOF'
import os, random, socket, struct, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyiscsi as P

host, port, case, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
target = sys.argv[5]
lun = int(sys.argv[6])
rnd = random.Random(seed)
INI = "iqn.2026-01.org.freevsa:malformed"

def conn():
    s = socket.create_connection((host, port), timeout=5)
    return s

def drain(s, secs=1.0):
    """Read what the target answers (if anything) for a moment; never raises."""
    end = time.time() + secs
    got = 0
    try:
        s.settimeout(0.2)
        while time.time() < end:
            try:
                b = s.recv(65536)
            except socket.timeout:
                continue
            if not b:
                break
            got += len(b)
    except OSError:
        pass
    return got

def send(s, b):
    try:
        s.sendall(b)
    except OSError:
        pass   # the target may close on us: that is a fine answer

def login_pdu(keys, flags=0x87, dlen=None, isid=b"\x80\x12\x34\x56\x78\x9a", itt=1, cmdsn=1):
    data = P.kv_encode(keys)
    h = P.bhs(0x03, flags, len(data) if dlen is None else dlen, 0, itt, imm=True)
    h[8:14] = isid
    struct.pack_into(">HHII", h, 20, 0, 0, cmdsn, 0)
    return bytes(h), P.pad4(data)

DISC = {"InitiatorName": INI, "SessionType": "Discovery"}
NORMAL = {"InitiatorName": INI, "SessionType": "Normal", "TargetName": target}

def rand_pdu(max_data=65536):
    op = rnd.choice([0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x1c, 0x1e, 0x3f, rnd.randrange(64)])
    h = bytearray(os.urandom(48)) if rnd.random() < 0.3 else P.bhs(op, rnd.randrange(256), 0, rnd.randrange(1 << 16),
                                                                  rnd.randrange(1 << 32), rnd.randrange(1 << 32),
                                                                  rnd.randrange(1 << 32), rnd.randrange(1 << 32))
    h[0] = (h[0] & 0xC0) | op
    dlen = rnd.choice([0, 0, 1, 3, 48, 512, 8192, rnd.randrange(max_data)])
    h[5:8] = dlen.to_bytes(3, "big")
    if rnd.random() < 0.7:
        h[4] = 0           # mostly no AHS, else the random TotalAHSLength stands
    body = bytes(rnd.randrange(256) for _ in range(min(dlen, 256))) + b"\0" * max(0, dlen - 256)
    return bytes(h) + P.pad4(body)

if case == "garbage":
    s = conn(); send(s, os.urandom(4096)); drain(s); s.close()
elif case == "garbage-http":
    s = conn(); send(s, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 4); drain(s); s.close()
elif case == "truncated-bhs":
    h, d = login_pdu(DISC)
    s = conn(); send(s, h[:20]); s.close()
elif case == "truncated-bhs-held":
    h, d = login_pdu(DISC)
    s = conn(); send(s, h[:47]); drain(s, 3); s.close()
elif case == "truncated-data":
    h, d = login_pdu(DISC)
    s = conn(); send(s, h + d[:len(d) // 2]); drain(s, 2); s.close()
elif case == "login-huge-dlen":
    h, d = login_pdu(DISC, dlen=0xFFFFFF)
    s = conn(); send(s, h + d); drain(s, 2); s.close()
elif case == "login-huge-dlen-streamed":
    # claims 16 MiB of login text and actually sends 4 MiB of it: the target must cut it off
    h, _ = login_pdu(DISC, dlen=0xFFFFFF)
    s = conn(); send(s, h)
    chunk = b"A=" + b"x" * 65534
    for _ in range(64):
        try:
            s.sendall(chunk)
        except OSError:
            break
    drain(s, 1); s.close()
elif case == "login-bad-keys":
    s = conn()
    h = P.bhs(0x03, 0x87, 0, 0, 1, imm=True); h[8:14] = b"\x80\0\0\0\0\1"
    data = b"InitiatorName" + b"\xff" * 100 + b"=====\0\0\0=novalue\0" + b"SessionType=" + b"Z" * 5000   # no final NUL
    h[5:8] = len(data).to_bytes(3, "big")
    send(s, bytes(h) + P.pad4(data)); drain(s); s.close()
elif case == "login-unknown-target":
    h, d = login_pdu({"InitiatorName": INI, "SessionType": "Normal", "TargetName": "iqn.2000-01.invalid:nope"})
    s = conn(); send(s, h + d); drain(s); s.close()
elif case == "login-no-initiatorname":
    h, d = login_pdu({"SessionType": "Normal", "TargetName": target})
    s = conn(); send(s, h + d); drain(s); s.close()
elif case == "login-bad-version-stage":
    h, d = login_pdu(DISC, flags=0xFF)          # T=1, C=1, CSG=3, NSG=3: invalid
    h = bytearray(h); h[2] = 0x55; h[3] = 0x44  # unsupported versions
    s = conn(); send(s, bytes(h) + d); drain(s); s.close()
elif case == "scsi-before-login":
    cdb = bytes([0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0])
    h = P.bhs(0x01, 0xC1, 0, P.lun_field(lun), 7, 4096, 1, 0)
    h[32:42] = cdb
    s = conn(); send(s, bytes(h)); drain(s)
    h2 = P.bhs(0x05, 0x80, 512, 0, 7, 0xFFFFFFFF, 0, 0, 0)   # Data-Out before login
    send(s, bytes(h2) + b"\0" * 512); drain(s); s.close()
elif case == "logout-before-login":
    s = conn(); send(s, bytes(P.bhs(0x06, 0x80, 0, 0, 3, 0, 1, 0, imm=True))); drain(s); s.close()
elif case == "ahs-garbage":
    h, d = login_pdu(DISC)
    h = bytearray(h); h[4] = 255            # 1020 bytes of AHS on a login
    s = conn(); send(s, bytes(h) + os.urandom(1020) + d); drain(s); s.close()
elif case == "random-after-discovery-login":
    for i in range(8):
        c = P.Conn(host, port, timeout=5)
        c.login(INI, None)
        for _ in range(20):
            send(c.s, rand_pdu())
        drain(c.s, 0.5); c.close()
elif case == "random-after-normal-login":
    for i in range(8):
        c = P.Conn(host, port, timeout=5)
        c.login(INI, target)
        for _ in range(20):
            send(c.s, rand_pdu())
        drain(c.s, 0.5); c.close()
elif case == "bad-scsi-after-login":
    c = P.Conn(host, port, timeout=5)
    c.login(INI, target)
    s = c.s
    itt = 100
    def cmd(cdb, flags=0xC1, explen=512, lunv=lun, data=b""):
        global itt
        itt += 1
        h = P.bhs(0x01, flags, len(data), P.lun_field(lunv), itt, explen, c.cmdsn, c.expstatsn)
        h[32:32 + len(cdb)] = cdb
        c.cmdsn += 1
        send(s, bytes(h) + P.pad4(data))
    cmd(bytes([0x28, 0, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0]))          # READ(10) beyond the end
    cmd(bytes([0x88, 0] + [0xff] * 8 + [0xff] * 4 + [0, 0]), explen=1 << 31)  # READ(16) huge
    cmd(bytes([0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0]), flags=0xA1, explen=512, data=b"x" * 4000)  # more data than said
    cmd(bytes([0x2a, 0, 0, 0, 0, 0, 0, 0x10, 0, 0]), flags=0xA1, explen=0)   # write 4096 blocks, no buffer
    cmd(bytes([0xff] * 16))                                                # unknown opcode
    cmd(bytes([0x12, 0, 0, 0, 0, 0]), lunv=200)                            # non-existent LUN
    cmd(bytes([0x28] + [0] * 9), flags=0xE1)                               # read+write bits with a READ
    h = P.bhs(0x05, 0x80, 512, 0, 0xdeadbeef, 0x12345678, 0, c.expstatsn)  # Data-Out for nothing
    send(s, bytes(h) + b"\0" * 512)
    h = P.bhs(0x02, 0x80 | 5, 0, 0, 999, 0xdeadbeef, c.cmdsn, c.expstatsn)  # TMF ABORT TASK unknown / LUN reset
    send(s, bytes(h))
    h = P.bhs(0x00, 0x80, 0xFFFFFF, 0, 1000, 0xFFFFFFFF, c.cmdsn, c.expstatsn)  # NOP-Out says 16 MiB follows
    send(s, bytes(h) + b"\0" * 1024)
    drain(s, 2); c.close()
elif case == "cmdsn-chaos":
    c = P.Conn(host, port, timeout=5)
    c.login(INI, target)
    for sn in (0, 0xFFFFFFFF, c.cmdsn + 1000, c.cmdsn - 5, c.cmdsn):
        h = P.bhs(0x01, 0x81, 0, P.lun_field(lun), sn & 0xFFFF, 0, sn & 0xFFFFFFFF, c.expstatsn)
        send(c.s, bytes(h))   # TEST UNIT READY with odd CmdSNs
    drain(c.s, 1); c.close()
elif case == "many-idle-connections":
    socks = []
    for _ in range(64):
        try:
            socks.append(conn())
        except OSError:
            break
    h, d = login_pdu(DISC)
    for s in socks[::2]:
        send(s, h[:10])
    time.sleep(2)
    for s in socks:
        s.close()
elif case == "reset-mid-login":
    h, d = login_pdu(NORMAL)
    s = conn(); send(s, h)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); s.close()   # RST
else:
    print("unknown case", case); sys.exit(2)
PYEOF

CASES="garbage garbage-http truncated-bhs truncated-bhs-held truncated-data login-huge-dlen
login-huge-dlen-streamed login-bad-keys login-unknown-target login-no-initiatorname
login-bad-version-stage scsi-before-login logout-before-login ahs-garbage random-after-discovery-login
random-after-normal-login bad-scsi-after-login cmdsn-chaos many-idle-connections reset-mid-login"
for c in $CASES; do
  out=$(timeout 30 python3 "$IT_TMP/bin/malformed.py" 127.0.0.1 "$T_PORT" "$c" "$SEED" "$T_IQN" "$T_LUN" 2>&1); rc=$?
  if [ $rc -eq 124 ]; then
    bad "$c: the case itself hung for 30 s (target never answered nor closed?)"
  elif [ $rc -ne 0 ]; then
    echo "  ($c: client ended with exit $rc: $(echo "$out" | tail -1))"
  fi
  if target_alive 2>"$IT_TMP/alive.err"; then
    ok "$c: target survived and still serves iscsi-inq"
  else
    bad "$c: target down or not answering after this input: $(cat "$IT_TMP/alive.err")"
    tail -20 "$T_LOG"
    kill -0 "$T_PID" 2>/dev/null || { stop_target; LUN_FILE=$T_FILE start_target "$T_PORT" || break; }
  fi
done
stop_target; rc=$?
[ "$T_IMPL" = tgtd ] || { [ $rc -eq 0 ] && ok "target stopped on SIGTERM after the malformed input" ||
  bad "target did not stop cleanly after the malformed input (rc $rc)"; }
it_finish
