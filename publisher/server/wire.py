"""The fast path: one ordinary query in, the answer's wire bytes out, no DNS library.

Inside the server: serving loops -> `fast()` (here) -> `slow.handle()` for whatever this
path declines. It takes the common case only: opcode QUERY, QR clear, one question of
class IN, no answer/authority records, at most one OPT (EDNS version 0) and nothing
after it. It walks the name's labels by hand, lower-cases once for the lookup, echoes
the question bytes as received (0x20 case kept), and builds the reply from records the
`ServedZone` prebuilt: owners are compression pointers to the question name (0xC00C)
or to the zone apex inside it. It returns None to decline; it never drops on its own.

The answer contract is docs/design.md, "Answer semantics"; `classify` is the one place that decides
listed / empty non-terminal / NXDOMAIN, shared with the slow path.
"""

from __future__ import annotations

import re
import struct
from bisect import bisect_right

from publisher.addresses import (
    V4_MAPPED_END,
    V4_MAPPED_START,
    format_v4,
    format_v6,
    labels_to_v4,
    labels_to_v6,
    partial_v4,
    partial_v6,
)
from publisher.server.stats import LISTED, NO_ZONE, NODATA, NOT_LISTED, OTHER, REFUSED, Counters
from publisher.server.zoneset import Prebuilt, ServedZone, ZoneSet

#: Our EDNS UDP payload size (DNS flag day 2020: no fragmentation).
UDP_MAX = 1232
TCP_MAX = 65535
NOERROR, FORMERR_RC, SERVFAIL_RC, NXDOMAIN, NOTIMP_RC, REFUSED_RC = 0, 1, 2, 3, 4, 5

_HDR = struct.Struct(">2sBBHHHH")
#: Compression pointers to every offset a question name can reach.
PTR = tuple((0xC000 | i).to_bytes(2, "big") for i in range(512))
_COUNTS = {b"\x00\x01\x00\x00\x00\x00\x00\x00": 0, b"\x00\x01\x00\x00\x00\x00\x00\x01": 1}
#: qtype+qclass bytes of the types with their own handling (class IN).
_QT = {struct.pack(">HH", t, 1): t for t in (1, 2, 6, 16, 28, 255)}
#: Meta types the fast path leaves to the slow path (OPT, TKEY, TSIG, IXFR, AXFR).
_META = frozenset((41, 249, 250, 251, 252))
_OPT_PLAIN = b"\x00\x00\x29" + UDP_MAX.to_bytes(2, "big") + b"\x00\x00\x00\x00\x00\x00"
_OPT_DO = b"\x00\x00\x29" + UDP_MAX.to_bytes(2, "big") + b"\x00\x00\x80\x00\x00\x00"
#: A decimal octet label with its length byte (b"\x03192") -> its value.
_DEC2 = {bytes((len(str(i)),)) + str(i).encode(): i for i in range(256)}

# classify() results
S_LISTED, S_NXDOMAIN, S_ENT, S_APEX, S_EXTRA = range(5)


def classify(sz: ServedZone, labels: list[bytes]) -> tuple[int, int, bytes]:
    """(status, answer index, text for SUBST) of the lower-case `labels` below `sz`'s apex."""
    k = len(labels)
    if k == 0:
        return S_APEX, -1, b""
    zone = sz.zone
    if sz.kind_ip:
        texts = [label.decode("latin-1") for label in labels]
        if k == 4:
            addr = labels_to_v4(texts)
            if addr is not None and (idx := zone.lookup_v4(addr)) >= 0:
                return S_LISTED, idx, b".".join(reversed(labels))
        elif k == 32:
            addr = labels_to_v6(texts)
            if addr is not None and (idx := zone.lookup_v6(addr)) >= 0:
                # An IPv4-mapped name answers from the IPv4 data, so its TXT names the IPv4
                # address, as the zone file (render) and `publisher lookup` do.
                if V4_MAPPED_START <= addr <= V4_MAPPED_END:
                    return S_LISTED, idx, format_v4(addr - V4_MAPPED_START).encode()
                return S_LISTED, idx, format_v6(addr).encode()
        # A shorter name is the block its labels prefix; it exists when anything below is listed.
        # Decimal and nibble readings can both apply ('1.0.0.1'), so either one suffices.
        block = partial_v4(texts)
        if block is not None and zone.v4_any_listed(*block):
            return S_ENT, -1, b""
        block = partial_v6(texts)
        if block is not None and zone.v6_any_listed(*block):
            return S_ENT, -1, b""
    else:
        joined = b".".join(labels)
        if joined.count(b".") == k - 1:  # a label holding a dot can match nothing
            name = joined.decode("latin-1")
            idx = zone.lookup_domain(name)
            if idx >= 0:
                return S_LISTED, idx, joined
            if zone.domain_is_ent(name):
                return S_ENT, -1, b""
    rel = b".".join(labels).decode("latin-1")
    if rel in sz.extra:
        return S_EXTRA, -1, rel.encode("latin-1")
    if rel in sz.extra_ents:
        return S_ENT, -1, b""
    return S_NXDOMAIN, -1, b""


