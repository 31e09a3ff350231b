"""Semantic checks on parsed sources: the rules that need more than the schema.

Two layers:
- per entry (`check_network`, `check_domain`): test points, IPv4-mapped IPv6,
  prefixes broader than the zone allows. curated.py and bulk.py call these
  while reading, so each bad entry is reported at its own line and never stored.
- across files (`validate`): duplicates and conflicts in curated files of a
  zone, a bulk file's exclusion below its own listing (warnings), expired entries
  (warnings), exclusions that punch no hole (warnings), an address in an email
  zone's texts (warnings), empty zones, and blocklist entries that cover an address
  of a `protect`ed allowlist (protect.py). Pure: `as_of` is passed in, nothing is
  read from the clock.
"""

from __future__ import annotations

import datetime as dt
import re

from publisher import codes
from publisher.addresses import (
    TEST_LISTED_DOMAIN,
    TEST_LISTED_V4,
    TEST_LISTED_V6,
    TEST_UNLISTED_DOMAIN,
    TEST_UNLISTED_V4,
    TEST_UNLISTED_V6,
    V4_MAPPED_END,
    V4_MAPPED_START,
    Network,
    format_addr,
)
from publisher.emails import EmailSettings
from publisher.errors import Location, Problem, Severity
from publisher.lists.breadth import BROAD_DOMAIN_FIX_YAML, broad_domain
from publisher.lists.email_entries import same_address
from publisher.lists.protect import covers_protected
from publisher.model import Config, Row, SourceData, ZoneConfig, longest_subject

#: (code, message, fix): what a per-entry check found; the caller adds the location.
Finding = tuple[str, str, str | None]

#: At most this many covers-protected errors per source file, then one summary.

BROAD_FIX_YAML = "narrow the prefix, or set `allow_broad: true` on the entry and say why in `reason`"
BROAD_FIX_BULK = "narrow the prefix, or move it to a curated YAML file with `allow_broad: true` and a reason"


def check_network(
    zone: ZoneConfig,
    net: Network,
    text: str,
    *,
    exclude: bool,
    allow_broad: bool = False,
    broad_fix: str = BROAD_FIX_YAML,
) -> list[Finding]:
    """Rules for one IPv4/IPv6 entry of an ip zone (its syntax is already valid)."""
    exclude = exclude or zone.read_as_excludes
    if net.family == 6 and net.start >= V4_MAPPED_START and net.end <= V4_MAPPED_END:
        v4 = Network(4, net.start - V4_MAPPED_START, net.end - V4_MAPPED_START)
        mapped: list[Finding] = [
            (
                codes.V4_MAPPED,
                f"'{text}' is an IPv4-mapped IPv6 address; mapped names are answered from the IPv4 entries",
                f"write the IPv4 form: {v4}",
            )
        ]
        if not exclude and net.start <= TEST_UNLISTED_V6 <= net.end:
            point = format_addr(6, TEST_UNLISTED_V6)
            mapped.append(
                (
                    codes.LISTS_TEST_POINT,
                    f"'{text}' covers {point}, the RFC 5782 test point that must never be listed",
                    "remove it",
                )
            )
        if exclude and net.start <= TEST_LISTED_V6 <= net.end:
            point = format_addr(6, TEST_LISTED_V6)
            mapped.append(
                (
                    codes.DELISTS_TEST_POINT,
                    f"the exclusion '{text}' would delist {point}, the RFC 5782 test point that is always listed",
                    "remove it",
                )
            )
        return mapped
    out: list[Finding] = []
    bits, limit = (32, zone.max_prefix_v4) if net.family == 4 else (128, zone.max_prefix_v6)
    # The IPv6 test points (::ffff:127.0.0.1 and .2) are IPv4-mapped, and every mapped name
    # answers from the IPv4 entries: a wider IPv6 range over ::ffff:0:0/96 cannot list or
    # delist them, so it is no test-point error (and no mapped exclusion is needed).
    unlisted, listed = (TEST_UNLISTED_V4, TEST_LISTED_V4) if net.family == 4 else (-1, -1)
    if not exclude and net.start <= unlisted <= net.end:
        point = format_addr(net.family, unlisted)
        what = f"'{text}' lists {point}" if net.size == 1 else f"'{text}' covers {point}"
        out.append(
            (
                codes.LISTS_TEST_POINT,
                f"{what}, the RFC 5782 test point that must never be listed",
                f"remove it, or list a range that leaves {point} out",
            )
        )
    if exclude and net.start <= listed <= net.end:
        point = format_addr(net.family, listed)
        out.append(
            (
                codes.DELISTS_TEST_POINT,
                f"the exclusion '{text}' would delist {point}, the RFC 5782 test point that is always listed",
                f"remove the exclusion, or narrow it to leave {point} out",
            )
        )
    if not exclude and not allow_broad and net.size > 1 << (bits - limit):
        out.append((codes.BROAD_PREFIX, f"'{text}' is broader than /{limit}, the limit for {zone.name}", broad_fix))
    return out


