#!/usr/bin/env python3
"""verified_writer.py - prove that no acknowledged write is ever lost.

A writer records every write it sends and every write the target acknowledged in a journal;
a verifier reads the blocks back later and checks each against that journal. Python 3.11
standard library only; iSCSI through test/tools/pyiscsi.py (next to this file).

  write   --portal H:P [--portal H:P ...] [--failover-portal H:P ...] --target IQN [--lun 0]
          --journal FILE [--offset 0] [--size 64M] [--block-size 4096] [--depth 8] [--fua]
          [--count N] [--seconds S] [--failover-timeout 60] [--io-timeout 15] [--seed N]
      Writes blocks chosen at random in [offset, offset+size), --depth writes in flight on one
      session (pipelined within the target's MaxCmdSN window; never two on the same block).
      Stops after --count acknowledged writes, after --seconds, or on SIGTERM/SIGINT (then it
      waits for the writes in flight). When the connection drops, or a write fails with NOT READY
      (04/0B standby, 04/0A transitioning, ...), the writes in flight are recorded as
      unacknowledged and the writer logs in again - to the next portal of the list (--portal
      then --failover-portal, round robin; one portal: the same one again) - for at most
      --failover-timeout seconds, then continues. Prints one summary line:
        verified_writer: write: acked=N unacked=N failovers=N retried=N seconds=S MB/s=X run=ID
      Exit 0 when stopped as asked, 1 on a write failing with another error, 3 when no portal
      answered within --failover-timeout, 2 on a usage error.

  verify  --journal FILE [--journal FILE2 ...] (--file IMAGE | --portal H:P --target IQN [--lun 0]
          | --url iscsi://H:P/IQN/LUN) [--offset O --size S] [--show 10]
      Reads the region back (through iSCSI, or straight from a backing file / replica image) and
      checks every block. Correct outcomes: the last acknowledged generation of the block; a
      later generation that was sent but never acknowledged (in flight when a failure happened);
      zeros when no write to the block was ever acknowledged. Anything else is an offender:
        LOST     zeros, or an older acknowledged generation, where a newer one was acknowledged
        CORRUPT  not our format, a damaged block, another block's content, or a generation the
                 journal never sent
      Prints the counts and the first --show offenders; exit 1 on any offender.

  compare A B [--offset 0] [--size S] [--block-size 4096] [--show 10]
      A and B are backing files or iscsi://H:P/IQN/LUN URLs. Checks the region is bit-identical
      (replicas after a resync); prints the first differing blocks (byte offsets) and the count.
      Exit 1 on any difference (or different sizes when --size is not given).

  Common: --chap USER:SECRET, --initiator IQN. Sizes take K/M/G suffixes (powers of 1024).

Block format (block_size bytes, block = absolute byte offset / block_size):
  32-byte header: magic "FVSAVW01", block number, generation, run id (3 x u64 big endian),
  then SHAKE-128(header) as fill - so every (block, generation, run) has exactly one content.

Journal format (text, one record a line, appended; several runs may append to one journal):
  R <run-id-hex> <block-size> <offset> <size> <unix-time> <portal>   a run starts; lines below are its
  S <block> <generation>                     sent (written to the OS before the command goes out)
  A <block> <generation> <sha256-128-hex>    acknowledged (GOOD status); fsync'd in batches
  U <block> <generation> <reason>            in flight at a failure, or failed: not acknowledged
  F <count> <portal>                         a failover finished (logged in again at that portal)
  E <acked> <unacked> <failovers>            the run ended cleanly (every line above is on disk)
Generations count per block within a run; the order of the lines is the order of events.
"""
import argparse
import hashlib
import os
import random
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyiscsi  # noqa: E402  (our initiator, next to this file)

MAGIC = b"FVSAVW01"
HEADER = struct.Struct(">8sQQQ")           # magic, block number, generation, run id
DEFAULT_INITIATOR = "iqn.2026-01.org.freevsa:verified-writer"
STATUS_GOOD, STATUS_CHECK_CONDITION, STATUS_BUSY, STATUS_TASK_SET_FULL = 0x00, 0x02, 0x08, 0x28
SENSE_NOT_READY, SENSE_UNIT_ATTENTION, SENSE_ABORTED_COMMAND = 0x2, 0x6, 0xB
READ_CHUNK = 1024 * 1024                   # bytes per READ(16) when reading a region back


