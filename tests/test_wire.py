"""The DNS answer contract (docs/design.md, "Answer semantics") on the wire, in process.

Queries are built with dnslib, fed to the responder exactly as the UDP/TCP loops do, and
the replies are checked byte-level where it matters (0x20 echo, OPT) and through dnslib's
parser for sections, flags and rcodes.
"""

from __future__ import annotations

import logging
import struct

import pytest
from dnslib import CLASS, EDNS0, OPCODE, QTYPE, RCODE, DNSHeader, DNSQuestion, DNSRecord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.addresses import V4_MAPPED_START, parse_network, parse_v4, parse_v6, v4_name, v6_name
from publisher.compile.render import iter_records
from publisher.server import slow, xfr
from publisher.server.core import Responder
from publisher.server.stats import Stats
from publisher.server.zoneset import ServedZone, ZoneSet, ZoneSettings
from server_fixtures import BIG_ADDRESS, MEDIUM_ADDRESS, sample_zones

BL, WL, DBL = "bl.example.test", "wl.example.test", "dbl.example.test"
SERIAL = 2026112700
LOOPBACK = ("127.0.0.1", 5300)


class _State:
    def __init__(self, zones: ZoneSet) -> None:
        self.zones = zones


@pytest.fixture(scope="module")
def zones() -> ZoneSet:
    settings = {
        WL: ZoneSettings(allow_transfer=(parse_network("192.0.2.0/24"),)),
    }
    return ZoneSet.build(sample_zones(SERIAL).values(), settings)


@pytest.fixture
def responder(zones: ZoneSet) -> Responder:
    return Responder(_State(zones), Stats().new())


def query(
    name: str,
    qtype: str = "A",
    *,
    edns: int | None = None,
    do: bool = False,
    version: int = 0,
    rd: bool = True,
    cd: bool = False,
    qclass: str = "IN",
    opcode: int = OPCODE.QUERY,
) -> bytes:
    rec = DNSRecord(
        DNSHeader(id=0x1234, rd=int(rd), opcode=opcode),
        q=DNSQuestion(name, getattr(QTYPE, qtype), getattr(CLASS, qclass)),
    )
    if cd:
        rec.header.cd = 1
    if edns is not None:
        rec.add_ar(EDNS0(udp_len=edns, flags="do" if do else "", version=version))
    return bytes(rec.pack())


def ask(responder: Responder, data: bytes, *, tcp: bool = False, client: tuple = LOOPBACK) -> DNSRecord:
    raw = responder.answer(data, client, tcp)
    assert raw is not None
    return DNSRecord.parse(raw)


def rdatas(rrs: list, rtype: str | None = None) -> list[str]:
    return [str(rr.rdata) for rr in rrs if rtype is None or QTYPE[rr.rtype] == rtype]


def v4q(addr: str, zone: str = BL) -> str:
    return f"{v4_name(parse_v4(addr))}.{zone}"


def v6q(addr: str, zone: str = BL) -> str:
    return f"{v6_name(parse_v6(addr))}.{zone}"


def assert_negative(resp: DNSRecord, rcode: int, zone: str, minimum: int, ttl: int) -> None:
    assert resp.header.rcode == rcode
    assert resp.header.aa == 1 and resp.header.ra == 0
    assert resp.rr == []
    assert len(resp.auth) == 1
    soa = resp.auth[0]
    assert QTYPE[soa.rtype] == "SOA" and str(soa.rname) == zone + "."
    assert soa.ttl == min(minimum, ttl)  # RFC 2308: the negative TTL
    assert soa.rdata.times[0] == SERIAL


# --- listed names -------------------------------------------------------------------


def test_listed_ipv4_gives_one_a_per_code(responder: Responder) -> None:
    resp = ask(responder, query(v4q("192.0.2.7")))
    h = resp.header
    assert (h.rcode, h.qr, h.aa, h.ra, h.rd, h.tc) == (RCODE.NOERROR, 1, 1, 0, 1, 0)
    assert sorted(rdatas(resp.rr, "A")) == ["127.0.0.2", "127.0.0.3"]
    assert all(rr.ttl == 2100 and str(rr.rname) == v4q("192.0.2.7") + "." for rr in resp.rr)
    assert resp.auth == [] and resp.ar == []


