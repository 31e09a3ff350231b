"""What curated files say about partners declared by SPF: `- spf: DOMAIN` entries and the
`generated:` header of the files `publisher refresh-spf` writes (README, "Partner allowlists
from SPF").

curated.py hands each `spf:` entry to `read_partner`, which checks where it stands (an allow
ip zone with `spf:` settings, not an excludes file), its domain and filters, and returns a
`partners.Partner` with the file's defaults merged in (or None after reporting, located).
`misused_keys` refuses the declaration-only keys on ip / domain entries; `read_generated`
reads a generated file's header, `edited` when its entries no longer match their digest.
The rules across files (duplicates, misplaced or undeclared generated files) are in
spf_checks.py. Pure.
"""

from __future__ import annotations

from typing import Any, Protocol

from publisher import codes
from publisher.addresses import AddressError, normalize_domain, parse_network
from publisher.errors import Location, Problem, Severity
from publisher.lists.bulk_syntax import looks_like_ip
from publisher.lists.yamlmarks import Marks, Path
from publisher.model import ZoneConfig
from publisher.partners import Generated, Partner, SpfFilter, entries_digest

__all__ = ["misused_keys", "read_generated", "read_partner", "retag"]

#: Entry keys a declaration refuses: they say something about listed addresses, and a
#: declaration lists none itself (`via` is refresh-spf's, in generated files).
_NOT_FOR_PARTNERS = {
    "allow_broad": "what a partner's record passes is held to the zone's max_prefix; "
    "set `max_prefix:` on the declaration to be stricter, or list a broader range by hand "
    "with `- ip:` and `allow_broad: true`",
    "expires": "remove `expires`; when the partnership ends remove the declaration, and "
    "`publisher refresh-spf` removes its generated file",
    "allow_confusable": "remove it; a partner's domain is written in its plain (A-label) form",
    "via": "remove it; `via` is written by refresh-spf in generated files",
}
_FILTER_FIX = "write a network (192.0.2.0/24, 2001:db8::/48) or a name (_spf.partner.example)"


class EntryReader(Protocol):
    """What read_partner needs of curated.py's reader of one file."""

    zone: ZoneConfig
    marks: Marks
    defaults: dict[str, Any]

    def problem(self, where: Location, code: str, message: str, fix: str | None) -> None: ...

    def field_loc(self, index: int, entry: dict[str, Any], key: str) -> Location: ...

    def code_of(self, index: int, entry: dict[str, Any], merged: dict[str, Any]) -> int: ...

    def check_added(self, index: int, entry: dict[str, Any], merged: dict[str, Any]) -> None: ...


def _where_refused(zone: ZoneConfig) -> tuple[str, str] | None:
    """(message, fix) when partners cannot be declared in a file read for `zone`."""
    move = "move the `- spf:` entry to a source file of an allowlist of addresses with `spf:` in zones.yaml"
    if zone.read_as_excludes:
        return f"a partner cannot be declared in an excludes file of {zone.name}", move
    if zone.role != "allow":
        return f"partners are declared in allowlists; {zone.name} is a blocklist", move
    if zone.kind != "ip":
        return f"{zone.name} is a domain zone; a partner's SPF record lists addresses", move
    if zone.spf is None:
        return (
            f"{zone.name} has no `spf:` settings in zones.yaml, so nothing would refresh this partner",
            f"add `spf: {{dir: DIR}}` to {zone.name} in zones.yaml (with `DIR/*.yaml` in its sources), or " + move,
        )
    return None


def _filter(reader: EntryReader, at: Path, text: str) -> SpfFilter | None:
    where = reader.marks.location(at)
    name = f"`{at[-2]}[{at[-1]}]`"
    if looks_like_ip(text):
        try:
            return SpfFilter(text, network=parse_network(text))
        except AddressError as exc:
            reader.problem(where, codes.BAD_PARTNER, f"{name}: {exc.message}", exc.fix or _FILTER_FIX)
            return None
    try:
        domain, wild = normalize_domain(text)
    except AddressError as exc:
        reader.problem(where, codes.BAD_PARTNER, f"{name}: {exc.message}", exc.fix or _FILTER_FIX)
        return None
    if wild:
        reader.problem(
            where,
            codes.BAD_PARTNER,
            f"{name} '{text}' is a wildcard; a name filter already covers the names below it",
            f"write the name alone: {domain}",
        )
        return None
    return SpfFilter(text, domain=domain)


