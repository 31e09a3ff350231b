"""Entry-level diff of two publishes: which list entries were added, removed, expired
or changed (code or reason), with their file:line. Pure.

`entry_changes` compares the parsed sources of the published commit with those of
the new one. Rows of files with identical bytes cancel out without being looked at
(only their entries that expired since the last publish matter); the rest are
compared by a multiset difference of 64-bit row fingerprints held in arrays, so a
changed feed of a million lines costs a few arrays, not a million objects. Only
the rows that differ become `_Row`s, and only the first `keep` changes `Change`s.

A multiset of rows does not see order, yet order can matter: of the rows of one
file that cover the same block the first listed decides it (see `_deciders`), so
reordering two lines that repeat an address with different reasons changes its
answer without changing a row. `_deciders` finds such blocks in the files on both
sides; where the deciding answer differs the block becomes a window, and a pure
reorder shows as a CHANGED entry (the row that decided it, the row that does now).
"""

from __future__ import annotations

import datetime as dt
import heapq
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain, compress, repeat
from itertools import count as naturals
from operator import ne
from typing import Any, NamedTuple

from publisher.addresses import V4_BITS, V6_BITS, range_to_cidrs
from publisher.model import Row, SourceData, Value

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


class _Row(NamedTuple):
    """One entry of one side of the diff: the source it is in, and its row there."""

    src: SourceData
    row: Row

    @property
    def value(self) -> Value:
        return self.src.values[self.row.value]

    @property
    def key(self) -> tuple[object, ...]:
        """What the entry covers and whether it is a hole: the same entry in any file, with any answer."""
        return (*self.row.subject, self.value.exclude)

    def entry(self) -> Entry:
        return Entry(self.src.path, self.row.line, self.row.text, self.value)


class _Side:
    """The live rows of one side's changed files as three arrays: each row's fingerprint, its
    source and its number there. A `_Row` is built only for the rows that differ (`get`)."""

    def __init__(self, sources: Sequence[SourceData]) -> None:
        self.sources = sources
        self.prints: array[int] = array("q")
        self.src: array[int] = array("i")
        self.pos: array[int] = array("q")

    def add(self, i: int, as_of: dt.datetime) -> None:
        src = self.sources[i]
        live = [v.live(as_of) for v in src.values]
        # the path is part of it: moving an entry to another file can change which TXT wins
        answer = [hash((v.exclude, v.code, v.reason, src.path)) for v in src.values]
        prints, pos = self.prints, self.pos
        for k, row in enumerate(src.rows()):
            if live[row.value]:
                prints.append(hash((row[:5], answer[row.value])))  # row[:5] is row.subject, without a call
                pos.append(k)
        self.src.extend(repeat(i, len(pos) - len(self.src)))

    def add_some(self, i: int, positions: Sequence[int], as_of: dt.datetime) -> None:
        """`add` for the rows at `positions` (ascending) of source i only."""
        src = self.sources[i]
        for k, h in _prints(src, positions, as_of):
            self.prints.append(h)
            self.pos.append(k)
        self.src.extend(repeat(i, len(self.pos) - len(self.src)))

    def get(self, j: int) -> _Row:
        src = self.sources[self.src[j]]
        return _Row(src, src.row(self.pos[j]))

    def order(self) -> list[int]:
        """Row indices sorted by fingerprint."""
        return sorted(range(len(self.prints)), key=self.prints.__getitem__)


def _prints(src: SourceData, positions: Iterable[int], as_of: dt.datetime) -> Iterator[tuple[int, int]]:
    """(position, fingerprint as `_Side.add` makes it) of the live rows of `src` at `positions`."""
    live = [v.live(as_of) for v in src.values]
    answer = [hash((v.exclude, v.code, v.reason, src.path)) for v in src.values]
    for k in positions:
        row = src.row(k)
        if live[row.value]:
            yield k, hash((row[:5], answer[row.value]))


