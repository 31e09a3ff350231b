"""The server keeps answering whatever its side jobs and its bugs do (security review, items 7-8).

In process, on ephemeral loopback ports: a NOTIFY thread that cannot be started (at start
and on reload) and a stats report that raises are logged, and `run_forever` goes on
serving and reloading. A responder whose answering raises answers every packet SERVFAIL
and writes a bounded number of log lines, the first with its traceback (ratelog.Throttle,
checked on a fake clock).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dnslib import RCODE, DNSRecord

from publisher.server import core
from publisher.server.app import Server
from publisher.server.ratelog import MAX_TEXT, Throttle, brief
from publisher.server.stats import NO_ZONE, SERVFAIL, new_counters
from publisher.server.zoneset import ZoneSet
from server_fixtures import publish, sample_zones
from test_server import BL, SERIAL

PACKETS = 1000


def soa_serial(port: int) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(bytes(DNSRecord.question(BL, "SOA").pack()), ("127.0.0.1", port))
        reply = DNSRecord.parse(sock.recv(4096))
    assert reply.header.rcode == RCODE.NOERROR
    return int(reply.rr[0].rdata.times[0])


def wait_until(what: str, test: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not test():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout}s")
        time.sleep(0.05)


@pytest.fixture()
def running(tmp_path: Path) -> Iterator[tuple[Server, threading.Thread, Path, dict]]:
    """A server with one NOTIFY secondary (a silent loopback port), its main loop on a thread."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    meta = {BL: {"secondaries": [{"address": "127.0.0.1", "port": silent.getsockname()[1], "notify": True}]}}
    zones_dir = tmp_path / "zones"
    publish(zones_dir, sample_zones(SERIAL), meta)
    server = Server(zones_dir, ["127.0.0.1:0"], watch_manifest=False, send_notify=True)
    loop = threading.Thread(target=server.run_forever, name="main-loop", daemon=True)
    try:
        yield server, loop, zones_dir, meta
    finally:
        server.request("stop")
        if loop.ident is not None:  # started by the test
            loop.join(10)
        server.stop()
        silent.close()


def test_a_notify_thread_that_cannot_start_does_not_stop_the_server(
    running: tuple[Server, threading.Thread, Path, dict],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, loop, zones_dir, meta = running
    real_start = threading.Thread.start

    def start(self: threading.Thread) -> None:
        if self.name == "notify":
            raise RuntimeError("can't start new thread")
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    caplog.set_level(logging.INFO, logger="publisher.server")
    port = server.start()[0].port
    loop.start()
    assert soa_serial(port) == SERIAL
    publish(zones_dir, sample_zones(SERIAL + 1), meta)
    server.request("reload")
    wait_until("the new serial served", lambda: soa_serial(port) == SERIAL + 1)
    wait_until("the NOTIFY failure logged twice (start, reload)", lambda: len(notify_failures(caplog)) == 2)
    assert loop.is_alive(), "run_forever stopped"
    assert f"secondaries of {BL} are not notified" in notify_failures(caplog)[-1]
    # Still the main loop: a later publish is taken too.
    publish(zones_dir, sample_zones(SERIAL + 2), meta)
    server.request("reload")
    wait_until("the next serial served", lambda: soa_serial(port) == SERIAL + 2)


def notify_failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "cannot start the NOTIFY thread" in r.getMessage()]


