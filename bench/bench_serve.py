"""`make bench-serve`: dnsperf against our server and against rbldnsd, same data, same queries.

The 1M-entry feed of bench-compile (generated and compiled once into bench/data/zones)
is served by our server (the snapshot) and by Debian's rbldnsd (our .rbldnsd rendering
of the same zone). Each server is pinned to core 0 and dnsperf to core 1, except
`ours --workers 2`: its two workers and dnsperf share both cores (there are only two),
and dnsperf acts as 4 clients so that its queries come from 4 source ports, which
SO_REUSEPORT spreads over the workers. Runs alternate
between the servers so that the machine's noise falls on all of them alike, and every
figure is the median over the runs. Server CPU comes from /proc/PID/stat (utime+stime,
all threads, and the workers' under --workers) around each run, divided by the queries dnsperf saw completed; /proc/stat
gives the softirq time (the loopback path, charged to no process) and what other tasks
took from the two cores, since a shared machine moves qps far more than CPU per query.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import (
    DATA,
    ROOT,
    ZONE,
    free_port,
    generate,
    machine,
    rss_kib,
    run_child,
    table,
    wait_udp_answer,
)
from bench.common import report as write_report

LISTS = DATA / "lists"
ZONES = DATA / "zones"
QUERIES = DATA / "serve-queries.txt"
KEYED_QUERIES = DATA / "serve-queries-keyed.txt"  # the same names, each with one of the KEYS keys
ACL_SIZE = 1_000
KEYS = 10_000
EXPECTED_LISTINGS = 1_110_000  # what bench.common.generate's defaults compile to
TICK = os.sysconf("SC_CLK_TCK")
SERVER_CORE, LOAD_CORE = "0", "1"


@dataclass
class Run:
    qps: float
    completed: int
    lost: int
    latency: float  # seconds
    cpu: float  # server CPU seconds during the run
    user: float  # of which in user space (the rest is the kernel's, in the server's system calls)
    load_cpu: float  # dnsperf CPU seconds
    seconds: float
    noerror: int
    softirq: float  # CPU seconds in softirq on both cores (the loopback UDP path, mostly)
    others: float  # CPU seconds of every other task on both cores: the machine's noise


@dataclass
class Target:
    """One server under test: how to start it, and what it measured."""

    label: str
    cmd: list[str]
    port: int
    cleanup: list[Path] = field(default_factory=list)
    metrics_port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    starts: list[float] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    rss_kib: int = 0
    log: Path | None = None
    latency_note: str = ""
    cores: str = SERVER_CORE  # taskset -c for the server (and its workers)
    load_cores: str = LOAD_CORE  # taskset -c for dnsperf
    clients: int = 1  # dnsperf -c: source ports
    ready_line: str = ""  # a log line to wait for after the first answer (every worker serving)
    queries: Path = QUERIES  # dnsperf's query file

    def start(self) -> float:
        """Start the server pinned to SERVER_CORE; seconds until it answers."""
        assert self.log is not None
        offset = self.log.stat().st_size if self.log.exists() else 0
        t0 = time.monotonic()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                ["taskset", "-c", self.cores, *self.cmd], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
            )
        try:
            wait_udp_answer(self.port, f"2.0.0.127.{ZONE}", timeout=120)
            while self.ready_line and self.ready_line not in self.log.read_bytes()[offset:].decode(errors="replace"):
                if time.monotonic() - t0 > 120 or self.proc.poll() is not None:
                    raise SystemExit
                time.sleep(0.01)  # the workers log when all serve; polled, bounded above
        except SystemExit:
            self.stop()
            raise SystemExit(f"{self.label} did not answer; its log:\n{self.log.read_text(errors='replace')}") from None
        return time.monotonic() - t0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def pids(self) -> list[int]:
        """The server's process and its children (the workers of --workers)."""
        assert self.proc is not None
        pid = self.proc.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            children = []
        return [pid, *map(int, children)]

    def cpu_seconds(self) -> tuple[float, float]:
        """(user, system) CPU seconds of the server and its workers so far."""
        user = system = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            user += int(fields[11])  # utime (field 14)
            system += int(fields[12])  # stime (field 15)
        return user / TICK, system / TICK

    def med(self, f: Callable[[Run], float]) -> float:
        """The median over the runs of f(run)."""
        return statistics.median(f(r) for r in self.runs)

    # The figures the report and its notes use (CPU shares: of one core; others': of both cores).
    @property
    def cpu_us(self) -> float:
        return self.med(lambda r: r.cpu / r.completed * 1e6)

    @property
    def user_us(self) -> float:
        return self.med(lambda r: r.user / r.completed * 1e6)

    @property
    def busy(self) -> float:
        return self.med(lambda r: r.cpu / r.seconds)

    @property
    def load_busy(self) -> float:
        return self.med(lambda r: r.load_cpu / r.seconds)

    @property
    def others_busy(self) -> float:
        return self.med(lambda r: r.others / r.seconds / 2)

    @property
    def softirq_us(self) -> float:
        return self.med(lambda r: r.softirq / r.completed * 1e6)

    @property
    def listed_share(self) -> float:
        return self.med(lambda r: r.noerror / r.completed)


