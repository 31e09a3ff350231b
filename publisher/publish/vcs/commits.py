"""Ordinary commits of given files on the checked-out branch (`publisher refresh-spf`).

The commit is made with plumbing on a private index (HEAD's tree plus the given files), the
branch is moved only if it still points where it did, then those files are written in the
work tree and their index entries updated: nothing else of the index or the work tree moves,
whatever else is staged or modified there. No hook runs (the commit is the publisher's own,
validated like any commit when it is published).
"""

from __future__ import annotations

import os
from pathlib import Path

from publisher.errors import VcsError
from publisher.publish.vcs.repo import ListsRepo
from publisher.publish.vcs.requests import _git, _run, current_branch, tree_with
from publisher.publish.vcs.trees import dirty_files

#: Who commits when git has no identity configured (user.name / user.email, or GIT_AUTHOR_*).
FALLBACK_AUTHOR = ("publisher refresh-spf", "refresh-spf@localhost")


def _config(root: Path, key: str) -> str:
    status, out, _ = _git(root, "config", "--get", key)
    return out.strip() if status == 0 else ""


def commit_identity(where: ListsRepo, fallback: tuple[str, str] = FALLBACK_AUTHOR) -> dict[str, str]:
    """The environment a commit needs: none when git knows who commits (its configuration or
    GIT_AUTHOR_* / GIT_COMMITTER_*), else `fallback` as author and committer."""
    name = os.environ.get("GIT_AUTHOR_NAME") or _config(where.root, "user.name")
    email = os.environ.get("GIT_AUTHOR_EMAIL") or _config(where.root, "user.email")
    if name and email:
        return {}
    return {
        "GIT_AUTHOR_NAME": fallback[0],
        "GIT_AUTHOR_EMAIL": fallback[1],
        "GIT_COMMITTER_NAME": fallback[0],
        "GIT_COMMITTER_EMAIL": fallback[1],
    }


def uncommitted(where: ListsRepo, paths: list[str]) -> list[str]:
    """Those of `paths` (lists-relative) with uncommitted changes: `path (state)`."""
    wanted = set(paths)
    return [f"{d.path} ({d.state})" for d in dirty_files(where) if d.path in wanted]


def commit_files(
    where: ListsRepo,
    changes: dict[str, bytes | None],
    message: str,
    *,
    fallback: tuple[str, str] = FALLBACK_AUTHOR,
) -> str | None:
    """Write (bytes) or delete (None) the lists-relative `changes` and commit exactly them on
    the current branch, as one ordinary commit. Returns the commit, None when the files
    already read so in HEAD (nothing committed, nothing written).

    Refused (VcsError, nothing changed) when HEAD is detached or any of the paths has
    uncommitted changes (modified, staged or untracked)."""
    root = where.root
    branch = current_branch(where)
    if branch is None:
        raise VcsError(
            f"{root}: HEAD is detached; nothing was committed\n  fix: check out the branch the lists are kept on"
        )
    dirty = uncommitted(where, list(changes))
    if dirty:
        raise VcsError(
            f"{', '.join(dirty)}: uncommitted changes; nothing was committed\n"
            "  fix: commit or discard them (git status; git checkout -- FILE), then run again"
        )
    head = _run(root, "rev-parse", "--verify", "HEAD^{commit}")
    env = commit_identity(where, fallback)
    tree = tree_with(where, head, changes)
    if tree == _run(root, "rev-parse", f"{head}^{{tree}}"):
        return None
    commit = _run(root, "commit-tree", tree, "-p", head, "-F", "-", env=env, data=message.encode())
    _run(root, "update-ref", "-m", f"commit: {message.splitlines()[0]}", f"refs/heads/{branch}", commit, head)
    names = []
    for path, data in sorted(changes.items()):
        target = root / where.in_repo(path)
        if data is None:
            target.unlink(missing_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        names.append(where.in_repo(path))
    _run(root, "update-index", "--add", "--remove", "--", *names)
    return commit
