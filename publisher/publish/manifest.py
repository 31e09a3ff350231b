"""The zones/ folder as readers see it: the typed manifest.json, and loading what is current.

    zones/current            -> gen-20261127T101500Z-3f2a   (symlink, swapped atomically)
    zones/gen-.../manifest.json, <zone>.snap, <zone>.zone, <zone>.rbldnsd
    zones/manifest.json      -> current/manifest.json       (stable convenience links)
    zones/<zone>.zone        -> current/<zone>.zone

`Manifest` is the one definition of manifest.json: `dumps` gives the text that
artifacts.py writes, `loads`/`from_json` read it back, checking every field and naming
the file and the field they reject (ArtifactError). Fields that only some writers give
(`publisher compile` records no commit) or that older manifests of this format lack are
optional: None means "not in the file", so what is read writes back to the same bytes.
This module imports only the shared top modules and publisher.compile: the server reads
zones/ through it without loading the publishing stack (git, YAML, schemas).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from publisher.compile import snapshot
from publisher.compile.zone import CompiledZone
from publisher.errors import ArtifactError
from publisher.model import EXPORTS, AclRule, Kind, Role, Secondary, TransferKey, ZonePage
from publisher.publish.manifest_fields import (
    _acl,
    _check,
    _field,
    _Malformed,
    _object,
    _optional,
    _secondaries,
    _secondary_json,
    _shown,
    _strings,
    _transfer_keys,
    _web,
    acl_json,
    transfer_keys_json,
    web_json,
)

FORMAT = 1
CURRENT = "current"
MANIFEST = "manifest.json"


@dataclass(frozen=True, slots=True)
class ZoneFiles:
    """The files of a zone in a generation (names relative to the generation folder): the
    snapshot, and the exports zones.yaml asks for (None: not written)."""

    snapshot: str
    bind: str | None
    rbldnsd: str | None

    @classmethod
    def of(cls, zone_name: str, exports: Iterable[str] = EXPORTS) -> ZoneFiles:
        wanted = set(exports)
        return cls(
            f"{zone_name}.snap",
            f"{zone_name}.zone" if "bind" in wanted else None,
            f"{zone_name}.rbldnsd" if "rbldnsd" in wanted else None,
        )

    def names(self) -> tuple[str, ...]:
        return tuple(n for n in (self.snapshot, self.bind, self.rbldnsd) if n is not None)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"snapshot": self.snapshot}
        if self.bind is not None:
            out["bind"] = self.bind
        if self.rbldnsd is not None:
            out["rbldnsd"] = self.rbldnsd
        return out

    @classmethod
    def from_json(cls, value: object, where: str) -> ZoneFiles:
        obj = _object(value, where)
        return cls(
            _field(obj, "snapshot", str, where),
            _optional(obj, "bind", str, where),
            _optional(obj, "rbldnsd", str, where),
        )


@dataclass(frozen=True, slots=True)
class Counts:
    """What a zone holds, as counted by the build (the metrics' zone gauges read it)."""

    listings: int
    intervals: int
    v4_addresses: int
    v6_addresses: int  # a string in the JSON: it outgrows the integers JSON readers keep exact
    domains: int
    expiring_7d: int | None = None  # not in manifests written before it was counted

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "listings": self.listings,
            "intervals": self.intervals,
            "v4_addresses": self.v4_addresses,
            "v6_addresses": str(self.v6_addresses),
            "domains": self.domains,
        }
        if self.expiring_7d is not None:
            out["expiring_7d"] = self.expiring_7d
        return out

    @classmethod
    def from_json(cls, value: object, where: str) -> Counts:
        obj = _object(value, where)
        v6 = _field(obj, "v6_addresses", str, where)
        if not v6.isdigit():
            raise _Malformed(f"{where}.v6_addresses: expected a decimal number, got {_shown(v6)}")
        return cls(
            listings=_field(obj, "listings", int, where),
            intervals=_field(obj, "intervals", int, where),
            v4_addresses=_field(obj, "v4_addresses", int, where),
            v6_addresses=int(v6),
            domains=_field(obj, "domains", int, where),
            expiring_7d=_optional(obj, "expiring_7d", int, where),
        )


@dataclass(frozen=True, slots=True)
class Origin:
    """The commit behind a zone's serial. A publish from git writes it for the zones it
    changes; an unchanged zone keeps the one of the commit that made its serial."""

    commit: str | None
    author: str | None
    email: str | None
    committed_at: str | None
    published_at: str | None

    def to_json(self) -> dict[str, object]:
        return {
            "commit": self.commit,
            "author": self.author,
            "email": self.email,
            "committed_at": self.committed_at,
            "published_at": self.published_at,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, object], where: str) -> Origin:
        fields = ("commit", "author", "email", "committed_at", "published_at")
        return cls(*(_optional(obj, key, str, where) for key in fields))


