"""zones/history.jsonl: one typed `HistoryRecord` per publish, written and read here, and
the rollback targets found in it.

release.py appends a record after each new generation (`record`), or rebuilds the record
of a publish killed between its swap and its history line (`recovered_record`); `history`
lists them and `rollback SERIAL|REV` finds the commit to republish. A line that is not a
record (not JSON, or a field of the wrong type) is skipped by the readers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from publisher.errors import ArtifactError, UsageError
from publisher.publish.manifest import Manifest, Source
from publisher.publish.plan import (
    ADDED,
    CHANGED,
    EMAILS,
    EXPIRED,
    IPV4,
    IPV6,
    NAMES,
    REMOVED,
    Measure,
    Plan,
    ZonePlan,
)

HISTORY = "history.jsonl"
#: The keys of a zone's measures in a record and in `plan --json`.
#: An email zone counts its addresses under "names", as a domain zone its names: one key per kind of count.
UNIT_KEYS = {IPV4: "ipv4", IPV6: "ipv6", NAMES: "names", EMAILS: "names"}

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Target:
    """What `rollback` republishes: a commit, and how it was found."""

    commit: str
    found_as: str  # "serial 2026112702 of bl.example.test" or "revision abc123"


class _Malformed(ValueError):
    pass


def _typed(value: object, kind: type[_T], where: str) -> _T:
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise _Malformed(f"{where}: {value!r} is not {kind.__name__}")


def _maybe(obj: Mapping[str, object], key: str, kind: type[_T]) -> _T | None:
    value = obj.get(key)
    return None if value is None else _typed(value, kind, key)


def _names(obj: Mapping[str, object], key: str) -> tuple[str, ...]:
    return tuple(_typed(item, str, key) for item in _typed(obj.get(key) or [], list, key))


@dataclass(frozen=True, slots=True)
class UnitCounts:
    """Addresses (per family) or names of a zone before and after a publish."""

    before: int
    after: int
    added: int
    removed: int
    answer_differently: int

    @classmethod
    def of(cls, m: Measure) -> UnitCounts:
        return cls(m.before, m.after, m.added, m.removed, m.changed)

    def to_json(self) -> dict[str, object]:
        return {
            "before": self.before,
            "after": self.after,
            "added": self.added,
            "removed": self.removed,
            "answer_differently": self.answer_differently,
        }

    @classmethod
    def from_json(cls, value: object) -> UnitCounts:
        obj = _typed(value, dict, "measure")
        keys = ("before", "after", "added", "removed", "answer_differently")
        return cls(*(_typed(obj.get(key), int, key) for key in keys))


def measures_json(zp: ZonePlan) -> dict[str, Any]:
    """{"ipv4": {...}, "ipv6": {...}} or {"names": {...}}: exact integers."""
    return {UNIT_KEYS[m.unit]: UnitCounts.of(m).to_json() for m in zp.measures}


@dataclass(frozen=True, slots=True)
class ZoneRecord:
    """One zone in a record. The listing moves and measures are None/empty in a recovered
    record, where they are not known."""

    serial: int
    previous_serial: int | None
    changed: bool  # the serial moved
    listings: int | None
    listings_added: int | None = None  # None: not known (a recovered record, or entries unknown)
    listings_removed: int | None = None
    listings_expired: int | None = None
    entries_changed: int | None = None
    measures: Mapping[str, UnitCounts] = field(default_factory=dict)  # by UNIT_KEYS value
    listings_before: int | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "serial": self.serial,
            "previous_serial": self.previous_serial,
            "changed": self.changed,
            "listings": self.listings,
        }
        moves = ("listings_before", "listings_added", "listings_removed", "listings_expired", "entries_changed")
        out.update((key, value) for key in moves if (value := getattr(self, key)) is not None)
        out.update((unit, counts.to_json()) for unit, counts in self.measures.items())
        return out

    @classmethod
    def from_json(cls, value: object) -> ZoneRecord:
        obj = _typed(value, dict, "zone")
        return cls(
            serial=_typed(obj.get("serial"), int, "serial"),
            previous_serial=_maybe(obj, "previous_serial", int),
            changed=bool(obj.get("changed")),
            listings=_maybe(obj, "listings", int),
            listings_added=_maybe(obj, "listings_added", int),
            listings_removed=_maybe(obj, "listings_removed", int),
            listings_expired=_maybe(obj, "listings_expired", int),
            entries_changed=_maybe(obj, "entries_changed", int),
            listings_before=_maybe(obj, "listings_before", int),
            measures={u: UnitCounts.from_json(obj[u]) for u in UNIT_KEYS.values() if u in obj},
        )


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One publish: when, which commit (HEAD at the time too), the generation it wrote, the
    guard rails it was forced past, the zones it dropped, and each zone's serial and moves."""

    published_at: str | None
    action: str  # publish, rollback, watch or expiry
    commit: str | None
    author: str | None
    email: str | None
    committed_at: str | None
    summary: str | None
    head: str | None
    generation: str
    forced: tuple[str, ...]
    dropped: tuple[str, ...]
    zones: Mapping[str, ZoneRecord]
    recovered: bool = False  # rebuilt from the manifest after a publish was killed before its line

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "published_at": self.published_at,
            "action": self.action,
            "commit": self.commit,
            "author": self.author,
            "email": self.email,
            "committed_at": self.committed_at,
            "summary": self.summary,
            "head": self.head,
            "generation": self.generation,
            "forced": list(self.forced),
            "dropped": list(self.dropped),
            "zones": {name: zone.to_json() for name, zone in self.zones.items()},
        }
        if self.recovered:
            out["recovered"] = True
        return out

    @classmethod
    def from_json(cls, value: object) -> HistoryRecord:
        """The record in one parsed line; raises ValueError when it is not one."""
        obj = _typed(value, dict, "record")
        zones = _typed(obj.get("zones") or {}, dict, "zones")
        return cls(
            published_at=_maybe(obj, "published_at", str),
            action=_maybe(obj, "action", str) or "publish",
            commit=_maybe(obj, "commit", str),
            author=_maybe(obj, "author", str),
            email=_maybe(obj, "email", str),
            committed_at=_maybe(obj, "committed_at", str),
            summary=_maybe(obj, "summary", str),
            head=_maybe(obj, "head", str),
            generation=_typed(obj.get("generation"), str, "generation"),
            forced=_names(obj, "forced"),
            dropped=_names(obj, "dropped"),
            zones={name: ZoneRecord.from_json(zone) for name, zone in zones.items()},
            recovered=obj.get("recovered") is True,
        )


