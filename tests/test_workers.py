"""`serve --workers 2`: two processes on one port (SO_REUSEPORT), started and watched by a parent.

Each test starts the real server (`python -m publisher.server`) on an ephemeral loopback
port and asks it over UDP, each query from its own socket: the kernel spreads queries
over the workers by source port, so 64 of them reach both. Processes are stopped by
PID; every wait is bounded.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from dnslib import OPCODE, QTYPE, DNSRecord

from conftest import ROOT, free_port
from publisher.errors import ServerError
from publisher.publish.pidfile import notify_server
from publisher.server import options
from server_fixtures import publish, sample_zones
from test_server import BL, SERIAL, Served

WAIT = 30.0  # seconds: every wait for the server is bounded by this (generous on a shared machine)
SPREAD = 64  # queries from distinct source ports: both workers get some (1 - 2**-63)


def start(zones_dir: Path, *extra: str, workers: str = "2") -> tuple[Served, list[int]]:
    """The server with `--workers`, once every worker serves; (served, worker pids in slot order)."""
    cmd = [sys.executable, "-m", "publisher.server", "--zones", str(zones_dir), "--listen", "127.0.0.1:0"]
    cmd += ["--workers", workers, *extra]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    served = Served(proc, zones_dir)
    threading.Thread(target=served._pump, daemon=True).start()
    if workers == "1":
        served.wait_for(r"serving \d+ zones on", WAIT)  # start() is done: run_forever() takes the signals
        served.port = int(served.wait_for(r"listening udp 127\.0\.0\.1:(\d+)", WAIT).group(1))
        return served, []
    m = served.wait_for(r"all 2 workers serving on 127\.0\.0\.1:(\d+) \(pids (\d+), (\d+)\)", WAIT)
    served.port = int(m.group(1))
    return served, [int(m.group(2)), int(m.group(3))]


@pytest.fixture
def zones_dir(tmp_path: Path) -> Path:
    publish(tmp_path / "zones", sample_zones(SERIAL))
    return tmp_path / "zones"


@pytest.fixture
def running(zones_dir: Path) -> Iterator[tuple[Served, list[int]]]:
    served, pids = start(zones_dir, "--metrics", "127.0.0.1:0")
    try:
        yield served, pids
    finally:
        served.stop()


def ask(port: int, name: str, qtype: str = "A") -> DNSRecord:
    """One query from a fresh socket (so a fresh source port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(DNSRecord.question(name, qtype).pack(), ("127.0.0.1", port))
        return DNSRecord.parse(sock.recv(4096))


def serial_of(port: int) -> int:
    return int(ask(port, BL, "SOA").rr[0].rdata.times[0])


def spread(port: int, n: int = SPREAD) -> None:
    """n listed queries, each from its own source port, every one answered."""
    for _ in range(n):
        assert ask(port, f"2.0.0.127.{BL}").header.rcode == 0


def worker_queries(served: Served) -> dict[int, int]:
    """SIGUSR1 to the parent: the per-worker query counts it logs (slot -> queries)."""
    mark = served.mark()
    served.proc.send_signal(signal.SIGUSR1)
    served.wait_for(r"stats workers \d+ of 2 serving", WAIT, start=mark)
    lines = served.log_text().splitlines()[mark:]
    found = [re.search(r"stats worker (\d) \(pid \d+\): queries (\d+)", line) for line in lines]
    return {int(m.group(1)): int(m.group(2)) for m in found if m}


def summed_queries(served: Served) -> int:
    """dnsbl_queries_total summed over zones and results, from the parent's metrics endpoint."""
    url = served.wait_for(r"metrics on (http://\S+)", WAIT).group(1)
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    assert re.search(r"^dnsbl_workers 2\.0$", text, re.M), text
    return int(sum(float(v) for v in re.findall(r"^dnsbl_queries_total\{[^}]*\} (\S+)$", text, re.M)))


def gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie left to a reaper counts as exited); bounded wait."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        if state in ("Z", "X"):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)  # polling the kernel's process table, bounded by the deadline


