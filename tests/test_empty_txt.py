"""Listings without text (issue 10, item 3): the A answers, the TXT query gets no TXT.

A bulk line without `:code:text` under a `txt: "{reason}"` template, or any entry of a
zone whose template is `txt: ""`, has no text. rbldnsd answers its TXT query NOERROR
with no TXT record (NODATA, the SOA in authority), and so must every path of ours: the
fast path over UDP and TCP, the slow path (a query in an odd layout, re-encoded), ANY,
AXFR, the BIND file and the rbldnsd file (test_server_rbldnsd.py serves these zones from
a real rbldnsd and compares). The zones are built from real list files by the real loader
and compiler; the server runs in process on an ephemeral loopback port.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from conftest import require_tool
from publisher.addresses import TEST_LISTED_V4, parse_v4, parse_v6, v4_name, v6_name
from publisher.compile import render
from publisher.compile.lookup import Query
from publisher.compile.zone import CompiledZone
from publisher.server import Server, ZoneSet
from test_interop import _check_bind
from test_server import dig

AS_OF = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
NOTXT, BLANK, NOTXT_DOM = "notxt.example.test", "blank.example.test", "notxtd.example.test"

ZONES_YAML = f"""\
defaults:
  ttl: 600
  soa: {{mname: ns1.example.test, rname: hostmaster.example.test, minimum: 300}}
  ns: [{{name: ns1.example.test}}]