def record(
    *,
    action: str,
    now: dt.datetime,
    source: Source,
    head: str,
    generation: str,
    serials: Mapping[str, int],
    previous_serials: Mapping[str, int],
    changed: set[str],
    plan: Plan,
    forced: list[str],
) -> HistoryRecord:
    zones: dict[str, ZoneRecord] = {}
    for zp in plan.zones:
        # entries unknown (the last publish was not from git): no "+0/-0" that the plan never said
        known = zp.entries_known or not zp.content_changed
        zones[zp.name] = ZoneRecord(
            serial=serials[zp.name],
            previous_serial=previous_serials.get(zp.name),
            changed=zp.name in changed,
            listings=zp.listings_after,
            listings_added=zp.count(ADDED) if known else None,
            listings_removed=zp.count(REMOVED) if known else None,
            listings_expired=zp.count(EXPIRED) if known else None,
            entries_changed=zp.count(CHANGED) if known else None,
            measures={UNIT_KEYS[m.unit]: UnitCounts.of(m) for m in zp.measures},
            listings_before=zp.listings_before,
        )
    return HistoryRecord(
        published_at=now.isoformat(timespec="seconds"),
        action=action,
        commit=source.commit,
        author=source.author,
        email=source.email,
        committed_at=source.committed_at,
        summary=source.summary,
        head=head,
        generation=generation,
        forced=tuple(forced),
        dropped=plan.dropped,
        zones=zones,
    )


def recovered_record(manifest: Manifest) -> HistoryRecord:
    """The record of a publish that was killed between its swap and its history line,
    rebuilt from its manifest (`recovered: true`; listing counts are not known)."""
    source = manifest.source or Source(kind="")
    zones: dict[str, ZoneRecord] = {}
    for name, entry in sorted(manifest.zones.items()):
        origin = entry.meta.origin
        same = (origin.commit if origin is not None else None) == source.commit
        zones[name] = ZoneRecord(
            serial=entry.serial,
            changed=same,
            # an unchanged zone kept its serial: find_serial must not credit this commit with it
            previous_serial=None if same else entry.serial,
            listings=entry.meta.counts.listings if entry.meta.counts is not None else None,
        )
    return HistoryRecord(
        published_at=manifest.published_at,
        action=manifest.action or "publish",
        commit=source.commit,
        author=source.author,
        email=source.email,
        committed_at=source.committed_at,
        summary=source.summary,
        head=source.head,
        generation=manifest.generation,
        forced=(),
        dropped=(),
        zones=zones,
        recovered=True,
    )


