"""plan.py and guards.py on hand-built sources: address deltas, entry changes, guard rails."""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import example, given, settings
from hypothesis import strategies as st
from tests.test_compiler import DOM_ZONE, IP_ZONE, NOW, source

from publisher.addresses import parse_code
from publisher.compile.compiler import compile_zone
from publisher.errors import Location, Problem
from publisher.model import Guards, SourceData, Value
from publisher.publish.guards import check_guards
from publisher.publish.plan import (
    ADDED,
    CHANGED,
    EXPIRED,
    IPV4,
    IPV6,
    NAMES,
    REMOVED,
    EntryDiff,
    Measure,
    Plan,
    amount,
    entry_changes,
    measures,
    plan_zone,
)

C3, C4 = parse_code("127.0.0.3"), parse_code("127.0.0.4")
LATER = NOW + dt.timedelta(days=2)
WL_ZONE = dataclasses.replace(IP_ZONE, name="wl.example.test", role="allow", sources=("wl/*.yaml",))


def kinds(changes):  # type: ignore[no-untyped-def]
    return sorted((c.kind, c.entry.text, c.entry.path, c.entry.line) for c in changes)


def test_address_delta_counts_added_removed_and_changed_answers() -> None:
    old = source("bl/a.yaml", [("192.0.2.0/24", Value(C3, "spam")), ("198.51.100.0/28", Value(C3, "spam"))])
    new = source(
        "bl/a.yaml",
        [
            ("192.0.2.0/25", Value(C3, "spam")),
            ("192.0.2.128/25", Value(C4, "worse")),
            ("203.0.113.0/30", Value(C3, "spam")),
            ("2001:db8::/126", Value(C3, "v6")),
        ],
    )
    before = compile_zone(IP_ZONE, [old], as_of=NOW)
    after = compile_zone(IP_ZONE, [new], as_of=NOW)
    v4, v6 = measures(before, after)
    assert v4 == Measure(IPV4, before=256 + 16, after=256 + 4, added=4, removed=16, changed=128)  # no test point
    assert v6 == Measure(IPV6, before=0, after=4, added=4)
    assert measures(None, after) == (Measure(IPV4, 0, 260, added=260), Measure(IPV6, 0, 4, added=4))
    assert amount(1 << 80, IPV6) == "2^80" and amount(3 << 80, IPV6) == "~2^81.6" and amount(1 << 80) == str(1 << 80)


def test_domain_delta_counts_names() -> None:
    old = source("dbl/a.yaml", [("dom:spam.example", Value(C3, "x")), ("dom:*.bad.example", Value(C3, "y"))])
    new = source("dbl/a.yaml", [("dom:spam.example", Value(C4, "x")), ("dom:new.example", Value(C3, "z"))])
    before = compile_zone(DOM_ZONE, [old], as_of=NOW)
    after = compile_zone(DOM_ZONE, [new], as_of=NOW)
    assert measures(before, after) == (Measure(NAMES, before=2, after=2, added=1, removed=1, changed=1),)


def test_entry_changes_classify_added_removed_changed_and_expired() -> None:
    old = [
        source(
            "bl/a.yaml",
            [
                ("192.0.2.1", Value(C3, "spam")),
                ("192.0.2.2", Value(C3, "spam")),
                ("192.0.2.3", Value(C3, "old reason")),
                ("192.0.2.4", Value(C3, "temp", expires=LATER - dt.timedelta(hours=1))),
            ],
        ),
    ]
    new = [
        source(
            "bl/a.yaml",
            [
                ("192.0.2.1", Value(C3, "spam")),
                ("192.0.2.3", Value(C3, "new reason")),
                ("192.0.2.4", Value(C3, "temp", expires=LATER - dt.timedelta(hours=1))),
                ("192.0.2.5", Value(C3, "spam")),
            ],
        ),
    ]
    changes = entry_changes(old, NOW, new, LATER).changes
    assert kinds(changes) == [
        (ADDED, "192.0.2.5", "bl/a.yaml", 4),
        (CHANGED, "192.0.2.3", "bl/a.yaml", 2),
        (EXPIRED, "192.0.2.4", "bl/a.yaml", 4),
        (REMOVED, "192.0.2.2", "bl/a.yaml", 2),
    ]
    changed = next(c for c in changes if c.kind == CHANGED)
    assert changed.old is not None and changed.old.value.reason == "old reason"
    assert changed.side == "new" and next(c for c in changes if c.kind == REMOVED).side == "old"