def ensure_data() -> str:
    """Reuse bench/data/zones when it holds the benchmark zone, else generate and compile it."""
    manifest = ZONES / "manifest.json"
    try:
        published = json.loads(manifest.read_text())
        if published["zones"][ZONE]["counts"]["listings"] == EXPECTED_LISTINGS and (ZONES / "current").exists():
            return f"reused bench/data/zones (generation {published['generation']})"
    except (OSError, KeyError, ValueError):
        pass
    t0 = time.perf_counter()
    generate(LISTS)
    comp, _ = run_child(["bench/bench_compile.py", "--child", "compile"])
    return f"generated and compiled in {time.perf_counter() - t0:.0f} s ({comp['intervals']:,} intervals)"


def make_queries(path: Path, n: int, seed: int = 3) -> None:
    """n queries: half listed addresses, half unlisted; 90% A, 10% TXT; shuffled."""
    from publisher.publish.manifest import load_published

    zone = load_published(ZONES).zones[ZONE]
    rng = random.Random(seed)
    starts, ends = zone.v4_start, zone.v4_end
    addrs: list[int] = []
    for _ in range(n // 2):
        i = rng.randrange(len(starts))
        addrs.append(rng.randint(starts[i], ends[i]))
    while len(addrs) < n:
        a = rng.randrange(0x01000000, 0xE0000000)
        if a >> 24 != 127 and zone.lookup_v4(a) < 0:
            addrs.append(a)
    rng.shuffle(addrs)
    lines = []
    for a in addrs:
        rev = f"{a & 255}.{a >> 8 & 255}.{a >> 16 & 255}.{a >> 24}"
        lines.append(f"{rev}.{ZONE} {'TXT' if rng.random() < 0.1 else 'A'}")
    path.write_text("\n".join(lines) + "\n")


def make_keyed_queries(plain: Path, path: Path) -> None:
    """`plain`'s names as d.c.b.a.KEY.ZONE, each with a key drawn from gated_server's KEYS keys."""
    from bench.gated_server import bench_keys

    keys = bench_keys(KEYS)
    rng = random.Random(7)
    lines = []
    for line in plain.read_text().splitlines():
        name, qtype = line.split()
        lines.append(f"{name[: -len(ZONE)]}{rng.choice(keys)}.{ZONE} {qtype}")
    path.write_text("\n".join(lines) + "\n")


def gate_note(servers: list[Target], ours: Target) -> str:
    """CPU per query with a client ACL or keyed queries against the same server without either."""
    parts = []
    for t in servers:
        if t.label.startswith("ours, ") and t.label != "ours, before":
            parts.append(f"{t.label[6:]} {t.cpu_us:.2f} us ({t.cpu_us / ours.cpu_us - 1:+.1%})")
    if not parts:
        return ""
    before = next((t for t in servers if t.label == "ours, before"), None)
    was = f" (the code before the gate: {before.cpu_us:.2f} us)" if before is not None else ""
    return (
        f"Who may query (issue 12): server CPU per query without an ACL or keys {ours.cpu_us:.2f} us{was}; "
        + "; ".join(parts)
        + ". The budget is +15%. Without either, ZoneSet.gate is None and the loops pay one attribute test; "
        "with an ACL, each query pays a cached per-client verdict look-up; a keyed query (no ACL: no "
        "client look-up) one regex match and the key check (publisher/server/keys.py reading a key file "
        "of that many keys, each with a daily quota: a dict look-up, a constant-time compare, a counter). "
        "The keyed run's answers are those of the plain names."
    )


def cpu_ticks() -> tuple[int, int]:
    """(busy, softirq) ticks summed over the two cores in use, from /proc/stat."""
    busy = soft = 0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name in (f"cpu{SERVER_CORE}", f"cpu{LOAD_CORE}"):
            v = [int(x) for x in values]
            busy += sum(v[:8]) - v[3] - v[4]  # all but idle and iowait (guest time is inside user)
            soft += v[6]
    return busy, soft


def dnsperf(port: int, seconds: float, target: Target | None) -> Run:
    """One dnsperf run pinned to the target's load cores; the server's CPU is read around it."""
    cmd = [
        "taskset",
        "-c",
        target.load_cores if target else LOAD_CORE,
        "dnsperf",
        "-s",
        "127.0.0.1",
        "-p",
        str(port),
        "-d",
        str(target.queries if target else QUERIES),
        "-l",
        str(seconds),
        "-q",
        "100",
        "-c",
        str(target.clients if target else 1),
    ]
    user0, sys0 = target.cpu_seconds() if target else (0.0, 0.0)
    busy0, soft0 = cpu_ticks()
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    out = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    user1, sys1 = target.cpu_seconds() if target else (0.0, 0.0)
    cpu0, cpu1 = user0 + sys0, user1 + sys1
    busy1, soft1 = cpu_ticks()
    load_cpu = usage.ru_utime + usage.ru_stime
    softirq = (soft1 - soft0) / TICK
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"dnsperf failed:\n{out}")

    def grab(pattern: str) -> str:
        m = re.search(pattern, out)
        if m is None:
            raise SystemExit(f"dnsperf output without {pattern!r}:\n{out}")
        return m.group(1)

    noerror = re.search(r"NOERROR (\d+)", out)
    return Run(
        qps=float(grab(r"Queries per second:\s+([\d.]+)")),
        completed=int(grab(r"Queries completed:\s+(\d+)")),
        lost=int(grab(r"Queries lost:\s+(\d+)")),
        latency=float(grab(r"Average Latency \(s\):\s+([\d.]+)")),
        cpu=cpu1 - cpu0,
        user=user1 - user0,
        load_cpu=load_cpu,
        seconds=wall,
        noerror=int(noerror.group(1)) if noerror else 0,
        softirq=softirq,
        others=max(0.0, (busy1 - busy0) / TICK - softirq - (cpu1 - cpu0) - load_cpu),
    )


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return str(resp.read().decode())


