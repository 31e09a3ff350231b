"""Reading list files into `SourceData`: curated YAML here, bulk text in bulk.py.

A curated file is loaded with marks (yamlmarks.py), checked against
`schemas/list.schema.json` (schema.py), then each entry is parsed and checked on
its own (checks.check_network / check_domain). Every problem lands in
`SourceData.problems` with its `path:line:col`; an entry with a problem is not
stored, and load.require_clean refuses to compile while any error remains.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from publisher import codes
from publisher.addresses import AddressError, Network, normalize_domain, parse_code, parse_network
from publisher.errors import Location, Problem, Severity
from publisher.lists.breadth import first_per_code
from publisher.lists.bulk import read_bulk_source
from publisher.lists.bulk_syntax import looks_like_ip
from publisher.lists.checks import check_domain, check_network
from publisher.lists.email_entries import EmailNamer, looks_like_address
from publisher.lists.schema import check_paths
from publisher.lists.spf_decl import misused_keys, read_generated, read_partner, retag
from publisher.lists.txt_limit import FIX as TXT_FIX
from publisher.lists.txt_limit import reason_excess
from publisher.lists.yamlmarks import Marks, Path, load_yaml
from publisher.model import EntryMeta, SourceData, Value, ZoneConfig

__all__ = ["CURATED_SUFFIXES", "BULK_SUFFIXES", "read_source", "read_yaml_source", "read_bulk_source", "parse_expires"]

CURATED_SUFFIXES = (".yaml", ".yml", ".json")
BULK_SUFFIXES = (".txt",)

#: The keys that name what an entry lists; an email zone's are EMAIL_SUBJECTS.
SUBJECTS = ("ip", "domain", "email", "hash")
EMAIL_SUBJECTS = ("email", "hash")

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
DATE_FIX = "write YYYY-MM-DD (through that day, UTC) or an ISO 8601 time like 2027-01-31T12:00:00Z"


def _hash_shaped(text: str) -> bool:
    """Could `text` be a ready hash (hex or base32 of at least an md5's length)?"""
    raw = text.strip().lower()
    return len(raw) >= 32 and all(c in "0123456789abcdefghijklmnopqrstuvwxyz" for c in raw)


def read_source(path: str, data: bytes, zone: ZoneConfig) -> SourceData:
    """Read one list file by its kind: curated (.yaml/.yml/.json) or bulk (.txt)."""
    if path.endswith(CURATED_SUFFIXES):
        return read_yaml_source(path, data, zone)
    if path.endswith(BULK_SUFFIXES):
        return read_bulk_source(path, data, zone)
    source = SourceData(path)
    source.problems.append(
        Problem(
            Location(path),
            codes.UNKNOWN_FORMAT,
            f"{path} is neither a curated list (.yaml) nor a bulk list (.txt)",
            "rename the file, or narrow the zone's source glob so that it does not match it",
        )
    )
    return source


def parse_expires(text: str) -> dt.datetime:
    """`expires` -> aware UTC datetime. A plain date D means 'through D': D+1 00:00 UTC."""
    text = text.strip()
    if _DATE.fullmatch(text):
        day = dt.date.fromisoformat(text)
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) + dt.timedelta(days=1)
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)  # times without an offset are UTC, as in zones
    return when.astimezone(dt.UTC)


def _parse_added(text: str) -> None:
    if _DATE.fullmatch(text.strip()):
        dt.date.fromisoformat(text.strip())
    else:
        dt.datetime.fromisoformat(text.strip())


