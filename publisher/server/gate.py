"""The query path when a client ACL or a keyed zone exists: who may query, then wire.fast().

Inside the server: serving loops -> `Gate.answer` (only when `ZoneSet.gate` is set; else
straight to wire.fast()) -> wire.fast() / the walk here -> slow.handle() for what both
decline. ZoneSet.build makes the gate once per load and None when no ACL restricts anyone
and no zone is keyed, so an ordinary server pays one attribute test per datagram.

A client whose every ACL says `pass` goes to wire.fast() as before (keyed zones are not in
its tables, so it never answers one); a `d.c.b.a.KEY.ZONE` query of a keyed ip zone is
matched by one regex like the hot query and its key checked. Everything else (a client an
ACL restricts, a keyed zone's other names) is walked here: the zone found, the client's
verdict for it applied, the key label checked and stripped, and the name answered by
wire.classify/wire.respond exactly as the unkeyed name would be, the question echoed with
its key. `DROP` means "send nothing", never to be mixed up with the fast path's None
("decline: ask the slow path"). docs/design.md, "Who may query", is the contract.
"""

from __future__ import annotations

import enum
import re
import struct
from bisect import bisect_right
from collections.abc import Callable
from typing import Final

from publisher import errorcodes
from publisher.server.acl import ANSWER, EMPTY, PASSED, REFUSE, Client, client_key
from publisher.server.keys import NEEDS_CHECK
from publisher.server.mmsg import NAME, sockaddr_to_tuple
from publisher.server.stats import DENIED, LISTED, NO_ZONE, NOT_LISTED, REFUSED, Counters
from publisher.server.wire import (
    NXDOMAIN,
    REFUSED_RC,
    S_ENT,
    S_LISTED,
    TCP_MAX,
    UDP_MAX,
    classify,
    fast,
    parse_query,
    respond,
)
from publisher.server.zoneset import Gate, ServedZone, ZoneSet, rr, txt_rdata


class Drop(enum.Enum):
    """The gate's "send nothing" (an ACL `drop`): distinct from None, the fast path's "decline"."""

    DROP = "drop"


DROP: Final = Drop.DROP
ERROR_TTL = errorcodes.TTL
_HDR = struct.Struct(">2sBBHHHH")
_OPT_PLAIN = b"\x00\x00\x29" + UDP_MAX.to_bytes(2, "big") + b"\x00\x00\x00\x00\x00\x00"
_OPT_DO = b"\x00\x00\x29" + UDP_MAX.to_bytes(2, "big") + b"\x00\x00\x80\x00\x00\x00"
_DEC2 = {bytes((len(str(i)),)) + str(i).encode(): i for i in range(256)}
_A_HEAD = b"\xc0\x0c\x00\x01\x00\x01" + struct.pack(">IH", ERROR_TTL, 4)


def verdict(zs: ZoneSet, client: str, zone: str | None) -> int:
    """The ACL action (acl.PASS ... acl.DROP) for `client` in `zone` (None: outside every zone)."""
    assert zs.gate is not None
    tables = zs.gate.tables
    return int(tables.client(client).verdicts[tables.index.get(zone, 0) if zone else 0].action)


def answer(zs: ZoneSet, data: bytes, tcp: bool, counts: Counters, key: bytes | str | memoryview) -> bytes | None | Drop:
    """The reply, None to decline (slow path), or DROP. `key`: acl.client_key bytes or address
    text; under an open gate (`Gate.open`) also the sender's raw sockaddr."""
    g = zs.gate
    assert g is not None  # the callers come here only when the zone set has a gate
    client = None
    if not g.open:
        # Under an open gate (no ACL restricts anyone: keyed zones only) the client matters only
        # to a key with networks, so it is looked up then and not before.
        client = g.tables.cache.get(key) if not isinstance(key, memoryview) else None
        if client is None:
            client = g.tables.client(key)
        u = client.uniform
        if u is not PASSED:
            if u is not None and u.action > REFUSE:
                counts[NO_ZONE][DENIED] += 1
                return DROP
            return _walk(zs, g, data, tcp, counts, client)
    # Every ACL passes this client.
    rx = g.keyed_rx
    m = rx.fullmatch(data) if rx is not None else None
    if m is not None:
        resp = _keyed_hot(zs, g, m, data, tcp, counts, key)
        if resp is not None:
            return resp
    if g.fast_ok:
        resp = fast(zs, data, tcp, counts)
        if resp is not None:
            return resp
    return _walk(zs, g, data, tcp, counts, client if client is not None else g.tables.client(key))


