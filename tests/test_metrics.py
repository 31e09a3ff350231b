"""`serve --metrics`: the real server scraped over HTTP while it answers queries.

Counters move by exactly the queries sent, the zone gauges match the manifest the
publish wrote (listings, expiring_7d), the publish info names the commit, and a
reload (good, then refused) moves the reload gauges and the serial. Rate-limited queries
are counted by what they got (nothing, a TC reply, the code answer) and TCP evictions at
the connection cap with the open connections. In process, with short limits: 400 idle
connections to the endpoint keep its threads at the cap and are all closed at the timeout
while a scrape still gets through, a request dribbled byte by byte is cut at its deadline,
and 1000 queries whose answering raises are each answered SERVFAIL, counted in
dnsbl_internal_errors_total and logged in a bounded number of lines.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import logging
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
from dnslib import RCODE, DNSRecord

from conftest import ROOT
from publisher.lists.tree import DirTree
from publisher.publish.build import compile_tree, write_build
from publisher.publish.manifest import Manifest, Source
from publisher.server.app import Server
from publisher.server.rrl import RrlSettings
from publisher.server.zoneset import ZoneSet
from server_fixtures import sample_zones
from test_server import Served, start_server

pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families

BL = "bl.example.test"
NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
COMMIT = "0123456789abcdef0123456789abcdef01234567"

ZONES_YAML = f"""\
zones:
  - name: {BL}
    kind: ip
    role: block
    sources: [bl/*.yaml]
    code: 127.0.0.2
    txt: "{{reason}}"
"""
ENTRIES = """\
entries:
  - ip: 192.0.2.7
    reason: no expiry
  - ip: 198.51.100.0/24
    reason: expires in three days
    expires: 2026-11-30
  - ip: 203.0.113.9
    reason: expires in a month
    expires: 2026-12-27
"""
MORE = """\
  - ip: 192.0.2.8
    reason: added by the second publish
"""

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def compile_into(lists: Path, zones_dir: Path, entries: str, now: dt.datetime) -> Manifest:
    (lists / "bl").mkdir(parents=True, exist_ok=True)
    (lists / "zones.yaml").write_text(ZONES_YAML)
    (lists / "bl" / "a.yaml").write_text(entries)
    build = compile_tree(DirTree(lists), as_of=now)
    manifest, _ = write_build(zones_dir, build, source=Source(kind="git", commit=COMMIT), now=now)
    return manifest


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def query_counts(samples: Samples) -> dict[tuple[str, str], float]:
    return {
        (dict(labels)["zone"], dict(labels)["result"]): v
        for (name, labels), v in samples.items()
        if name == "dnsbl_queries_total"
    }


def ask(port: int, name: str, qtype: str = "A") -> DNSRecord:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(DNSRecord.question(name, qtype).pack(), ("127.0.0.1", port))
        return DNSRecord.parse(sock.recv(4096))


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[Served, int, Path, Path]]:
    lists, zones_dir = tmp_path / "lists", tmp_path / "zones"
    compile_into(lists, zones_dir, ENTRIES, NOW)
    server = start_server(zones_dir, "--no-watch", "--metrics", "127.0.0.1:0")
    port = int(server.wait_for(r"metrics on http://127\.0\.0\.1:(\d+)/metrics").group(1))
    try:
        yield server, port, lists, zones_dir
    finally:
        server.stop()


def test_counters_move_by_exactly_the_queries_sent(served: tuple[Served, int, Path, Path]) -> None:
    server, mport, _, _ = served
    before = scrape(mport)
    for _ in range(3):
        assert ask(server.port, f"7.2.0.192.{BL}").header.rcode == 0
    for _ in range(2):
        assert ask(server.port, f"10.0.0.10.{BL}").header.rcode == 3  # NXDOMAIN
    assert ask(server.port, BL, "TXT").header.rcode == 0  # the apex has no TXT: NODATA
    assert ask(server.port, "www.example.org").header.rcode == 5  # REFUSED, no served zone
    after = scrape(mport)
    old, new = query_counts(before), query_counts(after)
    moved = {key: new[key] - old.get(key, 0) for key in new if new[key] != old.get(key, 0)}
    assert moved == {(BL, "listed"): 3, (BL, "not_listed"): 2, (BL, "nodata"): 1, ("-", "refused"): 1}
    # every UDP datagram is timed, whatever its outcome
    count = "dnsbl_query_processing_seconds_count"
    assert value(after, count) - value(before, count) == 7
    assert value(after, "dnsbl_query_processing_seconds_sum") > value(before, "dnsbl_query_processing_seconds_sum")
    assert value(after, "dnsbl_query_processing_seconds_bucket", le="+Inf") == value(after, count)
    assert value(after, "process_resident_memory_bytes") > 0  # prometheus-client's process metrics


def test_zone_gauges_match_the_manifest(served: tuple[Served, int, Path, Path]) -> None:
    _, mport, _, zones_dir = served
    manifest = json.loads((zones_dir / "manifest.json").read_text())
    meta = manifest["zones"][BL]
    assert meta["counts"]["expiring_7d"] == 1  # 198.51.100.0/24 only: the other expires in a month
    got = scrape(mport)
    assert value(got, "dnsbl_zone_serial", zone=BL) == meta["serial"]
    assert value(got, "dnsbl_zone_entries", zone=BL) == meta["counts"]["listings"] == 3
    assert value(got, "dnsbl_zone_entries_expiring_7d", zone=BL) == 1
    info = {"generation": manifest["generation"], "source": "git", "commit": COMMIT}
    assert value(got, "dnsbl_publish_info", **info) == 1
    published = dt.datetime.fromisoformat(manifest["published_at"]).timestamp()
    assert value(got, "dnsbl_publish_timestamp_seconds") == published
    assert value(got, "dnsbl_reload_success") == 1
    assert value(got, "dnsbl_reloads_total", result="success") == 0


def test_reload_moves_reload_time_serial_and_result(served: tuple[Served, int, Path, Path]) -> None:
    server, mport, lists, zones_dir = served
    before = scrape(mport)
    manifest = compile_into(lists, zones_dir, ENTRIES + MORE, NOW + dt.timedelta(hours=1))
    mark = server.mark()
    server.proc.send_signal(signal.SIGHUP)
    server.wait_for(r"reloaded generation", start=mark)
    good = scrape(mport)
    serial = manifest.zones[BL].serial
    assert serial != value(before, "dnsbl_zone_serial", zone=BL)
    assert value(good, "dnsbl_zone_serial", zone=BL) == serial
    assert value(good, "dnsbl_zone_entries", zone=BL) == 4
    assert value(good, "dnsbl_reload_timestamp_seconds") > value(before, "dnsbl_reload_timestamp_seconds")
    assert value(good, "dnsbl_reload_last_success_timestamp_seconds") == value(good, "dnsbl_reload_timestamp_seconds")
    assert value(good, "dnsbl_reload_success") == 1
    assert value(good, "dnsbl_reloads_total", result="success") == 1

    # A corrupt snapshot is refused: the result and the failure count say so, the serial stays.
    snap = zones_dir / "current" / f"{BL}.snap"
    data = bytearray(snap.read_bytes())
    data[len(data) // 2] ^= 0xFF
    snap.resolve().write_bytes(bytes(data))
    mark = server.mark()
    server.proc.send_signal(signal.SIGHUP)
    server.wait_for(r"reload refused", start=mark)
    bad = scrape(mport)
    assert value(bad, "dnsbl_reload_success") == 0
    assert value(bad, "dnsbl_reloads_total", result="failure") == 1
    assert value(bad, "dnsbl_reload_timestamp_seconds") > value(good, "dnsbl_reload_timestamp_seconds")
    last_good = "dnsbl_reload_last_success_timestamp_seconds"
    assert value(bad, last_good) == value(good, last_good)
    assert value(bad, "dnsbl_zone_serial", zone=BL) == serial


def test_prometheus_client_is_not_imported_without_metrics() -> None:
    code = (
        "import sys, publisher.cli.app, publisher.server, publisher.server.app; "
        "assert 'prometheus_client' not in sys.modules, 'imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# --- the endpoint under hostile traffic (in process, short limits) ---------------------------

#: Short limits so the tests wait well under a second for what takes 5 s in production.
TIMEOUT = 0.5
CAP = 16
IDLE = 400


def in_process(*, metrics: str | None = None, batch: bool = True) -> Server:
    """A server on the sample zones, not started: start() binds UDP/TCP (and metrics) on ephemeral ports."""
    zs = ZoneSet.build(sample_zones().values())
    return Server(None, ["127.0.0.1:0"], zoneset=zs, send_notify=False, metrics=metrics, batch=batch)


def scrape_url(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def closed_by_server(sock: socket.socket, deadline: float) -> bool:
    """True once the server has closed `sock` (end of file or reset) before `deadline`."""
    sock.settimeout(max(0.01, deadline - time.monotonic()))
    try:
        while sock.recv(4096):
            pass
        return True
    except ConnectionError:
        return True
    except TimeoutError:
        return False


def test_idle_connections_keep_threads_bounded_and_are_closed() -> None:
    from publisher.server import metrics

    before = threading.active_count()
    exporter = metrics.start("127.0.0.1:0", in_process(), timeout=TIMEOUT, max_connections=CAP)
    try:
        port = exporter.httpd.server_port
        held: list[socket.socket] = []
        peak = 0
        for _ in range(IDLE):
            held.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            peak = max(peak, threading.active_count())
        # The accept loop plus at most CAP connection threads, however many clients wait.
        # (+4: slack for a stray thread of an earlier test ending or starting meanwhile)
        assert peak - before <= 1 + CAP + 4, f"{peak - before} threads for {IDLE} idle connections"
        # A scrape gets through while the idle connections are held (it evicts the oldest).
        got = scrape_url(exporter.url)
        assert value(got, "dnsbl_zone_serial", zone="bl.example.test") > 0
        deadline = time.monotonic() + 10 * TIMEOUT + 5  # generous: the limit is TIMEOUT
        still_open = [s for s in held if not closed_by_server(s, deadline)]
        assert not still_open, f"{len(still_open)} of {IDLE} idle connections left open"
        for s in held:
            s.close()
        assert threading.active_count() - before <= 1 + CAP + 4
    finally:
        exporter.stop()


def test_a_request_dribbled_byte_by_byte_is_cut_at_the_deadline() -> None:
    from publisher.server import metrics

    exporter = metrics.start("127.0.0.1:0", in_process(), timeout=TIMEOUT, max_connections=CAP)
    try:
        with socket.create_connection(("127.0.0.1", exporter.httpd.server_port), timeout=10) as sock:
            sock.sendall(b"GET /metrics HTTP/1.0\r\n")
            # Each header line comes within the per-read timeout; the whole request never does.
            closed = False
            for i in range(50):  # 50 x TIMEOUT/5 = 10 x TIMEOUT: far past the deadline
                try:
                    sock.sendall(b"X-%d: y\r\n" % i)
                except OSError:
                    closed = True
                    break
                if closed_by_server(sock, time.monotonic() + TIMEOUT / 5):
                    closed = True
                    break
            assert closed, "a dribbling client kept its connection past 10 x the timeout"
        assert scrape_url(exporter.url)  # and the endpoint still serves
    finally:
        exporter.stop()


def test_internal_errors_are_counted_and_each_answered_servfail(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from publisher.server import core

    def broken(*_: object) -> bytes | None:
        raise ValueError("simulated bug in the fast path")

    server = in_process(metrics="127.0.0.1:0", batch=False)
    server.start()
    try:
        monkeypatch.setattr(core, "fast", broken)
        caplog.set_level(logging.INFO, logger="publisher.server")
        started = time.monotonic()
        for i in range(1000):
            assert ask(server.bound[0].port, f"{i}.example.org").header.rcode == RCODE.SERVFAIL
        elapsed = time.monotonic() - started
        errors = [r for r in caplog.records if "internal error answering" in r.getMessage()]
        # One line a second at most (plus the first, with its traceback): not one per packet.
        assert 1 <= len(errors) <= 2 + elapsed
        assert errors[0].exc_info is not None and "ValueError: simulated bug" in errors[0].getMessage()
        assert server.metrics_url is not None
        got = scrape_url(server.metrics_url)
        assert value(got, "dnsbl_internal_errors_total") == 1000
        assert value(got, "dnsbl_queries_total", zone="-", result="servfail") == 1000
    finally:
        server.stop()
    assert any("stats internal errors 1000" in r.getMessage() for r in caplog.records)


# --- rate limiting and the TCP cap, each event caused and then scraped ------------------------


@pytest.mark.parametrize("answer", ["drop", "slip", "code"])
def test_rate_limited_queries_are_counted_by_what_they_got(answer: str) -> None:
    zs = ZoneSet.build(sample_zones().values())
    rrl = RrlSettings(qps=5, answer=answer)
    server = Server(None, ["127.0.0.1:0"], zoneset=zs, send_notify=False, metrics="127.0.0.1:0", rrl=rrl)
    server.start()
    try:
        sent, replies = 100, []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for i in range(sent):
                q = DNSRecord.question(f"7.2.0.192.{BL}", "A")
                q.header.id = i
                sock.sendto(bytes(q.pack()), ("127.0.0.1", server.bound[0].port))
            sock.settimeout(1.0)
            try:
                while len(replies) < sent:
                    replies.append(DNSRecord.parse(sock.recv(4096)))
            except TimeoutError:
                pass
        assert server.metrics_url is not None
        got = scrape_url(server.metrics_url)
        truncated = sum(1 for r in replies if r.header.tc)
        coded = sum(1 for r in replies if any(str(rr.rdata) == "127.255.255.255" for rr in r.rr))
        want = {
            "drop": (sent - len(replies), 0, 0),
            "slip": (0, truncated, 0),
            "code": (0, 0, coded),
        }[answer]
        assert sum(want) >= 50  # most of the 100 were over a quota of 5 a second
        names = ("dnsbl_rrl_dropped_total", "dnsbl_rrl_slipped_total", "dnsbl_rrl_code_answers_total")
        assert tuple(value(got, name) for name in names) == want
    finally:
        server.stop()


def test_tcp_evictions_and_connections_are_exported() -> None:
    zs = ZoneSet.build(sample_zones().values())
    server = Server(None, ["127.0.0.1:0"], zoneset=zs, send_notify=False, metrics="127.0.0.1:0", max_tcp_connections=4)
    server.start()
    port = server.bound[0].port
    held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(6)]  # 2 over the cap
    try:
        assert server.metrics_url is not None
        assert value(scrape_url(server.metrics_url), "dnsbl_tcp_evicted_total") == 0
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            q = bytes(DNSRecord.question(f"2.0.0.127.{BL}", "A").pack())
            client.sendall(len(q).to_bytes(2, "big") + q)
            reply = client.recv(65535)
            assert DNSRecord.parse(reply[2:]).header.rcode == RCODE.NOERROR
            # The two held over the cap and the client waited in the backlog, in that order;
            # each got in when an idle connection gave way: 7 accepted, 3 evicted, 4 open.
            got = scrape_url(server.metrics_url)
        assert value(got, "dnsbl_tcp_evicted_total") == 3
        assert value(got, "dnsbl_tcp_connections") == 4
        assert value(got, "dnsbl_tcp_max_connections") == 4
        assert value(got, "dnsbl_tcp_full_seconds_total") > 0
        deadline = time.monotonic() + 1  # they were closed before the client got in
        assert sum(closed_by_server(sock, deadline) for sock in held) == 3
    finally:
        for sock in held:
            sock.close()
        server.stop()


def test_the_readme_names_every_metric_exported(served: tuple[Served, int, Path, Path]) -> None:
    _, mport, _, _ = served
    with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    exported = {
        f.name + ("_total" if f.type == "counter" else "")
        for f in text_string_to_metric_families(text)
        if f.name.startswith("dnsbl_")
    }
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("- **Metrics:**") :]
    section = section[: section.index("\n- **")]
    named = set(re.findall(r"`(dnsbl_[a-z0-9_*]+)", section))
    patterns = [re.compile(fnmatch.translate(name)) for name in named]
    assert {n for n in exported if not any(p.match(n) for p in patterns)} == set(), "exported, not in the README"
    assert {n for n, p in zip(named, patterns) if not any(p.match(e) for e in exported)} == set(), "not exported"
