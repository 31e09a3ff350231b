"""publisher.compile.delta: old records - removed + added == new records, exactly.

A secondary applies an IXFR step blindly (Knot refuses a deletion of a record it does not
hold), so the difference must be exact: `removed` only records the old zone has, `added`
only records it lacks. Checked against the full rendering (render.iter_records, what AXFR
sends) for random zone pairs: CIDRs, /32s, ranges, several answers, IPv6, the mapped test
point, answer tables that change order, name server changes, domain zones.
"""

from __future__ import annotations

import random
from array import array
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.addresses import parse_code
from publisher.compile import delta
from publisher.compile.delta import Delta, GaveUp, diff
from publisher.compile.render import Record, iter_records
from publisher.compile.zone import M64, Answer, CompiledZone, ZoneInfo
from publisher.model import SUBST, NameServer, Soa
from test_render import domain_zones, make_zone

Row = tuple[int, int, int]

ANSWERS = [
    Answer((parse_code("127.0.0.2"),), (f"listed {SUBST}",)),
    Answer((parse_code("127.0.0.3"),), ("static text",)),
    Answer((parse_code("127.0.0.2"), parse_code("127.0.0.9")), ("b", SUBST)),
    Answer((parse_code("127.0.0.4"),), ("",)),
]
NS = (NameServer("ns1.bl.example.test", ("192.0.2.53",)), NameServer("ns.other.example"))


def zone_of(rows4: list[Row], rows6: list[Row], answers: list[Answer], ns: tuple[NameServer, ...] = NS) -> CompiledZone:
    info = ZoneInfo("bl.example.test", "ip", "block", 2100, Soa("ns1.bl.example.test", "h.example.test"), ns, 1)
    return CompiledZone(
        info,
        tuple(answers),
        array("I", [r[0] for r in rows4]),
        array("I", [r[1] for r in rows4]),
        array("I", [r[2] for r in rows4]),
        array("Q", [r[0] >> 64 for r in rows6]),
        array("Q", [r[0] & M64 for r in rows6]),
        array("Q", [r[1] >> 64 for r in rows6]),
        array("Q", [r[1] & M64 for r in rows6]),
        array("I", [r[2] for r in rows6]),
    )


def _disjoint(rows: list[Row]) -> list[Row]:
    out: list[Row] = []
    for s, e, v in sorted(rows):
        if not out or s > out[-1][1]:
            out.append((s, e, v))
    return out


def _v4_row(rng: random.Random, nanswers: int) -> Row:
    plen = rng.choice([32, 32, 32, 32, 24, 23, 29, 30]) if rng.random() < 0.98 else rng.choice([8, 16])
    start = ((rng.choice([1, 10, 45, 127, 192, 203]) << 24) | rng.getrandbits(24)) >> (32 - plen) << (32 - plen)
    end = start + (1 << (32 - plen)) - 1
    if rng.random() < 0.15:  # a range that is not one CIDR
        end = min(end + rng.randrange(1, 3000), 0xFFFFFFFF)
    if rng.random() < 0.1:
        start = end = 0x7F000002  # the test point: its IPv6 twin follows it
    return start, end, rng.randrange(nanswers)


def _v6_row(rng: random.Random, nanswers: int) -> Row:
    plen = rng.choice([128, 128, 64, 56, 48, 33, 16, 12])
    base = (0x2001 << 112) | rng.getrandbits(112)
    if rng.random() < 0.1:
        base = (0xFFFF << 32) | rng.getrandbits(32)  # mapped: never rendered from IPv6
    start = base >> (128 - plen) << (128 - plen)
    return start, start + (1 << (128 - plen)) - 1, rng.randrange(nanswers)


def _mutate(rng: random.Random, rows: list[Row], make: object, nanswers: int) -> list[Row]:
    out = list(rows)
    for _ in range(rng.randrange(0, 6)):
        what = rng.random()
        if what < 0.3 and out:
            out.pop(rng.randrange(len(out)))
        elif what < 0.5 and out:  # another answer
            i = rng.randrange(len(out))
            out[i] = (out[i][0], out[i][1], rng.randrange(nanswers))
        elif what < 0.65 and out:  # shrink or grow the end
            i = rng.randrange(len(out))
            s, e, v = out[i]
            out[i] = (s, max(s, e + rng.choice([-1, 1, -200, 255])), v)
        else:
            out.append(make(rng, nanswers))  # type: ignore[operator]
    return _disjoint([r for r in out if r[1] <= (0xFFFFFFFF if make is _v4_row else (1 << 128) - 1)])


