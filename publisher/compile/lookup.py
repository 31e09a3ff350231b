"""Answer a question about one address or domain from compiled zones and sources.

What each zone answers for the address or name (`zone_answer`), and which
entries (file:line) cover it in each source (`covering_entries`, over the
source's rows). An email address (or a bare hash label) is asked of email zones
only, each hashing it with its own settings (`email_asked`). For a CIDR block:
how much of it a zone lists (`range_answer`) and which entries overlap it
(`overlapping_entries`). Used by `publisher lookup`, `explain` and the web face. Pure.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass

from publisher.addresses import (
    TEST_LISTED_DOMAIN,
    TEST_UNLISTED_DOMAIN,
    AddressError,
    Network,
    format_addr,
    normalize_domain,
    parse_addr,
    parse_network,
    unmapped,
    unmapped_network,
)
from publisher.compile.zone import CompiledZone
from publisher.emails import LABEL_LENGTH, EmailSettings, address_name, feed_label, split_address
from publisher.model import SUBST, SourceData, Value

#: Query.family of an email address or a hash label (asked of email zones only).
EMAIL = -1
_HEX = frozenset("0123456789abcdef")
_BASE32 = frozenset("abcdefghijklmnopqrstuvwxyz234567")


@dataclass(frozen=True, slots=True)
class Query:
    family: int  # 4, 6, 0 for a domain, EMAIL for an email address or a hash label
    addr: int = 0
    domain: str = ""
    address: str = ""  # EMAIL: the address as given (its syntax checked); "" for a hash label
    label: str = ""  # EMAIL: a hash label as given, lower case; "" for an address

    @property
    def text(self) -> str:
        if self.family == EMAIL:
            return self.address or self.label
        return self.domain if self.family == 0 else format_addr(self.family, self.addr)


def is_hash_label(text: str) -> bool:
    """Is `text` (lower case) shaped like a hash a feed shares: 32, 40 or 64 hex digits (md5,
    sha1, sha256), or 52 base32 characters (a sha256 label)? No domain is asked for then: a
    top-level name of 40 hex digits is not a domain anyone lists."""
    if len(text) in (32, 40, 64) and set(text) <= _HEX:
        return True
    return len(text) == LABEL_LENGTH["sha256"] and set(text) <= _BASE32


def parse_query(text: str) -> Query:
    """An IPv4/IPv6 address, a domain, an email address (anything with '@', checked by
    emails.split_address) or a bare hash label (`is_hash_label`); IPv4-mapped IPv6 is read as IPv4."""
    raw = text.strip()
    if "@" in raw:
        split_address(raw)  # AddressError (codes.BAD_EMAIL) naming what is wrong and the fix
        return Query(EMAIL, address=raw)
    if is_hash_label(raw.lower()):
        return Query(EMAIL, label=raw.lower())
    try:
        family, addr = parse_addr(raw)
    except AddressError:
        if any(c.isalpha() for c in text) or "." not in text:
            name, wild = normalize_domain(text)
            if wild:
                raise AddressError(f"'{text}' is a wildcard; ask about one name", None) from None
            return Query(0, domain=name)
        raise
    return Query(*unmapped(family, addr))


@dataclass(frozen=True, slots=True)
class Asked:
    """What one email zone is asked for a query: the name relative to the zone that a client
    queries (`<label>[.<suffix>]`), and the address as the zone normalises it before hashing."""

    name: str  # "" when the query cannot be in this zone (`why` says why)
    normalised: str = ""  # "" for a hash label or a test point
    why: str = ""


def email_asked(settings: EmailSettings, query: Query) -> Asked:
    """The name an email zone with these settings is asked for the query: an address hashed
    (emails.address_name), a hash label in the zone's form (a sha256 zone also takes 64 hex
    digits), or the RFC 5782 test names `test` / `invalid`; Asked("") for any other domain."""
    if query.family == EMAIL and query.address:
        normalised, name = address_name(query.address, settings)
        return Asked(name, normalised)
    if query.family == EMAIL:
        try:
            return Asked(settings.name_of(feed_label(query.label, settings.hash)))
        except AddressError as exc:
            return Asked("", why=exc.message.replace("this zone", "the zone"))
    if query.family == 0 and query.domain in (TEST_LISTED_DOMAIN, TEST_UNLISTED_DOMAIN):
        return Asked(settings.name_of(query.domain))
    return Asked("", why="not an email address")


def zone_answer(zone: CompiledZone, query: Query, email: EmailSettings | None = None) -> list[tuple[int, str]]:
    """(code, TXT) pairs the zone answers for the query; empty when not listed. An email zone
    answers only with its settings given (`email`): it hashes the query with them."""
    if zone.info.kind == "email":
        name = email_asked(email, query).name if email is not None else ""
        idx = zone.dom_exact.get(name, -1) if name else -1
        if idx < 0:
            return []
        answer = zone.answers[idx]
        return list(zip(answer.codes, answer.txts))  # an email zone's TXT never names the query
    if query.family == EMAIL:
        return []
    if query.family == 0:
        if zone.info.kind == "ip":
            return []  # domain zones by name; email zones by hash name (the caller hashes the address)
        idx = zone.lookup_domain(query.domain)
    elif zone.info.kind != "ip":
        return []
    else:
        idx = zone.lookup_v4(query.addr) if query.family == 4 else zone.lookup_v6(query.addr)
    if idx < 0:
        return []
    answer = zone.answers[idx]
    return [(c, t.replace(SUBST, query.text)) for c, t in zip(answer.codes, answer.txts)]


def shown_reason(reason: str) -> str:
    """A reason as a person reads it: the queried address's place (SUBST) written `$`, as in bulk files."""
    return reason.replace(SUBST, "$")


