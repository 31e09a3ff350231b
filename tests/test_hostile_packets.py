"""Packets built to make the server work: compression-pointer chains, counts that lie, giant messages.

The security review found one 4 KB query (680 questions, each name a pointer to the one
before) cost 0.7 s of CPU in dnslib's recursive parser, and a chain deeper than 1000
hops raised RecursionError (SERVFAIL and a traceback). The cost of a packet is measured
here in Python function calls, which does not depend on the machine: answering any of
these must take a few hundred calls at most, like an ordinary query, not hundreds of
thousands. `make fuzz` reports the same cases in CPU time, next to an ordinary query's,
and a probe's answer time while they are flooded at a live server.
"""

from __future__ import annotations

import socket
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dnslib import QTYPE, RR, DNSHeader, DNSQuestion, DNSRecord

from publisher.server import message, slow
from publisher.server.core import Responder
from publisher.server.stats import Stats
from publisher.server.xfr import TransferRequest
from publisher.server.zoneset import ZoneSet
from server_fixtures import publish, sample_zones
from test_server import BL, Served, start_server

ZONES = ZoneSet.build(sample_zones(2026113000).values(), {})
FORMERR, NOTIMP = 1, 4
#: An ordinary slow-path query (a compressed question) costs about 60 calls; every hostile
#: packet below must stay within a few times that (dnslib spent 231,000 on the worst one).
CALL_BUDGET = 400


class _State:
    zones = ZONES


def header(qd: int, an: int = 0, ns: int = 0, ar: int = 0, flags: int = 0x0100) -> bytes:
    return struct.pack(">HHHHHH", 0xBEEF, flags, qd, an, ns, ar)


