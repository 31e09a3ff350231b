"""A new version of a bulk file parsed by patching the parse of the old one. Pure.

Publishing a million-line feed after one line changed should not parse a million
lines again. `patch_bulk` takes the old parse (SourceData + bulk.BulkMarks), the
line differences between the old and the new bytes (`line_hunks`, or hunks from
`git diff`), parses only the new lines and shifts the line numbers of the rest.
The result is exactly what `read_bulk` gives for the new bytes (rows, values and
problems in the same order), or None when that cannot be guaranteed cheaply, and
the caller parses in full:
- a changed line that carries state to the lines below it (a `:A:TXT` default,
  a `$` line, an exclusion, an entry with its own value or TXT), or a new line
  that creates a value;
- a change in the first line or the first 64 bytes (a byte order mark, the UTF-16
  test), a carriage return anywhere, an empty file, a file that is not UTF-8;
- whole-file summaries that quote line numbers (look-alike lines counted) or a file
  past MAX_LINE_PROBLEMS. The repeats summary is computed again over the new rows.
"""

from __future__ import annotations

import dataclasses
import difflib
from array import array
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress
from operator import eq, ne
from typing import Any

from publisher import codes
from publisher.errors import Problem
from publisher.lists.bulk import MAX_LINE_PROBLEMS, BulkMarks, read_bulk_lines
from publisher.lists.bulk_repeats import Example, Seen, allows_repeats, count_repeats, repeats_problem
from publisher.lists.bulk_syntax import split_token
from publisher.model import SourceData, ZoneConfig

__all__ = ["Hunk", "Patched", "line_hunks", "patch_bulk", "patch_bulk_source"]

#: Lines between the first and the last difference that difflib aligns; past this, no hunks.
MAX_DIFF_LINES = 20_000
_BLOCK = 1 << 16


@dataclass(frozen=True, slots=True)
class Hunk:
    """Lines `old` at 0-based line `old_start` of the old file became `new` at `new_start` of the new."""

    old_start: int
    old: tuple[bytes, ...]
    new_start: int
    new: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Patched:
    """The new parse, and which rows went and came (positions in `SourceData.rows()` order)."""

    source: SourceData
    marks: BulkMarks
    removed: tuple[int, ...]  # rows of the old parse that are gone
    added: tuple[int, ...]  # rows of the new parse that are new


def _common_prefix(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i : i + _BLOCK] == b[i : i + _BLOCK]:
        i += _BLOCK
    hi = min(n, i + _BLOCK)
    lo = i
    while lo < hi:  # the first differing byte is in [lo, hi]
        mid = (lo + hi) // 2
        if a[lo : mid + 1] == b[lo : mid + 1]:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    n = min(len(a), len(b), limit)
    la, lb = len(a), len(b)
    i = 0
    while i < n and a[la - min(n, i + _BLOCK) : la - i] == b[lb - min(n, i + _BLOCK) : lb - i]:
        i = min(n, i + _BLOCK)
    lo, hi = i, min(n, i + _BLOCK)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[la - mid : la - lo] == b[lb - mid : lb - lo]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def line_hunks(old: bytes, new: bytes, max_lines: int = MAX_DIFF_LINES) -> list[Hunk] | None:
    """The lines (as `bytes.split(b"\\n")` cuts them) that differ, or None when the stretch
    between the first and last difference is longer than `max_lines` (git diff does better)."""
    if old == new:
        return []
    p = _common_prefix(old, new)
    p = old.rfind(b"\n", 0, p) + 1  # back to the start of the line
    first = old.count(b"\n", 0, p)
    s = _common_suffix(old, new, min(len(old), len(new)) - p)
    tail = old[len(old) - s :]
    cut = tail.find(b"\n")
    if cut < 0:
        s, common_end = 0, 0
    else:
        s -= cut + 1
        common_end = tail.count(b"\n", cut + 1) + 1
    mid_old, mid_new = old[p : len(old) - s], new[p : len(new) - s]
    if common_end:  # both middles end with the newline before the common lines
        a = mid_old[:-1].split(b"\n") if mid_old else []
        b = mid_new[:-1].split(b"\n") if mid_new else []
    else:
        a, b = mid_old.split(b"\n"), mid_new.split(b"\n")
    if len(a) + len(b) > max_lines:
        return None
    out: list[Hunk] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            out.append(Hunk(first + i1, tuple(a[i1:i2]), first + j1, tuple(b[j1:j2])))
    return out


def _simple(text: str) -> bool:
    """Does the line leave nothing behind for the lines below it (no value, no `$`, no exclusion)?"""
    t = text.strip()
    if not t:
        return True
    if t[0] in "#;":
        return t[1:2] != "$"
    if t[0] in "$!" or (t[0] == ":" and t[1:2] != ":"):
        return False
    rest = split_token(t)[1]
    return not rest or rest[0] in "#;"


