"""Keyed zones (`keys: required`): d.c.b.a.KEY.ZONE answered as d.c.b.a.ZONE would be, and
error answers for a missing, unknown, refused or over-quota key; the apex without a key.

The key file is the keys engineer's (publisher/server/keys.py); `FakeKeys` below is a test
double with the same `check()` interface (docs/design.md "Who may query", issue 12).
"""

from __future__ import annotations

import logging
import random
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from dnslib import EDNS0, QTYPE, RCODE, DNSRecord

from publisher import errorcodes
from publisher.errorcodes import ErrorCode
from publisher.server import Server, ZoneSet, ZoneSettings, gate, keys
from publisher.server.stats import DENIED, LISTED, new_counters
from server_fixtures import read_tcp_message, sample_zones

BL, WL, DBL = "bl.example.test", "wl.example.test", "dbl.example.test"
GOOD = "7fq2m4k9x3hbw8c5n6tzr1yv0p"
EXPIRED = "expiredkey0000000000"
GREEDY = "overquotakey00000000"
WAIT = 1.0


class FakeKeys:
    """Test double of keys.AccessKeys: GOOD passes, EXPIRED is refused, GREEDY is over quota.

    Records every call, so a test sees what the gate passed (lower-cased label, zone, client).
    """

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, str, int, int]] = []
        self.table: dict[bytes, ErrorCode | None] = {
            GOOD.encode(): None,
            EXPIRED.encode(): errorcodes.KEY_REFUSED,
            GREEDY.encode(): errorcodes.OVER_QUOTA,
        }

    def quick(self, label: bytes) -> keys.NeedsCheck:
        """Every key here has limits, as far as the gate knows: it always asks `check`, with the client."""
        return keys.NEEDS_CHECK

    def check(self, label: bytes, zone: str, family: int, addr: int) -> ErrorCode | None:
        self.calls.append((label, zone, family, addr))
        return self.table.get(label, errorcodes.KEY_UNKNOWN)


def keyed_zoneset(keys: object | None) -> ZoneSet:
    settings = {BL: ZoneSettings(keyed=True), DBL: ZoneSettings(keyed=True)}
    return replace(ZoneSet.build(sample_zones().values(), settings), access_keys=keys)


@pytest.fixture(scope="module", params=[True, False], ids=["batched", "plain-loop"])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[Server, FakeKeys]]:
    keys = FakeKeys()
    srv = Server(None, ["127.0.0.1:0"], zoneset=keyed_zoneset(keys), send_notify=False, batch=request.param)
    srv.start()
    try:
        yield srv, keys
    finally:
        srv.stop()


def ask(srv: Server, name: str, qtype: str = "A", *, edns: bool = False, tcp: bool = False) -> DNSRecord:
    q = DNSRecord.question(name, qtype)
    if edns:
        q.add_ar(EDNS0(udp_len=1232))
    wire = bytes(q.pack())
    port = srv.bound[0].port
    if tcp:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(struct.pack(">H", len(wire)) + wire)
            return DNSRecord.parse(read_tcp_message(s))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(wire, ("127.0.0.1", port))
        return DNSRecord.parse(s.recv(4096))


def codes(reply: DNSRecord) -> list[str]:
    return sorted(str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A)


def txts(reply: DNSRecord) -> list[str]:
    return [b"".join(rr.rdata.data).decode() for rr in reply.rr if rr.rtype == QTYPE.TXT]


@pytest.mark.parametrize("edns", [False, True])
@pytest.mark.parametrize("tcp", [False, True])
def test_good_key_answers_as_the_unkeyed_name(served: tuple[Server, FakeKeys], edns: bool, tcp: bool) -> None:
    srv, keys = served
    reply = ask(srv, f"7.2.0.192.{GOOD}.{BL}", "ANY", edns=edns, tcp=tcp)
    assert reply.header.rcode == RCODE.NOERROR and reply.header.aa
    assert str(reply.q.qname) == f"7.2.0.192.{GOOD}.{BL}." and {str(rr.rname) for rr in reply.rr} == {
        f"7.2.0.192.{GOOD}.{BL}."
    }
    assert codes(reply) == ["127.0.0.2", "127.0.0.3"]
    assert "spam source - see https://bl.example.test/lookup?ip=192.0.2.7" in txts(reply)
    assert keys.calls[-1] == (GOOD.encode(), BL, 4, 0x7F000001)


def test_good_key_unlisted_names_the_real_apex_in_the_soa(served: tuple[Server, FakeKeys]) -> None:
    srv, _ = served
    for name in (f"8.2.0.192.{GOOD}.{BL}", f"8.2.0.1.{GOOD}.{BL}", f"clean.example.{GOOD}.{DBL}"):
        reply = ask(srv, name)
        assert reply.header.rcode == RCODE.NXDOMAIN, name
        zone = DBL if name.endswith(DBL) else BL
        assert [str(rr.rname) for rr in reply.auth] == [f"{zone}."] and reply.auth[0].rtype == QTYPE.SOA


def test_good_key_in_other_layouts(served: tuple[Server, FakeKeys]) -> None:
    """Upper-case keys (0x20), IPv6 names and domain zones go the walked way; same answers."""
    srv, keys = served
    upper = ask(srv, f"7.2.0.192.{GOOD.upper()}.{BL}")
    assert codes(upper) == ["127.0.0.2", "127.0.0.3"] and keys.calls[-1][0] == GOOD.encode()
    v6 = "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.8.b.d.0.1.0.0.2"
    assert codes(ask(srv, f"{v6}.{GOOD}.{BL}")) == ["127.0.0.5"]
    dom = ask(srv, f"spam.example.{GOOD}.{DBL}", "TXT")
    assert txts(dom) == ["spam.example is listed: spam domain"]