def test_both_workers_answer_and_the_counters_are_summed(running: tuple[Served, list[int]]) -> None:
    served, pids = running
    spread(served.port)
    per_worker = worker_queries(served)
    assert set(per_worker) == {0, 1} and all(n > 0 for n in per_worker.values()), per_worker
    assert sum(per_worker.values()) == SPREAD
    assert summed_queries(served) == SPREAD
    summed = served.wait_for(r"stats bl\.example\.test \(serial \d+\): queries (\d+) .*\(2 of 2 workers\)", WAIT)
    assert int(summed.group(1)) == SPREAD


def test_a_killed_worker_is_replaced_and_its_counts_kept(running: tuple[Served, list[int]]) -> None:
    served, pids = running
    spread(served.port, 32)
    assert sum(worker_queries(served).values()) == 32  # the parent now holds both workers' counts
    mark = served.mark()
    os.kill(pids[1], signal.SIGKILL)
    served.wait_for(rf"worker 1 \(pid {pids[1]}\) was killed by SIGKILL", WAIT, start=mark)
    new = int(served.wait_for(r"worker 1 restarted as pid (\d+)", WAIT, start=mark).group(1))
    served.wait_for(rf"worker 1 serving \(pid {new}", WAIT, start=mark)
    assert new != pids[1] and gone(pids[1])
    spread(served.port, 32)
    counts = worker_queries(served)
    assert counts[1] > 0, counts  # the replacement answers
    assert summed_queries(served) == 64  # what the killed worker counted is still in the sum
    assert "restarts 1" in served.log_text() or "1 restarts" in served.log_text()


def test_a_worker_dying_young_is_restarted_after_a_wait(zones_dir: Path) -> None:
    """A crash loop (here: zones/current gone, so each replacement fails to load) waits between restarts."""
    served, pids = start(zones_dir, "--no-watch")
    try:
        away = zones_dir / "current.away"
        (zones_dir / "current").rename(away)
        mark = served.mark()
        os.kill(pids[1], signal.SIGKILL)
        crashed = served.wait_for(
            r"worker 1 \(pid (\d+)\) exited with code \d+ after [\d.]+ s; starting a replacement in ([\d.]+) s",
            WAIT, start=mark,
        )  # fmt: skip
        assert float(crashed.group(2)) >= 0.5, crashed.group(0)  # not at once: at most one start a second
        assert "worker 1: cannot load the zones" in served.log_text()
        away.rename(zones_dir / "current")
        served.wait_for(r"worker 1 serving \(pid", WAIT, start=mark)
        spread(served.port, 16)
    finally:
        assert served.stop() == 0


def test_sigterm_stops_the_parent_and_every_worker(zones_dir: Path) -> None:
    served, pids = start(zones_dir)
    spread(served.port, 8)
    assert served.stop() == 0
    assert all(gone(pid) for pid in pids), "a worker outlived its parent"


def test_workers_stop_when_their_parent_is_killed(zones_dir: Path) -> None:
    served, pids = start(zones_dir)
    served.proc.kill()  # no SIGTERM to forward: the workers see their control socket close
    served.proc.wait(WAIT)
    assert all(gone(pid) for pid in pids), "a worker outlived its parent"


def test_a_publish_reaches_every_worker_through_the_parents_sighup(zones_dir: Path) -> None:
    served, pids = start(zones_dir, "--no-watch")  # no polling: only the forwarded SIGHUP reloads
    try:
        assert serial_of(served.port) == SERIAL
        served.wait_for(r"pid \d+ in \S+server\.pid", WAIT)
        assert (zones_dir / "server.pid").read_text() == f"{served.proc.pid}\n"  # the parent's, not a worker's
        publish(zones_dir, sample_zones(SERIAL + 1))
        mark = served.mark()
        assert notify_server(zones_dir)
        for slot in (0, 1):
            served.wait_for(rf"worker {slot}: reloaded generation", WAIT, start=mark)
        answers = {serial_of(served.port) for _ in range(40)}  # from 40 source ports: both workers
        assert answers == {SERIAL + 1}
    finally:
        served.stop()


