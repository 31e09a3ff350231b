"""`requests list | show ID | accept ID | reject ID --why TEXT`: reviewing the requests that
`publisher web` files as branches `requests/<ID>` of the lists' repository.

`accept` merges the branch into the base branch as a commit object first (nothing moves), then
takes that commit through the normal publish path (validate -> plan -> guard rails); only when
that passes does the base branch move to the merge, which is published, and the branch is
archived as refs/requests/accepted/<ID>. `reject` archives it as refs/requests/rejected/<ID>
under a commit that says why. The git plumbing is publisher.publish.vcs.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
from typing import TYPE_CHECKING

from publisher.cli.display import Display
from publisher.errors import PublisherError, UsageError

if TYPE_CHECKING:
    from publisher.cli.display import Subparsers
    from publisher.publish.vcs import ListsRepo, RequestRef

_COLUMNS = ("ID", "KIND", "TARGET", "ZONES", "ORGANISATION", "CONTACT", "AGE", "STATE")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UnknownRequest(PublisherError):
    """No request with that ID (in the state the command needs)."""


def age(seconds: float) -> str:
    """How long ago, in the largest whole unit: 45s, 12m, 5h, 3d."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{max(int(seconds), 0)}s"


def _confirmed_at(r: RequestRef) -> int:
    """When the requester confirmed (a request made again on a new base keeps that time)."""
    try:
        return int(dt.datetime.fromisoformat(r.trailer("Request-Confirmed").replace("Z", "+00:00")).timestamp())
    except ValueError:
        return r.created


def _row(r: RequestRef, now: dt.datetime) -> dict[str, object]:
    return {
        "id": r.id,
        "state": r.state,
        "kind": r.trailer("Request-Kind"),
        "target": r.trailer("Request-Target"),
        "zones": [z.strip() for z in r.trailer("Request-Zones").split(",") if z.strip()],
        "organisation": r.trailer("Request-Organisation"),
        "contact": r.trailer("Request-Contact"),
        "client": r.trailer("Request-Client"),
        "confirmed": r.trailer("Request-Confirmed"),
        "age_seconds": max(int(now.timestamp()) - _confirmed_at(r), 0),
        "ref": r.ref,
        "commit": r.commit,
        "rejected_by": r.rejection[0][1] if r.rejection else None,
    }


def _order(r: RequestRef) -> tuple[str, int, str]:
    """By ID, the order they were filed in (a request made again on accept is a newer commit)."""
    day, _, number = r.id.rpartition("-")
    return (day, int(number), r.id) if number.isdigit() else (r.id, 0, r.id)


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def _find(where: ListsRepo, rid: str, *, open_only: bool) -> RequestRef:
    from publisher.publish.vcs import request_refs

    refs = request_refs(where)
    for ref in refs:
        if ref.id == rid and (ref.state == "open" or not open_only):
            return ref
    done = next((r for r in refs if r.id == rid), None)
    opened = [r.id for r in refs if r.state == "open"]
    listing = f"open requests: {', '.join(opened)}" if opened else "there are no open requests"
    if done is not None:
        raise UnknownRequest(f"request {rid} is already {done.state} ({done.ref}); {listing}")
    raise UnknownRequest(f"no request {rid}; {listing}\n  fix: `publisher requests list` shows them")


def cmd_list(args: argparse.Namespace, display: Display) -> int:
    from publisher.publish.vcs import find_repo, request_refs

    now = _now()
    refs = sorted((r for r in request_refs(find_repo(args.lists)) if args.all or r.state == "open"), key=_order)
    rows = [_row(r, now) for r in refs]
    if args.json:
        display.line(json.dumps(rows, indent=2, sort_keys=True))
        return 0
    if not rows:
        display.line("no open requests" if not args.all else "no requests")
        return 0
    cells = [list(_COLUMNS)]
    for row in rows:
        zones = row["zones"]
        assert isinstance(zones, list)
        cells.append(
            [
                str(row["id"]),
                str(row["kind"]),
                str(row["target"]),
                ",".join(zones),
                str(row["organisation"]),
                str(row["contact"]),
                age(float(str(row["age_seconds"]))),
                str(row["state"]),
            ]
        )
    display.lines(_table(cells))
    return 0


def cmd_show(args: argparse.Namespace, display: Display) -> int:
    from publisher.publish.vcs import find_repo, request_text

    where = find_repo(args.lists)
    display.line(request_text(where, _find(where, args.id, open_only=False)), end="")
    return 0


def _base(where: ListsRepo, base: str | None) -> str:
    from publisher.publish.vcs import branch_tip, current_branch

    name = base or current_branch(where)
    if name is None:
        raise UsageError("HEAD is detached in the lists' repository; name the branch to merge into with --base")
    if branch_tip(where, name) is None:
        raise UsageError(f"no branch {name} in {where.root}")
    return name


