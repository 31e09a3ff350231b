"""Filing a confirmed request: its list edits committed on a branch `requests/<ID>` of the lists'
repository, beside the work tree (never the work tree, the index, HEAD or the base branch), under
a lock, and never published: maintainers review and accept it with `publisher requests`.

The edits: a delisting adds an entry to each block zone's requests file, one of the zone's
`excludes` files (a hole in the whole zone, whichever file lists the address: a bulk feed, a
wider range); an allowlisting adds an entry with owner and contact to the allow zone's requests
file. The zone definitions are read from zones.yaml of the base commit, the edited file is read
back through the lists' own reader (an excludes file as exclusions), and no other list file is
opened (a bulk feed is never parsed here).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from publisher import codes
from publisher.errors import PublisherError, VcsError, WebError
from publisher.lists.config import load_config
from publisher.lists.edit import EditError, Fields, append_entry, date_value, entry_problems, one_line
from publisher.lists.excludes import reading_config
from publisher.lists.yamlmarks import load_yaml
from publisher.model import Config, ZoneConfig
from publisher.publish.vcs import (
    REQUEST_BRANCHES,
    GitTree,
    ListsRepo,
    RequestRef,
    branch_tip,
    commit_beside,
    commit_body,
    common_dir,
    current_branch,
    request_refs,
)
from publisher.web.service import Ask, Edit, Filed

AUTHOR = "publisher web"
DEFAULT_EMAIL = "dnsbl-requests@localhost"  # WebSettings.mail_from's default
#: How long filing waits for another filing to finish before answering 503.
LOCK_WAIT = 10.0
#: The schema's limit on `reason` (the full text stays in the commit message).
MAX_REASON = 1024
_ID = re.compile(r"(\d{4}-\d{2}-\d{2})-(\d{4,})")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_KINDS = {"delist": ("block", "Delisting"), "allowlist": ("allow", "Allowlisting")}


def state_dir(where: ListsRepo) -> Path:
    """$GIT_DIR/publisher (the git directory shared by all work trees), created 0700."""
    path = common_dir(where) / "publisher"
    path.mkdir(mode=0o700, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def base_branch(where: ListsRepo, base: str | None) -> str:
    """The branch requests start from: `base`, or the branch checked out in the lists' clone."""
    name = base or current_branch(where)
    if name is None:
        raise WebError(
            503, "Requests are not taken here", "the lists' clone has no branch checked out (HEAD is detached)"
        )
    if branch_tip(where, name) is None:
        raise WebError(503, "Requests are not taken here", f"the lists' repository has no branch {name}")
    return name


@contextlib.contextmanager
def _locked(where: ListsRepo) -> Iterator[None]:
    """flock on state_dir/requests.lock: one filing at a time, across threads and processes;
    after LOCK_WAIT seconds of waiting, 503."""
    with open(state_dir(where) / "requests.lock", "a+b") as handle:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WebError(503, "Busy", "another request is being filed; try again", retry_after=5) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _config(tree: GitTree) -> Config:
    config, problems = load_config(tree)
    if config is None:
        shown = "; ".join(p.format() for p in problems[:3])
        raise WebError(503, "Requests are not taken here", f"zones.yaml of {tree.describe()} has errors: {shown}")
    return config


def _zone(config: Config, name: str, kind: str) -> ZoneConfig:
    zone = config.zone(name)
    role = _KINDS[kind][0]
    if zone is None or zone.web.requests is None or zone.role != role:
        what = "is not a zone here" if zone is None else f"takes no {kind} requests"
        raise WebError(409, "Not taken here", f"{name} {what}", field="zone")
    return zone


def _reason(text: str) -> str:
    text = one_line(text)
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def _entry(ask: Ask, zone: ZoneConfig, rid: str, today: dt.date) -> tuple[Fields, Literal["exclude", "add"]]:
    """The entry to add for this zone, and how filing calls it: a delisting is an entry of the
    zone's excludes file (every entry there is a hole in the zone), an allowlisting a listing."""
    subject = "ip" if zone.kind == "ip" else "domain"
    tail: Fields = [("added", date_value(today)), ("by", "web-request"), ("ticket", rid)]
    if ask.kind == "delist":
        return [(subject, ask.target), ("reason", _reason(f"delisting request {rid}: {ask.reason}")), *tail], "exclude"
    owner = [("owner", one_line(ask.organisation)), ("contact", one_line(ask.contact))]
    return [(subject, ask.target), *owner, ("reason", _reason(ask.reason)), *tail], "add"


def _field(problem_code: str) -> str:
    return {codes.TXT_TOO_LONG: "reason", codes.MISSING_OWNER: "organisation"}.get(problem_code, "address")


