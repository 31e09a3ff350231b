"""Email zones served: `<hash>[.<suffix>].ZONE` over UDP and TCP, on loopback, as clients ask.

The answer contract (docs/design.md, "Answer semantics", email zones): a listed hash name
answers A and TXT (ANY both, other types NODATA); `test[.<suffix>]` is listed, `invalid`
and anything that is not a label of the zone's algorithm is NXDOMAIN; the suffix itself is
an empty non-terminal. The fast path (ZoneSet.hot_email) and the general walk must give the
same bytes; ACLs and keyed zones apply as to domain zones; a real rbldnsd fed our
`.rbldnsd` export answers the same; `publisher.server` serves a published email zone to dig.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from conftest import require_tool
from email_fixtures import EBL_SETTINGS, HBL_SETTINGS, LISTED, OTHER, UNLISTED, ebl_zone, hbl_zone, name
from publisher.addresses import parse_v4
from publisher.compile.hashes import HashTable
from publisher.compile.zone import CompiledZone
from publisher.model import AclRule
from publisher.server import Server, ZoneSet, wire
from publisher.server.stats import new_counters
from publisher.server.wire import fast
from publisher.server.zoneset import ZoneSettings
from server_fixtures import publish, read_tcp_message, sample_zones

HBL, EBL = "hbl.example.test", "ebl.example.test"
KEY = "7fq2m4k9x3hbw8c5n6tzr1yv0p"


def zones() -> list[CompiledZone]:
    return [hbl_zone(), ebl_zone(), sample_zones()["bl.example.test"]]


@pytest.fixture(scope="module")
def ours() -> Iterator[tuple[str, int]]:
    server = Server(None, ["127.0.0.1:0"], zoneset=ZoneSet.build(zones()), send_notify=False)
    (endpoint,) = server.start()
    try:
        yield endpoint.host, endpoint.port
    finally:
        server.stop()


def query(server: tuple[str, int], qname: str, qtype: str = "A", *, tcp: bool = False, edns: bool = False) -> DNSRecord:
    q = DNSRecord.question(qname, qtype)
    if edns:
        q.add_ar(_opt())
    data = q.pack()
    if tcp:
        with socket.create_connection(server, timeout=5) as sock:
            sock.sendall(len(data).to_bytes(2, "big") + data)
            return DNSRecord.parse(read_tcp_message(sock))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(data, server)
        return DNSRecord.parse(sock.recvfrom(4096)[0])


def _opt() -> Any:
    from dnslib import EDNS0

    return EDNS0(udp_len=1232)


def shown(reply: DNSRecord) -> tuple[str, list[tuple[str, str]], list[str]]:
    """(rcode, [(type, rdata)] of the answer, [types] of the authority section)."""
    answer = [(QTYPE[rr.rtype], str(rr.rdata)) for rr in reply.rr]
    return RCODE[reply.header.rcode], sorted(answer), [QTYPE[rr.rtype] for rr in reply.auth]


LISTED_HBL = f"{name(LISTED)}.{HBL}"
Shown = tuple[str, list[tuple[str, str]], list[str]]
NX: Shown = ("NXDOMAIN", [], ["SOA"])
NODATA: Shown = ("NOERROR", [], ["SOA"])


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_a_listed_hash_answers_a_txt_any_and_nodata(ours: tuple[str, int], tcp: bool) -> None:
    assert shown(query(ours, LISTED_HBL, "A", tcp=tcp)) == ("NOERROR", [("A", "127.0.2.2")], [])
    assert shown(query(ours, LISTED_HBL, "TXT", tcp=tcp)) == ("NOERROR", [("TXT", '"listed: drop box"')], [])
    assert shown(query(ours, LISTED_HBL, "ANY", tcp=tcp)) == (
        "NOERROR",
        [("A", "127.0.2.2"), ("TXT", '"listed: drop box"')],
        [],
    )
    assert shown(query(ours, LISTED_HBL, "MX", tcp=tcp)) == NODATA
    assert shown(query(ours, LISTED_HBL, "AAAA", tcp=tcp)) == NODATA
    assert shown(query(ours, f"{name(OTHER)}.{HBL}", "A", tcp=tcp, edns=True))[1] == [("A", "127.0.2.3")]
    assert shown(query(ours, f"{name(UNLISTED)}.{HBL}", "A", tcp=tcp)) == NX


def test_test_point_suffix_and_names_that_are_no_hash(ours: tuple[str, int]) -> None:
    assert shown(query(ours, f"test._email.{HBL}", "A"))[:2] == ("NOERROR", [("A", "127.0.0.2")])
    assert shown(query(ours, f"test._email.{HBL}", "TXT"))[1] == [("TXT", '"listed: RFC 5782 test point"')]
    assert shown(query(ours, f"test.{HBL}")) == NX  # the test point sits where a hash sits
    assert shown(query(ours, f"invalid._email.{HBL}")) == NX
    assert shown(query(ours, f"_email.{HBL}", "A")) == NODATA  # an empty non-terminal
    assert shown(query(ours, f"_EMAIL.{HBL}", "TXT")) == NODATA
    label = name(LISTED).split(".")[0]
    attacks = [
        f"{label}.{HBL}",  # the hash without its suffix
        f"{'g' * 40}._email.{HBL}",  # the length of a sha1, not hex
        f"{label[:32]}._email.{HBL}",  # an md5's length in a sha1 zone
        f"{'a' * 63}._email.{HBL}",  # the longest label
        f"x.{label}._email.{HBL}",  # a label more
        ".".join(["ab"] * 40) + f"._email.{HBL}",  # many labels
        f"{label}.{label}._email.{HBL}",
        f"{label}._email._email.{HBL}",
    ]
    for qname in attacks:
        assert shown(query(ours, qname)) == NX, qname


def test_the_case_of_a_query_is_echoed_and_ignored(ours: tuple[str, int]) -> None:
    mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(name(LISTED))) + ".HbL.example.TEST"
    reply = query(ours, mixed)
    assert shown(reply)[1] == [("A", "127.0.2.2")]
    assert str(reply.q.qname) == mixed + "."


def test_a_sha256_zone_answers_its_base32_labels(ours: tuple[str, int]) -> None:
    label = name(LISTED, EBL_SETTINGS)
    assert shown(query(ours, f"{label}.{EBL}", "TXT")) == ("NOERROR", [("TXT", '"fraud"')], [])
    assert shown(query(ours, f"{label.upper()}.{EBL}"))[1] == [("A", "127.0.3.2")]
    assert shown(query(ours, f"test.{EBL}"))[1] == [("A", "127.0.0.2")]
    # the last character carries 4 unused bits: a non-canonical spelling of the digest is no label
    other = label[:-1] + ("b" if label[-1] == "a" else "a")
    assert shown(query(ours, f"{other}.{EBL}")) == NX
    assert shown(query(ours, f"{name(LISTED)}.{EBL}".replace("._email", ""))) == NX  # a sha1 in a sha256 zone


def test_the_fast_path_answers_hash_names_and_agrees_with_the_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    zs = ZoneSet.build(zones())
    assert zs.hot_email is not None
    walk = replace(zs, hot_email=None)
    packet = bytes(DNSRecord.question(LISTED_HBL, "A").pack())
    walked = fast(walk, packet, False, new_counters())
    general = wire._general

    def no_walk(*args: object) -> bytes | None:
        raise AssertionError("a hashed name of the right form went the general walk")

    monkeypatch.setattr(wire, "_general", no_walk)
    assert fast(zs, packet, False, new_counters()) == walked
    monkeypatch.setattr(wire, "_general", general)
    names = [
        LISTED_HBL,
        f"{name(OTHER)}.{HBL}",
        f"{name(UNLISTED)}.{HBL}",
        f"{name(LISTED, EBL_SETTINGS)}.{EBL}",
        f"{name(UNLISTED, EBL_SETTINGS)}.{EBL}",
        f"{'z' * 40}._email.{HBL}",
        f"{name(LISTED).upper()}.{HBL}",
    ]
    for qname in names:
        for qtype in ("A", "TXT", "ANY", "MX"):
            for edns in (False, True):
                q = DNSRecord.question(qname, qtype)
                if edns:
                    q.add_ar(_opt())
                data = bytes(q.pack())
                hot = fast(zs, data, False, new_counters())
                assert hot is not None
                assert hot == fast(walk, data, False, new_counters()), (qname, qtype, edns)


def test_acls_apply_to_email_zones() -> None:
    acl = (
        AclRule("127.0.0.0/8", "pass"),
        AclRule("127.0.0.2/32", "refuse"),
        AclRule("127.0.0.3/32", "answer", parse_v4("127.255.255.254"), "ask {client} elsewhere"),
    )
    zs = ZoneSet.build(zones(), {HBL: ZoneSettings(acl=acl)})
    server = Server(None, ["127.0.0.1:0"], zoneset=zs, send_notify=False)
    (endpoint,) = server.start()
    try:
        got = {}
        for client in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind((client, 0))
                sock.settimeout(5)
                sock.sendto(bytes(DNSRecord.question(LISTED_HBL, "A").pack()), (endpoint.host, endpoint.port))
                got[client] = shown(DNSRecord.parse(sock.recvfrom(4096)[0]))
    finally:
        server.stop()
    assert got["127.0.0.1"] == ("NOERROR", [("A", "127.0.2.2")], [])
    assert got["127.0.0.2"] == ("REFUSED", [], [])
    assert got["127.0.0.3"] == ("NOERROR", [("A", "127.255.255.254")], [])


def test_a_keyed_email_zone_answers_label_key_zone(tmp_path: Path) -> None:
    from test_access_keys import NOON, Clock

    path = tmp_path / "access-keys.yaml"
    path.write_text(f"keys:\n  - name: acme\n    key: {KEY}\n    zones: [{HBL}]\n")
    path.chmod(0o600)
    zs = ZoneSet.build(zones(), {HBL: ZoneSettings(keyed=True)})
    server = Server(None, ["127.0.0.1:0"], zoneset=zs, access_keys=path, send_notify=False)
    server.key_usage.clock = Clock(NOON)
    (endpoint,) = server.start()
    at = (endpoint.host, endpoint.port)
    try:
        label = name(LISTED)
        assert shown(query(at, f"{label}.{KEY}.{HBL}"))[:2] == ("NOERROR", [("A", "127.0.2.2")])
        assert shown(query(at, f"{name(UNLISTED)}.{KEY}.{HBL}", tcp=True)) == NX
        assert shown(query(at, f"test._email.{KEY}.{HBL}"))[1] == [("A", "127.0.0.2")]
        assert shown(query(at, f"_email.{KEY}.{HBL}")) == NODATA
        unkeyed = shown(query(at, LISTED_HBL))  # `_email` taken for the key: the key-unknown answer
        assert unkeyed[0] == "NOERROR" and unkeyed[1] != [("A", "127.0.2.2")]
    finally:
        server.stop()


def test_rbldnsd_serving_our_export_answers_the_same(ours: tuple[str, int]) -> None:
    from test_interop import ask, rbldnsd

    email_zones = [hbl_zone(), ebl_zone()]
    names = [LISTED_HBL, f"{name(OTHER)}.{HBL}", f"{name(UNLISTED)}.{HBL}", f"test._email.{HBL}"]
    names += [f"invalid._email.{HBL}", f"test.{HBL}", f"{name(LISTED, EBL_SETTINGS)}.{EBL}", f"test.{EBL}"]
    names += [f"{name(f'user{i}@example.com', HBL_SETTINGS)}.{HBL}" for i in range(50)]
    with rbldnsd(email_zones) as theirs:
        for qtype in ("A", "TXT"):
            mine, their = ask(ours, names, qtype), ask(theirs, names, qtype)
            for qname in names:
                assert shown(mine[qname])[:2] == shown(their[qname])[:2], (qname, qtype)


def test_publisher_serves_a_published_email_zone_to_dig(tmp_path: Path) -> None:
    from test_server import start_server

    dig = require_tool("dig")
    zones_dir = tmp_path / "zones"
    publish(zones_dir, {HBL: hbl_zone()})
    exported = (zones_dir / "current").resolve()
    texts = [p.read_text() for p in exported.iterdir() if p.suffix in (".zone", ".rbldnsd")]
    assert texts and all(name(LISTED) in t and "fraud.example" not in t.lower() for t in texts)
    served = start_server(zones_dir)
    try:
        for qtype, want in (("A", "127.0.2.2"), ("TXT", '"listed: drop box"')):
            out = subprocess.run(
                [dig, "+short", "-p", str(served.port), "@127.0.0.1", LISTED_HBL, qtype],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            )
            assert out.stdout.split("\n")[0] == want
        assert "fraud.example" not in served.log_text().lower()
    finally:
        served.stop()


def test_a_label_read_as_a_number_prefix_is_still_no_hash() -> None:
    """The fast path reads a hex label's first 16 digits as one number, and Python's int() also
    takes a `0x` prefix: `0x` + the next 14 digits of a listed hash whose first byte is 0 would
    find its head. Only the whole label, decoded, is a hash: that name is NXDOMAIN."""
    digest = bytes(1) + bytes(range(1, 20))
    table = HashTable.build("sha1", "", [(digest, 0)])
    label = digest.hex().encode()
    assert table.wire_index(label) == 0
    assert table.wire_index(label.upper()) == 0
    assert table.wire_index(b"0x" + label[2:]) == -1
    assert table.wire_index(b"0X" + label[2:]) == -1
    assert table.wire_index(label[:39] + b"g") == -1  # the head found, the tail no hex
    assert table.wire_index(label[:-1] + (b"1" if label[-1:] != b"1" else b"2")) == -1
