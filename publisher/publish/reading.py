"""How publish reads list files from git: through the parse cache, patching what changed.

`CachedReader` is the `SourceReader` that `prepare` gives `load_lists` for one commit.
For each file it takes, in order: the cached parse of the same blob (cache.py);
for a bulk file whose blob changed since the published commit, the published parse
patched with the line diff (lists/bulk_patch.py), remembering which rows went and
came; else a full parse. Every parse it makes is stored for the next publish, but for
an email zone's that holds plain addresses (`_holds_addresses`): zones/ sees only hashes.

`touched` turns those row differences into a `model.Touched` per zone, for the
incremental compile: what a change can alter, or None when that is not known cheaply.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from publisher.compile.zone import CompiledZone
from publisher.lists.bulk import BulkMarks, read_bulk
from publisher.lists.bulk_patch import patch_bulk
from publisher.lists.config import load_config_marked
from publisher.lists.curated import BULK_SUFFIXES, read_source
from publisher.lists.tree import TreeError
from publisher.model import Config, Row, SourceData, Touched, ZoneConfig
from publisher.publish.build import Reuse
from publisher.publish.cache import ParseCache, source_key
from publisher.publish.vcs import GitTree

__all__ = ["CachedReader", "ReuseMap", "RowDelta", "touched"]

#: A changed file read in full is diffed as "all its rows touched" up to this many rows; past it, unknown.
MAX_TOUCHED_ROWS = 100_000


@dataclass(frozen=True, slots=True)
class RowDelta:
    """Rows of one file that went (positions in the old parse's `rows()`) and came (in the new one's)."""

    removed: tuple[int, ...]
    added: tuple[int, ...]


def _marks_out(marks: BulkMarks | None) -> dict[str, Any]:
    if marks is None:
        return {}
    return {"bulk": [list(map(list, marks.defaults)), marks.line_problems, marks.reported, marks.repeats]}


def _marks_in(meta: dict[str, Any]) -> BulkMarks | None:
    bulk = meta.get("bulk")
    if bulk is None:
        return None
    defaults, line_problems, reported, repeats = bulk
    counted = None
    if repeats is not None:
        example = repeats[2]
        if example is not None:
            example = (int(example[0]), int(example[1]), str(example[2]))
        counted = (int(repeats[0]), int(repeats[1]), example)
    marks = BulkMarks(tuple((int(a), int(b)) for a, b in defaults), int(line_problems), int(reported), True, counted)
    return marks


class CachedReader:
    """A SourceReader over one commit; `base` is the reader of the published commit (for patches)."""

    def __init__(self, cache: ParseCache, tree: GitTree, base: CachedReader | None = None) -> None:
        self.cache = cache
        self.tree = tree
        self.blobs = tree.blob_ids()
        self.base = base
        #: (zone, path) -> (cache key, parse, bulk marks or None for a curated file)
        self.parsed: dict[tuple[str, str], tuple[str, SourceData, BulkMarks | None]] = {}
        self.deltas: dict[tuple[str, str], RowDelta] = {}
        self.counts = {"cached": 0, "patched": 0, "parsed": 0}

    def __call__(self, path: str, zone: ZoneConfig) -> SourceData:
        blob = self.blobs.get(path)
        if blob is None:  # not a blob of this commit: let the tree say why
            return read_source(path, self.tree.read(path), zone)
        key = source_key(path, blob, zone)
        known = self.base.parsed.get((zone.name, path)) if self.base is not None else None
        if known is not None and known[0] == key:  # the same bytes and settings on the published side
            return self._keep(zone, path, key, known[1], known[2], "cached")
        found = self.cache.get(key, path)
        if found is not None:
            return self._keep(zone, path, key, found[0], _marks_in(found[1]), "cached")
        data = self.tree.read(path)
        marks: BulkMarks | None = None
        if path.endswith(BULK_SUFFIXES):
            patched = self._patch(path, zone, blob, data)
            if patched is not None:
                self.deltas[(zone.name, path)] = RowDelta(patched.removed, patched.added)
                self._store(zone, key, patched.source, patched.marks)
                return self._keep(zone, path, key, patched.source, patched.marks, "patched")
            source, marks = read_bulk(path, data, zone)
        else:
            source = read_source(path, data, zone)
        self._store(zone, key, source, marks)
        return self._keep(zone, path, key, source, marks, "parsed")

    def _store(self, zone: ZoneConfig, key: str, source: SourceData, marks: BulkMarks | None) -> None:
        if not _holds_addresses(source, zone):
            self.cache.put(key, source, _marks_out(marks))

    def _keep(
        self, zone: ZoneConfig, path: str, key: str, source: SourceData, marks: BulkMarks | None, how: str
    ) -> SourceData:
        self.parsed[(zone.name, path)] = (key, source, marks)
        self.counts[how] += 1
        return source

    def _patch(self, path: str, zone: ZoneConfig, blob: str, data: bytes) -> Any:
        base = self.base
        old_blob = base.blobs.get(path) if base is not None else None
        if base is None or old_blob is None or old_blob == blob:
            return None
        old = base.parsed.get((zone.name, path))
        if old is None or old[2] is None or old[0] != source_key(path, old_blob, zone):
            return None  # not parsed there, or with other zone settings
        try:
            old_data = base.tree.read(path)
        except TreeError:
            return None
        return patch_bulk(old[1], old[2], old_data, data, zone)


def _holds_addresses(source: SourceData, zone: ZoneConfig) -> bool:
    """An email zone's parse naming a plain address, which zones/ never holds (README, "Email-address
    lists"): a curated file (its entries keep each address as written) or a problem quoting a line.
    Not cached (parsed again at the next publish): curated files are small, and a bad line is
    refused anyway. An email feed's parse holds only hash labels, and is cached like any feed."""
    if zone.kind != "email":
        return False
    return bool(source.entries) or any("@" in f"{p.message} {p.fix}" for p in source.problems)


