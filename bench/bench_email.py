"""`make bench-email` (and the second half of `make bench-serve`): a 1,000,000-address email
zone compiled, loaded and served.

Compile: a lists folder of one email zone whose bulk file holds 1M generated addresses (a
fifth with capitals, a +tag or gmail dots), taken through `publisher compile`'s steps in a
child process, each timed (read + validate, which normalises and hashes every address;
compile; write); the snapshot loaded in another child (time, RSS above the interpreter),
beside what a dict of the same names costs and rbldnsd loading our `.rbldnsd` export.
Serve: one generation holding the email zone
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
import os
import random
import shutil
import sys
import tempfile
import tracemalloc
from array import array
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_serve import SERVER_CORE, Target, measure
from bench.common import (
    DATA,
    compile_steps,
    free_port,
    machine,
    rbldnsd_load,
    run_child,
    snapshot_load,
    table,
)
from bench.common import report as write_report

EMAIL_ZONE = "hbl.bench.example.test"
IP_ZONE = "ip.bench.example.test"
LISTS = DATA / "email-lists"
ZONES = DATA / "email-zones"  # `publisher compile`'s steps write here
SERVE_ZONES = DATA / "email-serve-zones"  # the email zone and an ip zone, one generation
N = 1_000_000


ZONES_YAML = f"""\
zones:
  - name: {EMAIL_ZONE}
    kind: email
    role: block
    sources: [hbl/*.txt]
    code: 127.0.2.2
    txt: "Listed by {{zone}}: {{reason}}"
    ns: [{{name: ns.example.test}}]
    email: {{hash: sha1, suffix: _email}}
"""
#: Of every 10 addresses, this many are written as a person or a feed might, not in plain lower case:
#: capitals, a +tag, gmail.com dots (the reader's slow path, which normalises them).
MIXED = 2


def addresses(n: int, seed: int = 15) -> list[str]:
    rng = random.Random(seed)
    domains = [f"mail{i}.example" for i in range(1000)]
    out = []
    for i in range(n):
        user = f"user.{rng.randrange(10**12)}"
        if i % 10 >= MIXED:
            out.append(f"{user}@{rng.choice(domains)}")
        elif i % 2:
            out.append(f"{user.capitalize()}+x{i % 7}@{rng.choice(domains)}")
        else:
            out.append(f"{user}@{rng.choice(('gmail.com', 'GoogleMail.com'))}")
    return out


def child_compile() -> None:
    """`publisher compile`'s steps, timed: read + validate the 1M-line feed, compile, write."""
    import json

    times, zone = compile_steps(LISTS, ZONES)
    print(json.dumps({**times, "names": len(zone.dom_exact) - 1}))  # the test point not counted


def child_load() -> None:
    """The published snapshot loaded: time, and the zone's memory above the interpreter."""
    import json

    figures, published = snapshot_load(ZONES)
    assert published.zones[EMAIL_ZONE].lookup_domain("test._email") >= 0
    print(json.dumps(figures))


def compile_figures(n: int) -> list[tuple[str, str, str, str]]:
    from publisher.emails import EmailSettings, address_name

    texts = addresses(n)
    (LISTS / "hbl").mkdir(parents=True, exist_ok=True)
    (LISTS / "zones.yaml").write_text(ZONES_YAML)
    (LISTS / "hbl" / "feed.txt").write_text(
        "# generated benchmark feed\n:127.0.2.2:listed in the bench feed\n" + "\n".join(texts) + "\n"
    )
    comp, comp_rss = run_child(["bench/bench_email.py", "--child", "compile"])
    load, _ = run_child(["bench/bench_email.py", "--child", "load"])
    snap = (ZONES / "current" / f"{EMAIL_ZONE}.snap").resolve()
    sample = [address_name(t, EmailSettings(suffix="_email"))[1] for t in texts[: n // 10]]
    tracemalloc.start()
    as_dict = dict.fromkeys([(n + ".")[:-1] for n in sample], 0)  # strings of its own
    dict_bytes = tracemalloc.get_traced_memory()[0] * 10  # a tenth measured, scaled
    tracemalloc.stop()
    del as_dict
    total = comp["load_validate"] + comp["compile"]
    rbl = rbldnsd_load(ZONES, EMAIL_ZONE, f"test._email.{EMAIL_ZONE}")
    rows = [
        ("input", f"{n:,} addresses, {MIXED}0% of them with capitals, a +tag or gmail dots", "", ""),
        ("read + validate (normalise and hash each address)", f"{comp['load_validate']:.2f} s", "", ""),
        ("compile (merge, sort, table)", f"{comp['compile']:.2f} s ({comp['names']:,} names)", "", ""),
        ("read + validate + compile", f"{total:.2f} s", "<= 10 s", "ok" if total <= 10 else "MISSED"),
        ("write artifacts (snapshot, BIND, rbldnsd, manifest)", f"{comp['write']:.2f} s", "", ""),
        ("peak RSS of the whole compile", f"{comp_rss / 1024:.0f} MiB", "", ""),
        ("snapshot size", f"{snap.stat().st_size / 2**20:.1f} MiB", "", ""),
        ("snapshot load (sha256 + arrays)", f"{load['load'] * 1000:.0f} ms", "", ""),
        ("loaded zone above the interpreter (RSS)", f"{load['zone_kib'] / 1024:.1f} MiB", "", ""),
        ("the same names as a dict of strings (a tenth measured, scaled)", f"{dict_bytes / 2**20:.0f} MiB", "", ""),
    ]  # fmt: skip
    if rbl:
        rows += [
            ("rbldnsd: start until answering (our .rbldnsd export)", f"{rbl['start']:.2f} s", "", ""),
            ("rbldnsd: RSS", f"{rbl['rss_kib'] / 1024:.1f} MiB", "", ""),
        ]
    return rows


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
    parser.add_argument("--child", choices=["compile", "load"])
    args = parser.parse_args()
    if args.child == "compile":
        return child_compile()
    if args.child == "load":
        return child_load()
    from publisher.compile.render import rbldnsd_zone_arg
    from publisher.emails import EmailSettings, address_name
    from publisher.publish import artifacts
    from publisher.publish.manifest import load_published

    compile_rows = compile_figures(args.entries)
    text = [
        "# bench-email",
        "",
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine()}; load average "
        f"{os.getloadavg()[0]:.1f} at the end of the compile (above 1, other work shared the cores).",
        "",
        f"## Compile ({args.entries:,} addresses in one bulk file, sha1, suffix `_email`)",
        "",
        "The steps of `publisher compile` on a lists folder of one email zone, each timed in a child "
        "process (bench/bench_email.py --child compile), then the snapshot loaded in another.",
        "",
        table(compile_rows, ("measure", "value", "target", "")),
    ]
    if not args.no_serve:
        zone = load_published(ZONES).zones[EMAIL_ZONE]
        names = [name for name in zone.dom_exact if not name.startswith("test.")]
        shutil.rmtree(SERVE_ZONES, ignore_errors=True)
        SERVE_ZONES.mkdir(parents=True)
        ipz = ip_zone(args.entries)
        artifacts.write_generation(SERVE_ZONES, {EMAIL_ZONE: zone, IP_ZONE: ipz}, {}, listen=())
        settings = EmailSettings(suffix="_email")
        unlisted = [address_name(f"nobody{i}@unlisted.example", settings)[1] for i in range(50_000)]
        hashed_q, ip_q = DATA / "email-queries.txt", DATA / "email-ip-queries.txt"
        queries(hashed_q, names[:200_000], unlisted, EMAIL_ZONE, args.queries)
        rng = random.Random(6)
        listed_ip = [f"{a & 255}.{a >> 8 & 255}.{a >> 16 & 255}.{a >> 24}" for a in ipz.v4_start[:200_000]]
        unlisted_ip = [f"{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}.240" for _ in range(50_000)]
        queries(ip_q, listed_ip, unlisted_ip, IP_ZONE, args.queries)
        py = [sys.executable, "-m", "publisher.server", "--zones", str(SERVE_ZONES), "--no-watch"]
        port = free_port()
        ours_email = Target("ours, email zone (sha1)", [*py, "--listen", f"127.0.0.1:{port}"], port, queries=hashed_q)
        port = free_port()
        ours_ip = Target("ours, ip zone", [*py, "--listen", f"127.0.0.1:{port}"], port, queries=ip_q)
        data = Path(tempfile.mkdtemp(prefix="bench-rbldnsd-"))
        data.chmod(0o755)
        rbl = data / f"{EMAIL_ZONE}.rbldnsd"
        shutil.copyfile((SERVE_ZONES / "current" / rbl.name).resolve(), rbl)
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
