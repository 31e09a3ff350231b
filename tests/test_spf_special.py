"""The IANA special-purpose ranges: every range of the registries named with its RFC, overlaps found."""

from __future__ import annotations

import pytest

from publisher.addresses import parse_network
from publisher.spf.special import SPECIAL_V4, SPECIAL_V6, special_overlap


@pytest.mark.parametrize(
    ("network", "expected"),
    [
        ("10.1.2.3", "private-use range 10.0.0.0/8 (RFC 1918)"),
        ("172.31.0.0/16", "private-use range 172.16.0.0/12 (RFC 1918)"),
        ("192.168.1.0/24", "private-use range 192.168.0.0/16 (RFC 1918)"),
        ("127.0.0.1", "loopback range 127.0.0.0/8 (RFC 1122)"),
        ("169.254.1.1", "link-local range 169.254.0.0/16 (RFC 3927)"),
        ("100.64.0.0/10", "shared address space (carrier-grade NAT) range 100.64.0.0/10 (RFC 6598)"),
        ("192.0.2.7", "documentation (TEST-NET-1) range 192.0.2.0/24 (RFC 5737)"),
        ("198.51.100.0/25", "documentation (TEST-NET-2) range 198.51.100.0/24 (RFC 5737)"),
        ("203.0.113.9", "documentation (TEST-NET-3) range 203.0.113.0/24 (RFC 5737)"),
        ("198.19.0.0/16", "benchmarking range 198.18.0.0/15 (RFC 2544)"),
        ("224.0.0.1", "multicast range 224.0.0.0/4 (RFC 5771)"),
        ("255.255.255.255", "limited broadcast range 255.255.255.255/32 (RFC 919)"),
        ("0.0.0.0/0", '"this network" range 0.0.0.0/8 (RFC 791)'),
        ("::1", "loopback range ::1/128 (RFC 4291)"),
        ("::", "unspecified address range ::/128 (RFC 4291)"),
        ("::ffff:1.2.3.4", "IPv4-mapped range ::ffff:0:0/96 (RFC 4291)"),
        ("2001:db8::/48", "documentation range 2001:db8::/32 (RFC 3849)"),
        ("3fff:1::/32", "documentation range 3fff::/20 (RFC 9637)"),
        ("fd00::/8", "unique-local range fc00::/7 (RFC 4193)"),
        ("fe80::1", "link-local unicast range fe80::/10 (RFC 4291)"),
        ("ff02::1", "multicast range ff00::/8 (RFC 4291)"),
        ("2002::/16", "6to4 range 2002::/16 (RFC 3056)"),
        ("5f00::/20", "segment routing (SRv6) SIDs range 5f00::/16 (RFC 9602)"),
        ("64:ff9b:1::/64", "IPv4-IPv6 translation (local use) range 64:ff9b:1::/48 (RFC 8215)"),
        ("100::/64", "discard-only range 100::/64 (RFC 6666)"),
        ("2001::/32", "IETF protocol assignments range 2001::/23 (RFC 2928)"),
    ],
)
def test_a_network_overlapping_a_special_range_is_named_with_the_range_and_its_rfc(network: str, expected: str) -> None:
    assert special_overlap(parse_network(network)) == expected


@pytest.mark.parametrize(
    "network", ["1.2.3.0/24", "9.255.255.255", "11.0.0.0/8", "172.32.0.0/11", "223.255.255.0/24", "2a00:1450::/32"]
)
def test_public_networks_overlap_nothing(network: str) -> None:
    assert special_overlap(parse_network(network)) is None


def test_a_wide_network_reaching_into_a_special_range_overlaps_it() -> None:
    # 8.0.0.0/7 ends at 9.255.255.255, 10.0.0.0/7 starts inside 10/8: overlap at one end is enough
    assert special_overlap(parse_network("8.0.0.0/7")) is None
    assert special_overlap(parse_network("10.0.0.0/7")) == "private-use range 10.0.0.0/8 (RFC 1918)"
    assert special_overlap(parse_network("2000::/3")) == "IETF protocol assignments range 2001::/23 (RFC 2928)"


def test_the_registries_hold_the_ranges_the_issue_lists() -> None:
    assert len(SPECIAL_V4) == 16 and len(SPECIAL_V6) == 13
    assert all(r.rfc.startswith("RFC ") and r.name for r in (*SPECIAL_V4, *SPECIAL_V6))