def _current_at(defaults: Sequence[tuple[int, int]], line: int) -> int:
    """The value id in force at `line` (1-based): that of the last default line above it."""
    i = bisect_left(defaults, (line, -1))
    return defaults[i - 1][1] if i else 0


def _columns(src: SourceData) -> list[tuple[int, list[Any]]]:
    return [
        (4, [src.v4_start, src.v4_end, src.v4_value, src.v4_line]),
        (6, [src.v6_start, src.v6_end, src.v6_value, src.v6_line]),
        (0, [src.dom_name, src.dom_wild, src.dom_value, src.dom_line]),
    ]


def _shifted(column: Any, i: int, j: int, delta: int) -> Any:
    part = column[i:j]
    if not delta:
        return part
    return array(column.typecode, map(delta.__add__, part))


def patch_bulk(
    old: SourceData,
    marks: BulkMarks,
    old_data: bytes,
    new_data: bytes,
    zone: ZoneConfig,
    hunks: Sequence[Hunk] | None = None,
) -> Patched | None:
    """The parse of `new_data` from that of `old_data` (see the module docstring), or None."""
    if not marks.whole or not old_data or not new_data or old_data[:64] != new_data[:64]:
        return None
    if b"\r" in old_data or b"\r" in new_data:
        return None
    if hunks is None:
        hunks = line_hunks(old_data, new_data)
        if hunks is None:
            return None
    tail = old.problems[marks.line_problems :]
    if tail and tail[-1].code == codes.BULK_REPEATS:
        tail = tail[:-1]
    if any(p.code != codes.TXT_TOO_LONG for p in tail):
        return None  # counts of look-alike lines quote a line; too many problems
    parsed: list[tuple[Hunk, SourceData]] = []
    for hunk in hunks:
        if hunk.old_start == 0 or hunk.new_start == 0:
            return None
        try:
            removed = [line.decode("utf-8") for line in hunk.old]
            added = [line.decode("utf-8") for line in hunk.new]
        except UnicodeDecodeError:
            return None
        if not all(map(_simple, removed)) or not all(map(_simple, added)):
            return None
        current = _current_at(marks.defaults, hunk.old_start + 1)
        rows, stateful = read_bulk_lines(old.path, added, hunk.new_start + 1, zone, current)
        if stateful:
            return None
        parsed.append((hunk, rows))
    patched = _assemble(old, marks, parsed, zone, tail)
    if patched is not None and allows_repeats(new_data):
        patched.source.problems[:] = [p for p in patched.source.problems if p.code != codes.BULK_REPEATS]
    return patched


def patch_bulk_source(
    old: SourceData, marks: BulkMarks, old_data: bytes, new_data: bytes, zone: ZoneConfig
) -> SourceData | None:
    """`patch_bulk`'s new SourceData alone."""
    patched = patch_bulk(old, marks, old_data, new_data, zone)
    return patched.source if patched is not None else None


def _assemble(
    old: SourceData,
    marks: BulkMarks,
    parsed: list[tuple[Hunk, SourceData]],
    zone: ZoneConfig,
    tail: Sequence[Problem],
) -> Patched | None:
    new = SourceData(old.path, values=list(old.values))
    removed: list[int] = []
    added: list[int] = []
    old_base = new_base = 0
    pieces = [_columns(rows) for _, rows in parsed]
    for f, ((_, old_cols), (_, new_cols)) in enumerate(zip(_columns(old), _columns(new))):
        lines = old_cols[3]
        pos = delta = 0
        for (hunk, _), piece_cols in zip(parsed, pieces):
            piece = piece_cols[f][1]
            lo = bisect_left(lines, hunk.old_start + 1)
            hi = bisect_left(lines, hunk.old_start + len(hunk.old) + 1)
            for k in range(4):
                new_cols[k] += _shifted(old_cols[k], pos, lo, delta if k == 3 else 0)
            removed.extend(range(old_base + lo, old_base + hi))
            start = len(new_cols[0])
            for k in range(4):
                new_cols[k] += piece[k]
            added.extend(range(new_base + start, new_base + len(new_cols[0])))
            pos = hi
            delta += len(hunk.new) - len(hunk.old)
        for k in range(4):
            new_cols[k] += _shifted(old_cols[k], pos, len(lines), delta if k == 3 else 0)
        old_base += len(lines)
        new_base += len(new_cols[3])
    problems = _line_problems(old.problems[: marks.line_problems], parsed)
    reported = marks.reported - marks.line_problems + len(problems)
    if reported > MAX_LINE_PROBLEMS:
        return None
    new.problems = problems + [_moved(p, parsed) for p in tail]
    counted = _same_repeats(old, new, marks, removed, added, parsed, zone)
    if counted is None:
        excl = {i for i, v in enumerate(new.values) if v.exclude}
        counted = count_repeats(new, _seen(new), excl, ip=zone.kind == "ip")
    summary = repeats_problem(new.path, *counted)
    if summary is not None:
        new.problems.append(summary)
    defaults = tuple((_new_line(line, parsed), v) for line, v in marks.defaults)
    new_marks = BulkMarks(defaults, len(problems), reported, whole=True, repeats=counted)
    return Patched(new, new_marks, tuple(removed), tuple(added))


