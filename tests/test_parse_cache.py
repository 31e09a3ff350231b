"""zones/.cache: publishes read parses from it (hit), patch a changed feed (miss), and shrug off
damage with a note (corruption); the plan and what is published never depend on the cache."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from tests.test_vcs import commit_all, init_repo, write

from publisher.model import Touched
from publisher.publish import artifacts
from publisher.publish.cache import CACHE_DIR, ParseCache, source_key
from publisher.publish.manifest import load_published
from publisher.publish.release import prepare, publish

NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(hours=1)

ZONES = """\
zones:
  - name: bl.example.test
    kind: ip
    role: block
    sources: ["*.txt", "*.yaml"]
    code: "127.0.0.2"
    txt: "{reason}"
"""
HEAD = "# the feed, with a first line longer than the sixty-four bytes a patch leaves alone\n"
FEED = HEAD + ":3:listed: $\n" + "".join(f"10.0.{i >> 8}.{i & 255}\n" for i in range(600))
CURATED = "entries:\n  - ip: 192.0.2.9\n    reason: curated\n"


def _repo(tmp_path: Path) -> tuple[Path, Path]:
    repo = init_repo(tmp_path / "repo", {"zones.yaml": ZONES, "feed.txt": FEED, "hand.yaml": CURATED})
    return repo, tmp_path / "zones"


def _change(lists: Path, text: str) -> None:
    write(lists, {"feed.txt": text})
    commit_all(lists.parent, "feed")


def _entries(zones: Path) -> list[Path]:
    return sorted((zones / CACHE_DIR).glob("*.src"))


def _plan_text(lists: Path, zones: Path) -> list[tuple[object, ...]]:
    p = prepare(lists, zones, now=LATER)
    return [(z.name, z.changes, z.totals, z.measures, z.listings_before, z.listings_after) for z in p.plan.zones]


def test_a_publish_fills_the_cache_and_the_next_one_patches_the_feed(tmp_path: Path) -> None:
    lists, zones = _repo(tmp_path)
    publish(lists, zones, now=NOW)
    assert len(_entries(zones)) == 2  # feed.txt and hand.yaml, parsed for the new zone
    _change(lists, FEED + "192.0.2.77\n")
    p = prepare(lists, zones, now=LATER)
    zp = p.plan.zone("bl.example.test")
    assert zp is not None and [(c.kind, c.entry.text, c.entry.line) for c in zp.changes] == [
        ("added", "192.0.2.77", 603)
    ]
    assert not p.plan.notes
    # without the cache (deleted: always safe) the plan is the same
    shutil.rmtree(zones / CACHE_DIR)
    q = prepare(lists, zones, now=LATER)
    assert [(z.changes, z.totals, z.measures) for z in q.plan.zones] == [
        (z.changes, z.totals, z.measures) for z in p.plan.zones
    ]


def _offered(lists: Path, zones: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What prepare offers compile_tree as `reuse`, per zone."""
    from publisher.publish import release

    seen: dict[str, Any] = {}
    real = release.compile_tree

    def spy(*args: Any, **kwargs: Any) -> Any:
        build = real(*args, **kwargs)  # the reuse map is read once the new lists are loaded
        reuse = kwargs["reuse"]
        seen.update({name: reuse[name] for name in reuse})
        return build

    monkeypatch.setattr(release, "compile_tree", spy)
    release.prepare(lists, zones, now=LATER)
    return seen


def test_the_compile_is_offered_what_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lists, zones = _repo(tmp_path)
    publish(lists, zones, now=NOW)
    _change(lists, FEED.replace("10.0.0.5\n", "") + "192.0.2.77\n")
    reuse = _offered(lists, zones, monkeypatch)["bl.example.test"]
    assert reuse.touched == Touched(v4=((0x0A000005, 0x0A000005), (0xC000024D, 0xC000024D)))
    assert reuse.as_of == NOW and reuse.zone.info.name == "bl.example.test"


def test_zone_settings_changed_means_touched_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lists, zones = _repo(tmp_path)
    publish(lists, zones, now=NOW)
    write(lists, {"zones.yaml": ZONES.replace('txt: "{reason}"', 'txt: "listed: {reason}"')})
    commit_all(lists.parent, "txt")
    assert _offered(lists, zones, monkeypatch)["bl.example.test"].touched is None


def test_an_unchanged_feed_touches_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lists, zones = _repo(tmp_path)
    publish(lists, zones, now=NOW)
    write(lists, {"other.txt": "# nothing yet\n"})
    commit_all(lists.parent, "an empty feed")
    assert _offered(lists, zones, monkeypatch)["bl.example.test"].touched == Touched()