class FakeSecondary:
    """A UDP socket acknowledging NOTIFYs and recording (zone, serial) of each one received."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.got: list[tuple[str, int]] = []
        self.cond = threading.Condition()
        self.done = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done:
            try:
                data, addr = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            rec = DNSRecord.parse(data)
            if rec.header.opcode != OPCODE.NOTIFY:
                continue
            reply = rec.reply()
            reply.header.opcode = OPCODE.NOTIFY
            self.sock.sendto(reply.pack(), addr)
            soa = [rr for rr in rec.rr if rr.rtype == QTYPE.SOA]
            with self.cond:
                self.got.append((str(rec.q.qname).rstrip("."), int(soa[0].rdata.times[0]) if soa else -1))
                self.cond.notify_all()

    def wait_for(self, serial: int) -> None:
        deadline = time.monotonic() + WAIT
        with self.cond:
            while not any(s == serial for _, s in self.got):
                left = deadline - time.monotonic()
                assert left > 0, f"no NOTIFY for serial {serial} within {WAIT}s; got {self.got}"
                self.cond.wait(left)

    def close(self) -> None:
        self.done = True
        self.thread.join(5)
        self.sock.close()


def test_notify_goes_out_once_per_serial_even_across_a_restart_of_worker_0(tmp_path: Path) -> None:
    fake = FakeSecondary()
    meta = {BL: {"secondaries": [{"address": "127.0.0.1", "port": fake.port, "notify": True, "tsig_key": None}]}}
    zones_dir = tmp_path / "zones"
    publish(zones_dir, sample_zones(SERIAL), meta)
    served, pids = start(zones_dir)
    try:
        fake.wait_for(SERIAL)
        publish(zones_dir, sample_zones(SERIAL + 1), meta)  # picked up by each worker's manifest poll
        fake.wait_for(SERIAL + 1)
        mark = served.mark()
        os.kill(pids[0], signal.SIGKILL)
        new = int(served.wait_for(r"worker 0 restarted as pid (\d+)", WAIT, start=mark).group(1))
        served.wait_for(rf"worker 0 serving \(pid {new}", WAIT, start=mark)
        publish(zones_dir, sample_zones(SERIAL + 2), meta)
        fake.wait_for(SERIAL + 2)  # any NOTIFY the restart sent went out before this one
        with fake.cond:
            assert fake.got == [(BL, SERIAL), (BL, SERIAL + 1), (BL, SERIAL + 2)]
    finally:
        served.stop()
        fake.close()


def test_a_port_held_by_another_reuseport_socket_is_refused(zones_dir: Path) -> None:
    """Without the parent's probe, the workers would silently share the port with the holder."""
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", port))
        cmd = [sys.executable, "-m", "publisher.server", "--zones", str(zones_dir)]
        cmd += ["--listen", f"127.0.0.1:{port}", "--workers", "2"]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=WAIT)
    assert done.returncode != 0
    assert f"cannot listen on udp 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "worker" not in done.stderr  # refused before any worker started


def test_one_worker_is_todays_single_process(zones_dir: Path) -> None:
    served, _ = start(zones_dir, workers="1")
    try:
        spread(served.port, 4)
        children = Path(f"/proc/{served.proc.pid}/task/{served.proc.pid}/children").read_text().split()
        assert children == []
        # no worker's log prefix, no supervisor line (the temporary folder's name says "worker" too)
        assert not re.search(r"\bworkers? \d|\d+ workers", served.log_text())
    finally:
        assert served.stop() == 0