zones:
  - name: {NOTXT}
    kind: ip
    role: block
    sources: [notxt/*.txt]
    code: 127.0.0.2
    txt: "{{reason}}"
  - name: {BLANK}
    kind: ip
    role: block
    sources: [blank/*.txt]
    code: 127.0.0.2
    txt: ""
  - name: {NOTXT_DOM}
    kind: domain
    role: block
    sources: [notxtd/*.txt]
    code: 127.0.1.2
    txt: "{{reason}}"
"""
#: rbldnsd bulk files: most lines without text, a few with.
FILES = {
    "zones.yaml": ZONES_YAML,
    "notxt/feed.txt": (
        "192.0.2.10\n"  # no value at all: the zone's code, no text
        "198.51.100.0/24 :3:\n"  # a code, an empty text (a wildcard in the BIND file)
        "2001:db8:5::/48\n"
        "203.0.113.5 :4:has text for $\n"
    ),
    "notxt/other.txt": "203.0.113.5 :2:\n",  # a second code for the same address, without text
    "blank/feed.txt": "192.0.2.20 :2:spam source\n198.51.100.0/24 :3:snowshoe\n",
    "notxtd/feed.txt": "spam.example\n*.bad.example :3:\ntext.example :2:listed $\n",
}


def textless_zones(tmp: Path) -> dict[str, CompiledZone]:
    """The three zones above, loaded and compiled from files written under `tmp`."""
    from publisher.lists.tree import DirTree
    from publisher.publish.build import compile_tree

    for rel, text in FILES.items():
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return dict(compile_tree(DirTree(tmp), as_of=AS_OF).zones)


def textless_cases(tmp: Path) -> list[tuple[CompiledZone, list[Query]]]:
    """The zones with the queries test_server_rbldnsd asks of both servers."""
    from test_interop import _addr_queries

    zones = textless_zones(tmp)
    dom = zones[NOTXT_DOM]
    names = [*dom.dom_exact, *(f"a.{w}" for w in dom.dom_wild), "not-listed.example"]
    return [
        (zones[NOTXT], _addr_queries(zones[NOTXT])),
        (zones[BLANK], _addr_queries(zones[BLANK])),
        (dom, [Query(0, domain=n) for n in names]),
    ]


@pytest.fixture(scope="module")
def zones(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CompiledZone]:
    return textless_zones(tmp_path_factory.mktemp("textless"))


@pytest.fixture(scope="module")
def port(zones: dict[str, CompiledZone]) -> Iterator[int]:
    require_tool("dig")
    server = Server(None, ["127.0.0.1:0"], zoneset=ZoneSet.build(zones.values()), send_notify=False)
    (bound,) = server.start()
    try:
        yield bound.port
    finally:
        server.stop()


def v4(addr: str, zone: str = NOTXT) -> str:
    return f"{v4_name(parse_v4(addr))}.{zone}"


#: (name, codes it answers, TXT texts it answers) for listings with and without text.
LISTINGS = [
    (v4("192.0.2.10"), ["127.0.0.2"], []),
    (v4("198.51.100.77"), ["127.0.0.3"], []),
    (f"{v6_name(parse_v6('2001:db8:5::1'))}.{NOTXT}", ["127.0.0.2"], []),
    (v4("203.0.113.5"), ["127.0.0.2", "127.0.0.4"], ['"has text for 203.0.113.5"']),
    (v4("127.0.0.2"), ["127.0.0.2"], ['"RFC 5782 test point"']),  # the template is {reason}
    (v4("192.0.2.20", BLANK), ["127.0.0.2"], []),
    (v4("198.51.100.1", BLANK), ["127.0.0.3"], []),
    (v4("127.0.0.2", BLANK), ["127.0.0.2"], []),  # txt: "": the test point has no text either
    (f"spam.example.{NOTXT_DOM}", ["127.0.1.2"], []),
    (f"a.bad.example.{NOTXT_DOM}", ["127.0.0.3"], []),
    (f"text.example.{NOTXT_DOM}", ["127.0.0.2"], ['"listed text.example"']),
    (f"test.{NOTXT_DOM}", ["127.0.0.2"], ['"RFC 5782 test point"']),
]
TRANSPORTS = [pytest.param((), id="udp"), pytest.param(("+tcp",), id="tcp")]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(("name", "codes", "txts"), LISTINGS)
def test_a_answers_and_txt_is_nodata_without_text(
    port: int, transport: tuple[str, ...], name: str, codes: list[str], txts: list[str]
) -> None:
    a = dig(port, name, "A", *transport)
    assert a.status == "NOERROR" and sorted(r[3] for r in a.answer) == codes
    txt = dig(port, name, "TXT", *transport)
    assert txt.status == "NOERROR" and "aa" in txt.flags
    assert sorted(r[3] for r in txt.answer) == txts  # never '""'
    if not txts:  # NODATA: the zone's SOA in authority (RFC 2308)
        assert [r[2] for r in txt.authority] == ["SOA"]
    anyq = dig(port, name, "ANY", *transport)
    assert sorted((r[2], r[3]) for r in anyq.answer) == [("A", c) for c in codes] + [("TXT", t) for t in txts]


@pytest.mark.parametrize(("name", "codes", "txts"), LISTINGS)
def test_the_slow_path_answers_the_same(port: int, name: str, codes: list[str], txts: list[str]) -> None:
    """A query with a byte after its question is re-encoded by the slow path, then answered."""
    import socket

    q = DNSRecord.question(name, "TXT")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(bytes(q.pack()) + b"\x00", ("127.0.0.1", port))
        reply = DNSRecord.parse(sock.recv(4096))
    assert reply.header.rcode == RCODE.NOERROR
    assert sorted(f'"{b"".join(r.rdata.data).decode()}"' for r in reply.rr if r.rtype == QTYPE.TXT) == txts
    assert [QTYPE[r.rtype] for r in reply.auth] == ([] if txts else ["SOA"])


@pytest.mark.parametrize("zone", [NOTXT, BLANK, NOTXT_DOM])
def test_axfr_transfers_no_empty_txt(port: int, zones: dict[str, CompiledZone], zone: str) -> None:
    cmd = [require_tool("dig"), "-p", str(port), "@127.0.0.1", zone, "AXFR", "+time=5", "+tries=1"]
    text = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
    records = [line.split(None, 4) for line in text.splitlines() if line and not line.startswith(";")]
    assert [r[3] for r in records].count("SOA") == 2, text  # a complete transfer
    txts = [r[4] for r in records if r[3] == "TXT"]
    assert '""' not in txts, text
    # Every listing's A is there; TXT only where the zone has text.
    assert sum(1 for r in records if r[3] == "A") >= 3
    assert len(txts) == sum(1 for r in render.iter_records(zones[zone]) if r.rtype == "TXT")
    # The test points' (127.0.0.2 and ::ffff:127.0.0.2, or `test`) and the one listing with text.
    assert len(txts) == {NOTXT: 3, BLANK: 0, NOTXT_DOM: 2}[zone]


def test_zone_files_hold_no_empty_txt(zones: dict[str, CompiledZone], tmp_path: Path) -> None:
    """named-checkzone accepts them, named-compilezone reads back iter_records, and none has `TXT ""`."""
    for zone in zones.values():
        records = list(render.iter_records(zone))
        assert not [r for r in records if r.rtype == "TXT" and not r.rdata], zone.name
        assert any(r.rtype == "A" for r in records)
        bind = tmp_path / f"{zone.name}.zone"
        with bind.open("w", encoding="utf-8") as fh:
            render.render_bind(zone, fh)
        assert not re.search(r'\tTXT\t""\n', bind.read_text(encoding="utf-8")), zone.name
    _check_bind([(z, []) for z in zones.values()], tmp_path)
    # The test point keeps its text where the template gives one.
    notxt = zones[NOTXT]
    point = notxt.answers[notxt.lookup_v4(TEST_LISTED_V4)]
    assert point.distinct_txts == ("RFC 5782 test point",)
    assert zones[BLANK].answers[zones[BLANK].lookup_v4(TEST_LISTED_V4)].distinct_txts == ()


def test_lookup_and_explain_say_no_txt(tmp_path: Path) -> None:
    """`publisher lookup` and `explain` show what a resolver gets: no TXT, not `TXT ""`."""
    from tests.test_publish import run_cli as run

    lists, zones_dir = tmp_path / "lists", tmp_path / "zones"
    textless_zones(lists)
    code, out, err = run("--lists", str(lists), "lookup", "203.0.113.5")
    assert code == 0, err
    assert '  A 127.0.0.2  no TXT\n  A 127.0.0.4  TXT "has text for 203.0.113.5"\n' in out
    assert run("--lists", str(lists), "--zones", str(zones_dir), "compile")[0] == 0
    code, out, err = run("--lists", str(lists), "--zones", str(zones_dir), "explain", "192.0.2.20")
    assert code == 0, err
    assert f"{BLANK} (serial " in out and "  A 127.0.0.2  no TXT\n" in out and "TXT ''" not in out