def test_a_main_loop_job_that_raises_is_logged_and_the_loop_goes_on(
    running: tuple[Server, threading.Thread, Path, dict],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, loop, zones_dir, meta = running
    server.send_notify = False

    def broken(serials: dict[str, int]) -> list[str]:
        raise KeyError("simulated bug in the stats report")

    monkeypatch.setattr(server.stats, "report", broken)
    caplog.set_level(logging.INFO, logger="publisher.server")
    port = server.start()[0].port
    loop.start()
    server.request("stats")
    wait_until("the failure logged", lambda: any("the stats report failed" in r.getMessage() for r in caplog.records))
    failure = next(r for r in caplog.records if "the stats report failed" in r.getMessage())
    assert "KeyError: 'simulated bug in the stats report'; still serving generation" in failure.getMessage()
    assert failure.exc_info is not None  # the first time, with the traceback
    assert loop.is_alive()
    publish(zones_dir, sample_zones(SERIAL + 1), meta)
    server.request("reload")
    wait_until("the new serial served", lambda: soa_serial(port) == SERIAL + 1)


# --- a responder whose answering raises -----------------------------------------------------


class _Zones:
    zones = ZoneSet.build(sample_zones().values())


@pytest.mark.parametrize("path", ["udp-batched", "udp-log-queries", "tcp"])
def test_every_raising_packet_gets_servfail_and_the_log_stays_short(
    path: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_: object) -> bytes | None:
        raise IndexError("simulated bug reading the question")

    monkeypatch.setattr(core, "fast", broken)
    caplog.set_level(logging.DEBUG, logger="publisher.server")
    counts = new_counters()
    responder = core.Responder(_Zones(), counts, log_queries=path == "udp-log-queries")
    started = time.monotonic()
    for i in range(PACKETS):
        query = DNSRecord.question(f"{i}.2.0.192.{BL}", "A")
        if path == "udp-batched":
            wire = responder._quick(bytes(query.pack()))
        elif path == "udp-log-queries":
            wire = responder.answer(bytes(query.pack()), ("192.0.2.1", 53))
        else:
            wire = b"".join(responder.answer_tcp(bytes(query.pack()), ("192.0.2.1", 53)))
        assert wire is not None
        reply = DNSRecord.parse(wire)
        assert reply.header.id == query.header.id and reply.header.rcode == RCODE.SERVFAIL
    elapsed = time.monotonic() - started
    lines = [r for r in caplog.records if r.name == "publisher.server"]
    assert 1 <= len(lines) <= 2 + elapsed  # one a second at most, not one per packet
    assert lines[0].exc_info is not None  # the first, with its traceback
    assert all(r.exc_info is None for r in lines[1:])
    assert "IndexError: simulated bug reading the question; sent SERVFAIL" in lines[0].getMessage()
    assert f".2.0.192.{BL} A from " in lines[0].getMessage()
    assert responder.errors.count == PACKETS
    assert counts[NO_ZONE][SERVFAIL] == PACKETS


# --- ratelog.Throttle on a fake clock ---------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _raise(exc: Exception) -> Exception:
    try:
        raise exc
    except Exception as caught:  # noqa: BLE001 - the caught exception, with its traceback
        return caught


def test_throttle_one_line_an_interval_saying_how_many_it_held(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="test.throttle")
    clock = _Clock()
    throttle = Throttle(logging.getLogger("test.throttle"), 1.0, clock=clock)
    first = _raise(ValueError("one"))
    assert throttle.event(logging.ERROR, "bad packet %d", 0, exc=first)
    assert not any(throttle.event(logging.ERROR, "bad packet %d", i, exc=first) for i in range(1, 500))
    clock.now += 0.999
    assert not throttle.event(logging.ERROR, "bad packet %d", 500, exc=first)
    clock.now += 0.001
    assert throttle.event(logging.ERROR, "bad packet %d", 501, exc=first)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["bad packet 0", "bad packet 501 (500 more not logged since the previous line)"]
    assert caplog.records[0].exc_info is not None and caplog.records[1].exc_info is None
    # An exception from another code line shows its traceback once, even inside the interval.
    other = _raise(KeyError("two"))
    assert throttle.event(logging.ERROR, "bad packet %d", 502, exc=other)
    assert not throttle.event(logging.ERROR, "bad packet %d", 503, exc=other)
    assert caplog.records[-1].exc_info is not None
    assert throttle.count == 504


def test_brief_is_one_short_line() -> None:
    assert brief(ValueError("a\nb")) == "ValueError: a b"
    assert brief(KeyError()) == "KeyError"
    assert len(brief(ValueError("x" * 10_000))) == MAX_TEXT
