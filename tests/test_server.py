"""The real server as a subprocess on an ephemeral loopback port, queried with dig.

Every rule of docs/design.md "Answer semantics" over UDP and TCP, AXFR and its ACL, TCP per RFC 7766,
reload under queries, a corrupt snapshot refused, signals, the query log and NOTIFY.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from dnslib import OPCODE, QTYPE, RCODE, DNSRecord

from conftest import ROOT, require_tool
from publisher.addresses import parse_v4, parse_v6, v4_name, v6_name
from server_fixtures import MEDIUM_ADDRESS, publish, sample_zones

BL, WL, DBL = "bl.example.test", "wl.example.test", "dbl.example.test"
SERIAL = 2026112700
START_TIMEOUT = 30.0


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


HAVE_V6 = _ipv6_loopback()


@dataclass
class Served:
    """A running server subprocess and what it logged."""

    proc: subprocess.Popen[str]
    zones_dir: Path
    lines: list[str] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    port: int = 0
    port6: int = 0

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.lines.append("<exited>")
            self.cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = START_TIMEOUT, start: int = 0) -> re.Match[str]:
        """The first log line from index `start` on matching `pattern` (fails after timeout)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines[start:]:
                    m = rx.search(line)
                    if m:
                        return m
                if "<exited>" in self.lines:
                    pytest.fail(f"server exited before logging {pattern!r}:\n" + "\n".join(self.lines))
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"no log line {pattern!r} within {timeout}s:\n" + "\n".join(self.lines))
                self.cond.wait(left)

    def mark(self) -> int:
        with self.cond:
            return len(self.lines)

    def log_text(self) -> str:
        with self.cond:
            return "\n".join(self.lines)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail("server did not stop on SIGTERM")
        return int(self.proc.returncode)


def start_server(zones_dir: Path, *extra: str) -> Served:
    listen = ["--listen", "127.0.0.1:0"] + (["--listen", "[::1]:0"] if HAVE_V6 else [])
    cmd = [sys.executable, "-m", "publisher.server", "--zones", str(zones_dir), *listen, *extra]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    served = Served(proc, zones_dir)
    threading.Thread(target=served._pump, daemon=True).start()
    served.wait_for(r"serving \d+ zones on")
    served.port = int(served.wait_for(r"listening udp 127\.0\.0\.1:(\d+)").group(1))
    if HAVE_V6:
        served.port6 = int(served.wait_for(r"listening udp \[::1\]:(\d+)").group(1))
    return served


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    require_tool("dig")
    zones_dir = tmp_path_factory.mktemp("zones")
    publish(zones_dir, sample_zones(SERIAL), {WL: {"allow_transfer": ["192.0.2.0/24"]}})
    served = start_server(zones_dir)
    yield served
    served.stop()


# --- dig ----------------------------------------------------------------------------


@dataclass
class Dig:
    status: str
    flags: set[str]
    question: list[str]
    answer: list[tuple[str, int, str, str]]  # (owner, ttl, type, rdata)
    authority: list[tuple[str, int, str, str]]
    additional: list[tuple[str, int, str, str]]
    edns: str | None
    text: str


def _records(lines: list[str]) -> list[tuple[str, int, str, str]]:
    out = []
    for line in lines:
        owner, ttl, _cls, rtype, rdata = line.split(None, 4)
        out.append((owner, int(ttl), rtype, rdata))
    return out


def dig(port: int, name: str, qtype: str = "A", *opts: str, server: str = "127.0.0.1") -> Dig:
    cmd = [require_tool("dig"), "-p", str(port), f"@{server}", name, qtype, "+norec", "+time=5", "+tries=1", *opts]
    text = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
    head = re.search(r"->>HEADER<<- opcode: \w+, status: (\w+)", text)
    assert head, text
    flags = re.search(r";; flags:([^;]*);", text)
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r";; (\w+) SECTION:", line)
        if m:
            current = m.group(1)
            sections[current] = []
        elif not line.strip():
            current = None
        elif current is not None:
            sections[current].append(line.lstrip(";") if current == "QUESTION" else line)
    edns = re.search(r"; EDNS: (.*)", text)
    return Dig(
        status=head.group(1),
        flags=set(flags.group(1).split()) if flags else set(),
        question=sections.get("QUESTION", []),
        answer=_records(sections.get("ANSWER", [])),
        authority=_records(sections.get("AUTHORITY", [])),
        additional=_records(sections.get("ADDITIONAL", [])),
        edns=edns.group(1) if edns else None,
        text=text,
    )


def v4q(addr: str, zone: str = BL) -> str:
    return f"{v4_name(parse_v4(addr))}.{zone}"


