"""IPv6 ranges over ::ffff:0:0/96: mapped names answer from IPv4, so such ranges are no test-point error.

Issue 10.6: `::/64` was refused as covering ::ffff:127.0.0.1 with the fix "list a range that
leaves ::ffff:127.0.0.1 out", yet every exclusion of it was refused too. The rule now: the
IPv6 test points are IPv4-mapped names, answered from the IPv4 entries, so an IPv6 range
(or exclusion) around them can neither list nor delist them, and is accepted.
"""

from __future__ import annotations

import datetime as dt

import pytest

from publisher.addresses import V4_MAPPED_START, parse_code, parse_network
from publisher.compile.compiler import compile_zone
from publisher.lists.curated import read_source
from publisher.model import ZoneConfig

NOW = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
BL6 = ZoneConfig("bl6.example.test", "ip", "block", ("bl6/*",), parse_code("127.0.0.2"), "{reason}")

FILES = {
    "bl6/feed.txt": "::/64 :2:reserved space\n!::/80\n2001:db8::/48 :3:doc\n",
    "bl6/curated.yaml": (
        "entries:\n"
        "  - ip: '::/64'\n"
        "    reason: reserved space\n"
        "  - ip: '::/80'\n"
        "    exclude: true\n"
        "    reason: not this part\n"
    ),
}


@pytest.mark.parametrize("path", sorted(FILES))
def test_ranges_over_the_mapped_block_are_accepted_and_mapped_names_answer_from_ipv4(path: str) -> None:
    src = read_source(path, FILES[path].encode(), BL6)
    assert [p.format() for p in src.problems if p.is_error] == []
    zone = compile_zone(BL6, [src], as_of=NOW)
    assert zone.lookup_v6(parse_network("::1:0:0:0").start) >= 0  # in ::/64, outside the hole ::/80
    assert zone.lookup_v6(parse_network("::1").start) == -1  # in the hole
    assert zone.lookup_v6(V4_MAPPED_START + 0x7F000001) == -1  # ::ffff:127.0.0.1: never listed
    assert zone.lookup_v6(V4_MAPPED_START + 0x7F000002) >= 0  # ::ffff:127.0.0.2: always listed


def test_a_mapped_entry_still_gets_the_ipv4_form_as_its_fix() -> None:
    src = read_source("bl6/feed.txt", b"::ffff:127.0.0.1\n!::ffff:0:0/96\n", BL6)
    shown = [(p.code, p.fix) for p in src.problems]
    assert ("v4-mapped", "write the IPv4 form: 127.0.0.1") in shown
    assert ("v4-mapped", "write the IPv4 form: 0.0.0.0/0") in shown