# ----------------------------------------------------------------------------- block content
def block_content(block, generation, run_id, block_size):
    """The one content a (block, generation, run) write carries."""
    header = HEADER.pack(MAGIC, block, generation, run_id)
    return header + hashlib.shake_128(header).digest(block_size - HEADER.size)


def content_digest(data):
    return hashlib.sha256(data).hexdigest()[:32]


def parse_header(data):
    """(block, generation, run_id) if data starts with our magic, else None."""
    magic, block, generation, run_id = HEADER.unpack_from(data)
    return (block, generation, run_id) if magic == MAGIC else None


# ----------------------------------------------------------------------------- small helpers
def parse_size(text):
    """'4096', '4K', '64M', '1G' -> bytes."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    if text and text[-1] in units:
        return int(text[:-1]) * units[text[-1]]
    return int(text, 0)


def parse_portal(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def parse_credentials(text):
    if not text:
        return None
    user, secret = text.split(":", 1)
    return user, secret


def sense_fields(sense):
    """(key, asc, ascq) from fixed (0x70/0x71) or descriptor (0x72/0x73) sense data."""
    if len(sense) >= 14 and sense[0] & 0x7F in (0x70, 0x71):
        return sense[2] & 0x0F, sense[12], sense[13]
    if len(sense) >= 4 and sense[0] & 0x7F in (0x72, 0x73):
        return sense[1] & 0x0F, sense[2], sense[3]
    return None, None, None


def describe_status(status, sense):
    key, asc, ascq = sense_fields(sense)
    if key is None:
        return f"status {status:#04x}"
    return f"status {status:#04x} sense {key:#x}/{asc:02x}/{ascq:02x}"


def log(message):
    print(f"verified_writer: {message}", file=sys.stderr, flush=True)


class PathError(Exception):
    """This path to the LUN is gone or not usable now (connection lost, NOT READY): fail over."""


class FatalWriteError(Exception):
    """A write failed in a way failing over does not fix (e.g. MEDIUM ERROR, ILLEGAL REQUEST)."""


class FailoverTimeout(Exception):
    """No portal took us back within --failover-timeout."""


class StopRequested(Exception):
    """SIGTERM/SIGINT arrived while there was no session."""


# ----------------------------------------------------------------------------- iSCSI sessions
class Lun:
    """One logged-in session to one LUN, with the LUN's geometry."""

    def __init__(self, portal, target, lun, initiator, chap=None, io_timeout=15.0):
        self.portal, self.lun = portal, lun
        host, port = parse_portal(portal)
        self.conn = pyiscsi.Conn(host, port, timeout=io_timeout)
        try:
            self.conn.login(initiator, target, chap)
            self._wait_ready()
            self.lba_size, self.capacity = self._read_capacity()
        except BaseException:
            self.close()
            raise

    def _wait_ready(self):
        """TEST UNIT READY until GOOD: consumes the unit attentions a fresh session gets."""
        for _ in range(8):
            status, _, sense = self.conn.scsi(self.lun, bytes(6))
            if status == STATUS_GOOD:
                return
            key = sense_fields(sense)[0]
            if key not in (SENSE_UNIT_ATTENTION, None) or status != STATUS_CHECK_CONDITION:
                raise PathError(f"{self.portal}: TEST UNIT READY: {describe_status(status, sense)}")
        raise PathError(f"{self.portal}: TEST UNIT READY keeps reporting unit attentions")

    def _read_capacity(self):
        cdb = struct.pack(">BBQIBB", 0x9E, 0x10, 0, 32, 0, 0)
        status, data, sense = self.conn.scsi(self.lun, cdb, read_len=32)
        if status != STATUS_GOOD or len(data) < 12:
            raise PathError(f"{self.portal}: READ CAPACITY(16): {describe_status(status, sense)}")
        last_lba, lba_size = struct.unpack(">QI", data[:12])
        return lba_size, (last_lba + 1) * lba_size

    def submit_write(self, offset, data, fua=False):
        cdb = struct.pack(">BBQIBB", 0x8A, 0x08 if fua else 0, offset // self.lba_size,
                          len(data) // self.lba_size, 0, 0)
        return self.conn.submit(self.lun, cdb, out=data)

    def read(self, offset, length):
        cdb = struct.pack(">BBQIBB", 0x88, 0, offset // self.lba_size, length // self.lba_size, 0, 0)
        status, data, sense = self.conn.scsi(self.lun, cdb, read_len=length)
        if status != STATUS_GOOD or len(data) != length:
            raise PathError(f"{self.portal}: READ(16) at byte {offset}: {describe_status(status, sense)}")
        return data

    def close(self):
        self.conn.close()


class FileSource:
    """A backing file or replica image, read with pread."""

    def __init__(self, path):
        self.name = path
        self.fd = os.open(path, os.O_RDONLY)
        self.size = os.fstat(self.fd).st_size

    def read(self, offset, length):
        data = os.pread(self.fd, length, offset)
        return data + bytes(length - len(data))       # past the end reads as zeros

    def close(self):
        os.close(self.fd)


class LunSource:
    """A LUN read through iSCSI."""

    def __init__(self, portal, target, lun, initiator, chap, io_timeout=30.0):
        self.name = f"iscsi://{portal}/{target}/{lun}"
        self.session = Lun(portal, target, lun, initiator, chap, io_timeout)
        self.size = self.session.capacity

    def read(self, offset, length):
        return self.session.read(offset, length)

    def close(self):
        try:
            self.session.conn.logout()
        except (OSError, EOFError, ValueError):
            pass
        self.session.close()


def open_source(spec, args):
    """A file path, or iscsi://HOST:PORT/IQN/LUN."""
    if spec.startswith("iscsi://"):
        portal, target, lun = spec[len("iscsi://"):].split("/", 2)
        return LunSource(portal, target, int(lun or 0), args.initiator, parse_credentials(args.chap))
    return FileSource(spec)


# ----------------------------------------------------------------------------- the journal
class Journal:
    """Append-only record of what was sent and acknowledged.

    'S' lines reach the OS (flush) before their command is sent; 'A' lines are written before
    the writer counts the acknowledgement and fsync'd every `fsync_every` lines or
    `fsync_seconds`, and at close."""

    def __init__(self, path, fsync_every=256, fsync_seconds=0.2):
        self.file = open(path, "a", buffering=1 << 16)
        self.fsync_every, self.fsync_seconds = fsync_every, fsync_seconds
        self.unsynced = 0
        self.last_sync = time.monotonic()

    def start_run(self, run_id, block_size, offset, size, portal):
        self.file.write(f"R {run_id:016x} {block_size} {offset} {size} {int(time.time())} {portal}\n")
        self.sync()

    def sent(self, block, generation):
        self.file.write(f"S {block} {generation}\n")

    def flush_to_os(self):
        self.file.flush()

    def acked(self, block, generation, digest):
        self.file.write(f"A {block} {generation} {digest}\n")
        self.unsynced += 1
        if self.unsynced >= self.fsync_every or time.monotonic() - self.last_sync >= self.fsync_seconds:
            self.sync()

    def unacked(self, block, generation, reason):
        self.file.write(f"U {block} {generation} {reason}\n")

    def failover(self, count, portal):
        self.file.write(f"F {count} {portal}\n")
        self.sync()

    def end_run(self, acked, unacked, failovers):
        self.file.write(f"E {acked} {unacked} {failovers}\n")
        self.sync()

    def sync(self):
        self.file.flush()
        os.fsync(self.file.fileno())
        self.unsynced = 0
        self.last_sync = time.monotonic()

    def close(self):
        self.sync()
        self.file.close()


# ----------------------------------------------------------------------------- write mode
class Writer:
    """Keeps --depth writes in flight to random blocks of the region and journals them."""

    def __init__(self, args):
        self.args = args
        self.portals = args.portal + (args.failover_portal or [])
        self.portal_index = 0
        self.block_size = args.block_size
        self.first_block = args.offset // args.block_size
        self.block_count = args.size // args.block_size
        self.run_id = args.run_id if args.run_id is not None else int.from_bytes(os.urandom(8), "big")
        self.random = random.Random(args.seed if args.seed is not None else self.run_id)
        self.generations = {}          # block -> last generation used in this run
        self.in_flight = {}            # itt -> (block, generation, digest)
        self.busy_blocks = set()       # blocks with a write in flight
        self.session = None
        self.stop_requested = False
        self.acked = self.unacked = self.failovers = self.retried = 0
        self.journal = Journal(args.journal, args.fsync_every)
        self.journal.start_run(self.run_id, self.block_size, args.offset, args.size, self.portals[0])

    # --- choosing and issuing writes
    def pick_block(self):
        """A random block of the region with no write in flight."""
        for _ in range(1000):
            block = self.first_block + self.random.randrange(self.block_count)
            if block not in self.busy_blocks:
                return block
        raise RuntimeError("no idle block found: region too small for --depth")

    def want_more(self, deadline, extra=0):
        """Should another write be sent (extra: writes picked but not sent yet)?"""
        if self.stop_requested or time.monotonic() >= deadline:
            return False
        return self.args.count is None or self.acked + len(self.in_flight) + extra < self.args.count

    def fill_window(self, deadline):
        """Send writes until --depth are in flight (or the target's window is full)."""
        room = min(self.args.depth - len(self.in_flight), self.session.conn.window_room())
        batch = []
        while len(batch) < room and self.want_more(deadline, extra=len(batch)):
            block = self.pick_block()
            generation = self.generations.get(block, 0) + 1
            self.generations[block] = generation
            self.busy_blocks.add(block)
            batch.append((block, generation))
            self.journal.sent(block, generation)
        if not batch:
            return
        self.journal.flush_to_os()      # "sent" is on record before the target can see the write
        for block, generation in batch:
            data = block_content(block, generation, self.run_id, self.block_size)
            try:
                itt = self.session.submit_write(block * self.block_size, data, self.args.fua)
            except (OSError, EOFError, ValueError) as e:
                self.in_flight[("send-failed", block)] = (block, generation, None)   # may have landed
                raise PathError(f"sending a write: {e}") from e
            self.in_flight[itt] = (block, generation, content_digest(data))

    # --- completions
    def complete_one(self):
        try:
            itt, status, _, sense = self.session.conn.complete_one()
        except (OSError, EOFError, ValueError) as e:
            raise PathError(f"{self.session.portal}: {type(e).__name__}: {e}") from e
        block, generation, digest = self.in_flight.pop(itt)
        self.busy_blocks.discard(block)
        if status == STATUS_GOOD:
            self.journal.acked(block, generation, digest)
            self.acked += 1
            return
        self.journal.unacked(block, generation, f"status-{status:02x}")
        self.unacked += 1
        key, asc, ascq = sense_fields(sense)
        if status in (STATUS_BUSY, STATUS_TASK_SET_FULL) or (
                status == STATUS_CHECK_CONDITION and key in (SENSE_UNIT_ATTENTION, SENSE_ABORTED_COMMAND)):
            self.retried += 1          # not done; the block gets a new generation later
            return
        if status == STATUS_CHECK_CONDITION and key == SENSE_NOT_READY:
            raise PathError(f"{self.session.portal}: write at block {block}: {describe_status(status, sense)}")
        raise FatalWriteError(f"write at block {block} failed: {describe_status(status, sense)}")

    def abandon_in_flight(self, reason):
        """The path failed: whatever was in flight is not acknowledged (it may or may not land)."""
        for block, generation, _ in self.in_flight.values():
            self.journal.unacked(block, generation, reason)
            self.unacked += 1
        self.in_flight.clear()
        self.busy_blocks.clear()
        self.journal.sync()
        if self.session:
            self.session.close()
            self.session = None

    # --- connecting and failing over
    def connect(self, failing_over):
        """Log in to the current portal, else the next ones, for at most --failover-timeout s."""
        deadline = time.monotonic() + self.args.failover_timeout
        attempts = 0
        while True:
            portal = self.portals[self.portal_index % len(self.portals)]
            attempts += 1
            try:
                session = Lun(portal, self.args.target, self.args.lun, self.args.initiator,
                              parse_credentials(self.args.chap), self.args.io_timeout)
                self.check_geometry(session)
                self.session = session
                if failing_over:
                    self.failovers += 1
                    self.journal.failover(self.failovers, portal)
                    log(f"failover {self.failovers}: logged in at {portal} after {attempts} attempt(s)")
                return
            except (OSError, EOFError, ValueError, pyiscsi.Refused, PathError) as e:
                last_error = f"{portal}: {type(e).__name__}: {e}"
            self.portal_index += 1
            if self.stop_requested:
                raise StopRequested()
            if time.monotonic() >= deadline:
                raise FailoverTimeout(f"no portal of {self.portals} answered within "
                                      f"{self.args.failover_timeout} s; last: {last_error}")
            if self.portal_index % len(self.portals) == 0:   # tried them all: wait a little
                time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))

    def check_geometry(self, session):
        if self.block_size % session.lba_size:
            raise SystemExit(f"--block-size {self.block_size} is not a multiple of the LUN's "
                             f"{session.lba_size}-byte blocks")
        if self.args.offset + self.args.size > session.capacity:
            raise SystemExit(f"region ends at {self.args.offset + self.args.size}, past the LUN's "
                             f"{session.capacity} bytes")

    # --- the loop
    def run(self):
        """Returns the exit code."""
        started = time.monotonic()
        deadline = started + (self.args.seconds if self.args.seconds is not None else 1e9)
        code = 0
        try:
            self.connect(failing_over=False)
            while True:
                try:
                    self.fill_window(deadline)
                    if not self.in_flight:
                        break                                 # done, and nothing left to wait for
                    self.complete_one()
                except PathError as e:
                    log(f"path failed with {len(self.in_flight)} write(s) in flight: {e}")
                    self.portal_index += 1                    # the next portal of the list
                    self.abandon_in_flight("path-failed")
                    if not self.want_more(deadline):
                        break
                    self.connect(failing_over=True)
        except FailoverTimeout as e:
            log(str(e))
            code = 3
        except FatalWriteError as e:
            log(str(e))
            code = 1
        except StopRequested:
            log("stopped while logging in again")
        finally:
            if self.in_flight:
                self.abandon_in_flight("writer-stopped")
            if self.session:
                self.close_session()
            self.journal.end_run(self.acked, self.unacked, self.failovers)
            self.journal.close()
        elapsed = max(time.monotonic() - started, 1e-6)
        mbps = self.acked * self.block_size / elapsed / 1e6
        print(f"verified_writer: write: acked={self.acked} unacked={self.unacked} "
              f"failovers={self.failovers} retried={self.retried} seconds={elapsed:.1f} "
              f"MB/s={mbps:.1f} run={self.run_id:016x} journal={self.args.journal}", flush=True)
        return code

    def close_session(self):
        try:
            self.session.conn.logout()
        except (OSError, EOFError, ValueError):
            pass
        self.session.close()
        self.session = None

    def request_stop(self, *_):
        self.stop_requested = True