def test_txt_substitutes_the_queried_address_one_txt_per_a(responder: Responder) -> None:
    txt = rdatas(ask(responder, query(v4q("192.0.2.7"), "TXT")).rr, "TXT")
    assert txt == [
        '"spam source - see https://bl.example.test/lookup?ip=192.0.2.7"',
        '"other feed - see https://bl.example.test/lookup?ip=192.0.2.7"',
    ]
    ranged = rdatas(ask(responder, query(v4q("198.51.100.9"), "TXT")).rr)
    assert ranged == ['"snowshoe range - see https://bl.example.test/lookup?ip=198.51.100.9"']


def test_any_gives_a_and_txt(responder: Responder) -> None:
    resp = ask(responder, query(v4q("192.0.2.7"), "ANY"))
    assert [QTYPE[r.rtype] for r in resp.rr] == ["A", "A", "TXT", "TXT"]


def test_most_specific_entry_of_a_source_decides(responder: Responder) -> None:
    assert rdatas(ask(responder, query(v4q("198.51.100.200"))).rr) == ["127.0.0.4"]
    assert rdatas(ask(responder, query(v4q("198.51.100.5"))).rr) == ["127.0.0.3"]


def test_ipv6_nibble_names(responder: Responder) -> None:
    resp = ask(responder, query(v6q("2001:db8:1::42"), "TXT"))
    assert rdatas(resp.rr) == ['"v6 spam - see https://bl.example.test/lookup?ip=2001:db8:1::42"']
    assert rdatas(ask(responder, query(v6q("2001:db8:2::5"))).rr) == ["127.0.0.5"]
    assert ask(responder, query(v6q("2001:db8:2::6"))).header.rcode == RCODE.NXDOMAIN


def test_domains_are_unreversed_and_wildcards_match_subdomains_only(responder: Responder) -> None:
    resp = ask(responder, query(f"spam.example.{DBL}", "TXT"))
    assert rdatas(resp.rr) == ['"spam.example is listed: spam domain"']
    sub = ask(responder, query(f"a.b.bad.example.{DBL}", "ANY"))
    assert rdatas(sub.rr) == ["127.0.1.3", '"a.b.bad.example is listed: every subdomain"']
    # bad.example itself is not listed by *.bad.example: an empty non-terminal.
    base = ask(responder, query(f"bad.example.{DBL}"))
    assert base.header.rcode == RCODE.NOERROR and base.rr == []


@pytest.mark.parametrize("ip", ["100.64.0.0", "100.64.255.255", "100.65.0.0", "100.65.255.255"])
def test_range_across_a_16_boundary(responder: Responder, ip: str) -> None:
    assert rdatas(ask(responder, query(v4q(ip))).rr) == ["127.0.0.6"]


@pytest.mark.parametrize("ip", ["100.63.255.255", "100.66.0.0"])
def test_just_outside_a_range(responder: Responder, ip: str) -> None:
    assert ask(responder, query(v4q(ip))).header.rcode == RCODE.NXDOMAIN


# --- RFC 5782 test points -----------------------------------------------------------


@pytest.mark.parametrize("zone", [BL, WL])
def test_ipv4_test_points(responder: Responder, zone: str) -> None:
    listed = ask(responder, query(f"2.0.0.127.{zone}", "ANY"))
    assert "127.0.0.2" in rdatas(listed.rr, "A") and rdatas(listed.rr, "TXT")
    assert ask(responder, query(f"1.0.0.127.{zone}")).header.rcode == RCODE.NXDOMAIN


def test_ipv4_mapped_nibble_names_answer_from_ipv4(responder: Responder) -> None:
    assert rdatas(ask(responder, query(v6q("::ffff:7f00:2"))).rr) == ["127.0.0.2"]
    assert ask(responder, query(v6q("::ffff:7f00:1"))).header.rcode == RCODE.NXDOMAIN
    mapped = ask(responder, query(v6q("::ffff:192.0.2.7"), "TXT"))
    assert sorted(rdatas(ask(responder, query(v6q("::ffff:192.0.2.7"))).rr)) == ["127.0.0.2", "127.0.0.3"]
    assert rdatas(mapped.rr)[0].endswith('ip=192.0.2.7"')  # named as the IPv4 address it is


