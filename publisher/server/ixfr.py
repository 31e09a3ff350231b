"""IXFR (RFC 1995): the differences the server keeps per zone, and what an IXFR request gets.

Inside the server: `app.Server.reload` calls `extend` before it swaps the new zone set in,
so a serial is never served before its difference is kept (a secondary that asks right
after our NOTIFY finds it); at start-up `seed` reads the older generations still in zones/
(the publisher keeps the last few) so a restart does not push every secondary into AXFR.
The kept steps live in `ZoneSet.ixfr` (zone -> steps, oldest first), immutable like the rest
of the set: a query in flight reads the steps of the set it started with.

A step holds wire records (owners compressed against the apex, which is the question name
of an IXFR), computed by publisher.compile.delta from the two compiled zones. `plan` turns
the steps from a secondary's serial to ours into the record sequence of RFC 1995 section 4:
our SOA, then per step the old SOA, the deleted records, the new SOA, the added records, and
our SOA again; several steps are condensed into one (section 5) when that is smaller. It
declines (the caller sends AXFR) when the serial is not kept or the difference would be
larger than the zone.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from publisher.compile import delta, snapshot
from publisher.errors import ArtifactError
from publisher.publish.manifest import MANIFEST, Manifest, Published
from publisher.server.xfr import record_wire
from publisher.server.zoneset import ServedZone, ZoneSet

log = logging.getLogger("publisher.server")

#: Seconds one reload may spend computing differences (all zones); past it, AXFR for that serial.
DIFF_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Step:
    """One serial change: old SOA, records deleted, new SOA, records added (wire form)."""

    old_serial: int
    new_serial: int
    old_soa: bytes
    new_soa: bytes
    removed: tuple[bytes, ...]
    added: tuple[bytes, ...]

    @property
    def records(self) -> int:
        return len(self.removed) + len(self.added) + 2


Journal = Mapping[str, tuple[Step, ...]]


def zone_records(sz: ServedZone) -> int:
    """A lower bound of the records an AXFR of the zone sends: each interval or name gives the
    records of at least the smallest answer (one A, and its TXT unless the text is empty)."""
    z = sz.zone
    least = min((len(a.codes) + len(a.distinct_txts) for a in z.answers), default=1)
    return 2 + len(z.info.ns) + (z.interval_count + len(z.dom_exact) + len(z.dom_wild)) * least


def make_step(old: ServedZone, new: ServedZone, deadline: float | None = None) -> Step | str:
    """The step from `old` to `new`, or why none is kept."""
    # A difference touching more than half the zone is no cheaper than the zone: not worth keeping.
    limit = max(64, min(delta.MAX_CHANGES, zone_records(new) // 2))
    got = delta.diff(old.zone, new.zone, max_changes=limit, deadline=deadline)
    if isinstance(got, delta.GaveUp):
        return got.reason
    removed = tuple(w for w in (record_wire(old, r) for r in got.removed) if w is not None)
    added = tuple(w for w in (record_wire(new, r) for r in got.added) if w is not None)
    return Step(old.serial, new.serial, old.soa_answer, new.soa_answer, removed, added)


def extend(old: ZoneSet, new: ZoneSet, keep: int, seconds: float = DIFF_SECONDS) -> dict[str, tuple[Step, ...]]:
    """The journal of `new`: `old`'s steps plus one per zone whose serial changed, the last `keep`."""
    journal: dict[str, tuple[Step, ...]] = {}
    if keep <= 0:
        return journal
    deadline = time.monotonic() + seconds
    for name, sz in new.zones.items():
        prev = old.zones.get(name)
        if prev is None:
            continue
        kept = old.ixfr.get(name, ())
        if prev.serial == sz.serial:
            if kept:
                journal[name] = kept
            continue
        started = time.monotonic()
        step = make_step(prev, sz, deadline)
        if isinstance(step, str):
            # The chain is broken here: older steps cannot reach the new serial any more.
            log.info(
                "zone %s serial %d -> %d: no IXFR difference kept (%s); secondaries behind it take AXFR",
                name, prev.serial, sz.serial, step,
            )  # fmt: skip
            continue
        journal[name] = (*kept, step)[-keep:]
        log.info(
            "zone %s serial %d -> %d: IXFR difference kept: %d records removed, %d added (%.0f ms)",
            name, prev.serial, sz.serial, len(step.removed), len(step.added), (time.monotonic() - started) * 1000,
        )  # fmt: skip
    return journal


def _older_generations(zones_dir: Path, current: str) -> list[Path]:
    """The generation folders other than `current` (a publish keeps the last few)."""
    try:
        return sorted(p for p in zones_dir.iterdir() if p.name.startswith("gen-") and p.name != current and p.is_dir())
    except OSError:
        return []