def _with_print(src: SourceData, wanted: set[int], subjects: set[tuple[int, Any]], as_of: dt.datetime) -> set[int]:
    """Positions of the live rows of `src` whose fingerprint is in `wanted`, found by their
    subjects' (family, start or name): one pass in C per family that has any."""
    found: set[int] = set()
    offset = 0
    for family, firsts in ((4, src.v4_start), (6, src.v6_start), (0, src.dom_name)):
        keys = {first for fam, first in subjects if fam == family}
        if keys:
            hits = compress(range(offset, offset + len(firsts)), map(keys.__contains__, firsts))
            found.update(k for k, h in _prints(src, hits, as_of) if h in wanted)
        offset += len(firsts)
    return found


def _restricted(
    old: SourceData,
    old_as_of: dt.datetime,
    new: SourceData,
    new_as_of: dt.datetime,
    removed: Sequence[int],
    added: Sequence[int],
) -> tuple[list[int], list[int]]:
    """The rows of one changed file that the diff needs when only `removed` and `added` differ.

    The rest of the file is the same rows on both sides (lines shifted), which cancel out;
    but where a fingerprint's count changes, the full diff reports the *last* rows with it,
    so every row with such a fingerprint is taken on both sides, to pair them off alike."""
    gone = dict(_prints(old, removed, old_as_of))
    came = dict(_prints(new, added, new_as_of))
    balance = Counter(gone.values())
    balance.subtract(came.values())
    wanted = {h for h, n in balance.items() if n}
    old_rows, new_rows = set(removed), set(added)
    if wanted:
        subjects = {(r[0], r[1] if r[0] else r[3]) for r in (old.row(k) for k in gone if gone[k] in wanted)}
        subjects |= {(r[0], r[1] if r[0] else r[3]) for r in (new.row(k) for k in came if came[k] in wanted)}
        old_rows |= _with_print(old, wanted, subjects, old_as_of)
        new_rows |= _with_print(new, wanted, subjects, new_as_of)
    return sorted(old_rows), sorted(new_rows)


_Answer = tuple[bool, int, str]  # exclude, code, reason: what a row makes its file answer (a hole: True, 0, "")
_Piece = tuple[int, Any, Any]  # (family, start, end) of a CIDR block; (0, name, wild) of a domain


class _Decider(NamedTuple):
    """The row that decides one piece that rows of different answers share in one file."""

    answer: _Answer
    pos: int  # its number in SourceData.rows()
    rows: tuple[tuple[Any, Any, _Answer], ...]  # (start, end or name, wild, answer) of each row on the piece, sorted


def _cidrs(start: int, end: int, bits: int) -> list[tuple[int, int]]:
    """[start, end] as the compiler cuts it: CIDR blocks (start, end), in order."""
    return [(s, s + (1 << (bits - plen)) - 1) for s, plen in range_to_cidrs(start, end, bits)]


def _deciders(src: SourceData, as_of: dt.datetime) -> dict[_Piece, _Decider]:
    """The pieces of `src` whose answer depends on the order of its rows, with the row that decides each.

    The compiler cuts each address range into CIDR blocks (pieces; a CIDR row is one piece) and,
    of the live rows of one file that share a piece, the first listed decides it, a row whose
    first piece it is before a range for which it is a later one (compile/compiler.py
    `_laminar`); of two rows listing one domain the first decides too. Order matters only where
    rows of different answers share a piece, so a file whose live values all answer alike (a
    plain bulk feed) costs nothing here, and otherwise only the pieces of the rows that do not
    give the family's most common answer are collected, by loops in C.
    """
    live = [v.live(as_of) for v in src.values]
    # a hole is a hole whatever its code and reason say (compile/compiler.py `_value_map`)
    answers: list[_Answer] = [(True, 0, "") if v.exclude else (False, v.code, v.reason) for v in src.values]
    out: dict[_Piece, _Decider] = {}
    if len({a for a, ok in zip(answers, live) if ok}) < 2:
        return out
    columns: tuple[tuple[int, Sequence[Any], Sequence[Any], Sequence[int]], ...] = (
        (4, src.v4_start, src.v4_end, src.v4_value),
        (6, src.v6_start, src.v6_end, src.v6_value),
        (0, src.dom_name, src.dom_wild, src.dom_value),
    )
    offset = 0
    for family, firsts, seconds, col in columns:
        per_value = Counter(col)
        per_answer: Counter[_Answer] = Counter()
        for v, count in per_value.items():
            if live[v]:
                per_answer[answers[v]] += count
        if len(per_answer) > 1:
            common = per_answer.most_common(1)[0][0]
            others = {v for v in per_value if live[v] and answers[v] != common}
            for piece, decider in _family_deciders(family, firsts, seconds, col, live, answers, others):
                out[piece] = decider._replace(pos=offset + decider.pos)
        offset += len(col)
    return out


