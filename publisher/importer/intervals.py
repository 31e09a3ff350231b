"""Sets of integer intervals for the importer's model of rbldnsd (answers.py), in C-speed passes.

A million rows must not take a million iterations of a Python loop body: rows are
packed into ints and sorted, neighbours are compared with `map(operator...)`, and
only the clusters of nested blocks take a loop. `Segs` is the shape both the model
and the compiled zone are brought to for compare.py. Pure.
"""

from __future__ import annotations

import operator
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import accumulate, compress, repeat

__all__ = ["Segs", "octet_blocks", "octet_rows", "paint", "union"]


@dataclass(slots=True)
class Segs:
    """Disjoint inclusive intervals sorted by start, as parallel lists; `key[i]` indexes a table."""

    start: list[int] = field(default_factory=list)
    end: list[int] = field(default_factory=list)
    key: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.start)

    def at(self, point: int) -> int | None:
        """The key of the interval holding `point`, or None."""
        i = bisect_right(self.start, point) - 1
        return self.key[i] if i >= 0 and self.end[i] >= point else None

    def overlaps(self, lo: int, hi: int) -> bool:
        i = bisect_right(self.start, hi) - 1  # the last interval starting at or before hi
        return i >= 0 and self.end[i] >= lo

    def carve(self, lo: int, hi: int) -> Segs:
        """These intervals without [lo, hi]."""
        i = bisect_right(self.end, lo - 1)  # the first that ends at or after lo
        j = bisect_right(self.start, hi)  # past the last that starts at or before hi
        if i >= j:
            return self
        ss, ee, kk = self.start[:i], self.end[:i], self.key[:i]
        if self.start[i] < lo:
            ss.append(self.start[i])
            ee.append(lo - 1)
            kk.append(self.key[i])
        if self.end[j - 1] > hi:
            ss.append(hi + 1)
            ee.append(self.end[j - 1])
            kk.append(self.key[j - 1])
        return Segs(ss + self.start[j:], ee + self.end[j:], kk + self.key[j:])


def octet_blocks(start: int, end: int) -> Iterator[tuple[int, int]]:
    """ip4set's expansion of a range: the fewest octet-aligned blocks (start, size)."""
    while start <= end:
        for size in (1 << 24, 1 << 16, 1 << 8, 1):
            if start % size == 0 and start + size - 1 <= end:
                break
        yield start, size
        start += size


def union(ss: list[int], ee: list[int], key: int, bits: int) -> Segs:
    """The union of intervals as disjoint, non-adjacent intervals, all answering `key`."""
    top = (1 << bits) - 1
    packed = sorted(map(operator.or_, map(operator.lshift, ss, repeat(bits)), ee))
    ss = list(map(operator.rshift, packed, repeat(bits)))
    ee = list(accumulate(map(operator.and_, packed, repeat(top)), max))  # the furthest end so far
    del packed
    # An interval starts where a row starts past the furthest end before it (plus one: adjacent ones join).
    starts = [True, *map(operator.gt, ss[1:], map((1).__add__, ee))]
    ends = starts[1:] + [True]
    out_s = list(compress(ss, starts))
    return Segs(out_s, list(compress(ee, ends)), [key] * len(out_s))


def octet_rows(ss: list[int], ee: list[int], vv: list[int]) -> tuple[list[int], list[int], list[int]]:
    """ip4set rows -> its octet-aligned blocks (a /32, the usual row, is one already)."""
    wide = [i for i, (s, e) in enumerate(zip(ss, ee)) if s != e]
    if not wide:
        return ss, ee, vv
    single = [i for i, (s, e) in enumerate(zip(ss, ee)) if s == e]
    os_, oe, ov = [ss[i] for i in single], [ee[i] for i in single], [vv[i] for i in single]
    for i in wide:
        for bs, size in octet_blocks(ss[i], ee[i]):
            os_.append(bs)
            oe.append(bs + size - 1)
            ov.append(vv[i])
    return os_, oe, ov


def paint(ss: list[int], ee: list[int], kk: list[int]) -> Segs:
    """Blocks sorted by start, the larger of two with one start first, a laminar family
    (any two nest or are disjoint), innermost wins -> disjoint listed intervals (key 0:
    not listed). Only clusters of nested blocks take the stack walk."""
    out = Segs()
    if not ss:
        return out
    nested = list(compress(range(1, len(ss)), map(operator.ge, accumulate(ee, max), ss[1:])))
    done = 0
    i = 0
    while i < len(nested):
        a = nested[i] - 1  # the block that the run of nested ones starts inside
        j = i
        while j + 1 < len(nested) and nested[j + 1] == nested[j] + 1:
            j += 1
        b = nested[j] + 1
        _emit_run(out, ss[done:a], ee[done:a], kk[done:a])
        _paint_cluster(out, ss[a:b], ee[a:b], kk[a:b])
        done, i = b, j + 1
    _emit_run(out, ss[done:], ee[done:], kk[done:])
    return out


def _emit_run(out: Segs, ss: list[int], ee: list[int], kk: list[int]) -> None:
    """Disjoint sorted blocks: append the listed ones, joining neighbours of one payload."""
    if 0 in kk:
        listed = [i for i, k in enumerate(kk) if k]
        ss, ee, kk = [ss[i] for i in listed], [ee[i] for i in listed], [kk[i] for i in listed]
    if not ss:
        return
    if out.end and out.end[-1] + 1 == ss[0] and out.key[-1] == kk[0]:
        out.end[-1] = ee[0]
        ss, ee, kk = ss[1:], ee[1:], kk[1:]
    # joined[i]: block i + 1 goes on from block i with the same payload
    joined = list(map(operator.and_, map(operator.eq, map((1).__add__, ee), ss[1:]), map(operator.eq, kk, kk[1:])))
    if any(joined):
        heads = [True, *map(operator.not_, joined)]
        tails = heads[1:] + [True]
        ss, ee, kk = list(compress(ss, heads)), list(compress(ee, tails)), list(compress(kk, heads))
    out.start += ss
    out.end += ee
    out.key += kk


def _emit(out: Segs, s: int, e: int, k: int) -> None:
    if s > e or not k:
        return
    if out.end and out.end[-1] == s - 1 and out.key[-1] == k:
        out.end[-1] = e
    else:
        out.start.append(s)
        out.end.append(e)
        out.key.append(k)


def _paint_cluster(out: Segs, ss: list[int], ee: list[int], kk: list[int]) -> None:
    stack: list[tuple[int, int]] = []
    cur = 0
    for s, e, k in zip(ss, ee, kk):
        while stack and stack[-1][0] < s:
            top_e, top_k = stack.pop()
            _emit(out, cur, top_e, top_k)
            cur = top_e + 1
        if stack:
            _emit(out, cur, s - 1, stack[-1][1])
        cur = s
        stack.append((e, k))
    while stack:
        top_e, top_k = stack.pop()
        _emit(out, cur, top_e, top_k)
        cur = top_e + 1
