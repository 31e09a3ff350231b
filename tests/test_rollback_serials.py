"""`rollback SERIAL` after `make serve`'s compile (issue 17 walkthrough): the serial the first
publish served unchanged is a rollback target, `history` says what that publish did, and a
serial that came from no commit is refused with what can be rolled back to instead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import LISTS
from tests.test_publish import run_cli
from tests.test_vcs import commit_all, git, init_repo

from publisher.publish.manifest import read_manifest

BL = "bl.example.test"
NEW = "  - ip: 198.51.100.0/28\n    reason: snowshoe spam\n"


@pytest.fixture
def compiled(tmp_path: Path) -> tuple[Path, Path]:
    """A clone of the sample lists whose zones/ holds `make serve`'s compile of the work tree."""
    lists = init_repo(tmp_path / "repo", lists_from=LISTS)
    zones = tmp_path / "zones"
    code, _, err = run_cli("--lists", str(lists), "--zones", str(zones), "compile", "--unless-published")
    assert code == 0, err
    return lists, zones


def _add_entry(lists: Path) -> None:
    with (lists / "bl" / "abuse.yaml").open("a") as fh:
        fh.write(NEW)
    commit_all(lists, "bl: list 198.51.100.0/28")


def _records(zones: Path) -> list[dict[str, object]]:
    code, out, err = run_cli("--zones", str(zones), "history", "--json")
    assert code == 0, err
    records = json.loads(out)
    assert isinstance(records, list)
    return records


def _serial(record: dict[str, object], zone: str = BL) -> int:
    zones = record["zones"]
    assert isinstance(zones, dict)
    return int(zones[zone]["serial"])


def test_history_says_the_first_publish_served_the_compiles_serials(compiled: tuple[Path, Path]) -> None:
    lists, zones = compiled
    assert run_cli("--lists", str(lists), "--zones", str(zones), "publish")[0] == 0
    (rec,) = _records(zones)
    served = _serial(rec)
    code, out, _ = run_cli("--zones", str(zones), "history")
    assert "settings only" not in out, out
    assert f"first publish from git, same answers as the compile zones/ held: {BL} {served} (14 listings)" in out, out
    # cut by --limit, the first line shown is not the first publish: not called one
    _add_entry(lists)
    assert run_cli("--lists", str(lists), "--zones", str(zones), "publish")[0] == 0
    code, out, _ = run_cli("--zones", str(zones), "history", "--limit", "1")
    assert "first publish" not in out and f"{BL} {_serial(_records(zones)[-1])} (+1/-0)" in out, out


def test_a_serial_the_first_publish_served_unchanged_rolls_back_to_its_commit(compiled: tuple[Path, Path]) -> None:
    lists, zones = compiled
    base = ("--lists", str(lists), "--zones", str(zones))
    first = git(lists, "rev-parse", "HEAD").stdout.strip()
    assert run_cli(*base, "publish")[0] == 0
    (rec,) = _records(zones)
    served = _serial(rec)
    _add_entry(lists)
    assert run_cli(*base, "publish")[0] == 0
    code, out, err = run_cli(*base, "rollback", str(served))
    assert code == 0, err
    assert out.startswith(f"rollback: republishing commit {first[:10]} (serial {served} of {BL}, "), out
    rolled = _serial(_records(zones)[-1])
    assert f"{BL} serial {rolled}: -1 listing (-16 addresses)" in out, out
    code, out, err = run_cli(*base, "explain", "198.51.100.5")
    assert code == 0 and f"{BL} (serial {rolled}): not listed" in out, (out, err)


def test_the_compiled_serial_after_an_edit_is_refused_with_what_can_be_rolled_back_to(
    compiled: tuple[Path, Path],
) -> None:
    lists, zones = compiled
    base = ("--lists", str(lists), "--zones", str(zones))
    manifest = read_manifest(zones)
    assert manifest is not None
    compiled_serial = manifest.zones[BL].serial
    _add_entry(lists)
    assert run_cli(*base, "publish")[0] == 0
    (rec,) = _records(zones)
    published = _serial(rec)
    code, _, err = run_cli(*base, "rollback", str(compiled_serial))
    assert code == 2, err
    assert f"serial {compiled_serial} came from no commit" in err, err
    assert (
        f"fix: `publisher history` lists the serials published (none before {published}); "
        "or give a commit: `publisher rollback HEAD~1`"
    ) in err, err
    # what the fix offers works
    code, out, err = run_cli(*base, "rollback", "HEAD~1")
    assert code == 0, err
    assert f"{BL} serial {_serial(_records(zones)[-1])}: -1 listing (-16 addresses)" in out, out


def test_a_serial_never_served_lists_the_serials_history_has(compiled: tuple[Path, Path]) -> None:
    lists, zones = compiled
    base = ("--lists", str(lists), "--zones", str(zones))
    assert run_cli(*base, "publish")[0] == 0
    _add_entry(lists)
    assert run_cli(*base, "publish")[0] == 0
    first, second = (_serial(r) for r in _records(zones))
    code, _, err = run_cli(*base, "rollback", "2099010100")
    assert code == 2 and "serial 2099010100 was never published into" in err, err
    assert f"lists the serials published ({first}, {second}); or give a commit" in err, err
