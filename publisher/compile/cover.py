"""Which entries of one source cover an address or a name, found by bisection, not by a scan.

`CoverIndex.build(source)` once per source, then `.covering(query)` answers exactly what
`lookup.covering_entries(source, query)` answers (the same hits in the same order) in
O(c log n) per query, c the number of distinct block sizes. The web face asks it for every
lookup, over sources of up to millions of rows. Pure.

Address blocks of a family are grouped by size class c = bit_length(end - start), so a block
of class c holds at most 2**c addresses: only blocks of that class starting in
[a - 2**c + 1, a] can cover address a (two bisections), and those are checked one by one.
Domains: the exact names and the wildcard suffixes sorted, each of the query's suffixes
bisected. Columns are arrays of row numbers (4 bytes a row) beside sorted starts or names
that share the source's own objects: no Python object per row.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import and_, lshift, or_, sub

from publisher.compile.lookup import Hit, Query
from publisher.model import SourceData


@dataclass(frozen=True, slots=True)
class _Blocks:
    """One family's blocks: row numbers grouped by size class, sorted by start inside a class."""

    rows: array[int]  # row numbers within the family, class by class
    starts: Sequence[int]  # the rows' starts, in the same order (an array for IPv4, ints shared for IPv6)
    classes: tuple[tuple[int, int, int], ...]  # (class c, first, past-last position in rows)

    @classmethod
    def build(cls, starts: Sequence[int], ends: Sequence[int], v6: bool) -> _Blocks:
        n = len(starts)
        size_class = bytearray(map(int.bit_length, map(sub, ends, starts)))  # 0..128
        # One int per row, (class, start, row) packed, sorted without a key: half the memory
        # of sorting row numbers by a key (no list of keys beside them).
        row_bits = 32
        class_shift = row_bits + (128 if v6 else 32)
        packed = list(
            map(
                or_,
                map(lshift, size_class, repeat(class_shift)),
                map(or_, map(lshift, starts, repeat(row_bits)), range(n)),
            )
        )
        packed.sort()
        rows = array("I", map(and_, packed, repeat((1 << row_bits) - 1)))
        classes: list[tuple[int, int, int]] = []
        for c in sorted(set(size_class)):
            first = bisect_left(packed, c << class_shift)
            classes.append((c, first, bisect_left(packed, (c + 1) << class_shift, first)))
        del packed
        # the starts again, from the source's own objects (shared, for IPv6's big ints)
        sorted_starts: Sequence[int] = (
            list(map(starts.__getitem__, rows)) if v6 else array("I", map(starts.__getitem__, rows))
        )
        return cls(rows, sorted_starts, tuple(classes))

    def covering(self, a: int, ends: Sequence[int]) -> list[int]:
        """Row numbers of the blocks that hold address `a`."""
        found: list[int] = []
        starts, rows = self.starts, self.rows
        for c, first, past in self.classes:
            lo = bisect_left(starts, a - (1 << c) + 1, first, past)
            hi = bisect_right(starts, a, lo, past)
            found.extend(k for k in rows[lo:hi] if ends[k] >= a)
        return found


@dataclass(frozen=True, slots=True)
class _Names:
    """Domain rows of one kind (exact or wildcard), sorted by name."""

    names: list[str]  # the source's own strings, sorted
    rows: array[int]  # their row numbers among the source's domains

    @classmethod
    def build(cls, names: Sequence[str], rows: list[int]) -> _Names:
        rows.sort(key=names.__getitem__)
        return cls(list(map(names.__getitem__, rows)), array("I", rows))

    def find(self, name: str) -> array[int]:
        lo = bisect_left(self.names, name)
        hi = bisect_right(self.names, name, lo)
        return self.rows[lo:hi]


@dataclass(frozen=True, slots=True)
class CoverIndex:
    """The rows of one source, indexed to say which cover a query."""

    source: SourceData
    v4: _Blocks
    v6: _Blocks
    exact: _Names
    wild: _Names

    @classmethod
    def build(cls, source: SourceData) -> CoverIndex:
        wild = source.dom_wild
        exact_rows = [k for k in range(len(wild)) if not wild[k]]
        wild_rows = [k for k in range(len(wild)) if wild[k]]
        return cls(
            source,
            _Blocks.build(source.v4_start, source.v4_end, v6=False),
            _Blocks.build(source.v6_start, source.v6_end, v6=True),
            _Names.build(source.dom_name, exact_rows),
            _Names.build(source.dom_name, wild_rows),
        )

    def covering(self, query: Query) -> list[Hit]:
        """Every entry of the source that covers the query, most specific first (as `covering_entries`)."""
        src = self.source
        found: list[tuple[int, int, int]] = []  # (size, line, row number among all rows)
        if query.family == 4 or query.family == 6:
            v4 = query.family == 4
            starts, ends, lines = (
                (src.v4_start, src.v4_end, src.v4_line) if v4 else (src.v6_start, src.v6_end, src.v6_line)
            )
            offset = 0 if v4 else len(src.v4_start)
            for k in (self.v4 if v4 else self.v6).covering(query.addr, ends):
                found.append((ends[k] - starts[k] + 1, lines[k], offset + k))
        elif query.family == 0:
            name = query.domain
            offset = len(src.v4_start) + len(src.v6_start)
            lines = src.dom_line
            found.extend((0, lines[k], offset + k) for k in self.exact.find(name))
            dots = name.count(".")
            at = name.find(".")
            while at >= 0:
                # `*.n` covers name when name ends with "." + n: n is what follows one of its dots
                suffix = name[at + 1 :]
                depth = 1 + dots - suffix.count(".")
                found.extend((depth, lines[k], offset + k) for k in self.wild.find(suffix))
                at = name.find(".", at + 1)
        found.sort()
        hits: list[Hit] = []
        for size, _line, k in found:
            row = src.row(k)
            hits.append(Hit(src.path, row.line, row.text, src.values[row.value], size))
        return hits