@dataclass(frozen=True, slots=True)
class ZoneMeta:
    """What the build and the publish record about a zone besides its files: counts, sources,
    serving settings, the commit. Every field is optional (None: not written); build.zone_meta
    fills all but `origin`, which a publish from git adds."""

    content_sha256: str | None = None  # of the answers, serial left out: an unchanged zone keeps its serial
    counts: Counts | None = None
    sources: tuple[str, ...] | None = None
    #: The earliest `expires` still ahead at the build; written with the counts (null: none).
    next_expiry: str | None = None
    secondaries: tuple[Secondary, ...] | None = None
    allow_transfer: tuple[str, ...] | None = None
    #: allow_transfer's subscriber keys (zones.yaml `{key: NAME, networks: [...]}`)
    transfer_keys: tuple[TransferKey, ...] | None = None
    acl: tuple[AclRule, ...] | None = None  # the zone's own client ACL
    keyed: bool | None = None  # `keys: required` (None: not written, a zone without keys)
    web: ZonePage | None = None  # zones.yaml `web:` (None: not written, the defaults)
    origin: Origin | None = None
    #: the exports zones.yaml asks for (None: all of EXPORTS); the manifest's `files` record
    #: them, so this is not written itself
    exports: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.content_sha256 is not None:
            out["content_sha256"] = self.content_sha256
        if self.counts is not None:
            out["counts"] = self.counts.to_json()
        if self.sources is not None:
            out["sources"] = list(self.sources)
        if self.counts is not None:
            out["next_expiry"] = self.next_expiry
        if self.secondaries is not None:
            out["secondaries"] = [_secondary_json(s) for s in self.secondaries]
        if self.allow_transfer is not None:
            out["allow_transfer"] = list(self.allow_transfer)
        if self.transfer_keys is not None:
            out["transfer_keys"] = transfer_keys_json(self.transfer_keys)
        if self.acl is not None:
            out["acl"] = acl_json(self.acl)
        if self.keyed is not None:
            out["keyed"] = self.keyed
        if self.web is not None:
            out["web"] = web_json(self.web)
        if self.origin is not None:
            out.update(self.origin.to_json())
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, object], where: str) -> ZoneMeta:
        counts = obj.get("counts")
        return cls(
            content_sha256=_optional(obj, "content_sha256", str, where),
            counts=None if counts is None else Counts.from_json(counts, f"{where}.counts"),
            sources=_strings(obj, "sources", where),
            next_expiry=_optional(obj, "next_expiry", str, where),
            secondaries=_secondaries(obj, where),
            allow_transfer=_strings(obj, "allow_transfer", where),
            transfer_keys=_transfer_keys(obj, where),
            acl=_acl(obj, where),
            keyed=_optional(obj, "keyed", bool, where),
            web=_web(obj, where),
            origin=Origin.from_json(obj, where) if "commit" in obj else None,
        )


_KINDS: tuple[Kind, ...] = ("ip", "domain", "email")
_ROLES: tuple[Role, ...] = ("block", "allow")


@dataclass(frozen=True, slots=True)
class ZoneEntry:
    """One zone of a generation: its serial and files (with their sha256), and its `meta`."""

    serial: int
    kind: Kind
    role: Role
    files: ZoneFiles
    sha256: Mapping[str, str]  # file name -> hex digest
    meta: ZoneMeta = ZoneMeta()

    def to_json(self) -> dict[str, object]:
        return {
            "serial": self.serial,
            "kind": self.kind,
            "role": self.role,
            "files": self.files.to_json(),
            "sha256": dict(self.sha256),
            **self.meta.to_json(),
        }

    @classmethod
    def from_json(cls, value: object, where: str) -> ZoneEntry:
        obj = _object(value, where)
        kind = _field(obj, "kind", str, where)
        role = _field(obj, "role", str, where)
        if kind not in _KINDS:
            raise _Malformed(f"{where}.kind: expected one of {', '.join(_KINDS)}, got {_shown(kind)}")
        if role not in _ROLES:
            raise _Malformed(f"{where}.role: expected one of {', '.join(_ROLES)}, got {_shown(role)}")
        sums = _field(obj, "sha256", dict, where)
        return cls(
            serial=_field(obj, "serial", int, where),
            kind=kind,
            role=role,
            files=ZoneFiles.from_json(_field(obj, "files", dict, where), f"{where}.files"),
            sha256={name: _check(digest, str, f"{where}.sha256[{name!r}]") for name, digest in sums.items()},
            meta=ZoneMeta.from_json(obj, where),
        )


@dataclass(frozen=True, slots=True)
class Source:
    """Where a generation's zones came from: `git` (a commit of the list repository, written by
    a publish) or `worktree` (a folder, written by `publisher compile`). Fields that a kind
    does not have are None (not written)."""

    kind: str
    commit: str | None = None
    author: str | None = None
    email: str | None = None
    committed_at: str | None = None
    summary: str | None = None
    repo: str | None = None  # the repository root, and the lists folder's path inside it
    prefix: str | None = None
    head: str | None = None  # HEAD of the repository at the publish (a rollback publishes an older commit)
    path: str | None = None  # worktree: the lists folder

    def to_json(self) -> dict[str, object]:
        fields = ("commit", "author", "email", "committed_at", "summary", "repo", "prefix", "head", "path")
        out: dict[str, object] = {"kind": self.kind}
        out.update((key, value) for key in fields if (value := getattr(self, key)) is not None)
        return out

    @classmethod
    def from_json(cls, value: object, where: str) -> Source:
        obj = _object(value, where)
        fields = ("commit", "author", "email", "committed_at", "summary", "repo", "prefix", "head", "path")
        return cls(_field(obj, "kind", str, where), *(_optional(obj, key, str, where) for key in fields))


