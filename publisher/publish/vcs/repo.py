"""The lists' repository: finding and trusting it, commits by revision (GitPython; opened and
closed per call, see the package docstring)."""

from __future__ import annotations

import contextlib
import os
import pwd
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from git import Repo
from git.exc import BadName, GitCommandError, GitError, InvalidGitRepositoryError, NoSuchPathError

from publisher.errors import VcsError
from publisher.publish.manifest import Source

ZERO_SHA = "0" * 40


@dataclass(frozen=True, slots=True)
class ListsRepo:
    """Where the lists folder sits in its repository: the work tree root and the prefix."""

    root: Path  # the repository's work tree
    prefix: str  # POSIX path of the lists folder inside the repository, "" at the root

    @property
    def lists(self) -> Path:
        return self.root / self.prefix if self.prefix else self.root

    def in_repo(self, path: str) -> str:
        """A path relative to the lists root -> the same file relative to the repository."""
        return f"{self.prefix}/{path}" if self.prefix else path

    def in_lists(self, path: str) -> str | None:
        """A repository path -> relative to the lists root, or None when outside it."""
        if not self.prefix:
            return path
        head = self.prefix + "/"
        return path[len(head) :] if path.startswith(head) else None


@dataclass(frozen=True, slots=True)
class CommitInfo:
    sha: str
    author: str
    email: str
    authored_at: str  # ISO 8601 with the author's offset
    committed_at: str
    summary: str

    @property
    def short(self) -> str:
        return self.sha[:10]

    def source(self, where: ListsRepo) -> Source:
        """The manifest's `source` record of a publish from this commit."""
        return Source(
            kind="git",
            commit=self.sha,
            author=self.author,
            email=self.email,
            committed_at=self.committed_at,
            summary=self.summary,
            repo=str(where.root),
            prefix=where.prefix,
        )


def _stderr(exc: GitCommandError) -> str:
    """What git printed on stderr, without GitPython's framing."""
    return (exc.stderr or "").strip().removeprefix("stderr:").strip(" '\n")


def _owner_of(root: Path) -> int | None:
    """The uid owning the clone (its .git, else the work tree), None when it cannot be read."""
    for path in (root / ".git", root):
        with contextlib.suppress(OSError):
            return path.stat().st_uid
    return None


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"#{uid}"  # sudo's syntax for a uid without a name


class UntrustedRepo(VcsError):
    """git will not read a clone that another user owns (its `safe.directory` check)."""


def _untrusted(root: Path, detail: str) -> UntrustedRepo | None:
    """git refused a clone that another user owns ("dubious ownership", git >= 2.35.2):
    git's reason and the two ways out, or None when the clone is ours."""
    owner = _owner_of(root)
    if owner is None or owner == os.geteuid():
        return None
    reason = detail.splitlines()[0].removeprefix("fatal: ") if detail else "git refused the repository"
    return UntrustedRepo(
        f"git refuses to read {root}: {reason} (the clone belongs to {_user(owner)}, "
        f"this runs as {_user(os.geteuid())})\n"
        f"  fix: run the command as the clone's owner: sudo -u {_user(owner)} publisher ...; "
        f"or trust the clone: git config --global --add safe.directory {root}"
    )


@contextmanager
def _open(root: Path) -> Iterator[Repo]:
    """One Repo for one operation, git errors turned into VcsError."""
    try:
        with Repo(root) as repo:
            yield repo
    except VcsError:
        raise
    except GitCommandError as exc:
        detail = _stderr(exc) or str(exc)
        raise _untrusted(root, detail) or VcsError(f"git failed in {root}: {detail}") from exc
    except (GitError, ValueError) as exc:
        raise VcsError(f"git failed in {root}: {exc}") from exc


def find_repo(lists: Path) -> ListsRepo:
    """The repository holding the lists folder (the folder itself or any parent), one that
    git agrees to read: a clone owned by another user is refused here with git's reason."""
    folder = Path(lists).resolve()
    if not folder.is_dir():
        raise VcsError(f"{lists}: no such folder")
    try:
        with Repo(folder, search_parent_directories=True) as repo:
            top = repo.working_tree_dir
            if top is not None:
                # GitPython finds the repository without git; git itself may still refuse it
                # (another user's clone), which otherwise surfaces as "'HEAD' is not a commit".
                repo.git.rev_parse("--git-dir")
    except (InvalidGitRepositoryError, NoSuchPathError) as exc:
        raise VcsError(f"{lists}: not inside a git repository (publish reads committed lists)") from exc
    except GitCommandError as exc:
        root = Path(top or folder).resolve()
        raise _untrusted(root, _stderr(exc)) or VcsError(f"git failed in {root}: {_stderr(exc) or exc}") from exc
    if top is None:
        raise VcsError(f"{lists}: the repository is bare; give the folder of a clone")
    root = Path(top).resolve()
    prefix = folder.relative_to(root).as_posix()
    return ListsRepo(root, "" if prefix == "." else prefix)


def _commit_info(commit: Any) -> CommitInfo:
    return CommitInfo(
        sha=commit.hexsha,
        author=str(commit.author.name),
        email=str(commit.author.email),
        authored_at=commit.authored_datetime.isoformat(),
        committed_at=commit.committed_datetime.isoformat(),
        summary=str(commit.summary),
    )


def _resolve(repo: Repo, rev: str) -> Any:
    try:
        return repo.commit(rev)
    except (BadName, ValueError, GitCommandError, BrokenPipeError) as exc:
        # GitPython reads refs itself and asks git only for objects: a clone that git
        # refuses to read looks like one without the commit (or, when git has already
        # exited, a broken pipe to its `cat-file --batch`). Ask git whether it reads it.
        repo.git.rev_parse("--git-dir")
        raise VcsError(f"{rev!r} is not a commit in {repo.working_tree_dir}") from exc


def commit_info(where: ListsRepo, rev: str = "HEAD") -> CommitInfo:
    with _open(where.root) as repo:
        return _commit_info(_resolve(repo, rev))


def commit_exists(where: ListsRepo, rev: str) -> bool:
    """Is `rev` a commit of the clone? A clone git refuses to read raises instead of saying no."""
    try:
        commit_info(where, rev)
    except UntrustedRepo:
        raise
    except VcsError:
        return False
    return True
