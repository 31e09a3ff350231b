"""`make bench-publish`: how fast a change to a 1M-entry feed is answered by the running server.

The feed is bench-compile's without IPv6 (1,000,000 IPv4 /32 + 10,000 CIDRs, one bulk file in a
git repository). Measured, each from its own process:
- the first `publisher publish` (empty cache, empty zones/);
- a one-line change committed, then `publisher publish`, until the running server (signalled
  through zones/server.pid, as a deployed one is) answers the new entry: wall time from the start
  of the publish, and the publish's peak RSS; three times, median;
- the same for a 100-line change;
- rbldnsd serving the same feed file as an ip4set: the line appended, SIGHUP, until it answers;
- `publisher import-rbldnsd` of the feed (1,010,002 lines).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import DATA, ROOT, ZONE, free_port, generate, machine, table, wait_udp_answer
from bench.common import report as write_report

WORK = DATA / "publish"
LISTS = WORK / "lists"
ZONES = WORK / "zones"
GIT = ["git", "-C", str(WORK), "-c", "user.name=bench", "-c", "user.email=bench@example.test"]
REPEAT = 3


def _query(port: int, name: str, timeout: float = 0.05) -> int | None:
    """The rcode and answer count of an A query (None: no reply), as `ancount * 16 + rcode`."""
    q = b"\x12\x34\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00\x00\x01\x00\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q, ("127.0.0.1", port))
        try:
            reply = s.recv(4096)
        except OSError:
            return None
    return int(struct.unpack(">H", reply[6:8])[0]) * 16 + (reply[3] & 0x0F)


def listed(port: int, address: str) -> bool:
    got = _query(port, ".".join(reversed(address.split("."))) + "." + ZONE)
    return got is not None and got >= 16 and got % 16 == 0


def wait_listed(port: int, addresses: list[str], timeout: float = 120.0) -> float:
    """Monotonic time at which every address answers as listed."""
    deadline = time.monotonic() + timeout
    pending = list(addresses)
    while pending:
        if listed(port, pending[0]):
            pending.pop(0)
            continue
        if time.monotonic() > deadline:
            raise SystemExit(f"{pending[0]} not answered as listed within {timeout}s")
        time.sleep(0.005)
    return time.monotonic()


def run_timed(args: list[str]) -> tuple[float, int, str]:
    """Run a command; its wall time, peak RSS (KiB) and output. Fails loudly."""
    t0 = time.monotonic()
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{out}")
    return wall, usage.ru_maxrss, out


def publish_cmd() -> list[str]:
    return [sys.executable, "-m", "publisher", "--lists", str(LISTS), "--zones", str(ZONES), "publish"]


def fresh_addresses(rng: random.Random, port: int, count: int, taken: set[str]) -> list[str]:
    """Addresses the zone does not list yet (asked of the running server)."""
    out: list[str] = []
    while len(out) < count:
        a = socket.inet_ntoa(struct.pack("!I", rng.randrange(0x0B000000, 0x7E000000)))
        if a not in taken and not listed(port, a):
            taken.add(a)
            out.append(a)
    return out


def change(addresses: list[str], message: str) -> None:
    with (LISTS / "feed.txt").open("a") as fh:
        fh.write("".join(a + "\n" for a in addresses))
    subprocess.run([*GIT, "commit", "-q", "-am", message], check=True)


def ours(rng: random.Random) -> dict[str, object]:
    shutil.rmtree(WORK, ignore_errors=True)
    counts = generate(LISTS, nv6=0)
    subprocess.run(["git", "init", "-q", str(WORK)], check=True)
    subprocess.run([*GIT, "add", "-A"], check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "feed"], check=True)
    first = run_timed(publish_cmd())
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "publisher.server", "--zones", str(ZONES), "--listen", f"127.0.0.1:{port}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_udp_answer(port, f"2.0.0.127.{ZONE}", timeout=60)
        deadline = time.monotonic() + 10  # serve names itself in zones/server.pid once it answers
        while not (ZONES / "server.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        taken: set[str] = set()
        results: dict[str, list[tuple[float, float, int]]] = {"1": [], "100": []}
        for size in ("1", "1", "1", "100", "100", "100"):
            new = fresh_addresses(rng, port, int(size), taken)
            change(new, f"{size} new")
            t0 = time.monotonic()
            wall, rss, out = run_timed(publish_cmd())
            live = wait_listed(port, new) - t0
            if "published" not in out:
                raise SystemExit(f"publish did not publish:\n{out}")
            results[size].append((live, wall, rss))
        return {"counts": counts, "first": first, "changes": results}
    finally:
        server.terminate()
        server.wait(10)


def rbldnsd_reload(rng: random.Random) -> float | None:
    """rbldnsd serving feed.txt (ip4set): seconds from appending a line and SIGHUP to its answer."""
    exe = shutil.which("rbldnsd") or "/usr/sbin/rbldnsd"
    if not Path(exe).exists():
        return None
    port = free_port()
    data = WORK / "rbldnsd"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir()
    shutil.copy(LISTS / "feed.txt", data / "feed")
    proc = subprocess.Popen(
        [exe, "-n", "-f", "-q", "-b", f"127.0.0.1/{port}", "-w", str(data), f"{ZONE}:ip4set:feed"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_udp_answer(port, f"2.0.0.127.{ZONE}", timeout=60)
        times = []
        for _ in range(REPEAT):
            new = fresh_addresses(rng, port, 1, set())
            time.sleep(1.1)  # rbldnsd compares mtimes in whole seconds
            t0 = time.monotonic()
            with (data / "feed").open("a") as fh:
                fh.write(new[0] + "\n")
            proc.send_signal(signal.SIGHUP)
            times.append(wait_listed(port, new) - t0)
        return statistics.median(times)
    finally:
        proc.terminate()
        proc.wait(10)


def import_feed() -> tuple[float, int]:
    out = WORK / "import"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    wall, rss, _ = run_timed(
        [
            sys.executable, "-m", "publisher", "--lists", str(out / "lists"), "import-rbldnsd",
            "--zone", ZONE, "--type", "ip4set", "--out", str(out / "lists" / "feed.txt"), str(LISTS / "feed.txt"),
        ]
    )  # fmt: skip
    return wall, rss


def ok(value: float, target: float) -> str:
    return "ok" if value <= target else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rng = random.Random(1995)
    got = ours(rng)
    rbl = rbldnsd_reload(rng)
    imp_wall, imp_rss = import_feed()
    first_wall, first_rss, _ = got["first"]  # type: ignore[misc]
    rows: list[tuple[str, ...]] = [
        ("first publish (empty cache and zones/)", f"{first_wall:.2f} s", f"{first_rss / 1024:.0f} MiB", "", "", ""),
    ]
    changes: dict[str, list[tuple[float, float, int]]] = got["changes"]  # type: ignore[assignment]
    for size, runs in changes.items():
        live = statistics.median(r[0] for r in runs)
        wall = statistics.median(r[1] for r in runs)
        rss = max(r[2] for r in runs) / 1024
        label = "one-line" if size == "1" else f"{size}-line"
        target = "<= 3 s, <= 400 MB" if size == "1" else ""
        verdict = (ok(live, 3.0) if rss * 1.048576 <= 400 else "MISSED") if size == "1" else ""
        rows.append(
            (
                f"{label} change: publish start -> server answers it",
                f"{live:.2f} s (publish {wall:.2f} s)",
                f"{rss:.0f} MiB",
                f"{rbl:.2f} s (SIGHUP reload)" if rbl is not None and size == "1" else "",
                target,
                verdict,
            )
        )
    rows.append(
        (
            f"import-rbldnsd of the feed ({got['counts']['lines']:,} lines)",  # type: ignore[index]
            f"{imp_wall:.2f} s",
            f"{imp_rss / 1024:.0f} MiB",
            "",
            "<= 10 s",
            ok(imp_wall, 10.0),
        )
    )
    text = "\n".join(
        [
            "# bench-publish",
            "",
            f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine()}. Feed: one bulk file of "
            "1,000,000 IPv4 /32 + 10,000 CIDRs in a git repository (bench-compile's generator, no IPv6). "
            f"Changes: new addresses appended and committed; medians of {REPEAT} runs; the server was "
            "told by SIGHUP through zones/server.pid, as publish does for a deployed one.",
            "",
            table(rows, ("measure", "ours", "peak RSS", "rbldnsd", "target", "")),
            "",
        ]
    )
    write_report(text, args.out)


if __name__ == "__main__":
    main()
