"""What an operator meets in the first week (issue 17): a clone owned by another user, a
Python without the dependencies, a typo in a command or option, a run from a subfolder."""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

import pytest
from tests.test_publish import FILES
from tests.test_publish import run_cli as run
from tests.test_vcs import init_repo

from publisher.publish.manifest import read_manifest

NOBODY = 65534


def _name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"#{uid}"


# --- a clone owned by another user --------------------------------------------------------


@pytest.fixture
def foreign_clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A list repository owned by another uid, with no global git config trusting it."""
    if os.geteuid() != 0:
        pytest.skip("needs root to hand a clone to another user")
    lists = init_repo(tmp_path / "repo", FILES)
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(tmp_path / "repo")], check=True)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_CONFIG_GLOBAL", "XDG_CONFIG_HOME", "GIT_DIR", "GIT_WORK_TREE"):
        monkeypatch.delenv(name, raising=False)
    return lists


@pytest.mark.parametrize("command", [["plan"], ["publish"], ["plan", "--commit", "HEAD~0"]])
def test_a_clone_of_another_user_says_why_git_refuses_and_how_out(
    foreign_clone: Path, tmp_path: Path, command: list[str]
) -> None:
    code, out, err = run("--lists", str(foreign_clone), "--zones", str(tmp_path / "zones"), *command)
    repo = foreign_clone.parent
    assert code == 1, err
    assert "is not a commit" not in err
    assert f"detected dubious ownership in repository at '{repo}'" in err
    assert f"sudo -u {_name(NOBODY)} publisher ..." in err
    assert f"git config --global --add safe.directory {repo}" in err
    assert read_manifest(tmp_path / "zones") is None  # nothing published
