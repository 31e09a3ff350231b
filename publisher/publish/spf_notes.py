"""What a plan says about partners declared by SPF (README, "Partner allowlists from SPF"). Pure.

A refresh commit (`publisher refresh-spf`) rewrites the generated files of an allowlist, and
its removals follow the partner's record within the zone's own share and grace: they are no
allowlist removal for the guard rails (`refresh_removals`, guards.py), but the plan names
them. A generated file whose record failed says so in every plan while it lasts: what went
wrong, since when, and until when its last good entries are kept (`spf_notes`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence

from publisher.model import SourceData, ZoneConfig
from publisher.partners import Generated
from publisher.publish.plan import ZonePlan
from publisher.spf.refresh import expiry_day
from publisher.spf.render import parse_iso

__all__ = ["refresh_removals", "spf_notes"]


def refresh_removals(zp: ZonePlan, cfg: ZoneConfig, new_paths: Collection[str]) -> dict[str, str]:
    """The files of the zone's plan whose removals a refresh made: path -> partner.

    A generated file of the zone (`<spf.dir>/<domain>.yaml`) that still is in the new commit
    (`new_paths`); a generated file removed whole (the partner no longer declared) is none."""
    if cfg.spf is None:
        return {}
    out: dict[str, str] = {}
    for path in zp.removed_from:
        partner = cfg.spf.partner_of(path)
        if partner is not None and path in new_paths:
            out[path] = partner
    return out


def spf_notes(
    plans: Sequence[ZonePlan], configs: Sequence[ZoneConfig], sources: Mapping[str, Sequence[SourceData]]
) -> tuple[str, ...]:
    """The plan's notes on generated files of the new commit: kept / failing ones, refresh removals."""
    new_paths = {s.path for srcs in sources.values() for s in srcs}
    by_name = {zp.name: zp for zp in plans}
    notes: list[str] = []
    for cfg in configs:
        spf = cfg.spf
        if spf is None:
            continue
        for source in sources.get(cfg.name, []):
            header = source.generated
            if header is not None and header.status != "ok" and spf.partner_of(source.path) == header.partner:
                notes.append(f"{cfg.name}: {header.partner}: {_trouble(header, source, spf.grace)}")
        zp = by_name.get(cfg.name)
        if zp is None:
            continue
        for path, partner in refresh_removals(zp, cfg, new_paths).items():
            n = zp.removed_from[path]
            notes.append(
                f"{cfg.name}: {n} entr{'y' if n == 1 else 'ies'} removed by SPF refresh ({partner}), "
                "not an allowlist removal"
            )
    return tuple(notes)


def _trouble(header: Generated, source: SourceData, grace: int) -> str:
    """`the SPF record is gone (NXDOMAIN) since 2026-11-30; its last good entries are kept until 2026-12-14`."""
    why = header.why or "the SPF record could not be used"
    since = f" since {header.since[:10]}" if header.since else ""
    if header.status == "failing" or not len(source):
        return f"{why}{since}; nothing of it is listed"
    latest = max((v.expires for v in source.values if v.expires is not None), default=None)
    start = parse_iso(header.since)
    until = _through(latest) if latest is not None else expiry_day(start, grace) if start is not None else None
    if until is None:
        return f"{why}{since}; its last good entries are kept"
    return f"{why}{since}; its last good entries are kept until {until}"


def _through(when: dt.datetime) -> str:
    """An `expires` as written: a date D parses to D+1 00:00 UTC ("through D")."""
    if (when.hour, when.minute, when.second, when.microsecond) == (0, 0, 0, 0):
        return (when - dt.timedelta(days=1)).date().isoformat()
    return when.strftime("%Y-%m-%d %H:%M UTC")
