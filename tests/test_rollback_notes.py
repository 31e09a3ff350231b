"""A rollback says that HEAD still holds what it took out, and a later publish of HEAD that
brings it back says so in its plan (issue 17, item 14); an unknown serial points at `history`."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from tests.test_publish import ABUSE, NOW, commit_file, repo, run_cli, zones  # noqa: F401

from publisher.publish.watch import Watcher

BAD = ABUSE + "  - ip: 10.9.0.0/28\n    reason: oops\n"


class _Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def _first_serial(zones_dir: Path) -> str:
    code, out, _ = run_cli("--zones", str(zones_dir), "history", "--json")
    return str(json.loads(out)[0]["zones"]["bl.example.test"]["serial"])


def test_rollback_says_head_still_holds_what_it_took_out(repo: Path, zones: Path) -> None:  # noqa: F811
    base = ("--lists", str(repo), "--zones", str(zones))
    assert run_cli(*base, "publish")[0] == 0
    good = _first_serial(zones)
    commit_file(repo, "bl/abuse.yaml", BAD, "bl: oops")
    assert run_cli(*base, "publish")[0] == 0
    code, out, err = run_cli(*base, "rollback", good)
    assert code == 0, err
    assert re.search(
        r"^note: HEAD \(commit [0-9a-f]{10}\) still holds what this rollback took out \(bl/abuse\.yaml\)", out, re.M
    ), out
    assert re.search(r"git revert --no-edit [0-9a-f]{10}\.\.HEAD, then publish", out), out
    # what the note says of a watch: it leaves the rollback in place until HEAD moves
    assert Watcher(repo, zones, pull=False, clock=_Clock(NOW)).check() == "up to date"
    code, out, _ = run_cli(*base, "plan")
    assert re.search(
        rf"^  note: this re-adds what the rollback to serial {good} removed on \d{{4}}-\d\d-\d\d: bl/abuse\.yaml",
        out,
        re.M,
    ), out
    # once reverted in git, HEAD no longer brings it back, and the plan says nothing of it
    commit_file(repo, "bl/abuse.yaml", ABUSE, "revert bl: oops")
    code, out, _ = run_cli(*base, "plan")
    assert "re-adds" not in out, out


def test_a_rollback_to_what_head_holds_has_no_note(repo: Path, zones: Path) -> None:  # noqa: F811
    base = ("--lists", str(repo), "--zones", str(zones))
    assert run_cli(*base, "publish")[0] == 0
    good = _first_serial(zones)
    commit_file(repo, "bl/abuse.yaml", BAD, "bl: oops")
    assert run_cli(*base, "publish")[0] == 0
    commit_file(repo, "bl/abuse.yaml", ABUSE, "revert bl: oops")
    code, out, _ = run_cli(*base, "rollback", good)
    assert code == 0 and "still holds" not in out, out


def test_an_unknown_serial_points_at_history(repo: Path, zones: Path) -> None:  # noqa: F811
    base = ("--lists", str(repo), "--zones", str(zones))
    assert run_cli(*base, "publish")[0] == 0
    code, _, err = run_cli(*base, "rollback", "2020010100")
    assert code == 2 and "serial 2020010100 was never published" in err, err
    assert "fix: `publisher history` lists the serials published" in err, err
