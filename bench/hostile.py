"""Packets built to cost the server CPU, for `make fuzz`: what each costs, and a probe meanwhile.

Part of bench/fuzz_net.py. The security review found one 4 KB query (680 questions, each
name a pointer to the one before) cost 0.7 s of CPU in dnslib's recursive parser. Here
each hostile kind is sent a few thousand times to the live server and its CPU time
(utime + stime from /proc) is divided by the packets answered, next to an ordinary
query's; then a probe query is sent every 20 ms while hostile packets arrive at a fixed
rate, and its answer time is recorded.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path


def name_wire(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p) + b"\x00"


def header(qd: int, an: int = 0, ns: int = 0, ar: int = 0) -> bytes:
    return struct.pack(">HHHHHH", 0, 0x0100, qd, an, ns, ar)


def ordinary(name: str) -> bytes:
    return header(1) + name_wire(name) + b"\x00\x01\x00\x01"


def odd_layout(name: str) -> bytes:
    """A well-formed query the fast path declines (a byte after the question): the slow path."""
    return ordinary(name) + b"\x00"


def chained_questions(zone: str, n: int) -> bytes:
    """n questions, each name one label and a pointer to the name of the question before."""
    body = bytearray(name_wire(zone) + b"\x00\x01\x00\x01")
    prev = 12
    for _ in range(n - 1):
        at = 12 + len(body)
        body += b"\x01x" + struct.pack(">H", 0xC000 | prev) + b"\x00\x01\x00\x01"
        prev = at
    return header(n) + bytes(body)


def pointer_chain(name: str, hops: int) -> bytes:
    """One question, an opaque record holding `hops` pointers each to the one before, and a
    record whose owner name enters the chain at its end (dnslib: RecursionError past 1000)."""
    question = name_wire(name) + b"\x00\x01\x00\x01"
    start = 12 + len(question) + 11
    chain = bytearray(b"\x00")
    for i in range(1, hops + 1):
        chain += struct.pack(">H", 0xC000 | (start if i == 1 else start + 1 + 2 * (i - 2)))
    opaque = b"\x00\xff\x00\x00\x01\x00\x00\x00\x00" + struct.pack(">H", len(chain)) + bytes(chain)
    entry = struct.pack(">H", 0xC000 | (start + 1 + 2 * (hops - 1))) + b"\x00\x01\x00\x01" + b"\x00" * 4 + b"\x00\x00"
    return header(1, ar=2) + question + opaque + entry


def padded(name: str, size: int) -> bytes:
    """A query filled to `size` bytes by an OPT with one long option and an opaque record."""
    question = name_wire(name) + b"\x00\x01\x00\x01"
    filler = b"\x00\xff\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    fill = size - 12 - len(question) - 11 - len(filler)
    opt = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00" + struct.pack(">H", fill) + bytes(fill)
    return header(1, ar=2) + question + opt + filler


def cases(zone: str, probe: str) -> list[tuple[str, bytes, bool]]:
    """(what, packet, over TCP) for every kind measured; the first is the baseline."""
    return [
        ("ordinary query, UDP (fast path)", ordinary(probe), False),
        ("odd-layout query, UDP (slow path)", odd_layout(probe), False),
        ("500 chained questions, 4 KB UDP", chained_questions(zone, 500), False),
        ("1300-hop pointer chain, 2.7 KB UDP", pointer_chain(probe, 1300), False),
        ("4096-byte query, UDP (slow path)", padded(probe, 4096), False),
        ("ordinary query, TCP", ordinary(probe), True),
        ("8000 chained questions, 64 KB TCP", chained_questions(zone, 8000), True),
        ("65535-byte query, TCP", padded(probe, 65535), True),
    ]


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of `pid`, in nanosecond resolution (/proc/PID/task/*/schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            pass  # a thread that ended meanwhile
    return total / 1e9


def _udp_burst(port: int, packet: bytes, count: int) -> int:
    """Send `count` copies in windows of 64, each waiting for its replies; replies received."""
    got = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        for _ in range(count // 64):
            for _ in range(64):
                sock.sendto(packet, ("127.0.0.1", port))
            try:
                for _ in range(64):
                    sock.recv(65535)
                    got += 1
            except TimeoutError:
                pass
    return got


def _tcp_burst(port: int, packet: bytes, count: int) -> int:
    """`count` copies pipelined on one connection, in windows of 16; replies received."""
    got = 0
    frame = len(packet).to_bytes(2, "big") + packet
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        buf = b""
        for _ in range(count // 16):
            sock.sendall(frame * 16)
            want = got + 16
            while got < want:
                chunk = sock.recv(65535)
                if not chunk:
                    return got
                buf += chunk
                while len(buf) >= 2 and len(buf) >= 2 + int.from_bytes(buf[:2], "big"):
                    buf = buf[2 + int.from_bytes(buf[:2], "big") :]
                    got += 1
    return got


def cost(port: int, pid: int, zone: str, probe: str, count: int = 16384) -> list[tuple[str, int, float]]:
    """(what, replies, server CPU microseconds per reply) for every case."""
    out = []
    for what, packet, tcp in cases(zone, probe):
        n = count if not tcp else count // 4
        before = cpu_seconds(pid)
        replies = (_tcp_burst if tcp else _udp_burst)(port, packet, n)
        spent = cpu_seconds(pid) - before
        out.append((what, replies, spent / max(replies, 1) * 1e6))
    return out


def probe_during_flood(
    port: int, packets: list[bytes], rate: float, seconds: float, probe: bytes
) -> tuple[int, int, list[float]]:
    """Send `packets` round-robin at `rate` a second for `seconds` from one socket while another
    sends `probe` every 20 ms. Returns (hostile sent, probes sent, each answered probe's ms)."""
    stop = threading.Event()
    sent = [0]

    def flood() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            t0, i = time.monotonic(), 0
            while not stop.is_set():
                due = int((time.monotonic() - t0) * rate)
                while i < due:
                    try:
                        sock.sendto(packets[i % len(packets)], ("127.0.0.1", port))
                    except BlockingIOError:
                        pass
                    i += 1
                    try:
                        while True:
                            sock.recv(65535)  # discard the replies
                    except BlockingIOError:
                        pass
                time.sleep(0.001)
            sent[0] = i

    thread = threading.Thread(target=flood)
    thread.start()
    times: list[float] = []
    probes = 0
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(1.0)
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                qid = probes & 0xFFFF
                data = qid.to_bytes(2, "big") + probe[2:]
                t0 = time.perf_counter()
                sock.sendto(data, ("127.0.0.1", port))
                probes += 1
                try:
                    while sock.recv(4096)[:2] != data[:2]:
                        pass
                    times.append((time.perf_counter() - t0) * 1000)
                except TimeoutError:
                    pass
                time.sleep(0.02)
    finally:
        stop.set()
        thread.join()
    return sent[0], probes, times


def rows(
    port: int, pid: int, zone: str, probe_name: str, rates: tuple[float, ...] = (2000, 10000), seconds: float = 5
) -> tuple[list[tuple[str, str, str, bool]], str]:
    """The checks `make fuzz` adds: CPU per packet of each kind, and the probe during a flood."""
    measured = cost(port, pid, zone, probe_name)
    base = measured[0][2]
    checks: list[tuple[str, str, str, bool]] = []
    for what, replies, us in measured:
        ok = replies > 0 and us < 1000
        checks.append((f"CPU per packet: {what}", f"{us:,.0f} us ({us / base:.1f}x) over {replies:,}", "< 1 ms", ok))
    hostile = [p for _, p, tcp in cases(zone, probe_name)[2:5] if not tcp]
    for rate in rates:
        sent, probes, times = probe_during_flood(port, hostile, rate, seconds, ordinary(probe_name))
        times.sort()
        worst = times[-1] if times else float("inf")
        p99 = times[int(len(times) * 0.99) - 1] if times else float("inf")
        checks.append(
            (
                f"probe during {sent:,} hostile packets ({rate:,.0f}/s for {seconds:g} s)",
                f"{len(times)}/{probes} answered; p99 {p99:.1f} ms, max {worst:.1f} ms",
                "all, max < 100 ms",
                len(times) == probes and worst < 100,
            )
        )
    note = (
        "Hostile packets: each kind sent 16,384 times over UDP (4,096 over TCP, pipelined); server CPU "
        "(every thread's, from /proc/PID/task/*/schedstat) divided by the replies; the multiple is "
        "against the ordinary UDP query. Before the bounded reader (publisher/server/message.py), one "
        "4 KB packet of 680 chained questions cost about 0.7 s and a 1300-hop chain raised "
        "RecursionError. The probe is an ordinary query every 20 ms while the three hostile UDP "
        "kinds arrive round-robin at the stated rate."
    )
    return checks, note
