"""Declarations, zones and canned expansions for the refresh-spf tests (no DNS)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from publisher.addresses import parse_code, parse_network
from publisher.errors import Location
from publisher.lists.curated import read_yaml_source
from publisher.model import SourceData, ZoneConfig
from publisher.partners import Partner, SharedPools, SpfFilter, SpfSettings
from publisher.spf.refresh import PartnerRefresh, refresh_partner
from publisher.spf.result import Expansion, Found, Unlisted

NOW = dt.datetime(2026, 11, 30, 7, 12, 3, tzinfo=dt.UTC)
DOMAIN = "partner.example"
ZONE_CODE = parse_code("127.0.10.1")
PARTNER_CODE = parse_code("127.0.10.2")
SHARED_CODE = parse_code("127.0.10.9")


def zone(**spf: object) -> ZoneConfig:
    """wl.example.test: an allow ip zone reading wl/ and wl/spf/, max_prefix /16 and /32."""
    settings = SpfSettings(dir="wl/spf")
    shared = spf.pop("shared", None)
    settings = replace(settings, **spf)  # type: ignore[arg-type]
    if isinstance(shared, SharedPools):
        settings = replace(settings, shared=shared)
    return ZoneConfig(
        "wl.example.test", "ip", "allow", ("wl/*.yaml", "wl/spf/*.yaml"), ZONE_CODE, "allowed", spf=settings
    )


def spf_filter(text: str) -> SpfFilter:
    if text[0].isdigit() or ":" in text:
        return SpfFilter(text, network=parse_network(text))
    return SpfFilter(text, domain=text)


def partner(domain: str = DOMAIN, **fields: object) -> Partner:
    include = tuple(spf_filter(t) for t in fields.pop("include", ()))  # type: ignore[attr-defined]
    exclude = tuple(spf_filter(t) for t in fields.pop("exclude", ()))  # type: ignore[attr-defined]
    base = Partner(
        domain,
        Location("wl/partners.yaml", 31, 5),
        owner="Example Partner Ltd",
        code=PARTNER_CODE,
        contact=f"postmaster@{domain}",
        ticket="PARTNER-12",
        include=include,
        exclude=exclude,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def found(network: str, *chain: str) -> Found:
    """A network passed by `chain` (the partner's domain prepended)."""
    return Found(parse_network(network), (DOMAIN, *chain))


def ok(*founds: Found, unlisted: tuple[Unlisted, ...] = (), record: str = "v=spf1 -all") -> Expansion:
    return Expansion(DOMAIN, "ok", record=record, found=founds, unlisted=unlisted, queries=3)


def failed(outcome: str, why: str) -> Expansion:
    return Expansion(DOMAIN, outcome, why=why)  # type: ignore[arg-type]


def read_back(result: PartnerRefresh, cfg: ZoneConfig) -> SourceData:
    """The generated file as the lists read it (what the next refresh gets as `old`)."""
    assert result.text is not None
    source = read_yaml_source(result.path, result.text, cfg)
    assert [p for p in source.problems if p.is_error] == []
    return source


def refresh(
    expansion: Expansion,
    before: PartnerRefresh | None = None,
    *,
    cfg: ZoneConfig | None = None,
    who: Partner | None = None,
    now: dt.datetime = NOW,
) -> PartnerRefresh:
    """One refresh on top of `before` (its file read back, as refresh-spf reads it from HEAD)."""
    cfg = cfg or zone()
    old = read_back(before, cfg) if before is not None and before.text is not None else None
    old_text = before.text if before is not None else None
    return refresh_partner(who or partner(), cfg, expansion, old, now, old_text=old_text)


def listed(result: PartnerRefresh) -> list[str]:
    return [str(e.network) for e in result.entries]
