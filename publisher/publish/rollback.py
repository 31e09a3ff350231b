"""`rollback SERIAL|REV`: which commit to republish, and what a rollback leaves behind.

A rollback republishes an old commit under new serials, but HEAD still holds what it took
out: `rollback_leftover` names the files (the command says how to revert them), and
`readds_rollback` gives the plan of a later publish a note when it brings them back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from publisher.errors import PublisherError, UsageError
from publisher.publish import history
from publisher.publish.vcs import GitTree, ListsRepo, commit_info, find_repo


def rollback_target(lists: Path, zones_dir: Path, spec: str) -> history.Target:
    """SERIAL (from the history) or any git revision -> the commit to republish."""
    if history.looks_like_serial(spec):
        found = history.find_serial(zones_dir, int(spec))
        if found is not None:
            return found
    where = find_repo(lists)
    try:
        return history.Target(commit_info(where, spec).sha, f"revision {spec}")
    except PublisherError:
        if history.looks_like_serial(spec):
            raise UsageError(_unknown_serial(zones_dir, int(spec))) from None
        raise UsageError(
            f"{spec!r} is neither a serial in {zones_dir}/{history.HISTORY} nor a git revision\n"
            "  fix: `publisher history` lists the serials published; `git log` the revisions",
        ) from None


def _unknown_serial(zones_dir: Path, serial: int) -> str:
    """Why `serial` cannot be rolled back to, and what can: the serials the history has (after
    `make serve`'s compile, the serial before the first publish came from no commit), or a commit."""
    records = history.read(zones_dir)
    serials = history.rollback_serials(records)
    seen = any(z.serial == serial for rec in records for z in rec.zones.values())
    why = (
        f"serial {serial} came from no commit: {zones_dir} held it before the first publish recorded in "
        f"{zones_dir}/{history.HISTORY} (a compile of the work tree)"
        if seen
        else f"serial {serial} was never published into {zones_dir} (not in {zones_dir}/{history.HISTORY})"
    )
    if not serials:
        listed = "none yet"
    elif serial < serials[0]:
        listed = f"none before {serials[0]}"
    elif len(serials) <= 6:
        listed = ", ".join(map(str, serials))
    else:
        listed = f"{len(serials)}, {serials[0]} to {serials[-1]}"
    return (
        f"{why}, and it is no git revision either\n"
        f"  fix: `publisher history` lists the serials published ({listed}); "
        "or give a commit: `publisher rollback HEAD~1` or a commit id from `git log`"
    )


@dataclass(frozen=True, slots=True)
class Leftover:
    """After a rollback: HEAD still holds what the rollback took out."""

    head: str  # HEAD's sha
    target: str  # the commit republished
    paths: tuple[str, ...]  # list files that differ between the two


def rollback_leftover(where: ListsRepo, head: str, target: str) -> Leftover | None:
    """Which list files of HEAD differ from the commit a rollback republished (None: none).

    The rollback serves the old commit, but HEAD keeps the bad entries: the next publish of
    HEAD brings them back unless the commits since are reverted."""
    if head == target:
        return None
    try:
        at_head = GitTree(where, head).blob_ids()
        old = GitTree(where, target).blob_ids()
    except PublisherError:
        return None
    paths = tuple(sorted(p for p in at_head.keys() | old.keys() if at_head.get(p) != old.get(p)))
    return Leftover(head, target, paths) if paths else None


def readds_rollback(
    where: ListsRepo, zones_dir: Path, generation: str, published: Mapping[str, str], new_blobs: Mapping[str, str]
) -> str | None:
    """The plan's note when what is published (`generation`, its list files' blob ids
    `published`) is a rollback and this publish brings back files as they were published
    before it: the content the rollback took out comes back."""
    try:
        records = history.read(zones_dir)
    except PublisherError:
        return None
    at = next((i for i in range(len(records) - 1, -1, -1) if records[i].generation == generation), None)
    if at is None or at == 0 or records[at - 1].commit is None:
        return None
    rolled, before = records[at], records[at - 1]
    try:
        undone = GitTree(where, str(before.commit)).blob_ids()
    except PublisherError:
        return None
    back = sorted(p for p, sha in new_blobs.items() if undone.get(p) == sha and published.get(p) != sha) + sorted(
        p for p in published.keys() - new_blobs.keys() if p not in undone
    )
    if not back:
        return None
    # the serial the rollback went back to: the target commit's serial when it was published
    serial = next(
        (z.serial for r in reversed(records[:at]) if r.commit == rolled.commit for z in r.zones.values() if z.changed),
        None,
    )
    to = f"serial {serial}" if serial is not None else f"commit {str(rolled.commit)[:10]}"
    day = (rolled.published_at or "")[:10]
    return (
        f"this re-adds what the rollback to {to} removed on {day}: {', '.join(back)} as published before it "
        f"(commit {str(before.commit)[:10]}); to keep that out, `git revert` the commits after "
        f"{str(rolled.commit)[:10]} first"
    )
