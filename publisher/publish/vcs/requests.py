"""Request branches of `publisher web`: commits made beside the work tree on a private index,
the request refs and their trailers, archiving, the merge of a request as an object, and
fast-forwarding the base branch."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from publisher.errors import VcsError
from publisher.publish.vcs.repo import ZERO_SHA, ListsRepo, _untrusted
from publisher.publish.vcs.trees import dirty_files

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


def tree_with(where: ListsRepo, base: str, changes: Mapping[str, bytes | None]) -> str:
    """The tree of commit `base` with `changes` (lists-relative path -> new bytes, or None to
    delete), written through a private index file: the repository's index and work tree are
    not touched."""
    root = where.root
    with tempfile.TemporaryDirectory(prefix="publisher-index-") as tmp:
        private = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        _run(root, "read-tree", base, env=private)
        for path, data in sorted(changes.items()):
            name = where.in_repo(path)
            if data is None:
                _run(root, "update-index", "--force-remove", "--", name, env=private)
                continue
            blob = _run(root, "hash-object", "-w", "--stdin", data=data)
            _run(root, "update-index", "--add", "--cacheinfo", f"100644,{blob},{name}", env=private)
        return _run(root, "write-tree", env=private)


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
    base_sha = _run(root, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
    tree = tree_with(where, base_sha, changes)
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