def fast(zs: ZoneSet, data: bytes, tcp: bool, counts: Counters) -> bytes | None:
    """The reply to `data`, or None when the query is not the common case."""
    rx = zs.hot_v4
    m = rx.fullmatch(data) if rx is not None else None
    if m is None:
        rx = zs.hot_email
        m = rx.fullmatch(data) if rx is not None else None
        if m is not None:
            return _hashed(zs, m, data, tcp, counts)
        return _general(zs, data, tcp, counts)
    # d.c.b.a.ZONE A/TXT/ANY for an ip zone, the packet already validated by the regex.
    ar, ld, lc, lb, la, apex, qt, size, dflags, rdlen, options = m.groups()
    if size is None:
        if ar != b"\x00":
            return _general(zs, data, tcp, counts)
        edns, opt, limit = 0, b"", TCP_MAX if tcp else 512
    else:
        if ar != b"\x01" or len(options) != (rdlen[0] << 8) | rdlen[1]:
            return _general(zs, data, tcp, counts)
        edns = 1
        opt = _OPT_DO if dflags[0] & 0x80 else _OPT_PLAIN
        limit = TCP_MAX if tcp else min(max((size[0] << 8) | size[1], 512), UDP_MAX)
    sz = zs.hot_table[apex.lower()]
    zoff = 12 + len(ld) + len(lc) + len(lb) + len(la)
    qend = zoff + len(apex) + 5
    addr = (_DEC2[la] << 24) | (_DEC2[lb] << 16) | (_DEC2[lc] << 8) | _DEC2[ld]
    block = sz.v4_block
    h = addr >> 16
    i = bisect_right(sz.v4_start, addr, block[h], block[h + 1]) - 1
    f1 = 0x84 | (data[2] & 0x01)  # QR, AA, RD copied; never RA
    f2 = data[3] & 0x10  # CD copied
    if i >= 0 and sz.v4_end[i] >= addr:
        pb = sz.prebuilt(sz.v4_value[i])
        if qt == b"\x01":
            counts[sz.name][LISTED] += 1
            resp = _HDR.pack(data[:2], f1, f2, 1, pb.a_count, 0, edns) + data[12:qend] + pb.a_rrs + opt
            if len(resp) <= limit:
                return resp
            return _HDR.pack(data[:2], f1 | 0x02, f2, 1, 0, 0, edns) + data[12:qend] + opt
        subst = b"%s.%s.%s.%s" % (la[1:], lb[1:], lc[1:], ld[1:])
        qtype = 16 if qt == b"\x10" else 255
        return respond(sz, S_LISTED, pb, subst, qtype, data, qend, zoff, edns, opt, limit, counts[sz.name])
    if zoff != 20:  # unless all four labels are single nibbles, nothing lies below: NXDOMAIN
        counts[sz.name][NOT_LISTED] += 1
        return _HDR.pack(data[:2], f1, f2 | NXDOMAIN, 1, 0, 1, edns) + data[12:qend] + sz.neg_auth[zoff] + opt
    status, idx, subst = classify(sz, [ld[1:], lc[1:], lb[1:], la[1:]])
    qtype = {b"\x01": 1, b"\x10": 16}.get(qt, 255)
    found = sz.prebuilt(idx) if status == S_LISTED else None
    return respond(sz, status, found, subst, qtype, data, qend, zoff, edns, opt, limit, counts[sz.name])