def _family_deciders(
    family: int,
    firsts: Sequence[Any],
    seconds: Sequence[Any],
    col: Sequence[int],
    live: list[bool],
    answers: list[_Answer],
    others: set[int],
) -> Iterator[tuple[_Piece, _Decider]]:
    """`_deciders` for one family: `firsts` and `seconds` are its start and end columns (a domain's
    name and wild), `others` the live values that do not give its most common answer. Positions
    count in the family's columns. Pieces are looked up by their start (name) first: cheaper than
    a (start, end) key, and a start that two rows share only costs a closer look."""
    n = len(col)
    bits = V4_BITS if family == 4 else V6_BITS
    cut: dict[int, list[tuple[int, int]]] = {}  # rows that are not one CIDR block, in pieces (no domain)
    if family:
        for k in compress(range(n), map(ne, firsts, seconds)):
            s, e = firsts[k], seconds[k]
            if (e - s) & (e - s + 1) or s & (e - s):
                cut[k] = _cidrs(s, e, bits)

    def pieces(k: int) -> list[tuple[Any, Any]]:
        return cut.get(k) or [(firsts[k], seconds[k])]

    # Where the rows of the other answers start a piece, and how many rows start one there.
    starts = set(compress(firsts, map(others.__contains__, col)))
    starts.update(p[0] for k, ps in cut.items() if col[k] in others for p in ps)
    count = Counter(filter(starts.__contains__, firsts))
    for ps in cut.values():
        count.update(p[0] for p in ps[1:] if p[0] in starts)
    hot = {start for start, c in count.items() if c > 1}
    if not hot:
        return
    on = set(compress(range(n), map(hot.__contains__, firsts)))
    on.update(k for k, ps in cut.items() if any(p[0] in hot for p in ps[1:]))
    groups: dict[tuple[Any, Any], list[tuple[bool, int, _Answer]]] = {}
    for k in sorted(on):
        if live[col[k]]:
            for i, p in enumerate(pieces(k)):
                if p[0] in hot:
                    groups.setdefault(p, []).append((i > 0, k, answers[col[k]]))
    for p, group in groups.items():
        if len({a for _, _, a in group}) > 1:
            _, k, answer = min(group)
            rows = tuple(sorted((firsts[j], seconds[j], a) for _, j, a in group))
            yield (family, *p), _Decider(answer, k, rows)


def _shown(old: _Row | None, new: _Row | None) -> _Row:
    """The row a change shows: as it reads in the new commit, or in the old one when it is gone."""
    row = new if new is not None else old
    assert row is not None
    return row


def _expired_between(value: Value, since: dt.datetime, until: dt.datetime) -> bool:
    return value.expires is not None and since < value.expires <= until


def _multiset_minus(a: _Side, b: _Side) -> tuple[list[_Row], list[_Row]]:
    """Rows only in a, rows only in b (by code, reason, file and what they cover), as multisets."""
    pa, oa = a.prints, a.order()
    pb, ob = b.prints, b.order()
    only_a: list[_Row] = []
    only_b: list[_Row] = []
    i = j = 0
    while i < len(oa) and j < len(ob):
        ha, hb = pa[oa[i]], pb[ob[j]]
        if ha == hb:
            i += 1
            j += 1
        elif ha < hb:
            only_a.append(a.get(oa[i]))
            i += 1
        else:
            only_b.append(b.get(ob[j]))
            j += 1
    only_a.extend(a.get(k) for k in oa[i:])
    only_b.extend(b.get(k) for k in ob[j:])
    return only_a, only_b


