"""`make soak`: dnsperf at full speed for 60 s while the lists are republished 20+ times.

A sizeable feed (bench.common.generate: 200,000 IPv4 /32s, 3,333 CIDRs and 20,000 IPv6
prefixes by default) plus a probe file is compiled in two variants with
publisher.publish.build.compile_tree:

  A  every probe address listed with 127.0.0.2 "variant A"
  B  half the probes listed with 127.0.0.3 "variant B", the other half not at all

The server (`python -m publisher.server`, watching zones/manifest.json) starts on
variant A. Then, at the same time and for --seconds:

  dnsperf   at its maximum rate (no -Q) on a query file of listed and unlisted names;
  publisher alternates B, A, B, ... with publisher.publish.build.write_build, at least --publishes
            times, each a new serial and a new generation swapped in atomically;
  verifier  a Python thread asking the probes (A and TXT) over UDP and checking every answer
            is exactly variant A's or variant B's, and that an NXDOMAIN's SOA serial is one
            published as a variant where that probe is unlisted.

Reported: dnsperf's sent / completed / lost and qps, the verifier's checks, lost and
inconsistent answers (both targets 0), the publishes and reloads, RSS at start and end.
Prints a table, writes bench/results/soak.md, exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, ZONE, ZONES_YAML, generate, machine, rss_kib, table

PROBES = 2000


@dataclass
class Verdicts:
    checks: int = 0
    lost: int = 0
    inconsistent: int = 0
    examples: list[str] = field(default_factory=list)
    #: (probe index, serial seen in an NXDOMAIN's SOA) to be checked against the publishes.
    negative_serials: list[tuple[int, int]] = field(default_factory=list)


def probe_addresses(rng: random.Random) -> list[str]:
    """Addresses in 198.18.0.0/15 (benchmarking range): data in the zone only, never contacted."""
    seen: set[int] = set()
    while len(seen) < PROBES:
        seen.add(0xC6120000 + rng.randrange(1, 1 << 17))
    return [socket.inet_ntoa(struct.pack("!I", a)) for a in sorted(seen)]


def write_variant(folder: Path, base: Path, probes: list[str], variant: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "zones.yaml").write_text(ZONES_YAML.replace("sources: [feed.txt]", "sources: [feed.txt, probes.txt]"))
    shutil.copyfile(base / "feed.txt", folder / "feed.txt")
    if variant == "A":
        lines = [":127.0.0.2:variant A", *probes]
    else:
        lines = [":127.0.0.3:variant B", *probes[::2]]
    (folder / "probes.txt").write_text("\n".join(lines) + "\n")


def expected(zone: object, probe: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(A codes, TXTs) the compiled zone answers for `probe`, or None for NXDOMAIN."""
    from publisher.addresses import format_v4
    from publisher.model import SUBST

    addr = int.from_bytes(socket.inet_aton(probe), "big")
    idx = zone.lookup_v4(addr)  # type: ignore[attr-defined]
    if idx < 0:
        return None
    ans = zone.answers[idx]  # type: ignore[attr-defined]
    return tuple(sorted(format_v4(c) for c in ans.codes)), tuple(sorted(t.replace(SUBST, probe) for t in ans.txts))


def qname(probe: str) -> bytes:
    labels = list(reversed(probe.split("."))) + ZONE.split(".")
    return b"".join(bytes([len(x)]) + x.encode() for x in labels) + b"\x00"


def parse_answer(data: bytes, qtype: int) -> tuple[int, list[str], int | None]:
    """(rcode, A codes or TXT strings, SOA serial from the authority section)."""
    from dnslib import DNSRecord

    rec = DNSRecord.parse(data)
    values = []
    for rr in rec.rr:
        if rr.rtype == qtype == 1:
            values.append(str(rr.rdata))
        elif rr.rtype == qtype == 16:
            values.append(b"".join(rr.rdata.data).decode())
    serial = rec.auth[0].rdata.times[0] if rec.auth and rec.auth[0].rtype == 6 else None
    return rec.header.rcode, sorted(values), serial


