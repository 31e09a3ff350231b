"""`serve --metrics`: the real server scraped over HTTP while it answers queries.

Counters move by exactly the queries sent, the zone gauges match the manifest the
publish wrote (listings, expiring_7d), the publish info names the commit, and a
reload (good, then refused) moves the reload gauges and the serial.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from dnslib import DNSRecord

from conftest import ROOT
from publisher.lists.tree import DirTree
from publisher.publish.build import compile_tree, write_build
from publisher.publish.manifest import Manifest, Source
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
