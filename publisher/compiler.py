"""Entries -> CompiledZone: pure, no I/O, no clock (the caller passes `as_of`).

Semantics (DESIGN.md "Semantics"):
- Within one source file the most specific entry covering an address decides its
  value; an `exclude` entry makes a hole in the wider listings of that source.
- Across the sources of a zone every distinct code is returned, one A each, and
  one TXT per A (the first source in order gives the TXT of a shared code).
- Entries whose `expires` is at or before `as_of` are left out.
- The RFC 5782 test points are always present and cannot be overridden:
  127.0.0.2 and `test` listed, 127.0.0.1 and `invalid` never.
"""

from __future__ import annotations

import datetime as dt
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from publisher.addresses import (
    TEST_LISTED_DOMAIN,
    TEST_LISTED_V4,
    TEST_UNLISTED_DOMAIN,
    TEST_UNLISTED_V4,
    V4_BITS,
    V6_BITS,
    format_v4,
    range_to_cidrs,
)
from publisher.model import SourceData, Value, ZoneConfig
from publisher.zone import M64, SUBST, Answer, CompiledZone, ZoneInfo

TEST_REASON = "RFC 5782 test point"

# A per-source segment value: an index into the zone's pair table, or HOLE.
HOLE = -1
# Segment lists are parallel lists: starts, ends, values.
Segments = tuple[list[int], list[int], list[int]]


def render_txt(template: str, *, code: int, reason: str, zone: str) -> str:
    """Fill a TXT template; {ip}/{domain} become SUBST, filled per query by the server."""
    out: list[str] = []
    rest = template
    while rest:
        start = rest.find("{")
        end = rest.find("}", start + 1) if start >= 0 else -1
        if start < 0 or end < 0:
            out.append(rest)
            break
        out.append(rest[:start])
        key = rest[start + 1 : end]
        if key in ("ip", "domain"):
            out.append(SUBST)
        elif key == "code":
            out.append(format_v4(code))
        elif key == "reason":
            out.append(reason)
        elif key == "zone":
            out.append(zone)
        else:  # validation refuses unknown placeholders; keep the text as written
            out.append(rest[start : end + 1])
        rest = rest[end + 1 :]
    return "".join(out)


@dataclass(slots=True)
class _Pairs:
    """Interns (code, txt) pairs of one zone and the Answers built from sets of them."""

    zone: ZoneConfig
    pairs: list[tuple[int, str]]
    pair_index: dict[tuple[int, str], int]
    answers: list[Answer]
    answer_index: dict[tuple[int, ...], int]

    @classmethod
    def new(cls, zone: ZoneConfig) -> _Pairs:
        return cls(zone, [], {}, [], {})

    def pair(self, value: Value) -> int:
        txt = render_txt(self.zone.txt, code=value.code, reason=value.reason, zone=self.zone.name)
        key = (value.code, txt)
        idx = self.pair_index.get(key)
        if idx is None:
            idx = self.pair_index[key] = len(self.pairs)
            self.pairs.append(key)
        return idx

    def answer(self, pair_ids: Iterable[int]) -> int:
        """The answer for a set of pairs: one per distinct code, first pair wins the TXT."""
        by_code: dict[int, str] = {}
        for pid in pair_ids:
            code, txt = self.pairs[pid]
            by_code.setdefault(code, txt)
        codes = tuple(sorted(by_code))
        key = tuple(self.pair_index[(c, by_code[c])] for c in codes)
        idx = self.answer_index.get(key)
        if idx is None:
            idx = self.answer_index[key] = len(self.answers)
            self.answers.append(Answer(codes, tuple(by_code[c] for c in codes)))
        return idx


def _live(value: Value, as_of: dt.datetime) -> bool:
    return value.expires is None or value.expires > as_of


def _value_map(source: SourceData, pairs: _Pairs, as_of: dt.datetime) -> list[int | None]:
    """Per source value: a pair id, HOLE for exclusions, None when expired."""
    out: list[int | None] = []
    for value in source.values:
        if not _live(value, as_of):
            out.append(None)
        elif value.exclude:
            out.append(HOLE)
        else:
            out.append(pairs.pair(value))
    return out


