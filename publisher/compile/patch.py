"""Incremental compile: the published CompiledZone + what changed -> the new CompiledZone.

Pure, like compiler.py. Every merge rule of docs/design.md section 4 decides an
address's answer from the entries that cover that address alone, so outside the
ranges of the entries removed, added or changed since the published compile (the
`Touched` ranges, plus every entry whose `expires` passed in between) the answers
cannot change. `patch_zone` keeps the published intervals there and compiles only
inside those ranges, from the rows of the new sources that overlap them: whole rows,
so that each keeps its prefix (its specificity) and its place in its file (the tie
rule). The result is exactly what `compile_zone` gives (tests/test_patch.py checks
this on random lists and edits): the answers table is canonical (`canonical_answers`)
and intervals of equal answers are joined across the edges of the touched ranges.

Domain zones are compiled in full: they are small next to address feeds, and a name's
answer depends on wildcards above it and empty non-terminals below it.
"""

from __future__ import annotations

import datetime as dt
import operator
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from typing import Any

from publisher.addresses import TEST_LISTED_V4, TEST_UNLISTED_V4, V4_BITS, V6_BITS
from publisher.compile.compiler import (
    TEST_REASON,
    _laminar,
    _merge,
    _Pairs,
    _value_map,
    answer_key,
)
from publisher.compile.excludes import HOLE, Segments, exclude_ranges, punch, split_excludes
from publisher.compile.zone import M64, Answer, CompiledZone, ZoneInfo
from publisher.model import SourceData, Touched, Value, ZoneConfig

#: A patch recompiles at most this share of a zone's rows; above it a full compile is as
#: cheap (the patch also scans every row once and copies the kept intervals).
PATCH_MAX_SHARE = 0.25

Ranges = list[tuple[int, int]]


def compile_settings(cfg: ZoneConfig) -> tuple[object, ...]:
    """The settings a compiled zone depends on besides its sources."""
    return (cfg.name, cfg.kind, cfg.role, cfg.txt, cfg.ttl, cfg.soa, cfg.ns, cfg.excludes)


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> Ranges:
    """Sorted, disjoint, non-adjacent ranges covering the same addresses."""
    out: Ranges = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + 1:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _overlapping(starts: Sequence[int], ends: Sequence[int], ranges: Ranges) -> list[int]:
    """Indexes of the rows [start, end] that overlap one of `ranges` (sorted, disjoint).

    A row overlaps iff the last range starting at or before its end reaches its start;
    the bisects and comparisons run in C (maps), one pass over a million rows.
    """
    if not ranges or not len(starts):
        return []
    rs = [-1] + [a for a, _ in ranges]
    reach = [-1, -1] + [b for _, b in ranges]  # reach[i] = end of rs[i - 1]
    found = map(reach.__getitem__, map(bisect_right, repeat(rs), ends))
    return list(compress(range(len(starts)), map(operator.ge, found, starts)))


@dataclass(slots=True)
class _Family:
    """One family's rows of every source that the patch recompiles."""

    ranges: Ranges
    per_source: list[tuple[list[int], list[int], list[int | None]]]

    @property
    def rows(self) -> int:
        return sum(len(s) for s, _, _ in self.per_source)


def _rows(src: SourceData, family: int) -> tuple[Sequence[int], Sequence[int], Sequence[int]]:
    if family == 4:
        return src.v4_start, src.v4_end, src.v4_value
    return src.v6_start, src.v6_end, src.v6_value


def _expired_ranges(sources: list[SourceData], family: int, since: dt.datetime, as_of: dt.datetime) -> Ranges:
    """The rows whose entry stopped counting in (since, as_of]: their answers change too."""
    out: Ranges = []
    for src in sources:
        gone = {i for i, v in enumerate(src.values) if v.expires is not None and since < v.expires <= as_of}
        if gone:
            starts, ends, values = _rows(src, family)
            out += [(s, e) for s, e, v in zip(starts, ends, values) if v in gone]
    return out


