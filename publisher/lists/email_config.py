"""A zone's zones.yaml `email:` -> `emails.EmailSettings`, checked for meaning.

The schema has checked the shape; here: only zones of kind email take it (and every such
zone gets one, the defaults when absent), the suffix is DNS labels, the aliases and domain
lists are domain names, and what an email zone cannot have (`protect`, `spf:`, a `web:
requests` file) is refused. Problems go through the config reader's `error`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from publisher import codes
from publisher.addresses import AddressError, normalize_domain
from publisher.emails import ALL, LABEL_LENGTH, EmailSettings
from publisher.lists.yamlmarks import Path

#: The config reader's `error(where, code, message, fix)`.
Report = Callable[[Path, str, str, str | None], None]

_DEFAULTS = EmailSettings()


def read_email(
    where: Path, raw: dict[str, Any] | None, *, zone: str, merged: dict[str, Any], error: Report
) -> EmailSettings | None:
    """The `email:` of zone `zone` (kind email); None after reporting when it cannot work.
    `merged` is the zone's settings with the defaults, to refuse what an email zone cannot have."""
    ok = True
    zone_at = where[:-1]

    def bad(at: Path, message: str, fix: str | None) -> None:
        nonlocal ok
        ok = False
        error(at, codes.BAD_EMAIL_SETTINGS, message, fix)

    for key, why in (
        ("protect", "protects allowlists from blocklisted addresses, which an email zone has none of"),
        ("spf", "declares partners' sending addresses, an allowlist of kind ip"),
    ):
        if merged.get(key):
            bad((*zone_at, key), f"`{key}` {why}", f"remove `{key}` from the email zone")
    if (merged.get("web") or {}).get("requests"):
        bad(
            (*zone_at, "web", "requests"),
            "an email zone takes no requests from the web page (a request names an address or a domain)",
            "remove `requests`; delist an address by removing or excluding its entry in git",
        )
    raw = raw or {}
    algorithm = str(raw.get("hash", _DEFAULTS.hash))
    suffix = str(raw.get("suffix", "")).strip(".").lower()
    if suffix:
        try:
            name, wild = normalize_domain(suffix)
            if wild or name != suffix:
                raise AddressError(f"'{suffix}' is not a plain DNS label", None)
        except AddressError as exc:
            bad((*where, "suffix"), f"email suffix {exc.message}", "write DNS labels, like _email")
        if LABEL_LENGTH[algorithm] + 1 + len(suffix) + 1 + len(zone) > 253:
            bad((*where, "suffix"), "a hash, the suffix and the zone name make a name over 253 characters", None)

    def domains(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = raw.get(key)
        if value is None:
            return default
        if value == "all":
            return (ALL,)
        if value == "none":
            return ()
        out: list[str] = []
        for i, text in enumerate(value):
            out.append(domain((*where, key, i), str(text)))
        return tuple(dict.fromkeys(out))

    def domain(at: Path, text: str) -> str:
        try:
            name, wild = normalize_domain(text)
        except AddressError as exc:
            bad(at, exc.message, exc.fix)
            return text
        if wild:
            bad(at, f"'{text}' is a wildcard", "name the mail domain itself, like gmail.com")
        return name

    strip_tags = domains("strip_tags", _DEFAULTS.strip_tags)
    strip_dots = domains("strip_dots", _DEFAULTS.strip_dots)
    aliases = _DEFAULTS.aliases
    if "aliases" in raw:
        pairs = [
            (domain((*where, "aliases", frm), str(frm)), domain((*where, "aliases", frm), str(to)))
            for frm, to in (raw["aliases"] or {}).items()
        ]
        for frm, to in pairs:
            if frm == to:
                bad((*where, "aliases", frm), f"alias {frm} names itself", "remove it")
            elif any(to == other for other, _ in pairs):
                bad(
                    (*where, "aliases", frm),
                    f"alias {frm} -> {to} leads to another alias ({to} -> ...)",
                    "point every alias at the final domain",
                )
        aliases = tuple(sorted(pairs))
    if not ok:
        return None
    return EmailSettings(
        hash=algorithm,  # type: ignore[arg-type]  # the schema's enum
        suffix=suffix,
        strip_tags=strip_tags,
        strip_dots=strip_dots,
        aliases=aliases,
    )