def targets(workdir: Path, with_metrics: bool, baseline: Path | None = None) -> list[Target]:
    from publisher.compile.render import rbldnsd_zone_arg

    py = [sys.executable, "-m", "publisher.server", "--zones", str(ZONES), "--no-watch"]
    port = free_port()
    out = [Target("ours", [*py, "--listen", f"127.0.0.1:{port}"], port)]
    port = free_port()
    out.append(
        Target(
            "ours --workers 2",
            [*py, "--listen", f"127.0.0.1:{port}", "--workers", "2"],
            port,
            cores=f"{SERVER_CORE},{LOAD_CORE}",
            load_cores=f"{SERVER_CORE},{LOAD_CORE}",
            clients=4,
            ready_line="all 2 workers serving",
        )
    )
    if with_metrics:
        port, mport = free_port(), free_port()
        out.append(
            Target(
                "ours --metrics",
                [*py, "--listen", f"127.0.0.1:{port}", "--metrics", f"127.0.0.1:{mport}"],
                port,
                metrics_port=mport,
            )
        )
    if baseline is not None:  # the same server from another source tree (e.g. `git archive main publisher`)
        port = free_port()
        run = (
            f"import sys; sys.path.insert(0, {str(baseline)!r}); "
            "from publisher.server.__main__ import main; sys.exit(main())"
        )
        cmd = [sys.executable, "-c", run, "--zones", str(ZONES), "--no-watch", "--listen", f"127.0.0.1:{port}"]
        out.append(Target("ours, before", cmd, port))
    gated = [sys.executable, str(ROOT / "bench" / "gated_server.py"), "--zones", str(ZONES)]
    for label, extra in (
        (f"ours, ACL {ACL_SIZE:,} (not matched)", ["--acl", str(ACL_SIZE)]),
        (f"ours, ACL {ACL_SIZE:,} (pass rule matched)", ["--acl", str(ACL_SIZE), "--acl-pass"]),
        (f"ours, keyed, {KEYS:,} keys", ["--keys", str(KEYS)]),
    ):
        port = free_port()
        t = Target(label, [*gated, "--listen", f"127.0.0.1:{port}", *extra], port)
        if "--keys" in extra:
            t.queries = KEYED_QUERIES
        out.append(t)
    exe = shutil.which("rbldnsd") or "/usr/sbin/rbldnsd"
    # rbldnsd refuses root: it switches to its user, who must read the data (0755 dir, 0644 file).
    data = Path(tempfile.mkdtemp(prefix="bench-rbldnsd-"))
    data.chmod(0o755)
    rbl = data / f"{ZONE}.rbldnsd"
    shutil.copyfile((ZONES / "current" / rbl.name).resolve(), rbl)
    rbl.chmod(0o644)
    user = ["-u", "rbldns"] if os.geteuid() == 0 else []
    port = free_port()
    out.append(
        Target(
            "rbldnsd",
            [exe, "-n", "-f", *user, "-b", f"127.0.0.1/{port}", "-w", str(data), rbldnsd_zone_arg(ZONE, rbl.name)],
            port,
            cleanup=[data],
        )
    )
    for t in out:
        t.log = workdir / f"{t.label.replace(' ', '').replace('-', '')}.log"
    return out


