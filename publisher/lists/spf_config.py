"""A zone's zones.yaml `spf:` -> `partners.SpfSettings`, checked for meaning.

The schema has checked the shape; here: only allow zones of kind ip, a `dir` the
zone's sources read (and none of its excludes), durations, provider names, the
shared pools' code. Problems go through the config reader's `error`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from publisher import codes
from publisher.addresses import AddressError, normalize_domain, parse_code
from publisher.lists.yamlmarks import Path
from publisher.model import glob_matches
from publisher.partners import SharedPools, SpfSchedule, SpfSettings

#: The config reader's `error(where, code, message, fix)`.
Report = Callable[[Path, str, str, str | None], None]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_EVERY = 60
#: The defaults (slotted dataclasses keep them only on instances).
_SCHEDULE, _SHARED = SpfSchedule(), SharedPools()
_SETTINGS = SpfSettings(dir="")


def duration(text: object) -> int:
    """`6h`, `14d`, `90` -> seconds (the schema has checked the form)."""
    raw = str(text).strip()
    unit = _UNITS.get(raw[-1:], 0)
    return int(raw[:-1]) * unit if unit else int(raw)


def read_spf(
    where: Path,
    raw: dict[str, Any],
    *,
    kind: str,
    role: str,
    sources: Sequence[str],
    excludes: Sequence[str],
    error: Report,
) -> SpfSettings | None:
    """The zone's `spf:`; None after reporting when it cannot work."""
    ok = True

    def bad(at: Path, message: str, fix: str | None) -> None:
        nonlocal ok
        ok = False
        error(at, codes.BAD_SPF_SETTINGS, message, fix)

    if kind != "ip" or role != "allow":
        bad(
            where,
            f"`spf:` is for allow zones of kind ip (this is a {role} zone of kind {kind})",
            "move `spf:` and the partners' `- spf:` entries to an allowlist of addresses",
        )
        return None  # its dir and the rest would only add fixes for a zone that cannot have them
    folder = str(raw["dir"]).strip("/")
    probe = f"{folder}/partner.example.yaml"
    if ".." in folder.split("/"):
        bad((*where, "dir"), f"spf dir '{folder}' must stay inside lists/", "write it relative to lists/, like wl/spf")
    elif not any(glob_matches(pattern, probe) for pattern in sources):
        bad(
            (*where, "dir"),
            f"the zone's sources ({', '.join(sources)}) do not read the generated files in {folder}/",
            f"add `{folder}/*.yaml` to the zone's sources",
        )
    elif any(glob_matches(pattern, probe) for pattern in excludes):
        bad((*where, "dir"), f"the generated files in {folder}/ would be read as excludes", "keep excludes elsewhere")
    sched = raw.get("schedule") or {}
    every = duration(sched.get("every", _SCHEDULE.every))
    if every < MIN_EVERY:
        bad((*where, "schedule", "every"), f"refreshing every {every} s is too often", "write 1m or more, like 6h")
    shared_raw = raw.get("shared") or {}
    providers: list[str] = []
    for i, text in enumerate(shared_raw.get("providers") or []):
        try:
            name, wild = normalize_domain(str(text))
        except AddressError as exc:
            bad((*where, "shared", "providers", i), f"provider {exc.message}", exc.fix)
            continue
        if wild:
            bad((*where, "shared", "providers", i), f"provider '{text}' cannot be a wildcard", "write the name alone")
        providers.append(name)
    code: int | None = None
    if "code" in shared_raw:
        try:
            code = parse_code(str(shared_raw["code"]))
        except AddressError as exc:
            ok = False
            error((*where, "shared", "code"), codes.BAD_CODE, exc.message, exc.fix)
    if not ok:
        return None
    return SpfSettings(
        dir=folder,
        schedule=SpfSchedule(
            every=every,
            jitter=float(sched.get("jitter", _SCHEDULE.jitter)),
            budget=int(sched.get("budget", _SCHEDULE.budget)),
        ),
        grace=duration(raw.get("grace", _SETTINGS.grace)),
        max_removed_share=float(raw.get("max_removed_share", _SETTINGS.max_removed_share)),
        shared=SharedPools(
            providers=tuple(providers),
            max_ipv4=int(shared_raw.get("max_ipv4", _SHARED.max_ipv4)),
            max_ipv6_64s=int(shared_raw.get("max_ipv6_64s", _SHARED.max_ipv6_64s)),
            code=code,
        ),
    )