def read_partner(reader: EntryReader, index: int, entry: dict[str, Any], before: list[Problem]) -> Partner | None:
    """The declaration `entries[index]`; None when it has an error (reported, located).

    `before` is the file's problem list: an error added to it since the call refuses the entry."""
    start = len(before)
    zone = reader.zone
    loc = reader.marks.location(("entries", index))
    at_spf = reader.marks.location(("entries", index, "spf"))
    text = str(entry["spf"])
    refused = _where_refused(zone)
    if refused is not None:
        reader.problem(at_spf, codes.BAD_PARTNER, *refused)
        return None
    domain = ""
    if "://" in text or "@" in text:
        name = text.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
        reader.problem(
            at_spf,
            codes.BAD_PARTNER,
            f"'{text}' is a URL or a mail address; `spf:` takes the domain whose SPF record lists the partner's "
            "gateways",
            f"write the domain alone: `spf: {name}`",
        )
    elif looks_like_ip(text):
        reader.problem(
            at_spf,
            codes.BAD_PARTNER,
            f"'{text}' is an address; `spf:` takes the mail domain whose SPF record lists the partner's gateways",
            "write the partner's domain (partner.example), or list the address itself with `- ip:`",
        )
    else:
        try:
            domain, wild = normalize_domain(text)
            if wild:
                reader.problem(
                    at_spf,
                    codes.BAD_PARTNER,
                    f"'{text}' is a wildcard; an SPF record belongs to one name",
                    f"write the name alone: {domain}",
                )
        except AddressError as exc:
            reader.problem(at_spf, codes.BAD_PARTNER, f"`spf`: {exc.message}", exc.fix)
    for key, fix in _NOT_FOR_PARTNERS.items():
        if key in entry:
            where = reader.marks.location(("entries", index, key))
            reader.problem(where, codes.BAD_PARTNER, f"`{key}` does not apply to an `spf:` entry", fix)
    filters: dict[str, tuple[SpfFilter, ...]] = {"include": (), "exclude": ()}
    for key in filters:
        value = entry.get(key)
        if isinstance(value, bool):
            if value:
                reader.problem(
                    reader.marks.location(("entries", index, key)),
                    codes.BAD_PARTNER,
                    f"`{key}: true` makes a hole in a listing, and a declaration lists nothing itself",
                    f"to leave some of the partner's addresses out, give `{key}:` a list of networks or SPF "
                    "names, like `exclude: [192.0.2.128/25, _spf.google.com]`",
                )
            continue
        found = [_filter(reader, ("entries", index, key, i), str(item)) for i, item in enumerate(value or [])]
        filters[key] = tuple(f for f in found if f is not None)
    merged = {**{k: v for k, v in reader.defaults.items() if k in _MERGED}, **entry}
    code = reader.code_of(index, entry, merged)
    reader.check_added(index, entry, merged)
    owner = str(merged.get("owner") or "").strip()
    if not owner:
        reader.problem(
            loc,
            codes.MISSING_OWNER,
            f"allowlist entries need an `owner` ({zone.name} is an allowlist): who operates the partner's gateways",
            "add `owner: <the partner>` to the entry, or to the file's `defaults`",
        )
    if any(p.is_error for p in before[start:]):
        return None
    prefix = entry.get("max_prefix") or {}
    for family, key, limit in ((4, "ipv4", zone.max_prefix_v4), (6, "ipv6", zone.max_prefix_v6)):
        if key in prefix and prefix[key] < limit:
            before.append(
                Problem(
                    reader.marks.location(("entries", index, "max_prefix", key)),
                    codes.BAD_PARTNER,
                    f"max_prefix /{prefix[key]} is broader than {zone.name}'s /{limit} for IPv{family}: "
                    f"the zone's applies, nothing broader than /{limit} is listed from the record",
                    f"write {key}: {limit} or more (stricter), or change the zone's max_prefix in zones.yaml",
                    severity=Severity.WARNING,
                )
            )
    ticket = merged.get("ticket")
    return Partner(
        domain=domain,
        location=loc,
        owner=owner,
        code=code,
        reason=str(merged.get("reason") or ""),
        contact=_text(merged.get("contact")),
        ticket=_text(ticket),
        by=_text(merged.get("by")),
        added=_text(merged.get("added")),
        max_prefix_v4=prefix.get("ipv4"),
        max_prefix_v6=prefix.get("ipv6"),
        include=filters["include"],
        exclude=filters["exclude"],
    )