def batch_answerer(
    zs: ZoneSet,
    counts: Counters,
    failed: Callable[[bytes, tuple[str, int]], bytes | None],
    slow: Callable[[bytes, tuple[str, int]], bytes | None],
) -> Callable[[bytes, memoryview, int], bytes | None]:
    """The batched UDP loop's whole answer to one datagram (its sender's sockaddr in the batch's buffer) under
    `zs`'s gate: built once per batch, so a keyed query goes from the loop to its key check
    without a layer between. `failed` answers an internal error, `slow` what the gate declines;
    None: send nothing (a drop, or nothing to say)."""
    g = zs.gate
    assert g is not None
    rx = g.keyed_rx.fullmatch if g.open and g.keyed_rx is not None else None
    opened = g.open

    def one(data: bytes, names: memoryview, at: int) -> bytes | None:
        try:
            if rx is not None and (m := rx(data)) is not None:
                resp = _keyed_hot(zs, g, m, data, False, counts, None)
                if resp is not None:
                    return resp
            raw = names[at : at + NAME]
            got = answer(zs, data, False, counts, raw if opened else client_key(raw))
        except Exception:  # noqa: BLE001 - an internal error answers SERVFAIL (`failed` logs it)
            return failed(data, sockaddr_to_tuple(names[at : at + NAME].tobytes()))
        if got is DROP:
            return None
        return got if got is not None else slow(data, sockaddr_to_tuple(names[at : at + NAME].tobytes()))

    return one


def _keyed_hot(
    zs: ZoneSet,
    g: Gate,
    m: re.Match[bytes],
    data: bytes,
    tcp: bool,
    counts: Counters,
    who: bytes | str | memoryview | None,
) -> bytes | None:
    """d.c.b.a.KEY.ZONE of a keyed ip zone for a client every ACL passes; None: walk it instead.

    `who` is the client's cache key (acl.client_key bytes, address text or raw sockaddr),
    resolved only for a key with limits (keys.AccessKeys.quick says so); None: decline such a key
    (nothing counted), for the caller to ask again with the client."""
    ar, ld, lc, lb, la, klen, key, apex, qt, size, dflags, rdlen, options = m.groups()
    if size is None:
        if ar != b"\x00" or len(key) != klen[0]:
            return None
        edns, opt, limit = 0, b"", TCP_MAX if tcp else 512
    else:
        if ar != b"\x01" or len(key) != klen[0] or len(options) != (rdlen[0] << 8) | rdlen[1]:
            return None  # an odd EDNS layout, as fast() hands it on
        edns = 1
        opt = _OPT_DO if dflags[0] & 0x80 else _OPT_PLAIN
        limit = TCP_MAX if tcp else min(max((size[0] << 8) | size[1], 512), UDP_MAX)
    sz = g.keyed_table[apex.lower()]
    keys = zs.access_keys
    err = keys.quick(key) if keys is not None else errorcodes.KEY_UNKNOWN
    aoff = 12 + len(ld) + len(lc) + len(lb) + len(la)
    zoff = aoff + 1 + len(key)
    qend = zoff + len(apex) + 5
    qtype = 1 if qt == b"\x01" else 16 if qt == b"\x10" else 255
    row = counts[sz.name]
    if err is not None:
        if err is NEEDS_CHECK:
            if who is None:
                return None  # the batched loop's first try: answer() asks again with the client
            client = g.tables.client(who)
            err = keys.check(key.lower(), sz.name, client.family, client.addr)
        if err is not None:
            return _error(g, sz, err.code, err.txt, None, qtype, data, qend, zoff, edns, opt, limit, row)
    addr = (_DEC2[la] << 24) | (_DEC2[lb] << 16) | (_DEC2[lc] << 8) | _DEC2[ld]
    block = sz.v4_block
    h = addr >> 16
    i = bisect_right(sz.v4_start, addr, block[h], block[h + 1]) - 1
    f1 = 0x84 | (data[2] & 0x01)  # QR, AA, RD copied; never RA
    f2 = data[3] & 0x10  # CD copied
    if i >= 0 and sz.v4_end[i] >= addr:
        pb = sz.prebuilt(sz.v4_value[i])
        if qtype == 1:
            row[LISTED] += 1
            resp = _HDR.pack(data[:2], f1, f2, 1, pb.a_count, 0, edns) + data[12:qend] + pb.a_rrs + opt
            if len(resp) <= limit:
                return resp
            return _HDR.pack(data[:2], f1 | 0x02, f2, 1, 0, 0, edns) + data[12:qend] + opt
        subst = b"%s.%s.%s.%s" % (la[1:], lb[1:], lc[1:], ld[1:])
        return respond(sz, S_LISTED, pb, subst, qtype, data, qend, zoff, edns, opt, limit, row)
    if aoff != 20:  # not four one-character labels: nothing lies below, NXDOMAIN
        row[NOT_LISTED] += 1
        return _HDR.pack(data[:2], f1, f2 | NXDOMAIN, 1, 0, 1, edns) + data[12:qend] + sz.neg_auth[zoff] + opt
    status, idx, subst = classify(sz, [ld[1:], lc[1:], lb[1:], la[1:]])
    found = sz.prebuilt(idx) if status == S_LISTED else None
    return respond(sz, status, found, subst, qtype, data, qend, zoff, edns, opt, limit, row)


