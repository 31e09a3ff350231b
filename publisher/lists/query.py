"""Questions an operator asks of the loaded lists: what expires soon, where a word appears.

`expiring` lists the curated entries whose `expires` falls within a window (or has
passed), soonest first; bulk lines have no expiry. `search` finds entries whose text or
metadata (ticket, reason, owner, contact, by) contains a string, case-insensitively; a
bulk feed's lines match by their address or name and by the text of their `:code:text`,
counted in full but collected only up to a limit. In an email zone a plain address also
finds the entries it is listed under (hashed with the zone's settings: `search
johndoe@gmail.com` finds `J.Doe+x@googlemail.com` and a feed's line of its hash). Pure: the caller passes `as_of`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from itertools import compress

from publisher.addresses import AddressError
from publisher.lists.email_entries import EmailNamer
from publisher.model import SUBST, EntryMeta, SourceData, ZoneConfig

#: Characters of an address entry as written (`192.0.2.0/24`, `2001:db8::/32`, `10.0.0.1-10.0.0.5`).
_ADDRESS_CHARS = frozenset("0123456789abcdef.:/-")
#: The metadata fields `search` looks in, in the order it reports them.
FIELDS = ("entry", "ticket", "reason", "owner", "contact", "by")


@dataclass(frozen=True, slots=True)
class Expiring:
    zone: str
    path: str
    line: int
    text: str
    expires: dt.datetime
    ticket: str | None
    by: str | None

    def days(self, as_of: dt.datetime) -> int:
        """Whole days until it expires (negative: since it expired)."""
        delta = self.expires - as_of
        return delta.days if delta >= dt.timedelta(0) else -((-delta).days)


def expiring(
    zones: tuple[ZoneConfig, ...], sources: dict[str, list[SourceData]], *, as_of: dt.datetime, within: dt.timedelta
) -> list[Expiring]:
    """Curated entries expiring by `as_of + within` (expired ones included), soonest first."""
    found: dict[tuple[str, int], Expiring] = {}
    for zone in zones:
        for source in sources.get(zone.name, []):
            for meta in source.entries.values():
                expires = source.values[meta.value].expires
                if expires is not None and expires <= as_of + within:
                    key = (source.path, meta.line)  # a file two zones read is one entry
                    found.setdefault(
                        key, Expiring(zone.name, source.path, meta.line, meta.text, expires, meta.ticket, meta.by)
                    )
    return sorted(found.values(), key=lambda e: (e.expires, e.path, e.line))


@dataclass(frozen=True, slots=True)
class Match:
    zone: str
    path: str
    line: int
    text: str
    field: str  # one of FIELDS
    value: str  # the whole value that contains the text


@dataclass(slots=True)
class Matches:
    shown: list[Match]  # the first `limit`, in zone, file and line order
    total: int  # every match (one per entry)


def search(zones: tuple[ZoneConfig, ...], sources: dict[str, list[SourceData]], text: str, *, limit: int) -> Matches:
    """Entries whose text or metadata contains `text` (case-insensitive); one match per entry."""
    needle = text.casefold()
    out = Matches([], 0)
    seen: set[str] = set()
    for zone in zones:
        for source in sources.get(zone.name, []):
            if source.path in seen:
                continue
            seen.add(source.path)
            target = email_name(zone, text)
            if source.entries:
                _search_curated(zone, source, needle, out, limit, target)
            else:
                _search_bulk(zone, source, needle, out, limit, target)
    return out


def email_name(zone: ZoneConfig, text: str) -> str | None:
    """In an email zone, the name `text` is listed under when it is an address (hashed with the
    zone's settings) or a hash label of the zone's form; None otherwise."""
    if zone.email is None:
        return None
    try:
        return EmailNamer(zone.email).name(text.strip())[1]
    except AddressError:
        return None


def _add(out: Matches, limit: int, match: Match) -> None:
    out.total += 1
    if len(out.shown) < limit:
        out.shown.append(match)


def _search_curated(
    zone: ZoneConfig, source: SourceData, needle: str, out: Matches, limit: int, target: str | None
) -> None:
    same = {line for name, line in zip(source.dom_name, source.dom_line) if name == target} if target else set()
    for line in sorted(source.entries):
        meta = source.entries[line]
        for field, value in _fields(meta, source.values[meta.value].reason):
            if value and (needle in value.casefold() or (field == "entry" and line in same)):
                _add(out, limit, Match(zone.name, source.path, line, meta.text, field, value))
                break


def _fields(meta: EntryMeta, reason: str) -> list[tuple[str, str | None]]:
    return [
        ("entry", meta.text),
        ("ticket", meta.ticket),
        ("reason", reason.replace(SUBST, "$")),
        ("owner", meta.owner),
        ("contact", meta.contact),
        ("by", meta.by),
    ]


def _search_bulk(
    zone: ZoneConfig, source: SourceData, needle: str, out: Matches, limit: int, target: str | None
) -> None:
    """A feed may hold millions of lines: the texts (few) are matched once, each line's
    address only when the string could be part of one, and lines past the limit only counted.
    An email feed's lines match by `target` alone (the name of the searched address or hash)."""
    by_text = [needle in v.reason.replace(SUBST, "$").casefold() for v in source.values]
    ip_text = zone.kind == "ip" and bool(needle) and set(needle) <= _ADDRESS_CHARS
    email = zone.kind == "email"
    if not ip_text and zone.kind == "ip" and not any(by_text):
        return
    for family, values in ((4, source.v4_value), (6, source.v6_value), (0, source.dom_value)):
        if not len(values):
            continue
        if not (ip_text or family == 0) and len(out.shown) >= limit:
            out.total += sum(values.count(i) for i in compress(range(len(by_text)), by_text))  # counted in C
            continue
        for row in source.rows(family):
            reason = by_text[row.value]
            # an email feed's hashes match a whole address or hash only: a word is in many hashes
            entry = row.name == target if email else (ip_text or family == 0) and needle in row.text
            if reason or entry:
                if len(out.shown) >= limit:
                    out.total += 1
                    continue
                field, value = (
                    ("entry", row.text) if entry else ("reason", source.values[row.value].reason.replace(SUBST, "$"))
                )
                _add(out, limit, Match(zone.name, source.path, row.line, row.text, field, value))
