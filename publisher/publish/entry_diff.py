"""Entry-level diff of two publishes: which list entries were added, removed, expired
or changed (code or reason), with their file:line. Pure.

Place in the flow: plan.py calls `entry_changes` with the parsed sources of
the published commit and of the new one. Rows of files with identical bytes
cancel out without being looked at (only their entries that expired since the
last publish matter); the rest are compared by a multiset difference of 64-bit
row fingerprints, so a changed feed of a million lines costs two arrays, not a
million objects; and only the first `keep` changes become objects.
"""

from __future__ import annotations

import datetime as dt
import heapq
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from publisher.addresses import Network
from publisher.model import SourceData, Value

ADDED, REMOVED, EXPIRED, CHANGED = "added", "removed", "expired", "changed"


@dataclass(frozen=True, slots=True)
class Entry:
    """One list entry as the plan shows it."""

    path: str
    line: int
    text: str  # the network or domain, normalised ("*." prefix for wildcards)
    value: Value


@dataclass(frozen=True, slots=True)
class Change:
    kind: str  # ADDED, REMOVED, EXPIRED or CHANGED
    entry: Entry  # as it reads in the new commit (added, changed) or in the old one
    old: Entry | None = None  # CHANGED: the entry as it read before

    @property
    def side(self) -> str:
        """Which commit holds `entry`: 'new' or 'old' (what to blame)."""
        return "new" if self.kind in (ADDED, CHANGED) else "old"

    @property
    def is_listing(self) -> bool:
        return not self.entry.value.exclude


# A row: (source index, family, start-or-name, end-or-wild, value index, line)
_Row = tuple[int, int, object, int, int, int]


def _rows(src_i: int, src: SourceData) -> Iterator[_Row]:
    for s, e, v, line in zip(src.v4_start, src.v4_end, src.v4_value, src.v4_line):
        yield src_i, 4, s, e, v, line
    for s6, e6, v, line in zip(src.v6_start, src.v6_end, src.v6_value, src.v6_line):
        yield src_i, 6, s6, e6, v, line
    for name, wild, v, line in zip(src.dom_name, src.dom_wild, src.dom_value, src.dom_line):
        yield src_i, 0, name, wild, v, line


def _expired_between(value: Value, since: dt.datetime, until: dt.datetime) -> bool:
    return value.expires is not None and since < value.expires <= until


def _key(row: _Row, value: Value) -> tuple[object, ...]:
    return (row[1], row[2], row[3], value.exclude)


def _print_key(row: _Row, value: Value, path: str) -> tuple[object, ...]:
    # the path is part of it: moving an entry to another file can change which TXT wins
    return (row[1], row[2], row[3], value.exclude, value.code, value.reason, path)


def _entry(sources: Sequence[SourceData], row: _Row) -> Entry:
    src = sources[row[0]]
    if row[1] == 0:
        text = ("*." if row[3] else "") + str(row[2])
    else:
        text = str(Network(row[1], int(row[2]), row[3]))  # type: ignore[call-overload]
    return Entry(src.path, row[5], text, src.values[row[4]])


def _sorted_prints(rows: list[_Row], sources: Sequence[SourceData]) -> tuple[array[int], list[int]]:
    prints = array("q", (hash(_print_key(r, sources[r[0]].values[r[4]], sources[r[0]].path)) for r in rows))
    order = sorted(range(len(rows)), key=prints.__getitem__)
    return prints, order


def _multiset_minus(
    rows_a: list[_Row], src_a: Sequence[SourceData], rows_b: list[_Row], src_b: Sequence[SourceData]
) -> tuple[list[_Row], list[_Row]]:
    """Rows only in a, rows only in b (by code, reason and what they cover), as multisets."""
    pa, oa = _sorted_prints(rows_a, src_a)
    pb, ob = _sorted_prints(rows_b, src_b)
    only_a: list[_Row] = []
    only_b: list[_Row] = []
    i = j = 0
    while i < len(oa) and j < len(ob):
        ha, hb = pa[oa[i]], pb[ob[j]]
        if ha == hb:
            i += 1
            j += 1
        elif ha < hb:
            only_a.append(rows_a[oa[i]])
            i += 1
        else:
            only_b.append(rows_b[ob[j]])
            j += 1
    only_a.extend(rows_a[k] for k in oa[i:])
    only_b.extend(rows_b[k] for k in ob[j:])
    return only_a, only_b


@dataclass(frozen=True, slots=True)
class EntryDiff:
    """Changed entries: every one counted, the first `keep` (in display order) kept as Changes."""

    changes: tuple[Change, ...]
    totals: dict[tuple[str, bool], int]  # (kind, is a listing) -> count
    windows: tuple[tuple[int, int, int], ...]  # (family, start, end) of every changed ip entry


