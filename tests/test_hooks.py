"""The pre-commit hook: real `git commit` runs in a temporary repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.test_publish import ABUSE, FILES, run_cli
from tests.test_vcs import git, init_repo, write

from publisher.errors import UsageError
from publisher.publish.hooks import MARK, install_hook


@pytest.fixture
def hooked(tmp_path: Path) -> Path:
    lists = init_repo(tmp_path / "repo", FILES)
    code, out, err = run_cli("--lists", str(lists), "install-hook")
    assert code == 0 and "installed" in out, err
    return lists


def test_the_hook_blocks_a_commit_with_errors_and_lets_a_good_one_through(hooked: Path) -> None:
    repo = hooked.parent
    hook = repo / ".git" / "hooks" / "pre-commit"
    assert hook.exists() and os.access(hook, os.X_OK) and MARK in hook.read_text()
    write(hooked, {"bl/abuse.yaml": ABUSE + "  - ip: 192.0.2.300\n    reason: typo\n"})
    git(repo, "add", "-A")
    bad = git(repo, "commit", "-m", "typo", check=False)
    assert bad.returncode != 0
    assert "bl/abuse.yaml:6" in bad.stderr and "error" in bad.stderr, bad.stderr
    assert git(repo, "rev-list", "--count", "HEAD").stdout.strip() == "1"
    write(hooked, {"bl/abuse.yaml": ABUSE + "  - ip: 192.0.2.30\n    reason: fine\n"})
    git(repo, "add", "-A")
    good = git(repo, "commit", "-m", "fine", check=False)
    assert good.returncode == 0, good.stderr
    assert git(repo, "rev-list", "--count", "HEAD").stdout.strip() == "2"


def test_the_hook_judges_what_is_staged_not_the_work_tree(hooked: Path) -> None:
    repo = hooked.parent
    write(hooked, {"bl/abuse.yaml": ABUSE + "  - ip: 192.0.2.30\n    reason: fine\n"})
    git(repo, "add", "-A")
    write(hooked, {"bl/abuse.yaml": ABUSE + "  - ip: not-an-address\n"})  # unstaged: not committed
    assert git(repo, "commit", "-m", "staged is fine", check=False).returncode == 0
    git(repo, "add", "-A")  # now the broken version is staged
    assert git(repo, "commit", "-m", "broken", check=False).returncode != 0
    git(repo, "reset", "-q", "--hard")
    write(repo, {"README.md": "not a list\n"})  # commits that do not touch the lists pass
    git(repo, "add", "README.md")
    assert git(repo, "commit", "-m", "docs", check=False).returncode == 0


def test_a_foreign_hook_is_kept_unless_forced(tmp_path: Path) -> None:
    lists = init_repo(tmp_path / "repo", FILES)
    hook = tmp_path / "repo" / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\nexit 0\n")
    with pytest.raises(UsageError, match="was not installed by publisher"):
        install_hook(lists)
    install_hook(lists, force=True)
    assert MARK in hook.read_text() and (hook.parent / "pre-commit.orig").read_text() == "#!/bin/sh\nexit 0\n"
    install_hook(lists)  # ours: reinstalling is fine


def test_validate_staged_passes_guard_rail_problems_with_a_note(tmp_path: Path) -> None:
    lists = init_repo(tmp_path / "repo", FILES)
    write(lists, {"bl/abuse.yaml": ABUSE + "  - ip: 203.0.113.0/27\n    reason: covers a partner\n"})
    git(lists.parent, "add", "-A")
    code, _, err = run_cli("--lists", str(lists), "validate-staged")
    assert code == 0 and "covers-protected" in err and "publish will need --force" in err


def test_the_hook_prints_each_problem_once_and_ends_with_the_refusal(hooked: Path) -> None:
    repo = hooked.parent
    bad = "  - ip: 192.0.2.300\n    reason: typo\n  - ip: 198.51.100.999\n    reason: typo\n"
    write(hooked, {"bl/abuse.yaml": ABUSE + bad, "stray/feed.txt": "192.0.2.1\n"})  # stray: a warning
    git(repo, "add", "-A")
    refused = git(repo, "commit", "-m", "typos", check=False)
    assert refused.returncode != 0
    lines = refused.stderr.strip().splitlines()
    located = [line for line in lines if line.startswith(("lists/bl/abuse.yaml:", "lists/stray/feed.txt"))]
    assert [line.split(": ")[0] for line in located] == [
        "lists/bl/abuse.yaml:6:9",
        "lists/bl/abuse.yaml:8:9",
        "lists/stray/feed.txt",
    ]
    assert len(set(located)) == len(located) == 3, refused.stderr  # each once, the warning too
    assert "unused-file" in located[2] and "nothing was published" not in refused.stderr
    assert lines[-1] == "commit refused: 2 error(s) in the staged lists"
    assert git(repo, "rev-list", "--count", "HEAD").stdout.strip() == "1"
