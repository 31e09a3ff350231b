"""Writing zones/: generations written atomically, the writer lock, pruning, serials.

A publish writes a whole new generation into a temporary folder, fsyncs it,
renames it into place and only then swaps the `current` link with one
rename(2). A crash at any step leaves `current` on the last complete publish.
Writers hold `zones/.lock` (lock.py) so that the leftovers of a dead writer
(`.tmp-gen-*`, `.current.*`) can be removed without touching a live one's; a publish
holds it from reading the current generation to the swap (release.py).
What a generation holds, and how readers load it, is manifest.py.

The writing functions take a `step` hook, called with the name of each step in
order: `validated` (release.py), `writing <file>` (the file partly written,
nothing fsynced), `wrote <zone>`, `wrote generation`, `renamed generation`,
`linked current`, `swapped current`, `published` (links refreshed; the history
line is not yet written). The default does nothing; tests pass hooks that raise
or pause there, to crash a publish at exactly that point.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import mmap
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from publisher.compile import render, snapshot
from publisher.compile.render_patch import Run, patch_export
from publisher.compile.zone import CompiledZone
from publisher.errors import ArtifactError, PublisherError
from publisher.model import EXPORTS, AclRule, Touched
from publisher.publish.lock import try_lock, writer_lock
from publisher.publish.manifest import (
    CURRENT,
    MANIFEST,
    Manifest,
    Source,
    ZoneEntry,
    ZoneFiles,
    ZoneMeta,
    read_manifest,
)

KEEP_GENERATIONS = 4
#: The end of an error message when writing failed before the `current` swap.
NOTHING_PUBLISHED = "; nothing was published, the previous publish stays current"

#: Called with the name of each write step (see the module docstring).
StepHook = Callable[[str], None]


def no_step(step: str) -> None:
    """The default step hook: does nothing."""


def serial_gt(a: int, b: int) -> bool:
    """RFC 1982 serial number arithmetic: is a greater than b?"""
    return a != b and ((a - b) % (1 << 32)) < (1 << 31)


def next_serial(previous: int | None, today: dt.date) -> int:
    """Date-based YYYYMMDDnn, always strictly greater (RFC 1982) than the previous serial."""
    candidate = int(today.strftime("%Y%m%d")) * 100
    if previous is None or serial_gt(candidate, previous):
        return candidate
    return (previous + 1) % (1 << 32) or 1


def content_digest(zone: CompiledZone) -> str:
    """A digest of what the zone answers, independent of its serial."""
    blank = replace(zone, info=replace(zone.info, serial=0))
    return hashlib.sha256(snapshot.dump_snapshot(blank)).hexdigest()


def zone_files(name: str, meta: ZoneMeta) -> ZoneFiles:
    """The files a generation holds for a zone: its snapshot and the exports it asks for."""
    return ZoneFiles.of(name, EXPORTS if meta.exports is None else meta.exports)


def _patched(
    zones_dir: Path, previous: Manifest | None, name: str, export: str, zone: CompiledZone, region: Touched | None
) -> _Patched | None:
    """The export from the previous generation's file with only `region` rendered anew (the
    file is left open for the copy); None when there is no region, no such file, or its sha256
    is not the manifest's."""
    if region is None or previous is None or name not in previous.zones:
        return None
    entry = previous.zones[name]
    fname = entry.files.bind if export == "bind" else entry.files.rbldnsd
    if fname is None or fname not in entry.sha256:
        return None
    try:
        fh = open(zones_dir / previous.generation / fname, "rb")  # the caller closes it
    except OSError:
        return None
    try:
        # damaged or replaced: never copied into a new generation
        if hashlib.file_digest(fh, "sha256").hexdigest() != entry.sha256[fname]:
            fh.close()
            return None
        if not os.fstat(fh.fileno()).st_size:
            runs = patch_export(export, zone, b"", entry.serial, region)
        else:
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as old:  # only the probed pages are read
                runs = patch_export(export, zone, old, entry.serial, region)
    except (OSError, ValueError):
        fh.close()
        return None
    if runs is None:
        fh.close()
        return None
    return _Patched(fh, runs)


