"""`make bench-email`: a 1,000,000-address email zone compiled, loaded and served.

Compile: 1M generated addresses hashed into a SourceData as the list reader builds it
(`emails.address_name` per address: the reader's own figure is its own benchmark), then
`compile_zone`, the snapshot's dump and load, and the loaded table's memory (tracemalloc)
beside what a dict of the same names costs. Serve: one generation holding the email zone
(sha1, suffix `_email`) and an ip zone of 1M /32s is served by `publisher.server`, pinned to
core 0 with dnsperf on core 1 (bench_serve's harness); dnsperf asks hashed names (half
listed, half unlisted; 90% A, 10% TXT) and, in alternate runs, IP names of the same shape;
rbldnsd serves our `.rbldnsd` export of the email zone with the same hashed queries.
The generated data stays in bench/data (never committed); the figures go to
bench/results/email.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import random
import shutil
import sys
import tempfile
import time
import tracemalloc
from array import array
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_serve import SERVER_CORE, Target, measure
from bench.common import DATA, free_port, machine, table
from bench.common import report as write_report

EMAIL_ZONE = "hbl.bench.example.test"
IP_ZONE = "ip.bench.example.test"
ZONES = DATA / "email-zones"
N = 1_000_000


def addresses(n: int, seed: int = 15) -> list[str]:
    rng = random.Random(seed)
    domains = [f"mail{i}.example" for i in range(1000)] + ["gmail.com", "googlemail.com"]
    return [f"User.{rng.randrange(10**12)}+x{i % 7}@{rng.choice(domains)}" for i in range(n)]


def compile_figures(n: int) -> tuple[list[tuple[str, str]], object, object, list[str]]:
    from publisher.addresses import parse_code
    from publisher.compile.compiler import compile_zone
    from publisher.compile.snapshot import dump_snapshot, load_snapshot
    from publisher.emails import EmailSettings, address_name
    from publisher.model import NameServer, SourceData, Value, ZoneConfig

    settings = EmailSettings(suffix="_email")
    cfg = ZoneConfig(
        EMAIL_ZONE, "email", "block", ("hbl/*.txt",), parse_code("127.0.2.2"), "{reason}",
        ns=(NameServer("ns.example.test"),), email=settings,
    )  # fmt: skip
    texts = addresses(n)
    t0 = time.perf_counter()
    src = SourceData("hbl/bulk.txt")
    src.add_value(Value(parse_code("127.0.2.2"), "listed in the bench feed"))
    src.dom_name = [address_name(a, settings)[1] for a in texts]
    src.dom_wild = bytearray(n)
    src.dom_value = array("i", bytes(4 * n))
    src.dom_line = array("I", range(1, n + 1))
    hashed = time.perf_counter() - t0
    t0 = time.perf_counter()
    zone = compile_zone(cfg, [src], as_of=dt.datetime.now(dt.UTC))
    compiled = time.perf_counter() - t0
    t0 = time.perf_counter()
    data = dump_snapshot(zone)
    dumped = time.perf_counter() - t0
    names = list(src.dom_name)
    del src
    gc.collect()
    tracemalloc.start()
    t0 = time.perf_counter()
    loaded = load_snapshot(data)
    load_s = time.perf_counter() - t0
    table_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    sample = names[: n // 10]
    tracemalloc.start()
    as_dict = dict.fromkeys([(n + ".")[:-1] for n in sample], 0)  # strings of its own
    dict_bytes = tracemalloc.get_traced_memory()[0] * 10  # a tenth measured, scaled
    tracemalloc.stop()
    del as_dict
    t0 = time.perf_counter()
    found = sum(1 for name in sample if loaded.lookup_domain(name) >= 0)
    per_lookup = (time.perf_counter() - t0) / len(sample)
    assert found == len(sample)
    rows = [
        ("addresses", f"{n:,} ({len(loaded.dom_exact) - 1:,} distinct once normalised)"),
        ("hash 1M addresses into names (emails.address_name; the reader's share)", f"{hashed:.2f} s"),
        ("compile_zone (merge, sort, table)", f"{compiled:.2f} s"),
        ("hashing + compile (target <= 10 s with the reader)", f"{hashed + compiled:.2f} s"),
        ("snapshot dump", f"{dumped:.2f} s ({len(data) / 2**20:.1f} MiB)"),
        ("snapshot load", f"{load_s * 1000:.0f} ms"),
        ("loaded zone in memory", f"{table_bytes / 2**20:.1f} MiB ({table_bytes / n:.1f} bytes/entry)"),
        ("the names as a dict (from 100k, scaled)", f"{dict_bytes / 2**20:.1f} MiB ({dict_bytes / n:.0f} bytes/entry)"),
        ("lookup_domain by name (Python call)", f"{per_lookup * 1e6:.2f} us"),
    ]  # fmt: skip
    return rows, zone, loaded, names


def ip_zone(n: int):  # type: ignore[no-untyped-def]
    from publisher.addresses import parse_code
    from publisher.compile.compiler import compile_zone
    from publisher.model import NameServer, SourceData, Value, ZoneConfig

    cfg = ZoneConfig(
        IP_ZONE, "ip", "block", ("bl/*.txt",), parse_code("127.0.0.2"), "{reason}", ns=(NameServer("ns.example.test"),)
    )
    rng = random.Random(4)
    src = SourceData("bl/bulk.txt")
    src.add_value(Value(parse_code("127.0.0.2"), "listed in the bench feed"))
    starts = sorted({rng.randrange(0x0B000000, 0xDF000000) for _ in range(n)})
    src.v4_start = array("I", starts)
    src.v4_end = array("I", starts)
    src.v4_value = array("i", bytes(4 * len(starts)))
    src.v4_line = array("I", range(1, len(starts) + 1))
    return compile_zone(cfg, [src], as_of=dt.datetime.now(dt.UTC))


def queries(path: Path, names: list[str], unlisted: list[str], zone: str, n: int) -> None:
    rng = random.Random(5)
    lines = []
    for i in range(n):
        rel = rng.choice(names) if i % 2 == 0 else rng.choice(unlisted)
        lines.append(f"{rel}.{zone} {'TXT' if rng.random() < 0.1 else 'A'}")
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    parser.add_argument("--entries", type=int, default=N)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--queries", type=int, default=200_000)
    parser.add_argument("--no-serve", action="store_true")
    args = parser.parse_args()
    from publisher.compile.render import rbldnsd_zone_arg
    from publisher.compile.snapshot import dump_snapshot  # noqa: F401
    from publisher.emails import EmailSettings, address_name
    from publisher.publish import artifacts

    compile_rows, zone, _, names = compile_figures(args.entries)
    text = [
        "# bench-email",
        "",
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine()}. End to end through `publisher compile` "
        "is pending the list reader of email entries (issue 15, item 2); here the rows are built as it will "
        "build them (`emails.address_name`), then compiled.",
        "",
        "## Compile (1M addresses, sha1, suffix `_email`)",
        "",
        table(compile_rows, ("measure", "figure")),
    ]
    if not args.no_serve:
        ZONES.mkdir(parents=True, exist_ok=True)
        ipz = ip_zone(args.entries)
        artifacts.write_generation(ZONES, {EMAIL_ZONE: zone, IP_ZONE: ipz}, {}, listen=())
        settings = EmailSettings(suffix="_email")
        unlisted = [address_name(f"nobody{i}@unlisted.example", settings)[1] for i in range(50_000)]
        hashed_q, ip_q = DATA / "email-queries.txt", DATA / "email-ip-queries.txt"
        queries(hashed_q, names[:200_000], unlisted, EMAIL_ZONE, args.queries)
        rng = random.Random(6)
        listed_ip = [f"{a & 255}.{a >> 8 & 255}.{a >> 16 & 255}.{a >> 24}" for a in ipz.v4_start[:200_000]]
        unlisted_ip = [f"{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}.240" for _ in range(50_000)]
        queries(ip_q, listed_ip, unlisted_ip, IP_ZONE, args.queries)
        py = [sys.executable, "-m", "publisher.server", "--zones", str(ZONES), "--no-watch"]
        port = free_port()
        ours_email = Target("ours, email zone (sha1)", [*py, "--listen", f"127.0.0.1:{port}"], port, queries=hashed_q)
        port = free_port()
        ours_ip = Target("ours, ip zone", [*py, "--listen", f"127.0.0.1:{port}"], port, queries=ip_q)
        data = Path(tempfile.mkdtemp(prefix="bench-rbldnsd-"))
        data.chmod(0o755)
        rbl = data / f"{EMAIL_ZONE}.rbldnsd"
        shutil.copyfile((ZONES / "current" / rbl.name).resolve(), rbl)
        rbl.chmod(0o644)
        user = ["-u", "rbldns"] if __import__("os").geteuid() == 0 else []
        port = free_port()
        exe = shutil.which("rbldnsd") or "/usr/sbin/rbldnsd"
        rbld = Target(
            "rbldnsd, email zone",
            [
                exe,
                "-n",
                "-f",
                *user,
                "-b",
                f"127.0.0.1/{port}",
                "-w",
                str(data),
                rbldnsd_zone_arg(EMAIL_ZONE, rbl.name),
            ],
            port,
            cleanup=[data],
            queries=hashed_q,
        )
        servers = [ours_ip, ours_email, rbld]
        workdir = Path(tempfile.mkdtemp(prefix="bench-email-"))
        for t in servers:
            t.log = workdir / f"{t.label.replace(' ', '').replace(',', '')}.log"
        import bench.bench_serve as bs

        bs.ZONE = IP_ZONE  # Target.start waits for the test point of this zone (both zones have one)
        try:
            measure(servers, args.runs, args.seconds)
        finally:
            for t in servers:
                t.stop()
                for path in t.cleanup:
                    shutil.rmtree(path, ignore_errors=True)
            shutil.rmtree(workdir, ignore_errors=True)
        rows = [
            ("queries per second (median)", *(f"{t.med(lambda r: r.qps):,.0f}" for t in servers)),
            ("server CPU per query", *(f"{t.cpu_us:.2f} us" for t in servers)),
            ("  of which user space", *(f"{t.user_us:.2f} us" for t in servers)),
            ("server busy (share of one core)", *(f"{t.busy:.0%}" for t in servers)),
            ("answered NOERROR (listed)", *(f"{t.listed_share:.1%}" for t in servers)),
            ("lost queries (all runs)", *(str(sum(r.lost for r in t.runs)) for t in servers)),
            ("RSS after the runs", *(f"{t.rss_kib / 1024:.1f} MiB" for t in servers)),
        ]
        ratio = ours_ip.cpu_us / ours_email.cpu_us
        text += [
            "",
            f"## Serve ({args.runs} runs of {args.seconds:.0f} s per server, alternating, medians)",
            "",
            f"One `publisher.server` generation holds both zones ({args.entries:,} entries each); the server on core "
            f"{SERVER_CORE}, dnsperf -q 100 on the other. Hashed queries: `<sha1>._email.{EMAIL_ZONE}`, half "
            "listed, half unlisted, 90% A / 10% TXT; IP queries alike in the ip zone.",
            "",
            table(rows, ("measure", *(t.label for t in servers))),
            "",
            f"Hashed against IP queries, CPU per query: {ratio:.2f}x the IP rate (1.00x: the same cost; the target is "
            f"the same rate). qps ratio {ours_email.med(lambda r: r.qps) / ours_ip.med(lambda r: r.qps):.2f}x; "
            f"ours/rbldnsd on the email zone: {ours_email.med(lambda r: r.qps) / rbld.med(lambda r: r.qps):.2f}x qps.",
        ]
    write_report("\n".join(text) + "\n", args.out)


if __name__ == "__main__":
    main()
