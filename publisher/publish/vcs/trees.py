"""The lists read from git: `GitTree` (a commit), `StagedTree` (the index), the files that would
not be published (dirty or untracked), and blame of single lines."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from publisher.errors import VcsError
from publisher.lists.tree import MAX_FILE_BYTES, TreeError
from publisher.publish.vcs.repo import ZERO_SHA, ListsRepo, _commit_info, _open, _resolve

_MODE_LINK = 0o120000
_MODE_GITLINK = 0o160000


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
