"""Every git access of the publisher, through GitPython, and nowhere else.

`GitTree`
reads the lists folder from a commit (what `publish` publishes), `StagedTree`
from the index (what the pre-commit hook validates); both implement
`publisher.lists.tree.Tree`. Around them: commit information for the manifest, the
files that would *not* be published (dirty or untracked), blame of single lines
for `plan` and `explain`, and fetch + fast-forward-only pull for `watch` (which refuses
to move the publisher's own checkout past anything but the lists).

GitPython keeps `git cat-file` helpers and caches alive for as long as a `Repo`
lives, which leaks in a long-running `watch`; every function here opens its
own `Repo` with `with Repo(...) as repo:` and closes it before returning.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import pwd
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from git import Repo
from git.exc import BadName, GitCommandError, GitError, InvalidGitRepositoryError, NoSuchPathError

import publisher
from publisher.errors import VcsError
from publisher.lists.tree import MAX_FILE_BYTES, TreeError
from publisher.publish.manifest import Source

_MODE_LINK = 0o120000
_MODE_GITLINK = 0o160000
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


@dataclass(frozen=True, slots=True)
class DirtyFile:
    path: str  # relative to the lists root
    state: str  # "modified", "staged", "untracked", "deleted", "renamed", ...


@dataclass(frozen=True, slots=True)
class BlameLine:
    """Who last touched one line: the commit that introduced the entry as it reads now."""

    line: int
    sha: str
    author: str
    email: str
    date: str  # ISO 8601 author date
    summary: str

    @property
    def short(self) -> str:
        return self.sha[:10]

    @property
    def committed(self) -> bool:
        return self.sha != ZERO_SHA


@dataclass(frozen=True, slots=True)
class SyncResult:
    before: str | None
    after: str | None
    remote: str | None  # the remote fetched from, None when the repository has none
    message: str

    @property
    def moved(self) -> bool:
        return self.before != self.after


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


class _BlobTree:
    """A Tree over a fixed set of blobs: path (relative to the lists root) -> (sha, mode)."""

    def __init__(self, where: ListsRepo, blobs: dict[str, tuple[bytes, int]], label: str) -> None:
        self.where = where
        self._blobs = blobs
        self._label = label

    def describe(self) -> str:
        return self._label

    def files(self) -> list[str]:
        return sorted(self._blobs)

    def blob_ids(self) -> dict[str, str]:
        """Path -> git blob id: equal ids are equal bytes (plan skips unchanged files)."""
        return {path: sha.hex() for path, (sha, _) in self._blobs.items()}

    def read(self, path: str) -> bytes:
        found = self._blobs.get(path)
        if found is None:
            raise TreeError(f"{path}: not in {self._label}")
        binsha, mode = found
        if mode == _MODE_LINK:
            raise TreeError(f"{path}: is a symbolic link in git; links are not followed")
        try:
            with _open(self.where.root) as repo:
                info = repo.odb.info(binsha)
                if info.size > MAX_FILE_BYTES:
                    raise TreeError(f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
                data: bytes = repo.odb.stream(binsha).read()
                return data
        except VcsError as exc:
            raise TreeError(f"{path}: cannot read from {self._label}: {exc}") from exc


def _visible(path: str) -> bool:
    # Like DirTree: dot files and dot folders are not part of the lists.
    return not any(part.startswith(".") for part in path.split("/"))


class GitTree(_BlobTree):
    """The lists folder as it is in one commit (never the work tree)."""

    def __init__(self, where: ListsRepo, rev: str = "HEAD") -> None:
        blobs: dict[str, tuple[bytes, int]] = {}
        with _open(where.root) as repo:
            commit = _resolve(repo, rev)
            self.commit = _commit_info(commit)
            tree = commit.tree
            if where.prefix:
                try:
                    tree = tree / where.prefix
                except KeyError:
                    tree = None
            if tree is not None:
                for item in tree.traverse():
                    if item.type != "blob" or item.mode == _MODE_GITLINK:
                        continue
                    rel = where.in_lists(item.path)
                    if rel is not None and _visible(rel):
                        blobs[rel] = (item.binsha, item.mode)
        folder = f"{where.prefix}/" if where.prefix else "the repository root"
        super().__init__(where, blobs, f"commit {self.commit.short} ({folder})")


class StagedTree(_BlobTree):
    """The lists folder as it is in the index: what `git commit` is about to record.

    Read with `git ls-files --stage`, which honours GIT_INDEX_FILE: during
    `git commit <paths>` the hook runs against a temporary index.
    """

    def __init__(self, where: ListsRepo) -> None:
        blobs: dict[str, tuple[bytes, int]] = {}
        with _open(where.root) as repo:
            args = ["--stage", "-z"] + (["--", where.prefix] if where.prefix else [])
            out = repo.git.ls_files(*args)
        for record in out.split("\0"):
            if not record:
                continue
            meta, _, path = record.partition("\t")
            mode, sha, stage = meta.split()
            rel = where.in_lists(path)
            if rel is None or not _visible(rel) or int(mode, 8) == _MODE_GITLINK:
                continue
            if stage != "0":
                raise VcsError(f"{path}: has merge conflicts in the index; resolve them first")
            blobs[rel] = (bytes.fromhex(sha), int(mode, 8))
        super().__init__(where, blobs, "the index (staged changes)")


_STATES = {"M": "modified", "A": "added", "D": "deleted", "R": "renamed", "C": "copied", "T": "type changed"}


def dirty_files(where: ListsRepo) -> list[DirtyFile]:
    """Uncommitted and untracked files under the lists folder: they are not published."""
    with _open(where.root) as repo:
        args = ["--porcelain", "-z", "--untracked-files=all"] + (["--", where.prefix] if where.prefix else [])
        out = repo.git.status(*args)
    records = out.split("\0")
    found: list[DirtyFile] = []
    i = 0
    while i < len(records):
        record = records[i]
        i += 1
        if len(record) < 4:
            continue
        xy, path = record[:2], record[3:]
        if xy[0] in "RC":
            i += 1  # the original name follows as its own record
        rel = where.in_lists(path)
        if rel is None or not _visible(rel):
            continue
        if xy == "??":
            state = "untracked"
        elif xy[1] != " ":
            state = _STATES.get(xy[1], "modified")
        else:
            state = "staged, " + _STATES.get(xy[0], "modified")
        found.append(DirtyFile(rel, state))
    return found


def _iso(epoch: str, tz: str) -> str:
    sign = -1 if tz.startswith("-") else 1
    offset = dt.timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5])) * sign
    return dt.datetime.fromtimestamp(int(epoch), dt.timezone(offset)).isoformat()


def blame_lines(
    where: ListsRepo, rev: str, path: str, lines: Iterable[int], since: str | None = None
) -> dict[int, BlameLine]:
    """Who introduced each of `lines` (1-based) of `path` (relative to the lists root) at `rev`.

    One `git blame` with one -L per line: cheap for the few entries a plan or
    explain shows. `since` (a commit the caller expects the lines to be newer than, such
    as the published one) limits the walk to `since..rev`, which spares diffing a big
    feed through its whole history; a line older than `since` is then blamed in full.
    """
    with _open(where.root) as repo:
        try:
            data = (_resolve(repo, rev).tree / where.in_repo(path)).data_stream.read()
        except KeyError:
            raise VcsError(f"{path}: not in commit {rev}") from None
        count = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
        # git refuses a whole blame when one -L is past the end of the file
        wanted = sorted(set(n for n in lines if 0 < n <= count))
        if not wanted:
            return {}

        def blame(numbers: list[int], revs: str) -> tuple[dict[int, BlameLine], list[int]]:
            args: list[str] = ["--line-porcelain"]
            for n in numbers:
                args += ["-L", f"{n},{n}"]
            return _parse_blame(repo.git.blame(*args, revs, "--", where.in_repo(path)))

        if since is None:
            return blame(wanted, rev)[0]
        result, older = blame(wanted, f"{since}..{rev}")
        if older:
            result.update(blame(older, rev)[0])
    return result


def _parse_blame(out: str) -> tuple[dict[int, BlameLine], list[int]]:
    """`git blame --line-porcelain` -> the lines' authors, and which of them are at a boundary
    of the walk (where git stopped looking: the root commit, or `since` of a range)."""
    result: dict[int, BlameLine] = {}
    boundary: list[int] = []
    fields: dict[str, str] = {}
    sha, final = "", 0
    for text in out.split("\n"):
        if text.startswith("\t"):
            if "boundary" in fields:  # a root commit, or the `since` end of a range
                boundary.append(final)
            result[final] = BlameLine(
                final,
                sha,
                fields.get("author", ""),
                fields.get("author-mail", "").strip("<>"),
                _iso(fields.get("author-time", "0"), fields.get("author-tz", "+0000")),
                fields.get("summary", ""),
            )
            fields = {}
            sha = ""
        elif not sha:
            parts = text.split()
            if len(parts) >= 3:
                sha, final = parts[0], int(parts[2])
        else:
            key, _, value = text.partition(" ")
            fields[key] = value
    return result, boundary


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