def _edits(
    tree: GitTree, config: Config, ask: Ask, rid: str, today: dt.date
) -> tuple[tuple[Edit, ...], dict[str, bytes | None]]:
    """What filing `ask` changes: the edits, and the files' new bytes (checked by the lists' reader)."""
    files = set(tree.files())
    changes: dict[str, bytes | None] = {}
    edits: list[Edit] = []
    checks: list[tuple[str, ZoneConfig]] = []

    def current(path: str) -> bytes | None:
        return changes[path] if path in changes else tree.read(path) if path in files else None

    for name in ask.zones:
        zone = _zone(config, name, ask.kind)
        target = zone.web.requests
        assert target is not None
        fields, action = _entry(ask, zone, rid, today)
        data, text = append_entry(target, current(target), fields)
        changes[target] = data
        edits.append(Edit(zone.name, target, action, text))
        checks.append((target, reading_config(zone) if zone.is_excludes(target) else zone))
    for path, zone in checks:
        before = tree.read(path) if path in files else None
        known = {(p.code, p.message) for p in entry_problems(path, before, zone)} if before is not None else set()
        new = [p for p in entry_problems(path, changes[path] or b"", zone) if (p.code, p.message) not in known]
        if new:
            detail = "; ".join(p.message for p in new[:3])
            raise WebError(422, "The lists refuse this request", detail, field=_field(new[0].code))
    return tuple(edits), changes


def _plan(
    where: ListsRepo, base: str, ask: Ask, rid: str, today: dt.date
) -> tuple[str, tuple[Edit, ...], dict[str, bytes | None]]:
    try:
        tree = GitTree(where, base)
        edits, changes = _edits(tree, _config(tree), ask, rid, today)
    except EditError as exc:
        raise WebError(422, "The lists refuse this request", str(exc), field="address") from exc
    except WebError:
        raise
    except PublisherError as exc:  # VcsError, TreeError: the repository, not the request
        raise WebError(503, "Requests are not taken here", f"the lists' repository cannot be read: {exc}") from exc
    return tree.commit.sha, edits, changes


def plan_edits(where: ListsRepo, base: str, ask: Ask, *, today: dt.date) -> tuple[Edit, ...]:
    """The edits filing `ask` would make on `base` now (the ID shown as NNNN); nothing is written.
    WebError 422 (field "address", "reason" or "organisation") when the lists would refuse them."""
    return _plan(where, base, ask, f"{today.isoformat()}-NNNN", today)[1]


def next_id(refs: list[RequestRef], day: dt.date) -> str:
    """YYYY-MM-DD-NNNN: the next number of that day over every request ref, open or archived."""
    prefix = day.isoformat()
    used = [int(m.group(2)) for r in refs if (m := _ID.fullmatch(r.id)) and m.group(1) == prefix]
    return f"{prefix}-{max(used, default=0) + 1:04d}"


def _trailer(value: str) -> str:
    return one_line(_CONTROL.sub(" ", value))


