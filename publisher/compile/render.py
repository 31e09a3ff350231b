"""CompiledZone -> the record stream (AXFR), a BIND master file and an rbldnsd data file.

Pure: the callers (publish.artifacts, server.xfr) open the files or sockets. The BIND
file and the AXFR stream are the same data (`iter_records` is what both are made of);
the rbldnsd file is the same listing in rbldnsd's own `combined` format, served with
the same answers except for KNOWN_RBLDNSD_DIFFERENCES.

What a DNS zone can and cannot say (see `publisher.compile.render_names` for the owner
names): CIDRs become wildcards only where that is exact, IPv6 and IPv4 names must
never catch each other's queries, and a wildcard cannot echo the queried name, so
its TXT carries the network (`203.0.113.0/24`) or the wildcard (`*.spam.example`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import TextIO

from publisher.addresses import TEST_LISTED_V4, V4_MAPPED_START, format_v4, parse_addr
from publisher.compile.hashes import HashTable
from publisher.compile.render_names import (
    OCTETS,
    Group,
    domain_groups,
    excluded_but_matched,
    v4_groups,
    v4_interval_groups,
    v4_text,
    v6_cidrs,
    v6_groups,
)
from publisher.compile.zone import Answer, CompiledZone
from publisher.model import SUBST

RBLDNSD_DATASET_TYPE = "combined"
"""The rbldnsd dataset type of our `.rbldnsd` files: one file carries everything.

A `combined` file holds `$SOA`/`$NS`/`$TTL` for the base zone and nested datasets,
all attached to the base zone (`@`): `ip4set` (IPv4 ranges; several lines with the
same range return every value), one `ip6trie` per code position (an ip6trie keeps
one value per prefix, and rbldnsd returns the answers of all datasets of a zone),
`dnset` (domains, `!` exclusions exact) and `generic` (glue A records). Serve it with

    rbldnsd -n -b 127.0.0.1/5353 bl.example.test:combined:zones/bl.example.test.rbldnsd