@st.composite
def zone_pairs(draw: st.DrawFn) -> tuple[CompiledZone, CompiledZone]:
    rng = random.Random(draw(st.integers(0, 2**32)))
    n4 = draw(st.sampled_from([0, 3, 40, 400]))
    rows4 = _disjoint([_v4_row(rng, len(ANSWERS)) for _ in range(n4)])
    rows6 = _disjoint([_v6_row(rng, len(ANSWERS)) for _ in range(draw(st.sampled_from([0, 5, 60])))])
    old = zone_of(rows4, rows6, ANSWERS)
    new4 = _mutate(rng, rows4, _v4_row, len(ANSWERS))
    new6 = _mutate(rng, rows6, _v6_row, len(ANSWERS))
    answers: list[Answer] = list(ANSWERS)
    ns: tuple[NameServer, ...] = NS
    if draw(st.booleans()):  # the compiler numbers answers by first use: a new order, or a new one
        order = list(range(len(ANSWERS)))
        rng.shuffle(order)
        where = {old_i: new_i for new_i, old_i in enumerate(order)}
        answers = [ANSWERS[i] for i in order] + [Answer((parse_code("127.0.0.7"),), ("new",))]
        new4 = [(s, e, where[v] if rng.random() < 0.95 else len(ANSWERS)) for s, e, v in new4]
        new6 = [(s, e, where[v]) for s, e, v in new6]
    if draw(st.booleans()):
        ns = (NameServer("ns2.bl.example.test", ("192.0.2.54", "2001:db8::54")),)
    new = zone_of(new4, new6, answers, ns)
    return old, replace(new, info=replace(new.info, serial=2))


def _data(zone: CompiledZone) -> set[Record]:
    return {r for r in iter_records(zone) if r.rtype != "SOA"}


def _check(old: CompiledZone, new: CompiledZone) -> Delta:
    got = diff(old, new)
    assert isinstance(got, Delta), got
    before, after = _data(old), _data(new)
    removed, added = set(got.removed), set(got.added)
    assert len(removed) == len(got.removed) and len(added) == len(got.added)
    assert removed <= before, removed - before  # never deletes what the secondary lacks
    assert not added & before, added & before  # never adds what it already holds
    assert (before - removed) | added == after
    return got


@settings(max_examples=150, deadline=None)
@given(zone_pairs())
def test_ip_zone_difference_is_exact(pair: tuple[CompiledZone, CompiledZone]) -> None:
    _check(*pair)


@settings(max_examples=100, deadline=None)
@given(domain_zones(), domain_zones())
def test_domain_zone_difference_is_exact(a: tuple[CompiledZone, object], b: tuple[CompiledZone, object]) -> None:
    _check(a[0], replace(b[0], info=replace(b[0].info, serial=2)))


def test_an_unchanged_zone_has_an_empty_difference() -> None:
    rng = random.Random(1)
    rows = _disjoint([_v4_row(rng, 4) for _ in range(3000)])
    zone = zone_of(rows, [], ANSWERS)
    got = _check(zone, replace(zone, info=replace(zone.info, serial=2)))
    assert (got.removed, got.added, got.intervals) == ((), (), 0)


def test_one_changed_address_in_a_big_zone_is_one_interval() -> None:
    rng = random.Random(2)
    rows = _disjoint([_v4_row(rng, 4) for _ in range(20000)])
    rows = [r for r in rows if r[0] != 0x7F000002]
    new_rows = sorted([*rows, (0x64000001, 0x64000001, 1)])  # 100.0.0.1: no generated row starts with 100
    got = _check(zone_of(rows, [], ANSWERS), zone_of(new_rows, [], ANSWERS))
    assert got.intervals == 1
    assert [(r.owner, r.rtype) for r in got.added] == [
        ("1.0.0.100.bl.example.test", "A"),
        ("1.0.0.100.bl.example.test", "TXT"),
    ]


def test_too_many_changes_and_a_ttl_change_give_up() -> None:
    rng = random.Random(3)
    rows = _disjoint([_v4_row(rng, 4) for _ in range(500)])
    old = zone_of(rows, [], ANSWERS)
    assert diff(old, zone_of([], [], ANSWERS), max_changes=100) == GaveUp("too many intervals changed")
    got = diff(old, replace(old, info=replace(old.info, ttl=60)))
    assert isinstance(got, GaveUp) and "TTL" in got.reason


def test_a_domain_zone_above_the_bound_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = [(["127.0.1.2"], [SUBST])]
    old = make_zone("domain", answers=answers, exact={"a": 0, "b": 0, "c": 0})
    new = make_zone("domain", answers=answers, exact={"a": 0, "b": 0}, serial=2026112702)
    assert isinstance(diff(old, new), Delta)
    monkeypatch.setattr(delta, "MAX_DOMAIN_NAMES", 2)
    assert diff(old, new) == GaveUp("a domain zone of 3 names is compared whole only up to 2")