def test_moving_an_entry_between_files_is_no_change_but_its_answer_is_counted() -> None:
    a_first = [
        source("bl/a.yaml", [("192.0.2.1", Value(C3, "first"))]),
        source("bl/b.yaml", [("192.0.2.1", Value(C3, "second"))]),
    ]
    b_first = [
        source("bl/a.yaml", [("192.0.2.1", Value(C3, "second"))]),
        source("bl/b.yaml", [("192.0.2.1", Value(C3, "first"))]),
    ]
    before, after = compile_zone(IP_ZONE, a_first, as_of=NOW), compile_zone(IP_ZONE, b_first, as_of=NOW)
    diff = entry_changes(a_first, NOW, b_first, NOW)
    assert diff.totals == {} and diff.windows  # no entry changed, yet the TXT that wins did
    assert measures(before, after, True, diff.windows)[0].changed == 1


def test_reordering_the_rows_of_a_repeated_address_changes_which_one_answers() -> None:
    first_a = [source("bl/feed.txt", [("10.0.0.0", Value(C3, "a")), ("10.0.0.0", Value(C3, "b"))])]
    first_b = [source("bl/feed.txt", [("10.0.0.0", Value(C3, "b")), ("10.0.0.0", Value(C3, "a"))])]
    before, after = compile_zone(IP_ZONE, first_a, as_of=NOW), compile_zone(IP_ZONE, first_b, as_of=NOW)
    assert before.answers[before.lookup_v4(0x0A000000)].txts != after.answers[after.lookup_v4(0x0A000000)].txts
    diff = entry_changes(first_a, NOW, first_b, NOW)
    # the same rows as a multiset, yet line 1 answers "b" now: shown as the entry that decides it
    assert diff.totals == {(CHANGED, True): 1}
    assert kinds(diff.changes) == [(CHANGED, "10.0.0.0", "bl/feed.txt", 1)]
    (change,) = diff.changes
    assert change.old is not None and change.old.value.reason == "a" and change.entry.value.reason == "b"
    assert (4, 0x0A000000, 0x0A000000) in diff.windows
    assert measures(before, after, True, diff.windows)[0].changed == 1 == measures(before, after)[0].changed
    assert entry_changes(first_a, NOW, first_a, NOW) == EntryDiff((), {}, ())
    # rows that answer alike are interchangeable: two holes make the same hole whatever their reasons
    wide = ("10.0.0.0/24", Value(C3, "a"))
    holes_pq = [
        source(
            "bl/feed.txt",
            [wide, ("10.0.0.7", Value(C3, "p", exclude=True)), ("10.0.0.7", Value(C4, "q", exclude=True))],
        )
    ]
    holes_qp = [
        source(
            "bl/feed.txt",
            [wide, ("10.0.0.7", Value(C4, "q", exclude=True)), ("10.0.0.7", Value(C3, "p", exclude=True))],
        )
    ]
    assert entry_changes(holes_pq, NOW, holes_qp, NOW) == EntryDiff((), {}, ())


def _ranges(path: str, rows: list[tuple[int, int, Value]]) -> SourceData:
    src = SourceData(path)
    for line, (start, end, value) in enumerate(rows, start=1):
        src.add_network(4, start, end, src.add_value(value), line)
    return src


def test_reordering_a_range_and_a_block_it_is_cut_into_changes_which_one_answers() -> None:
    """The compiler cuts 10.0.0.0-10.0.0.2 into 10.0.0.0/31 and 10.0.0.2: the range ties with a
    /31 row on its first piece (the first listed wins), and with another range on a later one."""
    base = 0x0A000000
    wide, block, inner = (
        (base, base + 2, Value(C3, "a")),
        (base, base + 1, Value(C3, "b")),
        (base + 1, base + 2, Value(C4, "c")),
    )
    for old_rows, new_rows in (([wide, block], [block, wide]), ([inner, wide], [wide, inner])):
        old, new = [_ranges("bl/feed.txt", old_rows)], [_ranges("bl/feed.txt", new_rows)]
        before, after = compile_zone(IP_ZONE, old, as_of=NOW), compile_zone(IP_ZONE, new, as_of=NOW)
        diff = entry_changes(old, NOW, new, NOW)
        assert diff.totals == {(CHANGED, True): 1}
        full = measures(before, after)
        assert full[0].changed > 0 and measures(before, after, True, diff.windows) == full


