"""Abuse limits of the server (issue 5): TCP slowloris and floods, rate limiting, ACLs, ANY.

The real server runs as a subprocess on ephemeral loopback ports (test_server.start_server).
TCP: 1,000 idle connections must not stop UDP or a fresh TCP client being served; a peer
dribbling an endless frame is closed at the idle timeout; a peer pipelining queries
without reading its answers is slowed by flow control instead of growing the server;
frames with lying lengths and garbage do no harm. Rate limiting (off by default) is
checked on a fake clock in process and end to end for each of drop, slip and code.
AXFR and NOTIFY access is checked in process on ZoneSets with and without secondaries.
"""

from __future__ import annotations

import resource
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from conftest import ROOT
from publisher import errorcodes
from publisher.addresses import parse_network
from publisher.model import Secondary
from publisher.server import rrl, slow, xfr
from publisher.server.stats import new_counters
from publisher.server.zoneset import ZoneSet, ZoneSettings
from server_fixtures import publish, read_tcp_message, sample_zones
from test_server import BL, DBL, SERIAL, WL, Served, start_server, v4q

LISTED = v4q("192.0.2.7")
SLOWLORIS = 1000


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def udp_ask(port: int, name: str, qtype: str = "A", timeout: float = 2.0) -> DNSRecord:
    q = DNSRecord.question(name, qtype)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(bytes(q.pack()), ("127.0.0.1", port))
        while True:
            data = sock.recv(65535)
            if data[:2] == bytes(q.pack())[:2]:
                return DNSRecord.parse(data)


def tcp_ask(port: int, name: str, qtype: str = "A", timeout: float = 5.0) -> DNSRecord:
    q = bytes(DNSRecord.question(name, qtype).pack())
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">H", len(q)) + q)
        return DNSRecord.parse(read_tcp_message(sock))


def codes(reply: DNSRecord) -> list[str]:
    return sorted(str(r.rdata) for r in reply.rr if r.rtype == QTYPE.A)


@pytest.fixture(scope="module")
def zones_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hardening") / "zones"
    publish(path, sample_zones(SERIAL), {WL: {"allow_transfer": ["192.0.2.0/24"]}})
    return path


@pytest.fixture
def server(zones_dir: Path, request: pytest.FixtureRequest) -> Iterator[Served]:
    args = getattr(request, "param", ())
    served = start_server(zones_dir, *args)
    yield served
    served.stop()
    assert "tcp loop error" not in served.log_text()