def with_expired(touched: Touched, sources: list[SourceData], since: dt.datetime, as_of: dt.datetime) -> Touched:
    """`touched` plus the rows whose entry stopped counting in (since, as_of]."""
    v4, v6 = _expired_ranges(sources, 4, since, as_of), _expired_ranges(sources, 6, since, as_of)
    if not v4 and not v6:
        return touched
    return Touched(v4=(*touched.v4, *v4), v6=(*touched.v6, *v6), names=touched.names)


def _select(sources: list[SourceData], vmaps: list[list[int | None]], family: int, ranges: Ranges) -> _Family:
    per_source: list[tuple[list[int], list[int], list[int | None]]] = []
    for src, vmap in zip(sources, vmaps):
        starts, ends, values = _rows(src, family)
        hits = _overlapping(starts, ends, ranges)
        per_source.append(([starts[k] for k in hits], [ends[k] for k in hits], [vmap[values[k]] for k in hits]))
    return _Family(ranges, per_source)


def _compile_inside(
    fam: _Family, pairs: _Pairs, bits: int, override: Segments | None, holes: list[tuple[int, int]]
) -> Segments:
    """The new intervals inside the touched ranges (answer ids of `pairs`), less the excludes' holes."""
    laminar: list[Segments] = []
    for starts, ends, mapped in fam.per_source:
        keep = [k for k, m in enumerate(mapped) if m is not None]  # expired rows drop out
        if keep:
            vals: list[int] = [mapped[k] for k in keep]  # type: ignore[misc]
            laminar.append(_laminar([starts[k] for k in keep], [ends[k] for k in keep], vals, bits))
    ss, ee, vv = punch(_merge(laminar, pairs, override), holes)
    out_s: list[int] = []
    out_e: list[int] = []
    out_v: list[int] = []
    rs = [a for a, _ in fam.ranges]
    for s, e, v in zip(ss, ee, vv):
        i = max(bisect_right(rs, s) - 1, 0)
        while i < len(fam.ranges) and fam.ranges[i][0] <= e:
            a, b = fam.ranges[i]
            lo, hi = max(a, s), min(b, e)
            if lo <= hi:
                out_s.append(lo)
                out_e.append(hi)
                out_v.append(v)
            i += 1
    return out_s, out_e, out_v


class _Out:
    """The spliced intervals: copied slices of the published ones and new pieces, with
    adjacent intervals of the same answer joined where they meet."""

    def __init__(self, s: Any, e: Any, v: Any) -> None:
        self.s, self.e, self.v = s, e, v

    def piece(self, s: int, e: int, v: int) -> None:
        if len(self.e) and self.e[-1] + 1 == s and self.v[-1] == v:
            self.e[-1] = e
        else:
            self.s.append(s)
            self.e.append(e)
            self.v.append(v)

    def run(self, s: Any, e: Any, v: Any) -> None:
        if not len(s):
            return
        self.piece(s[0], e[0], v[0])
        self.s += s[1:]
        self.e += e[1:]
        self.v += v[1:]


def _cut(old: tuple[Any, Any, Any], ranges: Ranges) -> tuple[list[tuple[int, int]], list[tuple[int, int, int]]]:
    """The index runs of published intervals that meet `ranges`, and what is left of those
    intervals outside the ranges (published answer ids)."""
    os_, oe, ov = old
    spans: list[tuple[int, int]] = []
    for a, b in ranges:
        i, j = bisect_left(oe, a), bisect_right(os_, b)
        if i < j:
            if spans and spans[-1][1] > i:
                spans[-1] = (spans[-1][0], j)
            else:
                spans.append((i, j))
    rs = [a for a, _ in ranges]
    left: list[tuple[int, int, int]] = []
    for i, j in spans:
        for k in range(i, j):
            s, e, v = os_[k], oe[k], ov[k]
            r = max(bisect_right(rs, s) - 1, 0)
            cur = s
            while r < len(ranges) and ranges[r][0] <= e:
                a, b = ranges[r]
                if b >= cur:
                    if a > cur:
                        left.append((cur, a - 1, v))
                    cur = max(cur, b + 1)
                r += 1
            if cur <= e:
                left.append((cur, e, v))
    return spans, left