def test_moving_an_entry_between_files_is_no_change_and_unchanged_files_only_expire() -> None:
    feed_old = source(
        "bl/feed.txt",
        [("198.51.100.0/24", Value(C3, "feed")), ("198.51.100.7", Value(C3, "t", expires=NOW + dt.timedelta(hours=1)))],
    )
    feed_new = source(
        "bl/feed.txt",
        [("198.51.100.0/24", Value(C3, "feed")), ("198.51.100.7", Value(C3, "t", expires=NOW + dt.timedelta(hours=1)))],
    )
    old = [source("bl/a.yaml", [("192.0.2.1", Value(C3, "spam"))]), source("bl/b.yaml", []), feed_old]
    new = [source("bl/a.yaml", []), source("bl/b.yaml", [("192.0.2.1", Value(C3, "spam"))]), feed_new]
    changes = entry_changes(old, NOW, new, LATER, unchanged=frozenset({"bl/feed.txt"})).changes
    assert kinds(changes) == [(EXPIRED, "198.51.100.7", "bl/feed.txt", 2)]
    assert entry_changes(old, NOW, new, NOW, unchanged=frozenset({"bl/feed.txt"})).totals == {}


def test_first_publish_lists_everything_as_added() -> None:
    srcs = [source("bl/a.yaml", [("192.0.2.0/24", Value(C3, "spam")), ("192.0.2.7", Value(C3, "hole", exclude=True))])]
    zp = plan_zone(
        IP_ZONE, compile_zone(IP_ZONE, srcs, as_of=NOW), srcs, NOW, before=None, before_sources=None, before_as_of=None
    )
    assert zp.is_new and zp.listings_after == 1 and zp.measure(IPV4).after == 255
    assert zp.count(ADDED) == 1 and zp.count(ADDED, listings=False) == 1


def _plan(cfg, old_rows, new_rows, guards=None):  # type: ignore[no-untyped-def]
    cfg = dataclasses.replace(cfg, guards=guards or Guards())
    old = [source(f"{cfg.sources[0].split('/')[0]}/a.yaml", old_rows)]
    new = [source(f"{cfg.sources[0].split('/')[0]}/a.yaml", new_rows)]
    zp = plan_zone(
        cfg,
        compile_zone(cfg, new, as_of=NOW),
        new,
        NOW,
        before=compile_zone(cfg, old, as_of=NOW),
        before_sources=old,
        before_as_of=NOW,
    )
    return check_guards(Plan((zp,)), {cfg.name: cfg}), zp


def _hosts(n: int, start: int = 0) -> list[tuple[str, Value]]:
    return [(f"10.{(start + i) // 256}.{(start + i) % 256}.1", Value(C3, "spam")) for i in range(n)]


def test_guard_shrink_counts_listings_and_only_for_big_zones() -> None:
    violations, _ = _plan(IP_ZONE, _hosts(60), _hosts(40))
    assert [v.rule for v in violations] == ["shrink", "shrink"]
    assert "lose 20 of its 60 listings (33%" in violations[0].message
    assert "lose 20 of its 60 addresses" in violations[1].message
    assert _plan(IP_ZONE, _hosts(60), _hosts(50))[0] == []  # 17% is fine
    assert _plan(IP_ZONE, _hosts(40), _hosts(20))[0] == []  # small zone: no share rule
    loose = Guards(max_removed_share=0.5)
    assert _plan(IP_ZONE, _hosts(60), _hosts(40), loose)[0] == []  # per-zone threshold


def test_guard_growth_and_empty() -> None:
    violations, _ = _plan(IP_ZONE, _hosts(2), _hosts(30))
    assert {v.rule for v in violations} == {"growth"}
    assert "from 2 to 30 listings (15.0x; the limit is 10x)" in violations[0].message
    broad, _ = _plan(IP_ZONE, [("192.0.2.0/28", Value(C3, "x"))], [("192.0.2.0/24", Value(C3, "x"))])
    assert [v.rule for v in broad] == ["growth"] and "from 16 to 256 addresses" in broad[0].message
    empty, zp = _plan(IP_ZONE, _hosts(3), [])
    assert [v.rule for v in empty] == ["empty"] and zp.listings_after == 0
    v6, _ = _plan(IP_ZONE, [("2001:db8::1", Value(C3, "x"))], [("2001:db8::/48", Value(C3, "x"))])
    assert "from 1 to 2^80 IPv6 addresses (1.2e+24x; the limit is 10x)" in v6[0].message  # not 25 digits
    assert "lists 3 listings, 3 addresses now" in empty[0].message