def cmd_write(args):
    if args.size % args.block_size or args.offset % args.block_size:
        raise SystemExit("--offset and --size must be multiples of --block-size")
    if args.size // args.block_size < 2 * args.depth:
        raise SystemExit("the region needs at least 2 x --depth blocks")
    writer = Writer(args)
    signal.signal(signal.SIGTERM, writer.request_stop)
    signal.signal(signal.SIGINT, writer.request_stop)
    return writer.run()


# ----------------------------------------------------------------------------- verify mode
class BlockHistory:
    """What the journal allows a block to hold now."""
    __slots__ = ("last_ack", "later_unacked", "superseded")

    def __init__(self):
        self.last_ack = None           # (run_id, generation, digest) of the newest acknowledged write
        self.later_unacked = set()     # (run_id, generation) sent after it, never acknowledged
        self.superseded = set()        # (run_id, generation) sent before last_ack was sent


class JournalReplay:
    """Reads one or more journals, in order, into a BlockHistory per block."""

    def __init__(self, paths):
        self.blocks = {}
        self.runs = []                 # (run_id, block_size, offset, size, ended_cleanly)
        for path in paths:
            self._read(path)

    def _read(self, path):
        run_id = None
        with open(path) as journal:
            for number, line in enumerate(journal, 1):
                fields = line.split()
                if not fields or not line.endswith("\n"):
                    continue                                  # blank, or torn by a killed writer
                kind = fields[0]
                if kind == "R":
                    run_id = int(fields[1], 16)
                    self.runs.append([run_id, int(fields[2]), int(fields[3]), int(fields[4]), False])
                elif run_id is None:
                    raise SystemExit(f"{path}:{number}: record before the first 'R' line")
                elif kind == "S" and len(fields) >= 3:
                    self._history(int(fields[1])).later_unacked.add((run_id, int(fields[2])))
                elif kind == "A" and len(fields) >= 4:
                    self._acked(int(fields[1]), run_id, int(fields[2]), fields[3])
                elif kind == "E":
                    self.runs[-1][4] = True
                elif kind in ("U", "F"):
                    pass                                      # for people; 'S' already counts
                else:
                    raise SystemExit(f"{path}:{number}: cannot read {line!r}")

    def _history(self, block):
        history = self.blocks.get(block)
        if history is None:
            history = self.blocks[block] = BlockHistory()
        return history

    def _acked(self, block, run_id, generation, digest):
        history = self._history(block)
        if history.last_ack:
            history.superseded.add(history.last_ack[:2])
        # writes to one block never overlap: an unacknowledged one sent before this one was over
        # (or abandoned with its dead path) before this one was sent - it must not show any more
        history.superseded.update(history.later_unacked - {(run_id, generation)})
        history.last_ack = (run_id, generation, digest)
        history.later_unacked.clear()

    def region(self):
        if not self.runs:
            raise SystemExit("the journal has no run ('R' line)")
        block_sizes = {run[1] for run in self.runs}
        if len(block_sizes) != 1:
            raise SystemExit(f"runs with different block sizes {sorted(block_sizes)} in one journal")
        start = min(run[2] for run in self.runs)
        end = max(run[2] + run[3] for run in self.runs)
        return block_sizes.pop(), start, end - start


