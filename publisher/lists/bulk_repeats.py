"""Repeats and overlaps in a bulk feed, counted and reported as one warning.

Real feeds are full of them (the same address twice, an address inside a listed
range); they are harmless, since the compiler merges, so bulk.py keeps every row
and this module only says how many there were, with one example. The big loops
run in C (set, sort, bisect via map/compress) so a million-line feed costs well
under a second here.

A feed whose repeats are expected says so in one of the comment lines that open it,
`# publisher: allow-repeats`: the warning is then not given (the file itself, not zones.yaml,
because it is the feed's nature, and rbldnsd reads the line as a comment).
"""

from __future__ import annotations

import operator
import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat

from publisher import codes
from publisher.errors import Location, Problem, Severity
from publisher.model import SourceData


def _by_family_set() -> dict[int, set[int]]:
    return {4: set(), 6: set()}


def _by_family_list() -> dict[int, list[tuple[int, int, int]]]:
    return {4: [], 6: []}


def _by_family_count() -> dict[int, int]:
    return {4: 0, 6: 0}


@dataclass(slots=True)
class Seen:
    """Live (non-excluded) listings of one file, gathered while bulk.py stores rows."""

    singles: dict[int, set[int]] = field(default_factory=_by_family_set)  # distinct single addresses
    ranges: dict[int, list[tuple[int, int, int]]] = field(default_factory=_by_family_list)  # (start, end, line)
    single_rows: dict[int, int] = field(default_factory=_by_family_count)  # rows that were single addresses


Example = tuple[int, int, str]  # (line, earlier line, "repeats" | "overlaps" | "lies inside")

#: Above this many /24 buckets the singles-in-ranges count uses plain bisection.
_MAX_BUCKETS = 1 << 21


def _first_repeat(src: SourceData, family: int, excl_ids: set[int]) -> Example | None:
    if family == 4:
        cols = zip(src.v4_start, src.v4_end, src.v4_value, src.v4_line)
    else:
        cols = zip(src.v6_start, src.v6_end, src.v6_value, src.v6_line)
    seen: dict[int, int] = {}
    for s, e, v, line in cols:
        if s == e and v not in excl_ids:
            if s in seen:
                return (line, seen[s], "repeats")
            seen[s] = line
    return None


def _inside(singles: set[int], m_starts: list[int], m_ends: list[int], family: int) -> list[int]:
    """The distinct single addresses that lie inside a merged range (loops in C)."""
    if not singles or not m_starts:
        return []
    cands: Sequence[int] | set[int] = singles
    if family == 4 and sum((e >> 8) - (s >> 8) + 1 for s, e in zip(m_starts, m_ends)) <= _MAX_BUCKETS:
        # Only addresses whose /24 meets a range need the bisection.
        buckets = {b for s, e in zip(m_starts, m_ends) for b in range(s >> 8, (e >> 8) + 1)}
        cands = list(compress(singles, map(buckets.__contains__, map(operator.rshift, singles, repeat(8)))))
    cands = list(cands)
    ext_ends = [-1, *m_ends]
    hits = map(operator.ge, map(ext_ends.__getitem__, map(bisect_right, repeat(m_starts), cands)), cands)
    return list(compress(cands, hits))