def _raise_fd_limit(want: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            pytest.skip(f"the fd limit ({hard}) is below the {want} this test needs")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


# --- TCP ----------------------------------------------------------------------------------------


def test_slowloris_does_not_stop_udp_or_new_tcp_clients(server: Served) -> None:
    _raise_fd_limit(SLOWLORIS + 256)
    idle: list[socket.socket] = []
    try:
        for i in range(SLOWLORIS):
            try:
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            except OSError:
                continue  # a connection the server shed before the handshake finished
            if i % 2:
                try:
                    sock.send(b"\x00")  # half of them start a frame and never finish it
                except OSError:
                    pass
            idle.append(sock)
        assert len(idle) > SLOWLORIS // 2
        t0 = time.monotonic()
        for _ in range(20):
            assert codes(udp_ask(server.port, LISTED)) == ["127.0.0.2", "127.0.0.3"]
        assert time.monotonic() - t0 < 5
        # A fresh TCP client waits in the listen backlog, then takes the place of the stalest
        # idle connection (after it had tcp.EVICT_AFTER to prove it is idle).
        deadline = time.monotonic() + 5  # well under the 10 s idle timeout: eviction, not expiry
        tries = 0
        while True:
            tries += 1
            try:
                got = tcp_ask(server.port, LISTED)
                break
            except (ConnectionError, OSError):
                assert time.monotonic() < deadline, f"no TCP answer in 5s ({tries} tries)"
                time.sleep(0.2)  # a client's retry interval, bounded by the deadline
        assert codes(got) == ["127.0.0.2", "127.0.0.3"]
        assert codes(tcp_ask(server.port, f"2.0.0.127.{BL}")) == ["127.0.0.2"]  # and again
    finally:
        for sock in idle:
            sock.close()
    server.wait_for(r"tcp: 128 connections open, the cap: new connections wait")


@pytest.mark.parametrize("server", [("--tcp-idle-timeout", "1")], indirect=True)
def test_dribbling_an_endless_frame_is_closed_at_the_idle_timeout(server: Served) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.send(b"\xff")  # a 65,280+ byte message announced, then a byte now and then
        t0 = time.monotonic()
        closed = False
        while time.monotonic() - t0 < 8:
            try:
                sock.send(b"x")
            except OSError:
                closed = True
                break
            sock.settimeout(0.3)
            try:
                if sock.recv(10) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
        assert closed, "a byte every 0.3 s kept the connection open past the 1 s idle timeout"
        assert time.monotonic() - t0 < 5


def test_partial_frames_are_put_together(server: Served) -> None:
    """Regression: a frame split across reads made _process and _write recurse until RecursionError."""
    q = bytes(DNSRecord.question(LISTED, "A").pack())
    frame = struct.pack(">H", len(q)) + q
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in (frame[:1], frame[1:2], frame[2:9], frame[9:]):
            sock.send(piece)
            time.sleep(0.05)  # let the server read each piece on its own (not a synchronisation)
        buf = b""
        while len(buf) < 2 or len(buf) < 2 + struct.unpack(">H", buf[:2])[0]:
            buf += sock.recv(65535)
    assert codes(DNSRecord.parse(buf[2:])) == ["127.0.0.2", "127.0.0.3"]
    assert "RecursionError" not in server.log_text()


def test_pipelined_queries_without_reading_do_not_grow_the_server(server: Served) -> None:
    # 400,000 queries (18 MB): more than every kernel buffer on the way can hold, so the
    # sender blocks unless the server reads them all into memory.
    n = 400_000
    raw = bytes(DNSRecord.question(LISTED, "TXT").pack())
    head = struct.pack(">H", len(raw))
    data = b"".join(head + struct.pack(">H", i & 0xFFFF) + raw[2:] for i in range(n))
    before = rss_kib(server.proc.pid)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 16)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
    sender = threading.Thread(target=sock.sendall, args=(data,), daemon=True)
    sender.start()
    try:
        sender.join(timeout=3)  # we read nothing meanwhile: the server must stop reading too
        assert sender.is_alive(), "the server read a whole unread pipeline into memory"
        grown = rss_kib(server.proc.pid) - before
        assert grown < 8 * 1024, f"server grew {grown} KiB for a peer that does not read"
        got, buf, at, ids = 0, bytearray(), 0, []
        while got < n:
            chunk = sock.recv(1 << 20)
            assert chunk, f"closed after {got} answers"
            del buf[:at]
            buf += chunk
            at = 0
            while len(buf) - at >= 2 and len(buf) - at >= 2 + ((buf[at] << 8) | buf[at + 1]):
                ids.append((buf[at + 2] << 8) | buf[at + 3])
                at += 2 + ((buf[at] << 8) | buf[at + 1])
                got += 1
        assert ids == [i & 0xFFFF for i in range(n)]  # every answer, in order
    finally:
        sock.close()
        sender.join(timeout=10)


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x01\xf4" + b"q" * 10,  # 500 announced, 10 sent, then close
        b"\x00\x0a" + b"z" * 500,  # 10 announced, 500 sent: the rest reads as more frames
        b"\x00\x00",  # a zero-length message
        b"\xff\xff" + b"\xa5" * 65535,  # the largest message, all garbage
        bytes(range(256)) * 8,
    ],
    ids=["short", "long", "zero", "max-garbage", "bytes"],
)
def test_lying_frames_and_garbage_do_no_harm(server: Served, garbage: bytes) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        try:
            sock.sendall(garbage)
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(5)
            while sock.recv(65535):
                pass  # whatever the server says (FORMERR or nothing), it must then close
        except OSError:
            pass  # closed on us mid-send: fine
    assert codes(tcp_ask(server.port, LISTED)) == ["127.0.0.2", "127.0.0.3"]
    assert codes(udp_ask(server.port, LISTED)) == ["127.0.0.2", "127.0.0.3"]