def test_domain_test_points(responder: Responder) -> None:
    assert rdatas(ask(responder, query(f"test.{DBL}")).rr) == ["127.0.0.2"]
    assert ask(responder, query(f"invalid.{DBL}")).header.rcode == RCODE.NXDOMAIN


# --- negative answers ---------------------------------------------------------------


def test_nxdomain_carries_the_soa(responder: Responder) -> None:
    assert_negative(ask(responder, query(v4q("192.0.2.8"))), RCODE.NXDOMAIN, BL, 300, 2100)
    assert_negative(ask(responder, query(f"nothing.{DBL}", "TXT")), RCODE.NXDOMAIN, DBL, 3600, 1800)
    assert_negative(ask(responder, query(f"nothing.{WL}")), RCODE.NXDOMAIN, WL, 120, 600)


@pytest.mark.parametrize(
    "name",
    [
        f"127.{BL}",
        f"0.127.{BL}",
        f"0.0.127.{BL}",
        f"2.0.192.{BL}",
        f"51.198.{BL}",
        ".".join(reversed("20010db80001")) + f".{BL}",  # a partial nibble name under 2001:db8:1::/48
        f"evil.example.{DBL}",
        f"sub.evil.example.{DBL}",
        f"example.{DBL}",
    ],
)
def test_empty_non_terminals_are_nodata_not_nxdomain(responder: Responder, name: str) -> None:
    zone = DBL if name.endswith(DBL) else BL
    minimum, ttl = (3600, 1800) if zone == DBL else (300, 2100)
    for qtype in ("A", "TXT", "ANY"):
        assert_negative(ask(responder, query(name, qtype)), RCODE.NOERROR, zone, minimum, ttl)


@pytest.mark.parametrize("name", [f"1.0.127.{BL}", f"3.2.0.192.{BL}", f"x.2.0.0.127.{BL}", f"foo.{BL}"])
def test_names_with_nothing_below_are_nxdomain(responder: Responder, name: str) -> None:
    assert_negative(ask(responder, query(name)), RCODE.NXDOMAIN, BL, 300, 2100)


@pytest.mark.parametrize("qtype", ["AAAA", "MX", "NS", "SOA", "CNAME", "PTR"])
def test_listed_name_other_type_is_nodata(responder: Responder, qtype: str) -> None:
    assert_negative(ask(responder, query(v4q("192.0.2.7"), qtype)), RCODE.NOERROR, BL, 300, 2100)


# --- apex, outside, flags -----------------------------------------------------------


def test_apex_soa_and_ns_with_glue(responder: Responder) -> None:
    soa = ask(responder, query(BL, "SOA"))
    assert soa.header.aa == 1 and len(soa.rr) == 1
    assert str(soa.rr[0].rdata) == "ns1.bl.example.test. hostmaster.example.test. 2026112700 3600 600 604800 300"
    ns = ask(responder, query(BL, "NS"))
    assert sorted(rdatas(ns.rr)) == ["ns.other.example.", "ns1.bl.example.test."]
    assert sorted((str(r.rname), str(r.rdata)) for r in ns.ar) == [
        ("ns1.bl.example.test.", "192.0.2.53"),
        ("ns1.bl.example.test.", "2001:db8::53"),
    ]
    assert_negative(ask(responder, query(BL, "A")), RCODE.NOERROR, BL, 300, 2100)
    assert rdatas(ask(responder, query(f"ns1.{BL}", "A")).rr) == ["192.0.2.53"]
    assert rdatas(ask(responder, query(f"ns1.{BL}", "AAAA")).rr) == ["2001:db8::53"]


@pytest.mark.parametrize("name", ["example.com", "example.test", "l.example.test", "test", "bl.example.test.evil"])
def test_outside_every_zone_is_refused(responder: Responder, name: str) -> None:
    resp = ask(responder, query(name))
    assert resp.header.rcode == RCODE.REFUSED and resp.header.aa == 0 and resp.rr == []
    assert str(resp.q.qname) == name + "."


