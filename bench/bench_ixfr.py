"""`make bench-ixfr`: bring an NSD secondary of the 1M-entry zone up to date, AXFR against IXFR.

The 1M-entry zone of bench-compile (bench/data/zones, generated and compiled when missing)
is published into a scratch zones/ folder with NSD (Debian's nsd) as its secondary, served by
our server (`--ixfr-keep 8`). Then, one change at a time, each a new generation written
with publisher.publish.artifacts.write_generation (the server reloads it and NOTIFYs NSD):

  AXFR    NSD configured `request-xfr: AXFR`, 100 new /32s published: NSD takes the whole zone;
  IXFR    NSD configured to ask IXFR, 100 new /32s published: NSD takes the difference;
  IXFR 1  the same with 1 new /32.

Measured per row: seconds from the server's reload (its "now serial" log line) until NSD
answers the new serial (NOTIFY, transfer, NSD's own load), and the transfer's records,
messages and bytes as `dig` receives the same transfer (AXFR, or IXFR=previous serial) from
our server, with dig's own elapsed time; and the server's time to compute each difference
(its "IXFR difference kept ... (N ms)" log line). Writes bench/results/ixfr.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from bisect import bisect_right
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_serve import ZONES, ensure_data
from bench.common import NSD_SERVER, ROOT, ZONE, free_port, machine, table

NSD_CONF = (
    NSD_SERVER
    + """zone:
    name: {zone}
    zonefile: "{zone}.zone"
    request-xfr: {mode}127.0.0.1@{primary} NOKEY
    allow-notify: 127.0.0.1 NOKEY
"""
)


def add_addresses(zone, n: int, seed: int):  # type: ignore[no-untyped-def]
    """`zone` with `n` new /32s listed (answer 0), as a one-line-per-address feed change gives."""
    rng = random.Random(seed)
    s, e, v = array("I", zone.v4_start), array("I", zone.v4_end), array("I", zone.v4_value)
    added = 0
    while added < n:
        a = rng.randrange(0x01000000, 0x7F000000)
        i = bisect_right(s, a) - 1
        if (i >= 0 and e[i] >= a - 1) or (i + 1 < len(s) and s[i + 1] <= a + 1):
            continue  # listed, or adjacent (it would merge into a range)
        s.insert(i + 1, a)
        e.insert(i + 1, a)
        v.insert(i + 1, 0)
        added += 1
    return replace(zone, v4_start=s, v4_end=e, v4_value=v)


class Log:
    """The server's stderr, collected by a thread; `wait` finds a line after a mark."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._pump, args=(proc,), daemon=True).start()

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            with self.cond:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self.cond.notify_all()

    def mark(self) -> int:
        with self.cond:
            return len(self.lines)

    def wait(self, pattern: str, start: int = 0, timeout: float = 600.0) -> tuple[float, re.Match[str]]:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for when, line in self.lines[start:]:
                    m = rx.search(line)
                    if m:
                        return when, m
                if time.monotonic() > deadline:
                    raise SystemExit(f"no log line {pattern!r} within {timeout}s")
                self.cond.wait(1.0)


