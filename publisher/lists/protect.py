"""covers-protected: no entry of an ip blocklist may cover an address of the allowlists its
zones.yaml `protect` names (an excludes file of the blocklist lifts it), fast enough for a
million-entry bulk blocklist: the protected addresses merged once, the blocklist's rows found
against them by bisection. Called by `checks.validate`.
"""

from __future__ import annotations

import datetime as dt
import operator
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import compress, repeat

from publisher import codes
from publisher.addresses import (
    Network,
)
from publisher.errors import Location, Problem
from publisher.model import Config, SourceData, ZoneConfig

#: covers-protected problems located one by one per file; the rest are counted.
MAX_PROTECT_REPORTS = 50


@dataclass(frozen=True, slots=True)
class _Protected:
    start: int
    end: int
    location: Location
    text: str
    zone: str


def _protected(
    config: Config, zone: ZoneConfig, sources: dict[str, list[SourceData]], as_of: dt.datetime
) -> dict[int, list[_Protected]]:
    """Live listings of the allowlists `zone` protects, by family, sorted by start.

    Exclusions in the allowlist are ignored on purpose: a hole in a partner's
    range is still the partner's space, so blocking it needs a deliberate change.
    """
    out: dict[int, list[_Protected]] = {4: [], 6: []}
    for name in zone.protect:
        allow = config.zone(name)
        if allow is None or allow.kind != "ip":
            continue  # config.py already reported it
        for source in sources.get(name, []):
            for row in source.rows():
                value = source.values[row.value]
                if row.family and not value.exclude and value.live(as_of):
                    meta = source.entries.get(row.line)
                    text = source.row_text(row) + (f" ({meta.owner})" if meta and meta.owner else "")
                    out[row.family].append(_Protected(row.start, row.end, source.location(row.line), text, name))
    for fam in out:
        out[fam].sort(key=lambda p: (p.start, p.end))
    return out


def _merge(items: Sequence[_Protected]) -> tuple[list[int], list[int]]:
    starts: list[int] = []
    ends: list[int] = []
    for p in items:
        if ends and p.start <= ends[-1] + 1:
            ends[-1] = max(ends[-1], p.end)
        else:
            starts.append(p.start)
            ends.append(p.end)
    return starts, ends


def _overlapping(starts: Sequence[int], ends: Sequence[int], m_starts: list[int], m_ends: list[int]) -> Iterator[int]:
    """Indices i where [starts[i], ends[i]] meets a merged interval; the loop runs in C.

    For each entry, the merged interval that starts last at or before the entry's
    end is the only candidate (they are disjoint and sorted): it overlaps iff it
    ends at or after the entry's start.
    """
    ext_ends = [-1, *m_ends]  # ext_ends[k] is the end of the k-th interval from the left, 1-based
    idx = map(bisect_right, repeat(m_starts), ends)
    cand_ends = map(ext_ends.__getitem__, idx)
    return compress(range(len(starts)), map(operator.ge, cand_ends, starts))