class _EntryReader:
    """Parses the entries of one curated file into a SourceData."""

    def __init__(self, source: SourceData, zone: ZoneConfig, marks: Marks, defaults: dict[str, Any]) -> None:
        self.source = source
        self.zone = zone
        self.marks = marks
        self.defaults = defaults
        self.value_ids: dict[Value, int] = {}
        self.namer: EmailNamer | None = None  # an email zone's, made at its first entry

    def problem(self, where: Location, code: str, message: str, fix: str | None) -> None:
        self.source.problems.append(Problem(where, code, message, fix))

    def field_loc(self, index: int, entry: dict[str, Any], key: str) -> Location:
        """Where a field's value was written: in the entry, or in the file's defaults."""
        where: Path = ("entries", index, key) if key in entry else ("defaults", key)
        return self.marks.location(where)

    def value(self, value: Value) -> int:
        idx = self.value_ids.get(value)
        if idx is None:
            idx = self.value_ids[value] = self.source.add_value(value)
        return idx

    def code_of(self, index: int, entry: dict[str, Any], merged: dict[str, Any]) -> int:
        """The entry's code (its own, else the file's default, else the zone's); reported when bad."""
        if "code" in merged:
            try:
                return parse_code(str(merged["code"]))
            except AddressError as exc:
                self.problem(self.field_loc(index, entry, "code"), codes.BAD_CODE, exc.message, exc.fix)
        return self.zone.code

    def check_added(self, index: int, entry: dict[str, Any], merged: dict[str, Any]) -> None:
        if "added" in merged:
            try:
                _parse_added(str(merged["added"]))
            except ValueError as exc:
                self.problem(
                    self.field_loc(index, entry, "added"),
                    codes.BAD_DATE,
                    f"`added` '{merged['added']}' is not a date: {exc}",
                    DATE_FIX,
                )

    def read(self, index: int, entry: dict[str, Any]) -> None:
        if "spf" in entry:  # a partner declared by SPF lists nothing itself (refresh-spf writes its file)
            partner = read_partner(self, index, entry, self.source.problems)
            if partner is not None:
                self.source.partners.append(partner)
            return
        misused = misused_keys(self.marks, index, entry)
        if misused:
            self.source.problems.extend(misused)
            return
        merged = {**self.defaults, **entry}
        loc = self.marks.location(("entries", index))
        line, col = loc.line or 0, loc.col or 0
        before = len(self.source.problems)
        code = self.code_of(index, entry, merged)
        expires: dt.datetime | None = None
        if "expires" in merged:
            try:
                expires = parse_expires(str(merged["expires"]))
            except ValueError as exc:
                self.problem(
                    self.field_loc(index, entry, "expires"),
                    codes.BAD_DATE,
                    f"`expires` '{merged['expires']}' is not a date: {exc}",
                    DATE_FIX,
                )
        self.check_added(index, entry, merged)
        exclude = bool(merged.get("exclude", False))
        allow_broad = bool(merged.get("allow_broad", False))
        for key in ("allow_broad", "allow_confusable"):
            if merged.get(key) and not str(merged.get("reason") or "").strip():
                self.problem(
                    self.field_loc(index, entry, key),
                    codes.MISSING_REASON,
                    f"`{key}: true` needs a `reason` saying why the entry is meant as written",
                    "add `reason: ...` to the entry (it also goes into the TXT answer)",
                )
        if self.zone.role == "allow" and not exclude and not merged.get("owner"):
            self.problem(
                loc,
                codes.MISSING_OWNER,
                f"allowlist entries need an `owner` ({self.zone.name} is an allowlist)",
                "add `owner: <who operates these addresses>` to the entry, or to the file's `defaults`",
            )
        subject = next((key for key in SUBJECTS if key in entry), "domain")
        text = str(entry[subject])
        if subject in EMAIL_SUBJECTS or self.zone.kind == "email":
            rows = self._email(index, subject, text)
        else:
            rows = self._subject(index, entry, subject, text, exclude, allow_broad)
        if rows is None or any(p.is_error for p in self.source.problems[before:]):
            return  # an entry with an error is never stored
        reason = str(merged.get("reason", ""))
        too_long = None if exclude else reason_excess(self.zone, code, reason)
        if too_long:
            where = self.field_loc(index, entry, "reason") if "reason" in merged else loc
            self.problem(where, codes.TXT_TOO_LONG, f"this reason {too_long}", TXT_FIX)
            return
        value = self.value(Value(code, reason, expires, exclude))
        src = self.source
        for row in rows:
            if isinstance(row, Network):
                src.add_network(row.family, row.start, row.end, value, line)
            else:
                src.add_domain(row[0], row[1], value, line)
        ticket = merged.get("ticket")
        src.entries[line] = EntryMeta(
            line=line,
            col=col,
            text=text,
            value=value,
            added=str(merged["added"]) if "added" in merged else None,
            by=merged.get("by"),
            ticket=str(ticket) if ticket is not None else None,
            owner=merged.get("owner"),
            contact=merged.get("contact"),
            allow_broad=allow_broad,
            via=str(entry["via"]) if "via" in entry else None,
        )

    def _email(self, index: int, subject: str, text: str) -> list[Network | tuple[str, bool]] | None:
        """An `email:` or `hash:` entry (an email zone's only kinds), or a wrong-kind one."""
        where = self.marks.location(("entries", index, subject))
        zone = self.zone
        if (subject in EMAIL_SUBJECTS) != (zone.kind == "email"):
            self.problem(where, codes.WRONG_FAMILY, *wrong_kind(subject, text, zone))
            return None
        assert zone.email is not None  # every email zone has its settings (config.py)
        namer = self.namer = self.namer or EmailNamer(zone.email)
        try:
            name = namer.address(text)[1] if subject == "email" else namer.ready_hash(text)
        except AddressError as exc:
            fix = exc.fix
            if subject == "email" and not looks_like_address(text) and _hash_shaped(text):
                fix = f"{fix}; a ready hash is written `- hash: {text.strip()}`"
            self.problem(where, exc.code, exc.message, fix)  # BAD_EMAIL or BAD_HASH
            return None
        return [(name, False)]

    def _subject(
        self, index: int, entry: dict[str, Any], subject: str, text: str, exclude: bool, allow_broad: bool
    ) -> list[Network | tuple[str, bool]] | None:
        where = self.marks.location(("entries", index, subject))
        zone = self.zone
        if subject == "ip":
            if zone.kind != "ip":
                self.problem(where, codes.WRONG_FAMILY, *wrong_kind(subject, text, zone))
                return None
            try:
                net = parse_network(text)
            except AddressError as exc:
                self.problem(where, exc.code, exc.message, exc.fix)  # BAD_ADDRESS or HOST_BITS
                return None
            for code, message, fix in check_network(zone, net, text, exclude=exclude, allow_broad=allow_broad):
                self.problem(where, code, message, fix)
            return [net]
        if zone.kind != "domain":
            self.problem(where, codes.WRONG_FAMILY, *wrong_kind(subject, text, zone))
            return None
        if looks_like_ip(text):
            self.problem(
                where,
                codes.WRONG_FAMILY,
                f"'{text}' is an IP address, but {zone.name} is a domain zone",
                "list addresses in an ip zone's files with `ip:`",
            )
            return None
        try:
            name, wild = normalize_domain(text)
        except AddressError as exc:
            if exc.code != codes.CONFUSABLE_DOMAIN or not entry.get("allow_confusable"):
                self.problem(where, exc.code, exc.message, exc.fix)
                return None
            # Allowed on purpose: list what mail software queries for the written form, and say so.
            self.source.problems.append(Problem(where, exc.code, exc.message, None, severity=Severity.WARNING))
            try:
                name, wild = normalize_domain(text, allow_confusable=True)
            except AddressError as again:
                self.problem(where, again.code, again.message, again.fix)
                return None
        rows = [(name, False), (name, True)] if text.strip().startswith(".") else [(name, wild)]  # `.name`: both
        findings = [
            f
            for n, w in reversed(rows)
            for f in check_domain(zone, n, w, text, exclude=exclude, allow_broad=allow_broad)
        ]
        for code, message, fix in first_per_code(findings):
            self.problem(where, code, message, fix)
        return list(rows)


