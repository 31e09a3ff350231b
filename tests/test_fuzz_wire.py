"""Fuzzing the query parser and answer path in process (hypothesis-driven mutation).

Valid queries for every kind of name the server knows (listed, unlisted, empty
non-terminal, apex, name server host, outside every zone) in every interesting qtype,
with and without EDNS, are mutated the way hostile packets are: truncated, bytes
flipped, counts lied about, opcode and QR bits set, labels made oversized (0x40-0xBF
length bytes), names looped through compression pointers, EDNS doubled, named, versioned
or stuffed with huge options. Whatever comes in, `wire.fast` and `slow.handle` must not
raise, must never answer a reply (QR set), and anything they send back must be a
well-formed DNS message with the query's id and opcode, within 512 bytes over UDP unless
it carries our OPT, and within 1232 bytes over UDP at all.

The fixed cases at the end are regression tests for what this fuzzing found.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.addresses import parse_network, parse_v6, v6_name
from publisher.server import slow
from publisher.server.stats import new_counters
from publisher.server.wire import fast
from publisher.server.xfr import TransferRequest
from publisher.server.zoneset import ZoneSet, ZoneSettings
from server_fixtures import sample_zones

SERIAL = 2026112700
ZONES = ZoneSet.build(
    sample_zones(SERIAL).values(), {"wl.example.test": ZoneSettings(allow_transfer=(parse_network("192.0.2.0/24"),))}
)
NAMES = [
    "7.2.0.192.bl.example.test",  # listed, the regex hot path
    "200.113.0.203.bl.example.test",  # listed with 8 long TXTs: truncation
    "2.0.0.127.wl.example.test",  # test point
    "8.2.0.192.bl.example.test",  # not listed
    "127.bl.example.test",  # empty non-terminal
    v6_name(parse_v6("2001:db8:2::5")) + ".bl.example.test",  # IPv6, 32 nibble labels
    "x.y.bad.example.dbl.example.test",  # wildcard domain
    "bl.example.test",  # apex
    "ns1.bl.example.test",  # in-zone name server host
    "example.com",  # outside every zone
]
QTYPES = [1, 2, 6, 15, 16, 28, 41, 250, 251, 252, 255, 65535]
OPT = b"\x00\x00\x29\x04\xd0\x00\x00\x80\x00\x00\x00"  # EDNS0, 1232 bytes, DO


def name_wire(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p) + b"\x00"


def query(name: str, qtype: int, edns: bool, qid: int = 0x1234, flags: int = 0x0100) -> bytes:
    head = struct.pack(">HHHHHH", qid, flags, 1, 0, 0, 1 if edns else 0)
    return head + name_wire(name) + struct.pack(">HH", qtype, 1) + (OPT if edns else b"")


# --- what a reply must look like -------------------------------------------------------------


def _name_end(msg: bytes, pos: int) -> int:
    """Where the name at `pos` ends; raises ValueError unless it is a legal wire name."""
    total, end, hops = 0, None, 0
    while True:
        if pos >= len(msg):
            raise ValueError("name runs past the end")
        ln = msg[pos]
        if ln & 0xC0 == 0xC0:
            if pos + 1 >= len(msg):
                raise ValueError("cut pointer")
            target = ((ln & 0x3F) << 8) | msg[pos + 1]
            if target >= pos or hops > 127:
                raise ValueError("pointer not strictly backwards")
            end = pos + 2 if end is None else end
            pos, hops = target, hops + 1
            continue
        if ln & 0xC0:
            raise ValueError(f"label type {ln:#x}")
        total += ln + 1
        if total > 255:
            raise ValueError("name longer than 255")
        if ln == 0:
            return end if end is not None else pos + 1
        pos += ln + 1


def well_formed(msg: bytes) -> int:
    """Parse `msg` strictly (counts, names, rdlengths, no trailing bytes); returns its OPT count."""
    assert len(msg) >= 12
    qd, an, ns, ar = struct.unpack(">HHHH", msg[4:12])
    pos = 12
    for _ in range(qd):
        pos = _name_end(msg, pos) + 4
        assert pos <= len(msg), "question cut"
    opts = 0
    for i in range(an + ns + ar):
        pos = _name_end(msg, pos)
        assert pos + 10 <= len(msg), "record cut"
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", msg[pos : pos + 10])
        if rtype == 41:
            assert i >= an + ns, "OPT outside the additional section"
            opts += 1
        pos += 10 + rdlen
        assert pos <= len(msg), "rdata cut"
    assert pos == len(msg), "trailing bytes"
    assert opts <= 1, "several OPT"
    return opts


def answer(data: bytes, tcp: bool) -> bytes | TransferRequest | None:
    counts = new_counters()
    got = fast(ZONES, data, tcp, counts)
    if got is None:
        got = slow.handle(ZONES, data, "127.0.0.1", tcp, counts)
    return got


def check(data: bytes) -> None:
    for tcp in (False, True):
        got = answer(data, tcp)  # an exception here is the bug
        if got is None or isinstance(got, TransferRequest):
            assert got is None or tcp, "a transfer over UDP"
            continue
        assert len(data) >= 12 and not data[2] & 0x80, "answered a reply or a headerless packet"
        assert got[:2] == data[:2], "id changed"
        assert got[2] & 0x80, "QR clear in a reply"
        assert (got[2] >> 3) & 0x0F == (data[2] >> 3) & 0x0F, "opcode changed"
        opts = well_formed(got)
        if not tcp:
            assert len(got) <= 1232
            assert opts or len(got) <= 512, "more than 512 bytes to a query without EDNS"


# --- mutations ------------------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(query(draw(st.sampled_from(NAMES)), draw(st.sampled_from(QTYPES)), draw(st.booleans())))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.integers(0, 9))
        n = len(data)
        if op == 0:  # truncate
            del data[draw(st.integers(0, n)) :]
        elif op == 1 and n:  # flip a byte
            data[draw(st.integers(0, n - 1))] = draw(st.integers(0, 255))
        elif op == 2 and n >= 12:  # lie about the counts
            data[4:12] = draw(
                st.binary(min_size=8, max_size=8).filter(lambda b: max(b) < 4) | st.binary(min_size=8, max_size=8)
            )
        elif op == 3 and n >= 3:  # any opcode, QR, AA, TC, RD
            data[2] = draw(st.integers(0, 255))
        elif op == 4 and n > 13:  # a compression pointer into the question: loops, forward jumps
            at = draw(st.integers(12, n - 2))
            data[at : at + 2] = (0xC000 | draw(st.integers(0, min(n + 4, 0x3FFF)))).to_bytes(2, "big")
        elif op == 5 and n > 12:  # an oversized or extended label length
            at = draw(st.integers(12, n - 1))
            data[at] = draw(st.integers(64, 191))
        elif op == 6:  # another OPT, maybe not at the root, maybe another version, maybe huge options
            owner = draw(st.sampled_from([b"\x00", b"\x01a\x00", b"\xc0\x0c"]))
            version = draw(st.sampled_from([0, 0, 1, 255]))
            options = draw(st.sampled_from([b"", b"\x00\x0a\x00\x08" + b"c" * 8, b"\xff\xff\x10\x00" + b"x" * 4096]))
            data += (
                owner
                + struct.pack(
                    ">HHBBHH", 41, draw(st.sampled_from([0, 512, 1232, 65535])), 0, version, 0x8000, len(options)
                )
                + options
            )
            if n >= 12:
                data[10:12] = (((data[10] << 8) | data[11]) + 1 & 0xFFFF).to_bytes(2, "big")
        elif op == 7:  # trailing garbage
            data += draw(st.binary(min_size=1, max_size=64))
        elif op == 8 and n > 12:  # garbage inside the question
            at = draw(st.integers(12, n))
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == 9:  # a whole second question
            data += name_wire(draw(st.sampled_from(NAMES))) + b"\x00\x01\x00\x01"
    return bytes(data)


FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(mutated())
def test_mutated_queries(data: bytes) -> None:
    check(data)


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=0, max_size=600))
def test_random_bytes(data: bytes) -> None:
    check(data)


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(NAMES),
    st.integers(0, 65535),
    st.integers(0, 65535),
    st.integers(0, 15),
    st.booleans(),
    st.booleans(),
)
def test_every_opcode_qtype_and_class(name: str, qtype: int, qclass: int, opcode: int, qr: bool, edns: bool) -> None:
    data = bytearray(query(name, qtype, edns, flags=(0x8000 if qr else 0) | (opcode << 11) | 0x0100))
    q = 12 + len(name_wire(name))
    data[q + 2 : q + 4] = qclass.to_bytes(2, "big")
    check(bytes(data))


# --- regressions: what the fuzzing found --------------------------------------------------------


@pytest.mark.parametrize("length", [64, 72, 0x7F, 0xBF])
def test_extended_label_length_is_formerr_not_echoed(length: int) -> None:
    """dnslib read a 0x40-0xBF length byte as a long label and we echoed it: an illegal reply."""
    data = bytearray(query("1.0.0.127.bl.example.test", 250, False))
    data[12] = length
    data += b"x" * length  # enough bytes for dnslib to read the "label"
    for tcp in (False, True):
        got = answer(bytes(data), tcp)
        assert isinstance(got, bytes) and got[3] & 0x0F == 1 and got[4:6] == b"\x00\x00"  # FORMERR, no question
        well_formed(got)


def test_pointer_loop_in_question_is_formerr() -> None:
    data = query("bl.example.test", 1, False)
    looped = data[:12] + b"\x02bl\xc0\x0c" + data[-4:]  # the name points back at itself
    for tcp in (False, True):
        got = answer(looped, tcp)
        assert isinstance(got, bytes) and got[3] & 0x0F == 1
        well_formed(got)


def test_any_is_only_a_and_txt() -> None:
    """ANY never amplifies beyond the A and TXT records of the name (and TC over plain UDP)."""
    for name in ("7.2.0.192.bl.example.test", "spam.example.dbl.example.test", "203.0.113.200"):
        if not name.endswith(".test"):
            name = ".".join(reversed(name.split("."))) + ".bl.example.test"
        a, txt, any_ = (answer(query(name, t, True), True) for t in (1, 16, 255))
        assert isinstance(a, bytes) and isinstance(txt, bytes) and isinstance(any_, bytes)
        an = lambda m: struct.unpack(">H", m[6:8])[0]  # noqa: E731
        assert an(any_) == an(a) + an(txt)
        q_end = 12 + len(name_wire(name)) + 4
        assert len(any_) == len(a) + len(txt) - q_end - len(OPT)
        udp = answer(query(name, 255, False), False)
        assert isinstance(udp, bytes) and len(udp) <= 512
