"""Where an import's files land among the zones already configured.

A list file belongs to every zone whose `sources` glob matches it: an import written
under another zone's glob (`bl/feed.txt` with `bl/*.txt` in bl.example.test) would
be published by that zone too, with its code and TXT. `claims` finds those zones
before anything is written. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from publisher.model import Config, glob_matches


@dataclass(frozen=True, slots=True)
class Claim:
    """`path` matches `pattern`, a source glob of the configured zone `zone`."""

    path: str
    zone: str
    pattern: str


def claims(config: Config, paths: Iterable[str]) -> list[Claim]:
    """The configured zones whose sources would take in any of `paths` (relative to lists/)."""
    found: list[Claim] = []
    for path in paths:
        for zone in config.zones:
            pattern = next((p for p in zone.sources if glob_matches(p, path)), None)
            if pattern is not None:
                found.append(Claim(path, zone.name, pattern))
    return found
