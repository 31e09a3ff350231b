"""`publisher refresh-spf` on many partners, the way it runs in production: through a caching
recursive resolver (Debian's unbound) in front of the partners' authoritative server (NSD).

N partners are declared in an allowlist. Each partner's record looks like a company's
(`include:_spf.pK.bench.example a:mail.pK.bench.example/28 mx ip6:... ~all`, its `_spf`
record with two ip4 networks and an include of one of 8 shared mail services, each of those
a three-level chain of includes like a big provider's). Measured, with the real command:
- the first refresh (unbound's cache empty): wall time, DNS queries the refresh sent, the
  commit it makes, the CLI process's peak memory;
- a second refresh (cache warm, nothing changed: no commit);
- `publisher validate` and `publisher plan` on the repository with the N generated files.

There is no SPF-to-allowlist tool in Debian to compare with (postwhite and spf-tools are
shell scripts outside it); the figures say what a refresh costs an operator and the DNS.

    python bench/bench_spf.py [--partners 200] [--out bench/results/spf.md]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import NSD_SERVER, free_port, machine, report, table

BASE = "bench.example"
PROVIDERS = 8

ZONES_YAML = """\
zones:
  - name: wl.bench.test
    kind: ip
    role: allow
    sources: [wl/*.yaml, wl/spf/*.yaml]
    code: 127.0.10.2
    txt: "{ip} is allowed by {zone}: {reason}"
    max_prefix: {ipv4: 16, ipv6: 32}
    spf:
      dir: wl/spf
      shared: {providers: [mailer0.bench.example], code: 127.0.15.0}
"""

NSD_CONF = (
    NSD_SERVER
    + """zone:
    name: {base}
    zonefile: "{base}.zone"
"""
)

UNBOUND_CONF = """server:
    interface: 127.0.0.1@{port}
    port: {port}
    do-ip6: no
    username: ""
    chroot: ""
    directory: "{dir}"
    pidfile: "{dir}/unbound.pid"
    use-syslog: no
    logfile: "{dir}/unbound.log"
    verbosity: 0
    num-threads: 1
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
    log-queries: yes
stub-zone:
    name: "{base}"
    stub-addr: 127.0.0.1@{nsd}
remote-control:
    control-enable: no
"""


def records(partners: int) -> str:
    """The authoritative zone: every partner's records and the shared services' chains."""
    out = [
        f"$ORIGIN {BASE}.",
        "$TTL 3600",
        f"@ SOA ns.{BASE}. hostmaster.{BASE}. 1 3600 600 86400 60",
        "@ NS ns",
        "ns A 127.0.0.1",
    ]
    for s in range(PROVIDERS):
        out.append(f'mailer{s} TXT "v=spf1 include:_n1.mailer{s}.{BASE} include:_n2.mailer{s}.{BASE} ~all"')
        for n in (1, 2):
            nets = " ".join(f"ip4:{60 + s}.{n * 16 + k}.0.0/20" for k in range(4))
            out.append(f'_n{n}.mailer{s} TXT "v=spf1 {nets} ip6:2a0{n}:{s:x}00::/40 include:_n3.mailer{s}.{BASE} ~all"')
        out.append(f'_n3.mailer{s} TXT "v=spf1 ip4:{60 + s}.200.0.0/22 ~all"')
    for p in range(partners):
        a, b = 1 + p // 250, p % 250
        out.append(f'p{p} TXT "v=spf1 include:_spf.p{p}.{BASE} a:mail.p{p}.{BASE}/28 mx ip6:2a00:{p + 1:x}::/48 ~all"')
        out.append(
            f'_spf.p{p} TXT "v=spf1 ip4:5.{a}.{b}.0/24 ip4:6.{a}.{b}.128/25 include:mailer{p % PROVIDERS}.{BASE} -all"'
        )
        out.append(f"mail.p{p} A 7.{a}.{b}.17")
        out.append(f"p{p} MX 10 mx1.p{p}")
        out.append(f"mx1.p{p} A 8.{a}.{b}.25")
    return "\n".join(out) + "\n"


def start(argv: list[str], ready: Path, timeout: float = 20.0) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{argv[0]} did not start")
        time.sleep(0.05)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=10)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def cli(repo: Path, *args: str) -> tuple[float, int, str, int]:
    """Run `publisher ARGS` in the repository: seconds, peak RSS (KiB), stdout, exit code."""
    began = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "publisher", *args], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    return time.monotonic() - began, usage.ru_maxrss, out, os.waitstatus_to_exitcode(status)


def queries(unbound_log: Path) -> int:
    """The queries unbound took from clients so far (`log-queries`: one line each)."""
    return sum(1 for line in unbound_log.open() if line.rstrip().endswith(" IN")) if unbound_log.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partners", type=int, default=200)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    for tool in ("nsd", "unbound"):
        if not shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin"):
            raise SystemExit(f"{tool} is not installed (apt-get install {tool})")
    with tempfile.TemporaryDirectory(prefix="bench-spf-") as tmp:
        root = Path(tmp)
        nsd_dir, ub_dir, repo = root / "nsd", root / "unbound", root / "repo"
        for d in (nsd_dir, ub_dir, repo / "lists" / "wl"):
            d.mkdir(parents=True)
        nsd_port, ub_port = free_port(), free_port()
        (nsd_dir / f"{BASE}.zone").write_text(records(args.partners))
        (nsd_dir / "nsd.conf").write_text(NSD_CONF.format(port=nsd_port, dir=nsd_dir, base=BASE))
        conf = UNBOUND_CONF.format(port=ub_port, dir=ub_dir, base=BASE, nsd=nsd_port)
        (ub_dir / "unbound.conf").write_text(conf)
        nsd = start(["/usr/sbin/nsd", "-d", "-c", str(nsd_dir / "nsd.conf")], nsd_dir / "nsd.pid")
        unbound = start(["/usr/sbin/unbound", "-d", "-c", str(ub_dir / "unbound.conf")], ub_dir / "unbound.pid")
        try:
            (repo / "lists" / "zones.yaml").write_text(ZONES_YAML)
            entries = "".join(
                f"  - spf: p{p}.{BASE}\n    owner: Partner {p} Ltd\n    contact: postmaster@p{p}.{BASE}\n"
                for p in range(args.partners)
            )
            (repo / "lists" / "wl" / "partners.yaml").write_text("entries:\n" + entries)
            git(repo, "init", "-q")
            git(repo, "add", "-A")
            git(repo, "-c", "user.name=Bench", "-c", "user.email=bench@example.test", "commit", "-qm", "partners")
            env_resolver = ["--resolver", f"127.0.0.1:{ub_port}"]
            cold = cli(repo, "refresh-spf", *env_resolver)
            if cold[3] != 0:
                raise SystemExit(f"refresh-spf failed:\n{cold[2]}")
            asked_cold = queries(ub_dir / "unbound.log")
            files = len(list((repo / "lists" / "wl" / "spf").glob("*.yaml")))
            entries_n = sum(p.read_text().count("  - ip: ") for p in (repo / "lists" / "wl" / "spf").glob("*.yaml"))
            warm = cli(repo, "refresh-spf", *env_resolver)
            asked_warm = queries(ub_dir / "unbound.log") - asked_cold
            validate = cli(repo, "validate")
            plan = cli(repo, "plan")
            commits = git(repo, "rev-list", "--count", "HEAD").strip()
        finally:
            stop(unbound)
            stop(nsd)
    sent = [line for line in cold[2].splitlines() if line.startswith("committed")]
    rows = [
        (
            "first refresh (resolver cache empty)",
            f"{cold[0]:.2f} s",
            f"{cold[1] / 1024:.0f} MiB",
            sent[0] if sent else "no commit",
        ),
        (
            "second refresh (cache warm, no change)",
            f"{warm[0]:.2f} s",
            f"{warm[1] / 1024:.0f} MiB",
            "no commit" if "no commit" in warm[2] else "committed",
        ),
        (f"validate ({files} generated files)", f"{validate[0]:.2f} s", f"{validate[1] / 1024:.0f} MiB", ""),
        ("plan (first publish)", f"{plan[0]:.2f} s", f"{plan[1] / 1024:.0f} MiB", ""),
    ]
    text = "\n".join(
        [
            f"# refresh-spf: {args.partners} partners through unbound and NSD",
            "",
            f"Machine: {machine()}. `python bench/bench_spf.py --partners {args.partners}`.",
            "",
            f"Each partner: a record of 5 terms (include, a/28, mx, ip6, ~all), its include of 2 ip4 and one of "
            f"{PROVIDERS} shared mail services (a 3-level include chain, 9 networks); {files} generated files, "
            f"{entries_n} entries, {commits} commits in the repository.",
            "",
            table(rows, ("run", "wall time", "peak memory", "git")),
            "",
            f"DNS queries the refreshes sent to the resolver: {asked_cold} (first), {asked_warm} (second); "
            f"{(asked_cold / args.partners):.1f} per partner.",
            "",
        ]
    )
    report(text, args.out)


if __name__ == "__main__":
    main()