def verifier(
    port: int, probes: list[str], want: list[tuple[object, object]], stop: threading.Event, out: Verdicts
) -> None:
    rng = random.Random(1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2.0)
        qid = 0
        while not stop.is_set():
            i = rng.randrange(len(probes))
            qtype = 1 if rng.random() < 0.5 else 16
            qid = (qid + 1) & 0xFFFF
            sock.sendto(
                struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + qname(probes[i]) + struct.pack(">HH", qtype, 1),
                ("127.0.0.1", port),
            )
            try:
                while True:
                    data = sock.recv(4096)
                    if data[:2] == qid.to_bytes(2, "big"):
                        break
            except TimeoutError:
                out.lost += 1
                continue
            out.checks += 1
            rcode, values, serial = parse_answer(data, qtype)
            valid = []
            for w in want[i]:
                if w is None:
                    valid.append((3, []))
                else:
                    codes, txts = w  # type: ignore[misc]
                    valid.append((0, list(codes if qtype == 1 else txts)))
            if (rcode, values) not in valid:
                out.inconsistent += 1
                if len(out.examples) < 10:
                    out.examples.append(
                        f"{probes[i]} {'A' if qtype == 1 else 'TXT'}: rcode {rcode} {values}, want one of {valid}"
                    )
            elif rcode == 3:
                out.negative_serials.append((i, serial or 0))


def dnsperf_queries(path: Path, lists: Path, rng: random.Random, n: int = 200_000) -> None:
    listed = [line for line in (lists / "feed.txt").read_text().splitlines() if line[:1].isdigit() and "/" not in line]
    lines = []
    for _ in range(n):
        if rng.random() < 0.5:
            addr = rng.choice(listed)
        else:
            addr = socket.inet_ntoa(struct.pack("!I", rng.randrange(0x01000000, 0xE0000000)))
        lines.append(f"{'.'.join(reversed(addr.split('.')))}.{ZONE} {'A' if rng.random() < 0.9 else 'TXT'}")
    path.write_text("\n".join(lines) + "\n")


