"""Fetch and fast-forward for `watch` (refusing to move the publisher's own checkout past
anything but the lists; dropping the watch's own refresh commits that upstream lacks), the
push of those commits, hooks and staged changes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from git import Repo
from git.exc import GitCommandError

import publisher
from publisher.errors import VcsError
from publisher.publish.vcs.refreshes import MAX_LOCAL, LocalCommit, local_commits
from publisher.publish.vcs.repo import ListsRepo, _open


@dataclass(frozen=True, slots=True)
class SyncResult:
    before: str | None
    after: str | None
    remote: str | None  # the remote fetched from, None when the repository has none
    message: str
    dropped_refreshes: int = 0  # the watch's own refresh-spf commits dropped to follow upstream

    @property
    def moved(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True, slots=True)
class PushResult:
    pushed: bool  # False: nothing to push (HEAD is upstream's, or the branch follows nothing)
    message: str


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


def _not_forward(
    repo: Repo,
    where: ListsRepo,
    branch: str,
    tracking: str,
    before: str | None,
    target: str,
    local: list[LocalCommit] | None = None,
    blocked: str | None = None,
) -> VcsError:
    """Why `merge --ff-only` failed: a history rewritten upstream (say how far apart), or local changes.

    `local`: the local commits upstream lacks, when known; `blocked`: why they could not be
    dropped although they are all the watch's own refresh commits (`git reset --keep`'s error).
    """
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
    refreshes = [c for c in local or [] if c.refresh]
    others = [c for c in local or [] if not c.refresh]
    why = "(a force-push upstream?)"
    if refreshes and not others:
        why = "(the local ones are the watch's own refresh-spf commits)"
    elif refreshes:
        why = f"({len(refreshes)} of the local ones are the watch's own refresh-spf commits, {len(others)} not)"
    head = (
        f"cannot fast-forward {branch} to {tracking}: they have diverged {why}: "
        f"local {branch} {str(before)[:10]} has {ahead} commit(s) that {tracking} lacks, "
        f"{tracking} {target[:10]} has {behind} that {branch} lacks; nothing was pulled\n"
    )
    if refreshes and not others:
        return VcsError(
            head + f"  uncommitted changes in {where.root} are in the way of dropping them (the refresh makes "
            f"them again) and following {tracking}: git reset --keep refused: {blocked}\n"
            f"  fix: look at `git -C {where.root} status` and discard the local edits (the service's clone takes "
            "none; make them where lists are edited and push them): the next check drops the refresh commits "
            f"and follows {tracking}"
        )
    if refreshes:
        shown = "; ".join(c.line() for c in others[:10]) + (f" (+{len(others) - 10} more)" if len(others) > 10 else "")
        return VcsError(
            head + f"  not refresh-spf commits (made in this clone by hand?): {shown}\n"
            f"  fix: review `git -C {where.root} log --oneline --left-right {branch}...{tracking}`; make those "
            f"changes where lists are edited and push them, then follow upstream with `git -C {where.root} "
            f"reset --keep {tracking}` (the watch makes its refresh commits again on top)"
        )
    return VcsError(
        head + f"  fix: review `git -C {where.root} log --oneline --left-right {branch}...{tracking}`, then follow "
        f"upstream with `git -C {where.root} reset --hard {tracking}` (the next check publishes it); "
        "upstream, push a revert rather than force-pushing the lists branch"
    )


def _git_said(exc: GitCommandError) -> str:
    """What git wrote to stderr, on one line (GitPython wraps it in `stderr: '...'`)."""
    text = str(exc.stderr).strip()
    text = text.removeprefix("stderr:").strip()
    if len(text) > 1 and text[0] == text[-1] == "'":
        text = text[1:-1]
    lines = [ln.strip() for ln in text.splitlines()]
    return "; ".join(ln for ln in lines if ln and not ln.startswith("To ")) or str(exc)


def _drop_refreshes(repo: Repo, where: ListsRepo, branch: str, tracking: str, before: str | None, target: str) -> int:
    """After a failed fast-forward: when every local commit upstream lacks is a refresh commit,
    follow upstream with `git reset --keep` and return how many were dropped; else raise."""
    local = local_commits(repo, where, before, target) if before is not None else None
    if not local or not all(c.refresh for c in local):
        raise _not_forward(repo, where, branch, tracking, before, target, local)
    try:
        repo.git.reset("--keep", "--quiet", target)
    except GitCommandError as exc:
        blocked = _git_said(exc)
        raise _not_forward(repo, where, branch, tracking, before, target, local, blocked) from exc
    return len(local)


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
        dropped = 0
        try:
            repo.git.merge("--ff-only", "--quiet", target)
        except GitCommandError:
            dropped = _drop_refreshes(repo, where, branch.name, tracking.name, before, target)
        after = repo.head.commit.hexsha
    message = "up to date" if after == before else f"fast-forwarded {str(before)[:10]}..{after[:10]}"
    if dropped:
        message = (
            f"dropped {dropped} refresh-spf commit(s) that {tracking.name} lacks (the SPF refresh makes them "
            f"again); fast-forwarded to {tracking.name} {after[:10]}"
        )
    return SyncResult(before, after, remote, message, dropped)


def push_head(where: ListsRepo) -> PushResult:
    """Push the watch's refresh commits: HEAD to the current branch's upstream branch, plain
    (`git push REMOTE HEAD:refs/heads/BRANCH`, never forced).

    Nothing is pushed (pushed False) when the branch has no upstream or upstream has HEAD. A
    push that fails (rejected because upstream moved, no permission, remote down) or a local
    commit upstream lacks that is not a refresh commit (a person's: not the watch's to push)
    raises VcsError; nothing changes locally either way.
    """
    with _open(where.root) as repo:
        if repo.head.is_detached:
            return PushResult(False, f"{where.root}: HEAD is detached; nothing to push")
        branch = repo.active_branch.name
        reader = repo.config_reader()
        remote = str(reader.get_value(f'branch "{branch}"', "remote", ""))
        merge = str(reader.get_value(f'branch "{branch}"', "merge", ""))
        if not remote or remote == "." or not merge:
            return PushResult(False, f"{branch} has no upstream; the commit stays in {where.root}")
        ref = merge if merge.startswith("refs/heads/") else f"refs/heads/{merge}"
        upstream = f"{remote}/{ref.removeprefix('refs/heads/')}"
        head = repo.head.commit.hexsha
        local = local_commits(repo, where, head, upstream)
        if local == []:
            return PushResult(False, f"{upstream} has {head[:10]} already")
        others = [c for c in local or [] if not c.refresh]
        if local is None or others:
            shown = (
                "; ".join(c.line() for c in others[:5]) or f"more than {MAX_LOCAL}, or no {upstream} to compare with"
            )
            raise VcsError(
                f"not pushed to {upstream}: {branch} holds commits that are not the watch's refresh-spf "
                f"commits ({shown}); the refresh commit stays in {where.root}\n"
                f"  fix: review `git -C {where.root} log --oneline {upstream}..{branch}`; the service's clone "
                "takes no hand commits: make them where lists are edited and push them"
            )
        try:
            # never wait on a password prompt: an unattended watch has no one to answer it
            repo.git.push("--quiet", remote, f"HEAD:{ref}", env={"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"})
        except GitCommandError as exc:
            said = _git_said(exc)
            raise VcsError(
                f"cannot push the refresh-spf commit(s) to {remote} {ref}: {said}; they stay in {where.root} "
                f"only, and when {upstream} moves, the next pull drops them and the refresh makes them again on top\n"
                f"  fix: nothing is needed; to have them upstream, give the service push access to {remote}, or run "
                "refresh-spf where lists are edited and push its commits"
            ) from exc
    return PushResult(True, f"{len(local)} refresh-spf commit(s) to {remote} {ref} ({head[:10]})")


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
