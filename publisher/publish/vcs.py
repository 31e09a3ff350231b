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
from dataclasses import dataclass, replace
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


# --- request branches: commits made beside the work tree, never in it -------------------------

REQUEST_BRANCHES = "refs/heads/requests/"
ACCEPTED_REFS = "refs/requests/accepted/"
REJECTED_REFS = "refs/requests/rejected/"
_REQUEST_NAMESPACES = {REQUEST_BRANCHES: "open", ACCEPTED_REFS: "accepted", REJECTED_REFS: "rejected"}


@dataclass(frozen=True, slots=True)
class RequestRef:
    """One request as git keeps it: its branch (open) or its archived ref (accepted, rejected)."""

    id: str
    state: str  # "open", "accepted" or "rejected"
    ref: str  # the full ref name
    tip: str  # what the ref points at (rejected: the commit that records the rejection)
    commit: str  # the request's own commit
    base: str | None  # the request commit's parent: the base it was made from
    created: int  # the request commit's committer time, Unix seconds
    subject: str
    trailers: tuple[tuple[str, str], ...]  # of the request commit, in order
    rejection: tuple[tuple[str, str], ...] = ()  # trailers of the rejection commit

    def trailer(self, key: str, default: str = "") -> str:
        return next((v for k, v in self.trailers if k.lower() == key.lower()), default)


def _git(root: Path, *args: str, env: dict[str, str] | None = None, data: bytes | None = None) -> tuple[int, str, str]:
    """One git command in `root` (plumbing that needs stdin or its own environment): status, stdout, stderr."""
    import subprocess

    full = {**os.environ, **(env or {})}
    done = subprocess.run(
        ["git", "-c", "core.quotepath=off", *args], cwd=root, env=full, input=data, capture_output=True, check=False
    )
    return done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")


def _run(root: Path, *args: str, env: dict[str, str] | None = None, data: bytes | None = None) -> str:
    """One git command's stdout (stripped); a failure is a VcsError with git's own words."""
    status, out, err = _git(root, *args, env=env, data=data)
    if status != 0:
        detail = (err or out).strip()
        raise _untrusted(root, detail) or VcsError(f"git {args[0]} failed in {root}: {detail}")
    return out.strip()


def _parse_trailers(block: str) -> tuple[tuple[str, str], ...]:
    out = []
    for line in block.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            out.append((key.strip(), value.strip()))
    return tuple(out)


