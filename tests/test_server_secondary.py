"""A real secondary: Debian's NSD takes our zones by AXFR after our NOTIFY and answers
the test points and a sample of listed / unlisted / empty-non-terminal names exactly
as our server does (TXT of wildcard-rendered names excepted: a DNS wildcard cannot
echo the queried name, see publisher.compile.render)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from authdns import NSD_CONF
from conftest import free_port, require_tool, stop_process
from server_fixtures import publish, sample_zones
from test_server import BL, DBL, SERIAL, WL, Served, dig, start_server, v4q, v6q

ZONES = (BL, WL, DBL)

NSD_ZONE = """zone:
    name: {zone}
    zonefile: "{zone}.zone"
    request-xfr: AXFR 127.0.0.1@{primary} NOKEY
    allow-notify: 127.0.0.1 NOKEY
"""


@pytest.fixture
def primary_and_secondary(tmp_path: Path) -> Iterator[tuple[Served, int]]:
    nsd = require_tool("nsd")
    require_tool("dig")
    nsd_port = free_port()
    secondary = {"address": "127.0.0.1", "port": nsd_port, "notify": True, "tsig_key": None}
    zones_dir = tmp_path / "zones"
    publish(zones_dir, sample_zones(SERIAL), {z: {"secondaries": [secondary]} for z in ZONES})
    primary = start_server(zones_dir)
    nsd_dir = tmp_path / "nsd"
    nsd_dir.mkdir()
    conf = NSD_CONF.format(port=nsd_port, dir=nsd_dir) + "".join(
        NSD_ZONE.format(zone=z, primary=primary.port) for z in ZONES
    )
    (nsd_dir / "nsd.conf").write_text(conf)
    proc = subprocess.Popen(
        [nsd, "-d", "-c", str(nsd_dir / "nsd.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield primary, nsd_port
    finally:
        stop_process(proc)
        primary.stop()


def _wait_transferred(port: int, serial: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    for zone in ZONES:
        while True:
            try:
                got = dig(port, zone, "SOA", "+time=1")
            except AssertionError:  # no answer at all: NSD busy (reloading) on a loaded machine
                assert time.monotonic() < deadline, f"NSD did not answer for {zone} within {timeout}s"
                continue
            if got.status == "NOERROR" and got.answer and got.answer[0][3].split()[2] == str(serial):
                break
            assert time.monotonic() < deadline, f"NSD did not load {zone} serial {serial}: {got.text}"
            time.sleep(0.1)  # polling NSD's observable state, bounded by the deadline


#: (name, qtype) asked of both servers; TXT only where the name is not a wildcard in the zone file.
SAMPLE = [
    (f"2.0.0.127.{BL}", "A"),
    (f"2.0.0.127.{BL}", "TXT"),
    (f"1.0.0.127.{BL}", "A"),
    (v6q("::ffff:7f00:2"), "A"),
    (v6q("::ffff:7f00:2"), "TXT"),
    (v6q("::ffff:7f00:1"), "A"),
    (f"2.0.0.127.{WL}", "TXT"),
    (f"25.2.0.192.{WL}", "ANY"),
    (f"26.2.0.192.{WL}", "A"),
    (f"test.{DBL}", "A"),
    (f"test.{DBL}", "TXT"),
    (f"invalid.{DBL}", "A"),
    (v4q("192.0.2.7"), "A"),
    (v4q("192.0.2.7"), "TXT"),
    (v4q("192.0.2.8"), "A"),
    (v4q("198.51.100.200"), "A"),
    (v4q("100.64.7.1"), "A"),
    (v4q("100.66.0.0"), "A"),
    (v6q("2001:db8:2::5"), "ANY"),
    (v6q("2001:db8:1::77"), "A"),
    (v6q("2001:db8:3::1"), "A"),
    (f"127.{BL}", "A"),
    (f"0.0.127.{BL}", "A"),
    (f"spam.example.{DBL}", "ANY"),
    (f"example.{DBL}", "A"),
    (f"x.bad.example.{DBL}", "A"),
    (f"nothing.{DBL}", "A"),
    (v4q("192.0.2.7"), "AAAA"),
    (BL, "SOA"),
    (BL, "NS"),
    ("example.com", "A"),
]


def test_nsd_secondary_answers_like_us(primary_and_secondary: tuple[Served, int]) -> None:
    primary, nsd_port = primary_and_secondary
    _wait_transferred(nsd_port, SERIAL)
    for name, qtype in SAMPLE:
        ours = dig(primary.port, name, qtype)
        theirs = dig(nsd_port, name, qtype)
        assert ours.status == theirs.status, (name, qtype, ours.text, theirs.text)
        if qtype == "ANY":  # NSD answers ANY with one RRset (RFC 8482); we give A and TXT
            assert set(theirs.answer) <= set(ours.answer) and bool(theirs.answer) == bool(ours.answer)
        else:
            assert sorted(ours.answer) == sorted(theirs.answer), (name, qtype)
        if ours.status != "REFUSED" and not ours.answer:
            # Negative answers carry the same SOA. (NSD also puts NS in the authority of
            # positive answers; we answer minimally, as BIND does by default.)
            assert sorted(ours.authority) == sorted(theirs.authority), (name, qtype)
    primary.wait_for(r"AXFR of bl\.example\.test serial \d+ to 127\.0\.0\.1")
    primary.wait_for(r"notify bl\.example\.test serial \d+ to 127\.0\.0\.1:\d+: acknowledged")


def test_new_serial_reaches_the_secondary_by_notify(primary_and_secondary: tuple[Served, int]) -> None:
    primary, nsd_port = primary_and_secondary
    _wait_transferred(nsd_port, SERIAL)
    secondary = {"address": "127.0.0.1", "port": nsd_port, "notify": True, "tsig_key": None}
    publish(primary.zones_dir, sample_zones(SERIAL + 1), {z: {"secondaries": [secondary]} for z in ZONES})
    # NSD's refresh timer is an hour: only our NOTIFY can bring the new serial this fast.
    _wait_transferred(nsd_port, SERIAL + 1, timeout=30)