def v6q(addr: str, zone: str = BL) -> str:
    return f"{v6_name(parse_v6(addr))}.{zone}"


TRANSPORTS = [pytest.param((), id="udp"), pytest.param(("+tcp",), id="tcp")]
NEG = "negative"  # expected authority: the zone's SOA

#: (name, qtype, status, answer rdatas sorted, authority) for every semantic bullet.
CASES = [
    (v4q("192.0.2.7"), "A", "NOERROR", ["127.0.0.2", "127.0.0.3"], None),
    (
        v4q("192.0.2.7"),
        "TXT",
        "NOERROR",
        [
            '"other feed - see https://bl.example.test/lookup?ip=192.0.2.7"',
            '"spam source - see https://bl.example.test/lookup?ip=192.0.2.7"',
        ],
        None,
    ),
    (
        v4q("198.51.100.200"),
        "ANY",
        "NOERROR",
        ['"botnet - see https://bl.example.test/lookup?ip=198.51.100.200"', "127.0.0.4"],
        None,
    ),
    (f"2.0.0.127.{BL}", "A", "NOERROR", ["127.0.0.2"], None),
    (f"2.0.0.127.{WL}", "TXT", "NOERROR", ['"RFC 5782 test point"'], None),
    (f"1.0.0.127.{BL}", "A", "NXDOMAIN", [], NEG),
    (v6q("::ffff:7f00:2"), "A", "NOERROR", ["127.0.0.2"], None),
    (v6q("::ffff:7f00:1"), "A", "NXDOMAIN", [], NEG),
    (v6q("::ffff:192.0.2.7"), "A", "NOERROR", ["127.0.0.2", "127.0.0.3"], None),
    (v6q("2001:db8:1::1"), "TXT", "NOERROR", ['"v6 spam - see https://bl.example.test/lookup?ip=2001:db8:1::1"'], None),
    (f"test.{DBL}", "A", "NOERROR", ["127.0.0.2"], None),
    (f"invalid.{DBL}", "A", "NXDOMAIN", [], NEG),
    (f"x.y.bad.example.{DBL}", "TXT", "NOERROR", ['"x.y.bad.example is listed: every subdomain"'], None),
    (f"spam.example.{DBL}", "ANY", "NOERROR", ['"spam.example is listed: spam domain"', "127.0.1.2"], None),
    (v4q("192.0.2.8"), "A", "NXDOMAIN", [], NEG),
    (f"127.{BL}", "A", "NOERROR", [], NEG),
    (f"0.0.127.{BL}", "TXT", "NOERROR", [], NEG),
    (".".join(reversed("20010db8")) + f".{BL}", "A", "NOERROR", [], NEG),
    (f"example.{DBL}", "A", "NOERROR", [], NEG),
    (f"bad.example.{DBL}", "TXT", "NOERROR", [], NEG),
    (v4q("192.0.2.7"), "AAAA", "NOERROR", [], NEG),
    (v4q("192.0.2.7"), "MX", "NOERROR", [], NEG),
    (f"spam.example.{DBL}", "AAAA", "NOERROR", [], NEG),
    (BL, "SOA", "NOERROR", ["ns1.bl.example.test. hostmaster.example.test. 2026112700 3600 600 604800 300"], None),
    (BL, "NS", "NOERROR", ["ns.other.example.", "ns1.bl.example.test."], None),
    (BL, "A", "NOERROR", [], NEG),
]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(("name", "qtype", "status", "answer", "authority"), CASES)
def test_answers(
    server: Served,
    transport: tuple[str, ...],
    name: str,
    qtype: str,
    status: str,
    answer: list[str],
    authority: str | None,
) -> None:
    got = dig(server.port, name, qtype, *transport)
    assert got.status == status
    assert "aa" in got.flags and "ra" not in got.flags and "qr" in got.flags
    assert sorted(r[3] for r in got.answer) == answer
    assert all(r[0] == name + "." for r in got.answer)
    if authority == NEG:
        zone = next(z for z in (DBL, BL, WL) if name == z or name.endswith("." + z))
        assert [(r[0], r[2]) for r in got.authority] == [(zone + ".", "SOA")]
        assert got.authority[0][3].split()[2] == str(SERIAL)
    else:
        assert got.authority == []


