"""Shared helpers for the benchmarks: data generation, child processes, tables."""

from __future__ import annotations

import json
import os
import random
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
ZONE = "bench.example.test"
#: NSD's `server:` on 127.0.0.1:{port}, everything under {dir}; zone stanzas follow it.
NSD_SERVER = """server:
    ip-address: 127.0.0.1@{port}
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{dir}"
    database: ""
    zonelistfile: "{dir}/zone.list"
    pidfile: "{dir}/nsd.pid"
    xfrdfile: "{dir}/xfrd.state"
    xfrdir: "{dir}"
    logfile: "{dir}/nsd.log"
    server-count: 1
remote-control:
    control-enable: no
"""

ZONES_YAML = f"""\
zones:
  - name: {ZONE}
    kind: ip
    role: block
    sources: [feed.txt]
    code: 127.0.0.2
    txt: "Listed by {ZONE}: {{reason}}"
    max_prefix: {{ipv4: 8, ipv6: 16}}
"""


def v4_lines(rng: random.Random, n32: int, ncidr: int) -> list[str]:
    """A value line, `n32` random /32s and `ncidr` CIDRs, drawn from `rng`."""
    ntoa, pack = socket.inet_ntoa, struct.pack
    lines = [":127.0.0.2:Listed: see https://bl.example.test/$"]
    for _ in range(n32):
        a = rng.randrange(0x01000000, 0x7F000000) if rng.random() < 0.5 else rng.randrange(0x80000000, 0xE0000000)
        lines.append(ntoa(pack("!I", a)))
    for _ in range(ncidr):
        plen = rng.choice((24, 24, 24, 23, 22, 20, 28, 29))
        a = rng.randrange(0x80000000, 0xE0000000) >> (32 - plen) << (32 - plen)
        lines.append(f"{ntoa(pack('!I', a))}/{plen}")
    return lines


def generate(
    lists: Path, n32: int = 1_000_000, ncidr: int = 10_000, nv6: int = 100_000, seed: int = 5782
) -> dict[str, int]:
    """A bulk feed like a real one: 1M random /32s, 10k CIDRs, 100k IPv6 prefixes."""
    rng = random.Random(seed)
    lists.mkdir(parents=True, exist_ok=True)
    (lists / "zones.yaml").write_text(ZONES_YAML)
    lines = ["# generated benchmark feed", *v4_lines(rng, n32, ncidr)]
    for _ in range(nv6):
        plen = rng.choice((48, 56, 64))
        a = (0x2001 << 112 | rng.getrandbits(112)) >> (128 - plen) << (128 - plen)
        lines.append(f"{socket.inet_ntop(socket.AF_INET6, a.to_bytes(16, 'big'))}/{plen}")
    (lists / "feed.txt").write_text("\n".join(lines) + "\n")
    return {"v4_32": n32, "v4_cidr": ncidr, "v6": nv6, "lines": len(lines)}


def run_child(args: list[str], env: dict[str, str] | None = None) -> tuple[dict[str, Any], int]:
    """Run a Python child that prints JSON on its last line; return it and its peak RSS (KiB)."""
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, env=env, cwd=ROOT)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed with {proc.returncode}")
    return json.loads(out.decode().strip().splitlines()[-1]), usage.ru_maxrss


def compile_steps(lists: Path, zones: Path) -> tuple[dict[str, float], Any]:
    """`publisher compile`'s steps on `lists` (one zone), each timed: read + validate, compile,
    write a generation into `zones` (emptied first). Returns the timings and the compiled zone."""
    import datetime as dt
    import shutil

    from publisher.compile.compiler import compile_zone
    from publisher.lists.load import load_lists, require_clean
    from publisher.lists.tree import DirTree
    from publisher.publish.build import Build, write_build
    from publisher.publish.manifest import Source

    now = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    loaded = load_lists(DirTree(lists), as_of=now)
    require_clean(loaded)
    t1 = time.perf_counter()
    assert loaded.config is not None
    cfg = loaded.config.zones[0]
    zone = compile_zone(cfg, loaded.sources[cfg.name], as_of=now)
    t2 = time.perf_counter()
    shutil.rmtree(zones, ignore_errors=True)
    write_build(zones, Build(loaded.config, loaded, {cfg.name: zone}, now), source=Source(kind="bench"), now=now)
    t3 = time.perf_counter()
    return {"load_validate": t1 - t0, "compile": t2 - t1, "write": t3 - t2}, zone


def snapshot_load(zones: Path) -> tuple[dict[str, float], Any]:
    """The current generation of `zones` loaded as the server loads it: seconds, and the RSS it
    adds above the interpreter (KiB). Returns them and the `Published`."""
    import gc

    from publisher.compile import snapshot  # noqa: F401  (imports before the baseline)
    from publisher.publish.manifest import load_published

    gc.collect()
    base = rss_kib(os.getpid())
    t0 = time.perf_counter()
    published = load_published(zones)
    t1 = time.perf_counter()
    gc.collect()
    return {"load": t1 - t0, "zone_kib": rss_kib(os.getpid()) - base}, published


def rbldnsd_load(zones: Path, zone: str, probe: str) -> dict[str, float]:
    """rbldnsd serving the zone's `.rbldnsd` export of the current generation in `zones`: seconds
    until it answers `probe` (a listed name) and its RSS then; {} without rbldnsd."""
    import shutil

    exe = shutil.which("rbldnsd") or "/usr/sbin/rbldnsd"
    if not Path(exe).exists():
        return {}
    from publisher.compile.render import rbldnsd_zone_arg

    port = free_port()
    rbl = (zones / "current" / f"{zone}.rbldnsd").resolve()
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [exe, "-n", "-f", "-q", "-b", f"127.0.0.1/{port}", "-w", str(rbl.parent), rbldnsd_zone_arg(zone, rbl.name)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_udp_answer(port, probe, timeout=120)
        return {"start": time.monotonic() - t0, "rss_kib": rss_kib(proc.pid)}
    finally:
        proc.terminate()
        proc.wait(10)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def wait_udp_answer(port: int, name: str, timeout: float = 30.0) -> float:
    """Seconds until a server on 127.0.0.1:port answers an A query for name."""
    q = b"\x12\x34\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00\x00\x01\x00\x01"
    start = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.05)
        while time.monotonic() - start < timeout:
            s.sendto(q, ("127.0.0.1", port))
            try:
                s.recv(512)
                return time.monotonic() - start
            except OSError:
                continue
    raise SystemExit(f"no answer on port {port} within {timeout}s")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(r: tuple[str, ...]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def machine() -> str:
    cpu = "unknown cpu"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} cores, {cpu}, Python {sys.version.split()[0]}"


def report(text: str, out: Path | None) -> None:
    """Print a benchmark's Markdown and write it to `out` (bench/results/...) when given."""
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