# --- rate limiting ---------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_per_network() -> None:
    clock = Clock()
    limiter = rrl.RateLimiter(rrl.RrlSettings(qps=10, burst=5), clock)
    a, b = rrl.key_of_addr(("192.0.2.1", 53)), rrl.key_of_addr(("192.0.2.200", 53))
    assert a == b  # the same /24
    assert [limiter.allow(a) for _ in range(7)] == [True] * 5 + [False] * 2
    assert limiter.allow(rrl.key_of_addr(("192.0.3.1", 53)))  # another /24 has its own bucket
    clock.now += 0.25  # 2.5 tokens back
    assert [limiter.allow(a) for _ in range(3)] == [True, True, False]
    clock.now += 60
    assert sum(limiter.allow(a) for _ in range(10)) == 5  # saved up to the burst, no more
    six = [rrl.key_of_addr((f"2001:db8:0:{i:x}::1", 53, 0, 0)) for i in (0x00, 0xFF, 0x100)]
    assert six[0] == six[1] != six[2]  # /56


def test_sockaddr_keys_match_address_keys() -> None:
    # struct sockaddr_in / sockaddr_in6 as the kernel fills them (family in host order, Linux x86).
    raw4 = (
        socket.AF_INET.to_bytes(2, sys.byteorder)
        + (53).to_bytes(2, "big")
        + socket.inet_aton("198.51.100.77")
        + bytes(8)
    )
    assert rrl.key_of_sockaddr(raw4) == rrl.key_of_addr(("198.51.100.1", 53))
    v6 = socket.inet_pton(socket.AF_INET6, "2001:db8:1:2a00::5")
    raw6 = socket.AF_INET6.to_bytes(2, sys.byteorder) + (53).to_bytes(2, "big") + bytes(4) + v6 + bytes(4)
    assert rrl.key_of_sockaddr(raw6) == rrl.key_of_addr(("2001:db8:1:2aff::1", 53, 0, 0))


def test_tracked_networks_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rrl, "MAX_TRACKED", 100)
    clock = Clock()
    limiter = rrl.RateLimiter(rrl.RrlSettings(qps=1), clock)
    for i in range(1000):
        limiter.allow(i.to_bytes(4, "big"))
        clock.now += 0.001
    assert len(limiter.buckets) <= 100


def _over_quota(answer: str, qtype: int = 1) -> bytes:
    limiter = rrl.RateLimiter(rrl.RrlSettings(qps=1, answer=answer), Clock())
    q = bytes(DNSRecord.question("9.9.9.192.bl.example.test", QTYPE[qtype]).pack())
    assert limiter.check(q, b"4abc") is None
    return limiter.check(q, b"4abc") or b""


def test_over_quota_answers() -> None:
    assert _over_quota("drop") == b""
    slip = DNSRecord.parse(_over_quota("slip"))
    assert slip.header.tc and not slip.rr and slip.header.rcode == RCODE.NOERROR
    code = DNSRecord.parse(_over_quota("code"))
    assert code.header.aa and codes(code) == ["127.255.255.255"]
    text = DNSRecord.parse(_over_quota("code", 16))
    assert [str(r.rdata) for r in text.rr] == [f'"{errorcodes.OVER_QUOTA.txt}"']
    assert len(DNSRecord.parse(_over_quota("code", 255)).rr) == 2


@pytest.mark.parametrize("bad", [{"qps": 0}, {"qps": 5, "answer": "reject"}, {"qps": 5, "code": "127.0.0.2"}])
def test_bad_rrl_settings_are_refused(bad: dict) -> None:
    from publisher.errors import ServerError

    with pytest.raises(ServerError):
        rrl.RrlSettings(**bad)