def wrong_kind(subject: str, text: str, zone: ZoneConfig) -> tuple[str, str]:
    """(message, fix) for an entry whose key (`ip`, `domain`, `email`, `hash`) does not fit the zone's kind."""
    what = {"ip": "an IP entry", "domain": "a domain entry", "email": "an email entry", "hash": "a hash entry"}[subject]
    article = "an" if zone.kind in ("ip", "email") else "a"
    message = f"'{text}' is {what}, but {zone.name} is {article} {zone.kind} zone"
    if subject in EMAIL_SUBJECTS:
        return message, "move it to a list file of an email zone (zones.yaml `kind: email`)"
    if zone.kind == "email":
        home = "an ip" if subject == "ip" else "a domain"
        return message, f"move it to a list file of {home} zone; an email zone lists `email:` addresses or `hash:`es"
    if subject == "ip":
        return message, "move it to a list file of an ip zone, or write it as `domain:`"
    return message, "move it to a list file of a domain zone, or write an address as `ip:`"


def read_yaml_source(path: str, data: bytes, zone: ZoneConfig) -> SourceData:
    """Parse a curated list file; every problem (syntax, shape, entries) goes to `.problems`."""
    source = SourceData(path)
    loaded = load_yaml(path, data)
    source.problems.extend(loaded.problems)
    if loaded.data is None:
        if not loaded.problems:
            source.problems.append(
                Problem(
                    Location(path, 1, 1),
                    codes.NOT_A_MAPPING,
                    "the file is empty",
                    "add `entries:` with at least one entry",
                )
            )
        return source
    problems, bad_paths = check_paths(loaded.data, loaded.marks, "list")
    doc = loaded.data
    if not isinstance(doc, dict):
        source.problems.extend(problems)
        return source
    source.problems.extend(retag(problems, doc, loaded.marks))
    if not any(p[:1] == ("generated",) for p in bad_paths):
        source.generated = read_generated(data, doc, loaded.marks)
    if not isinstance(doc.get("entries", []), list):
        return source
    if any(p[:1] == ("defaults",) or p == ("entries",) for p in bad_paths):
        return source  # defaults feed every entry: checking entries now would only repeat the problem
    bad_entries = {p[1] for p in bad_paths if len(p) >= 2 and p[0] == "entries"}
    defaults = doc.get("defaults") or {}
    reader = _EntryReader(source, zone, loaded.marks, defaults)
    for index, entry in enumerate(doc.get("entries") or []):
        if index in bad_entries or not isinstance(entry, dict):
            continue
        reader.read(index, entry)
    return source