def _used(values: Any, spans: list[tuple[int, int]], left: list[tuple[int, int, int]]) -> set[int]:
    """Published answer ids still used outside the touched ranges."""
    used = {v for _, _, v in left}
    done = 0
    for i, j in spans:
        used.update(values[done:i])
        done = j
    used.update(values[done:])
    return used


def _splice(
    old: tuple[Any, Any, Any],
    spans: list[tuple[int, int]],
    pieces: list[tuple[int, int, int]],
    out: _Out,
    remap: Sequence[int] | None,
) -> None:
    """Published intervals outside the spans (values through `remap`) and `pieces` (sorted,
    final ids) in address order, joined where they meet."""
    os_, oe, ov = old
    done = si = 0

    def copy_to(k: int) -> None:
        nonlocal done, si
        while done < k:
            if si < len(spans) and spans[si][0] <= done:
                done = max(done, spans[si][1])
                si += 1
                continue
            stop = min(k, spans[si][0]) if si < len(spans) else k
            vals = ov[done:stop] if remap is None else array("I", map(remap.__getitem__, ov[done:stop]))
            out.run(os_[done:stop], oe[done:stop], vals)
            done = stop

    for p in pieces:
        copy_to(bisect_left(os_, p[0]))
        out.piece(*p)
    copy_to(len(os_))


def _tables(
    before: CompiledZone, pairs: _Pairs, used_old: set[int], used_new: set[int]
) -> tuple[tuple[Answer, ...], list[int] | None, list[int]]:
    """The canonical answers table of the patched zone; published id -> new id (None: the
    same), patch id -> new id."""
    table = sorted({before.answers[i] for i in used_old} | {pairs.answers[i] for i in used_new}, key=answer_key)
    index = {a: k for k, a in enumerate(table)}
    old_map = [index.get(a, -1) for a in before.answers]
    same = tuple(table) == before.answers
    return tuple(table), None if same else old_map, [index.get(a, -1) for a in pairs.answers]


