"""The incremental compile (compile/patch.py) gives exactly what a full compile gives."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.compile.compiler import compile_zone
from publisher.compile.patch import changed_regions, merge_ranges, patch_zone, with_expired
from publisher.compile.snapshot import dump_snapshot, load_snapshot
from publisher.compile.zone import CompiledZone
from publisher.model import SourceData, Touched, Value, ZoneConfig

T0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
V4_BASE = 0x0A000000  # 10.0.0.0: a /24 of room, so that rows nest and overlap
V6_BASE = 0x20010DB8 << 96
TEST_NET = 0x7F000000  # 127.0.0.0/30: the test points override whatever the lists say
CFG = ZoneConfig("bl.example.test", "ip", "block", ("*.txt",), 0x7F000002, "Listed: {reason}")

Row = tuple[int, int, int, int]  # family, start, end, value index


def build(path: str, values: list[Value], rows: list[Row]) -> SourceData:
    src = SourceData(path, values=list(values))
    for line, (family, start, end, value) in enumerate(rows, start=1):
        src.add_network(family, start, end, value, line)
    return src


def blocks(draw: st.DrawFn, family: int) -> tuple[int, int]:
    base = V4_BASE if family == 4 else V6_BASE
    shape = draw(st.sampled_from(["cidr", "host", "range", "test"] if family == 4 else ["cidr", "host", "range"]))
    if shape == "test":
        a = TEST_NET + draw(st.integers(0, 3))
        return a, a + draw(st.integers(0, 2))
    if shape == "host":
        a = base + draw(st.integers(0, 255))
        return a, a
    if shape == "range":
        a = base + draw(st.integers(0, 255))
        return a, min(base + 255, a + draw(st.integers(0, 40)))
    plen = draw(st.integers(0, 8))  # /24../32 (v4) or /120../128 (v6)
    size = 1 << (8 - plen)
    a = base + draw(st.integers(0, 255)) // size * size
    return a, a + size - 1


values_st = st.builds(
    Value,
    code=st.sampled_from([0x7F000002, 0x7F000003, 0x7F00000A]),
    reason=st.sampled_from(["", "spam", "trap"]),
    expires=st.sampled_from(
        [None, None, T0 - dt.timedelta(hours=1), T0 + dt.timedelta(hours=1), T0 + dt.timedelta(days=1)]
    ),
    exclude=st.booleans(),
)


@st.composite
def rows_st(draw: st.DrawFn, nvalues: int, max_rows: int = 25) -> list[Row]:
    out: list[Row] = []
    for _ in range(draw(st.integers(0, max_rows))):
        family = draw(st.sampled_from([4, 4, 4, 6]))
        a, b = blocks(draw, family)
        out.append((family, a, b, draw(st.integers(0, nvalues - 1))))
    return out


@st.composite
def scenario(
    draw: st.DrawFn,
) -> tuple[list[tuple[list[Value], list[Row]]], list[tuple[list[Value], list[Row]]], Touched]:
    """Sources before, sources after an edit, and the Touched of that edit."""
    before: list[tuple[list[Value], list[Row]]] = []
    after: list[tuple[list[Value], list[Row]]] = []
    t4: list[tuple[int, int]] = []
    t6: list[tuple[int, int]] = []

    def touch(row: Row) -> None:
        (t4 if row[0] == 4 else t6).append((row[1], row[2]))

    for _ in range(draw(st.integers(1, 3))):
        values = draw(st.lists(values_st, min_size=1, max_size=4))
        rows = draw(rows_st(len(values)))
        before.append((values, rows))
        new_values = list(values)
        if draw(st.integers(0, 4)) == 0:  # an edited value: every row using it changes
            k = draw(st.integers(0, len(values) - 1))
            new_values[k] = draw(values_st)
            for row in rows:
                if row[3] == k:
                    touch(row)
        new_rows = list(rows)
        for _ in range(draw(st.integers(0, 3))):  # removals
            if new_rows:
                touch(new_rows.pop(draw(st.integers(0, len(new_rows) - 1))))
        for row in draw(rows_st(len(values), 4)):  # additions, anywhere in the file
            new_rows.insert(draw(st.integers(0, len(new_rows))), row)
            touch(row)
        after.append((new_values, new_rows))
    return before, after, Touched(v4=tuple(t4), v6=tuple(t6))


def kept(
    intervals: list[tuple[int, int, int]], zone: CompiledZone, regions: list[tuple[int, int]]
) -> list[tuple[int, int, object]]:
    """The intervals (with their answers) that lie outside every region."""
    return [(s, e, zone.answers[v]) for s, e, v in intervals if not any(a <= e and s <= b for a, b in regions)]


def published(zone: CompiledZone) -> CompiledZone:
    """What the publisher reads back: the snapshot of the zone with a serial."""
    return load_snapshot(dump_snapshot(replace(zone, info=replace(zone.info, serial=2026030100))))


def sources(spec: list[tuple[list[Value], list[Row]]]) -> list[SourceData]:
    return [build(f"bl/{i}.txt", values, rows) for i, (values, rows) in enumerate(spec)]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario(), st.sampled_from([dt.timedelta(0), dt.timedelta(hours=2), dt.timedelta(days=2)]))
def test_patch_equals_full_compile(case: tuple, later: dt.timedelta) -> None:  # type: ignore[type-arg]
    before_spec, after_spec, touched = case
    before = compile_zone(CFG, sources(before_spec), as_of=T0)
    as_of = T0 + later  # entries expiring in between change their answers too
    full = compile_zone(CFG, sources(after_spec), as_of=as_of)
    patched = patch_zone(
        CFG,
        sources(after_spec),
        as_of=as_of,
        before=published(before),
        before_cfg=CFG,
        before_as_of=T0,
        touched=touched,
        max_share=1.0,
    )
    assert patched is not None
    assert patched == full
    assert dump_snapshot(patched) == dump_snapshot(full)
    # outside the changed regions the two compiles answer (and render) alike
    regions = changed_regions(before, full, with_expired(touched, sources(after_spec), T0, as_of))
    for family, old, new, ranges in (
        (4, before.v4_intervals(), full.v4_intervals(), regions.v4),
        (6, before.v6_intervals(), full.v6_intervals(), regions.v6),
    ):
        outside = merge_ranges(ranges)
        assert kept(old, before, outside) == kept(new, full, outside), family


def test_patch_declines_when_it_cannot_be_exact() -> None:
    src = build("bl/a.txt", [Value(0x7F000002, "x")], [(4, V4_BASE, V4_BASE, 0)])
    zone = published(compile_zone(CFG, [src], as_of=T0))
    kwargs = {"as_of": T0, "before": zone, "before_cfg": CFG, "before_as_of": T0}
    assert patch_zone(CFG, [src], touched=None, **kwargs) is None  # type: ignore[arg-type]
    other = replace(CFG, txt="Other: {reason}")
    assert patch_zone(other, [src], touched=Touched(), **kwargs) is None  # type: ignore[arg-type]
    assert patch_zone(CFG, [src], touched=Touched(), **kwargs) == compile_zone(CFG, [src], as_of=T0)  # type: ignore[arg-type]


def test_patch_declines_a_large_change() -> None:
    rows: list[Row] = [(4, V4_BASE + i, V4_BASE + i, 0) for i in range(200)]
    src = build("bl/a.txt", [Value(0x7F000002, "x")], rows)
    zone = published(compile_zone(CFG, [src], as_of=T0))
    touched = Touched(v4=((V4_BASE, V4_BASE + 99),))
    common = {"as_of": T0, "before": zone, "before_cfg": CFG, "before_as_of": T0}
    assert patch_zone(CFG, [src], touched=touched, **common) is None  # type: ignore[arg-type]
    small = Touched(v4=((V4_BASE, V4_BASE),))
    assert patch_zone(CFG, [src], touched=small, **common) == compile_zone(CFG, [src], as_of=T0)  # type: ignore[arg-type]


def test_answers_table_is_canonical() -> None:
    """The same answers in any file order give the same table, so the same snapshot bytes."""
    a = Value(0x7F00000A, "ten")
    b = Value(0x7F000003, "three")
    one = build("bl/a.txt", [a, b], [(4, V4_BASE, V4_BASE, 0), (4, V4_BASE + 5, V4_BASE + 5, 1)])
    two = build("bl/a.txt", [b, a], [(4, V4_BASE + 5, V4_BASE + 5, 0), (4, V4_BASE, V4_BASE, 1)])
    z1, z2 = compile_zone(CFG, [one], as_of=T0), compile_zone(CFG, [two], as_of=T0)
    assert [x.codes for x in z1.answers] == sorted(x.codes for x in z1.answers)
    assert dump_snapshot(z1) == dump_snapshot(z2)


def test_compile_tree_patches_a_reused_zone_and_says_where_it_changed(tmp_path: Path) -> None:
    from publisher.lists.tree import DirTree
    from publisher.publish.build import Reuse, compile_tree

    (tmp_path / "bl").mkdir()
    (tmp_path / "zones.yaml").write_text(
        "zones:\n  - name: bl.example.test\n    kind: ip\n    role: block\n    sources: [bl/*.txt]\n", encoding="utf-8"
    )
    feed = tmp_path / "bl" / "feed.txt"
    feed.write_text("".join(f"10.0.{i}.{j}\n" for i in range(4) for j in range(1, 200)), encoding="utf-8")
    first = compile_tree(DirTree(tmp_path), as_of=T0)
    assert first.regions == {"bl.example.test": None}  # compiled in full
    with feed.open("a", encoding="utf-8") as fh:
        fh.write("10.0.2.200\n")
    cfg = first.config.zones[0]
    touched = Touched(v4=((0x0A0002C8, 0x0A0002C8),))
    reuse = {cfg.name: Reuse(published(first.zones[cfg.name]), cfg, T0, touched)}
    second = compile_tree(DirTree(tmp_path), as_of=T0, reuse=reuse)
    full = compile_tree(DirTree(tmp_path), as_of=T0)
    assert second.zones == full.zones
    assert second.zones[cfg.name].lookup_v4(0x0A0002C8) >= 0
    # 10.0.2.200 joins the run 10.0.2.1-199: that run renders anew, the rest is as published
    assert second.regions == {cfg.name: Touched(v4=((0x0A000201, 0x0A0002C8),))}