#: The file defaults a declaration takes (others, like `expires`, are about listed entries).
_MERGED = frozenset({"owner", "contact", "code", "reason", "ticket", "by", "added"})


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def misused_keys(marks: Marks, index: int, entry: dict[str, Any]) -> list[Problem]:
    """Declaration keys on an ip / domain entry: `include`, `max_prefix` (a list as `exclude` is
    refused by the schema, and `retag` says why)."""
    subject = "an `ip:`" if "ip" in entry else "a `domain:`"
    return [
        Problem(
            marks.location(("entries", index, key)),
            codes.BAD_VALUE,
            f"`{key}` is for `- spf:` entries (partners declared by SPF), not for {subject} entry",
            "remove it, or declare the partner with `- spf: DOMAIN` in an allowlist with `spf:` settings",
        )
        for key in ("include", "max_prefix")
        if key in entry
    ]


def retag(problems: list[Problem], doc: dict[str, Any], marks: Marks) -> list[Problem]:
    """Two schema findings said for partners: "has both `ip` and `spf`" becomes BAD_PARTNER, and
    a list as `exclude` of an ip / domain entry says that such lists are for `spf:` entries."""
    both: dict[Location, str] = {}
    listed: set[Location] = set()
    for index, entry in enumerate(doc.get("entries") or []):
        if not isinstance(entry, dict):
            continue
        subject = next((k for k in ("ip", "domain") if k in entry), None)
        if subject is not None and "spf" in entry:
            both[marks.location(("entries", index))] = subject
        elif isinstance(entry.get("exclude"), list):
            listed.add(marks.location(("entries", index, "exclude")))
    if not both and not listed:
        return problems
    out = []
    for p in problems:
        subject = both.get(p.location)
        if subject is not None and p.code == codes.BAD_VALUE and "has both" in p.message:
            p = Problem(
                p.location,
                codes.BAD_PARTNER,
                f"an entry declares a partner (`spf:`) or lists an entry (`{subject}:`), not both",
                f"split it in two entries: `- spf: DOMAIN` declares the partner, `- {subject}: ...` lists by hand",
            )
        elif p.location in listed and p.code == codes.WRONG_TYPE:
            p = Problem(
                p.location,
                codes.WRONG_TYPE,
                p.message + "; a list of filters is for `- spf:` entries",
                "write `exclude: true` to make the entry a hole in a wider listing of this file, or remove it",
            )
        out.append(p)
    return out


def read_generated(data: bytes, doc: dict[str, Any], marks: Marks) -> Generated | None:
    """The `generated:` header of a file refresh-spf wrote (the schema has checked its shape)."""
    raw = doc.get("generated")
    if not isinstance(raw, dict):
        return None
    digest = str(raw.get("digest", ""))
    actual = entries_digest(data)
    # no line starting `entries:` at all: an entries-less file, nothing that could be edited
    edited = actual != digest if actual is not None else bool(doc.get("entries"))
    since = raw.get("since")
    return Generated(
        partner=str(raw.get("partner", "")),
        declared=str(raw.get("declared", "")),
        refreshed=str(raw.get("refreshed", "")),
        record=str(raw.get("record", "")),
        status=raw.get("status", "ok"),
        why=str(raw.get("why", "")),
        since=None if since is None else str(since),
        not_listed=tuple(str(x) for x in raw.get("not_listed") or ()),
        digest=digest,
        edited=edited,
        line=marks.location(("generated",), key=True).line or 0,
    )
