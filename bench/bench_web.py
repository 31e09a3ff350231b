"""`publisher web` on a 1,000,000-entry zone: start-up to the first answer, memory, and lookups.

The bench feed (bench/common.py: 1M random IPv4 /32s, 10k CIDRs, 100k IPv6 prefixes) is
compiled into a zones/ folder (`publisher compile --out`), then the real `publisher web`
process is started on a free loopback port with the lookup limit lifted, and one keep-alive
HTTP client asks it, for a few seconds each: the lookup page and the JSON API, for listed
addresses (each covered by an entry, which the view finds through its CoverIndex) and for
unlisted ones. Reported: requests per second and the server's CPU per request (its
utime+stime over the run, /proc), its resident memory, and the time from start to the first
answer of /api/v1/zones (loading the snapshot, reading the feed, building the index).

    python bench/bench_web.py [--seconds 5] [--out bench/results/web.md]
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from common import DATA, ROOT, ZONE, free_port, generate, machine, report, rss_kib, table

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def prepare(root: Path) -> tuple[Path, Path, list[str]]:
    """The lists (generated once, kept in bench/data), a compiled zones/ folder, and listed /32s."""
    lists, zones = root / "web-lists", root / "web-zones"
    if not (lists / "feed.txt").exists():
        generate(lists)
    if not (zones / "current").exists():
        subprocess.run(
            [sys.executable, "-m", "publisher", "--lists", str(lists), "--zones", str(zones), "compile"],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    listed = [
        line
        for line in (lists / "feed.txt").read_text().splitlines()
        if line and line[0].isdigit() and "/" not in line and ":" not in line
    ]
    return lists, zones, listed


def start(lists: Path, zones: Path, port: int) -> tuple[subprocess.Popen[bytes], float]:
    argv = [sys.executable, "-m", "publisher", "--lists", str(lists), "--zones", str(zones), "web"]
    argv += ["--listen", f"127.0.0.1:{port}", "--lookup-limit", "100000000"]
    began = time.monotonic()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while time.monotonic() - began < 120:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/v1/zones")
            if conn.getresponse().status == 200:
                return proc, time.monotonic() - began
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("publisher web did not answer within 120 s")


def run(port: int, pid: int, paths: list[str], seconds: float) -> tuple[float, float]:
    """Requests per second, and the server's CPU microseconds per request."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    done, cpu0, t0 = 0, cpu_seconds(pid), time.monotonic()
    while time.monotonic() - t0 < seconds:
        conn.request("GET", paths[done % len(paths)])
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"{paths[done % len(paths)]}: HTTP {response.status}")
        done += 1
    elapsed, cpu = time.monotonic() - t0, cpu_seconds(pid) - cpu0
    conn.close()
    return done / elapsed, cpu / done * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    lists, zones, listed = prepare(DATA)
    rng = random.Random(25)
    hits = rng.sample(listed, 2000)
    misses = [f"203.0.113.{rng.randrange(256)}" for _ in range(2000)]  # documentation range: never in the feed
    port = free_port()
    proc, startup = start(lists, zones, port)
    try:
        rows = []
        for what, prefix in (("page", "/lookup/"), ("API", "/api/v1/lookup/")):
            for kind, addresses in (("listed", hits), ("not listed", misses)):
                rate, cpu = run(port, proc.pid, [prefix + a for a in addresses], args.seconds)
                rows.append((f"{what}, {kind}", f"{rate:,.0f}", f"{cpu:,.0f}"))
        rss = rss_kib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    text = "\n".join(
        [
            "# publisher web: lookups on a 1,000,000-entry zone",
            "",
            f"`python bench/bench_web.py` on {machine()}: the bench feed ({ZONE}: 1M IPv4 /32s, 10k CIDRs,",
            "100k IPv6 prefixes) compiled, the real `publisher web` process, one keep-alive HTTP client on",
            f"loopback, {args.seconds:g} s per row.",
            "",
            table(rows, ("request", "per second", "server CPU per request (us)")),
            "",
            f"Start to the first answer: {startup:.2f} s (the snapshot, the feed read, its entry index built).",
            f"Resident memory after the runs: {rss / 1024:.0f} MiB.",
            "",
        ]
    )
    report(text, args.out)


if __name__ == "__main__":
    main()
