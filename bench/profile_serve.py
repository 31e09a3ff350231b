"""Where the server's CPU goes per query: the answering code against the socket loop and the kernel.

Two views on bench-serve's data (bench/data, reused when present) and query mix:

- `inproc`: the query packets of bench/data/serve-queries.txt answered by `wire.fast()` in a
  plain loop, no sockets: the pure cost of the answering code, plus a cProfile table of it.
- `server`: the server started on core 0 with --metrics, driven by dnsperf on core 1. Its
  utime and stime (all threads, /proc/PID/stat) divided by the queries answered give CPU per
  query in user space and in the kernel; the server's own histogram gives the time spent
  answering (the batch loop's per-datagram body); user time minus that is the loop's own
  (ctypes recvmmsg/sendmmsg calls, buffers). RSS is read at rest (loaded, before any
  query) and after the run, with /proc/PID/smaps_rollup's anonymous and file-backed parts.

Run: .venv/bin/python bench/profile_serve.py [--mode both] [--seconds 10]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_serve import LOAD_CORE, QUERIES, SERVER_CORE, TICK, ZONES, ensure_data, make_queries, scrape
from bench.common import ROOT, ZONE, free_port, wait_udp_answer

_QTYPES = {"A": 1, "TXT": 16}


def packets(path: Path) -> list[bytes]:
    """dnsperf's packets for the query file: RD set, no EDNS (dnsperf's defaults)."""
    rng = random.Random(7)
    out = []
    for line in path.read_text().splitlines():
        name, qtype = line.split()
        qname = b"".join(bytes((len(p),)) + p.encode() for p in name.split(".")) + b"\x00"
        out.append(
            struct.pack(">HHHHHH", rng.randrange(65536), 0x0100, 1, 0, 0, 0)
            + qname
            + struct.pack(">HH", _QTYPES[qtype], 1)
        )
    return out


def inproc(rounds: int, profile: bool) -> dict[str, float]:
    """us per query of `wire.fast()` over the query mix, in this process."""
    from publisher.publish.manifest import load_published
    from publisher.server import wire
    from publisher.server.stats import Stats
    from publisher.server.zoneset import ZoneSet

    zs = ZoneSet.from_published(load_published(ZONES))
    qs = packets(QUERIES)
    counts = Stats().new()
    fast = wire.fast
    for q in qs:  # warm the lazily built answers, as the bench's warm-up run does
        assert fast(zs, q, False, counts) is not None
    best = float("inf")
    for _ in range(rounds):
        t0 = time.process_time_ns()
        for q in qs:
            fast(zs, q, False, counts)
        best = min(best, (time.process_time_ns() - t0) / len(qs) / 1e3)
    print(f"inproc: wire.fast() {best:.3f} us per query (best of {rounds} x {len(qs):,})")
    if profile:
        prof = cProfile.Profile()
        prof.enable()
        for q in qs:
            fast(zs, q, False, counts)
        prof.disable()
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(12)
        print(text.getvalue())
    return {"fast_us": best}


def _cpu(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def _memory(pid: int) -> str:
    got = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        got[key] = int(value.split()[0])
    status = Path(f"/proc/{pid}/status").read_text()
    threads = re.search(r"Threads:\s+(\d+)", status)
    return (
        f"RSS {got['Rss'] / 1024:.1f} MiB (anonymous {got['Anonymous'] / 1024:.1f}, "
        f"file-backed {(got['Rss'] - got['Anonymous']) / 1024:.1f}), {threads.group(1) if threads else '?'} threads"
    )


def server(seconds: float) -> dict[str, float]:
    """dnsperf against the server with --metrics: CPU per query split user/kernel/answering."""
    port, mport = free_port(), free_port()
    log = Path(tempfile.mkstemp(prefix="profile-serve-", suffix=".log")[1])
    cmd = [sys.executable, "-m", "publisher.server", "--zones", str(ZONES), "--no-watch"]
    cmd += ["--listen", f"127.0.0.1:{port}", "--metrics", f"127.0.0.1:{mport}"]
    env = dict(os.environ)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, *cmd], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env
        )
    try:
        wait_udp_answer(port, f"2.0.0.127.{ZONE}", timeout=120)
        time.sleep(0.5)
        rest = _memory(proc.pid)
        warm = ["taskset", "-c", LOAD_CORE, "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(QUERIES)]
        subprocess.run([*warm, "-l", "2", "-q", "100"], capture_output=True, check=True)
        before = scrape(mport)
        u0, s0 = _cpu(proc.pid)
        run = subprocess.run([*warm, "-l", str(seconds), "-q", "100"], capture_output=True, text=True, check=True)
        u1, s1 = _cpu(proc.pid)
        after = scrape(mport)
        loaded = _memory(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    found = re.search(r"Queries completed:\s+(\d+)", run.stdout)
    assert found is not None, run.stdout
    n = int(found.group(1))

    def hist(text: str) -> tuple[float, float]:
        total = re.search(r"^dnsbl_query_processing_seconds_sum (\S+)", text, re.M)
        count = re.search(r"^dnsbl_query_processing_seconds_count (\S+)", text, re.M)
        assert total is not None and count is not None
        return float(total.group(1)), float(count.group(1))

    (t0, c0), (t1, c1) = hist(before), hist(after)
    answering = (t1 - t0) / (c1 - c0) * 1e6
    user, kernel = (u1 - u0) / n * 1e6, (s1 - s0) / n * 1e6
    started = re.search(r"fast path: .*", log.read_text(errors="replace"))
    log.unlink()
    print(f"server [{started.group(0) if started else 'no fast path line logged'}]: {n:,} queries in {seconds:g} s")
    print(f"  CPU per query {user + kernel:.2f} us = user {user:.2f} + kernel {kernel:.2f}")
    print(f"  answering (histogram: the batch loop's per-datagram body) {answering:.2f} us")
    print(f"  user time outside it (recvmmsg/sendmmsg through ctypes, batch set-up) {user - answering:.2f} us")
    print(f"  at rest: {rest}")
    print(f"  after the run: {loaded}")
    return {"cpu_us": user + kernel, "user_us": user, "kernel_us": kernel, "answering_us": answering}


def rbldnsd(seconds: float) -> dict[str, float]:
    """The same dnsperf run against rbldnsd on the same data: its CPU per query, user and kernel."""
    from bench.bench_serve import targets

    workdir = Path(tempfile.mkdtemp(prefix="profile-serve-"))
    target = next(t for t in targets(workdir, False) if t.label == "rbldnsd")
    target.start()
    try:
        assert target.proc is not None
        pid = target.proc.pid
        rest = _memory(pid)
        cmd = ["taskset", "-c", LOAD_CORE, "dnsperf", "-s", "127.0.0.1", "-p", str(target.port), "-d", str(QUERIES)]
        subprocess.run([*cmd, "-l", "2", "-q", "100"], capture_output=True, check=True)
        u0, s0 = _cpu(pid)
        run = subprocess.run([*cmd, "-l", str(seconds), "-q", "100"], capture_output=True, text=True, check=True)
        u1, s1 = _cpu(pid)
    finally:
        target.stop()
        for path in target.cleanup:
            subprocess.run(["rm", "-rf", str(path)], check=False)
    found = re.search(r"Queries completed:\s+(\d+)", run.stdout)
    assert found is not None, run.stdout
    n = int(found.group(1))
    user, kernel = (u1 - u0) / n * 1e6, (s1 - s0) / n * 1e6
    print(f"rbldnsd: {n:,} queries in {seconds:g} s")
    print(f"  CPU per query {user + kernel:.2f} us = user {user:.2f} + kernel {kernel:.2f}")
    print(f"  at rest: {rest}")
    return {"cpu_us": user + kernel, "user_us": user, "kernel_us": kernel}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("inproc", "server", "both", "rbldnsd"), default="both")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--queries", type=int, default=200_000)
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile table")
    args = parser.parse_args()
    print(ensure_data())
    if not QUERIES.exists():
        make_queries(QUERIES, args.queries)
    if args.mode in ("inproc", "both"):
        inproc(args.rounds, not args.no_profile)
    if args.mode in ("server", "both"):
        server(args.seconds)
    if args.mode == "rbldnsd":
        rbldnsd(args.seconds)


if __name__ == "__main__":
    main()
