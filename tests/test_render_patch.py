"""Exports in proportion to the change: a patched `.zone` / `.rbldnsd` is byte for byte the full render."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.compile import render
from publisher.compile.compiler import compile_zone
from publisher.compile.patch import changed_regions, with_expired
from publisher.compile.render_patch import materialise, patch_export
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
        old_bytes = full(kind, old)
        runs = patch_export(kind, new, old_bytes, old.info.serial, region)
        if region.v6:
            assert runs is None  # IPv6 changes render in full
        else:
            assert runs is not None
            assert materialise(runs, old_bytes) == full(kind, new)


def test_a_file_from_other_settings_is_not_patched() -> None:
    zone = compile_zone(CFG, [], as_of=T0)
    other = compile_zone(replace(CFG, ttl=60), [], as_of=T0)
    assert patch_export("bind", zone, full("bind", other), 0, Touched()) is None
    assert patch_export("rbldnsd", zone, full("rbldnsd", other), 0, Touched()) is None
    # nothing changed: the head and the old data, copied whole
    same = full("bind", zone)
    assert materialise(patch_export("bind", zone, same, 0, Touched()) or [], same) == same


def test_a_republish_copies_the_previous_files_and_matches_a_full_write(tmp_path: Path) -> None:
    from publisher.lists.tree import DirTree
    from publisher.publish.build import Reuse, compile_tree, write_build
    from publisher.publish.manifest import Source, load_published

    lists = tmp_path / "lists"
    (lists / "bl").mkdir(parents=True)
    (lists / "zones.yaml").write_text(
        "zones:\n  - name: bl.example.test\n    kind: ip\n    role: block\n    sources: [bl/*.txt]\n", encoding="utf-8"
    )
    feed = lists / "bl" / "feed.txt"
    feed.write_text("".join(f"10.0.{i}.{j}\n" for i in range(8) for j in range(0, 250, 3)), encoding="utf-8")
    source = Source(kind="worktree", path="lists")
    first = compile_tree(DirTree(lists), as_of=T0)
    for out in ("inc", "full", "tampered"):
        write_build(tmp_path / out, first, source=source, now=T0)
    with feed.open("a", encoding="utf-8") as fh:
        fh.write("10.0.3.1\n")
    later = T0 + dt.timedelta(days=1)
    cfg = first.config.zones[0]
    files = [f"{cfg.name}.zone", f"{cfg.name}.rbldnsd"]
    old = (tmp_path / "tampered" / "current" / files[0]).resolve()
    old.write_text(old.read_text("utf-8").replace("10.0.0.0", "10.9.9.9"), encoding="utf-8")
    for out in ("inc", "tampered"):
        reuse = Reuse(load_published(tmp_path / out).zones[cfg.name], cfg, T0, Touched(v4=((0x0A000301, 0x0A000301),)))
        build = compile_tree(DirTree(lists), as_of=later, reuse={cfg.name: reuse})
        assert build.regions[cfg.name] is not None
        write_build(tmp_path / out, build, source=source, now=later)
    write_build(tmp_path / "full", compile_tree(DirTree(lists), as_of=later), source=source, now=later)
    for name in files:
        want = (tmp_path / "full" / "current" / name).read_bytes()
        assert b"\n1.3.0.10\t" in want or b"\n10.0.3.0-10.0.3.1 " in want  # the new line is there
        assert (tmp_path / "inc" / "current" / name).read_bytes() == want
        assert (tmp_path / "tampered" / "current" / name).read_bytes() == want  # damaged: rendered in full
