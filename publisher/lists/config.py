"""lists/zones.yaml -> `Config`: the zone definitions, loaded and checked.

The file is loaded with marks, checked against `schemas/zones.schema.json`, the
`defaults` are merged into each zone (a zone's keys win; soa, max_prefix and
guards merge key by key), and then each value is checked for meaning: zone
and host names, return codes, TXT placeholders, networks, listen addresses,
`protect` references, duplicate zones; the client ACLs (server-wide and per zone)
are read by lists/acl.py. Any error means no Config at all: a half-understood zone
definition is never published.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from publisher import codes
from publisher.addresses import AddressError, normalize_domain, parse_addr, parse_code, parse_network, split_listen
from publisher.errors import Location, Problem
from publisher.lists.acl import AclReader
from publisher.lists.email_config import read_email
from publisher.lists.schema import check, did_you_mean
from publisher.lists.spf_config import read_spf
from publisher.lists.tree import Tree, TreeError
from publisher.lists.txt_limit import FIX as TXT_FIX
from publisher.lists.txt_limit import placeholder_problem, template_excess
from publisher.lists.yamlmarks import Marks, Path, load_yaml
from publisher.model import (
    DEFAULT_LISTEN,
    DEFAULT_PUBLIC,
    EXPORTS,
    Config,
    Guards,
    NameServer,
    Secondary,
    Soa,
    TransferKey,
    ZoneConfig,
    ZonePage,
    glob_matches,
)

CONFIG_PATH = "zones.yaml"
DEFAULT_CODE = "127.0.0.2"
DEFAULT_TXT = {"block": "Listed by {zone}: {reason}", "allow": "Allowed by {zone}: {reason}"}
_MERGED_MAPPINGS = ("soa", "max_prefix", "guards", "web")
#: ZoneConfig's own defaults (a slotted dataclass keeps them only in its fields).
_ZONE_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(ZoneConfig)}

#: A TSIG key name: labels of letters, digits, '-' and '_' (BIND's tsig-keygen names).
_KEY_NAME = re.compile(r"(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*")

#: (zone name, glob) -> where the glob (of `sources` or `excludes`) was written, for "matches no file" messages.
GlobLocations = dict[tuple[str, str], Location]


def load_config(tree: Tree) -> tuple[Config | None, list[Problem]]:
    """The zone definitions, or None with the problems that prevent using them."""
    config, problems, _ = load_config_marked(tree)
    return config, problems


def load_config_marked(tree: Tree) -> tuple[Config | None, list[Problem], GlobLocations]:
    """`load_config`, plus where each source glob was written (load.py reports on them)."""
    if CONFIG_PATH not in tree.files():
        return None, [_missing(tree)], {}
    try:
        data = tree.read(CONFIG_PATH)
    except TreeError as exc:
        message = str(exc).removeprefix(f"{CONFIG_PATH}: ")
        return None, [Problem(Location(CONFIG_PATH), codes.READ_ERROR, message, "check the file's permissions")], {}
    loaded = load_yaml(CONFIG_PATH, data)
    problems = list(loaded.problems)
    if loaded.data is None:
        if not problems:
            problems.append(
                Problem(
                    Location(CONFIG_PATH, 1, 1),
                    codes.NOT_A_MAPPING,
                    "zones.yaml is empty",
                    "define at least one zone under `zones:`",
                )
            )
        return None, problems, {}
    problems.extend(check(loaded.data, loaded.marks, "zones"))
    if problems:
        return None, problems, {}
    builder = _Builder(loaded.data, loaded.marks, tree)
    config = builder.build()
    problems.extend(builder.problems)
    if any(p.is_error for p in problems):
        return None, problems, {}
    return config, problems, builder.globs


def _missing(tree: Tree) -> Problem:
    return Problem(
        Location(CONFIG_PATH),
        codes.MISSING_CONFIG,
        f"no zones.yaml in {tree.describe()}",
        "create lists/zones.yaml with the zone definitions (see README.md)",
    )


def template_problem(txt: str, kind: str) -> str | None:
    """Why a TXT template cannot be used, or None. Mirrors model.render_txt's reading."""
    subject = {"ip": ("ip",), "domain": ("domain",)}.get(kind, ())  # an email zone's TXT names no query
    allowed = (*subject, "code", "reason", "zone")
    return placeholder_problem(txt, allowed, f"{'an' if kind in ('ip', 'email') else 'a'} {kind} zone")