def test_workers_option_values() -> None:
    assert options.workers_count("auto") == len(os.sched_getaffinity(0))
    assert options.workers_count("3") == 3
    for bad in ("0", "-1", "two", "100000"):
        with pytest.raises(ServerError, match="--workers"):
            options.workers_count(bad)


def test_combine_sums_counters_and_connections_and_keeps_the_dead_workers_counts() -> None:
    from publisher.server.figures import Figures, ZoneFigures, combine, counters_only

    def worker(queries: int, active: int, ok: bool, loaded: float, serial: int) -> Figures:
        return Figures(
            queries={BL: [queries, 0, 0, 0, 0, 0, 0]}, tcp_active=active, tcp_max=128, last_reload_ok=ok,
            last_reload=loaded, last_good_reload=loaded, zones={BL: ZoneFigures(serial)},
        )  # fmt: skip

    dead = counters_only(worker(5, 9, True, 1.0, 1))
    got = combine([worker(10, 2, True, 3.0, 7), worker(20, 3, False, 4.0, 6)], dead, restarts=1)
    assert got.queries[BL][0] == 35  # 10 + 20 live, 5 from the dead one
    assert (got.tcp_active, got.tcp_max) == (5, 256)  # the dead one's connections are gone
    assert got.last_reload_ok is False and got.last_reload == 4.0 and got.last_good_reload == 3.0
    assert got.serials == {BL: 7} and (got.workers, got.restarts) == (2, 1)
    assert Figures.from_json(got.to_json()) == got


def test_every_worker_answers_ixfr_from_the_difference_it_kept_at_its_reload(zones_dir: Path) -> None:
    """Each worker computes its own IXFR differences when it reloads: whichever worker a
    secondary's TCP connection lands on answers incrementally, not with the whole zone."""
    import dns.message
    import dns.query
    import dns.rrset

    served, _ = start(zones_dir, "--no-watch")
    try:
        (zones_dir / "server.pid").write_text(f"{served.proc.pid}\n")
        publish(zones_dir, sample_zones(SERIAL + 1))
        mark = served.mark()
        assert notify_server(zones_dir)
        for slot in (0, 1):
            served.wait_for(rf"worker {slot}: reloaded generation", WAIT, start=mark)
        q = dns.message.make_query(BL, "IXFR")
        soa = f"ns1.{BL}. hostmaster.example.test. {SERIAL} 1 2 3 4"
        q.authority.append(dns.rrset.from_text(BL + ".", 0, "IN", "SOA", soa))
        for _ in range(12):  # a new connection each time, from a new port: both workers answer
            reply = dns.query.tcp(q, "127.0.0.1", port=served.port, timeout=WAIT, one_rr_per_rrset=True)
            serials = [rd.serial for rrset in reply.answer for rd in rrset if rrset.rdtype == 6]
            assert serials[:2] == [SERIAL + 1, SERIAL], serials  # incremental: new SOA, then the old one
        answered = re.findall(r"worker (\d): IXFR of " + re.escape(BL), served.log_text())
        assert set(answered) == {"0", "1"}
    finally:
        served.stop()


def test_serve_names_itself_in_server_pid_while_it_serves_and_leaves_another_servers_alone(zones_dir: Path) -> None:
    """`publish` SIGHUPs the pid in zones/server.pid: serve writes it, a second server on the
    same folder leaves the first one's, and a stop removes only its own."""
    pid_file = zones_dir / "server.pid"
    first, _ = start(zones_dir, workers="1")
    try:
        first.wait_for(r"pid \d+ in \S+server\.pid: publish signals this server", WAIT)
        assert pid_file.read_text() == f"{first.proc.pid}\n"
        second, _ = start(zones_dir, workers="1")
        try:
            second.wait_for(r"server\.pid names another running server \(pid \d+\); left as it is", WAIT)
            assert pid_file.read_text() == f"{first.proc.pid}\n"
        finally:
            second.stop()
        assert pid_file.read_text() == f"{first.proc.pid}\n"
    finally:
        first.stop()
    assert not pid_file.exists()
