"""A zone's `excludes` files: local holes punched into every listing of the zone.

An excludes file (zones.yaml `excludes:`) is read by the same readers as a source, so
its syntax and locations are checked the same way; `as_excludes` then makes every entry
of it an exclusion. The compiler removes the live ones from the zone's answers after
merging its sources (compile/compiler.py, `punch`), whichever file lists the address:
unlike a `!` line, which makes a hole in its own file only. Kept in a file that a feed
download never writes, they survive the next download.
"""

from __future__ import annotations

import dataclasses

from publisher import codes
from publisher.addresses import TEST_LISTED_DOMAIN, TEST_LISTED_V4, TEST_LISTED_V6, format_addr
from publisher.errors import Problem
from publisher.lists.checks import row_location, row_text
from publisher.model import SourceData, ZoneConfig

#: Parse findings that only a listing deserves: an exclusion may be broad, and may cover 127.0.0.1.
_LISTING_ONLY = frozenset({codes.BROAD_PREFIX, codes.BROAD_DOMAIN, codes.LISTS_TEST_POINT, codes.DELISTS_TEST_POINT})


def as_excludes(source: SourceData, zone: ZoneConfig) -> SourceData:
    """The parsed file with every entry an exclusion (a copy: a cached parse is shared)."""
    values = [dataclasses.replace(v, exclude=True) if not v.exclude else v for v in source.values]
    problems = [p for p in source.problems if p.code not in _LISTING_ONLY]
    out = dataclasses.replace(source, values=values, problems=problems)
    for row in out.rows():
        point = None
        if row.family == 4 and row.start <= TEST_LISTED_V4 <= row.end:
            point = format_addr(4, TEST_LISTED_V4)
        elif row.family == 6 and row.start <= TEST_LISTED_V6 <= row.end:
            point = format_addr(6, TEST_LISTED_V6)
        elif row.family == 0 and not row.wild and row.name == TEST_LISTED_DOMAIN:
            point = TEST_LISTED_DOMAIN
        if point is not None:
            problems.append(
                Problem(
                    row_location(out, row.line),
                    codes.DELISTS_TEST_POINT,
                    f"the exclusion '{row_text(out, row)}' in {zone.name}'s excludes file would delist "
                    f"{point}, the RFC 5782 test point that is always listed",
                    f"remove it, or narrow it to leave {point} out",
                )
            )
    return out
