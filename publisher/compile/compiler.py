"""Entries -> CompiledZone: pure, no I/O, no clock (the caller passes `as_of`).

The merge rules (docs/design.md, "Answer semantics"):
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
import operator
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate, compress

from publisher import codes
from publisher.addresses import (
    TEST_LISTED_DOMAIN,
    TEST_LISTED_V4,
    TEST_UNLISTED_DOMAIN,
    TEST_UNLISTED_V4,
    V4_BITS,
    V6_BITS,
    range_to_cidrs,
)
from publisher.compile.email_zone import email_table, suffix_names
from publisher.compile.excludes import HOLE, Segments, exclude_ranges, punch, punch_domains, punch_names, split_excludes
from publisher.compile.zone import M64, Answer, CompiledZone, ZoneInfo
from publisher.emails import EmailSettings
from publisher.errors import Problem, ValidationFailed
from publisher.model import (
    MAX_TXT_BYTES,
    SUBST,
    SourceData,
    Value,
    ZoneConfig,
    longest_subject,
    longest_txt,
    render_txt,
)

TEST_REASON = "RFC 5782 test point"


def _refuse_long_txt(zone: ZoneConfig, txt: str) -> None:
    """Validation refuses these with file:line; this keeps a bypass (a direct compile) from
    writing a zone whose records could outgrow a DNS message and break every AXFR."""
    size = longest_txt(txt, longest_subject(zone.kind, zone.name))
    if size > MAX_TXT_BYTES:
        shown = txt.replace(SUBST, "$")
        message = (
            f"a TXT of {zone.name} can be {size:,} bytes long, over the limit of {MAX_TXT_BYTES}: {shown[:60]!r}..."
        )
        raise ValidationFailed([Problem(zone.location, codes.TXT_TOO_LONG, message, "validate the lists")])


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
            _refuse_long_txt(self.zone, txt)
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


def _value_map(source: SourceData, pairs: _Pairs, as_of: dt.datetime) -> list[int | None]:
    """Per source value: a pair id, HOLE for exclusions, None when expired."""
    out: list[int | None] = []
    for value in source.values:
        if not value.live(as_of):
            out.append(None)
        elif value.exclude:
            out.append(HOLE)
        else:
            out.append(pairs.pair(value))
    return out


def _sorted_runs(
    xs: list[int], xe: list[int], tail_bits: int, key_tail: list[int] | None
) -> tuple[list[int], list[int], list[int], list[tuple[int, int]]]:
    """Sort rows by start (then by `key_tail`), and find where rows overlap.

    Returns the sorted order, the sorted starts and ends, and the clusters
    [a, b) of sorted positions in which rows overlap; every position outside a
    cluster is a row that overlaps nothing. Sorting packed ints and a running
    max of the ends keep the work in C: a million-row feed with few overlaps
    costs no per-row Python loop body.
    """
    n = len(xs)
    if key_tail is None:
        order = sorted(range(n), key=xs.__getitem__)
    else:
        # Python's sort is stable: walking the indexes backwards puts, of two
        # equal keys, the earlier row last.
        keys = [(s << tail_bits) | t for s, t in zip(xs, key_tail)]
        order = sorted(range(n - 1, -1, -1), key=keys.__getitem__)
        del keys
    ss = [xs[i] for i in order]
    ee = [xe[i] for i in order]
    overlaps = list(map(operator.ge, accumulate(ee, max), ss[1:]))
    nested = list(compress(range(1, n), overlaps))
    clusters: list[tuple[int, int]] = []
    for p in nested:
        if clusters and clusters[-1][1] == p:
            clusters[-1] = (clusters[-1][0], p + 1)
        else:
            clusters.append((p - 1, p + 1))
    return order, ss, ee, clusters


def _join(out_s: list[int], out_e: list[int], out_v: list[int]) -> Segments:
    """Drop holes and join adjacent segments with the same value."""
    if HOLE in out_v:
        keep = [k for k, v in enumerate(out_v) if v != HOLE]
        out_s = [out_s[k] for k in keep]
        out_e = [out_e[k] for k in keep]
        out_v = [out_v[k] for k in keep]
    if not any(e + 1 == s and v == w for e, s, v, w in zip(out_e, out_s[1:], out_v, out_v[1:])):
        return out_s, out_e, out_v
    js: list[int] = []
    je: list[int] = []
    jv: list[int] = []
    for s, e, v in zip(out_s, out_e, out_v):
        if je and je[-1] + 1 == s and jv[-1] == v:
            je[-1] = e
        else:
            js.append(s)
            je.append(e)
            jv.append(v)
    return js, je, jv


def _splice(
    order: list[int],
    ss: list[int],
    ee: list[int],
    vv: list[int],
    clusters: list[tuple[int, int]],
    resolve: Callable[[int, int], list[tuple[int, int, int]]],
) -> Segments:
    """Copy the stretches between clusters as they are; replace each cluster by `resolve(a, b)`."""
    if not clusters:
        return ss, ee, vv
    out_s: list[int] = []
    out_e: list[int] = []
    out_v: list[int] = []
    done = 0
    for a, b in clusters:
        out_s += ss[done:a]
        out_e += ee[done:a]
        out_v += vv[done:a]
        for lo, hi, v in resolve(a, b):
            out_s.append(lo)
            out_e.append(hi)
            out_v.append(v)
        done = b
    out_s += ss[done:]
    out_e += ee[done:]
    out_v += vv[done:]
    return out_s, out_e, out_v


def _laminar(starts: Sequence[int], ends: Sequence[int], vals: Sequence[int], bits: int) -> Segments:
    """Most specific entry wins: nested intervals of one source -> disjoint segments.

    Intervals that are not a single CIDR are cut into CIDRs first, so the family
    is laminar (any two intervals nest or are disjoint). Rows sort by start,
    then size descending, then the earlier entry last so that, of two equal
    prefixes, the first listed is innermost and wins. Only clusters of nested
    rows go through the stack sweep. Holes stay in the output (as HOLE values).
    """
    xs: list[int] = list(starts)
    xe: list[int] = list(ends)
    xv: list[int] = list(vals)
    odd = [i for i, s, e in zip(range(len(xs)), xs, xe) if e != s and (((e - s + 1) & (e - s)) or s % (e - s + 1))]
    for i in odd:
        cidrs = range_to_cidrs(xs[i], xe[i], bits)
        cs, plen = cidrs[0]
        xe[i] = cs + (1 << (bits - plen)) - 1
        for cs, plen in cidrs[1:]:
            xs.append(cs)
            xe.append(cs + (1 << (bits - plen)) - 1)
            xv.append(xv[i])
    size_bits = bits + 1
    size_top = (1 << size_bits) - 1
    tail = [size_top - (e - s) for s, e in zip(xs, xe)]
    order, ss, ee, clusters = _sorted_runs(xs, xe, size_bits, tail)
    del tail
    vv = [xv[i] for i in order]

    def resolve(a: int, b: int) -> list[tuple[int, int, int]]:
        return _sweep(ss[a:b], ee[a:b], vv[a:b])

    return _splice(order, ss, ee, vv, clusters, resolve)


def _sweep(ss: list[int], ee: list[int], vv: list[int]) -> list[tuple[int, int, int]]:
    """Stack sweep over one cluster of nested rows (sorted); the innermost row decides."""
    out: list[tuple[int, int, int]] = []
    stack_e: list[int] = []
    stack_v: list[int] = []
    cur = 0
    for s, e, v in zip(ss, ee, vv):
        while stack_e and stack_e[-1] < s:
            top_e = stack_e.pop()
            if cur <= top_e:
                out.append((cur, top_e, stack_v.pop()))
            else:
                stack_v.pop()
            cur = top_e + 1
        if stack_e and cur <= s - 1:
            out.append((cur, s - 1, stack_v[-1]))
        cur = s
        stack_e.append(e)
        stack_v.append(v)
    while stack_e:
        top_e = stack_e.pop()
        if cur <= top_e:
            out.append((cur, top_e, stack_v.pop()))
        else:
            stack_v.pop()
        cur = top_e + 1
    return out


def _merge(sources: list[Segments], pairs: _Pairs, override: Segments | None) -> Segments:
    """Union of the sources' disjoint segments -> disjoint segments of answer ids.

    Where only one source covers a stretch (the usual case) its pair maps to an
    answer directly; overlapping clusters are cut at every boundary. `override`
    segments (the RFC 5782 test points) replace whatever else covers them.
    Holes left by the sources are dropped here.
    """
    all_s: list[int] = []
    all_e: list[int] = []
    all_r: list[int] = []
    all_v: list[int] = []
    for rank, (ss, es, vs) in enumerate(([override] if override else []) + sources, start=-1 if override else 0):
        all_s += ss
        all_e += es
        all_v += vs
        all_r += [rank] * len(ss)
    order, ss, ee, clusters = _sorted_runs(all_s, all_e, 0, None)
    single = {v: pairs.answer((v,)) for v in set(all_v) if v != HOLE}
    single[HOLE] = HOLE
    vv = [single[all_v[i]] for i in order]

    def resolve(a: int, b: int) -> list[tuple[int, int, int]]:
        rows = [(all_s[k], all_e[k], all_r[k], all_v[k]) for k in order[a:b]]
        return _merge_cluster(rows, pairs)

    return _join(*_splice(order, ss, ee, vv, clusters, resolve))


def _merge_cluster(rows: list[tuple[int, int, int, int]], pairs: _Pairs) -> list[tuple[int, int, int]]:
    out: list[tuple[int, int, int]] = []
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
            out.append((lo, hi, pairs.answer(ids)))
    return out


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
    sources: list[SourceData],
    vmaps: list[list[int | None]],
    pairs: _Pairs,
    holes: tuple[set[str], set[str]] = (set(), set()),
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
    for name in sorted({n for ex in exact_by_src for n in ex}):
        exact_out[name] = combine(
            [ex[name] if name in ex else best_wild(w, name, False) for ex, w in zip(exact_by_src, wild_by_src)]
        )
    wild_out: dict[str, int] = {}
    for name in sorted({n for w in wild_by_src for n in w}):
        wild_out[name] = combine([best_wild(w, name, True) for w in wild_by_src])
    hole_exact, hole_wild = holes
    if hole_exact or hole_wild:
        punch_names(exact_out, wild_out, hole_exact, hole_wild, best_wild)
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
    """Compile the validated sources of one zone. Serial 0: artifacts assigns serials.

    The zone's `excludes` files (among `sources`, told apart by their path) are holes in
    every listing: what they cover is removed after the sources are merged."""
    sources, excludes = split_excludes(zone, sources)
    pairs = _Pairs.new(zone)
    vmaps = [_value_map(src, pairs, as_of) for src in sources]
    test_pair = pairs.pair(Value(TEST_LISTED_V4, TEST_REASON))
    info = ZoneInfo(zone.name, zone.kind, zone.role, zone.ttl, zone.soa, zone.ns)
    if zone.kind == "domain":
        exact, wild, ents = _domains(sources, vmaps, pairs, punch_domains(excludes, as_of))
        exact[TEST_LISTED_DOMAIN] = pairs.answer((test_pair,))
        exact[TEST_UNLISTED_DOMAIN] = HOLE
        ents = ents - {TEST_LISTED_DOMAIN, TEST_UNLISTED_DOMAIN}
        answers, remap = canonical_answers(pairs.answers, [*exact.values(), *wild.values()])
        exact = {n: remap[v] if v != HOLE else HOLE for n, v in exact.items()}
        wild = {n: remap[v] if v != HOLE else HOLE for n, v in wild.items()}
        return CompiledZone(info, answers, dom_exact=exact, dom_wild=wild, dom_ents=ents)
    if zone.kind == "email":
        settings = zone.email or EmailSettings()
        table = email_table(settings, sources, vmaps, pairs.answer, punch_domains(excludes, as_of)[0])
        test = pairs.answer((test_pair,))
        answers, remap = canonical_answers(pairs.answers, [*set(table.indexes), test])
        table = table.remap(remap, {settings.name_of(TEST_LISTED_DOMAIN): remap[test]})
        return CompiledZone(info, answers, dom_exact=table, dom_ents=suffix_names(settings))

    override: Segments = (
        [TEST_UNLISTED_V4, TEST_LISTED_V4],
        [TEST_UNLISTED_V4, TEST_LISTED_V4],
        [HOLE, test_pair],
    )
    v4s, v4e, v4v = punch(_merge(_family(sources, vmaps, 4), pairs, override), exclude_ranges(excludes, 4, as_of))
    v6s, v6e, v6v = punch(_merge(_family(sources, vmaps, 6), pairs, None), exclude_ranges(excludes, 6, as_of))
    answers, remap = canonical_answers(pairs.answers, [*set(v4v), *set(v6v)])
    return CompiledZone(
        info,
        answers,
        v4_start=array("I", v4s),
        v4_end=array("I", v4e),
        v4_value=array("I", map(remap.__getitem__, v4v)),
        v6_start_hi=array("Q", [s >> 64 for s in v6s]),
        v6_start_lo=array("Q", [s & M64 for s in v6s]),
        v6_end_hi=array("Q", [e >> 64 for e in v6e]),
        v6_end_lo=array("Q", [e & M64 for e in v6e]),
        v6_value=array("I", map(remap.__getitem__, v6v)),
    )


def answer_key(answer: Answer) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """The order of a zone's answers table: by codes, then texts."""
    return answer.codes, answer.txts