def _walk(zs: ZoneSet, g: Gate, data: bytes, tcp: bool, counts: Counters, client: Client) -> bytes | None | Drop:
    """Any plain query: its zone found, the client's verdict applied, the key checked."""
    parsed = parse_query(data, tcp)
    if parsed is None:
        return None
    offs, pos, qend, qtype, edns, opt, limit = parsed
    low = data.lower()
    nl = len(offs)
    for cnt, table in g.by_count:
        if nl >= cnt:
            zoff = offs[nl - cnt]
            sz = table.get(low[zoff:pos])
            if sz is not None:
                break
    else:
        verdict = client.verdicts[0]
        if verdict.action > REFUSE:
            counts[NO_ZONE][DENIED] += 1
            return DROP
        counts[NO_ZONE][REFUSED] += 1
        return _refused(data, qend, edns, opt)
    row = counts[sz.name]
    verdict = client.verdicts[g.tables.index[sz.name]]
    action = verdict.action
    if action > REFUSE:
        row[DENIED] += 1
        return DROP
    if action == REFUSE:
        row[REFUSED] += 1
        return _refused(data, qend, edns, opt)
    offs.append(zoff)
    labels = [low[offs[i] + 1 : offs[i + 1]] for i in range(nl - cnt)]
    rel = b".".join(labels).decode("latin-1")
    if labels and rel not in sz.extra and rel not in sz.extra_ents:
        # A data name (the apex and the name servers' own names answer as usual).
        if action == EMPTY:
            row[DENIED] += 1
            f1 = 0x84 | (data[2] & 0x01)
            head = _HDR.pack(data[:2], f1, (data[3] & 0x10) | NXDOMAIN, 1, 0, 1, edns)
            return head + data[12:qend] + sz.neg_auth[zoff] + opt
        if action == ANSWER:
            return _error(g, sz, verdict.code, verdict.txt, client, qtype, data, qend, zoff, edns, opt, limit, row)
        if sz.keyed:
            keys = zs.access_keys
            key = labels.pop()
            # Any label is looked up, a missing key (d.c.b.a.ZONE: `a` taken for the key) too,
            # so every query without a good key counts as unknown in the key counters.
            err = keys.check(key, sz.name, client.family, client.addr) if keys is not None else errorcodes.KEY_UNKNOWN
            if err is not None:
                return _error(g, sz, err.code, err.txt, client, qtype, data, qend, zoff, edns, opt, limit, row)
            if not labels:  # KEY.ZONE itself: an empty non-terminal, not a second apex (QNAME minimisation)
                return respond(sz, S_ENT, None, b"", qtype, data, qend, zoff, edns, opt, limit, row)
    status, idx, subst = classify(sz, labels)
    pb = sz.prebuilt(idx) if status == S_LISTED else None
    return respond(sz, status, pb, subst, qtype, data, qend, zoff, edns, opt, limit, row)


def _error(
    g: Gate,
    sz: ServedZone,
    code: int,
    txt: str,
    client: Client | None,
    qtype: int,
    data: bytes,
    qend: int,
    zoff: int,
    edns: int,
    opt: bytes,
    limit: int,
    row: list[int],
) -> bytes:
    """An error answer: A the code, TXT the text, TTL 60, AA; other types NODATA; never NXDOMAIN."""
    row[DENIED] += 1
    got = g.errors.get((code, txt))
    if got is None:
        if "{client}" in txt and client is not None:
            got = (_A_HEAD + code.to_bytes(4, "big"), _txt_rr(txt.replace("{client}", client.text)))
        else:
            got = g.errors[(code, txt)] = (_A_HEAD + code.to_bytes(4, "big"), _txt_rr(txt))
    a_rr, t_rr = got
    an, anc = (a_rr, 1) if qtype == 1 else (t_rr, 1) if qtype == 16 else (a_rr + t_rr, 2) if qtype == 255 else (b"", 0)
    f1 = 0x84 | (data[2] & 0x01)
    f2 = data[3] & 0x10
    if not anc:
        return _HDR.pack(data[:2], f1, f2, 1, 0, 1, edns) + data[12:qend] + sz.neg_auth[zoff] + opt
    resp = _HDR.pack(data[:2], f1, f2, 1, anc, 0, edns) + data[12:qend] + an + opt
    if len(resp) > limit:
        return _HDR.pack(data[:2], f1 | 0x02, f2, 1, 0, 0, edns) + data[12:qend] + opt
    return resp


def _txt_rr(text: str) -> bytes:
    return rr(b"\xc0\x0c", 16, ERROR_TTL, txt_rdata(text.encode("utf-8")))


def _refused(data: bytes, qend: int, edns: int, opt: bytes) -> bytes:
    """REFUSED, AA clear, the question echoed."""
    return (
        _HDR.pack(data[:2], 0x80 | (data[2] & 0x01), (data[3] & 0x10) | REFUSED_RC, 1, 0, 0, edns) + data[12:qend] + opt
    )


__all__ = ["DROP", "Drop", "answer", "batch_answerer", "verdict"]