def test_rd_and_cd_copied_never_ra(responder: Responder) -> None:
    resp = ask(responder, query(v4q("192.0.2.7"), rd=False, cd=True))
    assert (resp.header.rd, resp.header.cd, resp.header.ra) == (0, 1, 0)


@pytest.mark.parametrize(
    "name", ["7.2.0.192.Bl.ExAmPlE.TeSt", "2.0.0.127.BL.EXAMPLE.TEST", "SpAm.ExAmple.DBL.example.TEST"]
)
def test_question_case_is_echoed_exactly(responder: Responder, name: str) -> None:
    data = query(name, "A")
    raw = responder.answer(data, LOOPBACK)
    assert raw is not None
    question_end = 12 + len(name) + 2 + 4
    assert raw[12:question_end] == data[12:question_end]
    resp = DNSRecord.parse(raw)
    assert resp.rr and all(str(r.rname) == name + "." for r in resp.rr)


# --- EDNS and truncation ------------------------------------------------------------


def opt_of(raw: bytes) -> bytes:
    """The OPT record: the last 11 bytes of our replies when EDNS was used."""
    return raw[-11:]


def test_opt_is_echoed_with_our_size_and_do_bit(responder: Responder) -> None:
    raw = responder.answer(query(v4q("192.0.2.7"), edns=4096, do=True), LOOPBACK)
    assert raw is not None
    assert opt_of(raw) == b"\x00\x00\x29" + struct.pack(">HBBHH", 1232, 0, 0, 0x8000, 0)
    raw = responder.answer(query(v4q("192.0.2.8"), edns=1232), LOOPBACK)
    assert raw is not None and opt_of(raw)[7:9] == b"\x00\x00"
    plain = ask(responder, query(v4q("192.0.2.7")))
    assert plain.ar == []


@pytest.mark.parametrize(
    ("address", "qtype", "edns", "tcp", "truncated"),
    [
        (MEDIUM_ADDRESS, "TXT", None, False, True),  # ~800 bytes > 512
        (MEDIUM_ADDRESS, "TXT", 1232, False, False),
        (MEDIUM_ADDRESS, "TXT", 700, False, True),  # the advertised size is honoured
        (MEDIUM_ADDRESS, "TXT", 100, False, True),  # below 512 counts as 512
        (BIG_ADDRESS, "TXT", 4096, False, True),  # ~1600 bytes > our 1232
        (BIG_ADDRESS, "ANY", None, True, False),  # TCP carries it whole
        (BIG_ADDRESS, "TXT", 4096, True, False),
        (BIG_ADDRESS, "A", None, False, False),
    ],
)
def test_truncation_over_udp(
    responder: Responder, address: str, qtype: str, edns: int | None, tcp: bool, truncated: bool
) -> None:
    raw = responder.answer(query(v4q(address), qtype, edns=edns), LOOPBACK, tcp)
    assert raw is not None
    resp = DNSRecord.parse(raw)
    assert resp.header.tc == int(truncated)
    if truncated:
        assert resp.rr == [] and len(raw) <= 512
    else:
        assert len(resp.rr) == {"TXT": 4 if address == MEDIUM_ADDRESS else 8, "ANY": 16, "A": 8}[qtype]
    assert (edns is not None) == any(r.rtype == QTYPE.OPT for r in resp.ar)


def test_long_txt_is_split_into_character_strings(responder: Responder) -> None:
    raw = responder.answer(query(v4q("203.0.113.9"), "TXT", edns=1232), LOOPBACK)
    assert raw is not None
    txt = DNSRecord.parse(raw).rr[0].rdata
    assert [len(s) for s in txt.data] == [255, 300 + len(" - see https://bl.example.test/lookup?ip=203.0.113.9") - 255]


def test_badvers_for_edns_version_above_zero(responder: Responder) -> None:
    raw = responder.answer(query(v4q("192.0.2.7"), edns=1232, version=1), LOOPBACK)
    assert raw is not None
    resp = DNSRecord.parse(raw)
    assert resp.header.rcode == 0 and resp.rr == []
    assert opt_of(raw)[5] == 1  # extended rcode 16 = BADVERS: upper bits 1, header bits 0