def judge_block(block, data, history, block_size):
    """('ok-acked'|'ok-in-flight'|'ok-unwritten'|'LOST'|'CORRUPT', explanation)."""
    if not any(data):
        if history is None or history.last_ack is None:
            return "ok-unwritten", ""
        return "LOST", f"zeros; generation {history.last_ack[1]} was acknowledged"
    found = parse_header(data)
    if found is None:
        return "CORRUPT", f"not written by this tool (starts {data[:16].hex()})"
    found_block, generation, run_id = found
    if data != block_content(found_block, generation, run_id, block_size):
        return "CORRUPT", f"damaged content for block {found_block} generation {generation}"
    if found_block != block:
        return "CORRUPT", f"holds block {found_block}'s data (generation {generation}): misdirected"
    if history is None:
        return "CORRUPT", f"generation {generation} of run {run_id:016x} is not in the journal"
    key = (run_id, generation)
    if history.last_ack and key == history.last_ack[:2]:
        if content_digest(data) != history.last_ack[2]:
            return "CORRUPT", "content differs from the digest journaled at acknowledgement"
        return "ok-acked", ""
    if key in history.later_unacked:
        return "ok-in-flight", ""
    if key in history.superseded:
        last = history.last_ack
        return "LOST", (f"holds older generation {generation} (run {run_id:016x}); "
                        f"generation {last[1]} (run {last[0]:016x}) was acknowledged")
    return "CORRUPT", f"generation {generation} of run {run_id:016x} is not in the journal"