def test_ns_glue_in_additional(server: Served) -> None:
    got = dig(server.port, BL, "NS")
    assert sorted((r[0], r[2], r[3]) for r in got.additional) == [
        ("ns1.bl.example.test.", "A", "192.0.2.53"),
        ("ns1.bl.example.test.", "AAAA", "2001:db8::53"),
    ]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_outside_every_zone_is_refused(server: Served, transport: tuple[str, ...]) -> None:
    got = dig(server.port, "www.example.com", "A", *transport)
    assert got.status == "REFUSED" and "aa" not in got.flags and got.answer == []


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_question_case_is_echoed(server: Served, transport: tuple[str, ...]) -> None:
    name = "7.2.0.192.Bl.ExAmPlE.tEsT."
    got = dig(server.port, name, "A", *transport)
    assert got.question and got.question[0].split()[0] == name
    assert {r[0] for r in got.answer} == {name}


@pytest.mark.skipif(not HAVE_V6, reason="no IPv6 loopback here")
def test_ipv6_listener(server: Served) -> None:
    for transport in ((), ("+tcp",)):
        got = dig(server.port6, f"2.0.0.127.{BL}", "A", *transport, server="::1")
        assert got.status == "NOERROR" and [r[3] for r in got.answer] == ["127.0.0.2"]


def test_edns_echoed_and_truncation_over_udp(server: Served) -> None:
    edns = dig(server.port, v4q("192.0.2.7"), "A", "+bufsize=4096")
    assert edns.edns is not None and "udp: 1232" in edns.edns and "version: 0" in edns.edns
    assert dig(server.port, v4q("192.0.2.7"), "A", "+noedns").edns is None
    cut = dig(server.port, v4q(MEDIUM_ADDRESS), "TXT", "+noedns", "+ignore")
    assert "tc" in cut.flags and cut.answer == []
    fits = dig(server.port, v4q(MEDIUM_ADDRESS), "TXT", "+bufsize=1232", "+ignore")
    assert "tc" not in fits.flags and len(fits.answer) == 4
    small = dig(server.port, v4q(MEDIUM_ADDRESS), "TXT", "+bufsize=600", "+ignore")
    assert "tc" in small.flags
    # Without +ignore dig retries over TCP and gets everything.
    retried = dig(server.port, v4q(MEDIUM_ADDRESS), "TXT", "+noedns")
    assert len(retried.answer) == 4 and "(TCP)" in retried.text


# --- zone transfers -------------------------------------------------------------------


def _canonical(lines: list[str]) -> list[tuple[str, ...]]:
    out = []
    for line in lines:
        if not line.strip() or line.startswith(";"):
            continue
        owner, ttl, cls, rtype, rdata = line.split(None, 4)
        out.append((owner.lower(), ttl, cls, rtype, " ".join(rdata.split())))
    return sorted(out)