def _subtract(lo: int, hi: int, holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """[lo, hi] minus the holes (which are sorted by start)."""
    out: list[tuple[int, int]] = []
    cur = lo
    for hs, he in holes:
        if he < cur:
            continue
        if hs > hi:
            break
        if hs > cur:
            out.append((cur, hs - 1))
        cur = max(cur, he + 1)
        if cur > hi:
            return out
    if cur <= hi:
        out.append((cur, hi))
    return out


def covers_protected(
    zone: ZoneConfig, config: Config, sources: dict[str, list[SourceData]], *, as_of: dt.datetime
) -> list[Problem]:
    """Blocklist entries of `zone` that would list an address of a protected allowlist."""
    protected = _protected(config, zone, sources, as_of)
    merged = {fam: _merge(items) for fam, items in protected.items()}
    problems: list[Problem] = []
    srcs = sources.get(zone.name, [])
    local = [s for s in srcs if zone.is_excludes(s.path)]
    zone_holes = {
        fam: sorted(
            (a, b)
            for src in local
            for a, b, v in zip(
                *((src.v4_start, src.v4_end, src.v4_value) if fam == 4 else (src.v6_start, src.v6_end, src.v6_value))
            )
            if src.values[v].live(as_of)
        )
        for fam in (4, 6)
    }
    excludes_file = local[0].path if local else (zone.excludes[0] if zone.excludes else None)
    for source in srcs:
        listed = [not v.exclude and v.live(as_of) for v in source.values]
        reported = 0
        for fam, starts, ends, vals, lines in (
            (4, source.v4_start, source.v4_end, source.v4_value, source.v4_line),
            (6, source.v6_start, source.v6_end, source.v6_value, source.v6_line),
        ):
            m_starts, m_ends = merged[fam]
            if not m_starts or not starts:
                continue
            hits = [i for i in _overlapping(starts, ends, m_starts, m_ends) if listed[vals[i]]]
            if not hits:
                continue
            hole_ids = {k for k, v in enumerate(source.values) if v.exclude and v.live(as_of)}
            holes = sorted((s, e) for s, e, v in zip(starts, ends, vals) if v in hole_ids) if hole_ids else []
            for i in hits:
                s, e = starts[i], ends[i]
                # Within a file the most specific entry wins: narrower exclusions are holes here.
                own_holes = [(hs, he) for hs, he in holes if he - hs < e - s and hs <= e and he >= s]
                if zone_holes[fam]:  # the zone's excludes files: holes whatever their size
                    own_holes = sorted(own_holes + [(hs, he) for hs, he in zone_holes[fam] if hs <= e and he >= s])
                for prot in protected[fam]:
                    if prot.start > e or prot.end < s:
                        continue
                    left = _subtract(max(s, prot.start), min(e, prot.end), own_holes)
                    if not left:
                        continue
                    reported += 1
                    if reported <= MAX_PROTECT_REPORTS:
                        problems.append(
                            _protect_problem(zone, source, fam, s, e, lines[i], prot, left[0], excludes_file)
                        )
                    break
        if reported > MAX_PROTECT_REPORTS:
            problems.append(
                Problem(
                    Location(source.path),
                    codes.COVERS_PROTECTED,
                    f"{reported - MAX_PROTECT_REPORTS} more entries of {source.path} cover protected addresses",
                    "fix the entries above first, then run validate again",
                )
            )
    return problems


def _protect_problem(
    zone: ZoneConfig,
    source: SourceData,
    fam: int,
    s: int,
    e: int,
    line: int,
    prot: _Protected,
    left: tuple[int, int],
    excludes_file: str | None,
) -> Problem:
    meta = source.entries.get(line)
    text = meta.text if meta else str(Network(fam, s, e))
    hole = str(Network(fam, *left))
    how = f"an entry `- ip: {hole}` with `exclude: true`" if meta else f"the line `!{hole}`"
    if excludes_file is not None:
        # A downloaded feed is overwritten by the next download: the hole belongs in the local file.
        fix = (
            f"add {hole} to {excludes_file} (the zone's excludes: file, which downloads do not overwrite), "
            f"or narrow the entry, or add {how} to {source.path}"
        )
    elif meta is None:
        fix = (
            f"add {hole} to a local excludes file that downloads do not overwrite "
            f"(in zones.yaml, `excludes: [{_sibling(source.path)}]` on {zone.name}), "
            f"or narrow the entry, or add {how} to {source.path}"
        )
    else:
        fix = f"narrow the entry, or add {how} to {source.path}"
    return Problem(
        source.location(line),
        codes.COVERS_PROTECTED,
        f"{text} covers {prot.text}, protected by allowlist {prot.zone}",
        fix,
        related=(("protected entry", prot.location),),
    )


def _sibling(path: str) -> str:
    """`local-excludes.txt` beside a feed: bl/feeds.txt -> bl/local-excludes.txt."""
    folder = path.rpartition("/")[0]
    return f"{folder}/local-excludes.txt" if folder else "local-excludes.txt"
