"""The publish history (zones/history.jsonl): one record per publish, and rollback targets.

Place in the flow: publish.py appends a record after each new generation;
`history` lists them and `rollback SERIAL|REV` finds the commit to republish.
Records are plain dicts (JSON lines) so that old records stay readable.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from publisher.errors import UsageError
from publisher.publish import artifacts
from publisher.publish.manifest import Manifest, Source
from publisher.publish.plan import ADDED, CHANGED, EXPIRED, IPV4, IPV6, NAMES, REMOVED, Plan, ZonePlan


@dataclass(frozen=True, slots=True)
class Target:
    """What `rollback` republishes: a commit, and how it was found."""

    commit: str
    found_as: str  # "serial 2026112702 of bl.example.test" or "revision abc123"


def measures_json(zp: ZonePlan) -> dict[str, Any]:
    """{"ipv4": {...}, "ipv6": {...}} or {"names": {...}}: exact integers."""
    keys = {IPV4: "ipv4", IPV6: "ipv6", NAMES: "names"}
    return {
        keys[m.unit]: {
            "before": m.before,
            "after": m.after,
            "added": m.added,
            "removed": m.removed,
            "answer_differently": m.changed,
        }
        for m in zp.measures
    }


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
) -> dict[str, Any]:
    zones: dict[str, Any] = {}
    for zp in plan.zones:
        zones[zp.name] = {
            "serial": serials[zp.name],
            "previous_serial": previous_serials.get(zp.name),
            "changed": zp.name in changed,
            "listings": zp.listings_after,
            "listings_added": zp.count(ADDED),
            "listings_removed": zp.count(REMOVED),
            "listings_expired": zp.count(EXPIRED),
            "entries_changed": zp.count(CHANGED),
            **measures_json(zp),
        }
    return {
        "published_at": now.isoformat(timespec="seconds"),
        "action": action,
        "commit": source.commit,
        "author": source.author,
        "email": source.email,
        "committed_at": source.committed_at,
        "summary": source.summary,
        "head": head,
        "generation": generation,
        "forced": forced,
        "dropped": list(plan.dropped),
        "zones": zones,
    }


def recovered_record(manifest: Manifest) -> dict[str, Any]:
    """The record of a publish that was killed between its swap and its history line,
    rebuilt from its manifest (`recovered: true`; listing counts are not known)."""
    source = manifest.source or Source(kind="")
    zones = {}
    for name, entry in sorted(manifest.zones.items()):
        origin = entry.meta.origin
        same = (origin.commit if origin is not None else None) == source.commit
        zones[name] = {
            "serial": entry.serial,
            "changed": same,
            # an unchanged zone kept its serial: find_serial must not credit this commit with it
            "previous_serial": None if same else entry.serial,
            "listings": entry.meta.counts.listings if entry.meta.counts is not None else None,
        }
    return {
        "published_at": manifest.published_at,
        "action": manifest.action or "publish",
        **{k: getattr(source, k) for k in ("commit", "author", "email", "committed_at", "summary", "head")},
        "generation": manifest.generation,
        "forced": [],
        "dropped": [],
        "zones": zones,
        "recovered": True,
    }


def read(zones_dir: Path) -> list[dict[str, Any]]:
    return artifacts.read_history(zones_dir)


def find_serial(zones_dir: Path, serial: int) -> Target | None:
    """The commit that introduced `serial` (in whichever zones have it).

    An unchanged zone keeps its serial across later publishes, so only the
    record where a zone moved *to* this serial counts. Serials are per zone:
    when zones reached the same number from different commits, the caller
    has to name the commit instead (UsageError lists them).
    """
    found: dict[str, list[str]] = {}
    for rec in read(zones_dir):
        for name, zone in sorted((rec.get("zones") or {}).items()):
            introduced = zone.get("changed") or zone.get("previous_serial") != serial
            if zone.get("serial") == serial and introduced and rec.get("commit"):
                found.setdefault(str(rec["commit"]), []).append(name)
    if not found:
        return None
    if len(found) > 1:
        choices = "; ".join(f"{sha[:10]} ({', '.join(names)})" for sha, names in found.items())
        raise UsageError(f"serial {serial} was published from several commits: {choices}; name the commit instead")
    ((commit, names),) = found.items()
    return Target(commit, f"serial {serial} of {', '.join(sorted(set(names)))}")


def looks_like_serial(text: str) -> bool:
    """A YYYYMMDDnn serial (ten digits), rather than a (hex) revision."""
    return text.isdigit() and len(text) == 10