def _reordered(
    old: SourceData,
    old_as_of: dt.datetime,
    new: SourceData,
    new_as_of: dt.datetime,
    windows: list[tuple[int, int, int]],
) -> list[tuple[str, _Row | None, _Row | None]]:
    """Where a changed file answers differently because another of its rows decides now.

    Every piece whose deciding answer differs becomes a window. If the rows on it are the
    same on both sides (only their order changed) no other change shows it, so the row that
    decided it and the row that does now are returned as a CHANGED entry.
    """
    before, after = _deciders(old, old_as_of), _deciders(new, new_as_of)
    changed: dict[tuple[int, int], tuple[str, _Row | None, _Row | None]] = {}
    for piece in sorted(before.keys() | after.keys()):  # sorted: the same Changes in the same order every run
        was, now = before.get(piece), after.get(piece)
        if was is not None and now is not None and was.answer == now.answer:
            continue
        if piece[0]:
            windows.append(piece)
        if was is not None and now is not None and was.rows == now.rows and (was.pos, now.pos) not in changed:
            changed[(was.pos, now.pos)] = (CHANGED, _Row(old, old.row(was.pos)), _Row(new, new.row(now.pos)))
    return list(changed.values())


@dataclass(frozen=True, slots=True)
class EntryDiff:
    """Changed entries: every one counted, the first `keep` (in display order) kept as Changes."""

    changes: tuple[Change, ...]
    totals: dict[tuple[str, bool], int]  # (kind, is a listing) -> count
    windows: tuple[tuple[int, int, int], ...]  # (family, start, end) of every changed ip entry
    removed_from: dict[str, int] = field(default_factory=dict)  # path -> REMOVED listings of that file


_ORDER = {ADDED: 0, CHANGED: 1, REMOVED: 2, EXPIRED: 3}


