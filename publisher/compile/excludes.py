"""A zone's `excludes` files (zones.yaml): holes punched into its merged listings.

The files are read like any source (lists/excludes.py turns every entry into an
exclusion); here their live ranges and names are taken out of the merged answers after
the sources are merged, in one pass, whichever file listed the address. The RFC 5782
listed test point stays (validation refuses excluding it). Pure, no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from publisher.addresses import TEST_LISTED_V4
from publisher.model import SourceData, ZoneConfig

# A per-source segment value: an index into the zone's pair table, or HOLE.
HOLE = -1
# Segment lists are parallel lists: starts, ends, values.
Segments = tuple[list[int], list[int], list[int]]


def split_excludes(zone: ZoneConfig, sources: list[SourceData]) -> tuple[list[SourceData], list[SourceData]]:
    """The zone's sources proper, and its `excludes` files (zones.yaml)."""
    if not zone.excludes:
        return sources, []
    return [s for s in sources if not zone.is_excludes(s.path)], [s for s in sources if zone.is_excludes(s.path)]


def exclude_ranges(excludes: list[SourceData], family: int, as_of: dt.datetime) -> list[tuple[int, int]]:
    """The live ranges of the excludes files, sorted and joined; never the listed test point."""
    out: list[tuple[int, int]] = []
    for src in excludes:
        live = [v.live(as_of) for v in src.values]
        starts, ends, vals = (
            (src.v4_start, src.v4_end, src.v4_value) if family == 4 else (src.v6_start, src.v6_end, src.v6_value)
        )
        out += [(a, b) for a, b, v in zip(starts, ends, vals) if live[v]]
    joined: list[tuple[int, int]] = []
    for a, b in sorted(out):
        if joined and a <= joined[-1][1] + 1:
            joined[-1] = (joined[-1][0], max(b, joined[-1][1]))
        else:
            joined.append((a, b))
    if family == 4:  # the RFC 5782 point stays listed (validation refuses excluding it)
        t = TEST_LISTED_V4
        joined = [p for a, b in joined for p in ((a, t - 1), (t + 1, b)) if a <= t <= b if p[0] <= p[1]] + [
            (a, b) for a, b in joined if not a <= t <= b
        ]
        joined.sort()
    return joined


def punch(segs: Segments, holes: list[tuple[int, int]]) -> Segments:
    """Disjoint sorted segments minus the holes (sorted, disjoint): one pass over both."""
    if not holes:
        return segs
    out_s: list[int] = []
    out_e: list[int] = []
    out_v: list[int] = []
    k = 0
    for s, e, v in zip(*segs):
        while k < len(holes) and holes[k][1] < s:
            k += 1
        j, cur = k, s
        while j < len(holes) and holes[j][0] <= e:
            if holes[j][0] > cur:
                out_s.append(cur)
                out_e.append(holes[j][0] - 1)
                out_v.append(v)
            cur = max(cur, holes[j][1] + 1)
            j += 1
        if cur <= e:
            out_s.append(cur)
            out_e.append(e)
            out_v.append(v)
    return out_s, out_e, out_v


def punch_domains(excludes: list[SourceData], as_of: dt.datetime) -> tuple[set[str], set[str]]:
    exact: set[str] = set()
    wild: set[str] = set()
    for src in excludes:
        live = [v.live(as_of) for v in src.values]
        for name, is_wild, v in zip(src.dom_name, src.dom_wild, src.dom_value):
            if live[v]:
                (wild if is_wild else exact).add(name)
    return exact, wild


def punch_names(
    exact: dict[str, int],
    wild: dict[str, int],
    hole_exact: set[str],
    hole_wild: set[str],
    best_wild: Callable[[dict[str, int], str, bool], int | None],
) -> None:
    """Make the excluded names holes: an exact name, or every name below a `*.name`."""

    holes = dict.fromkeys(hole_wild, 0)

    def under_hole(name: str, include_self: bool) -> bool:
        return best_wild(holes, name, include_self) is not None

    for name in list(exact):
        if name in hole_exact or under_hole(name, False):
            exact[name] = HOLE
    for name in list(wild):
        if under_hole(name, True):
            wild[name] = HOLE
    listed_wild = {n: a for n, a in wild.items() if a != HOLE}
    for name in hole_exact:
        if name not in exact and best_wild(listed_wild, name, False) is not None:
            exact[name] = HOLE
    for name in hole_wild:
        if name not in wild and best_wild(listed_wild, name, False) is not None:
            wild[name] = HOLE
