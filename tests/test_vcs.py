"""publisher.publish.vcs against real temporary git repositories (made with the git command line)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from publisher.errors import VcsError
from publisher.lists.tree import TreeError
from publisher.publish.vcs import GitTree, StagedTree, blame_lines, commit_info, dirty_files, find_repo, hooks_dir, sync

ALICE = ("Alice Admin", "alice@example.test")
BOB = ("Bob Builder", "bob@example.test")


def git_env(author: tuple[str, str] = ALICE) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_AUTHOR_NAME=author[0],
        GIT_AUTHOR_EMAIL=author[1],
        GIT_COMMITTER_NAME=author[0],
        GIT_COMMITTER_EMAIL=author[1],
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
    )
    return env


def git(
    repo: Path, *args: str, author: tuple[str, str] = ALICE, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=repo, env=git_env(author), check=check, text=True, capture_output=True)


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def commit_all(repo: Path, message: str, author: tuple[str, str] = ALICE) -> str:
    git(repo, "add", "-A", author=author)
    git(repo, "commit", "-q", "--no-verify", "-m", message, author=author)
    return git(repo, "rev-parse", "HEAD").stdout.strip()


def init_repo(
    path: Path, files: dict[str, str] | None = None, lists_from: Path | None = None, subdir: str = "lists"
) -> Path:
    """A repository with the lists under `subdir` ('' for the root), first commit made."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    lists = path / subdir if subdir else path
    if lists_from is not None:
        shutil.copytree(lists_from, lists, dirs_exist_ok=True)
    write(lists, files or {})
    commit_all(path, "initial lists")
    return lists


def test_git_tree_reads_the_commit_not_the_work_tree(tmp_path: Path) -> None:
    lists = init_repo(tmp_path / "repo", {"zones.yaml": "zones: []\n", "bl/a.txt": "192.0.2.1\n", ".hidden": "x"})
    write(tmp_path / "repo", {"README.md": "outside the lists\n"})
    first = commit_all(tmp_path / "repo", "readme")
    write(lists, {"bl/a.txt": "192.0.2.99\n", "bl/new.txt": "198.51.100.1\n"})
    where = find_repo(lists)
    assert where.root == (tmp_path / "repo").resolve() and where.prefix == "lists"
    tree = GitTree(where)
    assert tree.files() == ["bl/a.txt", "zones.yaml"]
    assert tree.read("bl/a.txt") == b"192.0.2.1\n"
    assert tree.commit.sha == first and tree.commit.author == ALICE[0]
    assert first[:10] in tree.describe()
    with pytest.raises(TreeError):
        tree.read("bl/new.txt")
    assert sorted((d.path, d.state) for d in dirty_files(where)) == [
        ("bl/a.txt", "modified"),
        ("bl/new.txt", "untracked"),
    ]


def test_lists_at_the_repository_root_and_older_commits(tmp_path: Path) -> None:
    lists = init_repo(tmp_path / "repo", {"bl/a.txt": "192.0.2.1\n"}, subdir="")
    old = commit_info(find_repo(lists)).sha
    write(lists, {"bl/a.txt": "192.0.2.2\n"})
    commit_all(lists, "second", author=BOB)
    where = find_repo(lists)
    assert where.prefix == "" and commit_info(where).author == BOB[0]
    assert GitTree(where, old).read("bl/a.txt") == b"192.0.2.1\n"
    assert GitTree(where, "HEAD~1").commit.sha == old
    with pytest.raises(VcsError, match="not a commit"):
        GitTree(where, "no-such-branch")


def test_staged_tree_reads_the_index(tmp_path: Path) -> None:
    lists = init_repo(tmp_path / "repo", {"bl/a.txt": "192.0.2.1\n"})
    repo = tmp_path / "repo"
    write(lists, {"bl/a.txt": "192.0.2.2\n", "bl/b.txt": "198.51.100.1\n"})
    git(repo, "add", "lists/bl/a.txt")
    write(lists, {"bl/a.txt": "192.0.2.3\n"})
    where = find_repo(lists)
    staged = StagedTree(where)
    assert staged.files() == ["bl/a.txt"]
    assert staged.read("bl/a.txt") == b"192.0.2.2\n"
    states = {d.path: d.state for d in dirty_files(where)}
    assert states == {"bl/a.txt": "modified", "bl/b.txt": "untracked"}


def test_symlinks_in_git_are_not_followed(tmp_path: Path) -> None:
    lists = init_repo(tmp_path / "repo", {"bl/a.txt": "192.0.2.1\n"})
    os.symlink("/etc/passwd", lists / "bl" / "evil.txt")
    commit_all(tmp_path / "repo", "link")
    tree = GitTree(find_repo(lists))
    with pytest.raises(TreeError, match="symbolic link"):
        tree.read("bl/evil.txt")