def _ip_repeats(src: SourceData, seen: Seen, family: int, excl_ids: set[int]) -> tuple[int, int, Example | None]:
    repeats = seen.single_rows[family] - len(seen.singles[family])
    example = _first_repeat(src, family, excl_ids) if repeats else None
    ranges = seen.ranges[family]
    ranges.sort()
    overlaps = 0
    m_starts: list[int] = []
    m_ends: list[int] = []
    prev: tuple[int, int, int] | None = None
    reach_line = 0  # the line of the range that reaches furthest so far
    for s, e, line in ranges:
        if prev is not None and s == prev[0] and e == prev[1]:
            repeats += 1
            example = example or (line, prev[2], "repeats")
        elif m_ends and s <= m_ends[-1]:
            overlaps += 1
            example = example or (line, reach_line, "overlaps")
        if m_ends and s <= m_ends[-1] + 1:
            if e > m_ends[-1]:
                m_ends[-1], reach_line = e, line
        else:
            m_starts.append(s)
            m_ends.append(e)
            reach_line = line
        prev = (s, e, line)
    inside = _inside(seen.singles[family], m_starts, m_ends, family)
    overlaps += len(inside)
    if inside and example is None:
        addr = inside[0]
        starts = src.v4_start if family == 4 else src.v6_start
        lines = src.v4_line if family == 4 else src.v6_line
        outer = next(r for r in ranges if r[0] <= addr <= r[1])
        example = (lines[starts.index(addr)], outer[2], "lies inside")
    return repeats, overlaps, example


def _domain_repeats(source: SourceData, excl_ids: set[int]) -> tuple[int, int, Example | None]:
    first: dict[tuple[str, int], int] = {}
    repeats = 0
    example: Example | None = None
    for name, wild, value, line in zip(source.dom_name, source.dom_wild, source.dom_value, source.dom_line):
        if value in excl_ids:
            continue
        if (name, wild) in first:
            repeats += 1
            example = example or (line, first[(name, wild)], "repeats")
        else:
            first[(name, wild)] = line
    overlaps = 0
    wilds = {name: line for (name, wild), line in first.items() if wild}
    if wilds:
        for (name, _wild), line in first.items():
            labels = name.split(".")
            for i in range(1, len(labels)):
                outer = wilds.get(".".join(labels[i:]))
                if outer is not None:
                    overlaps += 1
                    example = example or (line, outer, "lies inside")
                    break
    return repeats, overlaps, example


#: The comment that silences the warning, among the comment lines at the top of a bulk file.
ALLOW_REPEATS = "# publisher: allow-repeats"
_ALLOW = re.compile(r"#\s*publisher:\s*allow-repeats\s*")
#: How far into a file the opening comment lines are looked for.
_HEAD = 4096


def allows_repeats(data: str | bytes) -> bool:
    """Does the file open with comment lines, one of them `# publisher: allow-repeats`?"""
    head = data[:_HEAD]
    text = head.decode("utf-8", "replace") if isinstance(head, bytes) else head
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if not line.startswith("#"):
            return False  # the first entry (or value line) ends the opening comments
        if _ALLOW.fullmatch(line):
            return True
    return False


def summarise_repeats(source: SourceData, seen: Seen, excl_ids: set[int], *, ip: bool) -> Problem | None:
    """One warning for the whole file, or None when every listing is distinct."""
    return repeats_problem(source.path, *count_repeats(source, seen, excl_ids, ip=ip))


def count_repeats(source: SourceData, seen: Seen, excl_ids: set[int], *, ip: bool) -> tuple[int, int, Example | None]:
    """(repeated entries, overlapping entries, an example) of one file."""
    if ip:
        parts = [_ip_repeats(source, seen, 4, excl_ids), _ip_repeats(source, seen, 6, excl_ids)]
    else:
        parts = [_domain_repeats(source, excl_ids)]
    repeats = sum(p[0] for p in parts)
    overlaps = sum(p[1] for p in parts)
    example = next((p[2] for p in parts if p[2]), None)
    return repeats, overlaps, example


def repeats_problem(path: str, repeats: int, overlaps: int, example: Example | None) -> Problem | None:
    """The warning `summarise_repeats` gives for these counts."""
    if not repeats and not overlaps:
        return None
    detail = f" (e.g. line {example[0]} {example[2]} line {example[1]})" if example else ""
    return Problem(
        Location(path, example[0] if example else None),
        codes.BULK_REPEATS,
        f"{repeats} repeated and {overlaps} overlapping entries{detail}; they are merged when compiled",
        "nothing to do; deduplicate the feed if this is not expected",
        severity=Severity.WARNING,
    )