def _laminar(starts: Sequence[int], ends: Sequence[int], vals: Sequence[int], bits: int) -> Segments:
    """Most specific entry wins: a stack sweep over nested intervals -> disjoint segments.

    Intervals that are not a single CIDR are cut into CIDRs first, so the family
    is laminar (any two intervals nest or are disjoint). Holes are dropped from
    the output; adjacent segments with the same value are joined.
    """
    rows: list[tuple[int, int, int, int]] = []
    for i, (s, e, v) in enumerate(zip(starts, ends, vals)):
        size = e - s + 1
        if size & (size - 1) or s % size:
            for cs, plen in range_to_cidrs(s, e, bits):
                rows.append((cs, -(cs + (1 << (bits - plen)) - 1), -i, v))
        else:
            # (start asc, end desc, earlier entry last so that it ends up innermost)
            rows.append((s, -e, -i, v))
    rows.sort()
    out_s: list[int] = []
    out_e: list[int] = []
    out_v: list[int] = []

    def emit(s: int, e: int, v: int) -> None:
        if v == HOLE or s > e:
            return
        if out_e and out_e[-1] == s - 1 and out_v[-1] == v:
            out_e[-1] = e
        else:
            out_s.append(s)
            out_e.append(e)
            out_v.append(v)

    stack_e: list[int] = []
    stack_v: list[int] = []
    cur = 0
    for s, neg_e, _, v in rows:
        e = -neg_e
        while stack_e and stack_e[-1] < s:
            top_e = stack_e.pop()
            emit(cur, top_e, stack_v.pop())
            cur = top_e + 1
        if stack_e:
            emit(cur, s - 1, stack_v[-1])
        cur = s
        stack_e.append(e)
        stack_v.append(v)
    while stack_e:
        top_e = stack_e.pop()
        emit(cur, top_e, stack_v.pop())
        cur = top_e + 1
    return out_s, out_e, out_v


def _merge(sources: list[Segments], pairs: _Pairs, override: Segments | None) -> Segments:
    """Union of the sources' disjoint segments -> disjoint segments of answer ids.

    Where only one source covers a stretch (the usual case) its pair maps to an
    answer directly; overlapping clusters are cut at every boundary. `override`
    segments (the RFC 5782 test points) replace whatever else covers them.
    """
    tagged: list[tuple[int, int, int, int]] = []  # (start, end, rank, pair-or-hole)
    rank_override = -1
    if override:
        tagged.extend((s, e, rank_override, v) for s, e, v in zip(*override))
    for rank, (ss, es, vs) in enumerate(sources):
        tagged.extend(zip(ss, es, [rank] * len(ss), vs))
    tagged.sort()
    out_s: list[int] = []
    out_e: list[int] = []
    out_v: list[int] = []
    single: dict[int, int] = {}

    def emit(s: int, e: int, a: int) -> None:
        if out_e and out_e[-1] == s - 1 and out_v[-1] == a:
            out_e[-1] = e
        else:
            out_s.append(s)
            out_e.append(e)
            out_v.append(a)

    i, n = 0, len(tagged)
    while i < n:
        s, e, rank, v = tagged[i]
        j = i + 1
        cluster_end = e
        while j < n and tagged[j][0] <= cluster_end:
            cluster_end = max(cluster_end, tagged[j][1])
            j += 1
        if j == i + 1:
            if v != HOLE:
                a = single.get(v)
                if a is None:
                    a = single[v] = pairs.answer((v,))
                emit(s, e, a)
        else:
            _merge_cluster(tagged[i:j], pairs, emit)
        i = j
    return out_s, out_e, out_v


def _merge_cluster(rows: list[tuple[int, int, int, int]], pairs: _Pairs, emit: object) -> None:
    points = sorted({r[0] for r in rows} | {r[1] + 1 for r in rows})
    for lo, nxt in zip(points, points[1:]):
        hi = nxt - 1
        covering = [r for r in rows if r[0] <= lo and r[1] >= hi]
        if not covering:
            continue
        forced = [r for r in covering if r[2] < 0]
        chosen = forced or covering
        ids = [r[3] for r in sorted(chosen, key=lambda r: r[2]) if r[3] != HOLE]
        if ids:
            emit(lo, hi, pairs.answer(ids))  # type: ignore[operator]


def _family(
    sources: list[SourceData],
    vmaps: list[list[int | None]],
    family: int,
) -> list[Segments]:
    per_source: list[Segments] = []
    bits = V4_BITS if family == 4 else V6_BITS
    for src, vmap in zip(sources, vmaps):
        if family == 4:
            starts, ends, raw = src.v4_start, src.v4_end, src.v4_value
        else:
            starts, ends, raw = src.v6_start, src.v6_end, src.v6_value  # type: ignore[assignment]
        if not len(starts):
            continue
        mapped = [vmap[v] for v in raw]
        if None in mapped:  # drop expired rows
            keep = [k for k, m in enumerate(mapped) if m is not None]
            starts = [starts[k] for k in keep]  # type: ignore[assignment]
            ends = [ends[k] for k in keep]  # type: ignore[assignment]
            mapped = [mapped[k] for k in keep]
        per_source.append(_laminar(starts, ends, mapped, bits))  # type: ignore[arg-type]
    return per_source


