"""zones.yaml `exports`: which zone files a generation holds beside the snapshot."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from publisher.errors import ValidationFailed
from publisher.lists.tree import DirTree
from publisher.publish.build import compile_tree, write_build
from publisher.publish.manifest import Source, load_published

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
ZONE = """\
  - name: {name}
    kind: ip
    role: block
    sources: [bl/*.txt]
"""


def _lists(root: Path, exports: str | None, second: str | None = None) -> DirTree:
    (root / "bl").mkdir(parents=True, exist_ok=True)
    (root / "bl" / "feed.txt").write_text("192.0.2.1\n198.51.100.0/24\n", encoding="utf-8")
    text = "zones:\n" + ZONE.format(name="bl.example.test") + (f"    exports: {exports}\n" if exports else "")
    if second is not None:
        text += ZONE.format(name="bl2.example.test") + f"    exports: {second}\n"
    (root / "zones.yaml").write_text(text, encoding="utf-8")
    return DirTree(root)


def _write(tmp_path: Path, exports: str | None, second: str | None = None) -> dict[str, Any]:
    build = compile_tree(_lists(tmp_path / "lists", exports, second), as_of=NOW)
    write_build(tmp_path / "zones", build, source=Source(kind="worktree", path="lists"), now=NOW)
    manifest: dict[str, Any] = json.loads((tmp_path / "zones" / "current" / "manifest.json").read_text("utf-8"))
    return manifest


def test_default_writes_both_exports(tmp_path: Path) -> None:
    zone = _write(tmp_path, None)["zones"]["bl.example.test"]
    assert zone["files"] == {
        "snapshot": "bl.example.test.snap",
        "bind": "bl.example.test.zone",
        "rbldnsd": "bl.example.test.rbldnsd",
    }
    assert set(zone["sha256"]) == set(zone["files"].values())


def test_no_exports_writes_the_snapshot_only(tmp_path: Path) -> None:
    manifest = _write(tmp_path, "[]", second="[rbldnsd]")
    gen = tmp_path / "zones" / "current"
    assert sorted(p.name for p in gen.iterdir()) == [
        "bl.example.test.snap",
        "bl2.example.test.rbldnsd",
        "bl2.example.test.snap",
        "manifest.json",
    ]
    zones = manifest["zones"]
    assert zones["bl.example.test"]["files"] == {"snapshot": "bl.example.test.snap"}
    assert set(zones["bl.example.test"]["sha256"]) == {"bl.example.test.snap"}
    assert zones["bl2.example.test"]["files"] == {
        "snapshot": "bl2.example.test.snap",
        "rbldnsd": "bl2.example.test.rbldnsd",
    }
    # the server's reader loads it, and the stable links name only what exists
    published = load_published(tmp_path / "zones")
    assert published.zones["bl.example.test"].lookup_v4(0xC0000201) >= 0
    assert not (tmp_path / "zones" / "bl.example.test.zone").is_symlink()
    assert (tmp_path / "zones" / "bl2.example.test.rbldnsd").is_file()


def test_changing_exports_alone_writes_a_new_generation(tmp_path: Path) -> None:
    _write(tmp_path, None)
    first = (tmp_path / "zones" / "current").resolve()
    manifest = _write(tmp_path, "[bind]")
    assert (tmp_path / "zones" / "current").resolve() != first
    assert manifest["zones"]["bl.example.test"]["files"] == {
        "snapshot": "bl.example.test.snap",
        "bind": "bl.example.test.zone",
    }


def test_an_unknown_export_is_a_located_error(tmp_path: Path) -> None:
    try:
        compile_tree(_lists(tmp_path / "lists", "[bind, tinydns]"), as_of=NOW)
    except ValidationFailed as exc:
        [problem] = exc.problems
        assert (problem.location.path, problem.location.line) == ("zones.yaml", 6)
        assert "'tinydns' is not a valid `exports[1]`; it is one of: bind, rbldnsd" in problem.message
    else:
        raise AssertionError("an unknown export was accepted")


def test_a_publish_of_an_exports_change_alone_is_not_nothing_to_publish(tmp_path: Path) -> None:
    """`exports: []` committed on its own: publish writes a generation without the exports
    (the answers and serial stay), instead of saying there is nothing to publish."""
    from tests.test_vcs import commit_all, init_repo

    from publisher.publish.release import publish

    _lists(tmp_path / "repo" / "lists", None)
    lists = init_repo(tmp_path / "repo")
    zones = tmp_path / "zones"
    first = publish(lists, zones, now=NOW)
    assert first.written and first.manifest is not None
    _lists(lists, "[]")
    commit_all(tmp_path / "repo", "snapshot only")
    second = publish(lists, zones, now=NOW)
    assert second.written and second.manifest is not None
    entry = second.manifest.zones["bl.example.test"]
    assert entry.serial == first.manifest.zones["bl.example.test"].serial  # same answers, same serial
    assert entry.files.bind is None and entry.files.rbldnsd is None
    assert sorted(p.name for p in (zones / "current").iterdir()) == ["bl.example.test.snap", "manifest.json"]