def _hashed(zs: ZoneSet, m: re.Match[bytes], data: bytes, tcp: bool, counts: Counters) -> bytes | None:
    """`<label>[.<suffix>].ZONE` A/TXT/ANY of an email zone, matched by `ZoneSet.hot_email`: the
    label decoded and bisected (HashTable.label_index); not listed is NXDOMAIN (nothing lies below)."""
    ar, ln, label, rest, qt, size, dflags, rdlen, options = m.groups()
    if ln[0] != len(label):
        return _general(zs, data, tcp, counts)
    if size is None:
        if ar != b"\x00":
            return _general(zs, data, tcp, counts)
        edns, opt, limit = 0, b"", TCP_MAX if tcp else 512
    else:
        if ar != b"\x01" or len(options) != (rdlen[0] << 8) | rdlen[1]:
            return _general(zs, data, tcp, counts)
        edns = 1
        opt = _OPT_DO if dflags[0] & 0x80 else _OPT_PLAIN
        limit = TCP_MAX if tcp else min(max((size[0] << 8) | size[1], 512), UDP_MAX)
    sz = zs.hot_email_table[rest.lower()]
    qend = 18 + ln[0] + len(rest)
    zoff = qend - 5 - len(sz.key)
    idx = sz.hashes.wire_index(label)  # type: ignore[union-attr]
    f1 = 0x84 | (data[2] & 0x01)  # QR, AA, RD copied; never RA
    f2 = data[3] & 0x10  # CD copied
    if idx < 0:
        counts[sz.name][NOT_LISTED] += 1
        return _HDR.pack(data[:2], f1, f2 | NXDOMAIN, 1, 0, 1, edns) + data[12:qend] + sz.neg_auth[zoff] + opt
    pb = sz.prebuilt(idx)
    if qt == b"\x01":
        counts[sz.name][LISTED] += 1
        resp = _HDR.pack(data[:2], f1, f2, 1, pb.a_count, 0, edns) + data[12:qend] + pb.a_rrs + opt
        if len(resp) <= limit:
            return resp
        return _HDR.pack(data[:2], f1 | 0x02, f2, 1, 0, 0, edns) + data[12:qend] + opt
    qtype = 16 if qt == b"\x10" else 255
    return respond(sz, S_LISTED, pb, b"", qtype, data, qend, zoff, edns, opt, limit, counts[sz.name])


def _general(zs: ZoneSet, data: bytes, tcp: bool, counts: Counters) -> bytes | None:
    """Every other common query: the labels walked by hand, then `classify`."""
    parsed = parse_query(data, tcp)
    if parsed is None:
        return None
    offs, pos, qend, qtype, edns, opt, limit = parsed
    low = data.lower()
    nl = len(offs)
    for cnt, table in zs.by_count:
        if nl >= cnt:
            zoff = offs[nl - cnt]
            sz = table.get(low[zoff:pos])
            if sz is not None:
                break
    else:
        gate = zs.gate
        if gate is not None and gate.keyed:
            return None  # keyed zones are left out of by_count: the gate walks their names
        counts[NO_ZONE][REFUSED] += 1
        f1 = 0x80 | (data[2] & 0x01)
        return _HDR.pack(data[:2], f1, (data[3] & 0x10) | REFUSED_RC, 1, 0, 0, edns) + data[12:qend] + opt
    offs.append(zoff)
    status, idx, subst = classify(sz, [low[offs[i] + 1 : offs[i + 1]] for i in range(nl - cnt)])
    pb = sz.prebuilt(idx) if status == S_LISTED else None
    return respond(sz, status, pb, subst, qtype, data, qend, zoff, edns, opt, limit, counts[sz.name])