@pytest.mark.parametrize("zone", [BL, DBL])
def test_axfr_from_loopback_equals_the_zone_file(server: Served, zone: str) -> None:
    checkzone = require_tool("named-checkzone")
    text = subprocess.run(
        [require_tool("dig"), "-p", str(server.port), "@127.0.0.1", zone, "AXFR", "+nocmd", "+nostats"],
        capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    records = _canonical(text.splitlines())
    assert records and "Transfer failed" not in text
    dumped = subprocess.run(
        [checkzone, "-q", "-D", "-o", "-", zone, str(server.zones_dir / f"{zone}.zone")],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    expected = _canonical(dumped.splitlines())
    soa = [r for r in records if r[3] == "SOA"]
    assert len(soa) == 2 and soa[0] == soa[1]  # first and last
    assert sorted(set(records)) == expected


def _tcp_exchange(port: int, messages: list[bytes], host: str = "127.0.0.1") -> list[bytes]:
    """Send every message on one connection at once (pipelined), read as many replies."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"".join(struct.pack(">H", len(m)) + m for m in messages))
        replies = []
        buf = b""
        while len(replies) < len(messages):
            while len(buf) >= 2 and len(buf) >= 2 + struct.unpack(">H", buf[:2])[0]:
                size = struct.unpack(">H", buf[:2])[0]
                replies.append(buf[2 : 2 + size])
                buf = buf[2 + size :]
            if len(replies) >= len(messages):
                break
            chunk = sock.recv(65536)
            assert chunk, "connection closed early"
            buf += chunk
        return replies


def test_axfr_refused_outside_allow_list(server: Served) -> None:
    text = subprocess.run(
        [require_tool("dig"), "-p", str(server.port), "@127.0.0.1", WL, "AXFR"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert "Transfer failed" in text
    (reply,) = _tcp_exchange(server.port, [bytes(DNSRecord.question(WL, "AXFR").pack())])
    assert DNSRecord.parse(reply).header.rcode == RCODE.REFUSED


def test_several_queries_on_one_tcp_connection(server: Served) -> None:
    names = [v4q("192.0.2.7"), f"1.0.0.127.{BL}", f"test.{DBL}", "example.com"]
    queries = []
    for i, name in enumerate(names):
        q = DNSRecord.question(name, "A")
        q.header.id = 100 + i
        queries.append(bytes(q.pack()))
    replies = [DNSRecord.parse(r) for r in _tcp_exchange(server.port, queries)]
    assert [r.header.id for r in replies] == [100, 101, 102, 103]
    assert [RCODE[r.header.rcode] for r in replies] == ["NOERROR", "NXDOMAIN", "NOERROR", "REFUSED"]


# --- servers of their own -----------------------------------------------------------------


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[Path, list[Served]]]:
    require_tool("dig")
    started: list[Served] = []
    yield tmp_path / "zones", started
    for s in started:
        s.stop()


def _udp_ask(port: int, name: str, qtype: str = "A", timeout: float = 5.0) -> DNSRecord:
    q = DNSRecord.question(name, qtype)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(bytes(q.pack()), ("127.0.0.1", port))
        while True:
            data, _ = sock.recvfrom(65535)
            reply = DNSRecord.parse(data)
            if reply.header.id == q.header.id:
                return reply


def _serial(port: int, zone: str = BL) -> int:
    return int(_udp_ask(port, zone, "SOA").rr[0].rdata.times[0])


def _wait_serial(port: int, serial: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while _serial(port) != serial:
        assert time.monotonic() < deadline, f"serial {serial} not served within {timeout}s"
        time.sleep(0.05)  # polling an observable condition, bounded by the deadline


def _generation(g: int) -> dict:
    """Generation g lists 192.0.2.100 with code 127.0.0.(10+g), under serial SERIAL+g."""
    from publisher.addresses import parse_code
    from publisher.model import Value

    rows = [[("192.0.2.100", Value(parse_code(f"127.0.0.{10 + g}"), f"generation {g}"))]]
    return sample_zones(SERIAL + g, extra_bl=rows)


def test_reload_under_queries(fresh: tuple[Path, list[Served]]) -> None:
    zones_dir, started = fresh
    publish(zones_dir, _generation(0))
    server = start_server(zones_dir)
    started.append(server)
    seen: list[tuple[str, int]] = []
    errors: list[str] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                listed = _udp_ask(server.port, v4q("192.0.2.100"))
                codes = [str(r.rdata) for r in listed.rr]
                if len(codes) != 1 or not codes[0].startswith("127.0.0."):
                    errors.append(f"listed answer {codes}")
                else:
                    seen.append(("code", int(codes[0].rsplit(".", 1)[1]) - 10))
                neg = _udp_ask(server.port, v4q("192.0.2.101"))
                if neg.header.rcode != RCODE.NXDOMAIN or len(neg.auth) != 1:
                    errors.append(f"negative answer {neg}")
                else:
                    seen.append(("serial", int(neg.auth[0].rdata.times[0]) - SERIAL))
            except (OSError, ValueError) as exc:  # a timeout is a lost query
                errors.append(f"{type(exc).__name__}: {exc}")

    thread = threading.Thread(target=client)
    thread.start()
    try:
        for g in range(1, 5):
            publish(zones_dir, _generation(g))
            _wait_serial(server.port, SERIAL + g)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert errors == []
    gens = [g for _, g in seen]
    assert len(seen) > 20 and set(gens) <= set(range(5)) and gens[-1] == 4
    # Answers never go back to an older generation once a newer one was seen.
    assert all(a <= b for a, b in zip(gens, gens[1:]))
    server.wait_for(r"reloaded generation")


def test_corrupt_snapshot_is_refused_old_data_keeps_serving(fresh: tuple[Path, list[Served]]) -> None:
    zones_dir, started = fresh
    publish(zones_dir, sample_zones(SERIAL))
    server = start_server(zones_dir, "--no-watch")
    started.append(server)
    gen = publish(zones_dir, sample_zones(SERIAL + 1))
    snap = gen / f"{BL}.snap"
    data = bytearray(snap.read_bytes())
    data[len(data) // 2] ^= 0xFF
    snap.write_bytes(bytes(data))
    mark = server.mark()
    server.proc.send_signal(signal.SIGHUP)
    server.wait_for(r"reload refused, still serving generation .*sha256", start=mark)
    assert _serial(server.port) == SERIAL
    assert [str(r.rdata) for r in _udp_ask(server.port, f"2.0.0.127.{BL}").rr] == ["127.0.0.2"]
    # The next good publish is taken (here on SIGHUP, the watcher being off).
    publish(zones_dir, sample_zones(SERIAL + 2))
    server.proc.send_signal(signal.SIGHUP)
    _wait_serial(server.port, SERIAL + 2)


def test_manifest_change_is_noticed_without_a_signal(fresh: tuple[Path, list[Served]]) -> None:
    zones_dir, started = fresh
    publish(zones_dir, sample_zones(SERIAL))
    server = start_server(zones_dir)
    started.append(server)
    t0 = time.monotonic()
    publish(zones_dir, sample_zones(SERIAL + 1))
    _wait_serial(server.port, SERIAL + 1, timeout=10)
    assert time.monotonic() - t0 < 5  # issue: noticed within a second; generous for CI load


def test_signals_stats_and_query_log(fresh: tuple[Path, list[Served]]) -> None:
    zones_dir, started = fresh
    publish(zones_dir, sample_zones(SERIAL))
    server = start_server(zones_dir, "--log-queries")
    started.append(server)
    _udp_ask(server.port, v4q("192.0.2.7"))
    _udp_ask(server.port, v4q("192.0.2.8"))
    _udp_ask(server.port, "example.com")
    server.wait_for(r"query 127\.0\.0\.1 udp 7\.2\.0\.192\.bl\.example\.test A -> NOERROR an=2")
    server.wait_for(r"query 127\.0\.0\.1 udp 8\.2\.0\.192\.bl\.example\.test A -> NXDOMAIN an=0")
    mark = server.mark()
    server.proc.send_signal(signal.SIGUSR1)
    line = server.wait_for(
        rf"stats {re.escape(BL)} \(serial {SERIAL}\): queries (\d+) listed (\d+) not_listed (\d+)", start=mark
    )
    assert line.groups() == ("2", "1", "1")
    server.wait_for(r"stats no zone .*refused 1", start=mark)
    mark = server.mark()
    assert server.stop() == 0
    server.wait_for(rf"stats {re.escape(BL)} \(serial {SERIAL}\): queries 2", start=mark)


def test_tcp_idle_timeout_and_connection_cap(fresh: tuple[Path, list[Served]]) -> None:
    zones_dir, started = fresh
    publish(zones_dir, sample_zones(SERIAL))
    server = start_server(zones_dir, "--tcp-idle-timeout", "1", "--max-tcp", "2")
    started.append(server)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as idle:
        t0 = time.monotonic()
        assert idle.recv(10) == b""  # closed by the server, not by our timeout
        assert time.monotonic() - t0 < 8
    a = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    b = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        # Both are served (so both count as open); a third waits for a slot, not closed,
        # and gets the one of `a`, the idlest, once it has been idle tcp.EVICT_AFTER.
        q = bytes(DNSRecord.question(BL, "SOA").pack())
        for conn in (a, b):
            conn.sendall(struct.pack(">H", len(q)) + q)
            assert len(conn.recv(65535)) > 2
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as third:
            third.sendall(struct.pack(">H", len(q)) + q)
            assert len(third.recv(65535)) > 2
        assert a.recv(10) == b""
    finally:
        a.close()
        b.close()
    server.wait_for(r"tcp: 2 connections open, the cap: new connections wait")


class _FakeSecondary:
    """A UDP socket that records NOTIFY messages and acknowledges them."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(30)
        self.port = self.sock.getsockname()[1]

    def next_notify(self) -> DNSRecord:
        while True:
            data, addr = self.sock.recvfrom(65535)
            msg = DNSRecord.parse(data)
            if msg.header.opcode == OPCODE.NOTIFY and not msg.header.qr:
                reply = msg.reply()
                reply.header.opcode = OPCODE.NOTIFY
                self.sock.sendto(bytes(reply.pack()), addr)
                return msg


def test_notify_at_start_and_after_a_new_serial(fresh: tuple[Path, list[Served]]) -> None:
    zones_dir, started = fresh
    secondary = _FakeSecondary()
    meta = {BL: {"secondaries": [{"address": "127.0.0.1", "port": secondary.port, "notify": True, "tsig_key": None}]}}
    publish(zones_dir, sample_zones(SERIAL), meta)
    server = start_server(zones_dir)
    started.append(server)
    try:
        first = secondary.next_notify()
        assert str(first.q.qname) == BL + "." and first.q.qtype == QTYPE.SOA and first.header.aa
        assert first.rr[0].rdata.times[0] == SERIAL
        server.wait_for(rf"notify {re.escape(BL)} serial {SERIAL} to 127\.0\.0\.1:{secondary.port}: acknowledged")
        publish(zones_dir, sample_zones(SERIAL + 1), meta)
        second = secondary.next_notify()
        assert second.rr[0].rdata.times[0] == SERIAL + 1
    finally:
        secondary.sock.close()