def message(ask: Ask, rid: str, now: dt.datetime) -> str:
    """The commit message: a subject, the requester's reason, and the request's fields as trailers
    (one line each: line breaks are folded, so no value can add a trailer of its own)."""
    body = _CONTROL.sub(" ", ask.reason.replace("\r\n", "\n")).strip()
    # `git interpret-trailers --parse` stops at a line starting with "---" (a patch follows)
    body = "\n".join(" " + line if line.startswith("---") else line for line in body.split("\n"))
    fields = [
        ("Request-Id", rid),
        ("Request-Kind", ask.kind),
        ("Request-Target", ask.target),
        ("Request-Zones", ", ".join(ask.zones)),
        ("Request-Organisation", ask.organisation),
        ("Request-Contact", ask.contact),
        ("Request-Client", ask.client),
        ("Request-Confirmed", now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("Request-Token", ask.token),
    ]
    trailers = "\n".join(f"{key}: {_trailer(value)}" for key, value in fields if _trailer(value))
    subject = f"{_KINDS[ask.kind][1]} request {rid}: {_trailer(ask.target)}"
    return f"{subject}\n\n{body}\n\n{trailers}\n" if body else f"{subject}\n\n{trailers}\n"


def filed(where: ListsRepo, token: str) -> Filed | None:
    """The request a confirmation's nonce filed, open or archived (its ref then), or None."""
    if not token:
        return None
    for ref in request_refs(where):
        if ref.trailer("Request-Token") == token:
            branch = f"requests/{ref.id}" if ref.state == "open" else ref.ref
            state: Literal["open", "accepted", "rejected"] = (
                "accepted" if ref.state == "accepted" else "rejected" if ref.state == "rejected" else "open"
            )
            return Filed(ref.id, branch, ref.commit, (), True, state)
    return None


def file_request(where: ListsRepo, base: str, ask: Ask, *, now: dt.datetime, email: str = DEFAULT_EMAIL) -> Filed:
    """Commit `ask`'s edits on a new branch requests/<ID> from the tip of `base` (under the lock).
    The same `ask.token` again answers the first filing (`already`, no edits listed)."""
    with _locked(where):
        found = filed(where, ask.token)
        if found is not None:
            return found
        when = now.astimezone(dt.UTC)
        rid = next_id(request_refs(where), when.date())
        sha, edits, changes = _plan(where, base, ask, rid, when.date())
        try:
            commit = commit_beside(
                where,
                sha,
                changes,
                message(ask, rid, when),
                ref=REQUEST_BRANCHES + rid,
                author=(AUTHOR, email),
                when=when,
            )
        except VcsError as exc:
            raise WebError(503, "Requests are not taken here", f"the request could not be filed: {exc}") from exc
    return Filed(rid, f"requests/{rid}", commit, edits, False)


def _appended(path: str, old: bytes | None, new: bytes | None) -> list[Fields] | None:
    """The entries `new` appends to `old`'s (each as its (key, value) pairs), or None when the
    change is anything else: an entry removed or edited, defaults changed, the file deleted."""
    if new is None:
        return None
    docs = [load_yaml(path, data).data if data is not None else {} for data in (old, new)]
    if not all(isinstance(d, dict) for d in docs):
        return None
    before, after = (list(d.get("entries") or []) for d in docs)
    if after[: len(before)] != before or docs[0].get("defaults") != docs[1].get("defaults"):
        return None
    added = after[len(before) :]
    if not all(isinstance(e, dict) for e in added):
        return None
    return [[(str(k), v if isinstance(v, bool) else str(v)) for k, v in e.items()] for e in added]


def rebuild(where: ListsRepo, base: str, request: RequestRef, *, now: dt.datetime) -> str:
    """The request made again on the tip of `base`: the entries it appended, appended to the files
    as they are there now; the branch moves to the new commit (same message and author). Two
    requests that append to one file conflict in a merge (both add at its end): this is how the
    second is accepted after the first. A VcsError when the request changed anything but appended
    entries (edited by hand on its branch: merge it by hand)."""
    with _locked(where):
        before, after, tip = (
            GitTree(where, request.base or request.commit),
            GitTree(where, request.commit),
            GitTree(where, base),
        )
        old, new, now_there = before.blob_ids(), after.blob_ids(), tip.blob_ids()
        changes: dict[str, bytes | None] = {}
        for path in sorted(p for p in old.keys() | new.keys() if old.get(p) != new.get(p)):
            added = _appended(
                path, before.read(path) if path in old else None, after.read(path) if path in new else None
            )
            if not added:
                raise VcsError(
                    f"request {request.id} changes {path} by more than appending entries; it cannot be made "
                    f"again on {base}\n  fix: merge it by hand (git merge requests/{request.id}), resolve, "
                    "commit and publish"
                )
            data = tip.read(path) if path in now_there else None
            for fields in added:
                data, _ = append_entry(path, data, fields)
            changes[path] = data
        message, name, email = commit_body(where, request.commit)
        return commit_beside(
            where,
            tip.commit.sha,
            changes,
            message,
            ref=REQUEST_BRANCHES + request.id,
            author=(name, email),
            when=now,
            replacing=request.commit,
        )


class RepoFiler:
    """`service.Filer` over one lists repository: requests start from `base` (None: the branch
    checked out there, looked up at each filing); commits are made as "publisher web" <email>."""

    def __init__(self, where: ListsRepo, base: str | None, *, email: str = DEFAULT_EMAIL) -> None:
        self.where = where
        self.base = base
        self.email = email

    def plan_edits(self, ask: Ask, *, today: dt.date) -> tuple[Edit, ...]:
        return plan_edits(self.where, base_branch(self.where, self.base), ask, today=today)

    def file_request(self, ask: Ask, *, now: dt.datetime) -> Filed:
        return file_request(self.where, base_branch(self.where, self.base), ask, now=now, email=self.email)

    def filed(self, token: str) -> Filed | None:
        return filed(self.where, token)


__all__ = [
    "RepoFiler",
    "base_branch",
    "file_request",
    "filed",
    "message",
    "next_id",
    "plan_edits",
    "rebuild",
    "state_dir",
]
