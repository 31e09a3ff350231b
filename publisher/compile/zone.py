"""The compiled zone: immutable, compact, looked up in O(log n).

Each family is a list of sorted, non-overlapping inclusive intervals held in
parallel arrays (no per-address Python objects), each pointing at an `Answer`
in a small table. IPv6 bounds are split into high and low 64-bit halves so they
fit arrays and the C `bisect` still does the search. Domains are dict lookups of
exact names and wildcard suffixes; an email zone's hash names are a sorted table of
digests (hashes.py), looked up through the same `lookup_domain`. A value of -1 marks an
explicit hole.

The server holds one `CompiledZone` per zone and swaps it by reference on reload;
nothing here changes after construction.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field

from publisher.addresses import V4_MAPPED_END, V4_MAPPED_START
from publisher.model import Kind, NameServer, Role, Soa

M64 = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class Answer:
    """What a listed name answers: one A per code, and one TXT per A (same order)."""

    codes: tuple[int, ...]
    txts: tuple[str, ...]  # txts[i] is the text of codes[i]; "" when that code has none

    @property
    def distinct_txts(self) -> tuple[str, ...]:
        """The TXT records to send: two codes with the same text make one record, since
        an RRset never holds the same data twice (RFC 2181 section 5), and an empty text
        makes none: a listing without text answers A only, as rbldnsd does."""
        return tuple(t for t in dict.fromkeys(self.txts) if t)


@dataclass(frozen=True, slots=True)
class ZoneInfo:
    """What the server needs besides the data: apex records and identity."""

    name: str
    kind: Kind
    role: Role
    ttl: int
    soa: Soa
    ns: tuple[NameServer, ...]
    serial: int = 0


def _u32() -> array[int]:
    return array("I")


def _u64() -> array[int]:
    return array("Q")


@dataclass(frozen=True, slots=True)
class CompiledZone:
    info: ZoneInfo
    answers: tuple[Answer, ...]
    v4_start: array[int] = field(default_factory=_u32)
    v4_end: array[int] = field(default_factory=_u32)
    v4_value: array[int] = field(default_factory=_u32)
    v6_start_hi: array[int] = field(default_factory=_u64)
    v6_start_lo: array[int] = field(default_factory=_u64)
    v6_end_hi: array[int] = field(default_factory=_u64)
    v6_end_lo: array[int] = field(default_factory=_u64)
    v6_value: array[int] = field(default_factory=_u32)
    #: Domain zones: a dict; email zones: a compile.hashes.HashTable (holes never in it).
    dom_exact: Mapping[str, int] = field(default_factory=dict)
    dom_wild: dict[str, int] = field(default_factory=dict)
    dom_ents: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return self.info.name

    # --- lookups: an index into `answers`, or -1 when not listed -------------

    def lookup_v4(self, addr: int) -> int:
        i = bisect_right(self.v4_start, addr) - 1
        if i >= 0 and self.v4_end[i] >= addr:
            return int(self.v4_value[i])
        return -1

    def lookup_v6(self, addr: int) -> int:
        if V4_MAPPED_START <= addr <= V4_MAPPED_END:
            return self.lookup_v4(addr - V4_MAPPED_START)
        hi, lo = addr >> 64, addr & M64
        sh = self.v6_start_hi
        i = bisect_right(sh, hi)
        j = bisect_left(sh, hi, 0, i)
        k = bisect_right(self.v6_start_lo, lo, j, i) - 1
        if k >= 0 and ((self.v6_end_hi[k] << 64) | self.v6_end_lo[k]) >= addr:
            return int(self.v6_value[k])
        return -1

    def lookup_domain(self, name: str) -> int:
        """`name` is lower case and relative to the zone ('' is the apex)."""
        value = self.dom_exact.get(name)
        if value is not None:
            return value
        wild = self.dom_wild
        while True:
            dot = name.find(".")
            if dot < 0:
                return -1
            name = name[dot + 1 :]
            value = wild.get(name)
            if value is not None:
                return value

    # --- empty non-terminals: does anything listed lie below this name? ------

    def v4_any_listed(self, start: int, end: int) -> bool:
        i = bisect_left(self.v4_end, start)
        return i < len(self.v4_start) and self.v4_start[i] <= end

    def v6_any_listed(self, start: int, end: int) -> bool:
        if start <= V4_MAPPED_END and end >= V4_MAPPED_START:
            lo4 = max(start, V4_MAPPED_START) - V4_MAPPED_START
            hi4 = min(end, V4_MAPPED_END) - V4_MAPPED_START
            if self.v4_any_listed(lo4, hi4):
                return True
        s_hi, s_lo = start >> 64, start & M64
        eh = self.v6_end_hi
        i = bisect_left(eh, s_hi)
        j = bisect_right(eh, s_hi, i)
        k = bisect_left(self.v6_end_lo, s_lo, i, j)
        if k >= len(eh):
            return False
        return ((self.v6_start_hi[k] << 64) | self.v6_start_lo[k]) <= end

    def domain_is_ent(self, name: str) -> bool:
        return name in self.dom_ents

    # --- iteration and counts -------------------------------------------------

    def v4_intervals(self) -> list[tuple[int, int, int]]:
        return list(zip(self.v4_start, self.v4_end, self.v4_value))

    def v6_intervals(self) -> list[tuple[int, int, int]]:
        return [
            ((sh << 64) | sl, (eh << 64) | el, v)
            for sh, sl, eh, el, v in zip(
                self.v6_start_hi, self.v6_start_lo, self.v6_end_hi, self.v6_end_lo, self.v6_value
            )
        ]

    @property
    def v4_addresses(self) -> int:
        return sum(self.v4_end) - sum(self.v4_start) + len(self.v4_start)

    @property
    def v6_addresses(self) -> int:
        return sum(e - s + 1 for s, e, _ in self.v6_intervals())

    @property
    def interval_count(self) -> int:
        return len(self.v4_start) + len(self.v6_start_hi)
