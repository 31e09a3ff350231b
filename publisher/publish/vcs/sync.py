"""Fetch and fast-forward for `watch` (refusing to move the publisher's own checkout past
anything but the lists), hooks and staged changes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from git import Repo
from git.exc import GitCommandError

import publisher
from publisher.errors import VcsError
from publisher.publish.vcs.repo import ListsRepo, _open


@dataclass(frozen=True, slots=True)
class SyncResult:
    before: str | None
    after: str | None
    remote: str | None  # the remote fetched from, None when the repository has none
    message: str

    @property
    def moved(self) -> bool:
        return self.before != self.after


def hooks_dir(where: ListsRepo) -> Path:
    """The repository's hooks folder (honours core.hooksPath)."""
    with _open(where.root) as repo:
        path = Path(repo.git.rev_parse("--git-path", "hooks"))
    return path if path.is_absolute() else where.root / path


def has_remote(where: ListsRepo) -> bool:
    with _open(where.root) as repo:
        return bool(repo.remotes)


def holds_running_code(where: ListsRepo) -> bool:
    """Is the publisher that runs now a checkout inside the lists' repository?"""
    return Path(publisher.__file__).resolve().parent.is_relative_to(where.root.resolve())


def _outside_lists(repo: Repo, where: ListsRepo, before: str | None, target: str) -> list[str]:
    """Files that moving from `before` to `target` changes outside the lists folder."""
    args = ["--name-only", "--no-renames", "-z", before, target] if before else None
    out = repo.git.diff(*args) if args else repo.git.ls_tree("-r", "--name-only", "-z", target)
    return sorted(p for p in out.split("\0") if p and where.in_lists(p) is None)


def _refuse_outside(where: ListsRepo, branch: str, tracking: str, outside: list[str]) -> VcsError:
    more = f" (+{len(outside) - 10} more)" if len(outside) > 10 else ""
    return VcsError(
        f"refused to fast-forward {branch} to {tracking}: it changes files outside the lists folder "
        f"{where.prefix}/ in {where.root}, the checkout the publisher itself runs from: "
        f"{', '.join(outside[:10])}{more}. Whoever can push lists would change the code the service runs "
        "at its next restart; nothing was pulled and the published zones stay as they are.\n"
        "  fix: keep the lists in a repository of their own and point --lists at it (docs/scaling.md); "
        "update the code by hand (git pull, review, restart)"
    )


def _not_forward(repo: Repo, where: ListsRepo, branch: str, tracking: str, before: str | None, target: str) -> VcsError:
    """Why `merge --ff-only` failed: a history rewritten upstream (say how far apart), or local changes."""
    ahead, behind = 0, 0
    if before is not None:
        counts = repo.git.rev_list("--left-right", "--count", f"{before}...{target}").split()
        ahead, behind = int(counts[0]), int(counts[1])
    if not ahead:
        return VcsError(
            f"cannot fast-forward {branch} to {tracking} {target[:10]}: local changes in {where.root} are in the "
            "way; nothing was pulled\n"
            f"  fix: look at `git -C {where.root} status`; the service's clone takes no local edits"
        )
    return VcsError(
        f"cannot fast-forward {branch} to {tracking}: they have diverged (a force-push upstream?): "
        f"local {branch} {str(before)[:10]} has {ahead} commit(s) that {tracking} lacks, "
        f"{tracking} {target[:10]} has {behind} that {branch} lacks; nothing was pulled\n"
        f"  fix: review `git -C {where.root} log --oneline --left-right {branch}...{tracking}`, then follow "
        f"upstream with `git -C {where.root} reset --hard {tracking}` (the next check publishes it); "
        "upstream, push a revert rather than force-pushing the lists branch"
    )


def sync(where: ListsRepo, *, lists_only: bool = False) -> SyncResult:
    """Fetch and fast-forward the current branch to its upstream; never merges or rebases.

    A repository without a remote is left alone. A branch that has diverged (or
    a dirty work tree in the way) raises VcsError, and HEAD stays where it was.
    `lists_only`: refuse (VcsError, HEAD unmoved) a fast-forward that changes any file
    outside the lists folder: `watch` sets it when the lists share the publisher's checkout.
    """
    with _open(where.root) as repo:
        before = repo.head.commit.hexsha if repo.head.is_valid() else None
        if not repo.remotes:
            return SyncResult(before, before, None, "no remote; nothing to fetch")
        if repo.head.is_detached:
            raise VcsError(f"{where.root}: HEAD is detached; check out a branch to follow its upstream")
        branch = repo.active_branch
        tracking = branch.tracking_branch()
        remote = tracking.remote_name if tracking is not None else repo.remotes[0].name
        repo.git.fetch("--quiet", remote)
        if tracking is None:
            return SyncResult(before, before, remote, f"fetched {remote}; {branch.name} has no upstream to follow")
        target = repo.commit(tracking.name).hexsha
        if lists_only and target != before:
            outside = _outside_lists(repo, where, before, target)
            if outside:
                raise _refuse_outside(where, branch.name, f"{tracking.name} {target[:10]}", outside)
        try:
            repo.git.merge("--ff-only", "--quiet", target)
        except GitCommandError as exc:
            raise _not_forward(repo, where, branch.name, tracking.name, before, target) from exc
        after = repo.head.commit.hexsha
    message = "up to date" if after == before else f"fast-forwarded {str(before)[:10]}..{after[:10]}"
    return SyncResult(before, after, remote, message)


def staged_changes(where: ListsRepo) -> list[str]:
    """Files under the lists folder that the next commit changes (lists-relative)."""
    with _open(where.root) as repo:
        valid = repo.head.is_valid()
        base = ["--cached", "--name-only", "-z"] + (["HEAD"] if valid else [])
        if not valid:  # first commit: everything staged is new
            out = repo.git.ls_files("-z", *(["--", where.prefix] if where.prefix else []))
        else:
            out = repo.git.diff(*base, *(["--", where.prefix] if where.prefix else []))
    paths = [where.in_lists(p) for p in out.split("\0") if p]
    return sorted(p for p in paths if p is not None)