def test_blame_names_the_commit_that_introduced_each_line(tmp_path: Path) -> None:
    lists = init_repo(tmp_path / "repo", {"bl/a.txt": "192.0.2.1\n192.0.2.2\n"})
    repo = tmp_path / "repo"
    first = git(repo, "rev-parse", "HEAD").stdout.strip()
    write(lists, {"bl/a.txt": "192.0.2.1\n192.0.2.2\n203.0.113.7\n"})
    second = commit_all(repo, "list 203.0.113.7", author=BOB)
    found = blame_lines(find_repo(lists), "HEAD", "bl/a.txt", [3, 1, 99])
    assert found[1].sha == first and found[1].author == ALICE[0]
    assert found[3].sha == second and found[3].author == BOB[0] and found[3].email == BOB[1]
    assert found[3].summary == "list 203.0.113.7" and found[3].date[:4].isdigit()
    assert 99 not in found


def test_blame_since_a_commit_walks_only_what_came_after_it_and_still_names_older_lines(tmp_path: Path) -> None:
    """publish blames the plan's added lines from the published commit on (a big feed's history
    is not diffed through); a line older than that commit still gets its real author."""
    lists = init_repo(tmp_path / "repo", {"bl/a.txt": "192.0.2.1\n"})
    repo = tmp_path / "repo"
    first = git(repo, "rev-parse", "HEAD").stdout.strip()
    write(lists, {"bl/a.txt": "192.0.2.1\n192.0.2.2\n"})
    published = commit_all(repo, "list 192.0.2.2", author=BOB)
    write(lists, {"bl/a.txt": "192.0.2.1\n192.0.2.2\n203.0.113.7\n"})
    third = commit_all(repo, "list 203.0.113.7")
    write(lists, {"bl/a.txt": "192.0.2.1\n192.0.2.2\n203.0.113.7\n203.0.113.8\n"})
    fourth = commit_all(repo, "list 203.0.113.8", author=BOB)
    found = blame_lines(find_repo(lists), "HEAD", "bl/a.txt", [1, 2, 3, 4], since=published)
    assert {n: b.sha for n, b in found.items()} == {1: first, 2: published, 3: third, 4: fourth}
    assert found[4].author == BOB[0] and found[3].author == ALICE[0] and found[1].author == ALICE[0]
    assert found == blame_lines(find_repo(lists), "HEAD", "bl/a.txt", [1, 2, 3, 4])


def test_not_a_repository(tmp_path: Path) -> None:
    (tmp_path / "lists").mkdir()
    with pytest.raises(VcsError, match="not inside a git repository"):
        find_repo(tmp_path / "lists")


def test_hooks_dir(tmp_path: Path) -> None:
    lists = init_repo(tmp_path / "repo", {"bl/a.txt": "192.0.2.1\n"})
    assert hooks_dir(find_repo(lists)) == (tmp_path / "repo" / ".git" / "hooks").resolve()


def test_sync_fast_forwards_from_the_remote_and_refuses_to_merge(tmp_path: Path) -> None:
    init_repo(tmp_path / "origin", {"bl/a.txt": "192.0.2.1\n"})
    git(tmp_path, "clone", "-q", "--bare", str(tmp_path / "origin"), str(tmp_path / "origin.git"))
    git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), str(tmp_path / "served"))
    git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), str(tmp_path / "work"))
    served = find_repo(tmp_path / "served" / "lists")
    assert not sync(served).moved
    write(tmp_path / "work" / "lists", {"bl/a.txt": "192.0.2.1\n192.0.2.2\n"})
    pushed = commit_all(tmp_path / "work", "more", author=BOB)
    git(tmp_path / "work", "push", "-q", "origin", "main")
    result = sync(served)
    assert result.moved and result.after == pushed and result.remote == "origin"
    assert (tmp_path / "served" / "lists" / "bl" / "a.txt").read_text() == "192.0.2.1\n192.0.2.2\n"
    # diverge: a local commit in the served clone and another one upstream
    write(tmp_path / "served" / "lists", {"bl/local.txt": "198.51.100.1\n"})
    local = commit_all(tmp_path / "served", "local edit")
    write(tmp_path / "work" / "lists", {"bl/b.txt": "198.51.100.2\n"})
    commit_all(tmp_path / "work", "upstream edit")
    git(tmp_path / "work", "push", "-q", "origin", "main")
    with pytest.raises(VcsError, match="cannot fast-forward"):
        sync(served)
    assert commit_info(served).sha == local


def test_sync_without_remote_does_nothing(tmp_path: Path) -> None:
    lists = init_repo(tmp_path / "repo", {"bl/a.txt": "192.0.2.1\n"})
    result = sync(find_repo(lists))
    assert not result.moved and result.remote is None