_ORDER = {ADDED: 0, CHANGED: 1, REMOVED: 2, EXPIRED: 3}


def entry_changes(
    before: Sequence[SourceData],
    before_as_of: dt.datetime,
    after: Sequence[SourceData],
    after_as_of: dt.datetime,
    unchanged: frozenset[str] = frozenset(),
    keep: int | None = None,
) -> EntryDiff:
    """Entries added, removed, expired and changed (code or reason) between two source sets.

    `unchanged` names the files whose bytes are the same on both sides; `keep`
    caps how many Changes are built (None: all), the counts are always complete.
    """
    old_paths = {s.path for s in before}
    new_paths = {s.path for s in after}
    same = unchanged & old_paths & new_paths
    # (kind, old row, new row); rows are cheap tuples, Changes are built for the kept ones only
    found: list[tuple[str, _Row | None, _Row | None]] = []
    old_rows: list[_Row] = []
    for i, src in enumerate(before):
        vals = src.values
        if src.path in same:
            # Identical bytes: only the entries whose expiry fell between the two publishes move.
            gone = {k for k, v in enumerate(vals) if _expired_between(v, before_as_of, after_as_of)}
            if gone:
                found.extend((EXPIRED, r, None) for r in _rows(i, src) if r[4] in gone)
            continue
        old_rows.extend(r for r in _rows(i, src) if vals[r[4]].live(before_as_of))
    new_rows: list[_Row] = []
    expired_keys: set[tuple[object, ...]] = set()
    for i, src in enumerate(after):
        if src.path in same:
            continue
        vals = src.values
        for r in _rows(i, src):
            value = vals[r[4]]
            if value.live(after_as_of):
                new_rows.append(r)
            elif _expired_between(value, before_as_of, after_as_of):
                expired_keys.add(_key(r, value))
    only_old, only_new = _multiset_minus(old_rows, before, new_rows, after)
    del old_rows, new_rows
    by_key: dict[tuple[object, ...], tuple[list[_Row], list[_Row]]] = {}
    for r in only_old:
        by_key.setdefault(_key(r, before[r[0]].values[r[4]]), ([], []))[0].append(r)
    for r in only_new:
        by_key.setdefault(_key(r, after[r[0]].values[r[4]]), ([], []))[1].append(r)
    moved: list[_Row] = []
    for key, (olds, news) in by_key.items():
        # the same entry in another file is no change to show, but its place still counts
        same_value: dict[tuple[int, str], list[_Row]] = {}
        for o in olds:
            v = before[o[0]].values[o[4]]
            same_value.setdefault((v.code, v.reason), []).append(o)
        unmatched: list[_Row] = []
        for n in news:
            v = after[n[0]].values[n[4]]
            twins = same_value.get((v.code, v.reason))
            if twins:
                moved += (twins.pop(), n)
            else:
                unmatched.append(n)
        rest = [o for group in same_value.values() for o in group]
        found.extend((CHANGED, o, n) for o, n in zip(rest, unmatched))
        found.extend((EXPIRED if key in expired_keys else REMOVED, o, None) for o in rest[len(unmatched) :])
        found.extend((ADDED, None, n) for n in unmatched[len(rest) :])
    totals: dict[tuple[str, bool], int] = {}
    windows: list[tuple[int, int, int]] = []
    for kind, old_row, new_row in found:
        row, srcs = (new_row, after) if new_row is not None else (old_row, before)
        assert row is not None
        listing = not srcs[row[0]].values[row[4]].exclude
        totals[(kind, listing)] = totals.get((kind, listing), 0) + 1
        windows.extend((r[1], int(r[2]), r[3]) for r in (old_row, new_row) if r is not None and r[1])  # type: ignore[call-overload]
    windows.extend((r[1], int(r[2]), r[3]) for r in moved if r[1])  # type: ignore[call-overload]

    def order(item: tuple[str, _Row | None, _Row | None]) -> tuple[int, str, int]:
        kind, o, n = item
        row, srcs = (n, after) if n is not None else (o, before)
        return _ORDER[kind], srcs[row[0]].path, row[5]  # type: ignore[index]

    kept = sorted(found, key=order) if keep is None else heapq.nsmallest(keep, found, key=order)
    changes = tuple(
        Change(
            kind,
            _entry(after, n) if n is not None else _entry(before, o),  # type: ignore[arg-type]
            _entry(before, o) if (kind == CHANGED and o is not None) else None,
        )
        for kind, o, n in kept
    )
    return EntryDiff(changes, totals, tuple(windows))