def patch_zone(
    cfg: ZoneConfig,
    sources: list[SourceData],
    *,
    as_of: dt.datetime,
    before: CompiledZone,
    before_cfg: ZoneConfig,
    before_as_of: dt.datetime,
    touched: Touched | None,
    max_share: float = PATCH_MAX_SHARE,
) -> CompiledZone | None:
    """`compile_zone(cfg, sources, as_of=as_of)`, computed from `before` (the zone compiled
    with `before_cfg` at `before_as_of`) and `touched` (the entries that changed since).

    None when the patch cannot be exact or would not pay: unknown changes, other
    compile settings, a domain zone, time going backwards, or more than `max_share` of
    the rows to recompile. The caller then compiles in full.
    """
    if touched is None or cfg.kind != "ip" or before.info.kind != "ip" or as_of < before_as_of:
        return None
    if compile_settings(cfg) != compile_settings(before_cfg):
        return None
    pairs = _Pairs.new(cfg)
    touched = with_expired(touched, sources, before_as_of, as_of)
    total = sum(len(s.v4_start) + len(s.v6_start) for s in sources)
    sources, excludes = split_excludes(cfg, sources)  # an edit of an excludes file is touched like any
    vmaps = [_value_map(src, pairs, as_of) for src in sources]
    test_pair = pairs.pair(Value(TEST_LISTED_V4, TEST_REASON))
    r4, r6 = merge_ranges(touched.v4), merge_ranges(touched.v6)
    fam4, fam6 = _select(sources, vmaps, 4, r4), _select(sources, vmaps, 6, r6)
    if fam4.rows + fam6.rows > max_share * total and fam4.rows + fam6.rows > 64:
        return None
    override: Segments = ([TEST_UNLISTED_V4, TEST_LISTED_V4], [TEST_UNLISTED_V4, TEST_LISTED_V4], [HOLE, test_pair])
    holes4, holes6 = exclude_ranges(excludes, 4, as_of), exclude_ranges(excludes, 6, as_of)
    new4 = _compile_inside(fam4, pairs, V4_BITS, override, holes4) if r4 else ([], [], [])
    new6 = _compile_inside(fam6, pairs, V6_BITS, None, holes6) if r6 else ([], [], [])

    old4 = (before.v4_start, before.v4_end, before.v4_value)
    old6 = (
        [(h << 64) | lo for h, lo in zip(before.v6_start_hi, before.v6_start_lo)],
        [(h << 64) | lo for h, lo in zip(before.v6_end_hi, before.v6_end_lo)],
        before.v6_value,
    )
    spans4, left4 = _cut(old4, r4)
    spans6, left6 = _cut(old6, r6)
    used_old = _used(old4[2], spans4, left4) | _used(old6[2], spans6, left6)
    table, old_map, new_map = _tables(before, pairs, used_old, {*new4[2], *new6[2]})

    def pieces(left: list[tuple[int, int, int]], new: Segments) -> list[tuple[int, int, int]]:
        out = [(s, e, v if old_map is None else old_map[v]) for s, e, v in left]
        out += [(s, e, new_map[v]) for s, e, v in zip(*new)]
        return sorted(out)

    out4 = _Out(array("I"), array("I"), array("I"))
    _splice(old4, spans4, pieces(left4, new4), out4, old_map)
    if not r6 and old_map is None:
        v6 = (before.v6_start_hi, before.v6_start_lo, before.v6_end_hi, before.v6_end_lo, before.v6_value)
    else:
        out6 = _Out([], [], array("I"))
        _splice(old6, spans6, pieces(left6, new6), out6, old_map)
        v6 = (
            array("Q", [s >> 64 for s in out6.s]),
            array("Q", [s & M64 for s in out6.s]),
            array("Q", [e >> 64 for e in out6.e]),
            array("Q", [e & M64 for e in out6.e]),
            out6.v,
        )
    info = ZoneInfo(cfg.name, cfg.kind, cfg.role, cfg.ttl, cfg.soa, cfg.ns)
    return CompiledZone(
        info,
        table,
        v4_start=out4.s,
        v4_end=out4.e,
        v4_value=out4.v,
        v6_start_hi=v6[0],
        v6_start_lo=v6[1],
        v6_end_hi=v6[2],
        v6_end_lo=v6[3],
        v6_value=v6[4],
    )


def changed_regions(before: CompiledZone, after: CompiledZone, touched: Touched) -> Touched:
    """The output ranges where `after` may differ from `before`: each touched range widened to
    the published and new intervals that cross it (a cut or joined interval renders anew)."""
    old6 = before.v6_intervals()
    new6 = after.v6_intervals()

    def widen(ranges: Ranges, sides: list[tuple[Sequence[int], Sequence[int]]]) -> tuple[tuple[int, int], ...]:
        out: Ranges = []
        for a, b in merge_ranges(ranges):
            lo, hi = a, b
            for starts, ends in sides:
                i, j = bisect_left(ends, a), bisect_right(starts, b)
                if i < j:
                    lo, hi = min(lo, starts[i]), max(hi, ends[j - 1])
            out.append((lo, hi))
        return tuple(merge_ranges(out))

    return Touched(
        v4=widen(list(touched.v4), [(before.v4_start, before.v4_end), (after.v4_start, after.v4_end)]),
        v6=widen(
            list(touched.v6),
            [([s for s, _, _ in old6], [e for _, e, _ in old6]), ([s for s, _, _ in new6], [e for _, e, _ in new6])],
        ),
        names=touched.names,
    )