def measure(servers: list[Target], runs: int, seconds: float) -> None:
    for t in servers:
        for _ in range(runs):
            t.starts.append(t.start())
            t.stop()
    for t in servers:
        t.start()
        dnsperf(t.port, 2, t)  # warm-up: lazily built answers, page cache, sockets
    for i in range(runs):
        order = servers if i % 2 == 0 else servers[::-1]
        for t in order:
            r = dnsperf(t.port, seconds, t)
            t.runs.append(r)
            print(
                f"run {i + 1}/{runs} {t.label}: {r.qps:,.0f} qps, {r.cpu / r.completed * 1e6:.2f} us CPU/query, "
                f"lost {r.lost}",
                file=sys.stderr,
            )
    for t in servers:
        t.rss_kib = sum(rss_kib(pid) for pid in t.pids())


def bounds_note(ours: Target, rbl: Target, load: tuple[float, float]) -> str:
    """What limited the figures, read off the CPU shares rather than assumed."""
    full, noisy = 0.9, 0.15
    parts = [
        "What bounds the result: each server answers on one thread pinned to core 0 (rbldnsd is single-threaded; "
        "ours serves UDP on one thread, and the GIL would hold it to one core anyway) and dnsperf runs on core 1 "
        f"with at most 100 queries outstanding. Against rbldnsd, dnsperf used {rbl.load_busy:.0%} of its core and "
        f"rbldnsd {rbl.busy:.0%} of its own; against ours, dnsperf {ours.load_busy:.0%} and ours {ours.busy:.0%}."
    ]
    others = max(ours.others_busy, rbl.others_busy)
    if others >= noisy:
        parts.append(
            f"Other tasks took {ours.others_busy:.0%} of the two cores during ours' runs and {rbl.others_busy:.0%} "
            f"during rbldnsd's (load average {load[0]:.1f} before, {load[1]:.1f} after): on shared cores qps "
            "follows the scheduler more than the servers, so the qps ratio is noisy; compare CPU per query."
        )
    elif rbl.load_busy >= full and rbl.busy < full:
        parts.append(
            "dnsperf's core is full while rbldnsd's is not: rbldnsd's qps is the load generator's "
            "ceiling, not rbldnsd's, so the qps ratio flatters ours."
        )
    elif rbl.busy < full:
        parts.append(
            "Neither rbldnsd nor dnsperf fills its core: rbldnsd answers faster than the queries arrive, empties "
            "its socket and sleeps until the next datagram wakes it (a cross-core wake-up, dear in a VM), so its "
            "qps here is bound by that ping-pong, not by its CPU, and the qps ratio flatters ours (which takes "
            "up to 64 datagrams per wake-up). The capacity row is what rbldnsd would answer with its core full."
        )
    if ours.busy >= full:
        parts.append("Ours fills its core: its qps is its own ceiling, the interpreter's work per query.")
    parts.append(
        "CPU per query (and the capacity row: what one core would answer at 100%) is the steadier figure. The "
        "kernel's loopback UDP path costs both servers alike (partly as softirq time, charged to no process and "
        "left out of CPU per query); ours adds the interpreter per datagram (batched through recvmmsg/sendmmsg, "
        "then one regex match and one bisect per common query)."
    )
    return " ".join(parts)


