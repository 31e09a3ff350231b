"""The IANA special-purpose address registries (IPv4 and IPv6): ranges an SPF record may name
but an allowlist never lists from it (private, loopback, link-local, documentation, ...).

`refresh.py` refuses a network of a partner's record that overlaps any of them, whole, with
the range's name and RFC in the generated file's `not_listed`. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from publisher.addresses import Network, parse_network


@dataclass(frozen=True, slots=True)
class SpecialRange:
    network: Network
    text: str  # as the registry writes it: 10.0.0.0/8
    name: str  # private-use, loopback, ...
    rfc: str  # RFC 1918

    @property
    def described(self) -> str:
        """`private-use range 10.0.0.0/8 (RFC 1918)`."""
        return f"{self.name} range {self.text} ({self.rfc})"


def _table(rows: tuple[tuple[str, str, str], ...]) -> tuple[SpecialRange, ...]:
    return tuple(SpecialRange(parse_network(text), text, name, rfc) for text, name, rfc in rows)


#: IANA IPv4 Special-Purpose Address Registry (the ranges an allowlist must never take from SPF).
SPECIAL_V4 = _table(
    (
        ("0.0.0.0/8", '"this network"', "RFC 791"),
        ("10.0.0.0/8", "private-use", "RFC 1918"),
        ("100.64.0.0/10", "shared address space (carrier-grade NAT)", "RFC 6598"),
        ("127.0.0.0/8", "loopback", "RFC 1122"),
        ("169.254.0.0/16", "link-local", "RFC 3927"),
        ("172.16.0.0/12", "private-use", "RFC 1918"),
        ("192.0.0.0/24", "IETF protocol assignments", "RFC 6890"),
        ("192.0.2.0/24", "documentation (TEST-NET-1)", "RFC 5737"),
        ("192.88.99.0/24", "6to4 relay anycast (deprecated)", "RFC 7526"),
        ("192.168.0.0/16", "private-use", "RFC 1918"),
        ("198.18.0.0/15", "benchmarking", "RFC 2544"),
        ("198.51.100.0/24", "documentation (TEST-NET-2)", "RFC 5737"),
        ("203.0.113.0/24", "documentation (TEST-NET-3)", "RFC 5737"),
        ("224.0.0.0/4", "multicast", "RFC 5771"),
        ("240.0.0.0/4", "reserved", "RFC 1112"),
        ("255.255.255.255/32", "limited broadcast", "RFC 919"),
    )
)

#: IANA IPv6 Special-Purpose Address Registry.
SPECIAL_V6 = _table(
    (
        ("::/128", "unspecified address", "RFC 4291"),
        ("::1/128", "loopback", "RFC 4291"),
        ("::ffff:0:0/96", "IPv4-mapped", "RFC 4291"),
        ("64:ff9b:1::/48", "IPv4-IPv6 translation (local use)", "RFC 8215"),
        ("100::/64", "discard-only", "RFC 6666"),
        ("2001::/23", "IETF protocol assignments", "RFC 2928"),
        ("2001:db8::/32", "documentation", "RFC 3849"),
        ("2002::/16", "6to4", "RFC 3056"),
        ("3fff::/20", "documentation", "RFC 9637"),
        ("5f00::/16", "segment routing (SRv6) SIDs", "RFC 9602"),
        ("fc00::/7", "unique-local", "RFC 4193"),
        ("fe80::/10", "link-local unicast", "RFC 4291"),
        ("ff00::/8", "multicast", "RFC 4291"),
    )
)


def special_range(network: Network) -> SpecialRange | None:
    """The special-purpose range `network` overlaps, or None: the narrowest range holding it
    whole (255.255.255.255 is limited broadcast before reserved 240/4), else the first it
    reaches into in registry order."""
    table = SPECIAL_V4 if network.family == 4 else SPECIAL_V6
    overlapping = [s for s in table if network.start <= s.network.end and s.network.start <= network.end]
    holding = [s for s in overlapping if s.network.start <= network.start and network.end <= s.network.end]
    if holding:
        return min(holding, key=lambda s: s.network.size)
    return overlapping[0] if overlapping else None


def special_overlap(network: Network) -> str | None:
    """What `network` overlaps, for people: `private-use range 10.0.0.0/8 (RFC 1918)`; None when
    it overlaps no special-purpose range."""
    found = special_range(network)
    return found.described if found is not None else None