def test_guard_allowlist_removal_but_not_expiry() -> None:
    partner = ("198.51.100.10", Value(C3, "partner gw"))
    violations, _ = _plan(WL_ZONE, [partner, ("198.51.100.11", Value(C3, "other"))], [partner])
    assert [v.rule for v in violations] == ["allowlist-removal"]
    assert "1 allowlist entry removed" in violations[0].message and "wl/a.yaml:2 198.51.100.11" in violations[0].message
    temp = ("198.51.100.12", Value(C3, "migration", expires=NOW - dt.timedelta(seconds=1)))
    cfg = WL_ZONE
    old, new = [source("wl/a.yaml", [partner, temp])], [source("wl/a.yaml", [partner, temp])]
    zp = plan_zone(
        cfg,
        compile_zone(cfg, new, as_of=NOW),
        new,
        NOW,
        before=compile_zone(cfg, old, as_of=NOW - dt.timedelta(days=1)),
        before_sources=old,
        before_as_of=NOW - dt.timedelta(days=1),
    )
    assert [c.kind for c in zp.changes] == [EXPIRED]
    assert check_guards(Plan((zp,)), {cfg.name: cfg}) == []


def test_covers_protected_problem_and_dropped_zone_are_violations() -> None:
    problem = Problem(
        Location("bl/a.yaml", 4, 3), "covers-protected", "192.0.2.0/24 covers 192.0.2.25, protected by wl.example.test"
    )
    other = Problem(Location("bl/a.yaml", 9, 3), "duplicate", "listed twice")
    violations = check_guards(
        Plan((), dropped=("old.example.test",)), {}, [problem, other], {"bl/a.yaml": "bl.example.test"}
    )
    assert [(v.zone, v.rule) for v in violations] == [
        ("bl.example.test", "covers-protected"),
        ("old.example.test", "dropped"),
    ]
    assert violations[0].message.startswith("bl/a.yaml:4:3: 192.0.2.0/24 covers")


def test_unchanged_content_has_an_empty_plan() -> None:
    srcs = [source("bl/a.yaml", _hosts(3))]
    zone = compile_zone(IP_ZONE, srcs, as_of=NOW)
    zp = plan_zone(IP_ZONE, zone, srcs, NOW, before=zone, before_sources=srcs, before_as_of=NOW, content_changed=False)
    assert zp.changes == () and zp.listings_before == zp.listings_after == 3
    assert zp.measures == (Measure(IPV4, 3, 3), Measure(IPV6, 0, 0))


_net = st.tuples(st.integers(0, 63), st.sampled_from([32, 31, 30, 29, 28])).map(
    lambda t: f"10.0.0.{(t[0] >> (32 - t[1])) << (32 - t[1])}/{t[1]}"
)
_row = st.tuples(_net, st.sampled_from(["a", "b"]), st.sampled_from([C3, C4]), st.booleans())
_file = st.lists(_row, max_size=8)


@settings(max_examples=200, deadline=None)
@given(st.lists(_file, min_size=1, max_size=3), st.lists(_file, min_size=1, max_size=3), st.booleans())
@example(  # one address twice in a file: which of its rows comes first decides its TXT
    old_files=[[("10.0.0.0/32", "a", C4, False), ("10.0.0.0/32", "b", C4, False), ("10.0.0.1/32", "a", C3, False)]],
    new_files=[[("10.0.0.0/32", "b", C4, False), ("10.0.0.0/32", "a", C4, False)]],
    shuffle=False,
)
def test_the_windowed_sweep_equals_the_full_sweep(old_files, new_files, shuffle) -> None:  # type: ignore[no-untyped-def]
    """Answers can only differ where entries changed: counting there equals counting everywhere."""
    if shuffle:  # the same entries, moved between files
        new_files = list(reversed(old_files))

    def build(files):  # type: ignore[no-untyped-def]
        return [
            source(f"bl/{i}.yaml", [(net, Value(code, reason, exclude=excl)) for net, reason, code, excl in rows])
            for i, rows in enumerate(files)
        ]

    old, new = build(old_files), build(new_files)
    before, after = compile_zone(IP_ZONE, old, as_of=NOW), compile_zone(IP_ZONE, new, as_of=NOW)
    diff = entry_changes(old, NOW, new, NOW)
    assert measures(before, after, True, diff.windows) == measures(before, after, True, None)
