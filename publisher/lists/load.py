"""A lists tree -> config + parsed sources + every problem: reading and checking together.

`load_lists` reads zones.yaml, expands each zone's source globs, reads every
matched file with the reader for its kind (then the zone's `excludes` files, read the
same way and turned into holes by `excludes.as_excludes`, last in its sources), and
runs the cross-file checks (checks.py; spf_checks.py for partners declared by SPF). It
never raises for bad list content: it collects all problems of all files so
that one `publisher validate` run shows everything. `require_clean` is the gate
before compiling: any error (except codes the caller chose to override) raises
ValidationFailed, so a broken file never yields a partial zone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from publisher import codes
from publisher.errors import Location, Problem, Severity, ValidationFailed, sort_problems
from publisher.lists.checks import validate
from publisher.lists.config import CONFIG_PATH, GlobLocations, load_config_marked
from publisher.lists.curated import BULK_SUFFIXES, CURATED_SUFFIXES, read_source
from publisher.lists.excludes import as_excludes, reading_config
from publisher.lists.spf_checks import check_partners, quiet_glob
from publisher.lists.tree import Tree, TreeError, glob
from publisher.model import Config, SourceData, ZoneConfig

__all__ = ["Loaded", "SourceReader", "load_lists", "require_clean"]

#: Reads one list file of a zone into a SourceData (raising TreeError as `Tree.read` does).
#: The default parses `tree.read(path)`; publish passes one that reuses cached parses.
SourceReader = Callable[[str, ZoneConfig], SourceData]


@dataclass(frozen=True, slots=True)
class Loaded:
    """What the lists say. Only compile it after `require_clean`."""

    config: Config | None
    sources: dict[str, list[SourceData]]  # zone name -> its sources, in glob order, files sorted
    problems: list[Problem]  # sorted by file, line, column

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if not p.is_error]


def load_lists(tree: Tree, *, as_of: dt.datetime, reader: SourceReader | None = None) -> Loaded:
    """Read and check everything under the lists root; never raises for bad content."""
    read = reader if reader is not None else (lambda path, zone: read_source(path, tree.read(path), zone))
    config, problems, glob_locations = load_config_marked(tree)
    if config is None:
        return Loaded(None, {}, sort_problems(_unique(problems)))
    sources: dict[str, list[SourceData]] = {}
    used: set[str] = {CONFIG_PATH, *config.acl_files}  # an ACL file is no list file
    for zone in config.zones:
        paths: list[str] = []
        for pattern in zone.sources:
            matched = glob(tree, pattern)
            if not matched and not quiet_glob(zone, pattern):  # the spf folder before any refresh
                problems.append(_no_match(zone, pattern, "source", glob_locations))
            # An excludes file matched by a source glob too (bl/*.txt) is read as excludes only.
            paths.extend(p for p in matched if p not in paths and p != CONFIG_PATH and not zone.is_excludes(p))
        excludes: list[str] = []
        for pattern in zone.excludes:
            matched = glob(tree, pattern)
            if not matched:
                problems.append(_no_match(zone, pattern, "excludes", glob_locations))
            excludes.extend(p for p in matched if p not in excludes and p != CONFIG_PATH)
        zone_sources: list[SourceData] = []
        for path in paths + excludes:
            used.add(path)
            # Read per zone, not cached: a feed's bytes are not kept alive while the next is parsed.
            try:
                source = read(path, reading_config(zone) if path in excludes else zone)
            except TreeError as exc:
                source = SourceData(path)
                message = str(exc).removeprefix(f"{path}: ")  # the location names the file already
                source.problems.append(
                    Problem(Location(path), codes.READ_ERROR, message, "check the file and its permissions")
                )
            if path in excludes:
                source = as_excludes(source)
            problems.extend(source.problems)
            zone_sources.append(source)
        sources[zone.name] = zone_sources
    for path in tree.files():
        if path not in used and path.endswith(CURATED_SUFFIXES + BULK_SUFFIXES):
            problems.append(
                Problem(
                    Location(path),
                    codes.UNUSED_FILE,
                    f"{path} is not among the sources of any zone; it is not published",
                    "add a glob that matches it to a zone's `sources` in zones.yaml, or remove the file",
                    severity=Severity.WARNING,
                )
            )
    problems.extend(validate(config, sources, as_of=as_of))
    problems.extend(check_partners(config, sources))
    return Loaded(config, sources, sort_problems(_unique(problems)))


def require_clean(loaded: Loaded, *, ignore: frozenset[str] = frozenset()) -> None:
    """Raise ValidationFailed when any error remains; `ignore` names codes overridden by the caller."""
    blocking = [p for p in loaded.errors if p.code not in ignore]
    if blocking or loaded.config is None:
        raise ValidationFailed(blocking or loaded.errors)


def _no_match(zone: ZoneConfig, pattern: str, what: str, where: GlobLocations) -> Problem:
    return Problem(
        where.get((zone.name, pattern), zone.location),
        codes.GLOB_NO_MATCH,
        f"{what} glob '{pattern}' of {zone.name} matches no file",
        "fix the pattern (relative to lists/), or add the file it should match",
    )


def _unique(problems: list[Problem]) -> list[Problem]:
    """A file matched by two zones is read twice; say each thing once."""
    return list(dict.fromkeys(problems))
