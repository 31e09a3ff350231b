"""Sets of addresses of one family as sorted disjoint intervals, for the SPF expansion.

A set is a `Ranges`: parallel lists of inclusive starts and ends, sorted, disjoint and
not adjacent (adjacent intervals are merged). The expansion intersects every term's
match set with the addresses still undecided and removes what a term decides, so the
operations bisect into the larger set instead of scanning it: a record of thousands of
`-ip4:x/32` terms before `ip4:0.0.0.0/1` costs thousands of bisections, not a square.
Pure.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator


class Ranges:
    """An immutable set of addresses as sorted, disjoint, non-adjacent [start, end] intervals."""

    __slots__ = ("ends", "starts")

    def __init__(self, starts: list[int], ends: list[int]) -> None:
        self.starts = starts  # callers never mutate them after construction
        self.ends = ends

    @classmethod
    def of(cls, start: int, end: int) -> Ranges:
        return cls([start], [end])

    @classmethod
    def empty(cls) -> Ranges:
        return cls([], [])

    @classmethod
    def build(cls, pairs: Iterable[tuple[int, int]]) -> Ranges:
        """The union of any intervals, in any order."""
        starts: list[int] = []
        ends: list[int] = []
        for start, end in sorted(pairs):
            if ends and start <= ends[-1] + 1:
                if end > ends[-1]:
                    ends[-1] = end
            else:
                starts.append(start)
                ends.append(end)
        return cls(starts, ends)

    def __bool__(self) -> bool:
        return bool(self.starts)

    def __len__(self) -> int:
        return len(self.starts)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self.starts, self.ends, strict=True)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ranges) and self.starts == other.starts and self.ends == other.ends

    def __hash__(self) -> int:
        return hash((tuple(self.starts), tuple(self.ends)))

    def __repr__(self) -> str:
        return f"Ranges({list(self)})"

    def size(self) -> int:
        """How many addresses."""
        return sum(self.ends) - sum(self.starts) + len(self.starts)

    def __contains__(self, addr: object) -> bool:
        if not isinstance(addr, int):
            return False
        at = bisect_right(self.starts, addr) - 1
        return at >= 0 and addr <= self.ends[at]

    def union(self, other: Ranges) -> Ranges:
        if not other:
            return self
        if not self:
            return other
        return Ranges.build([*self, *other])

    def intersect(self, other: Ranges) -> Ranges:
        """Both sets' addresses: each interval of the smaller set bisects into the larger."""
        small, big = (self, other) if len(self) <= len(other) else (other, self)
        starts: list[int] = []
        ends: list[int] = []
        for start, end in small:
            at = bisect_left(big.ends, start)  # the first interval of `big` ending at or after `start`
            while at < len(big.starts) and big.starts[at] <= end:
                starts.append(max(start, big.starts[at]))
                ends.append(min(end, big.ends[at]))
                at += 1
        return Ranges(starts, ends)

    def subtract(self, other: Ranges) -> Ranges:
        """This set without `other`'s addresses: each interval of `other` cuts by bisection."""
        if not other or not self:
            return self
        starts = list(self.starts)
        ends = list(self.ends)
        for start, end in other:
            lo = bisect_left(ends, start)  # first interval that may overlap
            hi = bisect_right(starts, end)  # past the last interval that may overlap
            if lo >= hi:
                continue
            new_starts: list[int] = []
            new_ends: list[int] = []
            if starts[lo] < start:
                new_starts.append(starts[lo])
                new_ends.append(start - 1)
            if ends[hi - 1] > end:
                new_starts.append(end + 1)
                new_ends.append(ends[hi - 1])
            starts[lo:hi] = new_starts
            ends[lo:hi] = new_ends
        return Ranges(starts, ends)
