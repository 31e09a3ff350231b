"""entry_diff: diffing only the rows a patch says went and came gives exactly the full diff."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.lists.bulk import read_bulk
from publisher.lists.bulk_patch import patch_bulk
from publisher.model import SourceData, ZoneConfig
from publisher.publish.entry_diff import entry_changes

ZONE = ZoneConfig("bl.example.test", "ip", "block", ("*.txt",), 0x7F000002, "{reason}")
DOMAINS = ZoneConfig("dbl.example.test", "domain", "block", ("*.txt",), 0x7F000002, "{reason}")
NOW = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
HEAD = "# a head line that no edit touches, longer than sixty-four bytes of text"

IP = [
    "192.0.2.1",
    "192.0.2.2",
    "192.0.2.3",
    "192.0.2.0/30",
    "192.0.2.0/24",
    "198.51.100.0-198.51.100.9",
    "2001:db8::1",
    "2001:db8::/48",
    "10.1.2.300",
    "# note",
    "",
]
IP_STATE = [":3:three", ":4:four $", ":127.0.0.2:"]
NAMES = ["a.example", "b.example", "*.b.example", ".c.example", "a.example", "bad..name", "# note"]
NAME_STATE = [":3:three", ":4:four"]


def _diff(
    old: SourceData, new: SourceData, rows: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] | None, keep: int | None
) -> object:
    other_old = SourceData("other.txt")
    other_new = SourceData("other.txt")
    d = entry_changes([other_old, old], NOW, [other_new, new], NOW + dt.timedelta(hours=1), frozenset(), keep, rows)
    return d.changes, d.totals, d.windows


def _run(zone: ZoneConfig, base: list[str], edits: list[tuple[int, int, str]], keep: int | None) -> bool:
    lines = [HEAD, *base]
    new_lines = list(lines)
    for op, at, line in edits:
        k = 1 + at % len(new_lines)
        if op == 0 or len(new_lines) == 1:
            new_lines.insert(k, line)
        elif op == 1:
            del new_lines[1 + at % (len(new_lines) - 1)]
        else:
            new_lines[1 + at % (len(new_lines) - 1)] = line
    old_data, new_data = ("\n".join(lines) + "\n").encode(), ("\n".join(new_lines) + "\n").encode()
    old, marks = read_bulk("feed.txt", old_data, zone)
    patched = patch_bulk(old, marks, old_data, new_data, zone)
    if patched is None:
        return False
    rows = {"feed.txt": (patched.removed, patched.added)}
    assert _diff(old, patched.source, rows, keep) == _diff(old, patched.source, None, keep)
    return True


@settings(max_examples=300, deadline=None)
@given(
    base=st.lists(st.sampled_from(IP * 2 + IP_STATE), max_size=30),
    edits=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 999), st.sampled_from(IP)), min_size=1, max_size=5),
    keep=st.sampled_from([None, 0, 1, 3]),
)
def test_partial_ip_diff_is_the_full_diff(base: list[str], edits: list[tuple[int, int, str]], keep: int | None) -> None:
    _run(ZONE, base, edits, keep)


@settings(max_examples=150, deadline=None)
@given(
    base=st.lists(st.sampled_from(NAMES * 2 + NAME_STATE), max_size=25),
    edits=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 999), st.sampled_from(NAMES)), min_size=1, max_size=5),
)
def test_partial_domain_diff_is_the_full_diff(base: list[str], edits: list[tuple[int, int, str]]) -> None:
    _run(DOMAINS, base, edits, None)


def test_a_removed_repeat_shows_the_line_the_full_diff_shows() -> None:
    # the same address on lines 2 and 4: deleting line 2 is reported at old line 4, as the full diff does
    assert _run(ZONE, ["192.0.2.1", "192.0.2.9", "192.0.2.1"], [(1, 0, "")], None)
    assert _run(ZONE, [":3:x", "192.0.2.1", ":4:y", "192.0.2.1", "192.0.2.1"], [(0, 2, "192.0.2.1")], None)
