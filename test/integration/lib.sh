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
#   pyiscsi ARGS...                 our small python iSCSI initiator (data digest, mutual CHAP, raw PDUs)
#
# Environment:
#   TARGET_IMPL=freevsa|tgtd   which target start_target starts (default freevsa); tgtd is the
#                              stand-in used while freevsa is being written and the reference
#                              in CONFORMANCE_COMPARE / bench
#   FREEVSA=path               the daemon (default build/daemon/freevsa under the repo root)
#   LUN_SIZE=1G BLOCK_SIZE=512 LUN_FILE=path (default: a new sparse file in $IT_TMP)
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
    echo "portals: [\"127.0.0.1:$port\"]"
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
# what libiscsi/qemu cannot: DataDigest=CRC32C, mutual CHAP with a data round trip, and raw PDUs.
# it_init puts it on PATH as $IT_TMP/bin/pyiscsi (so timeout can run it); exit 1 means refused.
_install_pyiscsi() {
  mkdir -p "$IT_TMP/bin"
  _write_pyiscsi "$IT_TMP/bin/pyiscsi.py"
  printf '#!/bin/sh\nexec python3 "%s" "$@"\n' "$IT_TMP/bin/pyiscsi.py" >"$IT_TMP/bin/pyiscsi"
  chmod +x "$IT_TMP/bin/pyiscsi"
  PATH=$IT_TMP/bin:$PATH
}
_write_pyiscsi() {
cat >"$1" <<'PYEOF'
"""Minimal iSCSI initiator (RFC 7143) for freevsa's integration tests.

  pyiscsi.py login     --portal H:P [--target IQN] [--chap U:S] [--mutual U:S] [--hd] [--dd]
  pyiscsi.py roundtrip --portal H:P --target IQN --lun N --file F --offset BYTES [--chap ..] [--mutual ..] [--hd] [--dd]
  (as a module: Conn, bhs(), crc32c() for building raw PDUs)
Exit 0 on success, 1 when the target refused or the data did not match, 2 on a protocol error.
"""
import argparse, hashlib, os, socket, struct, sys

def _table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t
_T = _table()

def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    t = _T
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF

def pad4(b):
    return b + b"\0" * (-len(b) % 4)

def bhs(opcode, flags=0, dlen=0, lun=0, itt=0, f20=0, f24=0, f28=0, f32=0, spec=b"", ahs=0, imm=False):
    """48-byte basic header segment; spec fills bytes 2..3 (opcode-specific) if given."""
    b = bytearray(48)
    b[0] = (opcode & 0x3F) | (0x40 if imm else 0)
    b[1] = flags
    if spec:
        b[2:2 + len(spec)] = spec
    b[4] = ahs
    b[5:8] = dlen.to_bytes(3, "big")
    b[8:16] = struct.pack(">Q", lun)
    struct.pack_into(">IIIII", b, 16, itt, f20, f24, f28, f32)
    return b

def lun_field(lun):
    return (lun & 0x3FFF) << 48 if lun < 256 else ((0x40 | (lun >> 8)) << 56) | ((lun & 0xFF) << 48)

def kv_encode(d):
    return b"".join(f"{k}={v}".encode() + b"\0" for k, v in d.items())

def kv_decode(b):
    out = {}
    for item in b.split(b"\0"):
        if b"=" in item:
            k, v = item.split(b"=", 1)
            out[k.decode()] = v.decode(errors="replace")
    return out

class Refused(Exception):
    pass

class Conn:
    def __init__(self, host, port, timeout=15):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.hd = self.dd = False
        self.itt = 1
        self.cmdsn = 1
        self.expstatsn = 0
        self.mrdsl = 8192        # what the target accepts from us
        self.mbl = 262144
        self.fbl = 65536
        self.imm = False
        self.r2t = True
        self.tsih = 0

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def send_raw(self, data):
        self.s.sendall(data)

    def send(self, hdr, data=b""):
        out = bytes(hdr)
        if self.hd:
            out += struct.pack("<I", crc32c(hdr))
        if data:
            out += pad4(data)
            if self.dd:
                out += struct.pack("<I", crc32c(pad4(data)))
        self.s.sendall(out)

    def recvn(self, n):
        buf = b""
        while len(buf) < n:
            c = self.s.recv(n - len(buf))
            if not c:
                raise EOFError("connection closed by target")
            buf += c
        return buf

    def recv(self):
        h = self.recvn(48)
        ahs = h[4] * 4
        if ahs:
            self.recvn(ahs)
        if self.hd:
            d = struct.unpack("<I", self.recvn(4))[0]
            if d != crc32c(h + b""):
                raise ValueError("header digest mismatch from target")
        dlen = int.from_bytes(h[5:8], "big")
        data = b""
        if dlen:
            data = self.recvn(dlen + (-dlen % 4))
            if self.dd:
                d = struct.unpack("<I", self.recvn(4))[0]
                if d != crc32c(data):
                    raise ValueError("data digest mismatch from target")
            data = data[:dlen]
        return h, data

    def next_itt(self):
        self.itt += 1
        return self.itt

    def login(self, initiator, target=None, chap=None, mutual=None, hd=False, dd=False, isid=None):
        """Full login to full feature phase; returns the negotiated key=value dict."""
        isid = isid or os.urandom(6)
        itt = self.next_itt()
        stage = 0 if chap else 1
        keys = {"InitiatorName": initiator, "SessionType": "Normal" if target else "Discovery"}
        if target:
            keys["TargetName"] = target
        if chap:
            keys["AuthMethod"] = "CHAP,None"
        neg = {}
        step = 0
        chap_sent = False
        op_sent = False
        for _ in range(12):
            if stage == 0:
                flags = (0x80 | (0 << 2) | 1) if chap_sent else 0    # CSG=0; T=1 NSG=1 once CHAP_R is sent
            elif not op_sent:
                op_sent = True
                keys.update({
                    "HeaderDigest": "CRC32C" if hd else "None",
                    "DataDigest": "CRC32C" if dd else "None",
                    "MaxRecvDataSegmentLength": "65536",
                    "DefaultTime2Wait": "2", "DefaultTime2Retain": "0",
                    "ErrorRecoveryLevel": "0",
                })
                if target:
                    keys.update({"InitialR2T": "Yes", "ImmediateData": "Yes", "MaxBurstLength": "262144",
                                 "FirstBurstLength": "65536", "MaxOutstandingR2T": "1",
                                 "DataPDUInOrder": "Yes", "DataSequenceInOrder": "Yes",
                                 "MaxConnections": "1"})
            if stage == 1:
                flags = 0x80 | (1 << 2) | 3
            hdr = bhs(0x03, flags, 0, 0, itt, imm=True, spec=b"\x00\x00")
            hdr[8:14] = isid
            hdr[14:16] = struct.pack(">H", self.tsih)
            struct.pack_into(">HHII", hdr, 20, 0, 0, self.cmdsn, self.expstatsn)   # CID, rsvd, CmdSN, ExpStatSN
            data = kv_encode(keys)
            hdr[5:8] = len(data).to_bytes(3, "big")
            self.send(hdr, data)
            rh, rdata = self.recv()
            if rh[0] & 0x3F != 0x23:
                raise ValueError(f"expected login response, got opcode {rh[0] & 0x3F:#x}")
            cls, det = rh[36], rh[37]
            if cls != 0:
                raise Refused(f"login refused: status class {cls} detail {det}")
            self.expstatsn = struct.unpack(">I", rh[24:28])[0] + 1
            self.tsih = struct.unpack(">H", rh[14:16])[0]
            r = kv_decode(rdata)
            neg.update(r)
            keys = {}
            transit, nsg = rh[1] & 0x80, rh[1] & 3
            if stage == 0:
                if step == 0:
                    if r.get("AuthMethod") == "None" or (transit and not chap):
                        stage = 1
                        continue
                    if r.get("AuthMethod") != "CHAP":
                        raise Refused(f"target chose AuthMethod={r.get('AuthMethod')}")
                    keys = {"CHAP_A": "5"}
                    step = 1
                    continue
                if step == 1:
                    ident = int(r["CHAP_I"])
                    chal = bytes.fromhex(r["CHAP_C"][2:])
                    resp = hashlib.md5(bytes([ident]) + chap[1].encode() + chal).hexdigest()
                    keys = {"CHAP_N": chap[0], "CHAP_R": "0x" + resp}
                    if mutual:
                        self._mi = os.urandom(1)[0]
                        self._mc = os.urandom(16)
                        keys.update({"CHAP_I": str(self._mi), "CHAP_C": "0x" + self._mc.hex()})
                    chap_sent = True
                    step = 2
                    continue
                if step == 2:
                    if mutual:
                        want = hashlib.md5(bytes([self._mi]) + mutual[1].encode() + self._mc).hexdigest()
                        if r.get("CHAP_N") != mutual[0] or r.get("CHAP_R", "").lower() != "0x" + want:
                            raise Refused("target failed mutual CHAP (wrong name or response)")
                    if transit:
                        stage = 1
                        if nsg == 3:
                            break
                    continue
            else:
                if transit and nsg == 3:
                    break
        else:
            raise ValueError("login did not complete")
        self.hd = neg.get("HeaderDigest") == "CRC32C"
        self.dd = neg.get("DataDigest") == "CRC32C"
        self.mrdsl = int(neg.get("MaxRecvDataSegmentLength", "8192"))
        self.mbl = int(neg.get("MaxBurstLength", "262144"))
        self.fbl = int(neg.get("FirstBurstLength", "65536"))
        self.imm = neg.get("ImmediateData") == "Yes"
        self.r2t = neg.get("InitialR2T", "Yes") == "Yes"
        return neg

    def scsi(self, lun, cdb, read_len=0, out=b""):
        """One SCSI command; returns (status, data_in, sense)."""
        itt = self.next_itt()
        flags = 0x80 | (0x40 if read_len else 0) | (0x20 if out else 0) | 1   # F, R, W, SIMPLE
        explen = read_len or len(out)
        hdr = bhs(0x01, flags, 0, lun_field(lun), itt, explen, self.cmdsn, self.expstatsn)
        hdr[32:32 + len(cdb)] = cdb
        imm = b""
        if out and self.imm:
            imm = out[:min(self.fbl, self.mrdsl)]
        hdr[5:8] = len(imm).to_bytes(3, "big")
        self.cmdsn += 1
        self.send(hdr, imm)
        sent = len(imm)
        if out and not self.r2t and sent < min(self.fbl, len(out)):
            sent = self._data_out(itt, 0xFFFFFFFF, out, sent, min(self.fbl, len(out)) - sent, 0)
        data = bytearray(read_len)
        got = 0
        while True:
            h, d = self.recv()
            op = h[0] & 0x3F
            if op == 0x25:                                  # Data-In
                off = struct.unpack(">I", h[40:44])[0]
                data[off:off + len(d)] = d
                got += len(d)
                if h[1] & 0x01:                             # S bit: status included
                    self.expstatsn = struct.unpack(">I", h[24:28])[0] + 1
                    return h[3], bytes(data[:got]), b""
            elif op == 0x31:                                # R2T
                ttt, off, ln = struct.unpack(">I", h[20:24])[0], *struct.unpack(">II", h[40:48])
                self._data_out(itt, ttt, out, off, ln, 0)
            elif op == 0x21:                                # SCSI Response
                self.expstatsn = struct.unpack(">I", h[24:28])[0] + 1
                sense = d[2:] if len(d) > 2 else b""
                return h[3], bytes(data[:got]), sense
            elif op == 0x20:                                # NOP-In from target: answer pings
                ttt = struct.unpack(">I", h[20:24])[0]
                if ttt != 0xFFFFFFFF:
                    r = bhs(0x00, 0x80, 0, 0, 0xFFFFFFFF, ttt, self.cmdsn, self.expstatsn, imm=True)
                    self.send(r)
            elif op == 0x3F:
                raise ValueError("target sent Reject")
            else:
                raise ValueError(f"unexpected opcode {op:#x}")

    def _data_out(self, itt, ttt, out, off, length, datasn):
        end = off + length
        while off < end:
            n = min(self.mrdsl, end - off)
            flags = 0x80 if off + n >= end else 0
            h = bhs(0x05, flags, n, 0, itt, ttt, 0, self.expstatsn, 0, )
            struct.pack_into(">II", h, 36, datasn, off)
            self.send(h, out[off:off + n])
            off += n
            datasn += 1
        return off

    def logout(self):
        h = bhs(0x06, 0x80, 0, 0, self.next_itt(), 0, self.cmdsn, self.expstatsn, imm=True)
        self.send(h)
        rh, _ = self.recv()
        return rh[0] & 0x3F == 0x26 and rh[2] == 0

def _cred(s):
    if not s:
        return None
    u, p = s.split(":", 1)
    return (u, p)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["login", "roundtrip", "vpd"])
    ap.add_argument("--page", type=lambda v: int(v, 0), default=0x83)
    ap.add_argument("--portal", required=True)
    ap.add_argument("--target")
    ap.add_argument("--lun", type=int, default=0)
    ap.add_argument("--initiator", default="iqn.2026-01.org.freevsa:pyiscsi")
    ap.add_argument("--chap"); ap.add_argument("--mutual")
    ap.add_argument("--hd", action="store_true"); ap.add_argument("--dd", action="store_true")
    ap.add_argument("--file"); ap.add_argument("--offset", type=int, default=0)
    ap.add_argument("--block", type=int, default=512)
    a = ap.parse_args()
    host, port = a.portal.rsplit(":", 1)
    c = Conn(host, int(port))
    try:
        neg = c.login(a.initiator, a.target, _cred(a.chap), _cred(a.mutual), a.hd, a.dd)
    except Refused as e:
        print(f"pyiscsi: {e}")
        return 1
    print("pyiscsi: logged in; HeaderDigest=%s DataDigest=%s MaxRecvDataSegmentLength=%s" % (
        neg.get("HeaderDigest"), neg.get("DataDigest"), neg.get("MaxRecvDataSegmentLength")))
    if (a.hd and not c.hd) or (a.dd and not c.dd):
        print("pyiscsi: the target did not accept the digests asked for")
        return 1
    if a.cmd == "roundtrip":
        for _ in range(5):   # TEST UNIT READY until the power-on unit attention is consumed
            st, _, sense = c.scsi(a.lun, bytes(6))
            if st == 0:
                break
        else:
            print(f"pyiscsi: TEST UNIT READY keeps failing, sense {sense.hex()}")
            return 1
        payload = open(a.file, "rb").read()
        blocks = len(payload) // a.block
        lba = a.offset // a.block
        chunk = 128 * 1024
        for i in range(0, len(payload), chunk):
            part = payload[i:i + chunk]
            cdb = struct.pack(">BBQIBB", 0x8A, 0, lba + i // a.block, len(part) // a.block, 0, 0)
            st, _, sense = c.scsi(a.lun, cdb, out=part)
            if st != 0:
                print(f"pyiscsi: WRITE(16) at lba {lba + i // a.block} status {st:#x} sense {sense.hex()}")
                return 1
        back = b""
        for i in range(0, len(payload), chunk):
            n = min(chunk, len(payload) - i)
            cdb = struct.pack(">BBQIBB", 0x88, 0, lba + i // a.block, n // a.block, 0, 0)
            st, d, sense = c.scsi(a.lun, cdb, read_len=n)
            if st != 0:
                print(f"pyiscsi: READ(16) status {st:#x} sense {sense.hex()}")
                return 1
            back += d
        if back != payload:
            print("pyiscsi: data read back differs from data written")
            return 1
        print(f"pyiscsi: wrote and read back {blocks} blocks, identical")
    if a.cmd == "vpd":
        # INQUIRY EVPD=1; page 0x83 is printed one designator a line: "desig type=T assoc=A set=C HEX"
        st, d, sense = c.scsi(a.lun, bytes([0x12, 1, a.page, 0x10, 0, 0]), read_len=4096)
        if st != 0 or len(d) < 4:
            print(f"pyiscsi: INQUIRY page {a.page:#x} status {st:#x} sense {sense.hex()}")
            return 1
        if a.page == 0x83:
            end = 4 + int.from_bytes(d[2:4], "big")
            i = 4
            while i + 4 <= min(end, len(d)):
                ln = d[i + 3]
                print(f"desig type={d[i + 1] & 0xF} assoc={(d[i + 1] >> 4) & 3} set={d[i] & 0xF} {d[i + 4:i + 4 + ln].hex()}")
                i += 4 + ln
        else:
            print(d.hex())
    c.logout()
    c.close()
    return 0

if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, EOFError, ValueError) as e:
        print(f"pyiscsi: error: {e}")
        sys.exit(2)
PYEOF
}
