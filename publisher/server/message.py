"""A bounded reader for the messages the slow path answers (RFC 1035 section 4.1).

Inside the server: serving loops -> wire.fast() -> slow.handle() -> here. Why not a
general parser: a general parser reads every record a header claims and follows
compression pointers wherever they point. dnslib does both, by recursion, so one 4 KB
query of 680 questions, each name a pointer to the one before, cost 0.7 s of CPU and a
chain deeper than 1000 raised RecursionError. Here the cost of any input is bounded
before anything is read:

- The header decides first, in constant time: exactly one question (RFC 9619); at most
  one answer and one authority record (the SOA a NOTIFY or an IXFR carries; no answer
  at all in a QUERY); at most two additional records (OPT and TSIG); at most
  `MAX_MESSAGE` bytes. Anything else is FORMERR without a look at the rest.
- Records in the answer and authority sections must be SOAs (the only ones a query or
  NOTIFY carries); their two names are walked too. Additional records are read as
  opaque data, except in a signed message, which dnspython reads whole for the TSIG
  check: there only OPT and TSIG (whose algorithm name is walked) are allowed.
- Names are walked in a loop: labels of at most 63 bytes (0x40-0xBF length bytes are
  extended label types: refused), names of at most 255 bytes, and each compression
  pointer must point before the previous one (no loops), with `MAX_HOPS` pointers in
  the whole message.

So a message costs at most five records, nine names and `MAX_HOPS` pointer hops,
whatever it claims: a few microseconds.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from publisher.errors import PublisherError

#: Pointer hops allowed in one message. A compressing encoder needs one per name (two or
#: three at most when names share suffixes); the nine names a message may hold need 32.
MAX_HOPS = 32
#: Largest message read. A query with EDNS padding, an IXFR's SOA and a TSIG is well under
#: 1 KB; bigger ones are not queries anyone sends (TCP allows 64 KB).
MAX_MESSAGE = 4096
OPCODE_QUERY, OPCODE_NOTIFY = 0, 4
TYPE_SOA, TYPE_OPT, TYPE_TSIG = 6, 41, 250

_HDR = struct.Struct(">HBBHHHH")
_FIXED = struct.Struct(">HHIH")  # type, class, ttl, rdlength


class Malformed(PublisherError):
    """The message is not one the server reads; the reply is FORMERR (never shown to a user).

    `question` is the question's wire form when it was read before the problem was
    found (the reply echoes it), else b''.
    """

    def __init__(self, why: str, question: bytes = b"") -> None:
        super().__init__(why)
        self.question = question


@dataclass(frozen=True, slots=True)
class Record:
    """One resource record's fixed fields; its data stays in the message."""

    labels: tuple[bytes, ...]
    rtype: int
    rclass: int
    ttl: int
    rdata: bytes


@dataclass(frozen=True, slots=True)
class Message:
    """A query or NOTIFY that passed every check above."""

    opcode: int
    labels: tuple[bytes, ...]  # the question's name, as written (case kept)
    qtype: int
    qclass: int
    question: bytes  # the question in wire form, uncompressed: what a reply echoes
    records: tuple[Record, ...]  # answer, authority and additional sections, in order
    additional: tuple[Record, ...]

    @property
    def opt(self) -> Record | None:
        """The OPT record (EDNS), if the message has one."""
        return next((r for r in self.additional if r.rtype == TYPE_OPT), None)


def opcode(data: bytes) -> int:
    return (data[2] >> 3) & 0x0F


def question_of(data: bytes) -> bytes:
    """The first question's wire form when it reads cleanly, else b'' (for error replies)."""
    if len(data) < 12 or data[4:6] == b"\x00\x00":
        return b""
    try:
        labels, pos = _name(data, 12, [MAX_HOPS])
    except (Malformed, IndexError):
        return b""
    if pos + 4 > len(data):
        return b""
    return _encode(labels) + data[pos : pos + 4]


