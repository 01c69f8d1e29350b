"""Minimal iSCSI initiator (RFC 7143) for freevsa's integration tests.

  pyiscsi.py login     --portal H:P [--target IQN] [--chap U:S] [--mutual U:S] [--hd] [--dd]
  pyiscsi.py roundtrip --portal H:P --target IQN --lun N --file F --offset BYTES [--chap ..] [--mutual ..] [--hd] [--dd]
  pyiscsi.py vpd       --portal H:P --target IQN --lun N [--page 0x83]
  (as a module: Conn for sessions - login(), scsi() for one command, or submit()/complete_one()
   for several commands in flight within the target's MaxCmdSN window -, bhs(), crc32c(),
   lun_field(), kv_encode() for building raw PDUs)
Lives in test/tools/pyiscsi.py; test/integration/lib.sh copies it to $IT_TMP/bin for the tests.
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

def sn_le(a, b):
    """a <= b in 32-bit serial number arithmetic (RFC 1982), as CmdSN/MaxCmdSN compare."""
    return a == b or ((b - a) & 0xFFFFFFFF) < 0x80000000

class _Command:
    """A SCSI command waiting for its status: write data (for R2Ts) and read data so far."""
    __slots__ = ("out", "data", "got")

    def __init__(self, out, read_len):
        self.out = out
        self.data = bytearray(read_len)
        self.got = 0

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
        self.maxcmdsn = 1        # the target's window: commands with CmdSN <= MaxCmdSN are taken
        self.pending = {}        # itt -> _Command in flight
        self.completed = {}      # itt -> (status, data, sense) finished while scsi() waited for another

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
        self._note_window(h)
        return h, data

    def _note_window(self, h):
        """Every target PDU but a few carries MaxCmdSN at bytes 32..35; keep the newest."""
        if h[0] & 0x3F in (0x20, 0x21, 0x22, 0x23, 0x25, 0x26, 0x31, 0x32, 0x3F):
            maxcmdsn = struct.unpack(">I", h[32:36])[0]
            expcmdsn = struct.unpack(">I", h[28:32])[0]
            if sn_le((expcmdsn - 1) & 0xFFFFFFFF, maxcmdsn) and sn_le(self.maxcmdsn, maxcmdsn):
                self.maxcmdsn = maxcmdsn

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

    # --- SCSI commands. submit() + complete_one() keep several commands in flight on this
    # --- connection (bounded by the target's MaxCmdSN); scsi() is one command, start to end.
    def window_open(self):
        """True if the target's command window (ExpCmdSN..MaxCmdSN) admits one more command."""
        return sn_le(self.cmdsn, self.maxcmdsn)

    def window_room(self):
        """How many more commands the target's window admits now (0 when it is closed)."""
        return ((self.maxcmdsn - self.cmdsn + 1) & 0xFFFFFFFF) if self.window_open() else 0

    def in_flight(self):
        return len(self.pending)

    def submit(self, lun, cdb, read_len=0, out=b""):
        """Send one SCSI command without waiting; returns its initiator task tag (ITT).
        Write data goes as immediate data when negotiated, the rest when the target sends R2Ts."""
        itt = self.next_itt()
        flags = 0x80 | (0x40 if read_len else 0) | (0x20 if out else 0) | 1   # F, R, W, SIMPLE
        explen = read_len or len(out)
        hdr = bhs(0x01, flags, 0, lun_field(lun), itt, explen, self.cmdsn, self.expstatsn)
        hdr[32:32 + len(cdb)] = cdb
        imm = b""
        if out and self.imm:
            imm = out[:min(self.fbl, self.mrdsl)]
        hdr[5:8] = len(imm).to_bytes(3, "big")
        self.cmdsn = (self.cmdsn + 1) & 0xFFFFFFFF
        self.pending[itt] = _Command(out, read_len)
        self.send(hdr, imm)
        sent = len(imm)
        if out and not self.r2t and sent < min(self.fbl, len(out)):
            self._data_out(itt, 0xFFFFFFFF, out, sent, min(self.fbl, len(out)) - sent, 0)
        return itt

    def complete_one(self):
        """Receive PDUs until one command finishes; returns (itt, status, data_in, sense).
        Answers R2Ts and NOP-In pings on the way. Raises EOFError/OSError when the connection
        goes away, socket.timeout (an OSError) when the target is silent for self.s's timeout."""
        while True:
            h, d = self.recv()
            op = h[0] & 0x3F
            itt = struct.unpack(">I", h[16:20])[0]
            if op == 0x25:                                  # Data-In
                cmd = self._pending(itt)
                off = struct.unpack(">I", h[40:44])[0]
                cmd.data[off:off + len(d)] = d
                cmd.got = max(cmd.got, off + len(d))
                if h[1] & 0x01:                             # S bit: status included
                    self.expstatsn = struct.unpack(">I", h[24:28])[0] + 1
                    del self.pending[itt]
                    return itt, h[3], bytes(cmd.data[:cmd.got]), b""
            elif op == 0x31:                                # R2T
                cmd = self._pending(itt)
                ttt, off, ln = struct.unpack(">I", h[20:24])[0], *struct.unpack(">II", h[40:48])
                self._data_out(itt, ttt, cmd.out, off, ln, 0)
            elif op == 0x21:                                # SCSI Response
                cmd = self._pending(itt)
                self.expstatsn = struct.unpack(">I", h[24:28])[0] + 1
                sense = d[2:] if len(d) > 2 else b""
                del self.pending[itt]
                return itt, h[3], bytes(cmd.data[:cmd.got]), sense
            elif op == 0x20:                                # NOP-In from target: answer pings
                ttt = struct.unpack(">I", h[20:24])[0]
                if ttt != 0xFFFFFFFF:
                    r = bhs(0x00, 0x80, 0, 0, 0xFFFFFFFF, ttt, self.cmdsn, self.expstatsn, imm=True)
                    self.send(r)
            elif op == 0x32:                                # Async Message
                if h[36] in (1, 2, 3):                      # logout requested / dropping us
                    raise EOFError(f"target sent async event {h[36]} (it is leaving)")
            elif op == 0x3F:
                raise ValueError("target sent Reject")
            else:
                raise ValueError(f"unexpected opcode {op:#x}")

    def _pending(self, itt):
        cmd = self.pending.get(itt)
        if cmd is None:
            raise ValueError(f"target answered unknown ITT {itt:#x}")
        return cmd

    def scsi(self, lun, cdb, read_len=0, out=b""):
        """One SCSI command; returns (status, data_in, sense)."""
        itt = self.submit(lun, cdb, read_len, out)
        while True:
            done_itt, status, data, sense = self.complete_one()
            if done_itt == itt:
                return status, data, sense
            self.completed[done_itt] = (status, data, sense)   # someone else's; keep it

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