def source_from_args(args):
    if args.file:
        return FileSource(args.file)
    if args.url:
        return open_source(args.url, args)
    if args.portal and args.target:
        return LunSource(args.portal[0], args.target, args.lun, args.initiator, parse_credentials(args.chap))
    raise SystemExit("verify needs --file IMAGE, --url iscsi://... or --portal with --target")


def cmd_verify(args):
    replay = JournalReplay(args.journal)
    block_size, offset, size = replay.region()
    if args.offset is not None:
        offset = args.offset
    if args.size is not None:
        size = args.size
    counts = dict.fromkeys(("ok-acked", "ok-in-flight", "ok-unwritten", "LOST", "CORRUPT"), 0)
    offenders = []
    source = source_from_args(args)
    try:
        for chunk_offset in range(offset, offset + size, READ_CHUNK):
            length = min(READ_CHUNK, offset + size - chunk_offset)
            chunk = source.read(chunk_offset, length)
            for i in range(0, length, block_size):
                block = (chunk_offset + i) // block_size
                verdict, why = judge_block(block, chunk[i:i + block_size], replay.blocks.get(block), block_size)
                counts[verdict] += 1
                if not verdict.startswith("ok"):
                    offenders.append(f"{verdict} block {block} (byte {block * block_size}): {why}")
    finally:
        source.close()
    acked_blocks = sum(1 for h in replay.blocks.values() if h.last_ack)
    unfinished = sum(1 for run in replay.runs if not run[4])
    for line in offenders[:args.show]:
        print(f"  {line}")
    if unfinished:
        print(f"verified_writer: note: {unfinished} run(s) without an 'E' line (writer killed?)")
    bad = counts["LOST"] + counts["CORRUPT"]
    print(f"verified_writer: verify {source.name} bytes {offset}+{size}: blocks={size // block_size} "
          f"acked_blocks={acked_blocks} ok_acked={counts['ok-acked']} ok_in_flight={counts['ok-in-flight']} "
          f"ok_unwritten={counts['ok-unwritten']} lost={counts['LOST']} corrupt={counts['CORRUPT']} "
          f"-> {'FAIL' if bad else 'OK'}", flush=True)
    return 1 if bad else 0


