"""Semantic checks on parsed sources: the rules that need more than the schema.

Two layers:
- per entry (`check_network`, `check_domain`): test points, IPv4-mapped IPv6,
  prefixes broader than the zone allows. curated.py and bulk.py call these
  while reading, so each bad entry is reported at its own line and never stored.
- across files (`validate`): duplicates and conflicts in curated files of a
  zone, expired entries (warnings), exclusions that punch no hole (warnings),
  empty zones, and blocklist entries that cover an address of a `protect`ed
  allowlist. Pure: `as_of` is passed in, nothing is read from the clock.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import compress, repeat

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
from publisher.model import Config, Row, SourceData, ZoneConfig, longest_subject

#: (code, message, fix): what a per-entry check found; the caller adds the location.
Finding = tuple[str, str, str | None]

#: At most this many covers-protected errors per source file, then one summary.
MAX_PROTECT_REPORTS = 50

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


# --- rows of a SourceData, with their locations -------------------------------------


def row_location(source: SourceData, line: int) -> Location:
    meta = source.entries.get(line)
    return Location(source.path, line, meta.col if meta else None)


def row_text(source: SourceData, row: Row) -> str:
    meta = source.entries.get(row.line)
    return meta.text if meta else row.text


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
        if zone.kind == "ip" and zone.role == "block" and zone.protect:
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
            loc = row_location(source, row.line)
            key = row.subject
            first = seen.get((key, excl))
            text = row_text(source, row)
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
        what = "this address (or hash)" if hashed else row_text(source, row)  # an email row's text is a hash name
        problems.append(
            Problem(
                row_location(source, row.line),
                codes.CONFLICT,
                f"the exclusion of {what} comes after line {first}, which lists it: the first "
                f"entry of a file wins, so it changes nothing{tail}",
                f"to delist it, remove line {first} (or move the exclusion above it); else remove the exclusion",
                related=(("listed at", row_location(source, first)),),
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
                row_location(source, line),
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
                    row_location(source, hole.line),
                    codes.USELESS_EXCLUSION,
                    f"the exclusion {row_text(source, hole)} lies inside no listing of {source.path}; "
                    "it changes nothing",
                    "remove it, or move it to the file that lists the wider range",
                    severity=Severity.WARNING,
                )
            )
    return out


# --- covers-protected: fast enough for a million-entry bulk blocklist -----------------


@dataclass(frozen=True, slots=True)
class _Protected:
    start: int
    end: int
    location: Location
    text: str
    zone: str


def _protected(
    config: Config, zone: ZoneConfig, sources: dict[str, list[SourceData]], as_of: dt.datetime
) -> dict[int, list[_Protected]]:
    """Live listings of the allowlists `zone` protects, by family, sorted by start.

    Exclusions in the allowlist are ignored on purpose: a hole in a partner's
    range is still the partner's space, so blocking it needs a deliberate change.
    """
    out: dict[int, list[_Protected]] = {4: [], 6: []}
    for name in zone.protect:
        allow = config.zone(name)
        if allow is None or allow.kind != "ip":
            continue  # config.py already reported it
        for source in sources.get(name, []):
            for row in source.rows():
                value = source.values[row.value]
                if row.family and not value.exclude and value.live(as_of):
                    meta = source.entries.get(row.line)
                    text = row_text(source, row) + (f" ({meta.owner})" if meta and meta.owner else "")
                    out[row.family].append(_Protected(row.start, row.end, row_location(source, row.line), text, name))
    for fam in out:
        out[fam].sort(key=lambda p: (p.start, p.end))
    return out


def _merge(items: Sequence[_Protected]) -> tuple[list[int], list[int]]:
    starts: list[int] = []
    ends: list[int] = []
    for p in items:
        if ends and p.start <= ends[-1] + 1:
            ends[-1] = max(ends[-1], p.end)
        else:
            starts.append(p.start)
            ends.append(p.end)
    return starts, ends


def _overlapping(starts: Sequence[int], ends: Sequence[int], m_starts: list[int], m_ends: list[int]) -> Iterator[int]:
    """Indices i where [starts[i], ends[i]] meets a merged interval; the loop runs in C.

    For each entry, the merged interval that starts last at or before the entry's
    end is the only candidate (they are disjoint and sorted): it overlaps iff it
    ends at or after the entry's start.
    """
    ext_ends = [-1, *m_ends]  # ext_ends[k] is the end of the k-th interval from the left, 1-based
    idx = map(bisect_right, repeat(m_starts), ends)
    cand_ends = map(ext_ends.__getitem__, idx)
    return compress(range(len(starts)), map(operator.ge, cand_ends, starts))


def _subtract(lo: int, hi: int, holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """[lo, hi] minus the holes (which are sorted by start)."""
    out: list[tuple[int, int]] = []
    cur = lo
    for hs, he in holes:
        if he < cur:
            continue
        if hs > hi:
            break
        if hs > cur:
            out.append((cur, hs - 1))
        cur = max(cur, he + 1)
        if cur > hi:
            return out
    if cur <= hi:
        out.append((cur, hi))
    return out


def covers_protected(
    zone: ZoneConfig, config: Config, sources: dict[str, list[SourceData]], *, as_of: dt.datetime
) -> list[Problem]:
    """Blocklist entries of `zone` that would list an address of a protected allowlist."""
    protected = _protected(config, zone, sources, as_of)
    merged = {fam: _merge(items) for fam, items in protected.items()}
    problems: list[Problem] = []
    srcs = sources.get(zone.name, [])
    local = [s for s in srcs if zone.is_excludes(s.path)]
    zone_holes = {
        fam: sorted(
            (a, b)
            for src in local
            for a, b, v in zip(
                *((src.v4_start, src.v4_end, src.v4_value) if fam == 4 else (src.v6_start, src.v6_end, src.v6_value))
            )
            if src.values[v].live(as_of)
        )
        for fam in (4, 6)
    }
    excludes_file = local[0].path if local else (zone.excludes[0] if zone.excludes else None)
    for source in srcs:
        listed = [not v.exclude and v.live(as_of) for v in source.values]
        reported = 0
        for fam, starts, ends, vals, lines in (
            (4, source.v4_start, source.v4_end, source.v4_value, source.v4_line),
            (6, source.v6_start, source.v6_end, source.v6_value, source.v6_line),
        ):
            m_starts, m_ends = merged[fam]
            if not m_starts or not starts:
                continue
            hits = [i for i in _overlapping(starts, ends, m_starts, m_ends) if listed[vals[i]]]
            if not hits:
                continue
            hole_ids = {k for k, v in enumerate(source.values) if v.exclude and v.live(as_of)}
            holes = sorted((s, e) for s, e, v in zip(starts, ends, vals) if v in hole_ids) if hole_ids else []
            for i in hits:
                s, e = starts[i], ends[i]
                # Within a file the most specific entry wins: narrower exclusions are holes here.
                own_holes = [(hs, he) for hs, he in holes if he - hs < e - s and hs <= e and he >= s]
                if zone_holes[fam]:  # the zone's excludes files: holes whatever their size
                    own_holes = sorted(own_holes + [(hs, he) for hs, he in zone_holes[fam] if hs <= e and he >= s])
                for prot in protected[fam]:
                    if prot.start > e or prot.end < s:
                        continue
                    left = _subtract(max(s, prot.start), min(e, prot.end), own_holes)
                    if not left:
                        continue
                    reported += 1
                    if reported <= MAX_PROTECT_REPORTS:
                        problems.append(
                            _protect_problem(zone, source, fam, s, e, lines[i], prot, left[0], excludes_file)
                        )
                    break
        if reported > MAX_PROTECT_REPORTS:
            problems.append(
                Problem(
                    Location(source.path),
                    codes.COVERS_PROTECTED,
                    f"{reported - MAX_PROTECT_REPORTS} more entries of {source.path} cover protected addresses",
                    "fix the entries above first, then run validate again",
                )
            )
    return problems


def _protect_problem(
    zone: ZoneConfig,
    source: SourceData,
    fam: int,
    s: int,
    e: int,
    line: int,
    prot: _Protected,
    left: tuple[int, int],
    excludes_file: str | None,
) -> Problem:
    meta = source.entries.get(line)
    text = meta.text if meta else str(Network(fam, s, e))
    hole = str(Network(fam, *left))
    how = f"an entry `- ip: {hole}` with `exclude: true`" if meta else f"the line `!{hole}`"
    if excludes_file is not None:
        # A downloaded feed is overwritten by the next download: the hole belongs in the local file.
        fix = (
            f"add {hole} to {excludes_file} (the zone's excludes: file, which downloads do not overwrite), "
            f"or narrow the entry, or add {how} to {source.path}"
        )
    elif meta is None:
        fix = (
            f"add {hole} to a local excludes file that downloads do not overwrite "
            f"(in zones.yaml, `excludes: [{_sibling(source.path)}]` on {zone.name}), "
            f"or narrow the entry, or add {how} to {source.path}"
        )
    else:
        fix = f"narrow the entry, or add {how} to {source.path}"
    return Problem(
        row_location(source, line),
        codes.COVERS_PROTECTED,
        f"{text} covers {prot.text}, protected by allowlist {prot.zone}",
        fix,
        related=(("protected entry", prot.location),),
    )


def _sibling(path: str) -> str:
    """`local-excludes.txt` beside a feed: bl/feeds.txt -> bl/local-excludes.txt."""
    folder = path.rpartition("/")[0]
    return f"{folder}/local-excludes.txt" if folder else "local-excludes.txt"
