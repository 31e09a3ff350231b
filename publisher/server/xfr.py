"""AXFR (and IXFR's records): a transfer over TCP, as a stream of DNS messages.

Inside the server: slow.handle() checks the ACL and returns a `TransferRequest`; the TCP
loop iterates `messages()` and writes each one length-prefixed. The records come from
`publisher.compile.render.iter_records`, the same rendering as `<zone>.zone`, so a BIND, NSD or
Knot secondary ends up with exactly the published data. The SOA comes first and last
(RFC 5936) and is the one this server answers with, so its serial matches SOA queries.
An IXFR (see ixfr.py) comes with its records ready in `body` and is framed the same way.
Messages are built by hand: a million entries through a general DNS library would take
minutes, and owner names compress to a pointer at the apex in the echoed question.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from publisher.server.zoneset import (
    QTYPE_A,
    QTYPE_AAAA,
    QTYPE_NS,
    QTYPE_TXT,
    ServedZone,
    name_wire,
    rel_wire,
    rr,
    txt_rdata,
)

_HDR = struct.Struct(">2sBBHHHH")
#: Bytes of records per message; well under the 65535 a TCP message can hold.
MESSAGE_BYTES = 32000


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """An allowed AXFR or IXFR of one zone, ready to stream."""

    zone: ServedZone
    query_id: bytes
    question: bytes  # as echoed: its name is the zone apex, so 0xC00C points at the apex
    signed: Any = None  # tsig.Signed when the request was signed: every message gets signed
    body: tuple[bytes, ...] | None = None  # an IXFR's records (ixfr.plan); None: the whole zone


def record_wire(sz: ServedZone, rec: Any) -> bytes | None:
    """One rendered record in wire form, its owner compressed against the apex (None: SOA, or outside)."""
    owner = rel_wire(rec.owner.lower().strip("."), sz.name)
    return None if owner is None else _encode(sz, rec, owner)


def _encode(sz: ServedZone, rec: Any, owner: bytes) -> bytes | None:
    rtype = rec.rtype
    if rtype == "A":
        return rr(owner, QTYPE_A, rec.ttl, int(rec.rdata).to_bytes(4, "big"))
    if rtype == "TXT":
        return rr(owner, QTYPE_TXT, rec.ttl, txt_rdata(str(rec.rdata).encode("utf-8")))
    if rtype == "AAAA":
        return rr(owner, QTYPE_AAAA, rec.ttl, int(rec.rdata).to_bytes(16, "big"))
    if rtype == "NS":
        host = str(rec.rdata).lower().strip(".")
        return rr(owner, QTYPE_NS, rec.ttl, rel_wire(host, sz.name) or name_wire(host))
    return None  # SOA: ours goes first and last


def records(sz: ServedZone) -> Iterator[bytes]:
    """Every record of the zone in wire form, owners compressed against the question name."""
    from publisher.compile.render import iter_records  # imported late: only transfers need it

    yield sz.soa_answer
    last_name, last_owner = "", b""
    for rec in iter_records(sz.zone):
        name = rec.owner.lower().strip(".")
        if name != last_name:
            got = rel_wire(name, sz.name)
            if got is None:
                continue  # outside the zone: nothing a secondary should take
            last_name, last_owner = name, got
        wire = _encode(sz, rec, last_owner)
        if wire is not None:
            yield wire
    yield sz.soa_answer


def messages(req: TransferRequest) -> Iterator[bytes]:
    """The transfer as DNS messages, each repeating the question (RFC 5936 2.2.1 allows it)."""
    head_rest = req.question
    batch: list[bytes] = []
    size = 0
    for wire in records(req.zone) if req.body is None else req.body:
        if size + len(wire) > MESSAGE_BYTES and batch:
            yield _HDR.pack(req.query_id, 0x84, 0, 1, len(batch), 0, 0) + head_rest + b"".join(batch)
            batch, size = [], 0
        batch.append(wire)
        size += len(wire)
    yield _HDR.pack(req.query_id, 0x84, 0, 1, len(batch), 0, 0) + head_rest + b"".join(batch)
