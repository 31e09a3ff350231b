"""zones.yaml `excludes:`: local files of holes punched into every listing of a zone, kept
apart from the downloaded feeds; validated with locations, honoured by compile, the
incremental compile of a publish, covers-protected, lookup and the plan."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.test_vcs import commit_all, init_repo, write

from publisher import codes
from publisher.addresses import parse_addr
from publisher.cli.app import main
from publisher.compile.compiler import compile_zone
from publisher.compile.lookup import parse_query, zone_answer
from publisher.compile.patch import patch_zone
from publisher.lists.load import load_lists
from publisher.lists.tree import DirTree
from publisher.model import SourceData, Touched, Value, ZoneConfig
from publisher.publish.manifest import load_published
from publisher.publish.release import prepare, publish

NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(hours=1)

ZONES = """\
zones:
  - name: bl.example.test
    kind: ip
    role: block
    sources: [bl/*.yaml, bl/*.txt]
    excludes: [bl/local-excludes.txt]
    txt: "{reason}"
    protect: [wl.example.test]
  - name: wl.example.test
    kind: ip
    role: allow
    sources: [wl/*.yaml]
  - name: dbl.example.test
    kind: domain
    role: block
    sources: [dbl/*.txt]
    excludes: [dbl/keep.txt]
"""
FEED = ":127.0.0.3:feed $\n192.0.2.0/24\n2001:db8::/48\n" + "".join(f"10.0.{i >> 8}.{i & 255}\n" for i in range(600))
HAND = "entries:\n  - ip: 192.0.2.7\n    reason: by hand\n"
WL = "entries:\n  - ip: 198.51.100.24/30\n    reason: partner\n    owner: Partner Ltd\n"
DBL = "spam.example\n*.tracker.example\n.casino.example\n"


def _files(**extra: str) -> dict[str, str]:
    files = {
        "zones.yaml": ZONES,
        "bl/feed.txt": FEED,
        "bl/hand.yaml": HAND,
        "bl/local-excludes.txt": "# local holes\n192.0.2.7\n2001:db8:0:1::/64   # our own office\n",
        "wl/partners.yaml": WL,
        "dbl/feed.txt": DBL,
        "dbl/keep.txt": "a.tracker.example\n*.casino.example\n",
    }
    files.update(extra)
    return files


def _tree(root: Path, **extra: str) -> Path:
    write(root, _files(**extra))
    return root


def _answers(root: Path, text: str) -> dict[str, list[int]]:
    loaded = load_lists(DirTree(root), as_of=NOW)
    assert not loaded.errors, loaded.errors
    assert loaded.config is not None
    query = parse_query(text)
    out = {}
    for cfg in loaded.config.zones:
        zone = compile_zone(cfg, loaded.sources[cfg.name], as_of=NOW)
        out[cfg.name] = [code & 255 for code, _ in zone_answer(zone, query)]
    return out


def test_an_excluded_address_is_not_listed_by_any_file_of_the_zone(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    # 192.0.2.7 is listed by the feed and by hand.yaml; the excludes file removes both
    assert _answers(root, "192.0.2.7")["bl.example.test"] == []
    assert _answers(root, "192.0.2.8")["bl.example.test"] == [3]
    assert _answers(root, "2001:db8:0:1::5")["bl.example.test"] == []
    assert _answers(root, "2001:db8:0:2::5")["bl.example.test"] == [3]
    assert _answers(root, "127.0.0.2")["bl.example.test"] == [2]  # the test point stays


def test_domain_exclusions_punch_names_and_subtrees(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    assert _answers(root, "a.tracker.example")["dbl.example.test"] == []
    assert _answers(root, "b.tracker.example")["dbl.example.test"] == [2]
    assert _answers(root, "x.casino.example")["dbl.example.test"] == []
    assert _answers(root, "casino.example")["dbl.example.test"] == [2]
    assert _answers(root, "spam.example")["dbl.example.test"] == [2]


def test_without_the_setting_the_same_file_is_an_ordinary_source(tmp_path: Path) -> None:
    root = _tree(tmp_path, **{"zones.yaml": ZONES.replace("    excludes: [bl/local-excludes.txt]\n", "")})
    assert _answers(root, "192.0.2.7")["bl.example.test"] == [2, 3]  # listed by all three files


def test_the_excludes_file_lifts_covers_protected_and_the_fix_names_it(tmp_path: Path) -> None:
    feed = FEED + "198.51.100.25\n"
    root = _tree(tmp_path, **{"bl/feed.txt": feed})
    errors = load_lists(DirTree(root), as_of=NOW).errors
    assert [(p.code, p.location.path) for p in errors] == [(codes.COVERS_PROTECTED, "bl/feed.txt")]
    assert errors[0].fix is not None and errors[0].fix.startswith(
        "add 198.51.100.25 to bl/local-excludes.txt (the zone's excludes: file, which downloads do not overwrite)"
    )
    write(root, {"bl/local-excludes.txt": "192.0.2.7\n198.51.100.25\n"})
    assert load_lists(DirTree(root), as_of=NOW).errors == []


def test_a_feed_without_an_excludes_setting_is_told_how_to_add_one(tmp_path: Path) -> None:
    zones = ZONES.replace("    excludes: [bl/local-excludes.txt]\n", "")
    root = _tree(tmp_path, **{"zones.yaml": zones, "bl/feed.txt": FEED + "198.51.100.25\n"})
    (root / "bl/local-excludes.txt").unlink()
    (fix,) = [p.fix for p in load_lists(DirTree(root), as_of=NOW).errors]
    assert fix is not None and "`excludes: [bl/local-excludes.txt]` on bl.example.test" in fix


def test_excludes_files_are_validated_with_locations(tmp_path: Path) -> None:
    root = _tree(tmp_path, **{"bl/local-excludes.txt": "192.0.2.7\n10.0.0.0/8\n192.0.2.300\n127.0.0.0/30\n"})
    problems = load_lists(DirTree(root), as_of=NOW).problems
    found = [(p.location.path, p.location.line, p.code) for p in problems if p.location.path.endswith("excludes.txt")]
    # a broad exclusion is fine (no broad-prefix); a bad address and the listed test point are not
    assert found == [
        ("bl/local-excludes.txt", 3, codes.BAD_ADDRESS),
        ("bl/local-excludes.txt", 4, codes.DELISTS_TEST_POINT),
    ]


def test_an_excludes_glob_that_matches_nothing_is_an_error_at_its_line(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "bl/local-excludes.txt").unlink()
    (problem,) = load_lists(DirTree(root), as_of=NOW).errors
    assert problem.code == codes.GLOB_NO_MATCH and problem.location.line == 6
    assert "excludes glob 'bl/local-excludes.txt' of bl.example.test matches no file" in problem.message


def test_curated_excludes_need_no_exclude_flag_and_warn_of_nothing(tmp_path: Path) -> None:
    zones = ZONES.replace("[bl/local-excludes.txt]", "[bl/local/*.yaml]")
    curated = "entries:\n  - ip: 192.0.2.7\n    reason: our mail relay\n"
    root = _tree(tmp_path, **{"zones.yaml": zones, "bl/local/keep.yaml": curated})
    (root / "bl/local-excludes.txt").unlink()
    loaded = load_lists(DirTree(root), as_of=NOW)
    assert loaded.problems == []
    assert _answers(root, "192.0.2.7")["bl.example.test"] == []


def _repo(tmp_path: Path) -> tuple[Path, Path]:
    repo = init_repo(tmp_path / "repo", _files())
    return repo, tmp_path / "zones"


def _published(zones: Path, text: str) -> list[int]:
    zone = load_published(zones).zones["bl.example.test"]
    family, addr = parse_addr(text)
    idx = zone.lookup_v4(addr) if family == 4 else zone.lookup_v6(addr)
    return [] if idx < 0 else [c & 255 for c in zone.answers[idx].codes]


def test_a_publish_after_editing_the_excludes_file_answers_by_it(tmp_path: Path) -> None:
    lists, zones = _repo(tmp_path)
    publish(lists, zones, now=NOW)
    assert _published(zones, "192.0.2.7") == [] and _published(zones, "10.0.1.3") == [3]
    write(lists, {"bl/local-excludes.txt": "10.0.1.0/30\n10.0.0.9\n2001:db8::5\n"})
    commit_all(lists.parent, "other holes")
    plan = prepare(lists, zones, now=LATER).plan.zone("bl.example.test")
    assert plan is not None
    assert sorted((c.kind, c.entry.text) for c in plan.changes) == [
        ("added", "10.0.0.9"),
        ("added", "10.0.1.0/30"),
        ("added", "2001:db8::5"),
        ("removed", "192.0.2.7"),
        ("removed", "2001:db8:0:1::/64"),
    ]
    publish(lists, zones, now=LATER)
    assert _published(zones, "192.0.2.7") == [2, 3]
    assert _published(zones, "10.0.1.3") == [] and _published(zones, "10.0.1.4") == [3]
    assert _published(zones, "10.0.0.9") == [] and _published(zones, "10.0.0.8") == [3]
    assert _published(zones, "2001:db8::5") == [] and _published(zones, "2001:db8:0:1::5") == [3]
    # what the incremental publish wrote is what a full compile of the same lists gives
    loaded = load_lists(DirTree(lists), as_of=LATER)
    assert loaded.config is not None
    cfg = loaded.config.zones[0]
    full = compile_zone(cfg, loaded.sources[cfg.name], as_of=LATER)
    published = load_published(zones).zones["bl.example.test"]
    assert (published.v4_start, published.v4_end, published.v6_start_lo) == (
        full.v4_start,
        full.v4_end,
        full.v6_start_lo,
    )


CFG = ZoneConfig("bl.example.test", "ip", "block", ("*.txt",), 0x7F000002, "{reason}", excludes=("local.txt",))
BASE = 0x0A000000


def _src(path: str, rows: list[tuple[int, int]], exclude: bool = False) -> SourceData:
    src = SourceData(path, values=[Value(0x7F000003, "x", exclude=exclude)])
    for line, (a, b) in enumerate(rows, start=1):
        src.add_network(4, BASE + a, BASE + max(a, b), 0, line)
    return src


blocks = st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255)), max_size=12)


@settings(max_examples=150, deadline=None)
@given(feed=blocks, holes_before=blocks, holes_after=blocks)
def test_patching_after_an_excludes_edit_equals_a_full_compile(
    feed: list[tuple[int, int]], holes_before: list[tuple[int, int]], holes_after: list[tuple[int, int]]
) -> None:
    feed_src = _src("feed.txt", feed)
    before = [feed_src, _src("local.txt", holes_before, exclude=True)]
    after = [feed_src, _src("local.txt", holes_after, exclude=True)]
    published = compile_zone(CFG, before, as_of=NOW)
    changed = {(BASE + a, BASE + max(a, b)) for a, b in holes_before} ^ {
        (BASE + a, BASE + max(a, b)) for a, b in holes_after
    }
    patched = patch_zone(
        CFG,
        after,
        as_of=NOW,
        before=published,
        before_cfg=CFG,
        before_as_of=NOW,
        touched=Touched(v4=tuple(sorted(changed))),
        max_share=1.0,
    )
    full = compile_zone(CFG, after, as_of=NOW)
    assert patched is not None
    assert (patched.v4_start, patched.v4_end, patched.v4_value, patched.answers) == (
        full.v4_start,
        full.v4_end,
        full.v4_value,
        full.answers,
    )


def test_lookup_names_the_zones_excludes_file(tmp_path: Path, capsys: object) -> None:
    root = _tree(tmp_path)
    assert main(["--lists", str(root), "lookup", "192.0.2.7"]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "bl.example.test: not listed" in out
    assert "bl/local-excludes.txt:2: 192.0.2.7 -> exclude (the zone's excludes file)" in out