def parse(data: bytes) -> Message:
    """Read a QUERY or NOTIFY message (header already known to be 12 bytes, QR clear)."""
    if len(data) > MAX_MESSAGE:
        raise Malformed(f"{len(data)} bytes: larger than any query")
    _id, f1, _f2, qd, an, ns, ar = _HDR.unpack_from(data)
    op = (f1 >> 3) & 0x0F
    if qd != 1:
        raise Malformed(f"{qd} questions")
    if an > (1 if op == OPCODE_NOTIFY else 0) or ns > 1 or ar > 2:
        raise Malformed(f"{an} answer, {ns} authority, {ar} additional records")
    budget = [MAX_HOPS]
    question = b""
    try:
        labels, pos = _name(data, 12, budget)
        qtype, qclass = struct.unpack_from(">HH", data, pos)
        question = _encode(labels) + data[pos : pos + 4]
        pos += 4
        records = []
        for i in range(an + ns + ar):
            rec, pos = _record(data, pos, budget, question, additional=i >= an + ns)
            records.append(rec)
    except (IndexError, struct.error):
        raise Malformed("message ends early", question) from None
    additional = tuple(records[an + ns :])
    if any(r.rtype == TYPE_TSIG for r in additional) and any(r.rtype not in (TYPE_OPT, TYPE_TSIG) for r in additional):
        # dnspython reads a signed message whole: only records whose names were walked here.
        raise Malformed("a signed message with a record other than OPT and TSIG", question)
    return Message(op, labels, qtype, qclass, question, tuple(records), additional)


def _record(data: bytes, pos: int, budget: list[int], question: bytes, *, additional: bool) -> tuple[Record, int]:
    owner, pos = _name(data, pos, budget, question)
    rtype, rclass, ttl, rdlength = _FIXED.unpack_from(data, pos)
    pos += 10
    end = pos + rdlength
    if end > len(data):
        raise Malformed("record data runs past the end", question)
    if rtype != TYPE_SOA and not additional:
        raise Malformed(f"a type {rtype} record where a query carries none", question)
    if rtype == TYPE_SOA:  # MNAME, RNAME, then five 32-bit numbers
        at = _name(data, pos, budget, question)[1]
        at = _name(data, at, budget, question)[1]
        if at + 20 != end:
            raise Malformed("SOA data of the wrong length", question)
    elif rtype == TYPE_TSIG:  # the algorithm name, then fixed fields dnspython checks
        if _name(data, pos, budget, question)[1] > end:
            raise Malformed("TSIG data of the wrong length", question)
    return Record(owner, rtype, rclass, ttl, data[pos:end]), end


def _name(data: bytes, pos: int, budget: list[int], question: bytes = b"") -> tuple[tuple[bytes, ...], int]:
    """The labels of the name at `pos` and the offset just after it (after its first pointer)."""
    labels: list[bytes] = []
    size = 1
    end = -1
    limit = pos  # a pointer must point before this: strictly backwards, so never a loop
    while True:
        ln = data[pos]
        if ln == 0:
            return tuple(labels), (pos + 1 if end < 0 else end)
        if ln < 0x40:
            size += ln + 1
            if size > 255:
                raise Malformed("a name longer than 255 bytes", question)
            labels.append(data[pos + 1 : pos + 1 + ln])
            if pos + 1 + ln >= len(data):
                raise IndexError
            pos += ln + 1
        elif ln >= 0xC0:
            target = ((ln & 0x3F) << 8) | data[pos + 1]
            if end < 0:
                end = pos + 2
            budget[0] -= 1
            if target >= limit or budget[0] < 0:
                raise Malformed("a compression pointer that loops or chains too far", question)
            pos = limit = target
        else:
            raise Malformed(f"label type {ln:#x}", question)


def _encode(labels: tuple[bytes, ...]) -> bytes:
    return b"".join(bytes((len(label),)) + label for label in labels) + b"\x00"
