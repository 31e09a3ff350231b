"""The compiler against a brute-force reading of the semantics (docs/design.md)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from builders import source
from publisher.addresses import V4_MAPPED_START, parse_code, parse_network
from publisher.compile.compiler import compile_zone, listing_count, next_expiry
from publisher.model import SUBST, SourceData, Value, ZoneConfig

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
IP_ZONE = ZoneConfig(
    name="bl.example.test",
    kind="ip",
    role="block",
    sources=("bl/*.yaml",),
    code=parse_code("127.0.0.2"),
    txt="{reason} ({code}) {ip}",
)
DOM_ZONE = ZoneConfig(
    name="dbl.example.test",
    kind="domain",
    role="block",
    sources=("dbl/*.yaml",),
    code=parse_code("127.0.1.2"),
    txt="{domain}: {reason}",
)


def answer_of(zone, idx):  # type: ignore[no-untyped-def]
    if idx < 0:
        return None
    a = zone.answers[idx]
    return list(zip(a.codes, a.txts))


def test_most_specific_entry_of_a_source_wins_and_codes_of_sources_add_up() -> None:
    c3, c4, c5 = (parse_code(f"127.0.0.{n}") for n in (3, 4, 5))
    a = source(
        "bl/a.yaml",
        [
            ("203.0.113.0/24", Value(c3, "wide")),
            ("203.0.113.8/29", Value(c4, "narrow")),
            ("203.0.113.9", Value(c3, "hole", exclude=True)),
        ],
    )
    b = source("bl/b.yaml", [("203.0.113.0/25", Value(c5, "other"))])
    zone = compile_zone(IP_ZONE, [a, b], as_of=NOW)
    assert answer_of(zone, zone.lookup_v4(parse_network("203.0.113.200").start)) == [(c3, f"wide (127.0.0.3) {SUBST}")]
    assert [c for c, _ in answer_of(zone, zone.lookup_v4(parse_network("203.0.113.8").start))] == [c4, c5]
    assert [c for c, _ in answer_of(zone, zone.lookup_v4(parse_network("203.0.113.9").start))] == [c5]
    assert zone.lookup_v4(parse_network("203.0.114.1").start) == -1


def test_test_points_are_forced() -> None:
    c3 = parse_code("127.0.0.3")
    a = source("bl/a.yaml", [("127.0.0.0/30", Value(c3, "oops"))])
    zone = compile_zone(IP_ZONE, [a], as_of=NOW)
    assert zone.lookup_v4(0x7F000001) == -1
    assert [c for c, _ in answer_of(zone, zone.lookup_v4(0x7F000002))] == [0x7F000002]
    assert [c for c, _ in answer_of(zone, zone.lookup_v4(0x7F000003))] == [c3]
    assert zone.lookup_v6(V4_MAPPED_START + 0x7F000002) >= 0
    assert zone.lookup_v6(V4_MAPPED_START + 0x7F000001) == -1
    empty = compile_zone(IP_ZONE, [], as_of=NOW)
    assert empty.interval_count == 1 and empty.v4_any_listed(0x7F000000, 0x7FFFFFFF)


def test_expired_entries_are_left_out_and_next_expiry_reported() -> None:
    c3 = parse_code("127.0.0.3")
    past, future = NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=3)
    a = source(
        "bl/a.yaml",
        [("192.0.2.1", Value(c3, "old", expires=past)), ("192.0.2.2", Value(c3, "new", expires=future))],
    )
    zone = compile_zone(IP_ZONE, [a], as_of=NOW)
    assert zone.lookup_v4(parse_network("192.0.2.1").start) == -1
    assert zone.lookup_v4(parse_network("192.0.2.2").start) >= 0
    assert next_expiry([a], NOW) == future
    assert listing_count([a], NOW) == 1


def test_ipv6_lookup_and_empty_non_terminals() -> None:
    c3 = parse_code("127.0.0.3")
    a = source("bl/a.yaml", [("2001:db8:1::/48", Value(c3, "v6")), ("2001:db8:1:5::/64", Value(c3, "x", exclude=True))])
    zone = compile_zone(IP_ZONE, [a], as_of=NOW)
    assert zone.lookup_v6(parse_network("2001:db8:1:4::1").start) >= 0
    assert zone.lookup_v6(parse_network("2001:db8:1:5::1").start) == -1
    assert zone.lookup_v6(parse_network("2001:db8:2::").start) == -1
    assert zone.v6_any_listed(parse_network("2001:db8::/32").start, parse_network("2001:db8::/32").end)
    assert not zone.v6_any_listed(parse_network("2001:db9::/32").start, parse_network("2001:db9::/32").end)


def test_domains_exact_wildcards_holes_and_test_names() -> None:
    c2, c3 = parse_code("127.0.1.2"), parse_code("127.0.1.3")
    a = source(
        "dbl/a.yaml",
        [
            ("dom:*.spam.example", Value(c2, "wild")),
            ("dom:ok.spam.example", Value(c2, "x", exclude=True)),
            ("dom:spam.example", Value(c3, "apex")),
        ],
    )
    b = source("dbl/b.yaml", [("dom:*.ok.spam.example", Value(c3, "deep"))])
    zone = compile_zone(DOM_ZONE, [a, b], as_of=NOW)
    assert [c for c, _ in answer_of(zone, zone.lookup_domain("a.b.spam.example"))] == [c2]
    assert zone.lookup_domain("ok.spam.example") == -1
    assert [c for c, _ in answer_of(zone, zone.lookup_domain("x.ok.spam.example"))] == [c2, c3]
    assert [c for c, _ in answer_of(zone, zone.lookup_domain("spam.example"))] == [c3]
    assert zone.domain_is_ent("example") and not zone.domain_is_ent("spam.example")
    assert zone.lookup_domain("test") >= 0 and zone.lookup_domain("invalid") == -1


# --- property: compiled lookups equal a brute-force scan ----------------------

BASE = 0xC0000200  # 192.0.2.0: entries live in a small window so that they overlap a lot
prefixes = st.tuples(st.integers(0, 255), st.sampled_from([32, 31, 30, 29, 28, 26, 24]))
rows_st = st.lists(st.tuples(prefixes, st.integers(3, 6), st.booleans(), st.booleans()), min_size=0, max_size=12)


def brute(sources: list[list[tuple[int, int, int, bool, bool, int]]], addr: int) -> list[int] | None:
    if addr == 0x7F000002:
        return [0x7F000002]
    codes: set[int] = set()
    for rows in sources:
        covering = [r for r in rows if r[0] <= addr <= r[1] and not r[4]]
        if not covering:
            continue
        best = min(covering, key=lambda r: (r[1] - r[0], r[5]))
        if not best[3]:
            codes.add(best[2])
    return sorted(codes) or None


@settings(max_examples=150, deadline=None)
@given(st.lists(rows_st, min_size=1, max_size=3))
def test_compiled_lookup_equals_brute_force(spec: list[list[tuple[tuple[int, int], int, bool, bool]]]) -> None:
    srcs: list[SourceData] = []
    plain: list[list[tuple[int, int, int, bool, bool, int]]] = []
    for n, rows in enumerate(spec):
        built = []
        flat = []
        for line, ((off, plen), code, exclude, expired) in enumerate(rows):
            size = 1 << (32 - plen)
            start = BASE + (off // size) * size
            text = f"192.0.{2 + (start - BASE) // 256}.{(start - BASE) % 256}/{plen}"
            value = Value(
                0x7F000000 + code,
                f"r{code}",
                exclude=exclude,
                expires=NOW - dt.timedelta(seconds=1) if expired else None,
            )
            built.append((text, value))
            flat.append((start, start + size - 1, 0x7F000000 + code, exclude, expired, line))
        srcs.append(source(f"bl/{n}.yaml", built))
        plain.append(flat)
    zone = compile_zone(IP_ZONE, srcs, as_of=NOW)
    for addr in list(range(BASE - 2, BASE + 260)) + [0x7F000001, 0x7F000002]:
        got = answer_of(zone, zone.lookup_v4(addr))
        assert ([c for c, _ in got] if got else None) == brute(plain, addr), hex(addr)
    # intervals are sorted, disjoint and never empty
    ivs = zone.v4_intervals()
    assert all(s <= e for s, e, _ in ivs)
    assert all(a[1] < b[0] for a, b in zip(ivs, ivs[1:]))
