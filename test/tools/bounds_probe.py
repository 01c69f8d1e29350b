"""Probes of the target's resource bounds, for test/integration/target_bounds.sh.

  bounds_probe.py flood    --portal H:P --target IQN --pid PID [--sockets 1100] [--sources 11] [--hold 17]
  bounds_probe.py address  --portal H:P --source ADDR --sockets N
  bounds_probe.py withhold --portal H:P --target IQN --pid PID [--writes 512] [--length 64M]
                           [--feed-cap 768M] [--wait 40]
  bounds_probe.py churn    --portal H:P --target IQN [--logins 100000] [--seconds 60]

Each prints one line of key=value results (the shell test checks them) and exits 0; it exits 2
when the probe itself could not run (the target refused a login it had to accept, ...).
Python 3 standard library only; imports pyiscsi from the same folder.
"""
import argparse, os, resource, select, socket, struct, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyiscsi as P

INI = "iqn.2026-01.org.freevsa:bounds-probe"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    """utime + stime of the process, in clock ticks (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def session(host, port, target, isid=None, timeout=15):
    """A logged-in session whose power-on unit attention is consumed."""
    c = P.Conn(host, port, timeout=timeout)
    c.login(INI, target, isid=isid)
    for _ in range(5):
        st, _, _ = c.scsi(0, bytes(6))
        if st == 0:
            return c
    raise RuntimeError("TEST UNIT READY keeps failing on a fresh session")


def qd1_latency_us(c, count=200, rounds=3):
    """Time of one 4 KiB READ(10) at a time, in microseconds: the median of `count`, the best
    of `rounds` such medians (the machine's other load shows in one round, not in all)."""
    cdb = struct.pack(">BBIBHB", 0x28, 0, 0, 0, 8, 0)
    medians = []
    for _ in range(rounds):
        times = []
        for _ in range(count):
            t0 = time.perf_counter()
            st, _, _ = c.scsi(0, cdb, read_len=4096)
            times.append(time.perf_counter() - t0)
            if st != 0:
                raise RuntimeError(f"READ(10) status {st:#x}")
        times.sort()
        medians.append(times[len(times) // 2])
    return int(min(medians) * 1e6)


def closed_by_peer(sockets, wait, closed=None):
    """How many of the sockets the other side closed (EOF or reset), waiting up to `wait`
    seconds for all of them; `closed` (a set) carries what an earlier call saw over."""
    closed = set() if closed is None else closed
    by_fd = {s.fileno(): s for s in sockets if s not in closed}
    poller = select.poll()
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    end = time.time() + wait
    while len(closed) < len(sockets) and time.time() < end:
        for fd, _ in poller.poll(max(0, int(min(0.5, end - time.time()) * 1000))):
            try:
                gone = not by_fd[fd].recv(4096)
            except OSError:
                gone = True
            if gone:
                poller.unregister(fd)
                closed.add(by_fd[fd])
    return len(closed)


def open_idle(host, port, count, sources):
    """`count` TCP connections that never send a byte, round robin over the source addresses."""
    out, failed = [], 0
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.bind((sources[i % len(sources)], 0))
            s.connect((host, port))
            s.setblocking(False)
            out.append(s)
        except OSError:
            failed += 1
            s.close()
    return out, failed


def flood(a, host, port):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    live = session(host, port, a.target)
    before = qd1_latency_us(live)
    sources = [f"127.0.{a.source_net}.{i + 1}" for i in range(a.sources)]
    opened_at = time.time()
    idle, failed = open_idle(host, port, a.sockets, sources)
    time.sleep(1)
    t0, c0 = time.time(), cpu_ticks(a.pid)
    time.sleep(a.idle)
    cpu = (cpu_ticks(a.pid) - c0) / CLK_TCK / (time.time() - t0)
    during = qd1_latency_us(live)
    # Every idle socket the target accepted is closed at its login deadline; the ones left in
    # the listen backlog (the target ran out of descriptors) are accepted and closed after it.
    closed = set()
    early = closed_by_peer(idle, max(0.0, a.deadline - 2 - (time.time() - opened_at)), closed)
    by_deadline = closed_by_peer(idle, a.deadline + 3 - (time.time() - opened_at), closed)
    for s in idle:
        s.close()
    time.sleep(1)
    after = qd1_latency_us(live)
    live.logout()
    live.close()
    print(f"opened={len(idle)} connect_failed={failed} latency_before_us={before} latency_during_us={during} "
          f"latency_after_us={after} cpu_fraction={cpu:.3f} closed_before_deadline={early} "
          f"closed_by_deadline={by_deadline}")


def address(a, host, port):
    idle, failed = open_idle(host, port, a.sockets, [a.source])
    closed = closed_by_peer(idle, 2)
    for s in idle:
        s.close()
    print(f"opened={len(idle)} connect_failed={failed} closed_by_target={closed}")


def write16(lba, length):
    return struct.pack(">BBQIBB", 0x8A, 0, lba, length // 512, 0, 0)


def withhold(a, host, port):
    """Many large WRITEs whose last burst never comes; only what the target asks for is sent,
    and at most feed_cap bytes of it (the target without a bound would ask for all)."""
    length = size(a.length)
    feed_cap = size(a.feed_cap)
    base_rss = rss_kib(a.pid)
    c = P.Conn(host, port, timeout=30)
    c.login(INI, a.target)
    for _ in range(5):
        if c.scsi(0, bytes(6))[0] == 0:
            break
    imm = min(c.fbl, c.mrdsl) if c.imm else 0
    zeros = bytes(max(c.mrdsl, imm))
    cmds = {}
    for i in range(a.writes):
        itt = c.next_itt()
        hdr = P.bhs(0x01, 0x80 | 0x20 | 1, imm, P.lun_field(0), itt, length, c.cmdsn, c.expstatsn)
        hdr[32:48] = write16(i * (length // 512) % (1 << 20), length)
        c.cmdsn = (c.cmdsn + 1) & 0xFFFFFFFF
        c.send(hdr, zeros[:imm])
        cmds[itt] = {"r2t": False, "status": None, "sense": b""}
    fed = 0
    task_set_full = 0
    peak = base_rss
    c.s.settimeout(3)
    try:
        while True:
            h, d = c.recv()
            op = h[0] & 0x3F
            itt = struct.unpack(">I", h[16:20])[0]
            if op == 0x31:
                ttt = struct.unpack(">I", h[20:24])[0]
                off, ln = struct.unpack(">II", h[40:48])
                cmds[itt]["r2t"] = True
                if off + ln >= length or fed + ln > feed_cap:
                    continue                                  # the withheld last burst
                sent, datasn = off, 0
                while sent < off + ln:
                    n = min(c.mrdsl, off + ln - sent)
                    dh = P.bhs(0x05, 0x80 if sent + n == off + ln else 0, n, 0, itt, ttt, 0, c.expstatsn)
                    struct.pack_into(">II", dh, 36, datasn, sent)
                    c.send(dh, zeros[:n])
                    sent += n
                    datasn += 1
                fed += ln
                peak = max(peak, rss_kib(a.pid))
            elif op == 0x21:
                cmds[itt]["status"] = h[3]
                if h[3] == 0x28:
                    task_set_full += 1
            elif op == 0x20:
                ttt = struct.unpack(">I", h[20:24])[0]
                if ttt != 0xFFFFFFFF:
                    c.send(P.bhs(0x00, 0x80, 0, 0, 0xFFFFFFFF, ttt, c.cmdsn, c.expstatsn, imm=True))
    except socket.timeout:
        pass
    peak = max(peak, rss_kib(a.pid))
    waiting = [itt for itt, x in cmds.items() if x["status"] is None]
    # Another session is served while these writes hold their buffers.
    other = session(host, port, a.target, timeout=30)
    pattern = bytes((i * 7) & 0xFF for i in range(1 << 20))
    st_w = other.scsi(0, write16(1 << 20, len(pattern)), out=pattern)[0]
    st_r, back, _ = other.scsi(0, struct.pack(">BBQIBB", 0x88, 0, 1 << 20, len(pattern) // 512, 0, 0),
                               read_len=len(pattern))
    served = int(st_w == 0 and st_r == 0 and back == pattern)
    other.logout()
    other.close()
    # The withheld writes end when their Data-Out stops coming for the timeout.
    timed_out = 0
    end = time.time() + a.wait
    c.s.settimeout(1)
    while waiting and time.time() < end:
        try:
            h, d = c.recv()
        except socket.timeout:
            continue
        op = h[0] & 0x3F
        itt = struct.unpack(">I", h[16:20])[0]
        if op == 0x21 and itt in cmds:
            sense = d[2:] if len(d) > 2 else b""
            if h[3] == 0x02 and len(sense) >= 14 and sense[2] & 0x0F == 0x0B and sense[12:14] == b"\x4b\x06":
                timed_out += 1
            if itt in waiting:
                waiting.remove(itt)
        elif op == 0x20:
            ttt = struct.unpack(">I", h[20:24])[0]
            if ttt != 0xFFFFFFFF:
                c.send(P.bhs(0x00, 0x80, 0, 0, 0xFFFFFFFF, ttt, c.cmdsn, c.expstatsn, imm=True))
    time.sleep(0.5)
    after_rss = rss_kib(a.pid)
    # The same session writes again once the buffers are back.
    c.s.settimeout(15)
    again = c.scsi(0, write16((1 << 20) + 4096, len(pattern)), out=pattern)[0] if not waiting else -1
    print(f"r2t_tasks={sum(1 for x in cmds.values() if x['r2t'])} task_set_full={task_set_full} "
          f"fed_mib={fed >> 20} base_rss_mib={base_rss >> 10} peak_rss_mib={peak >> 10} "
          f"other_session_served={served} timed_out={timed_out} still_waiting={len(waiting)} "
          f"after_rss_mib={after_rss >> 10} write_after={again}")


PR_KEY = 0x0123456789ABCDEF
PR_ISID = b"\x80\x42\x42\x42\x42\x42"


def pr_register(c, key):
    params = struct.pack(">QQ", 0, key) + bytes(8)
    cdb = bytes([0x5F, 0x00, 0, 0, 0, 0, 0, 0, len(params), 0])
    return c.scsi(0, cdb, out=params)[0]


def pr_keys(c):
    st, d, _ = c.scsi(0, bytes([0x5E, 0x00, 0, 0, 0, 0, 0, 0x01, 0x00, 0]), read_len=256)
    if st != 0 or len(d) < 8:
        return []
    n = struct.unpack(">I", d[4:8])[0]
    return [struct.unpack(">Q", d[8 + i:16 + i])[0] for i in range(0, min(n, len(d) - 8), 8)]


def churn(a, host, port):
    """Logins with random ISIDs, one after the other, each ended by closing the socket. A
    persistent reservation key registered before by one fixed ISID must still be there after."""
    c = session(host, port, a.target, isid=PR_ISID)
    if pr_register(c, PR_KEY) != 0:
        raise RuntimeError("PERSISTENT RESERVE OUT REGISTER failed")
    c.logout()
    c.close()
    done = failed = 0
    start = time.time()
    while done < a.logins and time.time() - start < a.seconds:
        try:
            c = P.Conn(host, port, timeout=10)
            c.login(INI, a.target, isid=b"\x80" + os.urandom(5))
            c.close()
            done += 1
        except (OSError, EOFError, ValueError, P.Refused):
            failed += 1
            if failed > 100:
                break
    seconds = time.time() - start
    c = session(host, port, a.target, isid=PR_ISID)
    kept = int(PR_KEY in pr_keys(c))
    c.logout()
    c.close()
    print(f"logins={done} failed={failed} seconds={seconds:.1f} key_kept={kept}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["flood", "address", "withhold", "churn"])
    ap.add_argument("--portal", required=True)
    ap.add_argument("--target")
    ap.add_argument("--pid", type=int)
    ap.add_argument("--sockets", type=int, default=1100)
    ap.add_argument("--sources", type=int, default=11)
    ap.add_argument("--source-net", type=int, default=77)
    ap.add_argument("--source", default="127.0.78.1")
    ap.add_argument("--idle", type=float, default=5)
    ap.add_argument("--deadline", type=float, default=15)
    ap.add_argument("--writes", type=int, default=512)
    ap.add_argument("--length", default="64M")
    ap.add_argument("--feed-cap", default="768M")
    ap.add_argument("--wait", type=float, default=40)
    ap.add_argument("--logins", type=int, default=100000)
    ap.add_argument("--seconds", type=float, default=60)
    a = ap.parse_args()
    host, port = a.portal.rsplit(":", 1)
    {"flood": flood, "address": address, "withhold": withhold, "churn": churn}[a.cmd](a, host, int(port))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, EOFError, ValueError, RuntimeError, P.Refused) as e:
        print(f"bounds_probe: error: {e}")
        sys.exit(2)
