"""Tree -> validated, compiled zones -> a zones/ generation. Used by compile and publish.

The steps stay separate so that `publish` can put its plan and guard rails
between compiling and writing; `compile_tree` + `write_build` is the whole of
`publisher compile`. `assign_serials` keeps a zone's serial while its answers stay
the same, and `zone_meta` is what the manifest records about each zone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from publisher.compile.compiler import compile_zone, listing_count, next_expiry
from publisher.compile.patch import changed_regions, patch_zone, with_expired
from publisher.compile.zone import CompiledZone
from publisher.errors import Problem, UsageError
from publisher.lists.load import Loaded, SourceReader, load_lists, require_clean
from publisher.lists.tree import Tree
from publisher.model import AclRule, Config, SourceData, Touched, ZoneConfig, ZonePage
from publisher.publish import artifacts
from publisher.publish.lock import writer_lock
from publisher.publish.manifest import Counts, Manifest, Source, ZoneMeta, read_manifest
from publisher.publish.manifest_fields import acl_json, transfer_keys_json


@dataclass(frozen=True, slots=True)
class Build:
    config: Config
    loaded: Loaded
    zones: dict[str, CompiledZone]  # serial 0 until `assign_serials`
    as_of: dt.datetime
    #: per zone, the ranges where its answers may differ from the published zone it was
    #: patched from; None (or absent): anywhere (compiled in full)
    regions: dict[str, Touched | None] = field(default_factory=dict)

    @property
    def warnings(self) -> list[Problem]:
        return self.loaded.warnings


@dataclass(frozen=True, slots=True)
class Reuse:
    """The published compile of one zone, and what changed in its sources since."""

    zone: CompiledZone  # as published (loaded from its snapshot)
    config: ZoneConfig  # the zone's settings it was compiled with
    as_of: dt.datetime  # the time it was compiled for
    touched: Touched | None  # None: unknown, compile in full


def compile_tree(
    tree: Tree,
    *,
    as_of: dt.datetime,
    ignore: frozenset[str] = frozenset(),
    reader: SourceReader | None = None,
    reuse: Mapping[str, Reuse] | None = None,
) -> Build:
    """Load, validate and compile. Raises ValidationFailed with every problem found.

    `ignore` names problem codes that do not stop the build (publish --force
    passes the overridable guard-rail codes here). `reader` reads one source file
    (default: parse it); `reuse` offers each zone's published compile for an incremental one.
    """
    loaded = load_lists(tree, as_of=as_of, reader=reader)
    require_clean(loaded, ignore=ignore)
    assert loaded.config is not None
    zones: dict[str, CompiledZone] = {}
    regions: dict[str, Touched | None] = {}
    for cfg in loaded.config.zones:
        sources = loaded.sources.get(cfg.name, [])
        zones[cfg.name], regions[cfg.name] = _compile(cfg, sources, as_of, (reuse or {}).get(cfg.name))
    return Build(loaded.config, loaded, zones, as_of, regions)


def _compile(
    cfg: ZoneConfig, sources: list[SourceData], as_of: dt.datetime, reuse: Reuse | None
) -> tuple[CompiledZone, Touched | None]:
    """The zone, patched from its published compile when that is exact and cheaper; and
    where it may differ from that compile (None: anywhere)."""
    if reuse is not None and reuse.touched is not None:
        zone = patch_zone(
            cfg,
            sources,
            as_of=as_of,
            before=reuse.zone,
            before_cfg=reuse.config,
            before_as_of=reuse.as_of,
            touched=reuse.touched,
        )
        if zone is not None:
            touched = with_expired(reuse.touched, sources, reuse.as_of, as_of)
            return zone, changed_regions(reuse.zone, zone, touched)
    return compile_zone(cfg, sources, as_of=as_of), None


def assign_serials(
    zones: dict[str, CompiledZone], previous: Manifest | None, today: dt.date
) -> tuple[dict[str, CompiledZone], dict[str, str], set[str]]:
    """Give each zone its serial: the old one when the content is unchanged, else a higher one.

    Returns (zones with serials, content digests, names of the zones that changed).
    """
    prev_zones = previous.zones if previous is not None else {}
    out: dict[str, CompiledZone] = {}
    digests: dict[str, str] = {}
    changed: set[str] = set()
    for name, zone in zones.items():
        digest = artifacts.content_digest(zone)
        digests[name] = digest
        prev = prev_zones.get(name)
        if prev is not None and prev.meta.content_sha256 == digest:
            serial = prev.serial
        else:
            serial = artifacts.next_serial(prev.serial if prev is not None else None, today)
            changed.add(name)
        out[name] = replace(zone, info=replace(zone.info, serial=serial))
    return out, digests, changed


#: How far ahead `counts.expiring_7d` in the manifest looks (the metrics' expiring-soon gauge).
EXPIRING_SOON = dt.timedelta(days=7)


def expiring_count(sources: list[SourceData], as_of: dt.datetime, within: dt.timedelta = EXPIRING_SOON) -> int:
    """Listing entries (not exclusions) whose `expires` falls in (as_of, as_of + within]."""
    total = 0
    for src in sources:
        soon = [not v.exclude and v.expires is not None and as_of < v.expires <= as_of + within for v in src.values]
        if any(soon):
            total += sum(1 for column in (src.v4_value, src.v6_value, src.dom_value) for v in column if soon[v])
    return total


def zone_meta(build: Build, digests: dict[str, str]) -> dict[str, ZoneMeta]:
    """Per-zone manifest fields: counts, sources, serving settings."""
    out: dict[str, ZoneMeta] = {}
    for cfg in build.config.zones:
        zone = build.zones[cfg.name]
        sources = build.loaded.sources.get(cfg.name, [])
        expiry = next_expiry(sources, build.as_of)
        out[cfg.name] = ZoneMeta(
            content_sha256=digests[cfg.name],
            counts=Counts(
                listings=listing_count(sources, build.as_of),
                intervals=zone.interval_count,
                v4_addresses=zone.v4_addresses,
                v6_addresses=zone.v6_addresses,
                # an email zone: its hash names and test point (its table holds no holes)
                domains=sum(1 for v in zone.dom_exact.values() if v >= 0)
                + sum(1 for v in zone.dom_wild.values() if v >= 0),
                expiring_7d=expiring_count(sources, build.as_of),
            ),
            sources=tuple(s.path for s in sources),
            next_expiry=expiry.isoformat() if expiry else None,
            secondaries=cfg.secondaries,
            allow_transfer=cfg.allow_transfer,
            transfer_keys=cfg.transfer_keys or None,
            acl=cfg.acl or None,
            keyed=cfg.keyed or None,
            web=cfg.web if cfg.web != ZonePage() else None,
            exports=cfg.exports,
        )
    return out


def settings(listen: tuple[str, ...] | None, zones: Mapping[str, ZoneMeta], acl: tuple[AclRule, ...] | None) -> object:
    """The serving settings that live outside the zone data (a change needs a new generation,
    zone serials unchanged): listen, who may transfer, who may query (`acl`: server-wide), and
    what `publisher web` shows (`web`)."""
    return (
        listen,
        acl_json(acl or ()),  # as the manifest holds it: where a rule was written does not count
        {
            name: (
                meta.secondaries,
                meta.allow_transfer,
                transfer_keys_json(meta.transfer_keys or ()),
                acl_json(meta.acl or ()),
                bool(meta.keyed),
                meta.web or ZonePage(),
            )
            for name, meta in zones.items()
        },
    )


def git_publish(zones_dir: Path) -> Manifest | None:
    """The manifest of zones_dir when its current generation came from `publish` (git)."""
    manifest = read_manifest(zones_dir)
    if manifest is None or manifest.source is None or manifest.source.kind != "git":
        return None
    return manifest


def refuse_over_publish(zones_dir: Path, manifest: Manifest) -> UsageError:
    """compile writes the work tree with no plan, guard rails or history: never over a publish."""
    source = manifest.source
    commit = f"commit {source.commit[:10]}, " if source is not None and source.commit else ""
    return UsageError(
        f"{zones_dir} holds a publish ({commit}{manifest.generation}); compile writes the work tree's lists "
        "with no plan, guard rails or history line, so it does not replace a publish; nothing was written.\n"
        "  fix: commit and `publisher publish` (make publish) to change what is served, "
        "or compile into another folder: `publisher compile --out DIR`"
    )


def write_build(
    zones_dir: Path,
    build: Build,
    *,
    source: Source,
    now: dt.datetime,
    step: artifacts.StepHook = artifacts.no_step,
) -> tuple[Manifest, set[str]]:
    """Assign serials against the current manifest and write a new generation.

    Returns (the new manifest, the zones whose serial changed). When nothing
    changed (zones, content, serving settings, source), nothing is written. A build
    that is not from git (`publisher compile`) never replaces a generation that
    `publish` made: UsageError. The writer lock is held from reading the serials to
    the swap, as a publish holds it.
    """
    with writer_lock(zones_dir):
        previous = read_manifest(zones_dir)
        published = git_publish(zones_dir)
        if published is not None and source.kind != "git":
            raise refuse_over_publish(zones_dir, published)
        zones, digests, changed = assign_serials(build.zones, previous, now.date())
        meta = zone_meta(build, digests)
        listen = tuple(build.config.listen)
        if previous is not None and not changed and previous.source == source:
            before = settings(
                previous.listen, {name: entry.meta for name, entry in previous.zones.items()}, previous.acl
            )
            files = {name: entry.files for name, entry in previous.zones.items()}
            wanted = {name: artifacts.zone_files(name, entry) for name, entry in meta.items()}
            if before == settings(listen, meta, build.config.acl) and files == wanted:
                return previous, set()
        artifacts.write_generation(
            zones_dir,
            zones,
            meta,
            published_at=now.isoformat(timespec="seconds"),
            source=source,
            listen=listen,
            acl=build.config.acl or None,
            step=step,
            regions=build.regions,
        )
        manifest = read_manifest(zones_dir)
    assert manifest is not None
    return manifest, changed
