"""`make fuzz`: a million hostile packets at a running server over loopback, then a health check.

The sample lists/ are compiled into a temporary zones/ with publisher.publish.build, and the real
server is started on an ephemeral 127.0.0.1 port. Then, bounded in count and in time:

  UDP  random bytes and mutations of valid queries (every zone, listed / unlisted / empty
       non-terminal / apex / outside, every interesting qtype, with and without EDNS):
       truncations, flipped bytes, lying counts, every opcode, QR set, compression
       pointers into loops and forward, oversized and extended labels, extra / named /
       versioned / huge OPTs, trailing and inner garbage, second questions. Sent in
       chunks; each reply is checked (well-formed, QR set, id of a query sent, at most
       1232 bytes, at most 512 without our OPT, never to a query with QR set).
  TCP  meanwhile: for the first 20 s, 200 idle connections held open (each with a frame
       started and never finished; one the server closes is opened again at once, as an
       attacker would), and a query for the test point every 0.25 s on a new connection,
       which must be answered within 3 s although the cap is 128; frames with lying lengths
       (short, long, zero, 65535 of garbage), partial frames, garbage streams, pipelined
       mutated queries on live connections.

Then the packets built to cost CPU (bench/hostile.py: compression-pointer chains, maximum-size
messages over UDP and TCP): server CPU per packet next to an ordinary query's, and a probe's answer
time while they arrive. Afterwards the server must be running, have logged no internal error, have grown its RSS
by less than --rss-bound-mib over the warmed-up baseline, and answer every test point
(UDP and TCP) exactly as before the fuzzing. Prints a table, writes bench/results/fuzz.md,
and exits 1 on any failed check. Every packet stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import hostile
from bench.common import ROOT, machine, rss_kib, table

CHUNK = 512
QUIET = 0.005  # seconds without a reply before the next chunk goes out
OPT = b"\x00\x00\x29\x04\xd0\x00\x00\x80\x00\x00\x00"
QTYPES = [1, 1, 1, 16, 16, 255, 28, 6, 2, 15, 41, 249, 250, 251, 252, 0, 65535]


def name_wire(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p) + b"\x00"


def query(name: str, qtype: int, edns: bool, qid: int = 0, flags: int = 0x0100) -> bytes:
    head = struct.pack(">HHHHHH", qid, flags, 1, 0, 0, 1 if edns else 0)
    return head + name_wire(name) + struct.pack(">HH", qtype, 1) + (OPT if edns else b"")


# --- checking replies (the same rules as tests/test_fuzz_wire.py) ----------------------------


def _name_end(msg: bytes, pos: int) -> int:
    total, end, hops = 0, None, 0
    while True:
        ln = msg[pos]
        if ln & 0xC0 == 0xC0:
            target = ((ln & 0x3F) << 8) | msg[pos + 1]
            if target >= pos or hops > 127:
                raise ValueError("pointer not strictly backwards")
            end = pos + 2 if end is None else end
            pos, hops = target, hops + 1
            continue
        if ln & 0xC0:
            raise ValueError("bad label type")
        total += ln + 1
        if total > 255:
            raise ValueError("name longer than 255")
        if ln == 0:
            return end if end is not None else pos + 1
        pos += ln + 1


def problem(query_: bytes, reply: bytes, tcp: bool) -> str | None:
    """Why `reply` is not an acceptable answer to `query_`, or None."""
    try:
        if len(reply) < 12:
            return "reply shorter than a header"
        if query_[2] & 0x80:
            return "answered a packet with QR set"
        if not reply[2] & 0x80:
            return "QR clear in a reply"
        if (reply[2] >> 3) & 0x0F != (query_[2] >> 3) & 0x0F:
            return "opcode changed"
        qd, an, ns, ar = struct.unpack(">HHHH", reply[4:12])
        pos, opts = 12, 0
        for _ in range(qd):
            pos = _name_end(reply, pos) + 4
        for _ in range(an + ns + ar):
            pos = _name_end(reply, pos)
            rtype, _c, _t, rdlen = struct.unpack(">HHIH", reply[pos : pos + 10])
            if rtype == 41:
                opts += 1
            pos += 10 + rdlen
        if pos != len(reply):
            return "length does not match the records"
        if opts > 1:
            return "several OPT"
        if not tcp and len(reply) > 1232:
            return "UDP reply over 1232 bytes"
        if not tcp and not opts and len(reply) > 512:
            return "UDP reply over 512 bytes without EDNS"
    except (IndexError, ValueError, struct.error) as exc:
        return f"malformed reply: {exc}"
    return None


# --- packets --------------------------------------------------------------------------------


class Mutator:
    def __init__(self, names: list[str], seed: int) -> None:
        self.rng = random.Random(seed)
        self.names = names

    def base(self) -> bytearray:
        r = self.rng
        return bytearray(query(r.choice(self.names), r.choice(QTYPES), r.random() < 0.5))

    def packet(self) -> bytes:
        r = self.rng
        roll = r.random()
        if roll < 0.05:
            return r.randbytes(r.randrange(0, 80))
        data = self.base()
        if roll < 0.15:
            return bytes(data)  # valid: the server must keep answering these right
        for _ in range(r.randint(1, 4)):
            self.mutate(data)
        return bytes(data)

    def mutate(self, data: bytearray) -> None:
        r = self.rng
        n = len(data)
        op = r.randrange(11)
        if op == 0:
            del data[r.randrange(n + 1) :]
        elif op == 1 and n:
            data[r.randrange(n)] = r.randrange(256)
        elif op == 2 and n >= 12:
            data[4:12] = bytes(r.choice((0, 0, 1, 2, 255)) for _ in range(8))
        elif op == 3 and n >= 3:
            data[2] = r.randrange(256)
        elif op == 4 and n > 13:  # compression pointer: a loop, a forward jump, or a valid back-reference
            at = r.randrange(12, n - 1)
            data[at : at + 2] = (0xC000 | r.choice((at, 12, r.randrange(n + 8), 0x3FFF))).to_bytes(2, "big")
        elif op == 5 and n > 12:
            data[r.randrange(12, n)] = r.randrange(64, 256)
        elif op == 6:
            owner = r.choice((b"\x00", b"\x01a\x00", b"\xc0\x0c"))
            options = r.choice(
                (b"", b"\x00\x0a\x00\x08" + b"c" * 8, b"\xff\xff\x0c\x00" + b"x" * 3072, b"\x00\x08\x00\x01")
            )
            data += (
                owner
                + struct.pack(
                    ">HHBBHH", 41, r.choice((0, 512, 1232, 65535)), 0, r.choice((0, 0, 1, 255)), 0x8000, len(options)
                )
                + options
            )
            if n >= 12:
                data[10:12] = ((((data[10] << 8) | data[11]) + 1) & 0xFFFF).to_bytes(2, "big")
        elif op == 7:
            data += r.randbytes(r.randrange(1, 64))
        elif op == 8 and n > 12:
            at = r.randrange(12, n + 1)
            data[at:at] = r.randbytes(r.randrange(1, 16))
        elif op == 9:
            data += name_wire(r.choice(self.names)) + b"\x00\x01\x00\x01"
        elif op == 10 and n > 20:  # a label stretched past 63 bytes, the name past 255
            at = 12
            data[at:at] = bytes([63]) + b"a" * 63
            data[at:at] = (bytes([63]) + b"b" * 63) * r.randrange(1, 5)


# --- the server -----------------------------------------------------------------------------


def build_zones(out: Path) -> dict[str, object]:
    from publisher.lists.tree import DirTree
    from publisher.publish.build import compile_tree, write_build
    from publisher.publish.manifest import Source

    now = dt.datetime.now(dt.UTC)
    build = compile_tree(DirTree(ROOT / "lists"), as_of=now)
    write_build(out, build, source=Source(kind="fuzz", path="lists/"), now=now)
    return build.zones  # type: ignore[return-value]


def names_for(zones: dict[str, object], rng: random.Random) -> list[str]:
    from publisher.addresses import v4_name, v6_name

    names: list[str] = []
    for zname, zone in zones.items():
        names += [zname, f"ns1.{zname}", f"nothing.{zname}", f"127.{zname}", f"0.0.127.{zname}"]
        if zone.info.kind == "ip":  # type: ignore[attr-defined]
            names += [f"2.0.0.127.{zname}", f"1.0.0.127.{zname}"]
            for start in list(zone.v4_start)[:50]:  # type: ignore[attr-defined]
                names.append(f"{v4_name(start)}.{zname}")
            for _ in range(50):
                names.append(f"{v4_name(rng.getrandbits(32))}.{zname}")
            for hi, lo in list(zip(zone.v6_start_hi, zone.v6_start_lo))[:20]:  # type: ignore[attr-defined]
                names.append(f"{v6_name(hi << 64 | lo)}.{zname}")
            names.append(f"{v6_name(0xFFFF7F000002)}.{zname}")
        else:
            names += [f"test.{zname}", f"invalid.{zname}"]
            names += [f"{d}.{zname}" for d in list(zone.dom_exact)[:50]]  # type: ignore[attr-defined]
            names += [f"x.{d}.{zname}" for d in list(zone.dom_wild)[:20]]  # type: ignore[attr-defined]
    names += ["example.com", "com", "", "a" * 63 + ".example"]
    return names


def test_points(zones: dict[str, object]) -> list[tuple[str, int]]:
    out = []
    for zname, zone in zones.items():
        if zone.info.kind == "ip":  # type: ignore[attr-defined]
            out += [(f"2.0.0.127.{zname}", 1), (f"2.0.0.127.{zname}", 16), (f"1.0.0.127.{zname}", 1)]
        else:
            out += [(f"test.{zname}", 1), (f"test.{zname}", 16), (f"invalid.{zname}", 1)]
        out.append((zname, 6))
    return out


def ask(port: int, data: bytes, tcp: bool, timeout: float = 3.0) -> bytes | None:
    try:
        if tcp:
            with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
                s.sendall(len(data).to_bytes(2, "big") + data)
                buf = b""
                while len(buf) < 2 or len(buf) < 2 + int.from_bytes(buf[:2], "big"):
                    chunk = s.recv(65535)
                    if not chunk:
                        return None
                    buf += chunk
                return buf[2:]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(data, ("127.0.0.1", port))
            while True:
                got = s.recv(65535)
                if got[:2] == data[:2]:
                    return got
    except OSError:
        return None


def snapshot_answers(port: int, points: list[tuple[str, int]]) -> dict[tuple[str, int, bool], bytes | None]:
    out = {}
    for name, qtype in points:
        for tcp in (False, True):
            got = ask(port, query(name, qtype, True, qid=0x5A5A), tcp)
            out[(name, qtype, tcp)] = got[2:] if got else None  # compare all but the id
    return out


class Server:
    def __init__(self, zones_dir: Path, log_path: Path) -> None:
        self.log_path = log_path
        self.log = open(log_path, "w")
        cmd = [
            sys.executable,
            "-m",
            "publisher.server",
            "--zones",
            str(zones_dir),
            "--listen",
            "127.0.0.1:0",
            "--no-watch",
        ]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 60
        while True:
            m = re.search(r"listening udp 127\.0\.0\.1:(\d+)", log_path.read_text())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("server did not start:\n" + log_path.read_text())
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


# --- the two fuzzers --------------------------------------------------------------------------


def _drain(sock: socket.socket, outstanding: dict[int, bytes], stats: Counter[str], examples: list[str]) -> None:
    while True:
        try:
            reply = sock.recv(65535)
        except BlockingIOError:
            return
        stats["udp replies"] += 1
        q = outstanding.pop(int.from_bytes(reply[:2], "big"), None) if len(reply) >= 2 else None
        why = problem(q, reply, False) if q is not None else "reply to no query sent (or a second reply)"
        if why:
            stats["udp bad replies"] += 1
            if len(examples) < 20:
                examples.append(f"udp {why}: query {q.hex() if q else '-'} reply {reply[:96].hex()}")


def fuzz_udp(port: int, mut: Mutator, packets: int, deadline: float, stats: Counter[str], examples: list[str]) -> int:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(4)]
    for s in socks:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.setblocking(False)
    sent = 0
    qid = 0
    # Query by id: an id is reused only 65,536 packets later, long after its reply came.
    outstanding: dict[int, bytes] = {}
    try:
        while sent < packets and time.monotonic() < deadline:
            sock = socks[(sent // CHUNK) % len(socks)]
            for _ in range(CHUNK):
                data = mut.packet()
                qid = (qid + 1) & 0xFFFF
                if len(data) >= 2:
                    data = qid.to_bytes(2, "big") + data[2:]
                    outstanding[qid] = data
                try:
                    sock.sendto(data, ("127.0.0.1", port))
                except OSError:
                    stats["udp send errors"] += 1
                sent += 1
            # Read until the server has been quiet a moment: it paces us to its own speed.
            while select.select(socks, [], [], QUIET)[0]:
                for ready in socks:
                    _drain(ready, outstanding, stats, examples)
    finally:
        for s in socks:
            s.close()
    return sent


HELD = 200  # idle connections held during the fuzzing: above the server's default cap of 128
PROBE_EVERY = 0.25  # seconds between two TCP test-point queries while they are held
PROBE_TIMEOUT = 3.0  # a resolver's patience
#: How long they are held: new connections wait behind them, which would slow the TCP fuzzing.
HOLD_SECONDS = 20.0


def _stall(port: int, r: random.Random) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.send(r.choice((b"\x00", b"\xff\xff\x00", b"\x00\x30\x12\x34")))  # a frame never finished
    return s


def hold_idle(port: int, seed: float, stop: threading.Event, stats: Counter[str]) -> None:
    """Keep HELD idle connections open for HOLD_SECONDS (or until `stop`): one the server
    closes is opened again at once. `stop` is set when they are let go."""
    r = random.Random(seed)
    held: list[socket.socket] = []
    until = time.monotonic() + HOLD_SECONDS
    try:
        while len(held) < HELD and not stop.is_set():
            try:
                held.append(_stall(port, r))
            except OSError:
                stats["tcp held connect failures"] += 1
        stats["tcp held at once"] = len(held)
        while not stop.is_set() and time.monotonic() < until:
            for s in select.select(held, [], [], 0.1)[0]:
                try:
                    gone = not s.recv(4096)
                except OSError:
                    gone = True
                if gone:  # the server closed it to make room: take another slot, as an attacker would
                    held.remove(s)
                    s.close()
                    try:
                        held.append(_stall(port, r))
                        stats["tcp held reopened"] += 1
                    except OSError:
                        stats["tcp held connect failures"] += 1
    finally:
        stop.set()
        for s in held:
            s.close()


def probe_tcp(port: int, name: str, stop: threading.Event, stats: Counter[str], waits: list[float]) -> None:
    """A query for the test point on a new TCP connection every PROBE_EVERY s: answered, and how fast."""
    time.sleep(1.0)  # the held connections are open by then
    qid = 0
    while not stop.is_set():
        qid = (qid + 1) & 0xFFFF
        data = query(name, 1, False, qid=qid)
        t0 = time.monotonic()
        reply = ask(port, data, True, timeout=PROBE_TIMEOUT)
        stats["tcp probes"] += 1
        if reply is not None and reply[:2] == data[:2] and reply[3] & 0x0F == 0 and reply[6:8] != b"\x00\x00":
            waits.append(time.monotonic() - t0)
        stop.wait(PROBE_EVERY)


def fuzz_tcp(port: int, mut: Mutator, stop: threading.Event, stats: Counter[str], examples: list[str]) -> None:
    r = random.Random(mut.rng.random())
    abuse = [
        lambda: b"\x01\xf4" + r.randbytes(10),
        lambda: b"\x00\x0a" + r.randbytes(500),
        lambda: b"\x00\x00",
        lambda: b"\xff\xff" + r.randbytes(65535),
        lambda: r.randbytes(r.randrange(1, 4000)),
        lambda: b"\x00",
    ]
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                if r.random() < 0.5:
                    s.sendall(r.choice(abuse)())
                    stats["tcp abusive streams"] += 1
                else:  # pipelined mutated queries on a live connection, answers checked in order
                    batch = [mut.packet() for _ in range(r.randrange(1, 40))]
                    batch = [i.to_bytes(2, "big") + p[2:] if len(p) >= 2 else p for i, p in enumerate(batch, 1)]
                    s.sendall(b"".join(len(p[:65535]).to_bytes(2, "big") + p[:65535] for p in batch))
                    s.shutdown(socket.SHUT_WR)
                    buf = b""
                    s.settimeout(5)
                    while True:
                        chunk = s.recv(65535)
                        if not chunk:
                            break
                        buf += chunk
                    stats["tcp queries"] += len(batch)
                    at = 0
                    while at + 2 <= len(buf):
                        size = int.from_bytes(buf[at : at + 2], "big")
                        reply = buf[at + 2 : at + 2 + size]
                        at += 2 + size
                        stats["tcp replies"] += 1
                        q = next((p for p in batch if p[:2] == reply[:2]), None)
                        why = problem(q, reply, True) if q is not None else "reply to no query sent"
                        if why:
                            stats["tcp bad replies"] += 1
                            if len(examples) < 20:
                                examples.append(f"tcp {why}: reply {reply[:64].hex()}")
        except OSError:
            stats["tcp connections cut"] += 1


# --- main -----------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=1_000_000, help="UDP packets to send (default 1,000,000)")
    ap.add_argument("--max-seconds", type=float, default=300, help="stop sending after this long (default 300)")
    ap.add_argument("--rss-bound-mib", type=float, default=20, help="allowed RSS growth after warm-up (default 20)")
    ap.add_argument("--seed", type=int, default=5782)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fuzz.md")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fuzz-"))
    zones = build_zones(work / "zones")
    server = Server(work / "zones", work / "server.log")
    stats: Counter[str] = Counter()
    examples: list[str] = []
    started = dt.datetime.now(dt.UTC)
    try:
        points = test_points(zones)
        before = snapshot_answers(server.port, points)
        mut = Mutator(names_for(zones, random.Random(args.seed)), args.seed)
        # Warm-up: lazily built answers, dnslib's import, socket buffers; then the baseline.
        fuzz_udp(server.port, mut, 20_000, time.monotonic() + 60, Counter(), [])
        rss_start = rss_kib(server.proc.pid)
        stop, let_go = threading.Event(), threading.Event()
        ip_zone = next(z for z, zone in zones.items() if zone.info.kind == "ip")  # type: ignore[attr-defined]
        waits: list[float] = []
        threads = [
            threading.Thread(target=hold_idle, args=(server.port, args.seed + 2, let_go, stats)),
            threading.Thread(target=probe_tcp, args=(server.port, f"2.0.0.127.{ip_zone}", let_go, stats, waits)),
            threading.Thread(
                target=fuzz_tcp, args=(server.port, mut.__class__(mut.names, args.seed + 1), stop, stats, examples)
            ),
        ]
        for thread in threads:
            thread.start()
        t0 = time.monotonic()
        sent = fuzz_udp(server.port, mut, args.packets, t0 + args.max_seconds, stats, examples)
        udp_seconds = time.monotonic() - t0
        stop.set()
        let_go.set()
        for thread in threads:
            thread.join(timeout=60)
        alive = server.proc.poll() is None
        rss_end = rss_kib(server.proc.pid) if alive else 0
        after = snapshot_answers(server.port, points) if alive else {}
        costly, costly_note = (
            hostile.rows(server.port, server.proc.pid, ip_zone, f"2.0.0.127.{ip_zone}") if alive else ([], "")
        )
        alive = server.proc.poll() is None
        log_text = server.log_path.read_text()
    finally:
        server.stop()
    internal = len(re.findall(r"internal error|tcp loop error|Traceback", log_text))
    same = alive and all(after.get(k) == v and v is not None for k, v in before.items())
    grown_mib = (rss_end - rss_start) / 1024
    checks = [
        (
            "UDP packets sent",
            f"{sent:,}",
            ">= 1,000,000" if args.packets >= 1_000_000 else f">= {args.packets:,}",
            sent >= args.packets,
        ),
        (
            "UDP time",
            f"{udp_seconds:.0f} s ({sent / udp_seconds:,.0f} packets/s)",
            f"<= {args.max_seconds:.0f} s",
            True,
        ),
        ("UDP replies checked", f"{stats['udp replies']:,}", "", True),
        ("UDP bad replies", f"{stats['udp bad replies']:,}", "0", stats["udp bad replies"] == 0),
        (
            f"TCP: {HELD} idle connections held {HOLD_SECONDS:g} s (cap 128), re-opened when closed",
            f"{stats['tcp held at once']}; {stats['tcp held reopened']:,} re-opened",
            f"{HELD}",
            stats["tcp held at once"] == HELD,
        ),
        (
            f"TCP test-point queries meanwhile (one per {PROBE_EVERY:g} s)",
            f"{len(waits)}/{stats['tcp probes']} answered; max {max(waits, default=0) * 1000:,.0f} ms"
            f" (median {sorted(waits)[len(waits) // 2] * 1000 if waits else 0:,.0f} ms)",
            f"all, max < {PROBE_TIMEOUT:g} s",
            bool(waits) and len(waits) == stats["tcp probes"],
        ),
        ("TCP abusive streams (lying lengths, partial, garbage)", f"{stats['tcp abusive streams']:,}", "", True),
        ("TCP pipelined mutated queries / replies", f"{stats['tcp queries']:,} / {stats['tcp replies']:,}", "", True),
        ("TCP bad replies", f"{stats['tcp bad replies']:,}", "0", stats["tcp bad replies"] == 0),
        ("server alive afterwards", "yes" if alive else "NO", "yes", alive),
        ("internal errors / tracebacks logged", f"{internal}", "0", internal == 0),
        ("RSS after warm-up -> after fuzzing", f"{rss_start / 1024:.1f} -> {rss_end / 1024:.1f} MiB", "", True),
        (
            "RSS growth",
            f"{grown_mib:+.1f} MiB",
            f"< {args.rss_bound_mib:g} MiB",
            alive and grown_mib < args.rss_bound_mib,
        ),
        (f"test points ({len(before)} UDP+TCP queries) answered as before", "yes" if same else "NO", "yes", same),
        *costly,
        ("server alive after the hostile packets", "yes" if alive else "NO", "yes", alive),
    ]
    rows = [(what, value, target, "ok" if ok else "FAIL") for what, value, target, ok in checks]
    text = "\n".join(
        [
            "# fuzz (make fuzz)",
            "",
            f"Run {started:%Y-%m-%d %H:%M} UTC on {machine()}; seed {args.seed}; server: `python -m publisher.server` "
            "on 127.0.0.1 with the sample lists/ compiled by publisher.publish.build.",
            "",
            table(rows, ("check", "value", "target", "")),
            "",
            "UDP packets: 5% random bytes, 10% valid queries, 85% valid queries with 1-4 mutations "
            "(truncation, flipped byte, lying counts, any opcode/QR/flags, compression pointers into loops "
            "and forward, 64-255 label lengths, labels past 63 and names past 255 bytes, extra/named/versioned/"
            "huge OPT, garbage inside and after, a second question), over every zone's listed, unlisted, "
            "empty non-terminal, apex and outside names, qtypes A TXT ANY AAAA SOA NS MX OPT TKEY TSIG IXFR "
            "AXFR 0 65535, with and without EDNS; sent in chunks of 512 from 4 sockets, the next chunk after "
            "5 ms of silence, so the rate is the server's own.",
            "",
            f"Idle TCP connections: {HELD} opened at the start and each re-opened as soon as the server closes it, "
            f"for {HOLD_SECONDS:g} s; with the server's cap of 128 the rest and every new client wait in the listen "
            f"backlog until an idle connection gives way. Meanwhile a query for the test point goes out every "
            f"{PROBE_EVERY:g} s on a new connection and must be answered (NOERROR, an answer) within "
            f"{PROBE_TIMEOUT:g} s.",
            "",
            costly_note,
            "",
        ]
        + ([f"Bad replies (first {len(examples)}):", ""] + [f"- `{e}`" for e in examples] + [""] if examples else [])
    )
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0 if all(ok for *_, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