def name_wire(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"


def chained_questions(n: int) -> bytes:
    """n questions, each name one label and a pointer to the name of the question before."""
    body = bytearray(name_wire(BL) + b"\x00\x01\x00\x01")
    prev = 12
    for _ in range(n - 1):
        at = 12 + len(body)
        body += b"\x01x" + struct.pack(">H", 0xC000 | prev) + b"\x00\x01\x00\x01"
        prev = at
    return header(n) + bytes(body)


def pointer_chain_record(hops: int) -> bytes:
    """One question, a private-type record whose data is `hops` pointers each to the one
    before, then an A record whose owner name enters that chain at its end."""
    question = name_wire(f"2.0.0.127.{BL}") + b"\x00\x01\x00\x01"
    start = 12 + len(question) + 11  # where the first record's data begins
    chain = bytearray(b"\x00")  # entry 0, the root name; entry i (i >= 1) points at entry i - 1
    for i in range(1, hops + 1):
        prev = start if i == 1 else start + 1 + 2 * (i - 2)
        chain += struct.pack(">H", 0xC000 | prev)
    opaque = b"\x00\xff\x00\x00\x01\x00\x00\x00\x00" + struct.pack(">H", len(chain)) + bytes(chain)
    last = start + 1 + 2 * (hops - 1)
    entry = struct.pack(">H", 0xC000 | last) + b"\x00\x01\x00\x01\x00\x00\x00\x00\x00\x04\x7f\x00\x00\x01"
    return header(1, ar=2) + question + opaque + entry


def calls(fn, *args) -> tuple[int, object]:  # type: ignore[no-untyped-def]
    """Python function calls made while `fn(*args)` runs, and what it returned."""
    count = [0]

    def profile(_frame, event, _arg):  # type: ignore[no-untyped-def]
        if event == "call":
            count[0] += 1

    sys.setprofile(profile)
    try:
        got = fn(*args)
    finally:
        sys.setprofile(None)
    return count[0], got


def answer(data: bytes, tcp: bool) -> tuple[int, bytes]:
    responder = Responder(_State(), Stats().new())
    if tcp:
        n, got = calls(lambda: list(responder.answer_tcp(data, ("192.0.2.1", 53))))
        assert isinstance(got, list) and len(got) == 1
        return n, got[0]
    n, got = calls(responder.answer, data, ("192.0.2.1", 53))
    assert isinstance(got, bytes)
    return n, got


def rcode(reply: bytes) -> int:
    return reply[3] & 0x0F


@pytest.mark.parametrize(("n", "tcp"), [(2, False), (500, False), (2, True), (680, True), (5000, True)])
def test_chained_questions_cost_nothing(n: int, tcp: bool) -> None:
    data = chained_questions(n)
    if not tcp and len(data) > 4096:
        pytest.skip("larger than a datagram the server reads")
    spent, got = answer(data, tcp)
    assert rcode(got) == FORMERR and got[:2] == b"\xbe\xef"
    assert spent < CALL_BUDGET, f"{spent} calls for {n} chained questions"


@pytest.mark.parametrize("hops", [33, 1300])
def test_a_long_pointer_chain_is_formerr_not_a_recursion_error(hops: int) -> None:
    """1300 hops made dnslib raise RecursionError: SERVFAIL and a traceback per packet."""
    data = pointer_chain_record(hops)
    assert len(data) < 4096
    for tcp in (False, True):
        spent, got = answer(data, tcp)
        assert rcode(got) == FORMERR
        assert spent < CALL_BUDGET, f"{spent} calls for a {hops}-hop chain"


def test_ordinary_compression_is_read() -> None:
    """What real senders compress stays readable: an IXFR's SOA and a NOTIFY's SOA whose names
    point at the question (dnslib's packer compresses them)."""
    ixfr = DNSRecord.question(BL, "IXFR")
    ixfr.add_auth(*RR.fromZone(f"{BL}. 0 IN SOA ns1.{BL}. hostmaster.{BL}. 2026112900 1 2 3 4"))
    packed = ixfr.pack()
    assert b"\xc0\x0c" in packed  # the SOA's owner is a pointer to the question
    got = slow.handle(ZONES, packed, "127.0.0.1", True, Stats().new())
    assert isinstance(got, TransferRequest) and got.zone.name == BL

    notify = DNSRecord(DNSHeader(id=7, opcode=4, aa=1), q=DNSQuestion(BL, QTYPE.SOA))
    notify.add_answer(*RR.fromZone(f"{BL}. 0 IN SOA ns1.{BL}. hostmaster.{BL}. 2026112900 1 2 3 4"))
    reply = slow.handle(ZONES, notify.pack(), "127.0.0.1", False, Stats().new())
    assert isinstance(reply, bytes) and rcode(reply) == 0 and reply[2] & 0x80


@pytest.mark.parametrize(
    ("counts", "why"),
    [
        ((0, 0, 0, 0), "no question"),
        ((2, 0, 0, 0), "two questions (RFC 9619)"),
        ((1, 1, 0, 0), "an answer record in a QUERY"),
        ((1, 0, 2, 0), "two authority records"),
        ((1, 0, 0, 3), "three additional records"),
        ((1, 0, 0, 65535), "a count that lies"),
    ],
)
def test_counts_outside_a_query_are_formerr_before_reading(counts: tuple[int, int, int, int], why: str) -> None:
    data = header(*counts) + name_wire(f"2.0.0.127.{BL}") + b"\x00\x01\x00\x01" + b"\x00" * 40
    for tcp in (False, True):
        spent, got = answer(data, tcp)
        assert rcode(got) == FORMERR, why
        assert spent < CALL_BUDGET


@pytest.mark.parametrize("size", [1024, 4096, 65535])
def test_maximum_size_messages_are_cheap(size: int) -> None:
    """Messages filled to the size of a datagram or a TCP frame cost what a small one costs.

    Trailing bytes or a second, unknown additional record take the slow path: it reads up
    to 4096 bytes and refuses anything larger unread (no query anyone sends is that large)."""
    question = name_wire(f"2.0.0.127.{BL}") + b"\x00\x01\x00\x01"
    filler = b"\x00\xff\x00\x00\x01\x00\x00\x00\x00\x00\x00"  # a private-type record, empty
    fill = size - 12 - len(question) - 11 - len(filler)
    opt = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00" + struct.pack(">H", fill) + b"\x00" * fill
    expected = 0 if size <= message.MAX_MESSAGE else FORMERR
    for data in (header(1, ar=1) + question + opt + b"\x00" * len(filler), header(1, ar=2) + question + opt + filler):
        assert len(data) == size
        spent, got = answer(data, tcp=True)
        assert rcode(got) == expected
        assert spent < CALL_BUDGET


def test_other_opcodes_are_notimp_whatever_their_counts() -> None:
    """UPDATE (opcode 5) carries records in every section: NOTIMP, the question echoed, unread."""
    data = header(1, an=3, ns=9, ar=1, flags=5 << 11) + name_wire(BL) + b"\x00\x06\x00\x01"
    spent, got = answer(data, False)
    assert rcode(got) == NOTIMP and got[4:6] == b"\x00\x01"
    assert got[12:].startswith(name_wire(BL))
    assert spent < CALL_BUDGET


def test_servfail_echoes_the_question_without_a_general_parser() -> None:
    got = slow.servfail(chained_questions(680))
    assert got is not None and rcode(got) == 2 and got[12:].startswith(name_wire(BL))
    assert message.question_of(b"\x00" * 11) == b""


# --- against the real server: a probe is answered while hostile packets arrive ---------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    zones_dir: Path = tmp_path_factory.mktemp("zones")
    publish(zones_dir, sample_zones(2026113000))
    served = start_server(zones_dir)
    yield served
    served.stop()


def test_a_probe_is_answered_after_a_burst_of_pointer_chains(server: Served) -> None:
    """500 chained-question packets (0.7 s of CPU each before the fix) then one ordinary query:
    it must be answered as a resolver asks, 2 s per try and three tries (the burst can fill the
    socket buffer so that the first probe is dropped on a busy machine; 500 x 0.7 s is not)."""
    hostile = chained_questions(680)
    probe = header(1) + name_wire(f"2.0.0.127.{BL}") + b"\x00\x01\x00\x01"
    reply = b""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2.0)
        for _ in range(500):
            sock.sendto(hostile, ("127.0.0.1", server.port))
        for _try in range(3):
            sock.sendto(probe, ("127.0.0.1", server.port))
            try:
                while True:  # FORMERRs for the burst first (those not dropped by the socket buffer)
                    reply = sock.recv(4096)
                    if rcode(reply) != FORMERR:
                        break
                break
            except TimeoutError:
                continue
    assert reply and rcode(reply) != FORMERR, "the probe got no answer in three 2 s tries"
    assert [str(r.rdata) for r in DNSRecord.parse(reply).rr] == ["127.0.0.2"]
    assert "RecursionError" not in server.log_text() and "Traceback" not in server.log_text()