#: Past this many changed rows the repeats summary is counted again over the whole file.
_MAX_QUICK_REPEATS = 16


def _same_repeats(
    old: SourceData,
    new: SourceData,
    marks: BulkMarks,
    removed: list[int],
    added: list[int],
    parsed: list[tuple[Hunk, SourceData]],
    zone: ZoneConfig,
) -> tuple[int, int, Example | None] | None:
    """The repeats summary's counts when the change cannot alter them, else None (count again).

    That is when every row that went or came is a single address listed nowhere else in its
    version of the file and inside no range of it: repeats and overlaps stay, and so does the
    example (its lines shifted), unless it came from set order ("lies inside")."""
    if zone.kind != "ip" or marks.repeats is None or len(removed) + len(added) > _MAX_QUICK_REPEATS:
        return None
    repeats, overlaps, example = marks.repeats
    if example is not None and example[2] == "lies inside":
        return None
    excl = {i for i, v in enumerate(new.values) if v.exclude}
    ranges: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for src, positions in ((old, removed), (new, added)):
        for k in positions:
            row = src.row(k)
            if row.start != row.end or row.value in excl:
                return None
            starts, ends = (src.v4_start, src.v4_end) if row.family == 4 else (src.v6_start, src.v6_end)
            if starts.count(row.start) != 1:
                return None
            key = (id(src), row.family)
            if key not in ranges:
                ranges[key] = list(compress(zip(starts, ends), map(ne, starts, ends)))
            if any(s <= row.start <= e for s, e in ranges[key]):
                return None
    if example is not None:
        example = (_new_line(example[0], parsed), _new_line(example[1], parsed), example[2])
    return repeats, overlaps, example


def _new_line(line: int, parsed: list[tuple[Hunk, SourceData]]) -> int:
    """Where an unchanged old line is in the new file."""
    delta = 0
    for hunk, _ in parsed:
        if hunk.old_start + len(hunk.old) >= line:
            break
        delta += len(hunk.new) - len(hunk.old)
    return line + delta


def _moved(p: Problem, parsed: list[tuple[Hunk, SourceData]]) -> Problem:
    line = p.location.line
    if line is None:
        return p
    return dataclasses.replace(p, location=dataclasses.replace(p.location, line=_new_line(line, parsed)))


def _line_problems(old: list[Problem], parsed: list[tuple[Hunk, SourceData]]) -> list[Problem]:
    """The old line-by-line problems outside the changed lines, shifted, with the new lines' ones in place."""
    lines = [p.location.line or 0 for p in old]
    out: list[Problem] = []
    pos = delta = 0
    for hunk, rows in parsed:
        lo = bisect_left(lines, hunk.old_start + 1)
        out.extend(_shift(p, delta) for p in old[pos:lo])
        out.extend(rows.problems)
        pos = bisect_left(lines, hunk.old_start + len(hunk.old) + 1)
        delta += len(hunk.new) - len(hunk.old)
    out.extend(_shift(p, delta) for p in old[pos:])
    return out


def _shift(p: Problem, delta: int) -> Problem:
    if not delta or p.location.line is None:
        return p
    return dataclasses.replace(p, location=dataclasses.replace(p.location, line=p.location.line + delta))


def _seen(src: SourceData) -> Seen:
    """What bulk.py gathers while storing rows, from the rows: live single addresses and ranges."""
    seen = Seen()
    excl = {i for i, v in enumerate(src.values) if v.exclude}
    for family, (starts, ends, values, lines) in _columns(src)[:2]:
        single: list[bool] | Any = list(map(eq, starts, ends))
        ranged: list[bool] | Any = list(map(ne, starts, ends))
        if excl:
            live = [v not in excl for v in values]
            single = [a and b for a, b in zip(single, live)]
            ranged = [a and b for a, b in zip(ranged, live)]
        seen.singles[family] = set(compress(starts, single))
        seen.single_rows[family] = sum(single)
        seen.ranges[family] = list(compress(zip(starts, ends, lines), ranged))
    return seen
