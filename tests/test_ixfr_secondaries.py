"""Real secondaries take our IXFR: Debian's NSD and Knot, on loopback, ephemeral ports.

Each secondary takes the zones by AXFR, then after a one-line publish takes the change by
IXFR (our transfer log says which, and from which serial), then is made unreachable
(SIGSTOP of its process group, so our NOTIFYs go unanswered) over a few publishes and
catches up through the kept chain, then is unreachable for more publishes than
`--ixfr-keep` and catches up by the AXFR fallback. After each step the zone it serves,
dumped by AXFR from it, equals ours record for record.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import free_port, require_tool, stop_process
from publisher.addresses import parse_code
from publisher.model import Value
from server_fixtures import publish, sample_zones
from test_server import BL, DBL, SERIAL, WL, Served, start_server
from test_server_secondary import NSD_CONF

ZONES = (BL, WL, DBL)
KEEP = 3

NSD_ZONE = """zone:
    name: {zone}
    zonefile: "{zone}.zone"
    request-xfr: 127.0.0.1@{primary} NOKEY
    allow-notify: 127.0.0.1 NOKEY
    provide-xfr: 127.0.0.1 NOKEY
"""

KNOT_CONF = """server:
    listen: 127.0.0.1@{port}
    rundir: "{dir}"
database:
    storage: "{dir}"
log:
  - target: "{dir}/knot.log"
    any: info
remote:
  - id: primary
    address: 127.0.0.1@{primary}
acl:
  - id: local
    address: 127.0.0.1
    action: [notify, transfer]
template:
  - id: default
    storage: "{dir}"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: none
    journal-content: none
zone:
"""
KNOT_ZONE = """  - domain: {zone}
    master: primary
    acl: local
"""


def _nsd(tmp: Path, port: int, primary: int) -> list[str]:
    conf = NSD_CONF.format(port=port, dir=tmp) + "".join(NSD_ZONE.format(zone=z, primary=primary) for z in ZONES)
    (tmp / "nsd.conf").write_text(conf)
    return [require_tool("nsd"), "-d", "-c", str(tmp / "nsd.conf")]


def _knot(tmp: Path, port: int, primary: int) -> list[str]:
    conf = KNOT_CONF.format(port=port, dir=tmp, primary=primary) + "".join(KNOT_ZONE.format(zone=z) for z in ZONES)
    (tmp / "knot.conf").write_text(conf)
    return [require_tool("knotd"), "-c", str(tmp / "knot.conf")]


SECONDARIES: dict[str, Callable[[Path, int, int], list[str]]] = {"nsd": _nsd, "knot": _knot}


def bl_rows(version: int) -> list[list[tuple[str, Value]]]:
    """The bl zone's extra source at `version`: a one-line change per publish."""
    rows = [(f"192.0.2.{100 + version}", Value(parse_code("127.0.0.2"), f"publish {version}"))]
    if version % 2:
        rows.append((f"2001:db8:7::{version}", Value(parse_code("127.0.0.3"), "v6 host")))
    return [rows]


class Setup:
    def __init__(self, tmp: Path, kind: str) -> None:
        self.kind = kind
        self.port = free_port()
        self.zones_dir = tmp / "zones"
        self.dir = tmp / kind
        self.dir.mkdir()
        self.version = 0
        self.publish()
        self.primary: Served = start_server(self.zones_dir, "--ixfr-keep", str(KEEP))
        cmd = SECONDARIES[kind](self.dir, self.port, self.primary.port)
        # Its own process group: NSD forks, and SIGSTOP must reach every process of it.
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def publish(self) -> None:
        secondary = {"address": "127.0.0.1", "port": self.port, "notify": True, "tsig_key": None}
        zones = sample_zones(SERIAL + self.version, extra_bl=bl_rows(self.version))
        publish(self.zones_dir, zones, {z: {"secondaries": [secondary]} for z in ZONES})

    def next(self) -> None:
        """Publish the next version and wait until the primary serves it (and kept its difference)."""
        mark = self.primary.mark()
        self.version += 1
        self.publish()
        self.primary.wait_for(rf"zone {BL} now serial {SERIAL + self.version}", start=mark)

    def pause(self, stop: bool) -> None:
        os.killpg(self.proc.pid, signal.SIGSTOP if stop else signal.SIGCONT)

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        stop_process(self.proc)
        self.primary.stop()


@pytest.fixture(params=sorted(SECONDARIES))
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    require_tool("dig")
    require_tool({"nsd": "nsd", "knot": "knotd"}[request.param])
    s = Setup(tmp_path, request.param)
    try:
        yield s
    finally:
        s.close()


def soa_serial(port: int, zone: str) -> int | None:
    cmd = ["dig", "-p", str(port), "@127.0.0.1", zone, "SOA", "+short", "+norec", "+time=1", "+tries=1"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.split()
    return int(out[2]) if len(out) == 7 and out[2].isdigit() else None


def wait_serial(s: Setup, serial: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    for zone in ZONES:
        while soa_serial(s.port, zone) != serial:
            late = time.monotonic() > deadline
            assert not late, f"{s.kind} did not load {zone} serial {serial}:\n" + s.primary.log_text()
            time.sleep(0.2)  # polling the secondary's observable state, bounded by the deadline


def axfr_dump(port: int, zone: str) -> set[tuple[str, ...]]:
    cmd = ["dig", "-p", str(port), "@127.0.0.1", zone, "AXFR", "+noall", "+answer", "+time=5", "+tries=1"]
    text = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
    out = {tuple(line.split(None, 4)) for line in text.splitlines() if line and not line.startswith(";")}
    assert any(r[3] == "SOA" for r in out), text
    return out


def same_zones(s: Setup) -> None:
    for zone in ZONES:
        theirs, ours = axfr_dump(s.port, zone), axfr_dump(s.primary.port, zone)
        assert theirs == ours, (zone, sorted(theirs ^ ours))


def test_secondary_follows_by_ixfr_and_catches_up(setup: Setup) -> None:
    s = setup
    wait_serial(s, SERIAL)
    same_zones(s)
    s.primary.wait_for(rf"(AXFR of|IXFR of \S+ to 127\.0\.0\.1: AXFR fallback .*) bl\.example\.test|AXFR of {BL}")

    # One publish: NOTIFY, then the change alone.
    mark = s.primary.mark()
    s.next()
    wait_serial(s, SERIAL + 1, timeout=30)  # refresh timers are an hour: only our NOTIFY is this fast
    s.primary.wait_for(rf"IXFR of {BL} serial {SERIAL} -> {SERIAL + 1} to 127\.0\.0\.1: 1 difference,", start=mark)
    same_zones(s)

    # Unreachable for two publishes, within --ixfr-keep: the chain brings it up to date.
    mark = s.primary.mark()
    s.pause(True)
    s.next()
    s.next()
    s.pause(False)
    s.next()
    wait_serial(s, SERIAL + 4)
    s.primary.wait_for(rf"IXFR of {BL} serial {SERIAL + 1} -> \d+ to 127\.0\.0\.1: [2-9] differences", start=mark)
    same_zones(s)

    # Unreachable for more publishes than are kept: the AXFR fallback.
    mark = s.primary.mark()
    s.pause(True)
    for _ in range(KEEP + 1):
        s.next()
    s.pause(False)
    s.next()
    wait_serial(s, SERIAL + s.version)
    got = s.primary.wait_for(rf"IXFR of {BL} to 127\.0\.0\.1: AXFR fallback \((.*)\)", start=mark)
    assert f"serial {SERIAL + 4} is not one the differences start from" in got.group(1)
    same_zones(s)