def soa_serial(port: int) -> int | None:
    cmd = ["dig", "-p", str(port), "@127.0.0.1", ZONE, "SOA", "+short", "+norec", "+time=1", "+tries=1"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.split()
    return int(out[2]) if len(out) == 7 and out[2].isdigit() else None


def wait_serial(port: int, serial: int, timeout: float = 900.0) -> float:
    deadline = time.monotonic() + timeout
    while soa_serial(port) != serial:
        if time.monotonic() > deadline:
            raise SystemExit(f"NSD did not load serial {serial} within {timeout}s")
        time.sleep(0.05)
    return time.monotonic()


def dig_transfer(port: int, qtype: str) -> tuple[int, int, int, float]:
    """(records, messages, bytes, seconds) of one transfer from our server, as dig receives it."""
    t0 = time.monotonic()
    cmd = ["dig", "-p", str(port), "@127.0.0.1", ZONE, qtype, "+noall", "+stats", "+time=60"]
    text = subprocess.run(cmd, capture_output=True, text=True, timeout=900).stdout
    seconds = time.monotonic() - t0
    m = re.search(r"XFR size: (\d+) records \(messages (\d+), bytes (\d+)\)", text)
    if not m:
        raise SystemExit(f"dig {qtype}: no transfer size in its output:\n{text}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ixfr.md")
    args = parser.parse_args()
    for tool in ("nsd", "dig"):
        if not shutil.which(tool) and not shutil.which(tool, path="/usr/sbin"):
            raise SystemExit(f"{tool} is not installed (Debian packages nsd, bind9-dnsutils)")
    nsd = shutil.which("nsd") or shutil.which("nsd", path="/usr/sbin") or "nsd"
    print(ensure_data(), flush=True)
    from publisher.model import Secondary
    from publisher.publish import artifacts
    from publisher.publish.manifest import ZoneMeta, load_published

    base = load_published(ZONES).zones[ZONE]
    work = Path(tempfile.mkdtemp(prefix="bench-ixfr-"))
    zones_dir, nsd_port = work / "zones", free_port()
    meta = {ZONE: ZoneMeta(secondaries=(Secondary("127.0.0.1", nsd_port, True, None),))}
    serial = 2026120100
    zone = replace(base, info=replace(base.info, serial=serial))

    def publish(z):  # type: ignore[no-untyped-def]
        artifacts.write_generation(zones_dir, {ZONE: z}, meta, published_at=dt.datetime.now(dt.UTC).isoformat())

    publish(zone)
    cmd = [sys.executable, "-m", "publisher.server", "--zones", str(zones_dir), "--listen", "127.0.0.1:0"]
    server = subprocess.Popen([*cmd, "--ixfr-keep", "8"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    log = Log(server)
    port = int(log.wait(r"listening udp 127\.0\.0\.1:(\d+)")[1].group(1))
    secondary: subprocess.Popen[bytes] | None = None
    rows: list[tuple[str, ...]] = []
    try:
        running_mode = None
        for label, mode, n in (("AXFR", "AXFR ", 100), ("IXFR", "", 100), ("IXFR", "", 1)):
            if mode != running_mode:  # a fresh NSD asking AXFR only, or IXFR first
                if secondary is not None:
                    secondary.terminate()
                    secondary.wait(30)
                nsd_dir = Path(tempfile.mkdtemp(dir=work, prefix="nsd-"))
                conf = NSD_CONF.format(port=nsd_port, dir=nsd_dir, zone=ZONE, mode=mode, primary=port)
                (nsd_dir / "nsd.conf").write_text(conf)
                secondary = subprocess.Popen([nsd, "-d", "-c", str(nsd_dir / "nsd.conf")])
                running_mode = mode
                wait_serial(nsd_port, serial)  # its first AXFR
            previous = serial
            serial += 1
            zone = add_addresses(replace(zone, info=replace(zone.info, serial=serial)), n, serial)
            mark = log.mark()
            publish(zone)
            reloaded, _ = log.wait(rf"zone {re.escape(ZONE)} now serial {serial}", mark)
            seconds = wait_serial(nsd_port, serial) - reloaded
            _, kept = log.wait(rf"zone {re.escape(ZONE)} serial {previous} -> {serial}: (.*)", mark)
            diff_ms = re.search(r"\((\d+) ms\)", kept.group(1))
            records, messages, size, dig_s = dig_transfer(port, "AXFR" if mode else f"IXFR={previous}")
            rows.append(
                (
                    label,
                    f"{n}",
                    f"{seconds:.2f}",
                    f"{records:,}",
                    f"{messages:,}",
                    f"{size:,}",
                    f"{dig_s:.2f}",
                    diff_ms.group(1) if diff_ms else "-",
                )
            )
            print(rows[-1], flush=True)
    finally:
        if secondary is not None:
            secondary.terminate()
            secondary.wait(30)
        server.terminate()
        server.wait(30)
        shutil.rmtree(work, ignore_errors=True)
    header = (
        "transfer",
        "entries changed",
        "NSD up to date (s)",
        "records",
        "messages",
        "bytes",
        "dig (s)",
        "diff (ms)",
    )
    text = "\n".join(
        [
            "# IXFR against AXFR: an NSD secondary of the 1M-entry zone after a small change",
            "",
            f"Machine: {machine()}. Run: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, `make bench-ixfr`.",
            "",
            f"Zone: bench-compile's feed ({base.interval_count:,} intervals: 1M IPv4 /32s, 10k CIDRs, 100k IPv6).",
            "Each row publishes new /32s and measures, from our server's reload to NSD answering the",
            "new serial: the NOTIFY, the transfer and NSD's load of it. records / messages / bytes and",
            "dig (s) are the same transfer asked by dig (AXFR, or IXFR from the previous serial).",
            "diff (ms): the server's time to compute the difference at the reload (kept for IXFR).",
            "NSD and our server share the machine's cores with dig.",
            "",
            table(rows, header),
            "",
        ]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