def entry_changes(
    before: Sequence[SourceData],
    before_as_of: dt.datetime,
    after: Sequence[SourceData],
    after_as_of: dt.datetime,
    unchanged: frozenset[str] = frozenset(),
    keep: int | None = None,
    row_changes: Mapping[str, tuple[Sequence[int], Sequence[int]]] | None = None,
) -> EntryDiff:
    """Entries added, removed, expired and changed (code or reason) between two source sets.

    `unchanged` names the files whose bytes are the same on both sides; `keep`
    caps how many Changes are built (None: all), the counts are always complete.
    `row_changes`: for a changed file, the positions of the rows that went (in its old
    parse) and came (in its new one), when known: only those are diffed, with the same result.
    """
    old_paths = {s.path for s in before}
    new_paths = {s.path for s in after}
    same = unchanged & old_paths & new_paths
    before_at = {s.path: s for s in before}
    after_at = {s.path: s for s in after}
    partial: dict[str, tuple[list[int], list[int]]] = {}
    for path, (removed, added) in (row_changes or {}).items():
        if path in old_paths and path in new_paths and path not in same:
            partial[path] = _restricted(before_at[path], before_as_of, after_at[path], after_as_of, removed, added)
    # (kind, old row, new row): _Rows are built for the rows that differ only, Changes for the kept ones
    found: list[tuple[str, _Row | None, _Row | None]] = []
    old_side = _Side(before)
    for i, src in enumerate(before):
        if src.path in same:
            # Identical bytes: only the entries whose expiry fell between the two publishes move.
            gone = {k for k, v in enumerate(src.values) if _expired_between(v, before_as_of, after_as_of)}
            if gone:
                found.extend((EXPIRED, _Row(src, r), None) for r in src.rows() if r.value in gone)
            continue
        if src.path in partial:
            old_side.add_some(i, partial[src.path][0], before_as_of)
        else:
            old_side.add(i, before_as_of)
    new_side = _Side(after)
    expired_keys: set[tuple[object, ...]] = set()
    for i, src in enumerate(after):
        if src.path in same:
            continue
        if src.path in partial:
            new_side.add_some(i, partial[src.path][1], after_as_of)
        else:
            new_side.add(i, after_as_of)
        gone = {k for k, v in enumerate(src.values) if _expired_between(v, before_as_of, after_as_of)}
        if gone:
            expired_keys.update(_Row(src, r).key for r in src.rows() if r.value in gone)
    only_old, only_new = _multiset_minus(old_side, new_side)
    del old_side, new_side
    by_key: dict[tuple[object, ...], tuple[list[_Row], list[_Row]]] = {}
    for r in only_old:
        by_key.setdefault(r.key, ([], []))[0].append(r)
    for r in only_new:
        by_key.setdefault(r.key, ([], []))[1].append(r)
    moved: list[_Row] = []
    for key, (olds, news) in by_key.items():
        # the same entry in another file is no change to show, but its place still counts
        same_value: dict[tuple[int, str], list[_Row]] = {}
        for o in olds:
            same_value.setdefault((o.value.code, o.value.reason), []).append(o)
        unmatched: list[_Row] = []
        for n in news:
            twins = same_value.get((n.value.code, n.value.reason))
            if twins:
                moved += (twins.pop(), n)
            else:
                unmatched.append(n)
        rest = [o for group in same_value.values() for o in group]
        found.extend((CHANGED, o, n) for o, n in zip(rest, unmatched))
        found.extend((EXPIRED if key in expired_keys else REMOVED, o, None) for o in rest[len(unmatched) :])
        found.extend((ADDED, None, n) for n in unmatched[len(rest) :])
    windows: list[tuple[int, int, int]] = []
    for old_src in before:
        new_src = after_at.get(old_src.path)
        if new_src is not None and old_src.path not in same:
            found += _reordered(old_src, before_as_of, new_src, after_as_of, windows)
    totals: dict[tuple[str, bool], int] = {}
    removed_from: dict[str, int] = {}
    for kind, old_row, new_row in found:
        listing = not _shown(old_row, new_row).value.exclude
        totals[(kind, listing)] = totals.get((kind, listing), 0) + 1
        if kind == REMOVED and listing and old_row is not None:
            removed_from[old_row.src.path] = removed_from.get(old_row.src.path, 0) + 1
        windows.extend(
            (r.row.family, r.row.start, r.row.end) for r in (old_row, new_row) if r is not None and r.row.family
        )
    windows.extend((r.row.family, r.row.start, r.row.end) for r in moved if r.row.family)

    def order(item: tuple[str, _Row | None, _Row | None]) -> tuple[int, str, int]:
        kind, o, n = item
        shown = _shown(o, n)
        return _ORDER[kind], shown.src.path, shown.row.line

    kept = sorted(found, key=order) if keep is None else heapq.nsmallest(keep, found, key=order)
    changes = tuple(
        Change(kind, _shown(o, n).entry(), o.entry() if (kind == CHANGED and o is not None) else None)
        for kind, o, n in kept
    )
    return EntryDiff(changes, totals, tuple(windows), removed_from)


def first_entries(
    sources: Sequence[SourceData], as_of: dt.datetime, totals: dict[tuple[str, bool], int], keep: int | None
) -> EntryDiff:
    """A first publish: every live entry is ADDED. `totals` counts them (the caller has them);
    only the first `keep` in display order (file, line) become Changes, so a first plan shows
    entry lines before its "... and N more" and a million-line feed costs one pass of C loops."""
    picked: list[tuple[str, int, int, SourceData]] = []  # (path, line, row number, source)
    for src in sorted(sources, key=lambda s: s.path):
        if keep is not None and len(picked) >= keep:
            break  # files in path order: later ones cannot come first
        live = [v.live(as_of) for v in src.values]
        values = chain(src.v4_value, src.v6_value, src.dom_value)
        lines = chain(src.v4_line, src.v6_line, src.dom_line)
        rows = compress(zip(lines, naturals()), map(live.__getitem__, values))
        first = heapq.nsmallest(keep, rows) if keep is not None else sorted(rows)
        picked.extend((src.path, line, k, src) for line, k in first)
    if keep is not None:
        picked = picked[:keep]
    changes = tuple(Change(ADDED, _Row(src, src.row(k)).entry()) for _, _, k, src in picked)
    return EntryDiff(changes, totals, ())