def cmd_accept(args: argparse.Namespace, display: Display) -> int:
    from publisher.cli import report
    from publisher.cli.words import counted
    from publisher.publish import vcs
    from publisher.publish.lock import writer_lock
    from publisher.publish.release import apply, prepare, refusal

    where = vcs.find_repo(args.lists)
    request = _find(where, args.id, open_only=True)
    base = _base(where, args.base)
    name, email = vcs.git_user(where)
    message = (
        f"Accept request {request.id}: {request.trailer('Request-Kind')} {request.trailer('Request-Target')}\n\n"
        f"Merge branch 'requests/{request.id}' into {base}.\n\n"
        f"Request-Id: {request.id}\nAccepted-By: {name} <{email}>\n"
    )
    try:
        base_sha, merged = vcs.merge_commit(where, base, request.commit, message)
    except vcs.MergeConflict as exc:
        # Two requests appending to one file both add at its end: make this one again on the base.
        from publisher.web.filing import rebuild

        display.line(f"request {request.id}: {base} has changed {', '.join(exc.paths)} since it was filed")
        commit = rebuild(where, base, request, now=_now())
        request = dataclasses.replace(request, commit=commit, tip=commit)
        display.line(f"request {request.id}: its entries appended again on {base}, as commit {commit[:10]}")
        base_sha, merged = vcs.merge_commit(where, base, request.commit, message)
    display.line(f"request {request.id}: merged into {base} {base_sha[:10]} as commit {merged[:10]} (not moved yet)")
    held = contextlib.nullcontext() if args.dry_run else writer_lock(args.zones, on_wait=display.err)
    with held:
        prepared = prepare(args.lists, args.zones, rev=merged, now=_now(), show=args.limit)
        display.problems(report.warnings(prepared))
        display.lines(report.plan_text(prepared, args.limit))
        if prepared.violations and not args.force:
            raise refusal(prepared.violations)  # before anything moves: base, refs, zones/ stay as they are
        if args.dry_run:
            display.line(f"dry run: nothing was changed; requests/{request.id} stays open")
            return 0
        vcs.advance_branch(where, base, base_sha, merged)
        display.line(f"{base} fast-forwarded to {merged[:10]}")
        try:
            outcome = apply(prepared, args.zones, force=args.force, action="publish")
        finally:
            vcs.archive_accepted(where, request)  # merged into the base either way
    if outcome.forced:
        rules = ", ".join(sorted({v.rule for v in outcome.forced}))
        display.line(f"forced past {counted(len(outcome.forced), 'guard rails')}: {rules}")
    if outcome.written and outcome.manifest is not None:
        for zp in prepared.plan.zones:
            display.line(report.summary(zp, prepared.serial(zp.name)))
        display.line(report.published_line(args.zones, outcome.manifest.generation, outcome.reloaded))
    else:
        display.line(f"nothing to publish: commit {merged[:10]} answers the same as what is published")
    display.line(f"accepted: kept as refs/requests/accepted/{request.id}; branch requests/{request.id} deleted")
    display.lines(_tell(request, "accepted and published" if outcome.written else "accepted"))
    return 0


def _tell(request: RequestRef, what: str) -> list[str]:
    contact = request.trailer("Request-Contact") or "(no contact recorded)"
    kind = "delisting" if request.trailer("Request-Kind") == "delist" else "allowlisting"
    return [
        f"tell the requester: {contact} ({request.trailer('Request-Organisation')}): "
        f"{kind} request {request.id} for {request.trailer('Request-Target')} was {what}"
    ]


def cmd_reject(args: argparse.Namespace, display: Display) -> int:
    from publisher.publish import vcs

    why = args.why.strip()
    if not why:
        raise UsageError("--why needs the reason for rejecting (it is kept with the request)")
    where = vcs.find_repo(args.lists)
    request = _find(where, args.id, open_only=True)
    name, email = vcs.git_user(where)
    body = "".join(c if c in "\n\t" or c >= " " else " " for c in why)
    commit = vcs.archive_rejected(
        where, request, f"Reject request {request.id}\n\n{body}\n\nRejected-By: {name} <{email}>\n"
    )
    display.line(
        f"rejected: kept as refs/requests/rejected/{request.id} ({commit[:10]}); branch requests/{request.id} deleted"
    )
    display.lines(_tell(request, f"rejected: {why}"))
    return 0


def add_requests(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser("requests", help="review delisting and allowlisting requests filed by `publisher web`")
    cmds = p.add_subparsers(dest="requests_command", required=True, metavar="REQUESTS_COMMAND")
    ls = cmds.add_parser("list", help="the open requests (branches requests/<ID>)")
    ls.add_argument("--all", action="store_true", help="also the accepted and rejected ones")
    ls.add_argument("--json", action="store_true", help="machine-readable")
    ls.set_defaults(func=cmd_list)
    show = cmds.add_parser("show", help="a request's message and diff, as git show prints them")
    show.add_argument("id", metavar="ID")
    show.set_defaults(func=cmd_show)
    acc = cmds.add_parser("accept", help="merge, validate, plan and publish a request")
    acc.add_argument("id", metavar="ID")
    acc.add_argument("--base", metavar="BRANCH", help="the branch to merge into (default: the checked-out one)")
    acc.add_argument("--force", action="store_true", help="publish past the guard rails (never past validation errors)")
    acc.add_argument("--dry-run", action="store_true", help="show the plan of the merge, change nothing")
    acc.add_argument("--limit", type=int, default=20, metavar="N", help="entries shown per zone (0: all; default 20)")
    acc.set_defaults(func=cmd_accept)
    rej = cmds.add_parser("reject", help="archive a request as rejected, with the reason")
    rej.add_argument("id", metavar="ID")
    rej.add_argument("--why", required=True, metavar="TEXT", help="why (kept in the rejection's commit message)")
    rej.set_defaults(func=cmd_reject)
    return p