def _add_rows(rows: Iterable[Row], v4: list[tuple[int, int]], v6: list[tuple[int, int]], names: set[Any]) -> None:
    for r in rows:
        if r.family == 4:
            v4.append((r.start, r.end))
        elif r.family == 6:
            v6.append((r.start, r.end))
        else:
            names.add((r.name, r.wild))


def touched(
    zone: ZoneConfig,
    old_zone: ZoneConfig | None,
    old_sources: Sequence[SourceData],
    new_sources: Sequence[SourceData],
    old_reader: CachedReader,
    new_reader: CachedReader,
    since: dt.datetime,
    until: dt.datetime,
) -> Touched | None:
    """The ranges and names whose answers the change from the published sources can alter; None: unknown."""
    if old_zone is None or dataclasses.replace(old_zone, location=zone.location) != zone:
        return None
    old_at = {s.path: s for s in old_sources}
    new_at = {s.path: s for s in new_sources}
    if [p for p in old_at if p in new_at] != [p for p in new_at if p in old_at]:
        return None  # the files' order decides between them
    v4: list[tuple[int, int]] = []
    v6: list[tuple[int, int]] = []
    names: set[tuple[str, bool]] = set()
    for path in old_at.keys() ^ new_at.keys():
        _add_rows((old_at.get(path) or new_at[path]).rows(), v4, v6, names)
    for path in old_at.keys() & new_at.keys():
        old, new = old_at[path], new_at[path]
        if old_reader.blobs.get(path) == new_reader.blobs.get(path):
            continue  # the same bytes, parsed with the same settings
        delta = new_reader.deltas.get((zone.name, path))
        if delta is not None:
            _add_rows(map(old.row, delta.removed), v4, v6, names)
            _add_rows(map(new.row, delta.added), v4, v6, names)
        else:
            if len(old) + len(new) > MAX_TOUCHED_ROWS:
                return None
            _add_rows(old.rows(), v4, v6, names)
            _add_rows(new.rows(), v4, v6, names)
    for src in (*old_sources, *new_sources):  # entries whose expiry fell between the two
        gone = {k for k, v in enumerate(src.values) if v.expires is not None and since < v.expires <= until}
        if gone:
            _add_rows((r for r in src.rows() if r.value in gone), v4, v6, names)
    return Touched(tuple(v4), tuple(v6), frozenset(names))


class ReuseMap(Mapping[str, Reuse]):
    """`compile_tree`'s `reuse`: each published zone with what changed in its sources.

    Worked out when the compile asks for a zone, that is after `load_lists` has read
    the new commit through `new_reader` (whose parses and row differences it uses)."""

    def __init__(
        self,
        zones: Mapping[str, CompiledZone],
        config: Config,
        sources: Mapping[str, Sequence[SourceData]],
        as_of: dt.datetime,
        old_reader: CachedReader,
        new_reader: CachedReader,
        now: dt.datetime,
    ) -> None:
        self._zones = zones
        self._config = config
        self._sources = sources
        self._as_of = as_of
        self._old = old_reader
        self._new = new_reader
        self._now = now
        self._made: dict[str, Reuse] = {}
        self._new_config: Config | None = None

    def __iter__(self) -> Iterator[str]:
        return iter([name for name in self._zones if self._config.zone(name) is not None])

    def __len__(self) -> int:
        return len(list(iter(self)))

    def __getitem__(self, name: str) -> Reuse:
        made = self._made.get(name)
        if made is not None:
            return made
        old_cfg = self._config.zone(name)
        if name not in self._zones or old_cfg is None:
            raise KeyError(name)
        if self._new_config is None:
            self._new_config = load_config_marked(self._new.tree)[0]
        new_cfg = self._new_config.zone(name) if self._new_config is not None else None
        found: Touched | None = None
        if new_cfg is not None:
            new_sources = [src for (zone, _), (_, src, _) in self._new.parsed.items() if zone == name]
            found = touched(
                new_cfg, old_cfg, self._sources.get(name, []), new_sources, self._old, self._new, self._as_of, self._now
            )
        made = self._made[name] = Reuse(self._zones[name], old_cfg, self._as_of, found)
        return made
