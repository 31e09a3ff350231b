"""`make bench-compile`: 1M /32 + 10k CIDR + 100k IPv6 feed -> validate, compile, artifacts.

Reports wall times per phase, peak RSS of the compile, snapshot size, snapshot
load time and the memory the loaded zone adds to the interpreter, with rbldnsd
loading the same data (our .rbldnsd rendering of it) in the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import (
    DATA,
    ZONE,
    compile_steps,
    generate,
    machine,
    rbldnsd_load,
    run_child,
    snapshot_load,
    table,
)
from bench.common import report as write_report

LISTS = DATA / "lists"
ZONES = DATA / "zones"


def child_compile() -> None:
    times, zone = compile_steps(LISTS, ZONES)
    print(json.dumps({**times, "intervals": zone.interval_count}))


def child_load() -> None:
    figures, published = snapshot_load(ZONES)
    assert published.zones[ZONE].lookup_v4(0x7F000002) >= 0
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", choices=["compile", "load"])
    args = parser.parse_args()
    if args.child == "compile":
        return child_compile()
    if args.child == "load":
        return child_load()
    t0 = time.perf_counter()
    counts = generate(LISTS)
    gen_time = time.perf_counter() - t0
    comp, comp_rss = run_child(["bench/bench_compile.py", "--child", "compile"])
    base, base_rss = run_child(
        ["-c", "import json, publisher.publish.manifest, publisher.compile.snapshot; print(json.dumps({}))"]
    )
    load, load_rss = run_child(["bench/bench_compile.py", "--child", "load"])
    snap = (ZONES / "current" / f"{ZONE}.snap").resolve()
    rbl = rbldnsd_load(ZONES, ZONE, f"2.0.0.127.{ZONE}")
    total = comp["load_validate"] + comp["compile"]
    rows = [
        (
            "input",
            f"{counts['lines']:,} lines: {counts['v4_32']:,} IPv4 /32, "
            f"{counts['v4_cidr']:,} IPv4 CIDRs, {counts['v6']:,} IPv6 prefixes",
            "",
            "",
        ),
        ("read + validate", f"{comp['load_validate']:.2f} s", "", ""),
        ("compile", f"{comp['compile']:.2f} s ({comp['intervals']:,} intervals)", "", ""),
        ("validate + compile", f"{total:.2f} s", "<= 10 s", "ok" if total <= 10 else "MISSED"),
        ("write artifacts (snapshot, BIND, rbldnsd, manifest)", f"{comp['write']:.2f} s", "", ""),
        (
            "first compile, all artifacts (read + validate + compile + write)",
            f"{total + comp['write']:.2f} s",
            "<= 8 s",
            "ok" if total + comp["write"] <= 8 else "MISSED",
        ),
        ("peak RSS of the whole compile", f"{comp_rss / 1024:.0f} MiB", "", ""),
        ("snapshot size", f"{snap.stat().st_size / 1e6:.1f} MB", "", ""),
        (
            "snapshot load (sha256 + arrays)",
            f"{load['load']:.3f} s",
            "<= 0.5 s",
            "ok" if load["load"] <= 0.5 else "MISSED",
        ),
        (
            "loaded zone above the interpreter",
            f"{load['zone_kib'] / 1024:.1f} MiB",
            "<= 25 MB",
            "ok" if load["zone_kib"] / 1024 <= 25 else "MISSED",
        ),
    ]
    if rbl:
        rows += [
            ("rbldnsd: start until answering (same data)", f"{rbl['start']:.2f} s", "", ""),
            ("rbldnsd: RSS", f"{rbl['rss_kib'] / 1024:.1f} MiB", "", ""),
        ]
    text = "\n".join(
        [
            "# bench-compile",
            "",
            f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine()}; "
            f"data generated in {gen_time:.1f} s (seed 5782); load average {os.getloadavg()[0]:.1f} "
            "at the end (above 1, other work shared the cores and the times are longer).",
            "",
            table(rows, ("measure", "value", "target", "")),
            "",
        ]
    )
    write_report(text, args.out)


if __name__ == "__main__":
    main()