def workers_note(w: Target, ours: Target, rbl: Target) -> str:
    """What the --workers 2 column shows on a 2-core machine, and what it does not."""
    qps = w.med(lambda r: r.qps)
    return (
        f"`ours --workers 2`: two worker processes on one port (SO_REUSEPORT), and dnsperf (4 clients, 4 source "
        f"ports) sharing the same two cores, since this machine has no third: the workers used {w.busy:.0%} of "
        f"one core together and dnsperf {w.load_busy:.0%}, softirq and other tasks the rest. Its "
        f"{qps:,.0f} qps is therefore what two cores give when the load generator runs on them too, not what "
        f"two workers answer when the queries come from the network. CPU per query ({w.cpu_us:.2f} us against "
        f"{ours.cpu_us:.2f} us for one process pinned to one core) is what scales: each worker is a separate "
        f"interpreter with its own GIL, so a machine with N free cores answers about N x the capacity row "
        f"({1e6 / w.cpu_us:,.0f} qps per core here; rbldnsd, single-threaded, {1e6 / rbl.cpu_us:,.0f} qps on its "
        "one core), less the kernel's per-packet softirq work, which grows with the load on every core alike."
    )


def report(servers: list[Target], runs: int, seconds: float, data_note: str, load: tuple[float, float]) -> str:
    by = {t.label: t for t in servers}
    ours, rbl = by["ours"], by["rbldnsd"]
    labels = [t.label for t in servers]

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}x" if b else "-"

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    def row(
        name: str, fmt: str, get: Callable[[Target], float], target: str = "", ok: bool | None = None, rat: bool = True
    ) -> tuple[str, ...]:
        cells = [fmt.format(get(t)) for t in servers]
        r = ratio(get(ours), get(rbl)) if rat else ""
        return (name, *cells, r, target, "" if ok is None else verdict(ok))

    qps_r = ours.med(lambda r: r.qps) / rbl.med(lambda r: r.qps)
    cpu_r = ours.cpu_us / rbl.cpu_us
    rss_r = ours.rss_kib / rbl.rss_kib
    lost = sum(r.lost for r in ours.runs)
    rows = [
        row("queries per second (median)", "{:,.0f}", lambda t: t.med(lambda r: r.qps), ">= 0.75x", qps_r >= 0.75),
        row("server CPU per query", "{:.2f} us", lambda t: t.cpu_us, "<= 1.4x", cpu_r <= 1.4),
        row("  of which user space (the server's own code)", "{:.2f} us", lambda t: t.user_us),
        row("  of which kernel (its socket calls)", "{:.2f} us", lambda t: t.cpu_us - t.user_us),
        row("server busy (share of one core)", "{:.0%}", lambda t: t.busy, rat=False),
        row("capacity at 100% of a core (1 / CPU per query)", "{:,.0f} qps", lambda t: 1e6 / t.cpu_us),
        row("dnsperf busy (share of one core)", "{:.0%}", lambda t: t.load_busy, rat=False),
        row("softirq per query (both cores, not in the CPU above)", "{:.2f} us", lambda t: t.softirq_us, rat=False),
        row("other tasks' share of the two cores (noise)", "{:.0%}", lambda t: t.others_busy, rat=False),
        row("average latency", "{:.3f} ms", lambda t: t.med(lambda r: r.latency) * 1e3),
        row("lost queries (all runs)", "{:d}", lambda t: sum(r.lost for r in t.runs), "0", lost == 0, rat=False),
        row("answered NOERROR (listed)", "{:.1%}", lambda t: t.listed_share, rat=False),
        row("RSS after the runs", "{:.1f} MiB", lambda t: t.rss_kib / 1024, "<= 2x", rss_r <= 2),
        row("start-up until the first answer (median)", "{:.2f} s", lambda t: statistics.median(t.starts)),
    ]
    header = ("measure", *labels, "ours/rbldnsd", "target", "")
    notes = ["", bounds_note(ours, rbl, load), "", efficiency_note(ours, rbl)]
    if note := gate_note(servers, ours):
        notes += ["", note]
    if "ours --workers 2" in by:
        notes += ["", workers_note(by["ours --workers 2"], ours, rbl)]
    if "ours --metrics" in by:
        m = by["ours --metrics"]
        notes.append("")
        notes.append(
            f"Metrics overhead: CPU per query {m.cpu_us:.2f} us with --metrics vs {ours.cpu_us:.2f} us without "
            f"({(m.cpu_us / ours.cpu_us - 1):+.1%}; two processes of the same code differ by up to about 5% here, "
            "so only a larger gap would be the metrics'). Per recvmmsg batch the hook reads the clock twice and "
            "bumps one histogram bucket, well under a microsecond shared by the batch's datagrams; the counters are "
            f"the ones the server always keeps. RSS {m.rss_kib / 1024:.1f} vs {ours.rss_kib / 1024:.1f} MiB "
            "(prometheus-client and the HTTP thread)."
        )
        if m.latency_note:
            notes.append(m.latency_note)
    return "\n".join(
        [
            "# bench-serve",
            "",
            f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine()}; {runs} runs of {seconds:g} s per "
            f"server, alternating, medians reported. Data: bench-compile's feed (1M IPv4 /32, 10k CIDRs, 100k IPv6), "
            f"{data_note}. Queries: {QUERIES.name}, half listed, half unlisted, 90% A / 10% TXT; "
            f"dnsperf -q 100 on core 1, "
            f"servers on core 0 (taskset); `ours --workers 2` and its dnsperf (-c 4) on both cores. "
            f"Load average before the runs {load[0]:.2f}, after {load[1]:.2f}.",
            "",
            table(rows, header),
            *notes,
            "",
        ]
    )


