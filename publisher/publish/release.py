"""Publish from git: commit -> tree -> build -> plan -> guard rails -> write -> history.

The orchestration on top of vcs (read a commit), build (validate + compile),
plan (diff against what is published, guard rails), artifacts (write a
generation atomically) and history (one record per publish). `prepare` does
everything that does not write, so that `plan`, `publish --dry-run` and a
refused publish all show the same plan; `apply` writes. The running server
notices the new manifest on its own (and gets a SIGHUP when it left a pid file).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from pathlib import Path

from publisher.compile.zone import CompiledZone
from publisher.errors import ArtifactError, GuardRailError, Problem, PublisherError
from publisher.lists.load import load_lists
from publisher.model import Config, SourceData
from publisher.publish import artifacts, history
from publisher.publish.build import Build, assign_serials, compile_tree, settings, zone_meta
from publisher.publish.cache import ParseCache
from publisher.publish.email_entries import as_written
from publisher.publish.guards import OVERRIDABLE_PROBLEMS, Violation, check_guards
from publisher.publish.lock import LOCK_TIMEOUT, WaitHook, no_wait, writer_lock
from publisher.publish.manifest import Manifest, Origin, ZoneEntry, ZoneMeta, load_published, read_manifest
from publisher.publish.pidfile import notify_server, server_pid
from publisher.publish.plan import Change, Plan, access_notes, plan_zone
from publisher.publish.reading import CachedReader, ReuseMap
from publisher.publish.rollback import readds_rollback
from publisher.publish.rollback import rollback_target as rollback_target  # where callers found it before
from publisher.publish.spf_notes import spf_notes
from publisher.publish.vcs import (
    BlameLine,
    CommitInfo,
    DirtyFile,
    GitTree,
    ListsRepo,
    blame_lines,
    commit_info,
    dirty_files,
    find_repo,
)

#: Entries shown (and blamed) per zone in a plan; the rest are counted.
DEFAULT_SHOW = 20
#: A running server may leave its pid here; it gets SIGHUP after a publish.
BlameKey = tuple[str, str, int]  # (side "old"/"new", path, line)


@dataclass(frozen=True, slots=True)
class Previous:
    """What is published now, and the sources behind it when they can be read."""

    manifest: Manifest | None = None
    zones: dict[str, CompiledZone] = field(default_factory=dict)
    sources: dict[str, list[SourceData]] | None = None
    config: Config | None = None  # zones.yaml of the published commit
    as_of: dt.datetime | None = None
    blob_ids: dict[str, str] = field(default_factory=dict)
    commit: str | None = None
    problems: tuple[Problem, ...] = ()  # what validation said about the published commit
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Prepared:
    where: ListsRepo
    commit: CommitInfo
    head: str
    build: Build
    zones: dict[str, CompiledZone]  # with their serials
    digests: dict[str, str]
    changed: set[str]  # zones whose serial moves
    settings_changed: bool
    previous: Previous
    plan: Plan
    violations: list[Violation]
    dirty: list[DirtyFile]
    blame: dict[BlameKey, BlameLine]
    now: dt.datetime

    @property
    def nothing_to_publish(self) -> bool:
        """Same answers, same settings, and zones/ already records a git publish."""
        manifest = self.previous.manifest
        if manifest is None or manifest.source is None or manifest.source.kind != "git":
            return False  # record where the zones come from, even when the answers are the same
        return not self.changed and not self.settings_changed and not self.plan.dropped

    def serial(self, zone: str) -> int:
        return self.zones[zone].info.serial

    def previous_serial(self, zone: str) -> int | None:
        prev = self.previous.manifest.zones.get(zone) if self.previous.manifest is not None else None
        return prev.serial if prev is not None else None


@dataclass(frozen=True, slots=True)
class Outcome:
    prepared: Prepared
    written: bool
    manifest: Manifest | None
    forced: list[Violation]
    reloaded: int | None = None  # the pid of the server told to reload (zones/server.pid), if any


def _parse_time(text: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text) if text is not None else None
    except ValueError:
        return None


def _previous(
    where: ListsRepo, zones_dir: Path, cache: ParseCache | None = None
) -> tuple[Previous, CachedReader | None]:
    """What is published now, and the reader that read its sources (through `cache`: the
    published commit's files were parsed, and stored, by the publish that published them)."""
    manifest = read_manifest(zones_dir)
    if manifest is None:
        return Previous(), None
    notes: list[str] = []
    zones: dict[str, CompiledZone] = {}
    try:
        zones = load_published(zones_dir).zones
    except ArtifactError as exc:
        notes.append(f"the published zones could not be read ({exc}); address changes are counted from nothing")
    source = manifest.source
    as_of = _parse_time(manifest.published_at)
    commit = source.commit if source is not None and source.kind == "git" else None
    if commit is None or as_of is None:
        notes.append("the last publish was not made from git; entry-level changes are unknown")
        return Previous(manifest, zones, notes=tuple(notes)), None
    try:
        tree = GitTree(where, commit)
        reader = CachedReader(cache if cache is not None else ParseCache(zones_dir), tree)
        loaded = load_lists(tree, as_of=as_of, reader=reader)
    except PublisherError as exc:
        notes.append(
            f"commit {commit[:10]} of the last publish cannot be read here ({exc}); entry-level changes are unknown"
        )
        return Previous(manifest, zones, commit=commit, notes=tuple(notes)), None
    previous = Previous(
        manifest,
        zones,
        loaded.sources,
        loaded.config,
        as_of,
        tree.blob_ids(),
        commit,
        tuple(loaded.problems),
        tuple(notes),
    )
    return previous, reader


def _expiry_notes(
    prev: Mapping[str, ZoneEntry], new: Mapping[str, ZoneMeta], changed: AbstractSet[str]
) -> tuple[str, ...]:
    """Zones answering the same whose next expiry moved (an `expires` given to a listed entry, or a
    generated file's entries kept for a grace): a new generation records it, same serials."""
    out: list[str] = []
    for name, meta in new.items():
        old = prev.get(name)
        if name in changed or old is None or old.meta.next_expiry == meta.next_expiry:
            continue
        was = old.meta.next_expiry or "none"
        out.append(f"{name}: next expiry {meta.next_expiry or 'none'} (was {was}); same answers, same serial")
    return tuple(out)


def prepare(lists: Path, zones_dir: Path, *, rev: str = "HEAD", now: dt.datetime, show: int = DEFAULT_SHOW) -> Prepared:
    """Read, validate, compile and plan a publish of `rev`; write nothing.

    Raises ValidationFailed for every non-overridable problem; guard rails are
    returned as `violations`, for `apply` to enforce.
    """
    where = find_repo(lists)
    tree = GitTree(where, rev)
    head = commit_info(where, "HEAD").sha
    # The published side first: its parses (cached) are what the new side's changed files patch.
    cache = ParseCache(zones_dir)
    previous, old_reader = _previous(where, zones_dir, cache)
    reader = CachedReader(cache, tree, old_reader)
    reuse = None
    if old_reader is not None and previous.config is not None and previous.sources is not None and previous.as_of:
        reuse = ReuseMap(previous.zones, previous.config, previous.sources, previous.as_of, old_reader, reader, now)
    build = compile_tree(tree, as_of=now, ignore=OVERRIDABLE_PROBLEMS, reader=reader, reuse=reuse)
    cache.prune()
    zones, digests, changed = assign_serials(build.zones, previous.manifest, now.date())
    new_blobs = tree.blob_ids()
    unchanged = frozenset(p for p, sha in new_blobs.items() if previous.blob_ids.get(p) == sha)
    prev_zones = previous.manifest.zones if previous.manifest is not None else {}
    zone_plans = []
    old_tree = GitTree(where, previous.commit) if previous.commit is not None else None
    for cfg in build.config.zones:
        before = previous.zones.get(cfg.name)
        before_sources = previous.sources.get(cfg.name, []) if previous.sources is not None else None
        old_cfg = previous.config.zone(cfg.name) if previous.config is not None else None
        prev_counts = prev_zones[cfg.name].meta.counts if cfg.name in prev_zones else None
        row_changes = {p: (d.removed, d.added) for (z, p), d in reader.deltas.items() if z == cfg.name}
        zone_plans.append(
            plan_zone(
                cfg,
                zones[cfg.name],
                build.loaded.sources.get(cfg.name, []),
                now,
                before=before,
                before_sources=before_sources,
                before_as_of=previous.as_of,
                before_listings=prev_counts.listings if prev_counts is not None else None,
                unchanged=unchanged,
                row_changes=row_changes,
                content_changed=cfg.name in changed,
                same_settings=old_cfg is not None and replace(old_cfg, location=cfg.location) == cfg,
                keep=show if show > 0 else None,
            )
        )
        if cfg.kind == "email":  # hash names say nothing to a reviewer: the addresses as written
            zone_plans[-1] = as_written(
                zone_plans[-1], build.loaded.sources.get(cfg.name, []), before_sources, tree, old_tree
            )
    dropped = tuple(sorted(set(prev_zones) - {c.name for c in build.config.zones}))
    readds = None
    if previous.manifest is not None and previous.manifest.action == "rollback" and previous.commit is not None:
        readds = readds_rollback(where, zones_dir, previous.manifest.generation, previous.blob_ids, new_blobs)
    new_meta = zone_meta(build, digests)
    notes = previous.notes + tuple(cache.notes) + ((readds,) if readds else ())
    notes += access_notes(previous.manifest, build.config.acl, new_meta)
    notes += spf_notes(zone_plans, build.config.zones, build.loaded.sources)
    expiries = _expiry_notes(prev_zones, new_meta, changed)
    notes += expiries
    plan = Plan(tuple(zone_plans), dropped, previous.manifest is None, notes)
    zone_of = {s.path: name for name, srcs in build.loaded.sources.items() for s in srcs}
    configs = {c.name: c for c in build.config.zones}
    # A guard-rail problem that the published commit already had was accepted then (--force):
    # asking again at every publish would block unrelated changes and expiries for good.
    accepted = {(p.code, p.message) for p in previous.problems}
    fresh = [p for p in build.loaded.problems if (p.code, p.message) not in accepted]
    violations = check_guards(plan, configs, fresh, zone_of)
    # a change of `exports` alone changes which files a generation holds: a new generation too
    settings_changed = previous.manifest is not None and (
        settings(build.config.listen, new_meta, build.config.acl)
        != settings(
            previous.manifest.listen,
            {name: entry.meta for name, entry in prev_zones.items()},
            previous.manifest.acl,
        )
        or {name: entry.files for name, entry in prev_zones.items()}
        != {name: artifacts.zone_files(name, meta) for name, meta in new_meta.items()}
        or bool(expiries)  # the manifest must carry it, or `watch` never republishes at the expiry
    )
    blame = _blame(where, tree.commit.sha, previous.commit, plan, show)
    return Prepared(
        where,
        tree.commit,
        head,
        build,
        zones,
        digests,
        changed,
        settings_changed,
        previous,
        plan,
        violations,
        dirty_files(where),
        blame,
        now,
    )


def shown(changes: tuple[Change, ...], show: int) -> tuple[Change, ...]:
    return changes if show <= 0 else changes[:show]


def _blame(where: ListsRepo, new: str, old: str | None, plan: Plan, show: int) -> dict[BlameKey, BlameLine]:
    """Blame only the entries a plan shows, one `git blame` per file and side."""
    wanted: dict[tuple[str, str], set[int]] = {}
    for zp in plan.zones:
        for change in shown(zp.changes, show):
            wanted.setdefault((change.side, change.entry.path), set()).add(change.entry.line)
    out: dict[BlameKey, BlameLine] = {}
    for (side, path), lines in wanted.items():
        rev = new if side == "new" else old
        if rev is None:
            continue
        try:
            # added lines are newer than the published commit: blame only what came since
            found = blame_lines(where, rev, path, lines, since=old if side == "new" else None)
        except PublisherError:
            continue  # blame is a courtesy: the plan stands without it
        out.update(((side, path, n), b) for n, b in found.items())
    return out


def refusal(violations: list[Violation]) -> GuardRailError:
    lines = [f"  {v.rule}: {v.message}" for v in violations]
    return GuardRailError(
        f"publish refused by {len(violations)} guard rail{'' if len(violations) == 1 else 's'}; nothing was written "
        "(look at the plan, then rerun with --force if it is intended):\n" + "\n".join(lines)
    )


def apply(
    prepared: Prepared,
    zones_dir: Path,
    *,
    force: bool = False,
    dry_run: bool = False,
    action: str = "publish",
    step: artifacts.StepHook = artifacts.no_step,
) -> Outcome:
    """Enforce the guard rails and write the generation (unless nothing changed or dry run)."""
    p = prepared
    if p.nothing_to_publish:
        if not dry_run:
            _finish_interrupted(zones_dir, p.previous.manifest)
        return Outcome(p, False, p.previous.manifest, [])
    if p.violations and not force:
        raise refusal(p.violations)
    forced = list(p.violations)
    if dry_run:
        return Outcome(p, False, p.previous.manifest, forced)
    with writer_lock(zones_dir):
        _require_current(p, zones_dir)
        return _write(p, zones_dir, forced, action, step)


def _require_current(p: Prepared, zones_dir: Path) -> None:
    """Under the lock: the plan was made against what is published now. A plan made before
    another publish would reuse its serials for other content (secondaries would never
    take it): refuse, and let the caller plan again."""
    planned = p.previous.manifest.generation if p.previous.manifest is not None else None
    now = read_manifest(zones_dir)
    if (now.generation if now is not None else None) != planned:
        current = f"{now.generation} (by {now.action or 'compile'})" if now is not None else "nothing"
        raise ArtifactError(
            f"{zones_dir} changed since this plan was made: {current} is current now, the plan was made "
            f"against {planned or 'nothing'}; nothing was written. Plan and publish again"
        )


def _write(p: Prepared, zones_dir: Path, forced: list[Violation], action: str, step: artifacts.StepHook) -> Outcome:
    step("validated")
    source = replace(p.commit.source(p.where), head=p.head)
    prev_zones = p.previous.manifest.zones if p.previous.manifest is not None else {}
    stamp = p.now.isoformat(timespec="seconds")
    fresh = Origin(p.commit.sha, p.commit.author, p.commit.email, p.commit.committed_at, stamp)
    meta: dict[str, ZoneMeta] = {}
    for name, entry in zone_meta(p.build, p.digests).items():
        prev = prev_zones.get(name)
        kept = prev.meta.origin if prev is not None else None
        # an unchanged zone: its serial still stands for the commit that made it
        meta[name] = replace(entry, origin=fresh if name in p.changed or kept is None else kept)
    gen = artifacts.write_generation(
        zones_dir,
        p.zones,
        meta,
        published_at=stamp,
        source=source,
        listen=tuple(p.build.config.listen),
        action=action,
        step=step,
        regions=p.build.regions,
        acl=p.build.config.acl or None,
    )
    serials = {n: z.info.serial for n, z in p.zones.items()}
    previous_serials = {n: z.serial for n, z in prev_zones.items()}
    history.append(
        zones_dir,
        history.record(
            action=action,
            now=p.now,
            source=source,
            head=p.head,
            generation=gen.name,
            serials=serials,
            previous_serials=previous_serials,
            changed=p.changed,
            plan=p.plan,
            forced=[v.rule for v in forced],
        ),
    )
    pid = server_pid(zones_dir)
    reloaded = pid if pid is not None and notify_server(zones_dir) else None
    return Outcome(p, True, read_manifest(zones_dir), forced, reloaded)


def _finish_interrupted(zones_dir: Path, manifest: Manifest | None) -> None:
    """A publish killed after its swap is published, but its links and history line may be
    missing: complete them (best effort; a read-only zones/ is no error when nothing changes)."""
    artifacts.tidy(zones_dir)
    if manifest is None:
        return
    with contextlib.suppress(ArtifactError):
        last = history.last(zones_dir)
        if last is None or last.generation != manifest.generation:
            history.append(zones_dir, history.recovered_record(manifest))


def publish(
    lists: Path,
    zones_dir: Path,
    *,
    rev: str = "HEAD",
    now: dt.datetime | None = None,
    force: bool = False,
    dry_run: bool = False,
    action: str = "publish",
    step: artifacts.StepHook = artifacts.no_step,
    on_wait: WaitHook = no_wait,
    lock_timeout: float = LOCK_TIMEOUT,
) -> Outcome:
    """prepare + apply, for callers that do not show the plan in between (watch, tests).

    A real publish holds the writer lock from reading what is published to the swap, so
    that two publishes never plan against the same generation (`on_wait` hears of a wait).
    """
    held = contextlib.nullcontext() if dry_run else writer_lock(zones_dir, timeout=lock_timeout, on_wait=on_wait)
    with held:
        prepared = prepare(lists, zones_dir, rev=rev, now=now or dt.datetime.now(dt.UTC))
        return apply(prepared, zones_dir, force=force, dry_run=dry_run, action=action, step=step)
