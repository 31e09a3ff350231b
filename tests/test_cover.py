"""CoverIndex: the entries covering a query found by bisection equal the linear scan
(`lookup.covering_entries`), hit for hit and in the same order."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import LISTS

from builders import source
from publisher.addresses import parse_addr
from publisher.compile.cover import CoverIndex
from publisher.compile.lookup import Query, covering_entries, parse_query
from publisher.lists.load import load_lists
from publisher.lists.tree import DirTree
from publisher.model import SourceData, Value

V4_BASE = 0x0A000000  # 10.0.0.0: rows crowd a few thousand addresses so that they overlap
V6_BASE = 0x20010DB8 << 96  # 2001:db8::
TOP = {4: (1 << 32) - 1, 6: (1 << 128) - 1}


def same(index: CoverIndex, src: SourceData, query: Query) -> list[str]:
    """Assert the index and the scan agree on the query; the hits as `line text`."""
    expected = covering_entries(src, query)
    assert index.covering(query) == expected, query
    return [f"{h.line} {h.text}" for h in expected]


@st.composite
def blocks(draw: st.DrawFn, family: int) -> tuple[int, int]:
    """An address block: one address, a CIDR (aligned, /0 included), or any range."""
    base, room = (V4_BASE if family == 4 else V6_BASE), 1 << 12
    kind = draw(st.sampled_from(["single", "cidr", "range", "edge"]))
    if kind == "edge":  # blocks at the ends of the space and the whole space
        return draw(st.sampled_from([(0, 0), (0, 255), (TOP[family], TOP[family]), (0, TOP[family]), (1, TOP[family])]))
    start = base + draw(st.integers(0, room))
    if kind == "single":
        return start, start
    if kind == "cidr":
        host_bits = min(
            draw(st.one_of(st.integers(0, 14), st.sampled_from([24, 32, 64, 96, 128]))), TOP[family].bit_length()
        )
        start &= ~((1 << host_bits) - 1)
        return start, start + (1 << host_bits) - 1
    return start, min(start + draw(st.integers(0, room)), TOP[family])


names = st.lists(st.sampled_from(["a", "b", "c", "xn--bcher-kva"]), min_size=1, max_size=4).map(".".join)
Subject = tuple[int, int, int, str, bool]  # family, start, end, domain, wildcard: a Row without value and line
subjects: st.SearchStrategy[Subject] = st.one_of(
    blocks(4).map(lambda b: (4, b[0], b[1], "", False)),
    blocks(6).map(lambda b: (6, b[0], b[1], "", False)),
    st.tuples(names, st.booleans()).map(lambda d: (0, 0, 0, d[0], d[1])),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(subjects, st.integers(1, 4)), max_size=40),
    st.lists(st.integers(0, 40), max_size=6),
    st.lists(names, max_size=4),
    st.lists(st.integers(-2, 1 << 12), max_size=6),
)
def test_the_index_finds_what_the_scan_finds(
    entries: list[tuple[Subject, int]], dups: list[int], extra_names: list[str], offsets: list[int]
) -> None:
    # duplicates: the same subject again, on the same line or another
    entries += [entries[i % len(entries)] for i in dups] if entries else []
    src = SourceData("bl/random.txt")
    queries = [Query(0, domain=n) for n in extra_names]
    queries += [Query(4, V4_BASE + o) for o in offsets] + [Query(6, V6_BASE + o) for o in offsets]
    for n, ((family, start, end, name, wild), line) in enumerate(entries):
        vid = src.add_value(Value(0x7F000002, f"reason {n}"))
        if family == 0:
            src.add_domain(name, wild, vid, line)
            queries += [Query(0, domain=name), Query(0, domain=f"b.{name}"), Query(0, domain=f"a.c.{name}")]
        else:
            src.add_network(family, start, end, vid, line)
            queries += [Query(family, a) for a in (start - 1, start, end, end + 1) if 0 <= a <= TOP[family]]
    index = CoverIndex.build(src)
    for query in queries:
        same(index, src, query)


def test_nested_entries_come_most_specific_first() -> None:
    code = 0x7F000002
    src = source(
        "bl/nested.yaml",
        [
            ("10.0.0.0/8", Value(code, "wide")),
            ("10.0.0.0/31", Value(code, "range")),  # made 10.0.0.0-10.0.0.9 below
            ("10.0.0.5", Value(code, "one")),
            ("10.0.0.0/24", Value(code, "net")),
            ("10.0.0.5", Value(code, "again")),
            ("2001:db8::/32", Value(code, "v6")),
            ("dom:*.example.test", Value(code, "all")),
            ("dom:*.spam.example.test", Value(code, "spam")),
            ("dom:mx.spam.example.test", Value(code, "exact")),
        ],
    )
    src.v4_end[1] = parse_addr("10.0.0.9")[1]  # an arbitrary range, as bulk files write them
    index = CoverIndex.build(src)
    assert same(index, src, parse_query("10.0.0.5")) == [
        "3 10.0.0.5",
        "5 10.0.0.5",
        "2 10.0.0.0-10.0.0.9",
        "4 10.0.0.0/24",
        "1 10.0.0.0/8",
    ]
    assert same(index, src, parse_query("10.0.1.5")) == ["1 10.0.0.0/8"]
    assert same(index, src, parse_query("11.0.0.0")) == []
    assert same(index, src, parse_query("2001:db8:ffff::1")) == ["6 2001:db8::/32"]
    assert same(index, src, parse_query("mx.spam.example.test")) == [
        "9 mx.spam.example.test",
        "8 *.spam.example.test",
        "7 *.example.test",
    ]
    assert same(index, src, parse_query("example.test")) == []  # `*.name` is not the name itself


def test_equal_size_and_line_keep_the_rows_order() -> None:
    src = SourceData("bl/feed.txt")
    vid = src.add_value(Value(0x7F000002))
    for start, end in ((5, 6), (4, 5), (5, 5), (5, 5)):  # one line said all of these
        src.add_network(4, V4_BASE + start, V4_BASE + end, vid, 7)
    hits = same(CoverIndex.build(src), src, Query(4, V4_BASE + 5))
    assert hits == ["7 10.0.0.5", "7 10.0.0.5", "7 10.0.0.5-10.0.0.6", "7 10.0.0.4/31"]


def test_the_sample_lists_agree_everywhere_they_list_something() -> None:
    loaded = load_lists(DirTree(LISTS), as_of=dt.datetime(2026, 11, 27, tzinfo=dt.UTC))
    covered = 0
    for sources in loaded.sources.values():
        for src in sources:
            index = CoverIndex.build(src)
            for row in src.rows():
                if row.family == 0:
                    queries = [Query(0, domain=row.name), Query(0, domain="www." + row.name)]
                else:
                    queries = [Query(row.family, a) for a in (row.start - 1, row.start, row.end, row.end + 1)]
                for query in queries:
                    if 0 <= query.addr <= TOP.get(query.family, 0):
                        covered += bool(same(index, src, query))
    assert covered > 20  # the sample lists were read and list something
