"""The slow path: every query the fast path declines, read by message.py (bounded).

Inside the server: serving loops -> wire.fast() -> here. Rare and unusual packets land
here: malformed ones (FORMERR when the 12-byte header is readable, dropped otherwise;
message.py refuses what it will not read before reading it),
replies (QR set: dropped, never answered, so two servers cannot ping-pong), unknown
opcodes (NOTIMP), NOTIFY (acknowledged from allowed addresses, REFUSED otherwise), EDNS
versions above 0 (BADVERS), other classes (REFUSED), TSIG-signed requests (verified by
tsig.py; their replies signed), a client ACL's drop and refuse for every QUERY (gate.py
answers the rest), AXFR/IXFR (a `TransferRequest` for the TCP loop to
stream, after the ACL check; an IXFR gets the kept differences from its serial, see
ixfr.py, or the single SOA when up to date, and over UDP when they do not fit), and
well-formed queries in an unusual layout, which are re-encoded in the canonical layout
and answered by the fast path so that the answer semantics live in one place.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import replace

from publisher.server import acl, ixfr, message, tsig
from publisher.server.gate import DROP
from publisher.server.gate import answer as gate_answer
from publisher.server.gate import verdict as gate_verdict
from publisher.server.ratelog import Throttle
from publisher.server.stats import DENIED, FORMERR, NO_ZONE, OTHER, REFUSED, Counters, bump
from publisher.server.wire import FORMERR_RC, NOTIMP_RC, REFUSED_RC, SERVFAIL_RC, UDP_MAX, fast
from publisher.server.xfr import TransferRequest
from publisher.server.zoneset import ServedZone, ZoneSet

log = logging.getLogger("publisher.server")
#: Refused transfers: an IXFR over UDP can come from a spoofed address, so one warning a second at most.
TRANSFER_REFUSALS = Throttle(log)
#: IXFRs answered over UDP: the same spoofing concern, so at most one line a second.
UDP_TRANSFERS = Throttle(log)
#: Bytes kept free for the TSIG record when a signed IXFR answer must fit one UDP message.
TSIG_ROOM = 256

OPCODE_QUERY, OPCODE_NOTIFY = message.OPCODE_QUERY, message.OPCODE_NOTIFY
QTYPE_SOA, QTYPE_OPT, QTYPE_IXFR, QTYPE_AXFR = 6, 41, 251, 252
NOTAUTH_RC = 9
BADVERS = 16
_HDR = struct.Struct(">2sBBHHHH")


def _opt(do: bool, ext_rcode: int = 0) -> bytes:
    return b"\x00\x00\x29" + struct.pack(">HBBHH", UDP_MAX, ext_rcode, 0, 0x8000 if do else 0, 0)


def reply(
    data: bytes, rcode: int, *, question: bytes = b"", aa: bool = False, opt: bytes = b"", tc: bool = False
) -> bytes:
    """A reply with no records: the opcode copied from `data`, the given question echoed.

    RD and CD are query flags (RFC 1035 4.1.1, RFC 4035 3.2.2): copied for QUERY only, so a
    NOTIFY ack or the NOTIMP for an unknown opcode carries QR and the opcode alone.
    """
    opcode = data[2] & 0x78
    query = opcode == OPCODE_QUERY << 3
    f1 = 0x80 | opcode | (data[2] & 0x01 if query else 0) | (0x04 if aa else 0) | (0x02 if tc else 0)
    f2 = (data[3] & 0x10 if query else 0) | (rcode & 0x0F)
    return _HDR.pack(data[:2], f1, f2, 1 if question else 0, 0, 0, 1 if opt else 0) + question + opt


def servfail(data: bytes) -> bytes | None:
    """SERVFAIL for a query whose answering failed; the question is echoed when it reads."""
    if len(data) < 12:
        return None
    return reply(data, SERVFAIL_RC, question=message.question_of(data))


def handle(zs: ZoneSet, data: bytes, client: str, tcp: bool, counts: Counters) -> bytes | TransferRequest | None:
    """The reply to an unusual packet, a transfer to stream, or None to drop it."""
    if len(data) < 12 or data[2] & 0x80:
        return None  # no header to answer, or a reply: never answer a reply
    try:
        msg = message.parse(data)
    except message.Malformed as exc:
        if message.opcode(data) not in (OPCODE_QUERY, OPCODE_NOTIFY):
            bump(counts, NO_ZONE, OTHER)
            return reply(data, NOTIMP_RC, question=message.question_of(data))
        bump(counts, NO_ZONE, FORMERR)
        return reply(data, FORMERR_RC, question=exc.question)
    signed = None
    tsig_at = [i for i, r in enumerate(msg.additional) if r.rtype == message.TYPE_TSIG]
    if tsig_at:
        got = (
            tsig.verify(data, zs.tsig, lambda rc: reply(data, rc, question=msg.question), client)
            if tsig_at == [len(msg.additional) - 1]  # RFC 8945 5.1: one TSIG, the very last record
            else b""
        )
        if isinstance(got, bytes):
            bump(counts, NO_ZONE, FORMERR if not got else REFUSED)
            return got or reply(data, FORMERR_RC)
        signed = got
    resp = _answer(zs, data, msg, client, tcp, counts, signed)
    if signed is None or resp is None:
        return resp
    if isinstance(resp, TransferRequest):
        return replace(resp, signed=signed)
    # Every reply to a signed request is signed (RFC 8945 5.3), within the UDP size it allows.
    out, _ = tsig.sign(resp, signed)
    if not tcp and len(out) > _udp_limit(msg):
        cut = reply(data, resp[3] & 0x0F, question=msg.question, aa=bool(resp[2] & 0x04), tc=True)
        out, _ = tsig.sign(cut, signed)
    return out


def _udp_limit(msg: message.Message) -> int:
    opt = msg.opt
    return min(max(opt.rclass, 512), UDP_MAX) if opt is not None else 512


def _answer(
    zs: ZoneSet,
    data: bytes,
    msg: message.Message,
    client: str,
    tcp: bool,
    counts: Counters,
    signed: tsig.Signed | None,
) -> bytes | TransferRequest | None:
    """`handle` after the TSIG check: `signed` is the verified signer, if the request had one."""
    key = signed.key_name if signed is not None else None
    opts = [r for r in msg.additional if r.rtype == message.TYPE_OPT]
    question = msg.question
    if len(opts) > 1 or (opts and opts[0].labels):
        bump(counts, NO_ZONE, FORMERR)
        return reply(data, FORMERR_RC, question=question)
    opt_rr = opts[0] if opts else None
    do = bool(opt_rr is not None and opt_rr.ttl & 0x8000)
    opt = _opt(do) if opt_rr is not None else b""
    if opt_rr is not None and (opt_rr.ttl >> 16) & 0xFF:
        # RFC 6891 6.1.3: BADVERS is extended rcode 16: 1 in the OPT's upper bits, 0 in the header.
        bump(counts, NO_ZONE, FORMERR)
        return reply(data, 0, question=question, opt=_opt(do, BADVERS >> 4))
    if msg.opcode not in (OPCODE_QUERY, OPCODE_NOTIFY):
        bump(counts, NO_ZONE, OTHER)
        return reply(data, NOTIMP_RC, question=question, opt=opt)
    qname = b".".join(msg.labels).decode("latin-1")
    found = zs.find(qname)
    gate = zs.gate
    if gate is not None and msg.opcode == OPCODE_QUERY:
        # The client ACL's drop and refuse hold for every QUERY, transfers included.
        action = gate_verdict(zs, client, found[0].name if found is not None else None)
        if action == acl.REFUSE and msg.qtype in (QTYPE_AXFR, QTYPE_IXFR) and found is not None:
            # Logged like a transfer allow_transfer refuses (at most a line a second: spoofable).
            # A drop stays silent, as if nothing had come (counted as denied).
            TRANSFER_REFUSALS.event(
                logging.WARNING, "%s of %s refused to %s: the client ACL refuses it",
                "AXFR" if msg.qtype == QTYPE_AXFR else "IXFR", found[0].name, client,
            )  # fmt: skip
        if action == acl.DROP:
            bump(counts, found[0].name if found is not None else NO_ZONE, DENIED)
            return None
        if action == acl.REFUSE:
            bump(counts, found[0].name if found is not None else NO_ZONE, REFUSED)
            return reply(data, REFUSED_RC, question=question, opt=opt)
    if msg.qclass != 1 or found is None:
        bump(counts, NO_ZONE, REFUSED)
        return reply(data, REFUSED_RC, question=question, opt=opt)
    sz, rel = found
    if msg.opcode == OPCODE_NOTIFY:
        if not sz.allows_transfer(client, key):
            # Debug only: spoofed NOTIFYs must not turn into a log flood.
            log.debug("notify for %s from %s refused: not a secondary nor in allow_transfer", sz.name, client)
            bump(counts, sz.name, REFUSED)
            return reply(data, REFUSED_RC, question=question, opt=opt)
        # We are the primary: a NOTIFY for our own zone needs no action, only an ack.
        log.info("notify for %s from %s ignored: this server is the primary", sz.name, client)
        bump(counts, sz.name, OTHER)
        return reply(data, 0 if rel == "" else NOTAUTH_RC, question=question, aa=True, opt=opt)
    if msg.qtype in (QTYPE_AXFR, QTYPE_IXFR):
        return _transfer(data, zs, sz, rel, msg, client, tcp, counts, opt, signed)
    if msg.qtype in (QTYPE_OPT, 249, 250):
        bump(counts, sz.name, FORMERR)
        return reply(data, FORMERR_RC, question=question, opt=opt)
    # A well-formed query in an odd layout (extra records, a compressed question, trailing
    # bytes): re-encode it canonically so the one fast path decides the answer.
    canonical = (
        _HDR.pack(data[:2], data[2] & 0x01, data[3] & 0x10, 1, 0, 0, 1 if opt_rr is not None else 0)
        + question
        + (b"\x00\x00\x29" + struct.pack(">HIH", opt_rr.rclass, opt_rr.ttl & 0x8000, 0) if opt_rr is not None else b"")
    )
    resp = fast(zs, canonical, tcp, counts) if gate is None else gate_answer(zs, canonical, tcp, counts, client)
    if resp is DROP:
        return None
    if resp is None:
        log.error("fast path declined a canonical query for %s from %s", qname, client)
        return servfail(data)
    return resp


def _transfer(
    data: bytes,
    zs: ZoneSet,
    sz: ServedZone,
    rel: str,
    msg: message.Message,
    client: str,
    tcp: bool,
    counts: Counters,
    opt: bytes,
    signed: tsig.Signed | None = None,
) -> bytes | TransferRequest:
    key = signed.key_name if signed is not None else None
    question = msg.question
    kind = "AXFR" if msg.qtype == QTYPE_AXFR else "IXFR"
    if rel:
        bump(counts, sz.name, REFUSED)
        return reply(data, NOTAUTH_RC, question=question, opt=opt)
    if not sz.allows_transfer(client, key):
        why = _transfer_refusal(sz, key)
        TRANSFER_REFUSALS.event(logging.WARNING, "%s of %s refused to %s: %s", kind, sz.name, client, why)
        bump(counts, sz.name, REFUSED)
        return reply(data, REFUSED_RC, question=question, opt=opt)
    bump(counts, sz.name, OTHER)
    who = client + (f" (TSIG {key})" if key else "")
    if msg.qtype == QTYPE_AXFR:
        if not tcp:  # RFC 5936: AXFR is TCP only
            return reply(data, FORMERR_RC, question=question, opt=opt)
        log.info("AXFR of %s serial %d to %s", sz.name, sz.serial, who)
        return TransferRequest(sz, data[:2], question)
    return _ixfr(data, sz, zs.ixfr.get(sz.name, ()), msg, who, tcp, opt, signed is not None)


def _transfer_refusal(sz: ServedZone, key: str | None) -> str:
    """Why allows_transfer said no, naming the key the request was signed with."""
    if key is not None and key.lower().rstrip(".") in sz.settings.transfer_keys:
        return f"signed with subscriber key {key}, which allow_transfer grants only from other networks"
    if key is not None:
        return f"signed with key {key}, which is neither a secondary's tsig_key nor a key in allow_transfer"
    why = "unsigned, and not in allow_transfer"
    if sz.settings.transfer_keys:
        why += " (a subscriber mirror must sign with its TSIG key)"
    if any(s.tsig_key for s in sz.settings.secondaries):
        why += " (or unsigned from a secondary that has a tsig_key)"
    return why


def _request_serial(msg: message.Message) -> int | None:
    """The serial of the SOA in an IXFR request's authority section (RFC 1995 section 3)."""
    asked = msg.records[: len(msg.records) - len(msg.additional)]
    soa = next((r for r in asked if r.rtype == QTYPE_SOA), None)
    return None if soa is None else int.from_bytes(soa.rdata[-20:-16], "big")


