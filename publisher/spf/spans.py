"""Address spans for the refresh: clip, subtract, the fewest CIDR blocks, and counts as the
zone's share and shared-pool limits count them (IPv4 addresses, IPv6 /64s). Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from publisher.addresses import Network, range_to_cidrs

Interval = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Counts:
    """What a set of entries lists: IPv4 addresses and IPv6 /64 networks (counted apart)."""

    v4: int = 0
    v6_64s: int = 0

    def text(self) -> str:
        """`5 addresses`; with IPv6: `5 IPv4 addresses, 2 IPv6 /64s`."""
        if not self.v6_64s:
            return f"{self.v4} address{'' if self.v4 == 1 else 'es'}"
        return f"{self.v4} IPv4 addresses, {self.v6_64s} IPv6 /64s"

    def moved(self, after: Counts) -> str:
        """`4 -> 5 addresses`; with IPv6 on either side: `4 -> 5 IPv4 addresses, 0 -> 2 IPv6 /64s`."""
        if not self.v6_64s and not after.v6_64s:
            return f"{self.v4} -> {after.v4} addresses"
        return f"{self.v4} -> {after.v4} IPv4 addresses, {self.v6_64s} -> {after.v6_64s} IPv6 /64s"


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1] + 1:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def subtract(span: Interval, cuts: Sequence[Interval]) -> list[Interval]:
    """`span` minus the merged, sorted `cuts`."""
    out: list[Interval] = []
    start, end = span
    for c_start, c_end in cuts:
        if c_end < start or c_start > end:
            continue
        if c_start > start:
            out.append((start, c_start - 1))
        start = max(start, c_end + 1)
        if start > end:
            return out
    if start <= end:
        out.append((start, end))
    return out


def clip(span: Interval, keep: Sequence[Interval]) -> list[Interval]:
    """`span` intersected with the merged, sorted `keep`."""
    return [(max(span[0], s), min(span[1], e)) for s, e in keep if s <= span[1] and e >= span[0]]


def cidrs(family: int, spans: Iterable[Interval]) -> list[Network]:
    bits = 32 if family == 4 else 128
    out = []
    for start, end in spans:
        for base, plen in range_to_cidrs(start, end, bits):
            out.append(Network(family, base, base + (1 << (bits - plen)) - 1))
    return out


def count(networks: Iterable[Network]) -> Counts:
    """IPv4 addresses and IPv6 /64s covered (overlaps counted once)."""
    nets = list(networks)
    v4 = merge((n.start, n.end) for n in nets if n.family == 4)
    v6 = merge((n.start >> 64, n.end >> 64) for n in nets if n.family == 6)
    return Counts(sum(e - s + 1 for s, e in v4), sum(e - s + 1 for s, e in v6))