def test_bad_rrl_flag_stops_the_server_with_a_message(zones_dir: Path) -> None:
    cmd = [sys.executable, "-m", "publisher.server", "--zones", str(zones_dir), "--listen", "127.0.0.1:0"]
    done = subprocess.run(
        [*cmd, "--rrl-qps", "5", "--rrl-code", "127.0.0.2"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode != 0 and "127.255.255.0/24" in done.stderr


def _burst(port: int, n: int, name: str = LISTED) -> list[DNSRecord]:
    """Send n queries at once from one socket; the replies that come back within a second."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        for i in range(n):
            q = DNSRecord.question(name, "A")
            q.header.id = i
            sock.sendto(bytes(q.pack()), ("127.0.0.1", port))
        replies = []
        sock.settimeout(1.0)
        try:
            while len(replies) < n:
                replies.append(DNSRecord.parse(sock.recv(65535)))
        except TimeoutError:
            pass
        return replies


@pytest.mark.parametrize("server", [("--rrl-qps", "20", "--rrl-answer", "code")], indirect=True)
def test_rrl_code_answers_over_quota_clients(server: Served) -> None:
    replies = _burst(server.port, 200)
    assert len(replies) == 200
    real = [r for r in replies if codes(r) == ["127.0.0.2", "127.0.0.3"]]
    limited = [r for r in replies if codes(r) == ["127.255.255.255"]]
    assert len(real) + len(limited) == 200
    assert 20 <= len(real) <= 60  # the burst, plus what refilled while the 200 went through
    # TCP is not limited: a real resolver can always get the answer that way.
    assert codes(tcp_ask(server.port, LISTED)) == ["127.0.0.2", "127.0.0.3"]


@pytest.mark.parametrize("server", [("--rrl-qps", "20", "--rrl-answer", "slip")], indirect=True)
def test_rrl_slip_sends_truncated_replies(server: Served) -> None:
    replies = _burst(server.port, 200)
    truncated = [r for r in replies if r.header.tc]
    assert len(replies) == 200 and len(truncated) >= 140 and all(not r.rr for r in truncated)


@pytest.mark.parametrize("server", [("--rrl-qps", "20")], indirect=True)
def test_rrl_drop_is_the_default_answer(server: Served) -> None:
    replies = _burst(server.port, 200)
    assert 20 <= len(replies) <= 60 and all(codes(r) == ["127.0.0.2", "127.0.0.3"] for r in replies)


def test_no_rate_limit_by_default(server: Served) -> None:
    replies = _burst(server.port, 300)
    assert len(replies) == 300 and all(codes(r) == ["127.0.0.2", "127.0.0.3"] for r in replies)


# --- AXFR and NOTIFY access ----------------------------------------------------------------------------------


def _zones(**settings: ZoneSettings) -> ZoneSet:
    return ZoneSet.build(sample_zones(SERIAL).values(), {BL: ZoneSettings(**settings)} if settings else {})  # type: ignore[arg-type]


def _axfr(zs: ZoneSet, client: str) -> object:
    return slow.handle(zs, bytes(DNSRecord.question(BL, "AXFR").pack()), client, True, new_counters())


def _notify(zs: ZoneSet, client: str, zone: str = BL) -> int:
    q = DNSRecord.question(zone, "SOA")
    q.header.opcode = 4
    q.header.aa = 1
    got = slow.handle(zs, bytes(q.pack()), client, False, new_counters())
    assert isinstance(got, bytes)
    return got[3] & 0x0F


def test_axfr_and_notify_only_from_allowed_addresses() -> None:
    default = _zones()  # allow_transfer defaults to loopback
    assert isinstance(_axfr(default, "127.0.0.1"), xfr.TransferRequest)
    assert isinstance(_axfr(default, "::1"), xfr.TransferRequest)
    assert _notify(default, "127.0.0.1") == RCODE.NOERROR
    for outsider in ("192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1"):
        refused = _axfr(default, outsider)
        assert isinstance(refused, bytes) and refused[3] & 0x0F == RCODE.REFUSED
        assert _notify(default, outsider) == RCODE.REFUSED


def test_secondaries_may_transfer_without_being_in_allow_transfer() -> None:
    zs = _zones(allow_transfer=(parse_network("192.0.2.0/24"),), secondaries=(Secondary("198.51.100.5"),))
    assert isinstance(_axfr(zs, "198.51.100.5"), xfr.TransferRequest)
    assert isinstance(_axfr(zs, "192.0.2.77"), xfr.TransferRequest)
    assert _notify(zs, "198.51.100.5") == RCODE.NOERROR
    assert isinstance(_axfr(zs, "127.0.0.1"), bytes)  # allow_transfer given: loopback no longer implied
    assert _notify(zs, "198.51.100.6") == RCODE.REFUSED


def test_notify_refused_over_the_network_outside_the_acl(server: Served) -> None:
    for zone, rcode in ((WL, RCODE.REFUSED), (BL, RCODE.NOERROR), (DBL, RCODE.NOERROR)):
        q = DNSRecord.question(zone, "SOA")
        q.header.opcode = 4
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            sock.sendto(bytes(q.pack()), ("127.0.0.1", server.port))
            assert DNSRecord.parse(sock.recv(4096)).header.rcode == rcode, zone