(`rbldnsd_zone_arg` builds the `zone:combined:file` argument).
"""

KNOWN_RBLDNSD_DIFFERENCES = (
    "Empty non-terminals (e.g. 0.0.127.ZONE, or example for a listed spam.example): "
    "rbldnsd answers NXDOMAIN where the publisher answers NOERROR with no data.",
    "6to4 names (2002:V4ADDR::/48): rbldnsd also answers them from the IPv4 data; the "
    "publisher answers them from the IPv6 data only.",
    "Non-canonical IPv4 labels (04.2.0.192.ZONE): rbldnsd reads them as numbers and "
    "answers; the publisher answers NXDOMAIN.",
    "Domain wildcards: rbldnsd puts the wildcard's base name into the TXT ($ = "
    "spam.example for a query of a.spam.example); the publisher puts the queried name.",
    "TXT longer than 254 bytes is truncated to 254 by rbldnsd; the publisher sends it whole "
    "in several character-strings.",
    "Leading and trailing blanks of a TXT are dropped by rbldnsd (a text of blanks only gives "
    "no TXT record); line breaks and other control characters are written as spaces in the "
    "rbldnsd file.",
    "IPv4-compatible IPv6 addresses (::a.b.c.d): rbldnsd writes them in hex in the TXT "
    "($ = ::102:304), the publisher in dotted form (::1.2.3.4).",
    "Glue AAAA records of in-zone name servers: rbldnsd cannot serve them (its generic dataset has A records only).",
)
"""What a real rbldnsd answers differently from the publisher for the same file."""


def rbldnsd_zone_arg(zone_name: str, path: str) -> str:
    """The `zone:type:file` command-line argument that makes rbldnsd serve our file."""
    return f"{zone_name}:{RBLDNSD_DATASET_TYPE}:{path}"


@dataclass(frozen=True, slots=True)
class Record:
    """One resource record. rdata: A/AAAA int, TXT str (whole text), NS str, SOA tuple."""

    owner: str  # fully qualified, lower case, no trailing dot
    rtype: str  # 'SOA', 'NS', 'A', 'AAAA' or 'TXT'
    ttl: int
    rdata: object


def _strip(name: str) -> str:
    return name.rstrip(".").lower()


def ns_names(zone: CompiledZone) -> list[str]:
    """The apex NS names; a zone configured without any gets its SOA MNAME (a zone needs one)."""
    names = [_strip(ns.name) for ns in zone.info.ns]
    return names or [_strip(zone.info.soa.mname)]


def _glue(zone: CompiledZone) -> list[tuple[str, int, int]]:
    """(relative owner, family, address) for NS names inside the zone."""
    apex = zone.name
    out: list[tuple[str, int, int]] = []
    for ns in zone.info.ns:
        name = _strip(ns.name)
        if name == apex:
            rel = ""
        elif name.endswith("." + apex):
            rel = name[: -len(apex) - 1]
        else:
            continue  # out-of-zone glue is not ours to serve
        for text in ns.addresses:
            family, addr = parse_addr(text)
            out.append((rel, family, addr))
    return out


def _v6_test_point(zone: CompiledZone) -> tuple[int, int] | None:
    """(address, answer) of ::ffff:127.0.0.2 for ip zones: mapped names answer from IPv4."""
    if zone.info.kind != "ip":
        return None
    idx = zone.lookup_v4(TEST_LISTED_V4)
    return None if idx < 0 else (V4_MAPPED_START + TEST_LISTED_V4, idx)


def _data_groups(zone: CompiledZone) -> Iterator[Group]:
    yield from v4_groups(zone)
    yield from v6_groups(zone, _v6_test_point(zone))
    yield from domain_groups(zone)


def _fqdn(rel: str, apex: str) -> str:
    return f"{rel}.{apex}" if rel else apex


def iter_records(zone: CompiledZone) -> Iterator[Record]:
    """Every record of the zone in zone-file order: SOA, NS, glue, then the data."""
    info, apex, ttl = zone.info, zone.name, zone.info.ttl
    soa = info.soa
    yield Record(
        apex,
        "SOA",
        ttl,
        (_strip(soa.mname), _strip(soa.rname), info.serial, soa.refresh, soa.retry, soa.expire, soa.minimum),
    )
    for name in ns_names(zone):
        yield Record(apex, "NS", ttl, name)
    for rel, family, addr in _glue(zone):
        yield Record(_fqdn(rel, apex), "A" if family == 4 else "AAAA", ttl, addr)
    answers = zone.answers
    for rel, idx, subst in _data_groups(zone):
        owner = _fqdn(rel, apex)
        answer = answers[idx]
        for code in answer.codes:
            yield Record(owner, "A", ttl, code)
        for txt in answer.distinct_txts:
            yield Record(owner, "TXT", ttl, txt.replace(SUBST, subst))


# --- BIND master file ---------------------------------------------------------------

# Zone-file escaping of TXT bytes: printable ASCII as is, '"' and '\' escaped, others \DDD.
_ESC = [chr(b) if 0x20 <= b < 0x7F and b not in (0x22, 0x5C) else f"\\{b:03d}" for b in range(256)]
_ESC[0x22], _ESC[0x5C] = '\\"', "\\\\"


def _quote(data: bytes) -> str:
    return '"' + "".join([_ESC[b] for b in data]) + '"'


def txt_strings(text: str) -> list[bytes]:
    """A TXT text as DNS character-strings: its UTF-8 cut into pieces of at most 255 bytes."""
    data = text.encode("utf-8")
    return [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]


class _BindBlocks:
    """The text of one owner's records per answer, with SUBST left in for the address.

    Escaping happens once per answer, not per record; only when a TXT might exceed
    one character-string after substitution is it rebuilt per record.
    """

    def __init__(self, answers: tuple[Answer, ...]) -> None:
        self._answers = answers
        self._cache: dict[tuple[int, int], str | None] = {}
        self._fast: dict[int, list[str] | None] = {}

    def template(self, idx: int, subst_len: int) -> str | None:
        key = (idx, subst_len)
        if key not in self._cache:
            self._cache[key] = self._build(self._answers[idx], subst_len)
        return self._cache[key]

    @staticmethod
    def _build(answer: Answer, subst_len: int) -> str | None:
        lines = [f"\tA\t{format_v4(code)}\n" for code in answer.codes]
        for txt in answer.distinct_txts:
            parts = txt.split(SUBST)
            if sum(len(p.encode("utf-8")) for p in parts) + (len(parts) - 1) * subst_len > 255:
                return None
            escaped = SUBST.join(_quote(p.encode("utf-8"))[1:-1] for p in parts)
            lines.append(f'\tTXT\t"{escaped}"\n')
        return "".join(lines)

    def fast(self, idx: int) -> list[str] | None:
        """The block of answer `idx` split at SUBST, when it fits any IPv4 text (at most 15 bytes)."""
        parts = self._fast.get(idx, 0)
        if parts == 0:
            tmpl = self.template(idx, 15)
            parts = self._fast[idx] = None if tmpl is None else tmpl.split(SUBST)
        return parts  # type: ignore[return-value]

    def block(self, rel: str, idx: int, subst: str) -> str:
        tmpl = self.template(idx, len(subst))
        if tmpl is None:  # long TXT: cut the substituted text into character-strings
            answer = self._answers[idx]
            lines = [f"\tA\t{format_v4(code)}\n" for code in answer.codes]
            for txt in answer.distinct_txts:
                strings = " ".join(_quote(s) for s in txt_strings(txt.replace(SUBST, subst)))
                lines.append(f"\tTXT\t{strings}\n")
            tmpl = "".join(lines)
        else:
            tmpl = tmpl.replace(SUBST, subst)
        return (rel or "@") + tmpl


_CHUNK = 8192  # groups per out.write: few calls, bounded memory


def bind_head(zone: CompiledZone) -> str:
    """The master file up to the first data record: comments, $ORIGIN, $TTL, SOA, NS, glue."""
    info, apex = zone.info, zone.name
    soa = info.soa
    head = [
        f"; {apex} serial {info.serial}, written by the publisher from its compiled zone.\n"
        "; Listed names answer one A per return code and one TXT per A. DNS wildcards\n"
        "; cannot echo the queried name, so the TXT of a wildcard record carries the\n"
        "; network in CIDR notation (203.0.113.0/24) or the wildcard (*.spam.example)\n"
        "; where the publisher's own server puts the queried address or domain.\n"
        "; IPv4-mapped IPv6 names (::ffff:a.b.c.d) other than the RFC 5782 test point\n"
        "; are not written here; the publisher's server answers them from the IPv4 data.\n"
        f"$ORIGIN {apex}.\n$TTL {info.ttl}\n"
        f"@\tSOA\t{_strip(soa.mname)}. {_strip(soa.rname)}. "
        f"{info.serial} {soa.refresh} {soa.retry} {soa.expire} {soa.minimum}\n"
    ]
    head += [f"@\tNS\t{name}.\n" for name in ns_names(zone)]
    for rel, family, addr in _glue(zone):
        text = v4_text(addr) if family == 4 else format_v6_full(addr)
        head.append(f"{rel or '@'}\t{'A' if family == 4 else 'AAAA'}\t{text}\n")
    head += [f"; {rel}: excluded, but DNS cannot express it: {why}\n" for rel, why in excluded_but_matched(zone)]
    return "".join(head)


def render_bind(zone: CompiledZone, out: TextIO) -> None:
    """A master file for the zone (named-checkzone accepts it; same data as iter_records)."""
    out.write(bind_head(zone))
    blocks = _BindBlocks(zone.answers)
    for lo in range(0, len(zone.v4_start), _CHUNK):
        out.write(bind_v4(zone, blocks, lo, lo + _CHUNK))
    bind_groups(blocks, v6_groups(zone, _v6_test_point(zone)), out)
    bind_groups(blocks, domain_groups(zone), out)


def bind_groups(blocks: _BindBlocks, groups: Iterable[Group], out: TextIO) -> None:
    block = blocks.block
    chunk: list[str] = []
    for rel, idx, subst in groups:
        chunk.append(block(rel, idx, subst))
        if len(chunk) >= _CHUNK:
            out.write("".join(chunk))
            chunk.clear()
    out.write("".join(chunk))


def bind_v4(zone: CompiledZone, blocks: _BindBlocks, lo: int, hi: int) -> str:
    """The records of IPv4 intervals lo..hi-1. A single address (most of a big feed) is one
    f-string from octet strings; anything else goes through the groups of render_names."""
    fast = blocks.fast
    o = OCTETS
    out: list[str] = []
    append = out.append
    for s, e, v in zip(zone.v4_start[lo:hi], zone.v4_end[lo:hi], zone.v4_value[lo:hi]):
        parts = fast(v)
        if s == e and parts is not None:
            a, b, c, d = o[s >> 24], o[(s >> 16) & 255], o[(s >> 8) & 255], o[s & 255]
            if len(parts) == 1:
                append(f"{d}.{c}.{b}.{a}{parts[0]}")
            else:
                append(f"{d}.{c}.{b}.{a}" + f"{a}.{b}.{c}.{d}".join(parts))
        else:
            out += [blocks.block(rel, idx, subst) for rel, idx, subst in v4_interval_groups(s, e, v)]
    return "".join(out)


_GROUPS = struct.Struct(">8H").unpack
_V6_FULL = ":".join(["{:x}"] * 8).format


def format_v6_full(addr: int) -> str:
    """Eight hex groups, never dotted or compressed: every tool parses it the same way."""
    return _V6_FULL(*_GROUPS(addr.to_bytes(16, "big")))


# --- rbldnsd data file ----------------------------------------------------------------


def _rbl_txt(txt: str) -> str:
    """Our TXT as an rbldnsd template: '$' doubled, SUBST -> '$', no line breaks."""
    txt = txt.replace("$", "$$").replace(SUBST, "$")
    return "".join(c if c >= " " else " " for c in txt) if not txt.isprintable() else txt


def _rbl_suffixes(answer: Answer) -> list[str]:
    return [f" :{format_v4(c)}:{_rbl_txt(t)}\n" for c, t in zip(answer.codes, answer.txts)]


def rbldnsd_head(zone: CompiledZone) -> str:
    """The data file up to its first IPv4 line: comments, $SOA, $NS, $TTL, the ip4set line."""
    info, apex = zone.info, zone.name
    soa, ttl = info.soa, info.ttl
    return (
        f"# {apex} serial {info.serial}, written by the publisher from its compiled zone.\n"
        f"# Serve with: rbldnsd -b ADDR/PORT {rbldnsd_zone_arg(apex, 'THIS_FILE')}\n"
        f"$SOA {ttl} {_strip(soa.mname)} {_strip(soa.rname)} {info.serial} "
        f"{soa.refresh} {soa.retry} {soa.expire} {soa.minimum}\n"
        f"$NS {ttl} " + " ".join(ns_names(zone)) + "\n"
        f"$TTL {ttl}\n" + ("$DATASET ip4set:v4 @\n" if len(zone.v4_start) else "")
    )


def rbldnsd_suffixes(zone: CompiledZone) -> list[list[str]]:
    return [_rbl_suffixes(a) for a in zone.answers]


def render_rbldnsd(zone: CompiledZone, out: TextIO) -> None:
    """An rbldnsd `combined` data file serving the same answers (see RBLDNSD_DATASET_TYPE)."""
    out.write(rbldnsd_head(zone))
    suffixes = rbldnsd_suffixes(zone)
    for lo in range(0, len(zone.v4_start), 65536):
        out.write(rbldnsd_v4(zone, suffixes, lo, lo + 65536))
    v6 = v6_cidrs(zone)  # rbldnsd, like us, answers ::ffff:a.b.c.d names from the ip4set
    depth = max((len(zone.answers[idx].codes) for _, _, idx in v6), default=0)
    for pos in range(depth):
        # ip6trie keeps one value per prefix: code position `pos` of every answer goes here.
        out.write(f"$DATASET ip6trie:v6-{pos + 1} @\n")
        out.write(
            "".join(
                f"{format_v6_full(start)}/{plen}{suffixes[idx][pos]}"
                for start, plen, idx in v6
                if pos < len(suffixes[idx])
            )
        )
    if zone.dom_exact or zone.dom_wild:
        out.write("$DATASET dnset:domains @\n")
        _write_domains(zone, suffixes, out)
    glue = [(rel, addr) for rel, family, addr in _glue(zone) if family == 4]
    if glue:
        out.write("$DATASET generic:glue @\n")
        out.write("".join(f"{rel or '@'} A {v4_text(addr)}\n" for rel, addr in glue))


def rbldnsd_v4(zone: CompiledZone, suffixes: list[list[str]], lo: int, hi: int) -> str:
    """The ip4set lines of IPv4 intervals lo..hi-1."""
    o = OCTETS
    chunk: list[str] = []
    append = chunk.append
    for s, e, v in zip(zone.v4_start[lo:hi], zone.v4_end[lo:hi], zone.v4_value[lo:hi]):
        rng = f"{o[s >> 24]}.{o[(s >> 16) & 255]}.{o[(s >> 8) & 255]}.{o[s & 255]}"
        if s != e:
            rng += "-" + v4_text(e)
        sufs = suffixes[v]
        if len(sufs) == 1:
            append(rng + sufs[0])
        else:  # ip4set returns every value listed for the same range
            for suf in sufs:
                append(rng + suf)
    return "".join(chunk)


def _write_domains(zone: CompiledZone, suffixes: list[list[str]], out: TextIO) -> None:
    if isinstance(zone.dom_exact, HashTable):  # an email zone: hash names, no holes, no wildcards
        pairs = zone.dom_exact.pairs()
        while part := list(islice(pairs, _CHUNK)):
            out.write("".join([name + suf for name, v in part for suf in suffixes[v]]))
        return
    rows: list[tuple[list[str], str, int]] = [(n.split(".")[::-1], n, v) for n, v in zone.dom_exact.items()] + [
        (n.split(".")[::-1] + ["*"], "*." + n, v) for n, v in zone.dom_wild.items()
    ]
    rows.sort()
    chunk: list[str] = []
    for _, name, v in rows:
        if v < 0:
            chunk.append(f"!{name}\n")  # dnset exclusions are exact, unlike DNS
        else:
            chunk.extend(name + suf for suf in suffixes[v])
    out.write("".join(chunk))
