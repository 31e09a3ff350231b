"""Header flags of replies to messages that are not queries (issue 10, item 10).

RD and CD are query flags: a reply copies them for opcode QUERY only. A NOTIMP for an
unknown opcode carries QR and the echoed opcode (and the question), a NOTIFY ack QR, the
opcode and AA, whatever flags the request set; this is what DNS compliance tests (ISC's
genreport) check. A running server on an ephemeral loopback port is asked over UDP and
TCP with raw packets, and the reply header is compared byte for byte.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest

from publisher.server import Server, ZoneSet
from server_fixtures import read_tcp_message, sample_zones
from test_wire import BL, SERIAL, v4q

#: Every flag a request can carry besides QR: AA, TC, RD in byte 2; RA, Z, AD, CD in byte 3.
ALL_F1, ALL_F2 = 0x07, 0xF0
RD, CD = 0x01, 0x10
QR, AA = 0x80, 0x04
NOERROR, FORMERR, NOTIMP, REFUSED = 0, 1, 4, 5


@pytest.fixture(scope="module")
def endpoint() -> Iterator[tuple[str, int]]:
    server = Server(None, ["127.0.0.1:0"], zoneset=ZoneSet.build(sample_zones(SERIAL).values()), send_notify=False)
    (bound,) = server.start()
    try:
        yield bound.host, bound.port
    finally:
        server.stop()


def question(name: str, qtype: int) -> bytes:
    labels = b"".join(bytes((len(p),)) + p.encode() for p in name.split("."))
    return labels + b"\x00" + struct.pack(">HH", qtype, 1)


def message(opcode: int, f1: int, f2: int, q: bytes, qdcount: int = 1) -> bytes:
    return struct.pack(">HBBHHHH", 0x5A5A, (opcode << 3) | f1, f2, qdcount, 0, 0, 0) + q


def exchange(endpoint: tuple[str, int], data: bytes, transport: str) -> bytes:
    if transport == "udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            sock.sendto(data, endpoint)
            return sock.recv(65535)
    with socket.create_connection(endpoint, timeout=5) as sock:
        sock.sendall(struct.pack(">H", len(data)) + data)
        return read_tcp_message(sock)


def header(reply: bytes) -> tuple[int, int, int, int]:
    """(flags byte 1, flags byte 2, qdcount, ancount) of a reply to our id."""
    rid, f1, f2, qd, an = struct.unpack_from(">HBBHH", reply)
    assert rid == 0x5A5A
    return f1, f2, qd, an


TRANSPORTS = ["udp", "tcp"]
LISTED_A = question(v4q("192.0.2.7"), 1)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_opcode_15_with_every_flag_gets_notimp_with_qr_and_the_opcode_only(
    endpoint: tuple[str, int], transport: str
) -> None:
    reply = exchange(endpoint, message(15, ALL_F1, ALL_F2, LISTED_A), transport)
    assert reply[2:4] == bytes((QR | 15 << 3, NOTIMP))  # no RD, no CD, no AA, no TC
    assert reply[4:12] == b"\x00\x01\x00\x00\x00\x00\x00\x00"
    assert reply[12:] == LISTED_A  # the question echoed


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("opcode", [1, 2, 3, 5, 6, 7, 15])
def test_unknown_opcodes_never_copy_rd_or_cd(endpoint: tuple[str, int], transport: str, opcode: int) -> None:
    f1, f2, qd, an = header(exchange(endpoint, message(opcode, RD, CD, LISTED_A), transport))
    assert (f1, f2, qd, an) == (QR | opcode << 3, NOTIMP, 1, 0)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unknown_opcode_in_a_malformed_message_never_copies_rd_or_cd(endpoint: tuple[str, int], transport: str) -> None:
    two_questions = message(9, RD, CD, LISTED_A + LISTED_A, qdcount=2)
    f1, f2, _, an = header(exchange(endpoint, two_questions, transport))
    assert (f1, f2, an) == (QR | 9 << 3, NOTIMP, 0)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_notify_replies_never_copy_rd_or_cd(endpoint: tuple[str, int], transport: str) -> None:
    ack = exchange(endpoint, message(4, AA | RD, CD, question(BL, 6)), transport)
    assert header(ack) == (QR | 4 << 3 | AA, NOERROR, 1, 0)
    refused = exchange(endpoint, message(4, AA | RD, CD, question("example.com", 6)), transport)
    assert header(refused) == (QR | 4 << 3, REFUSED, 1, 0)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_queries_still_copy_rd_and_cd(endpoint: tuple[str, int], transport: str) -> None:
    f1, f2, _, an = header(exchange(endpoint, message(0, RD, CD, LISTED_A), transport))
    assert (f1, f2, an) == (QR | AA | RD, CD | NOERROR, 2)  # two codes: two A records
    # The slow path's own replies to a query (FORMERR here) copy them too.
    f1, f2, _, an = header(exchange(endpoint, message(0, RD, CD, LISTED_A + LISTED_A, qdcount=2), transport))
    assert (f1, f2, an) == (QR | RD, CD | FORMERR, 0)
    f1, f2, _, _ = header(exchange(endpoint, message(0, RD, CD, question("example.com", 1)), transport))
    assert (f1, f2) == (QR | RD, CD | REFUSED)