@dataclass(frozen=True, slots=True)
class Hit:
    """One entry that covers the query."""

    path: str
    line: int
    text: str
    value: Value
    size: int  # addresses covered (0 for domains: exact=0, wildcard=1)


def covering_entries(source: SourceData, query: Query, email: EmailSettings | None = None) -> list[Hit]:
    """Every entry of the source that covers the query, most specific first. A source of an
    email zone (`email`: its settings) is asked for the query's hashed name; its hits' text is
    the address (or hash) as the curated entry writes it, the name for a line of a bulk file."""
    hits: list[Hit] = []
    if email is not None:
        name = email_asked(email, query).name
        for row in source.rows(0):
            if name and row.name == name:
                meta = source.entries.get(row.line)
                text = meta.text if meta is not None else row.name
                hits.append(Hit(source.path, row.line, text, source.values[row.value], 0))
    elif query.family == EMAIL:
        return []
    elif query.family:
        a = query.addr
        for row in source.rows(query.family):
            if row.start <= a <= row.end:
                hits.append(Hit(source.path, row.line, row.text, source.values[row.value], row.end - row.start + 1))
    else:
        name = query.domain
        for row in source.rows(0):
            n = row.name
            if (not row.wild and n == name) or (row.wild and name.endswith("." + n)):
                depth = 0 if not row.wild else 1 + name.count(".") - n.count(".")
                hits.append(Hit(source.path, row.line, row.text, source.values[row.value], depth))
    hits.sort(key=lambda h: (h.size, h.line))
    return hits


# --- a range (CIDR): which entries overlap it, and how much of it a zone lists ----------


def parse_range(text: str) -> Network:
    """A CIDR block `ADDR/LEN` of either family; IPv4-mapped IPv6 is read as IPv4."""
    return unmapped_network(parse_network(text))


@dataclass(frozen=True, slots=True)
class RangeAnswer:
    """How much of a range a zone lists, and with which answers."""

    listed: int  # addresses of the range that get an answer
    size: int  # addresses in the range
    answers: tuple[tuple[int, str], ...]  # distinct (code, TXT) pairs met inside, TXT with `$` for the address

    @property
    def how(self) -> str:
        if not self.listed:
            return "not listed"
        return "wholly listed" if self.listed == self.size else "partly listed"


def range_answer(zone: CompiledZone, net: Network) -> RangeAnswer:
    """Listed addresses of `net` in the zone (intervals met by bisection, then walked)."""
    if zone.info.kind != "ip":
        return RangeAnswer(0, net.size, ())
    if net.family == 4:
        k = bisect_left(zone.v4_end, net.start)
        intervals: Iterator[tuple[int, int, int]] = zip(zone.v4_start[k:], zone.v4_end[k:], zone.v4_value[k:])
    else:
        intervals = iter(zone.v6_intervals())
    listed = 0
    seen: dict[tuple[int, str], None] = {}
    for s, e, v in intervals:
        if s > net.end:
            break
        if e < net.start:
            continue
        listed += min(e, net.end) - max(s, net.start) + 1
        answer = zone.answers[v]
        for code, txt in zip(answer.codes, answer.txts):
            seen.setdefault((code, shown_reason(txt)), None)
    return RangeAnswer(listed, net.size, tuple(sorted(seen)))


@dataclass(frozen=True, slots=True)
class RangeHit:
    """One entry that overlaps the range: `covers` it, lies `inside` it, or `overlaps` part of it."""

    path: str
    line: int
    text: str
    value: Value
    relation: str


def overlapping_entries(source: SourceData, net: Network) -> list[RangeHit]:
    """Every entry of the source that shares an address with `net`, widest first, then by line."""
    hits: list[tuple[int, RangeHit]] = []
    for row in source.rows(net.family):
        if row.start > net.end or row.end < net.start:
            continue
        if row.start <= net.start and net.end <= row.end:
            relation = "covers"
        elif net.start <= row.start and row.end <= net.end:
            relation = "inside"
        else:
            relation = "overlaps"
        hit = RangeHit(source.path, row.line, row.text, source.values[row.value], relation)
        hits.append((row.start - row.end, hit))
    hits.sort(key=lambda h: (h[0], h[1].line))
    return [h for _, h in hits]