class _Builder:
    """Builds ZoneConfigs from the schema-valid document, collecting meaning problems."""

    def __init__(self, doc: dict[str, Any], marks: Marks, tree: Tree) -> None:
        self.doc = doc
        self.marks = marks
        self.problems: list[Problem] = []
        self.globs: GlobLocations = {}
        self.acls = AclReader(tree, marks, self.problems)

    def error(
        self, where: Path, code: str, message: str, fix: str | None, related: tuple[tuple[str, Location], ...] = ()
    ) -> None:
        self.problems.append(Problem(self.marks.location(where), code, message, fix, related))

    def build(self) -> Config:
        defaults: dict[str, Any] = self.doc.get("defaults") or {}
        acl = self.acls.rules(("acl",), self.doc.get("acl"))
        zones: list[ZoneConfig] = []
        seen: dict[str, Location] = {}
        for index, raw in enumerate(self.doc["zones"]):
            zone = self.zone(index, raw, defaults)
            if zone is None:
                continue
            first = seen.get(zone.name)
            if first is not None:
                self.error(
                    ("zones", index, "name"),
                    codes.DUPLICATE_ZONE,
                    f"zone {zone.name} is defined twice",
                    "merge the two definitions, or rename one",
                    (("first at", first),),
                )
            seen.setdefault(zone.name, zone.location)
            zones.append(zone)
        self.protect(zones)
        listen = tuple(self.doc.get("listen") or DEFAULT_LISTEN)
        for i, text in enumerate(self.doc.get("listen") or []):
            self.listen(("listen", i), text)
        self.acls.check_sources(
            (str(raw["name"]), raw["sources"], raw.get("excludes") or ()) for raw in self.doc["zones"]
        )
        return Config(tuple(zones), listen, CONFIG_PATH, acl, tuple(sorted(self.acls.file_at)))

    # --- one zone -----------------------------------------------------------------

    def zone(self, index: int, raw: dict[str, Any], defaults: dict[str, Any]) -> ZoneConfig | None:
        merged = {**defaults, **raw}
        for key in _MERGED_MAPPINGS:
            if key in defaults and key in raw:
                merged[key] = {**defaults[key], **raw[key]}

        def at(key: str, *rest: str | int) -> Path:
            return ("zones", index, key, *rest) if key in raw else ("defaults", key, *rest)

        before = len(self.problems)
        name = self.domain(("zones", index, "name"), raw["name"], "zone name")
        kind, role = merged["kind"], merged["role"]
        try:
            code = parse_code(str(merged.get("code", DEFAULT_CODE)))
        except AddressError as exc:
            self.error(at("code"), codes.BAD_CODE, exc.message, exc.fix)
            code = 0
        txt = str(merged.get("txt", DEFAULT_TXT[role]))
        why = template_problem(txt, kind)
        if why:
            self.error(
                at("txt"), codes.BAD_TEMPLATE, f"the TXT template {txt!r} {why}", "use only the placeholders listed"
            )
        else:
            probe = ZoneConfig(name=name, kind=kind, role=role, sources=(), code=code, txt=txt)
            too_long = template_excess(probe)
            if too_long:
                where = at("txt") if "txt" in merged else ("zones", index, "name")
                self.error(where, codes.TXT_TOO_LONG, f"the TXT template {too_long}", TXT_FIX)
        for i, pattern in enumerate(merged["sources"]):
            if pattern.startswith("/") or ".." in pattern.split("/"):
                self.error(
                    at("sources", i),
                    codes.BAD_GLOB,
                    f"source glob '{pattern}' must stay inside lists/",
                    "write it relative to lists/, like bl/*.yaml",
                )
            self.globs[(name or raw["name"], pattern)] = self.marks.location(at("sources", i))
        for i, pattern in enumerate(merged.get("excludes") or []):
            if pattern.startswith("/") or ".." in pattern.split("/"):
                self.error(
                    at("excludes", i),
                    codes.BAD_GLOB,
                    f"excludes glob '{pattern}' must stay inside lists/",
                    "write it relative to lists/, like bl/local-excludes.txt",
                )
            self.globs.setdefault((name or raw["name"], pattern), self.marks.location(at("excludes", i)))
        soa_raw = merged.get("soa")
        soa = _ZONE_DEFAULTS["soa"]
        if soa_raw:
            soa = Soa(
                mname=self.domain(at("soa", "mname"), soa_raw["mname"], "SOA mname"),
                rname=self.domain(at("soa", "rname"), soa_raw["rname"], "SOA rname"),
                **{k: int(soa_raw[k]) for k in ("refresh", "retry", "expire", "minimum") if k in soa_raw},
            )
        ns = tuple(self.name_server(at("ns", i), item) for i, item in enumerate(merged.get("ns") or []))
        secondaries = tuple(
            self.secondary(at("secondaries", i), item) for i, item in enumerate(merged.get("secondaries") or [])
        )
        transfer, transfer_keys = self.allow_transfer(at("allow_transfer"), merged.get("allow_transfer") or [])
        acl = self.acls.rules(at("acl"), merged.get("acl"))
        page = self.page(
            at("web"), merged.get("web") or {}, kind, role, merged["sources"], merged.get("excludes") or []
        )
        spf = None
        if "spf" in raw:
            spf = read_spf(
                ("zones", index, "spf"),
                raw["spf"],
                kind=kind,
                role=role,
                sources=merged["sources"],
                excludes=merged.get("excludes") or [],
                error=self.error,
            )
        email = None
        if kind == "email":
            email = read_email(("zones", index, "email"), raw.get("email"), zone=name, merged=merged, error=self.error)
        elif "email" in raw:
            self.error(
                ("zones", index, "email"),
                codes.BAD_EMAIL_SETTINGS,
                f"`email:` is for zones of kind email (this one is of kind {kind})",
                "write `kind: email`, or remove `email:`",
            )
        prefix = merged.get("max_prefix") or {}
        guards = merged.get("guards") or {}
        if any(p.is_error for p in self.problems[before:]):
            return None
        return ZoneConfig(
            name=name,
            kind=kind,
            role=role,
            sources=tuple(merged["sources"]),
            code=code,
            txt=txt,
            ttl=int(merged.get("ttl", _ZONE_DEFAULTS["ttl"])),
            soa=soa,
            ns=ns or (NameServer(soa.mname),),
            protect=tuple(str(p).lower().rstrip(".") for p in merged.get("protect") or ()),
            max_prefix_v4=int(prefix.get("ipv4", _ZONE_DEFAULTS["max_prefix_v4"])),
            max_prefix_v6=int(prefix.get("ipv6", _ZONE_DEFAULTS["max_prefix_v6"])),
            secondaries=secondaries,
            allow_transfer=transfer,
            transfer_keys=transfer_keys,
            exports=tuple(e for e in EXPORTS if e in merged.get("exports", EXPORTS)),
            excludes=tuple(merged.get("excludes") or ()),
            guards=Guards(
                **{
                    k: guards[k]
                    for k in ("max_removed_share", "min_listings_for_share", "max_growth_factor")
                    if k in guards
                }
            ),
            location=self.marks.location(("zones", index)),
            acl=acl,
            keyed=merged.get("keys") == "required",
            web=page,
            spf=spf,
            email=email,
        )

    def page(
        self, where: Path, raw: dict[str, Any], kind: str, role: str, sources: list[str], excludes: list[str]
    ) -> ZonePage:
        """The zone's `web:` (what `publisher web` shows, which file requests edit). Delisting
        requests go to one of a block zone's `excludes` files (a hole in the zone, whichever
        file lists the address); allowlisting requests to one of an allow zone's sources."""
        meanings: list[tuple[int, str]] = []
        for text, meaning in (raw.get("codes") or {}).items():
            try:
                meanings.append((parse_code(str(text)), str(meaning)))
            except AddressError as exc:
                self.error((*where, "codes", text), codes.BAD_CODE, exc.message, exc.fix)
        requests = raw.get("requests")
        if requests is not None and kind != "email":  # an email zone takes none: email_config says so
            requests = str(requests)
            excluding = any(glob_matches(pattern, requests) for pattern in excludes)
            why, fix = None, "name a curated .yaml file that the zone's sources glob matches, like wl/requests.yaml"
            if requests.startswith("/") or ".." in requests.split("/"):
                why = "must stay inside lists/"
            elif role == "block" and not excluding:
                why = "is not one of the zone's excludes files: a delisting must be a hole in the whole zone"
                fix = f"add it to the zone's excludes, like `excludes: [{requests}]`"
            elif role == "allow" and excluding:
                why = "is one of the zone's excludes files: an allowlisting adds a listing"
            elif role == "allow" and not any(glob_matches(pattern, requests) for pattern in sources):
                why = f"is not one of the zone's sources ({', '.join(sources)})"
            if why:
                self.error((*where, "requests"), codes.BAD_REQUESTS_FILE, f"requests file '{requests}' {why}", fix)
        return ZonePage(
            public=tuple(raw.get("public", DEFAULT_PUBLIC)),
            policy=str(raw.get("policy", "")),
            codes=tuple(sorted(meanings)),
            requests=requests,
        )

    def domain(self, where: Path, text: str, what: str) -> str:
        try:
            name, wild = normalize_domain(text)
        except AddressError as exc:
            fix = exc.fix if exc.code != codes.CONFUSABLE_DOMAIN else "write the name as DNS will see it"
            self.error(where, codes.BAD_NAME, f"{what} {exc.message}", fix or "write a host name like ns1.example.test")
            return str(text)
        if wild:
            self.error(where, codes.BAD_NAME, f"{what} '{text}' cannot be a wildcard", "remove the leading '*.' or '.'")
        return name

    def name_server(self, where: Path, item: dict[str, Any]) -> NameServer:
        name = self.domain((*where, "name"), item["name"], "name server")
        for i, text in enumerate(item.get("addresses") or []):
            self.address((*where, "addresses", i), text)
        return NameServer(name, tuple(item.get("addresses") or ()))

    def secondary(self, where: Path, item: dict[str, Any]) -> Secondary:
        self.address((*where, "address"), item["address"])
        return Secondary(
            address=item["address"],
            port=int(item.get("port", 53)),
            notify=bool(item.get("notify", True)),
            tsig_key=item.get("tsig_key"),
        )

    def allow_transfer(
        self, where: Path, items: list[str | dict[str, Any]]
    ) -> tuple[tuple[str, ...], tuple[TransferKey, ...]]:
        """`allow_transfer`: its networks (the default when it is not given) and its subscriber keys."""
        networks: list[str] = []
        keys: dict[str, TransferKey] = {}
        for i, item in enumerate(items):
            if isinstance(item, str):
                networks.append(item)
                self.network((*where, i), item)
                continue
            name = str(item["key"]).strip().lower().rstrip(".")
            place = self.marks.location((*where, i, "key"))
            if not _KEY_NAME.fullmatch(name):
                self.error(
                    (*where, i, "key"),
                    codes.BAD_NAME,
                    f"TSIG key name {item['key']!r} is not a DNS name",
                    "use the key's name as in the --tsig-keys file: letters, digits, '-', '_' and dots",
                )
            nets = tuple(self.network((*where, i, "networks", j), t) for j, t in enumerate(item.get("networks") or []))
            if name in keys:
                self.error(
                    (*where, i, "key"),
                    codes.DUPLICATE_TRANSFER_KEY,
                    f"TSIG key {name} is in allow_transfer twice",
                    "write it once, with all its networks in one `networks` list",
                    (("first at", keys[name].location),),
                )
            keys.setdefault(name, TransferKey(name, nets, place))
        if not items:
            return tuple(_ZONE_DEFAULTS["allow_transfer"]), ()
        return tuple(networks), tuple(keys.values())

    def network(self, where: Path, text: str) -> str:
        """`text` normalised (as the server will read it); an error when it is not a network."""
        try:
            return str(parse_network(text))
        except AddressError as exc:
            self.error(where, exc.code, exc.message, exc.fix)  # BAD_ADDRESS or HOST_BITS
            return text

    def address(self, where: Path, text: str) -> None:
        try:
            parse_addr(text)
        except AddressError as exc:
            self.error(where, codes.BAD_ADDRESS, exc.message, exc.fix)

    def listen(self, where: Path, text: str) -> None:
        try:
            split_listen(text)  # a port is required here: no default to guess
        except AddressError as exc:
            self.error(where, codes.BAD_LISTEN, exc.message, exc.fix)

    # --- across zones ----------------------------------------------------------------

    def protect(self, zones: list[ZoneConfig]) -> None:
        by_name = {z.name: z for z in zones}
        written = {str(raw.get("name", "")).lower().rstrip(".") for raw in self.doc["zones"]}
        for index, raw in enumerate(self.doc["zones"]):
            for i, target in enumerate(raw.get("protect") or []):
                where: Path = ("zones", index, "protect", i)
                name = str(raw.get("name", "")).lower().rstrip(".")
                zone = by_name.get(name)
                if zone is not None and (zone.role != "block" or zone.kind != "ip"):
                    self.error(
                        where,
                        codes.BAD_PROTECT,
                        f"`protect` is only for ip blocklists; {name} is a {zone.kind} {zone.role}list",
                        "remove `protect` from this zone",
                    )
                    break
                other = by_name.get(str(target).lower().rstrip("."))
                if other is None and str(target).lower().rstrip(".") in written:
                    continue  # that zone has its own errors, reported above
                if other is None:
                    guess = did_you_mean(str(target), by_name)
                    self.error(
                        where,
                        codes.BAD_PROTECT,
                        f"`protect` names {target}, which is not a zone in zones.yaml",
                        f"did you mean {guess}?" if guess else "name an allowlist zone defined in this file",
                    )
                elif other.role != "allow" or other.kind != "ip":
                    self.error(
                        where,
                        codes.BAD_PROTECT,
                        f"`protect` names {target}, a {other.kind} {other.role}list; "
                        "only ip allowlists can be protected",
                        "name an allowlist zone (kind: ip, role: allow)",
                    )