# ----------------------------------------------------------------------------- compare mode
def cmd_compare(args):
    first, second = open_source(args.a, args), open_source(args.b, args)
    try:
        if args.size is None and first.size != second.size:
            print(f"verified_writer: compare: sizes differ: {first.name} {first.size} bytes, "
                  f"{second.name} {second.size} bytes (give --size to compare a region)")
            return 1
        offset = args.offset
        size = args.size if args.size is not None else first.size - offset
        block_size = args.block_size
        differing = []
        for chunk_offset in range(offset, offset + size, READ_CHUNK):
            length = min(READ_CHUNK, offset + size - chunk_offset)
            a, b = first.read(chunk_offset, length), second.read(chunk_offset, length)
            if a == b:
                continue
            for i in range(0, length, block_size):
                if a[i:i + block_size] != b[i:i + block_size]:
                    differing.append(chunk_offset + i)
    finally:
        first.close()
        second.close()
    for where in differing[:args.show]:
        print(f"  differs: block of {block_size} bytes at byte offset {where}")
    print(f"verified_writer: compare {first.name} {second.name} bytes {offset}+{size}: "
          f"differing_blocks={len(differing)} -> {'FAIL' if differing else 'IDENTICAL'}", flush=True)
    return 1 if differing else 0


# ----------------------------------------------------------------------------- command line
def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = parser.add_subparsers(dest="mode", required=True)

    def common(p):
        p.add_argument("--initiator", default=DEFAULT_INITIATOR)
        p.add_argument("--chap", help="USER:SECRET for one-way CHAP")

    w = modes.add_parser("write", help="write and journal verifiable blocks")
    common(w)
    w.add_argument("--portal", action="append", required=True, help="HOST:PORT (repeatable)")
    w.add_argument("--failover-portal", action="append", help="HOST:PORT to fail over to (repeatable)")
    w.add_argument("--target", required=True)
    w.add_argument("--lun", type=int, default=0)
    w.add_argument("--journal", required=True)
    w.add_argument("--offset", type=parse_size, default=0)
    w.add_argument("--size", type=parse_size, default=parse_size("64M"))
    w.add_argument("--block-size", type=parse_size, default=4096)
    w.add_argument("--depth", type=int, default=8)
    w.add_argument("--fua", action="store_true", help="set FUA on every write")
    w.add_argument("--count", type=int, help="stop after this many acknowledged writes")
    w.add_argument("--seconds", type=float, help="stop after this long")
    w.add_argument("--failover-timeout", type=float, default=60.0)
    w.add_argument("--io-timeout", type=float, default=15.0, help="silence on a connection that counts as a failure")
    w.add_argument("--fsync-every", type=int, default=256, help="fsync the journal every N acknowledgements")
    w.add_argument("--seed", type=int, help="block choice seed (default: the run id)")
    w.add_argument("--run-id", type=lambda v: int(v, 16), help="64-bit hex run id (default: random)")

    v = modes.add_parser("verify", help="check a region against the journal")
    common(v)
    v.add_argument("--journal", action="append", required=True, help="repeatable; read in order")
    v.add_argument("--file", help="backing file or replica image to read")
    v.add_argument("--url", help="iscsi://HOST:PORT/IQN/LUN to read")
    v.add_argument("--portal", action="append")
    v.add_argument("--target")
    v.add_argument("--lun", type=int, default=0)
    v.add_argument("--offset", type=parse_size)
    v.add_argument("--size", type=parse_size)
    v.add_argument("--show", type=int, default=10, help="offenders to print")

    c = modes.add_parser("compare", help="are two images / LUNs bit-identical")
    common(c)
    c.add_argument("a", help="file or iscsi://HOST:PORT/IQN/LUN")
    c.add_argument("b", help="file or iscsi://HOST:PORT/IQN/LUN")
    c.add_argument("--offset", type=parse_size, default=0)
    c.add_argument("--size", type=parse_size)
    c.add_argument("--block-size", type=parse_size, default=4096)
    c.add_argument("--show", type=int, default=10)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return {"write": cmd_write, "verify": cmd_verify, "compare": cmd_compare}[args.mode](args)
    except (OSError, EOFError, ValueError, pyiscsi.Refused, PathError) as e:
        print(f"verified_writer: {args.mode}: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