def grab(pattern: str, text: str) -> str:
    m = re.search(pattern, text)
    if not m:
        raise SystemExit(f"dnsperf output without {pattern!r}:\n{text}")
    return m.group(1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--publishes", type=int, default=20, help="at least this many republishes (default 20)")
    ap.add_argument("--entries", type=int, default=200_000, help="IPv4 /32 entries in the feed (default 200,000)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "soak.md")
    args = ap.parse_args()
    if not shutil.which("dnsperf"):
        raise SystemExit("dnsperf is not installed (Debian package dnsperf)")
    from publisher.lists.tree import DirTree
    from publisher.publish.build import compile_tree, write_build
    from publisher.publish.manifest import Source

    rng = random.Random(5782)
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    base = work / "base"
    t0 = time.monotonic()
    counts = generate(base, n32=args.entries, ncidr=max(1, args.entries // 60), nv6=max(1, args.entries // 10))
    probes = probe_addresses(rng)
    now = dt.datetime.now(dt.UTC)
    builds = {}
    for variant in ("A", "B"):
        write_variant(work / variant, base, probes, variant)
        builds[variant] = compile_tree(DirTree(work / variant), as_of=now)
    want = [(expected(builds["A"].zones[ZONE], p), expected(builds["B"].zones[ZONE], p)) for p in probes]
    keep = [i for i, (a, b) in enumerate(want) if a != b]
    probes, want = [probes[i] for i in keep], [want[i] for i in keep]
    prepared = time.monotonic() - t0
    zones_dir = work / "zones"
    serial_variant: dict[int, str] = {}

    def publish(variant: str) -> float:
        started = time.monotonic()
        manifest, _ = write_build(
            zones_dir,
            builds[variant],
            source=Source(kind="soak"),
            now=dt.datetime.now(dt.UTC),
        )
        serial_variant[manifest.zones[ZONE].serial] = variant
        return time.monotonic() - started

    publish("A")
    queries = work / "queries.txt"
    dnsperf_queries(queries, base, rng)
    log_path = work / "server.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "publisher.server", "--zones", str(zones_dir), "--listen", "127.0.0.1:0"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (m := re.search(r"listening udp 127\.0\.0\.1:(\d+)", log_path.read_text())):
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("server did not start:\n" + log_path.read_text())
            time.sleep(0.05)
        port = int(m.group(1))
        subprocess.run(
            ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-l", "2"],
            capture_output=True,
            check=True,
        )
        rss_start = rss_kib(server.pid)
        stop = threading.Event()
        verdicts = Verdicts()
        check = threading.Thread(target=verifier, args=(port, probes, want, stop, verdicts))
        perf = subprocess.Popen(
            ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-l", f"{args.seconds:g}"]
            + ["-c", "4", "-q", "200", "-t", "5"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        check.start()
        start = time.monotonic()
        publish_times: list[float] = []
        publish_ends: list[float] = []  # seconds after dnsperf started
        interval = args.seconds / (args.publishes + 2)
        variant = "B"
        while time.monotonic() - start < args.seconds - 1:
            next_at = start + interval * (len(publish_times) + 1)
            time.sleep(max(0.0, next_at - time.monotonic()))  # pacing the publishes, not a synchronisation
            publish_times.append(publish(variant))
            publish_ends.append(time.monotonic() - start)
            variant = "B" if variant == "A" else "A"
        out, _ = perf.communicate(timeout=args.seconds + 60)
        time.sleep(1.5)  # the last publish reaches the server within a poll (0.5 s)
        stop.set()
        check.join(timeout=30)
        rss_end = rss_kib(server.pid)
        hwm = next(
            int(line.split()[1])
            for line in Path(f"/proc/{server.pid}/status").read_text().splitlines()
            if line.startswith("VmHWM")
        )
        alive = server.poll() is None
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
    log_text = log_path.read_text()
    reloads = len(re.findall(r"reloaded generation", log_text))
    refused = len(re.findall(r"reload (refused|failed)", log_text))
    wrong_serial = 0
    for i, serial in verdicts.negative_serials:
        variant_seen = serial_variant.get(serial)
        if variant_seen is None or want[i][0 if variant_seen == "A" else 1] is not None:
            wrong_serial += 1
            if len(verdicts.examples) < 10:
                verdicts.examples.append(
                    f"{probes[i]} NXDOMAIN with serial {serial} ({variant_seen or 'never published'})"
                )
    inconsistent = verdicts.inconsistent + wrong_serial
    during = sum(1 for end in publish_ends if end <= args.seconds)
    sent = int(grab(r"Queries sent:\s+(\d+)", out))
    completed = int(grab(r"Queries completed:\s+(\d+)", out))
    lost = int(grab(r"Queries lost:\s+(\d+)", out))
    qps = float(grab(r"Queries per second:\s+([\d.]+)", out))
    latency = float(grab(r"Average Latency \(s\):\s+([\d.]+)", out))
    checks = [
        (
            "zone",
            f"{ZONE}: {counts['v4_32']:,} IPv4 /32, "
            f"{counts['v4_cidr']:,} CIDRs, {counts['v6']:,} IPv6 + {PROBES:,} probes",
            "",
            True,
        ),
        (
            "dnsperf: queries sent / completed",
            f"{sent:,} / {completed:,} in {args.seconds:g} s ({qps:,.0f} qps, avg {latency * 1000:.2f} ms)",
            "",
            True,
        ),
        ("dnsperf: queries lost", f"{lost:,}", "0", lost == 0),
        (
            "republishes (alternating A / B) during the dnsperf run",
            f"{during} of {len(publish_times)} (each {min(publish_times):.1f}-{max(publish_times):.1f} s)",
            f">= {args.publishes}",
            during >= args.publishes,
        ),
        (
            "reloads logged by the server / refused",
            f"{reloads} / {refused}",
            f">= {args.publishes} / 0",
            reloads >= args.publishes and refused == 0,
        ),
        (
            "verifier: probe answers checked",
            f"{verdicts.checks:,} ({len(probes):,} probes that differ between A and B)",
            "",
            verdicts.checks > 0,
        ),
        ("verifier: lost (no answer in 2 s)", f"{verdicts.lost:,}", "0", verdicts.lost == 0),
        ("verifier: inconsistent with both variants", f"{inconsistent:,}", "0", inconsistent == 0),
        ("server alive at the end", "yes" if alive else "NO", "yes", alive),
        (
            "RSS at start -> end (peak)",
            f"{rss_start / 1024:.1f} -> {rss_end / 1024:.1f} MiB (peak {hwm / 1024:.1f} MiB)",
            "",
            True,
        ),
    ]
    rows = [(what, value, target, "ok" if ok else "FAIL") for what, value, target, ok in checks]
    text = "\n".join(
        [
            "# soak (make soak)",
            "",
            f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine()}; data generated and both variants "
            f"compiled in {prepared:.0f} s. dnsperf -c 4 -q 200 (no rate limit) on {queries.name} (half listed, "
            "half unlisted, 90% A / 10% TXT); the server reloads on the manifest change it polls for twice a second; "
            "all three (server, dnsperf, publisher + verifier) share the machine's 2 cores.",
            "",
            table(rows, ("measure", "value", "target", "")),
            "",
        ]
        + (
            [f"Inconsistent answers (first {len(verdicts.examples)}):", ""]
            + [f"- {e}" for e in verdicts.examples]
            + [""]
            if verdicts.examples
            else []
        )
    )
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    shutil.rmtree(work, ignore_errors=True)
    return 0 if all(ok for *_, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