def test_a_damaged_entry_is_noted_ignored_and_replaced(tmp_path: Path) -> None:
    lists, zones = _repo(tmp_path)
    publish(lists, zones, now=NOW)
    want = _plan_text(lists, zones)
    for entry in _entries(zones):
        data = bytearray(entry.read_bytes())
        data[len(data) // 2] ^= 0xFF
        entry.write_bytes(bytes(data[:-3]) if entry.stat().st_size % 2 else bytes(data))
    p = prepare(lists, zones, now=LATER)
    assert [
        (z.name, z.changes, z.totals, z.measures, z.listings_before, z.listings_after) for z in p.plan.zones
    ] == want
    damaged = [n for n in p.plan.notes if "parse cache entry" in n and "damaged" in n]
    assert len(damaged) == 2, p.plan.notes
    assert all(e.stat().st_size > 100 for e in _entries(zones))  # parsed again and stored whole
    assert not prepare(lists, zones, now=LATER).plan.notes


def test_an_entry_of_another_file_is_not_trusted(tmp_path: Path) -> None:
    lists, zones = _repo(tmp_path)
    publish(lists, zones, now=NOW)
    entries = {e.name: e.read_bytes() for e in _entries(zones)}
    a, b = sorted(entries)
    (zones / CACHE_DIR / a).write_bytes(entries[b])  # a valid entry, under the wrong key
    p = prepare(lists, zones, now=LATER)
    assert any("holds" in n for n in p.plan.notes), p.plan.notes
    assert [(z.name, z.changes, z.totals) for z in p.plan.zones] == [
        (z.name, z.changes, z.totals) for z in prepare(lists, zones, now=LATER).plan.zones
    ]


def test_generation_pruning_leaves_the_cache_alone(tmp_path: Path) -> None:
    lists, zones = _repo(tmp_path)
    publish(lists, zones, now=NOW)
    for i in range(artifacts.KEEP_GENERATIONS + 1):
        _change(lists, FEED + f"192.0.2.{i + 1}\n")
        publish(lists, zones, now=NOW + dt.timedelta(minutes=i + 1))
    assert _entries(zones) and load_published(zones).zones


def test_the_cache_keeps_the_most_recently_used(tmp_path: Path) -> None:
    from publisher.model import SourceData, ZoneConfig

    zone = ZoneConfig("bl.example.test", "ip", "block", ("*.txt",), 0x7F000002, "{reason}")
    cache = ParseCache(tmp_path, max_entries=3)
    keys = [source_key("f.txt", f"{i:040x}", zone) for i in range(5)]
    for i, key in enumerate(keys):
        cache.put(key, SourceData("f.txt"))
        os.utime(tmp_path / CACHE_DIR / f"{key}.src", (1000 + i, 1000 + i))
    assert cache.get(keys[0], "f.txt") is not None  # used now: the newest
    cache.prune()
    assert sorted(p.stem for p in _entries(tmp_path)) == sorted([keys[0], keys[3], keys[4]])


def test_the_key_changes_with_what_parsing_reads_only(tmp_path: Path) -> None:
    from publisher.model import Secondary, ZoneConfig

    zone = ZoneConfig("bl.example.test", "ip", "block", ("*.txt",), 0x7F000002, "{reason}")
    key = source_key("f.txt", "ab" * 20, zone)
    assert source_key("f.txt", "ab" * 20, dataclasses.replace(zone, sources=("x/*",))) == key
    assert source_key("f.txt", "ab" * 20, dataclasses.replace(zone, secondaries=(Secondary("192.0.2.1"),))) == key
    assert source_key("f.txt", "ab" * 20, dataclasses.replace(zone, max_prefix_v4=8)) != key
    assert source_key("f.txt", "cd" * 20, zone) != key
    assert source_key("g.txt", "ab" * 20, zone) != key


def test_a_cache_folder_that_is_a_link_is_not_used(tmp_path: Path) -> None:
    lists, zones = _repo(tmp_path)
    zones.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (zones / CACHE_DIR).symlink_to(elsewhere)
    p = prepare(lists, zones, now=NOW)
    assert not list(elsewhere.iterdir())
    assert any("not a folder" in n for n in p.plan.notes)


def test_a_plan_before_any_publish_creates_no_zones_folder(tmp_path: Path) -> None:
    lists, zones = _repo(tmp_path)
    assert not zones.exists()
    prepare(lists, zones, now=NOW)
    assert not zones.exists()  # the cache lives in zones/ and never creates it