def commit_beside(
    where: ListsRepo,
    base: str,
    changes: dict[str, bytes | None],
    message: str,
    *,
    ref: str,
    author: tuple[str, str],
    when: dt.datetime,
    replacing: str = ZERO_SHA,
) -> str:
    """Commit `changes` (lists-relative path -> new bytes, or None to delete) on top of `base` and
    create `ref` pointing at it; the work tree, the index, HEAD and every other ref are left alone
    (a private index file). Creating a ref that exists fails: no request is overwritten. With
    `replacing`, the ref must point at that commit and is moved (a request rebuilt on a new base)."""
    import tempfile

    root = where.root
    stamp = f"{int(when.timestamp())} +0000"
    env = {
        "GIT_AUTHOR_NAME": author[0],
        "GIT_AUTHOR_EMAIL": author[1],
        "GIT_AUTHOR_DATE": stamp,
        "GIT_COMMITTER_NAME": author[0],
        "GIT_COMMITTER_EMAIL": author[1],
        "GIT_COMMITTER_DATE": stamp,
    }
    with tempfile.TemporaryDirectory(prefix="publisher-index-") as tmp:
        base_sha = _run(root, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
        env["GIT_INDEX_FILE"] = str(Path(tmp) / "index")
        _run(root, "read-tree", base_sha, env=env)
        for path, data in sorted(changes.items()):
            name = where.in_repo(path)
            if data is None:
                _run(root, "update-index", "--force-remove", "--", name, env=env)
                continue
            blob = _run(root, "hash-object", "-w", "--stdin", data=data)
            _run(root, "update-index", "--add", "--cacheinfo", f"100644,{blob},{name}", env=env)
        tree = _run(root, "write-tree", env=env)
        commit = _run(root, "commit-tree", tree, "-p", base_sha, "-F", "-", env=env, data=message.encode())
    _run(root, "update-ref", "-m", "publisher: request filed", ref, commit, replacing)
    return commit


def request_refs(where: ListsRepo) -> list[RequestRef]:
    """Every request: open branches, accepted and rejected records, oldest first."""
    fmt = "%(refname)%00%(objectname)%00%(parent)%00%(committerdate:unix)%00%(subject)%00%(trailers:only,unfold)%1e"
    out = _run(where.root, "for-each-ref", f"--format={fmt}", *(p.rstrip("/") for p in _REQUEST_NAMESPACES))
    rows = [r.strip("\n").split("\0") for r in out.split("\x1e") if r.strip("\n")]
    parents = [r[2] for r in rows if r[0].startswith(REJECTED_REFS) and r[2]]
    originals: dict[str, list[str]] = {}
    if parents:  # a rejected request's own commit is the parent of the rejection
        log_fmt = "%H%x00%P%x00%ct%x00%s%x00%(trailers:only,unfold)%x1e"
        logged = _run(
            where.root, "log", "--no-walk=unsorted", "--stdin", f"--format={log_fmt}", data="\n".join(parents).encode()
        )
        for rec in logged.split("\x1e"):
            parts = rec.strip("\n").split("\0")
            if len(parts) == 5:
                originals[parts[0]] = parts
    found = []
    for ref, tip, parent, created, subject, trailers in rows:
        prefix = next(p for p in _REQUEST_NAMESPACES if ref.startswith(p))
        state = _REQUEST_NAMESPACES[prefix]
        rejection: tuple[tuple[str, str], ...] = ()
        commit, base = tip, parent.split()[0] if parent else None
        if state == "rejected" and parent in originals:
            rejection = _parse_trailers(trailers)
            commit, parents_of, created, subject, trailers = originals[parent]
            base = parents_of.split()[0] if parents_of else None
        request = RequestRef(
            ref[len(prefix) :], state, ref, tip, commit, base, int(created or 0), subject, _parse_trailers(trailers)
        )
        found.append(replace(request, rejection=rejection))
    return sorted(found, key=lambda r: (r.created, r.id))


def request_text(where: ListsRepo, request: RequestRef) -> str:
    """The request as `git show` prints it (message, then the diff against its base), no colour;
    a rejected one ends with the rejection's message."""
    text = _run(where.root, "show", "--no-color", "--no-ext-diff", "--format=medium", request.commit)
    if request.state == "rejected":
        text += "\n\n" + _run(where.root, "show", "--no-color", "--no-patch", "--format=medium", request.tip)
    return text + "\n"


def git_user(where: ListsRepo) -> tuple[str, str]:
    """Who runs git here (user.name, user.email as a commit would record them)."""
    ident = _run(where.root, "var", "GIT_COMMITTER_IDENT")
    name, _, rest = ident.partition(" <")
    return name, rest.partition(">")[0]


def _archive(where: ListsRepo, request: RequestRef, target: str, namespace: str) -> None:
    """Create the archive ref and delete the branch in one transaction (both or neither)."""
    script = f"start\ncreate {namespace}{request.id} {target}\ndelete {request.ref} {request.tip}\nprepare\ncommit\n"
    _run(where.root, "update-ref", "--stdin", "-m", f"publisher: request {request.id}", data=script.encode())


def archive_accepted(where: ListsRepo, request: RequestRef) -> None:
    """refs/requests/accepted/ID -> the request commit; the branch goes."""
    _archive(where, request, request.commit, ACCEPTED_REFS)


def archive_rejected(where: ListsRepo, request: RequestRef, message: str) -> str:
    """A commit on top of the request (same tree) saying why, made by the git user, kept as
    refs/requests/rejected/ID; the branch goes. Returns that commit."""
    tree = _run(where.root, "rev-parse", f"{request.commit}^{{tree}}")
    commit = _run(where.root, "commit-tree", tree, "-p", request.commit, "-F", "-", data=message.encode())
    _archive(where, request, commit, REJECTED_REFS)
    return commit


class MergeConflict(VcsError):
    """A merge both sides changed the same lines of: `paths` (lists-relative where inside lists/)."""

    def __init__(self, paths: list[str], message: str) -> None:
        super().__init__(message)
        self.paths = paths


def commit_body(where: ListsRepo, commit: str) -> tuple[str, str, str]:
    """A commit's whole message, author name and author email."""
    out = _run(where.root, "log", "-1", "--format=%an%x00%ae%x00%B", commit)
    name, email, message = out.split("\0", 2)
    return message.rstrip("\n") + "\n", name, email


def merge_commit(where: ListsRepo, base: str, other: str, message: str) -> tuple[str, str]:
    """The merge of `other` into `base` as a commit object (`git merge-tree --write-tree`), made by
    the git user: (the base commit it was made on, the merge commit). Nothing moves: no ref, no
    index, no work tree. Conflicting files raise a VcsError naming them."""
    root = where.root
    base_sha = _run(root, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
    status, out, err = _git(root, "merge-tree", "--write-tree", "--name-only", "--no-messages", base_sha, other)
    lines = out.splitlines()
    if status == 1:
        names = sorted({where.in_lists(f) or f for f in lines[1:] if f.strip()})
        raise MergeConflict(
            names,
            f"{other[:10]} does not merge into {base} ({base_sha[:10]}): both changed {', '.join(names)}; "
            "nothing was changed\n"
            f"  fix: reject it, or merge it by hand (git merge {other[:10]}), resolve, commit and publish",
        )
    if status != 0 or not lines:
        raise VcsError(f"git merge-tree failed in {root}: {(err or out).strip()}")
    merged = _run(root, "commit-tree", lines[0], "-p", base_sha, "-p", other, "-F", "-", data=message.encode())
    return base_sha, merged


def current_branch(where: ListsRepo) -> str | None:
    """The branch checked out in the lists' clone, None when HEAD is detached."""
    status, out, _ = _git(where.root, "symbolic-ref", "--quiet", "--short", "HEAD")
    return out.strip() if status == 0 else None


def branch_tip(where: ListsRepo, branch: str) -> str | None:
    """The commit a local branch points at, None when there is no such branch."""
    status, out, _ = _git(where.root, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}")
    return out.strip() if status == 0 else None


def advance_branch(where: ListsRepo, branch: str, old: str, new: str) -> None:
    """Move `branch` from `old` to its descendant `new`. Checked out: `git merge --ff-only`, refused
    (nothing moved) when files under the lists folder have uncommitted changes; otherwise the ref
    alone, and only if it still points at `old`."""
    if current_branch(where) != branch:
        _run(where.root, "update-ref", "-m", "publisher: request accepted", f"refs/heads/{branch}", new, old)
        return
    dirty = dirty_files(where)
    if dirty:
        shown = ", ".join(f"{d.path} ({d.state})" for d in dirty[:10])
        raise VcsError(
            f"refused to move {branch}: the lists in {where.root} have uncommitted changes: {shown}; "
            "nothing was changed\n  fix: commit or discard them (git status), then accept again"
        )
    if _run(where.root, "rev-parse", "HEAD") != old:
        raise VcsError(f"{branch} moved while the request was merged; nothing was changed; accept again")
    _run(where.root, "merge", "--ff-only", "--quiet", new)


def common_dir(where: ListsRepo) -> Path:
    """The git directory shared by all the repository's work trees ($GIT_COMMON_DIR): where refs live."""
    path = Path(_run(where.root, "rev-parse", "--git-common-dir"))
    return (path if path.is_absolute() else where.root / path).resolve()