def check_domain(
    zone: ZoneConfig,
    name: str,
    wild: bool,
    text: str,
    *,
    exclude: bool,
    allow_broad: bool = False,
    broad_fix: str = BROAD_DOMAIN_FIX_YAML,
) -> list[Finding]:
    """Rules for one entry of a domain zone (already normalised); breadth.py says what is too broad."""
    exclude = exclude or zone.read_as_excludes
    room = longest_subject(zone.kind, zone.name)
    size = len(name) + (2 if wild else 0)
    if size > room:
        return [
            (
                codes.BAD_DOMAIN,
                f"'{text}' is {size} characters; under {zone.name} a name may have at most {room} "
                f"(a DNS name has at most 253 characters), so no query could reach it",
                "shorten the name, or list its parent domain",
            )
        ]
    if not exclude and not wild and name == TEST_UNLISTED_DOMAIN:
        return [
            (
                codes.LISTS_TEST_POINT,
                f"'{text}' lists `{TEST_UNLISTED_DOMAIN}`, the RFC 5782 test name that must never be listed",
                "remove the entry",
            )
        ]
    if exclude and not wild and name == TEST_LISTED_DOMAIN:
        return [
            (
                codes.DELISTS_TEST_POINT,
                f"the exclusion '{text}' would delist `{TEST_LISTED_DOMAIN}`, "
                f"the RFC 5782 test name that is always listed",
                "remove the exclusion",
            )
        ]
    broad = None if exclude or allow_broad else broad_domain(name, wild, text, broad_fix)
    return [broad] if broad else []


# --- the cross-file pass ---------------------------------------------------------------


def validate(config: Config, sources: dict[str, list[SourceData]], *, as_of: dt.datetime) -> list[Problem]:
    """Every problem that needs more than one entry (or a clock) to see."""
    problems: list[Problem] = []
    for zone in config.zones:
        srcs = sources.get(zone.name, [])
        problems.extend(_empty_zone(zone, srcs))
        problems.extend(_duplicates(srcs, zone))
        for source in srcs:
            problems.extend(_expired(source, as_of))
            if zone.kind == "email":
                problems.extend(_addresses_in_texts(source))
            if source.entries and not zone.is_excludes(source.path):  # an excludes file's holes are zone-wide
                problems.extend(_useless_exclusions(source))
    for zone in config.zones:
        if zone.kind == "ip" and zone.role == "block" and zone.protect:  # lists/protect.py
            problems.extend(covers_protected(zone, config, sources, as_of=as_of))
    return problems


def _empty_zone(zone: ZoneConfig, srcs: list[SourceData]) -> list[Problem]:
    if any(len(s) for s in srcs) or any(s.partners for s in srcs):
        return []  # partners declared but not refreshed yet: spf_checks.py says so, as warnings
    if any(p.is_error for s in srcs for p in s.problems):
        return []  # a broken file is the real cause; do not pile on
    return [
        Problem(
            zone.location,
            codes.EMPTY_ZONE,
            f"zone {zone.name} has no entries in any of its sources ({', '.join(zone.sources)})",
            "add entries to one of its list files, or remove the zone from zones.yaml",
        )
    ]


def _duplicates(srcs: list[SourceData], zone: ZoneConfig) -> list[Problem]:
    """Exact repeats across the curated files of a zone; listed-and-excluded in one file.
    In an email zone, entries are the same when their names are (after normalisation)."""
    seen: dict[tuple[tuple[int, int, int, str, bool], bool], Location] = {}
    problems: list[Problem] = []
    for source in srcs:
        if not source.entries:
            problems.extend(_late_exclusions(source, zone.email is not None))
            continue  # bulk feeds: repeats are normal there, bulk.py summarises them
        in_file: dict[tuple[int, int, int, str, bool], tuple[bool, Location]] = {}
        for row in source.rows():
            excl = source.values[row.value].exclude
            loc = source.location(row.line)
            key = row.subject
            first = seen.get((key, excl))
            text = source.row_text(row)
            if first is not None and first != loc:
                what = "excluded" if excl else "listed"
                message = f"{text} is {what} twice"
                if zone.email is not None:
                    message = _same_address(text, first, loc, srcs, zone.email)
                problems.append(
                    Problem(
                        loc,
                        codes.DUPLICATE,
                        message,
                        "remove one of the two entries (keep the one with the better metadata)",
                        related=(("first at", first),),
                    )
                )
                continue
            seen[(key, excl)] = loc
            other = in_file.get(key)
            if other is not None and other[0] != excl:
                problems.append(
                    Problem(
                        loc,
                        codes.CONFLICT,
                        f"{text} is both listed and excluded in {source.path}",
                        "keep only one of the two entries",
                        related=(("other at", other[1]),),
                    )
                )
            in_file.setdefault(key, (excl, loc))
    return problems


def _same_address(text: str, first: Location, loc: Location, srcs: list[SourceData], settings: EmailSettings) -> str:
    """An email zone's duplicate message: both entries as written, and the normalised address."""
    earlier = next(s for s in srcs if s.path == first.path).entries[first.line or 0].text
    where = f"line {first.line}" if first.path == loc.path else f"{first.path}:{first.line}"
    return same_address(text, earlier, where, settings)