def parse_query(data: bytes, tcp: bool) -> tuple[list[int], int, int, int, int, bytes, int] | None:
    """(label offsets, end of the name, end of the question, qtype (0: other), EDNS 0/1, our OPT,
    size limit) of a plain query in the canonical layout; None when it is not one."""
    n = len(data)
    if n < 17 or data[2] & 0xF8:  # QR set or an opcode other than QUERY
        return None
    edns = _COUNTS.get(data[4:12])
    if edns is None:
        return None
    offs: list[int] = []
    app = offs.append
    pos = 12
    try:
        ln = data[12]
        while ln:
            if ln > 63:  # a compression pointer or an extended label in a question
                return None
            app(pos)
            pos += ln + 1
            ln = data[pos]
    except IndexError:
        return None
    if pos > 266:  # the name is longer than 255 bytes
        return None
    qend = pos + 5
    qtype = _QT.get(data[pos + 1 : qend])
    if qtype is None:
        if qend > n or data[pos + 3 : qend] != b"\x00\x01" or ((data[pos + 1] << 8) | data[pos + 2]) in _META:
            return None
        qtype = 0
    if edns:
        e = qend
        if (
            n < e + 11
            or data[e : e + 3] != b"\x00\x00\x29"
            or data[e + 6]  # EDNS version: anything but 0 gets BADVERS on the slow path
            or e + 11 + ((data[e + 9] << 8) | data[e + 10]) != n
        ):
            return None
        opt = _OPT_DO if data[e + 7] & 0x80 else _OPT_PLAIN
        limit = TCP_MAX if tcp else min(max((data[e + 3] << 8) | data[e + 4], 512), UDP_MAX)
    elif qend != n:
        return None
    else:
        opt = b""
        limit = TCP_MAX if tcp else 512
    return offs, pos, qend, qtype, edns, opt, limit


def respond(
    sz: ServedZone,
    status: int,
    pb: Prebuilt | None,
    subst: bytes,
    qtype: int,
    data: bytes,
    qend: int,
    zoff: int,
    edns: int,
    opt: bytes,
    limit: int,
    row: list[int],
) -> bytes:
    """The reply for a classified name: data, NXDOMAIN, NODATA, apex or name server host."""
    qid, question = data[:2], data[12:qend]
    f1 = 0x84 | (data[2] & 0x01)  # QR, AA, RD copied; never RA
    f2 = data[3] & 0x10  # CD copied
    if status == S_NXDOMAIN:
        row[NOT_LISTED] += 1
        return _HDR.pack(qid, f1, f2 | NXDOMAIN, 1, 0, 1, edns) + question + sz.neg_auth[zoff] + opt
    an = add = b""
    anc = arc = 0
    cat = OTHER
    if pb is not None:
        cat = LISTED
        if qtype == 1:
            an, anc = pb.a_rrs, pb.a_count
        elif qtype == 16:
            an, anc = pb.txt_rrs(subst), len(pb.txts)
        elif qtype == 255:
            an, anc = pb.a_rrs + pb.txt_rrs(subst), pb.a_count + len(pb.txts)
    elif status == S_APEX:
        if qtype == 6:
            an, anc = sz.soa_answer, 1
        elif qtype == 2 and sz.ns_count:
            an, anc, add, arc = sz.ns_answer, sz.ns_count, sz.glue, sz.glue_count
        elif qtype == 255:
            an, anc, add, arc = sz.soa_answer + sz.ns_answer, 1 + sz.ns_count, sz.glue, sz.glue_count
    elif status == S_EXTRA:
        a_rrs, a_n, aaaa_rrs, aaaa_n = sz.extra[subst.decode("latin-1")]
        if qtype == 1:
            an, anc = a_rrs, a_n
        elif qtype == 28:
            an, anc = aaaa_rrs, aaaa_n
        elif qtype == 255:
            an, anc = a_rrs + aaaa_rrs, a_n + aaaa_n
    if not anc:  # the name exists, the type does not: NODATA with the SOA (RFC 2308)
        row[NODATA] += 1
        return _HDR.pack(qid, f1, f2, 1, 0, 1, edns) + question + sz.neg_auth[zoff] + opt
    row[cat] += 1
    resp = _HDR.pack(qid, f1, f2, 1, anc, 0, arc + edns) + question + an + add + opt
    if len(resp) > limit:
        if not add or len(resp) - len(add) > limit:
            # Over UDP a cut RRset is worse than none: TC tells the client to retry over TCP.
            return _HDR.pack(qid, f1 | 0x02, f2, 1, 0, 0, edns) + question + opt
        resp = _HDR.pack(qid, f1, f2, 1, anc, 0, edns) + question + an + opt  # glue is optional
    return resp
