"""load_lists over whole trees: the sample lists, and trees broken in ways only a tree shows."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from tests.conftest import LISTS

from publisher.errors import ValidationFailed
from publisher.lists.load import load_lists, require_clean
from publisher.lists.tree import DirTree

TREES = Path(__file__).resolve().parent / "data" / "bad" / "trees"
AS_OF = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def _codes(problems: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(p.code, str(p.location)) for p in problems]


def test_sample_lists_are_clean() -> None:
    loaded = load_lists(DirTree(LISTS), as_of=AS_OF)
    assert loaded.errors == [], "\n".join(p.format() for p in loaded.errors)
    assert loaded.warnings == []
    require_clean(loaded)
    assert loaded.config is not None
    paths = {zone: [s.path for s in srcs] for zone, srcs in loaded.sources.items()}
    # bl/delisted.yaml and dbl/delisted.yaml: the zones' excludes files, empty until a delisting
    # request is accepted (README, "Delisting and allowlisting requests")
    assert paths == {
        "bl.example.test": ["bl/abuse.yaml", "bl/feeds.txt", "bl/delisted.yaml"],
        "wl.example.test": ["wl/partners.yaml"],
        "dbl.example.test": ["dbl/domains.yaml", "dbl/feed.txt", "dbl/delisted.yaml"],
        "ebl.example.test": ["ebl/addresses.yaml", "ebl/feed.txt"],
    }
    wl = loaded.sources["wl.example.test"][0]
    assert all(meta.owner and meta.contact for meta in wl.entries.values())
    empty = [s.path for srcs in loaded.sources.values() for s in srcs if not len(s)]
    assert empty == ["bl/delisted.yaml", "dbl/delisted.yaml"]


def test_sample_lists_use_documentation_ranges_only() -> None:
    loaded = load_lists(DirTree(LISTS), as_of=AS_OF)
    assert loaded.config is not None
    doc_v4 = [(0xC0000200, 0xC00002FF), (0xC6336400, 0xC63364FF), (0xCB007100, 0xCB0071FF)]
    for zone, srcs in loaded.sources.items():
        if loaded.config.zone(zone).kind == "email":  # type: ignore[union-attr]
            # names are hashes; the addresses as written use example domains (one gmail address
            # shows its normalisation)
            for s in srcs:
                for meta in s.entries.values():
                    domain = meta.text.rpartition("@")[2]
                    assert domain.endswith((".example", "example.net", "googlemail.com")), meta.text
            continue
        for s in srcs:
            for a, b in zip(s.v4_start, s.v4_end):
                assert any(lo <= a and b <= hi for lo, hi in doc_v4), (s.path, a)
            for a in s.v6_start:
                assert a >> 96 == 0x20010DB8, s.path
            for name in s.dom_name:
                assert name.endswith((".example", "example.com", "example.net", "example.org")), name


def test_globs_empty_zones_and_unused_files() -> None:
    loaded = load_lists(DirTree(TREES / "globs"), as_of=AS_OF)
    assert _codes(loaded.problems) == [
        ("unused-file", "old/legacy.txt"),  # README.md is no list file: not reported
        ("glob-no-match", "zones.yaml:5:26"),
        ("empty-zone", "zones.yaml:6:5"),
        ("glob-no-match", "zones.yaml:9:15"),
    ]
    assert not loaded.problems[0].is_error
    assert "'bl/*.txt' of bl.example.test matches no file" in loaded.problems[1].message


def test_duplicates_across_files() -> None:
    loaded = load_lists(DirTree(TREES / "duplicates"), as_of=AS_OF)
    (problem,) = loaded.problems
    assert (problem.code, str(problem.location)) == ("duplicate", "bl/b.yaml:3:5")
    assert [str(loc) for _, loc in problem.related] == ["bl/a.yaml:2:5"]


def test_covers_protected_tree() -> None:
    loaded = load_lists(DirTree(TREES / "covers-protected"), as_of=AS_OF)
    assert _codes(loaded.problems) == [
        ("covers-protected", "bl/abuse.yaml:2:5"),
        ("covers-protected", "bl/feed.txt:2"),
        ("covers-protected", "bl/feed.txt:5"),  # 203.0.113.0/24 on line 3 has its hole: no error
    ]
    assert [str(loc) for _, loc in loaded.problems[1].related] == ["wl/partners.yaml:2:5"]


def test_require_clean_raises_with_every_error() -> None:
    loaded = load_lists(DirTree(TREES / "covers-protected"), as_of=AS_OF)
    with pytest.raises(ValidationFailed) as info:
        require_clean(loaded)
    assert len(info.value.problems) == 3
    # A caller that overrides a guard rail (publish --force) names its code.
    require_clean(loaded, ignore=frozenset({"covers-protected"}))


def test_every_file_is_checked_not_just_the_first(tmp_path: Path) -> None:
    shutil.copytree(LISTS, tmp_path / "lists")
    lists = tmp_path / "lists"
    (lists / "bl" / "abuse.yaml").write_text("entries:\n  - ip: 192.0.2.7/24\n  - ip: 192.0.2.300\n")
    (lists / "bl" / "feeds.txt").write_text("192.0.2.1\n10\n")
    (lists / "wl" / "partners.yaml").write_text("entries:\n  - ip: 198.51.100.25\n")
    loaded = load_lists(DirTree(lists), as_of=AS_OF)
    assert _codes(loaded.errors) == [
        ("host-bits", "bl/abuse.yaml:2:9"),
        ("bad-address", "bl/abuse.yaml:3:9"),
        ("bad-address", "bl/feeds.txt:2:1"),
        ("missing-owner", "wl/partners.yaml:2:5"),
    ]
    with pytest.raises(ValidationFailed):
        require_clean(loaded)


def test_broken_zones_yaml_stops_before_the_lists(tmp_path: Path) -> None:
    (tmp_path / "zones.yaml").write_text("zones:\n  - name: bl.example.test\n    kind: ip\n")
    loaded = load_lists(DirTree(tmp_path), as_of=AS_OF)
    assert loaded.config is None and loaded.sources == {}
    assert {p.code for p in loaded.errors} == {"missing-key"}
    with pytest.raises(ValidationFailed):
        require_clean(loaded)


def test_a_file_in_two_zones_is_reported_once(tmp_path: Path) -> None:
    (tmp_path / "zones.yaml").write_text(
        "zones:\n"
        "  - {name: a.example.test, kind: ip, role: block, sources: ['shared/*.txt']}\n"
        "  - {name: b.example.test, kind: ip, role: block, sources: ['shared/*.txt']}\n"
    )
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "feed.txt").write_text("192.0.2.1\n192.0.2.300\n")
    loaded = load_lists(DirTree(tmp_path), as_of=AS_OF)
    assert _codes(loaded.problems) == [("bad-address", "shared/feed.txt:2:1")]
    assert [len(loaded.sources[z][0]) for z in ("a.example.test", "b.example.test")] == [1, 1]