# --- malformed and unusual packets --------------------------------------------------


def test_short_packets_are_dropped(responder: Responder) -> None:
    for data in (b"", b"\x12", b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00"):
        assert responder.answer(data, LOOPBACK) is None


def test_replies_are_never_answered(responder: Responder) -> None:
    data = bytearray(query(v4q("192.0.2.7")))
    data[2] |= 0x80
    assert responder.answer(bytes(data), LOOPBACK) is None


@pytest.mark.parametrize(
    "data",
    [
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05ab",  # name cut short
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x02bl\x00\x00",  # no qclass
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",  # pointer loop
    ],
)
def test_formerr_when_the_header_reads_but_the_rest_does_not(responder: Responder, data: bytes) -> None:
    raw = responder.answer(data, LOOPBACK)
    assert raw is not None and raw[:2] == b"\x12\x34"
    assert raw[2] & 0x80 and raw[3] & 0x0F == RCODE.FORMERR


def test_two_questions_is_formerr(responder: Responder) -> None:
    rec = DNSRecord(DNSHeader(id=7), questions=[DNSQuestion(v4q("192.0.2.7")), DNSQuestion(v4q("192.0.2.8"))])
    assert ask(responder, bytes(rec.pack())).header.rcode == RCODE.FORMERR


@pytest.mark.parametrize("opcode", [1, 2, 5, 6, 15])
def test_unknown_opcodes_get_notimp(responder: Responder, opcode: int) -> None:
    resp = ask(responder, query(v4q("192.0.2.7"), opcode=opcode))
    assert resp.header.rcode == RCODE.NOTIMP and resp.header.opcode == opcode


def test_other_classes_are_refused(responder: Responder) -> None:
    assert ask(responder, query(f"version.{BL}", "TXT", qclass="CH")).header.rcode == RCODE.REFUSED


def test_notify_for_our_zone_is_acknowledged(responder: Responder) -> None:
    resp = ask(responder, query(BL, "SOA", opcode=OPCODE.NOTIFY))
    assert (resp.header.opcode, resp.header.rcode, resp.header.aa) == (OPCODE.NOTIFY, RCODE.NOERROR, 1)
    other = ask(responder, query("example.com", "SOA", opcode=OPCODE.NOTIFY))
    assert other.header.rcode == RCODE.REFUSED


def test_unusual_layout_is_answered_like_the_common_one(responder: Responder) -> None:
    """Extra additional records (here an OPT plus a second, unknown record) take the slow path."""
    rec = DNSRecord(DNSHeader(id=9), q=DNSQuestion(v4q("192.0.2.7")))
    rec.add_ar(EDNS0(udp_len=1232))
    data = bytearray(rec.pack())
    data[11] = 2  # ARCOUNT 2
    data += b"\x00\xff\x00\x00\x01\x00\x00\x00\x00\x00\x02\xab\xcd"  # a private-type record
    resp = ask(responder, bytes(data))
    assert sorted(rdatas(resp.rr)) == ["127.0.0.2", "127.0.0.3"]


def test_internal_error_gives_servfail_and_a_log_line(
    responder: Responder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: ServedZone, idx: int) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(ServedZone, "prebuilt", broken)
    with caplog.at_level(logging.ERROR, logger="publisher.server"):
        resp = ask(responder, query(v4q("192.0.2.7")))
    assert resp.header.rcode == RCODE.SERVFAIL and str(resp.q.qname) == v4q("192.0.2.7") + "."
    assert any("internal error" in r.getMessage() and "SERVFAIL" in r.getMessage() for r in caplog.records)


_VALID = query(v4q("192.0.2.7"), "TXT", edns=1232)


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    st.one_of(
        st.binary(max_size=80), st.binary(min_size=12, max_size=80).map(lambda b: b[:2] + b"\x00\x00\x00\x01" + b[6:])
    )
)
def test_random_bytes_never_escape_the_handler(responder: Responder, data: bytes) -> None:
    for tcp in (False, True):
        raw = responder.answer(data, LOOPBACK, tcp)
        if raw is not None:
            assert len(raw) >= 12 and raw[:2] == data[:2] and raw[2] & 0x80


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)), min_size=1, max_size=4))
def test_mutated_queries_never_escape_the_handler(responder: Responder, edits: list[tuple[int, int]]) -> None:
    data = bytearray(_VALID)
    for pos, value in edits:
        data[pos] = value
    raw = responder.answer(bytes(data), LOOPBACK)
    assert raw is None or (raw[:2] == data[:2] and raw[2] & 0x80)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, (1 << 32) - 1) | st.sampled_from([0x63FFFFFF, 0x64400000, 0x6441FFFF, 0x64420000, 0xCB0071C8]))