def efficiency_note(ours: Target, rbl: Target) -> str:
    """Where the CPU per query goes, ours against rbldnsd's."""
    return (
        f"Where the CPU per query goes: in the kernel (the server's recvmmsg/sendmmsg or recvfrom/sendto) "
        f"{ours.cpu_us - ours.user_us:.2f} us for ours against {rbl.cpu_us - rbl.user_us:.2f} us for rbldnsd, "
        f"much alike; in user space {ours.user_us:.2f} us (the interpreter) against {rbl.user_us:.2f} us "
        "(rbldnsd's C). So the gap is all user space, and even a free user space would leave ours at "
        "rbldnsd's kernel floor. `bench/profile_serve.py` splits ours further: about 2 us of answering code "
        "(`wire.fast()`: one regex match, one bisect, prebuilt bytes) and about 1 us of batch loop per datagram. "
        "A mypyc build of wire.py was tried and measured in the same way: it cut user time by about 0.25 us "
        "and not the total, so the pure-Python path stays the only one. More cores are the way up: "
        "`--workers N` (docs/scaling.md)."
    )


def latency_from_metrics(text: str) -> str:
    """The processing-time histogram's mean, from a scrape (a check that the metrics move)."""
    total = re.search(r"^dnsbl_query_processing_seconds_sum (\S+)", text, re.M)
    count = re.search(r"^dnsbl_query_processing_seconds_count (\S+)", text, re.M)
    if not total or not count or float(count.group(1)) == 0:
        return ""
    mean = float(total.group(1)) / float(count.group(1)) * 1e6
    return (
        f"The --metrics server's own histogram: {float(count.group(1)):,.0f} queries timed, mean processing "
        f"time {mean:.2f} us per query (inside the server, without the socket calls)."
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--queries", type=int, default=200_000)
    parser.add_argument("--no-metrics", action="store_true", help="skip the `ours --metrics` server")
    parser.add_argument("--baseline", type=Path, help="also serve the `publisher` package found in this folder")
    parser.add_argument("--only", help="serve only the targets whose label contains this (e.g. 'ACL')")
    args = parser.parse_args()
    for tool in ("dnsperf", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (Debian packages dnsperf, util-linux)")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs two cores: one for the server, one for dnsperf")
    data_note = ensure_data()
    make_queries(QUERIES, args.queries)
    make_keyed_queries(QUERIES, KEYED_QUERIES)
    with_metrics = not args.no_metrics
    if with_metrics:
        try:
            import prometheus_client  # noqa: F401
        except ImportError:
            with_metrics = False
    workdir = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    servers = targets(workdir, with_metrics, args.baseline)
    if args.only:
        servers = [t for t in servers if args.only in t.label or t.label in ("ours", "rbldnsd")]
    load_before = os.getloadavg()[0]
    try:
        measure(servers, args.runs, args.seconds)
        for t in servers:
            if t.metrics_port:
                t.latency_note = latency_from_metrics(scrape(t.metrics_port))
    finally:
        for t in servers:
            t.stop()
            for path in t.cleanup:
                shutil.rmtree(path, ignore_errors=True)
    text = report(servers, args.runs, args.seconds, data_note, (load_before, os.getloadavg()[0]))
    shutil.rmtree(workdir, ignore_errors=True)
    write_report(text, args.out)


if __name__ == "__main__":
    main()
