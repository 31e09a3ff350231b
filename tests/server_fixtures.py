"""Zones for the server tests, compiled by the real compiler from in-memory sources.

Not a test module of its own: test_wire.py and test_server*.py import from it. Three
zones like the sample configuration: bl (ip, block), wl (ip, allow), dbl (domain).
"""

from __future__ import annotations

import datetime as dt
import socket
import struct
from pathlib import Path

from builders import source
from publisher.addresses import parse_code
from publisher.compile.compiler import compile_zone
from publisher.compile.zone import CompiledZone
from publisher.model import NameServer, Secondary, Soa, Value, ZoneConfig

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
SOA = Soa("ns1.bl.example.test", "hostmaster.example.test", refresh=3600, retry=600, expire=604800, minimum=300)

BL = ZoneConfig(
    name="bl.example.test",
    kind="ip",
    role="block",
    sources=("bl/*.txt",),
    code=parse_code("127.0.0.2"),
    txt="{reason} - see https://bl.example.test/lookup?ip={ip}",
    ttl=2100,
    soa=SOA,
    ns=(NameServer("ns1.bl.example.test", ("192.0.2.53", "2001:db8::53")), NameServer("ns.other.example")),
)
WL = ZoneConfig(
    name="wl.example.test",
    kind="ip",
    role="allow",
    sources=("wl/*.txt",),
    code=parse_code("127.0.10.1"),
    txt="{reason}",
    ttl=600,
    soa=Soa("ns.example.test", "hostmaster.example.test", minimum=120),
    ns=(NameServer("ns.example.test"),),
)
DBL = ZoneConfig(
    name="dbl.example.test",
    kind="domain",
    role="block",
    sources=("dbl/*.txt",),
    code=parse_code("127.0.1.2"),
    txt="{domain} is listed: {reason}",
    ttl=1800,
    soa=Soa("ns.example.test", "hostmaster.example.test", minimum=3600),
    ns=(NameServer("ns.example.test"),),
)

BL_ROWS: list[tuple[str, Value]] = [
    ("192.0.2.7", Value(parse_code("127.0.0.2"), "spam source")),
    ("198.51.100.0/24", Value(parse_code("127.0.0.3"), "snowshoe range")),
    ("198.51.100.128/25", Value(parse_code("127.0.0.4"), "botnet")),
    ("203.0.113.9", Value(parse_code("127.0.0.2"), "x" * 300)),  # a TXT longer than 255 bytes
    ("2001:db8:1::/48", Value(parse_code("127.0.0.2"), "v6 spam")),
    ("2001:db8:2::5", Value(parse_code("127.0.0.5"), "v6 host")),
    ("100.64.0.0/15", Value(parse_code("127.0.0.6"), "crosses a /16 boundary")),
]
BL_ROWS_2: list[tuple[str, Value]] = [("192.0.2.7", Value(parse_code("127.0.0.3"), "other feed"))]
WL_ROWS: list[tuple[str, Value]] = [("192.0.2.25", Value(parse_code("127.0.10.1"), "partner gateway"))]
DBL_ROWS: list[tuple[str, Value]] = [
    ("spam.example", Value(parse_code("127.0.1.2"), "spam domain")),
    ("*.bad.example", Value(parse_code("127.0.1.3"), "every subdomain")),
    ("deep.sub.evil.example", Value(parse_code("127.0.1.2"), "deep")),
]


def with_serial(zone: CompiledZone, serial: int) -> CompiledZone:
    from dataclasses import replace

    return replace(zone, info=replace(zone.info, serial=serial))


#: Eight sources listing 203.0.113.200 with eight codes and long reasons (TXT ~1600 bytes:
#: too big even for our 1232-byte EDNS size) and, in four of them, 203.0.113.201 (TXT ~800
#: bytes: too big for 512, fits 1232). For the truncation tests.
BIG_ADDRESS = "203.0.113.200"
MEDIUM_ADDRESS = "203.0.113.201"
BIG_SOURCES = [
    [(BIG_ADDRESS, Value(parse_code(f"127.0.0.{10 + i}"), f"feed {i} " + "r" * 120))]
    + ([(MEDIUM_ADDRESS, Value(parse_code(f"127.0.0.{10 + i}"), f"feed {i} " + "m" * 120))] if i < 4 else [])
    for i in range(8)
]


def sample_zones(
    serial: int = 2026112700, extra_bl: list[list[tuple[str, Value]]] | None = None
) -> dict[str, CompiledZone]:
    """The three sample zones; `extra_bl` adds one bl source per list of rows."""
    bl_sources = [source("bl/a.txt", BL_ROWS), source("bl/b.txt", BL_ROWS_2)]
    for i, rows in enumerate(extra_bl if extra_bl is not None else BIG_SOURCES):
        bl_sources.append(source(f"bl/extra{i}.txt", rows))
    zones = {
        "bl.example.test": compile_zone(BL, bl_sources, as_of=NOW),
        "wl.example.test": compile_zone(WL, [source("wl/a.txt", WL_ROWS)], as_of=NOW),
        "dbl.example.test": compile_zone(DBL, [source("dbl/a.txt", DBL_ROWS)], as_of=NOW),
    }
    return {name: with_serial(z, serial) for name, z in zones.items()}


def publish(zones_dir: Path, zones: dict[str, CompiledZone], zone_meta: dict[str, dict] | None = None) -> Path:
    """Write a generation the way `publisher compile` does. `zone_meta`: per zone, the
    serving settings as the manifest writes them ({"allow_transfer": [...], "secondaries": [{...}]})."""
    from publisher.publish import artifacts
    from publisher.publish.manifest import ZoneMeta

    assert all(set(fields) <= {"secondaries", "allow_transfer"} for fields in (zone_meta or {}).values())
    meta = {
        name: ZoneMeta(
            secondaries=tuple(Secondary(**s) for s in fields["secondaries"]) if "secondaries" in fields else None,
            allow_transfer=tuple(fields["allow_transfer"]) if "allow_transfer" in fields else None,
        )
        for name, fields in (zone_meta or {}).items()
    }
    return artifacts.write_generation(zones_dir, zones, meta, listen=())


def read_tcp_message(sock: socket.socket) -> bytes:
    """One length-prefixed DNS message from a TCP socket; ConnectionError if the server closes first."""
    buf = b""
    while len(buf) < 2 or len(buf) < 2 + struct.unpack(">H", buf[:2])[0]:
        chunk = sock.recv(65535)
        if not chunk:
            raise ConnectionError("closed before the answer")
        buf += chunk
    return buf[2 : 2 + struct.unpack(">H", buf[:2])[0]]