def canonical_answers(table: Sequence[Answer], used: Iterable[int]) -> tuple[tuple[Answer, ...], list[int]]:
    """The answers a zone uses, sorted by `answer_key`, and old index -> new index (-1: unused).

    The order the merge meets answers in depends on how the work was split; a canonical table
    makes the compiled zone (and so its snapshot and digest) depend only on what it answers,
    so that an incremental compile (patch.py) gives the same bytes as a full one.
    """
    ids = sorted({i for i in used if i != HOLE}, key=lambda i: answer_key(table[i]))
    remap = [-1] * len(table)
    for new, old in enumerate(ids):
        remap[old] = new
    return tuple(table[i] for i in ids), remap


def next_expiry(sources: Iterable[SourceData], as_of: dt.datetime) -> dt.datetime | None:
    """The earliest `expires` still in the future: when a republish will change answers."""
    future = [v.expires for s in sources for v in s.values if v.expires is not None and v.expires > as_of]
    return min(future) if future else None


def listing_count(sources: Iterable[SourceData], as_of: dt.datetime) -> int:
    """Entries that list something (not exclusions, not expired)."""
    total = 0
    for src in sources:
        live = [v.live(as_of) and not v.exclude for v in src.values]
        for column in (src.v4_value, src.v6_value, src.dom_value):
            if len(live) * 16 < len(column):  # a bulk feed: few values, count each one in C
                total += sum(column.count(i) for i, counts in enumerate(live) if counts)
            else:
                total += sum(1 for v in column if live[v])
    return total