def test_ipv4_answers_equal_the_compiled_lookup(addr: int) -> None:
    zs = _module_zones()
    responder = Responder(_State(zs), Stats().new())
    zone = zs.zones[BL].zone
    idx = zone.lookup_v4(addr)
    resp = ask(responder, query(f"{v4_name(addr)}.{BL}"))
    if idx < 0:
        assert resp.header.rcode == RCODE.NXDOMAIN or (resp.header.rcode == 0 and not resp.rr)
    else:
        codes = sorted(str(r.rdata) for r in resp.rr)
        assert codes == sorted(".".join(str(b) for b in c.to_bytes(4, "big")) for c in zone.answers[idx].codes)


_ZS: list[ZoneSet] = []


def _module_zones() -> ZoneSet:
    if not _ZS:
        _ZS.append(ZoneSet.build(sample_zones(SERIAL).values()))
    return _ZS[0]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, (1 << 128) - 1) | st.integers(0, (1 << 32) - 1).map(lambda a: V4_MAPPED_START + a))
def test_ipv6_answers_equal_the_compiled_lookup(addr: int) -> None:
    zs = _module_zones()
    zone = zs.zones[BL].zone
    resp = ask(Responder(_State(zs), Stats().new()), query(f"{v6_name(addr)}.{BL}"))
    idx = zone.lookup_v6(addr)
    assert (idx >= 0) == bool(resp.rr)


# --- transfers -----------------------------------------------------------------------


def test_axfr_over_udp_is_formerr_ixfr_gets_the_soa(responder: Responder) -> None:
    assert ask(responder, query(BL, "AXFR")).header.rcode == RCODE.FORMERR
    ixfr = ask(responder, query(BL, "IXFR"))
    assert [QTYPE[r.rtype] for r in ixfr.rr] == ["SOA"] and ixfr.rr[0].rdata.times[0] == SERIAL


def test_axfr_refused_outside_the_allow_list(zones: ZoneSet) -> None:
    counts = Stats().new()
    got = slow.handle(zones, query(WL, "AXFR"), "127.0.0.1", True, counts)
    assert isinstance(got, bytes) and got[3] & 0x0F == RCODE.REFUSED
    allowed = slow.handle(zones, query(WL, "AXFR"), "192.0.2.9", True, counts)
    assert isinstance(allowed, xfr.TransferRequest)
    assert slow.handle(zones, query(BL, "AXFR"), "::1", True, counts).__class__ is xfr.TransferRequest
    assert slow.handle(zones, query(BL, "AXFR"), "10.0.0.1", True, counts)[3] & 0x0F == RCODE.REFUSED  # type: ignore[index]
    sub = slow.handle(zones, query(f"x.{BL}", "AXFR"), "127.0.0.1", True, counts)
    assert isinstance(sub, bytes) and sub[3] & 0x0F == 9  # NOTAUTH: not a zone apex


@pytest.mark.parametrize("zone", [BL, WL, DBL])
def test_axfr_streams_the_rendered_zone_soa_first_and_last(zones: ZoneSet, zone: str) -> None:
    req = xfr.TransferRequest(zones.zones[zone], b"\x00\x07", query(zone, "AXFR")[12:])
    records = []
    for msg in xfr.messages(req):
        assert len(msg) <= 65535
        parsed = DNSRecord.parse(msg)
        assert parsed.header.id == 7 and parsed.header.aa == 1
        records.extend(parsed.rr)
    assert QTYPE[records[0].rtype] == "SOA" and QTYPE[records[-1].rtype] == "SOA"
    assert records[0].rdata.times[0] == SERIAL
    got = sorted((str(r.rname).rstrip(".").lower(), QTYPE[r.rtype], _norm(r)) for r in records[1:-1])
    want = sorted(
        (rec.owner, rec.rtype, _norm_rec(rec)) for rec in iter_records(zones.zones[zone].zone) if rec.rtype != "SOA"
    )
    assert got == want