class _Patched:
    """A patched export: new bytes and spans of the old file (open in `source`)."""

    def __init__(self, source: BinaryIO, runs: list[Run]) -> None:
        self.source = source
        self.runs = runs

    def write(self, out: _FirstWriteStep) -> None:
        """New bytes through `out`; old spans copied file to file by the kernel."""
        src = self.source.fileno()
        for run in self.runs:
            if isinstance(run, bytes):
                out.write(run)
                continue
            start, end = run
            target = out.flushed()
            while start < end:
                try:
                    done = os.copy_file_range(src, target, end - start, start)
                except OSError:  # not supported between these files: copy through a buffer
                    done = os.write(target, os.pread(src, min(end - start, 1 << 20), start))
                if done <= 0:
                    raise OSError(f"short copy from the previous generation at byte {start}")
                start += done


def _write_snapshot(zone: CompiledZone, fh: BinaryIO) -> None:
    fh.write(snapshot.dump_snapshot(zone))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _FirstWriteStep:
    """Passes writes through; after the first one it flushes and calls the step hook, so that
    a crash at `writing <file>` leaves a real half file: its head on disk, its tail not."""

    def __init__(self, fh: Any, step: Callable[[], None]) -> None:
        self._fh = fh
        self._step: Callable[[], None] | None = step

    def write(self, data: Any) -> int:
        n: int = self._fh.write(data)
        if self._step is not None:
            step, self._step = self._step, None
            self._fh.flush()
            step()
        return n

    def flushed(self) -> int:
        """The file descriptor, with everything written so far flushed to it (for os-level copies)."""
        self._fh.flush()
        return int(self._fh.fileno())


def _write_file(path: Path, writer: Callable[[Any], None], text: bool, step: StepHook) -> str:
    """Write through `writer`, fsync, and return the sha256 of what was written."""
    with open(path, "w", encoding="utf-8", newline="\n") if text else open(path, "wb") as fh:
        writer(_FirstWriteStep(fh, lambda: step(f"writing {path.name}")))
        fh.flush()
        os.fsync(fh.fileno())
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def _wrap_os_errors(what: str, outcome: str = "") -> Iterator[None]:
    try:
        yield
    except PublisherError:
        raise
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise ArtifactError(f"{what}: {exc.strerror or exc}{where}{outcome}") from exc


def write_generation(
    zones_dir: Path,
    zones: Mapping[str, CompiledZone],
    meta: Mapping[str, ZoneMeta],
    *,
    published_at: str | None = None,
    source: Source | None = None,
    listen: tuple[str, ...] | None = None,
    action: str | None = None,
    step: StepHook = no_step,
    regions: Mapping[str, Touched | None] | None = None,
    acl: tuple[AclRule, ...] | None = None,
) -> Path:
    """Write a complete generation and make it current. Returns the generation folder.

    `zones` carry their final serials. `meta[name]` goes into the manifest entry of
    each zone (counts, secondaries, commit, ...); the keywords into its top level.
    `regions[name]` (`Build.regions`): where the zone may differ from the current
    generation's; its exports are then copied from that generation's files outside them.
    """
    now = dt.datetime.now(dt.UTC)
    gen_name = f"gen-{now.strftime('%Y%m%dT%H%M%S')}Z-{secrets.token_hex(3)}"
    tmp = zones_dir / f".tmp-{gen_name}"
    top = Manifest(gen_name, {}, published_at, source, listen, action, acl)
    with writer_lock(zones_dir), _wrap_os_errors(f"cannot write {zones_dir}", NOTHING_PUBLISHED):
        previous = read_manifest(zones_dir) if regions else None
        final, written = _write_and_swap(zones_dir, tmp, zones, meta, top, step, previous, regions or {})
        with contextlib.suppress(OSError):  # published already: tidying up is best effort
            _refresh_links(zones_dir, written)
            _prune(zones_dir, keep=gen_name)
        step("published")
    return final