def load_generation(gen: Path) -> ZoneSet:
    """One generation folder as a ZoneSet (snapshots checked against the manifest's sha256)."""
    path = gen / MANIFEST
    try:
        manifest = Manifest.loads(path.read_text(encoding="utf-8"), path)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: unreadable manifest: {exc}") from exc
    zones = {}
    for name, entry in manifest.zones.items():
        snap = gen / entry.files.snapshot
        try:
            data = snap.read_bytes()
        except OSError as exc:
            raise ArtifactError(f"{snap}: cannot read snapshot: {exc}") from exc
        if hashlib.sha256(data).hexdigest() != entry.sha256.get(entry.files.snapshot):
            raise ArtifactError(f"{snap}: sha256 does not match the manifest")
        zones[name] = snapshot.load_snapshot(data)
    return ZoneSet.from_published(Published(gen.name, gen, manifest, zones))


def seed(zones_dir: Path, current: ZoneSet, keep: int, seconds: float = DIFF_SECONDS) -> dict[str, tuple[Step, ...]]:
    """The journal of `current` rebuilt from the other generations in `zones_dir` (at start-up).

    Generation names sort by the second they were written, so two publishes within a second
    need not; each zone's serials give the order instead (a publish only raises a serial).
    """
    if keep <= 0:
        return {}
    older: list[ZoneSet] = []
    for gen in _older_generations(zones_dir, current.generation):
        try:
            older.append(load_generation(gen))
        except Exception as exc:  # noqa: BLE001 - a damaged old generation only costs its IXFR
            log.info("IXFR history: generation %s skipped: %s", gen.name, exc)
    deadline = time.monotonic() + seconds
    journal: dict[str, tuple[Step, ...]] = {}
    for name, sz in current.zones.items():
        by_serial = {o.zones[name].serial: o.zones[name] for o in older if name in o.zones}
        chain = [by_serial[s] for s in sorted(by_serial) if s < sz.serial][-keep:] + [sz]
        steps: list[Step] = []
        for a, b in zip(chain, chain[1:]):
            step = make_step(a, b, deadline)
            if isinstance(step, str):
                log.info("IXFR history: zone %s serial %d -> %d not kept (%s)", name, a.serial, b.serial, step)
                steps = []  # what came before cannot reach the current serial
            else:
                steps.append(step)
        if steps:
            journal[name] = tuple(steps)
    kept = ", ".join(f"{name} {len(steps)}" for name, steps in sorted(journal.items())) or "none"
    log.info("IXFR history from %d older generations in %s: differences kept: %s", len(older), zones_dir, kept)
    return journal


@dataclass(frozen=True, slots=True)
class Plan:
    """What an IXFR request gets: the records to stream and what to log."""

    records: tuple[bytes, ...]
    steps: int
    condensed: bool


def condense(chain: tuple[Step, ...]) -> Step:
    """The steps as one (RFC 1995 section 5): what the first serial lacks of the last, and the reverse."""
    removed: dict[bytes, None] = {}
    added: dict[bytes, None] = {}
    for step in chain:
        for rec in step.removed:
            if rec in added:
                del added[rec]
            else:
                removed[rec] = None
        for rec in step.added:
            if rec in removed:
                del removed[rec]
            else:
                added[rec] = None
    first, last = chain[0], chain[-1]
    return Step(first.old_serial, last.new_serial, first.old_soa, last.new_soa, tuple(removed), tuple(added))


def plan(sz: ServedZone, steps: tuple[Step, ...], serial: int) -> Plan | str:
    """The IXFR from `serial` to the zone's current serial, or why it falls back to AXFR."""
    start = next((i for i, s in enumerate(steps) if s.old_serial == serial), None)
    if start is None:
        kept = f"kept: {steps[0].old_serial} and on" if steps else "no differences kept"
        return f"serial {serial} is not one the differences start from ({kept})"
    chain = steps[start:]
    for a, b in zip(chain, chain[1:]):
        if a.new_serial != b.old_serial:
            return f"the kept differences do not chain from {a.new_serial}"
    if chain[-1].new_serial != sz.serial:
        return f"the kept differences end at {chain[-1].new_serial}, not the current {sz.serial}"
    condensed = False
    if len(chain) > 1:
        one = condense(chain)
        if one.records < sum(s.records for s in chain):
            chain, condensed = (one,), True
    total = sum(s.records for s in chain) + 2
    if total > zone_records(sz):
        return f"the difference ({total} records) is larger than the zone"
    out: list[bytes] = [sz.soa_answer]
    for step in chain:
        out.append(step.old_soa)
        out.extend(step.removed)
        out.append(step.new_soa)
        out.extend(step.added)
    out.append(sz.soa_answer)
    return Plan(tuple(out), len(steps) - start, condensed)