@pytest.mark.parametrize(
    ("key", "error"),
    [
        ("unknownkey0000000000", errorcodes.KEY_UNKNOWN),
        (EXPIRED, errorcodes.KEY_REFUSED),
        (GREEDY, errorcodes.OVER_QUOTA),
        ("short", errorcodes.KEY_UNKNOWN),
    ],
)
def test_bad_key_gets_its_error_answer(served: tuple[Server, FakeKeys], key: str, error: ErrorCode) -> None:
    srv, _ = served
    for name in (f"7.2.0.192.{key}.{BL}", f"8.2.0.192.{key}.{BL}", f"spam.example.{key}.{DBL}"):
        reply = ask(srv, name, "ANY")
        assert reply.header.rcode == RCODE.NOERROR and reply.header.aa, name
        assert codes(reply) == [socket.inet_ntoa(error.code.to_bytes(4, "big"))]
        assert txts(reply) == [error.txt] and {rr.ttl for rr in reply.rr} == {60}
        nodata = ask(srv, name, "MX")
        assert nodata.header.rcode == RCODE.NOERROR and not nodata.rr and nodata.auth


def test_missing_key_is_never_answered_from_the_data(served: tuple[Server, FakeKeys]) -> None:
    """d.c.b.a.ZONE without a key in a keyed zone: the key-unknown answer, not the listing."""
    srv, _ = served
    for name in (f"2.0.0.127.{BL}", f"7.2.0.192.{BL}", f"spam.example.{DBL}"):
        reply = ask(srv, name)
        assert codes(reply) == ["127.255.255.252"], name


def test_apex_and_name_servers_answer_without_a_key(served: tuple[Server, FakeKeys]) -> None:
    srv, _ = served
    soa = ask(srv, BL, "SOA")
    assert soa.header.rcode == RCODE.NOERROR and soa.rr[0].rtype == QTYPE.SOA
    ns = ask(srv, BL, "NS")
    assert {str(rr.rdata) for rr in ns.rr} == {"ns1.bl.example.test.", "ns.other.example."}
    assert codes(ask(srv, f"ns1.{BL}")) == ["192.0.2.53"]
    unkeyed = ask(srv, f"25.2.0.192.{WL}")  # an unkeyed zone beside keyed ones answers as ever
    assert codes(unkeyed) == ["127.0.10.1"]


def test_no_key_file_means_every_keyed_query_is_key_unknown() -> None:
    zs = keyed_zoneset(None)
    reply = gate.answer(
        zs, bytes(DNSRecord.question(f"7.2.0.192.{GOOD}.{BL}").pack()), False, new_counters(), "1.2.3.4"
    )
    assert isinstance(reply, bytes) and codes(DNSRecord.parse(reply)) == ["127.255.255.252"]


def test_random_key_flood_costs_counters_not_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    """An attacker guessing keys: each guess is one failed look-up and a counter, no log line."""
    keys = FakeKeys()
    zs = keyed_zoneset(keys)
    rng = random.Random(12)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    queries = [
        bytes(DNSRecord.question(f"{rng.randrange(256)}.2.0.192.{''.join(rng.choices(alphabet, k=24))}.{BL}").pack())
        for _ in range(20_000)
    ]
    counts = new_counters()
    caplog.set_level(logging.DEBUG)
    t0 = time.perf_counter()
    for i, q in enumerate(queries):
        gate.answer(zs, q, False, counts, struct.pack(">I", 0x0A000000 + i))
    per_query = (time.perf_counter() - t0) / len(queries)
    assert counts[BL][DENIED] == len(queries) and counts[BL][LISTED] == 0
    assert not caplog.records
    assert per_query < 200e-6  # generous: about 5 us here


@pytest.mark.parametrize("qtype", ["SOA", "NS", "A"])
def test_the_key_label_alone_is_an_empty_non_terminal(served: tuple[Server, FakeKeys], qtype: str) -> None:
    """KEY.ZONE is no second apex: a QNAME-minimising resolver asking it sees NODATA, the real SOA."""
    srv, _ = served
    reply = ask(srv, f"{GOOD}.{BL}", qtype)
    assert reply.header.rcode == RCODE.NOERROR and not reply.rr
    assert [(str(rr.rname), rr.rtype) for rr in reply.auth] == [(f"{BL}.", QTYPE.SOA)]
    wrong = ask(srv, f"{'x' * 20}.{BL}", qtype)
    assert codes(wrong) == (["127.255.255.252"] if qtype == "A" else [])


def test_a_keyed_zone_served_without_a_key_file_says_so(caplog: pytest.LogCaptureFixture) -> None:
    """Every query would answer key-unknown: the operator hears it at start, not from subscribers."""
    caplog.set_level(logging.WARNING, "publisher.server")
    Server(None, ["127.0.0.1:0"], zoneset=keyed_zoneset(None), send_notify=False)
    assert (
        f"zone {BL} requires keys (keys: required) but the server has no --access-keys file: every query "
        "below its apex answers 127.255.255.252 (key unknown) until one is given"
    ) in caplog.text
    assert f"zone {WL} requires keys" not in caplog.text
