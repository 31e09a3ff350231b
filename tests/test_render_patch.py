"""Exports in proportion to the change: a patched `.zone` / `.rbldnsd` is byte for byte the full render."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.compile import render
from publisher.compile.compiler import compile_zone
from publisher.compile.patch import changed_regions, with_expired
from publisher.compile.render_patch import patch_export
from publisher.compile.zone import CompiledZone
from publisher.model import NameServer, Touched
from test_patch import CFG, T0, published, scenario, sources

NS_CFG = replace(CFG, ns=(NameServer("ns1.bl.example.test", ("192.0.2.53", "2001:db8::53")),))


def full(kind: str, zone: CompiledZone) -> bytes:
    out = io.StringIO()
    (render.render_bind if kind == "bind" else render.render_rbldnsd)(zone, out)
    return out.getvalue().encode("utf-8")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario(), st.sampled_from([dt.timedelta(0), dt.timedelta(hours=2)]), st.sampled_from([CFG, NS_CFG]))
def test_patched_exports_equal_the_full_render(case: tuple, later: dt.timedelta, cfg: object) -> None:  # type: ignore[type-arg]
    before_spec, after_spec, touched = case
    assert isinstance(cfg, type(CFG))
    old = replace(published(compile_zone(cfg, sources(before_spec), as_of=T0)))
    as_of = T0 + later
    new = compile_zone(cfg, sources(after_spec), as_of=as_of)
    new = replace(new, info=replace(new.info, serial=old.info.serial + 1))
    region = changed_regions(old, new, with_expired(touched, sources(after_spec), T0, as_of))
    for kind in ("bind", "rbldnsd"):
        runs = patch_export(kind, new, full(kind, old), old.info.serial, region)
        if region.v6:
            assert runs is None  # IPv6 changes render in full
        else:
            assert runs is not None
            assert b"".join(runs) == full(kind, new)


def test_a_file_from_other_settings_is_not_patched() -> None:
    zone = compile_zone(CFG, [], as_of=T0)
    other = compile_zone(replace(CFG, ttl=60), [], as_of=T0)
    assert patch_export("bind", zone, full("bind", other), 0, Touched()) is None
    assert patch_export("rbldnsd", zone, full("rbldnsd", other), 0, Touched()) is None
    # nothing changed: the head and the old data, copied whole
    assert b"".join(patch_export("bind", zone, full("bind", zone), 0, Touched()) or []) == full("bind", zone)