def _domains(
    sources: list[SourceData], vmaps: list[list[int | None]], pairs: _Pairs
) -> tuple[dict[str, int], dict[str, int], frozenset[str]]:
    exact_by_src: list[dict[str, int]] = []
    wild_by_src: list[dict[str, int]] = []
    for src, vmap in zip(sources, vmaps):
        exact: dict[str, int] = {}
        wild: dict[str, int] = {}
        for name, is_wild, raw in zip(src.dom_name, src.dom_wild, src.dom_value):
            v = vmap[raw]
            if v is None:
                continue
            (wild if is_wild else exact).setdefault(name, v)  # first entry of a source wins
        exact_by_src.append(exact)
        wild_by_src.append(wild)

    def best_wild(wild: dict[str, int], name: str, include_self: bool) -> int | None:
        if include_self and name in wild:
            return wild[name]
        while "." in name:
            name = name.split(".", 1)[1]
            if name in wild:
                return wild[name]
        return None

    def combine(values: list[int | None]) -> int:
        ids = [v for v in values if v is not None and v != HOLE]
        return pairs.answer(ids) if ids else HOLE

    exact_out: dict[str, int] = {}
    for name in {n for ex in exact_by_src for n in ex}:
        exact_out[name] = combine(
            [ex[name] if name in ex else best_wild(w, name, False) for ex, w in zip(exact_by_src, wild_by_src)]
        )
    wild_out: dict[str, int] = {}
    for name in {n for w in wild_by_src for n in w}:
        wild_out[name] = combine([best_wild(w, name, True) for w in wild_by_src])
    ents: set[str] = set()

    def add_ancestors(name: str, include_self: bool) -> None:
        if include_self:
            ents.add(name)
        while "." in name:
            name = name.split(".", 1)[1]
            ents.add(name)

    for name, a in exact_out.items():
        if a != HOLE:
            add_ancestors(name, False)
    for name, a in wild_out.items():
        if a != HOLE:
            add_ancestors(name, True)
    ents.difference_update(n for n, a in exact_out.items() if a != HOLE)
    return exact_out, wild_out, frozenset(ents)


def compile_zone(zone: ZoneConfig, sources: list[SourceData], *, as_of: dt.datetime) -> CompiledZone:
    """Compile the validated sources of one zone. Serial 0: artifacts assigns serials."""
    pairs = _Pairs.new(zone)
    vmaps = [_value_map(src, pairs, as_of) for src in sources]
    test_pair = pairs.pair(Value(TEST_LISTED_V4, TEST_REASON))
    info = ZoneInfo(zone.name, zone.kind, zone.role, zone.ttl, zone.soa, zone.ns)
    if zone.kind == "domain":
        exact, wild, ents = _domains(sources, vmaps, pairs)
        exact[TEST_LISTED_DOMAIN] = pairs.answer((test_pair,))
        exact[TEST_UNLISTED_DOMAIN] = HOLE
        ents = ents - {TEST_LISTED_DOMAIN, TEST_UNLISTED_DOMAIN}
        return CompiledZone(info, tuple(pairs.answers), dom_exact=exact, dom_wild=wild, dom_ents=ents)

    override: Segments = (
        [TEST_UNLISTED_V4, TEST_LISTED_V4],
        [TEST_UNLISTED_V4, TEST_LISTED_V4],
        [HOLE, test_pair],
    )
    v4s, v4e, v4v = _merge(_family(sources, vmaps, 4), pairs, override)
    v6s, v6e, v6v = _merge(_family(sources, vmaps, 6), pairs, None)
    return CompiledZone(
        info,
        tuple(pairs.answers),
        v4_start=array("I", v4s),
        v4_end=array("I", v4e),
        v4_value=array("I", v4v),
        v6_start_hi=array("Q", [s >> 64 for s in v6s]),
        v6_start_lo=array("Q", [s & M64 for s in v6s]),
        v6_end_hi=array("Q", [e >> 64 for e in v6e]),
        v6_end_lo=array("Q", [e & M64 for e in v6e]),
        v6_value=array("I", v6v),
    )


def next_expiry(sources: Iterable[SourceData], as_of: dt.datetime) -> dt.datetime | None:
    """The earliest `expires` still in the future: when a republish will change answers."""
    future = [v.expires for s in sources for v in s.values if v.expires is not None and v.expires > as_of]
    return min(future) if future else None


def listing_count(sources: Iterable[SourceData], as_of: dt.datetime) -> int:
    """Entries that list something (not exclusions, not expired)."""
    total = 0
    for src in sources:
        live = [_live(v, as_of) and not v.exclude for v in src.values]
        for column in (src.v4_value, src.v6_value, src.dom_value):
            total += sum(1 for v in column if live[v])
    return total