def _norm(rr: object) -> str:
    rdata = rr.rdata  # type: ignore[attr-defined]
    if QTYPE[rr.rtype] == "TXT":  # type: ignore[attr-defined]
        return b"".join(rdata.data).decode()
    return str(rdata).rstrip(".")


def _norm_rec(rec: object) -> str:
    from publisher.addresses import format_v4, format_v6

    rtype, rdata = rec.rtype, rec.rdata  # type: ignore[attr-defined]
    if rtype == "A":
        return format_v4(rdata)
    if rtype == "AAAA":
        return format_v6(rdata)
    return str(rdata).rstrip(".")


def test_big_zone_transfer_is_split_into_messages() -> None:
    rows = [
        [
            (f"10.{i >> 8}.{i & 255}.1", __import__("publisher.model", fromlist=["Value"]).Value(0x7F000002, "x" * 40))
            for i in range(3000)
        ]
    ]
    zs = ZoneSet.build(sample_zones(SERIAL, extra_bl=rows).values())
    req = xfr.TransferRequest(zs.zones[BL], b"\x00\x01", query(BL, "AXFR")[12:])
    msgs = list(xfr.messages(req))
    assert len(msgs) > 3
    total = sum(len(DNSRecord.parse(m).rr) for m in msgs)
    assert total == sum(1 for _ in iter_records(zs.zones[BL].zone)) + 1  # SOA once more at the end


# --- counters ------------------------------------------------------------------------


def test_counters_per_zone(zones: ZoneSet) -> None:
    stats = Stats()
    responder = Responder(_State(zones), stats.new())
    for data in (
        query(v4q("192.0.2.7")),
        query(v4q("192.0.2.8")),
        query(f"127.{BL}"),
        query("example.com"),
        query(f"test.{DBL}", "TXT"),
        b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05ab",
    ):
        responder.answer(data, LOOPBACK)
    lines = stats.report({name: sz.serial for name, sz in zones.zones.items()})
    text = "\n".join(lines)
    assert f"stats {BL} (serial {SERIAL}): queries 3 listed 1 not_listed 1 nodata 1 refused 0" in text
    assert f"stats {DBL} (serial {SERIAL}): queries 1 listed 1" in text
    assert "stats no zone (not served): queries 2 listed 0 not_listed 0 nodata 0 refused 1 formerr 1" in text


def test_two_codes_with_one_text_send_that_txt_once() -> None:
    """An RRset never holds the same data twice (RFC 2181 section 5): two codes whose
    texts are equal give two A records but one TXT record."""
    import datetime as dt

    from publisher.compile.compiler import compile_zone
    from publisher.model import SourceData, Value, ZoneConfig

    cfg = ZoneConfig("dup.example.test", "ip", "block", ("x/*.txt",), 0x7F000002, "Listed: {reason}")
    sources = []
    for n, code in enumerate((0x7F000003, 0x7F000004)):
        src = SourceData(f"x/{n}.txt")
        addr = parse_v4("192.0.2.9")
        src.add_network(4, addr, addr, src.add_value(Value(code, "same reason")), 1)
        sources.append(src)
    zone = compile_zone(cfg, sources, as_of=dt.datetime(2026, 11, 27, tzinfo=dt.UTC))
    responder = Responder(_State(ZoneSet.build([zone])), Stats().new())
    name = f"{v4_name(parse_v4('192.0.2.9'))}.dup.example.test"
    reply = ask(responder, query(name, "ANY"))
    assert sorted(rdatas(reply.rr, "A")) == ["127.0.0.3", "127.0.0.4"]
    assert rdatas(reply.rr, "TXT") == ['"Listed: same reason"']
    records = [r for r in iter_records(zone) if r.owner == name]
    assert [r.rtype for r in records] == ["A", "A", "TXT"]