#: Late exclusions of one bulk file located one by one; the rest are counted in the last.
LATE_EXCLUSIONS_SHOWN = 10


def _late_exclusions(source: SourceData, hashed: bool) -> list[Problem]:
    """A bulk file's `!entry` below the same entry listed in that file: the first entry of a file
    wins (section 4, as in rbldnsd's trie datasets), so the exclusion changes nothing, where an
    rbldnsd ip4set or dnset would delist the entry. Appending `!entry` is the natural way to
    delist: a warning says it did not (not an error: an imported trie file may hold such lines)."""
    if not any(v.exclude for v in source.values):
        return []
    holes = [r for r in source.rows() if source.values[r.value].exclude]
    wanted = {r.subject for r in holes}
    listed: dict[tuple[int, int, int, str, bool], int] = {}
    for row in source.rows():
        if row.subject in wanted and not source.values[row.value].exclude:
            listed.setdefault(row.subject, row.line)
    late = [(r, listed[r.subject]) for r in holes if listed.get(r.subject, r.line) < r.line]
    problems = []
    for k, (row, first) in enumerate(late[:LATE_EXCLUSIONS_SHOWN]):
        more = len(late) - LATE_EXCLUSIONS_SHOWN
        tail = f" ({more:,} more such exclusions in this file)" if k == LATE_EXCLUSIONS_SHOWN - 1 and more > 0 else ""
        what = "this address (or hash)" if hashed else source.row_text(row)  # an email row's text is a hash name
        problems.append(
            Problem(
                source.location(row.line),
                codes.CONFLICT,
                f"the exclusion of {what} comes after line {first}, which lists it: the first "
                f"entry of a file wins, so it changes nothing{tail}",
                f"to delist it, remove line {first} (or move the exclusion above it); else remove the exclusion",
                related=(("listed at", source.location(first)),),
                severity=Severity.WARNING,
            )
        )
    return problems


#: An email address in a text: something@host.tld, as a reader would see one.
_ADDRESS_IN_TEXT = re.compile(r"[^\s@<>(),;:\"']+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def _addresses_in_texts(source: SourceData) -> list[Problem]:
    """An email zone publishes hashes so that the addresses stay out of DNS; a reason (or a bulk
    text) that names an address puts it into every TXT answer of its entries. One warning per
    text, at its first entry: an address there may be meant (the list's own contact)."""
    out: list[Problem] = []
    for index, value in enumerate(source.values):
        found = _ADDRESS_IN_TEXT.search(value.reason) if "@" in value.reason else None
        if found is None or value.exclude:
            continue
        try:
            line = source.dom_line[source.dom_value.index(index)]
        except ValueError:
            continue  # no entry uses this text
        out.append(
            Problem(
                source.location(line),
                codes.ADDRESS_IN_TEXT,
                f"the text {value.reason!r} names an email address ({found.group()}): every TXT answer of its "
                "entries carries it, in plain text, though the zone lists only hashes",
                "leave the address out of reasons and bulk texts (git keeps the entry's address); keep it only "
                "if it is meant to be public, like the list's own contact",
                severity=Severity.WARNING,
            )
        )
    return out


def _expired(source: SourceData, as_of: dt.datetime) -> list[Problem]:
    out: list[Problem] = []
    for meta in source.entries.values():
        value = source.values[meta.value]
        if value.expires is not None and value.expires <= as_of:
            when = value.expires.strftime("%Y-%m-%d %H:%M UTC")
            out.append(
                Problem(
                    Location(source.path, meta.line, meta.col),
                    codes.EXPIRED,
                    f"{meta.text} expired at {when}; it is no longer published",
                    "remove the entry, or move `expires` later",
                    severity=Severity.WARNING,
                )
            )
    return out


def _contains(outer: Row, inner: Row) -> bool:
    if outer.family != inner.family or outer.subject == inner.subject:
        return False
    if outer.family == 0:
        return outer.wild and inner.name.endswith("." + outer.name)
    return outer.start <= inner.start and inner.end <= outer.end


def _useless_exclusions(source: SourceData) -> list[Problem]:
    """Exclusions punch holes only in listings of their own file; one outside them does nothing."""
    all_rows = list(source.rows())
    holes = [r for r in all_rows if source.values[r.value].exclude]
    if not holes:
        return []
    listings = [r for r in all_rows if not source.values[r.value].exclude]
    same = {r.subject for r in listings}  # an exact twin is a conflict, reported by _duplicates
    out: list[Problem] = []
    for hole in holes:
        if hole.subject not in same and not any(_contains(r, hole) for r in listings):
            out.append(
                Problem(
                    source.location(hole.line),
                    codes.USELESS_EXCLUSION,
                    f"the exclusion {source.row_text(hole)} lies inside no listing of {source.path}; "
                    "it changes nothing",
                    "remove it, or move it to the file that lists the wider range",
                    severity=Severity.WARNING,
                )
            )
    return out