@contextlib.contextmanager
def _wrap_os_errors(what: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise ArtifactError(f"{what}: {exc.strerror or exc}{where}") from exc


def _parsed(line: str | bytes) -> HistoryRecord | None:
    try:
        return HistoryRecord.from_json(json.loads(line))
    except ValueError:
        return None


def append(zones_dir: Path, rec: HistoryRecord) -> None:
    """Add one line to zones/history.jsonl, fsynced."""
    with _wrap_os_errors(f"cannot append to {zones_dir / HISTORY}"):
        with open(zones_dir / HISTORY, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec.to_json(), sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def published_folder(zones_dir: Path) -> Path:
    """`zones_dir`, which must exist for a command that reads what was published there
    (history, rollback SERIAL, explain): a wrong --zones, or a run from outside the
    repository, must not read as "nothing published"."""
    if not zones_dir.is_dir():
        raise UsageError(
            f"{zones_dir}: no such folder, so nothing was published there\n"
            "  fix: pass --zones the folder `publish` writes (the one the server serves); `publish` creates it"
        )
    return zones_dir


def read(zones_dir: Path) -> list[HistoryRecord]:
    """Every record, oldest first ([] before the first publish); the folder must exist."""
    path = published_folder(zones_dir) / HISTORY
    if not path.exists():
        return []
    with _wrap_os_errors(f"cannot read {path}"):
        lines = path.read_text(encoding="utf-8").splitlines()
    return [rec for line in lines if line.strip() and (rec := _parsed(line)) is not None]


def last(zones_dir: Path, tail: int = 1 << 20) -> HistoryRecord | None:
    """The last record, reading only the end of the file (every publish that finds nothing
    to do asks)."""
    path = zones_dir / HISTORY
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - tail))
            lines = fh.read().splitlines()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ArtifactError(f"cannot read {path}: {exc.strerror or exc}") from exc
    for line in reversed(lines):
        rec = _parsed(line)
        if rec is not None:
            return rec
    return None


def _introduced(records: list[HistoryRecord], serial: int) -> dict[str, list[str]]:
    """Commit -> the zones a record moved *to* `serial` (an unchanged zone keeps its serial
    across later publishes: only the record where it moved counts)."""
    found: dict[str, list[str]] = {}
    for rec in records:
        for name, zone in sorted(rec.zones.items()):
            if zone.serial == serial and (zone.changed or zone.previous_serial != serial) and rec.commit:
                found.setdefault(rec.commit, []).append(name)
    return found


def _kept(records: list[HistoryRecord], serial: int) -> HistoryRecord | None:
    """The first publish that served `serial` unchanged (zones/ held a compile with the same
    answers) and moved no zone away from it: its commit holds what that serial answered.
    Recovered records are skipped (their previous serials are not known)."""
    for rec in records:
        if rec.recovered or not rec.commit:
            continue
        zones = rec.zones.values()
        if any(z.serial == serial for z in zones):
            return None if any(z.previous_serial == serial and z.serial != serial for z in zones) else rec
    return None


def find_serial(zones_dir: Path, serial: int) -> Target | None:
    """The commit whose content `serial` stands for (in whichever zones have it).

    The publish that moved a zone to `serial`; when none did (the serial came from a compile,
    which the first publish served unchanged), the first publish that served it unchanged
    without moving any zone away from it. Serials are per zone: when zones reached the same
    number from different commits, the caller has to name the commit instead (UsageError
    lists them).
    """
    records = read(zones_dir)
    found = _introduced(records, serial)
    if not found:
        rec = _kept(records, serial)
        if rec is None or rec.commit is None:
            return None
        kept = ", ".join(n for n, z in sorted(rec.zones.items()) if z.serial == serial)
        return Target(rec.commit, f"serial {serial} of {kept}, served unchanged by the publish of {rec.published_at}")
    if len(found) > 1:
        choices = "; ".join(f"{sha[:10]} ({', '.join(names)})" for sha, names in found.items())
        raise UsageError(f"serial {serial} was published from several commits: {choices}; name the commit instead")
    ((commit, names),) = found.items()
    return Target(commit, f"serial {serial} of {', '.join(sorted(set(names)))}")


def rollback_serials(records: list[HistoryRecord]) -> list[int]:
    """The serials in the history that `find_serial` finds a commit for, lowest first (one
    pass: the rules of `_introduced` and `_kept`)."""
    introduced: set[int] = set()
    kept: dict[int, bool] = {}  # serial -> its first (not recovered) publish moved no zone away from it
    for rec in records:
        if not rec.commit:
            continue
        zones = rec.zones.values()
        introduced.update(z.serial for z in zones if z.changed or z.previous_serial != z.serial)
        if not rec.recovered:
            for s in {z.serial for z in zones} - kept.keys():
                kept[s] = not any(z.previous_serial == s and z.serial != s for z in zones)
    return sorted(introduced | {s for s, ok in kept.items() if ok})


def looks_like_serial(text: str) -> bool:
    """A YYYYMMDDnn serial (ten digits), rather than a (hex) revision."""
    return text.isdigit() and len(text) == 10
