"""Where an import's files land among the zones already configured.

A list file belongs to every zone whose `sources` glob matches it: an import written
under another zone's glob (`bl/feed.txt` with `bl/*.txt` in bl.example.test) would
be published by that zone too, with its code and TXT. `claims` finds those zones
before anything is written. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from publisher.lists.tree import TreeError, glob
from publisher.model import Config


@dataclass(frozen=True, slots=True)
class Claim:
    """`path` matches `pattern`, a source glob of the configured zone `zone`."""

    path: str
    zone: str
    pattern: str


class _OneFile:
    """A Tree of one path, to match globs exactly as the loader does."""

    def __init__(self, path: str) -> None:
        self.path = path

    def describe(self) -> str:
        return self.path

    def files(self) -> list[str]:
        return [self.path]

    def read(self, path: str) -> bytes:
        raise TreeError(f"{path}: not read here")  # matching a glob only lists files


def claims(config: Config, paths: Iterable[str]) -> list[Claim]:
    """The configured zones whose sources would take in any of `paths` (relative to lists/)."""
    found: list[Claim] = []
    for path in paths:
        tree = _OneFile(path)
        for zone in config.zones:
            pattern = next((p for p in zone.sources if glob(tree, p)), None)
            if pattern is not None:
                found.append(Claim(path, zone.name, pattern))
    return found