def _write_and_swap(
    zones_dir: Path,
    tmp: Path,
    zones: Mapping[str, CompiledZone],
    meta: Mapping[str, ZoneMeta],
    top: Manifest,
    step: StepHook,
    previous: Manifest | None = None,
    regions: Mapping[str, Touched | None] | None = None,
) -> tuple[Path, Manifest]:
    """Write the files and the manifest (`top` with the zones filled in), then swap `current`."""
    gen_name = top.generation
    regions = regions or {}
    tmp.mkdir()
    try:
        entries: dict[str, ZoneEntry] = {}
        for name, zone in sorted(zones.items()):
            files = zone_files(name, meta.get(name, ZoneMeta()))
            sums = {files.snapshot: _write_file(tmp / files.snapshot, partial(_write_snapshot, zone), False, step)}
            region = regions.get(name)
            for export, fname, full in (
                ("bind", files.bind, render.render_bind),
                ("rbldnsd", files.rbldnsd, render.render_rbldnsd),
            ):
                if fname is None:
                    continue
                patched = _patched(zones_dir, previous, name, export, zone, region)
                if patched is None:
                    sums[fname] = _write_file(tmp / fname, partial(full, zone), True, step)
                else:
                    with patched.source:
                        sums[fname] = _write_file(tmp / fname, patched.write, False, step)
            step(f"wrote {name}")
            info = zone.info
            entries[name] = ZoneEntry(info.serial, info.kind, info.role, files, sums, meta.get(name, ZoneMeta()))
        written = replace(top, zones=entries)
        text = written.dumps()
        _write_file(tmp / MANIFEST, lambda fh: fh.write(text), True, step)
        _fsync_dir(tmp)
        step("wrote generation")
        final = zones_dir / gen_name
        os.rename(tmp, final)
        _fsync_dir(zones_dir)
        step("renamed generation")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    link_tmp = zones_dir / f".{CURRENT}.{gen_name}"
    os.symlink(gen_name, link_tmp)
    try:
        step("linked current")
        os.rename(link_tmp, zones_dir / CURRENT)
    except BaseException:
        link_tmp.unlink(missing_ok=True)
        raise
    with _wrap_os_errors(f"published {gen_name}, but cannot flush {zones_dir} to disk"):
        _fsync_dir(zones_dir)
    step("swapped current")
    return final, written


def tidy(zones_dir: Path) -> None:
    """Finish what a writer killed after its swap left undone; remove a dead writer's leftovers.

    Best effort: a read-only zones/ is no error here, and while another writer
    holds the lock nothing is touched.
    """
    with contextlib.suppress(OSError, ArtifactError), try_lock(zones_dir) as locked:
        manifest = read_manifest(zones_dir) if locked else None
        if manifest is not None:
            _refresh_links(zones_dir, manifest)
            _prune(zones_dir, keep=manifest.generation)


def _refresh_links(zones_dir: Path, manifest: Manifest) -> None:
    """Stable names (zones/<zone>.zone, zones/manifest.json) pointing through `current`."""
    wanted = {MANIFEST}
    for zone in manifest.zones.values():
        wanted.update(zone.files.names())
    # Under the lock: a `.current.*` link here is a dead writer's, and goes with the stale links.
    for entry in zones_dir.iterdir():
        if entry.is_symlink() and entry.name != CURRENT and entry.name not in wanted:
            with contextlib.suppress(OSError):
                entry.unlink()
    for name in wanted:
        link = zones_dir / name
        if not link.is_symlink():
            if link.exists():
                continue  # a real file the user put there: leave it alone
            with contextlib.suppress(OSError):
                os.symlink(f"{CURRENT}/{name}", link)


def _prune(zones_dir: Path, keep: str) -> None:
    """Old generations beyond KEEP_GENERATIONS, and (under the lock) a dead writer's temporary folders."""
    gens = sorted(p for p in zones_dir.iterdir() if p.name.startswith("gen-") and p.is_dir())
    for old in gens[:-KEEP_GENERATIONS]:
        if old.name != keep:
            shutil.rmtree(old, ignore_errors=True)
    for junk in zones_dir.glob(".tmp-gen-*"):
        shutil.rmtree(junk, ignore_errors=True)