@dataclass(frozen=True, slots=True)
class Manifest:
    """manifest.json of one generation. `published_at`, `source`, `listen` and `action` are
    None (not written) when the writer did not give them; `publisher compile` writes no action."""

    generation: str
    zones: Mapping[str, ZoneEntry]
    published_at: str | None = None
    source: Source | None = None
    listen: tuple[str, ...] | None = None  # the server's default listen addresses (zones.yaml)
    action: str | None = None  # publish, rollback, watch or expiry
    acl: tuple[AclRule, ...] | None = None  # the server-wide client ACL (zones.yaml top-level `acl`)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"format": FORMAT, "generation": self.generation}
        if self.published_at is not None:
            out["published_at"] = self.published_at
        if self.source is not None:
            out["source"] = self.source.to_json()
        if self.listen is not None:
            out["listen"] = list(self.listen)
        if self.action is not None:
            out["action"] = self.action
        if self.acl is not None:
            out["acl"] = acl_json(self.acl)
        out["zones"] = {name: entry.to_json() for name, entry in self.zones.items()}
        return out

    def dumps(self) -> str:
        """The text of manifest.json."""
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, data: object, path: Path | str) -> Manifest:
        """The manifest in `data` (parsed JSON). Raises ArtifactError naming `path` and the field."""
        try:
            obj = _object(data, "")
            if obj.get("format") != FORMAT:
                raise ArtifactError(f"{path}: manifest format {obj.get('format')!r}, expected {FORMAT}")
            generation = _field(obj, "generation", str, "")
            zones = _field(obj, "zones", dict, "")
            source = obj.get("source")
            return cls(
                generation=generation,
                zones={name: ZoneEntry.from_json(entry, f"zones[{name!r}]") for name, entry in zones.items()},
                published_at=_optional(obj, "published_at", str, ""),
                source=None if source is None else Source.from_json(source, "source"),
                listen=_strings(obj, "listen", ""),
                action=_optional(obj, "action", str, ""),
                acl=_acl(obj, ""),
            )
        except _Malformed as exc:
            raise ArtifactError(f"{path}: malformed manifest: {exc}") from None

    @classmethod
    def loads(cls, text: str | bytes, path: Path | str) -> Manifest:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ArtifactError(f"{path}: unreadable manifest: {exc}") from exc
        return cls.from_json(data, path)


@dataclass(frozen=True, slots=True)
class Published:
    """One complete generation as loaded by a reader (the server, plan, explain)."""

    generation: str
    directory: Path
    manifest: Manifest
    zones: dict[str, CompiledZone]


def current_generation(zones_dir: Path) -> Path | None:
    """The folder `zones/current` points to, or None when nothing was published yet."""
    link = zones_dir / CURRENT
    try:
        target = os.readlink(link)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ArtifactError(f"{link}: cannot read the current-generation link: {exc}") from exc
    return zones_dir / target


def read_manifest(zones_dir: Path) -> Manifest | None:
    """The manifest of the current generation, or None when nothing was published yet."""
    gen = current_generation(zones_dir)
    if gen is None:
        return None
    path = gen / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: unreadable manifest: {exc}") from exc
    return Manifest.loads(text, path)


def load_published(zones_dir: Path) -> Published:
    """Load every zone of the current generation, checking each snapshot's sha256."""
    gen = current_generation(zones_dir)
    if gen is None:
        raise ArtifactError(f"{zones_dir}: nothing published yet (run `make compile` or `make publish`)")
    manifest = read_manifest(zones_dir)
    assert manifest is not None
    zones: dict[str, CompiledZone] = {}
    for name, entry in manifest.zones.items():
        path = gen / entry.files.snapshot
        want = entry.sha256.get(entry.files.snapshot)
        if want is None:
            raise ArtifactError(f"{gen / MANIFEST}: no sha256 for {entry.files.snapshot}")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ArtifactError(f"{path}: cannot read snapshot: {exc}") from exc
        got = hashlib.sha256(data).hexdigest()
        if got != want:
            raise ArtifactError(f"{path}: sha256 {got[:12]}... does not match the manifest ({want[:12]}...)")
        zone = snapshot.load_snapshot(data)
        if zone.info.name != name or zone.info.serial != entry.serial:
            raise ArtifactError(
                f"{path}: holds {zone.info.name} serial {zone.info.serial}, manifest says {name} {entry.serial}"
            )
        zones[name] = zone
    return Published(gen.name, gen, manifest, zones)