def _records_reply(data: bytes, question: bytes, records: tuple[bytes, ...], opt: bytes) -> bytes:
    head = _HDR.pack(data[:2], 0x84 | (data[2] & 0x01), data[3] & 0x10, 1, len(records), 0, 1 if opt else 0)
    return head + question + b"".join(records) + opt


def _ixfr(
    data: bytes,
    sz: ServedZone,
    steps: tuple[ixfr.Step, ...],
    msg: message.Message,
    who: str,
    tcp: bool,
    opt: bytes,
    signed: bool,
) -> bytes | TransferRequest:
    """RFC 1995: the differences from the client's serial, the SOA alone, or an AXFR."""
    question = msg.question
    serial = _request_serial(msg)
    soa_only = _records_reply(data, question, (sz.soa_answer,), opt)
    note = log.info if tcp else lambda *args: UDP_TRANSFERS.event(logging.INFO, *args)
    if serial == sz.serial:
        note("IXFR of %s serial %d to %s: up to date, answered with the SOA", sz.name, serial, who)
        return soa_only
    got = ixfr.plan(sz, steps, serial) if serial is not None else "the request carries no SOA"
    if isinstance(got, str):
        if not tcp:  # RFC 1995 section 2: the SOA alone tells the client to ask over TCP
            return soa_only
        log.info("IXFR of %s to %s: AXFR fallback (%s), serial %d", sz.name, who, got, sz.serial)
        return TransferRequest(sz, data[:2], question)
    how = f"{got.steps} difference{'s' if got.steps > 1 else ''}{', condensed' if got.condensed else ''}"
    if not tcp:
        out = _records_reply(data, question, got.records, opt)
        if len(out) + (TSIG_ROOM if signed else 0) > _udp_limit(msg):
            return soa_only  # RFC 1995 section 2: too big for UDP, the client retries over TCP
        note("IXFR of %s serial %d -> %d to %s over UDP: %s, %d records", sz.name, serial, sz.serial, who, how,
             len(got.records))  # fmt: skip
        return out
    log.info("IXFR of %s serial %d -> %d to %s: %s, %d records", sz.name, serial, sz.serial, who, how, len(got.records))
    return TransferRequest(sz, data[:2], question, body=got.records)
