"""Address spans for the refresh (on `ranges.Ranges`): clip, subtract, the fewest CIDR blocks, and counts as the
zone's share and shared-pool limits count them (IPv4 addresses, IPv6 /64s). Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from publisher.addresses import Network, range_networks
from publisher.spf.ranges import Ranges

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


def merge(intervals: Iterable[Interval]) -> Ranges:
    """The union of any intervals, as the sorted disjoint set the other operations take."""
    return Ranges.build(intervals)


def subtract(span: Interval, cuts: Ranges) -> list[Interval]:
    """`span` minus `cuts`."""
    return list(Ranges.of(*span).subtract(cuts))


def clip(span: Interval, keep: Ranges) -> list[Interval]:
    """`span` intersected with `keep`."""
    return list(Ranges.of(*span).intersect(keep))


def cidrs(family: int, spans: Iterable[Interval]) -> list[Network]:
    return [net for start, end in spans for net in range_networks(family, start, end)]


def count(networks: Iterable[Network]) -> Counts:
    """IPv4 addresses and IPv6 /64s covered (overlaps counted once)."""
    nets = list(networks)
    v4 = merge((n.start, n.end) for n in nets if n.family == 4)
    v6 = merge((n.start >> 64, n.end >> 64) for n in nets if n.family == 6)
    return Counts(v4.size(), v6.size())
