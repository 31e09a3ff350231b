"""A zone's `excludes` files: local holes punched into every listing of the zone.

An excludes file (zones.yaml `excludes:`) is read by the same readers as a source, so its
syntax and locations are checked the same way, with every entry checked as an exclusion
(`reading_config`); `as_excludes` then makes every entry of it one. The compiler removes
the live ones from the zone's answers after merging its sources (compile/compiler.py,
`punch`), whichever file lists the address: unlike a `!` line, which makes a hole in its
own file only. Kept in a file that a feed download never writes, they survive the next
download.
"""

from __future__ import annotations

import dataclasses

from publisher.model import SourceData, ZoneConfig


def reading_config(zone: ZoneConfig) -> ZoneConfig:
    """The settings an excludes file of `zone` is parsed with: its entries checked as exclusions
    (a broad one is fine, one over 127.0.0.2 is refused). Part of the parse cache key."""
    return dataclasses.replace(zone, read_as_excludes=True)


def as_excludes(source: SourceData) -> SourceData:
    """The parsed file with every entry an exclusion (a copy: a cached parse is shared)."""
    values = [v if v.exclude else dataclasses.replace(v, exclude=True) for v in source.values]
    return dataclasses.replace(source, values=values)
