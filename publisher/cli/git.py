"""The git-side commands: publish, plan, history, rollback, explain, watch, install-hook,
validate-staged. `register(subparsers)` adds them to the parser of cli.py.

Like cli.py, these handlers are the only place (with cli.py) that prints; the
work is in publish.py, explain.py, watch.py and hooks.py, the formats in
report.py. Errors propagate as PublisherError to cli.main, which prints them
and exits with their code (3 for a guard-rail refusal).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from publisher.cli import report
from publisher.cli.app import show
from publisher.errors import Problem, ValidationFailed


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _err(text: str) -> None:
    print(text, file=sys.stderr)


def _warnings(problems: list[Problem]) -> None:
    for problem in problems:
        if not problem.is_error:
            _err(show(problem))


def _publish_and_report(args: argparse.Namespace, rev: str, action: str, intro: list[str] = ()) -> int:  # type: ignore[assignment]
    from publisher.publish.release import apply, prepare

    prepared = prepare(args.lists, args.zones, rev=rev, now=_now(), show=args.limit)
    _warnings(prepared.build.warnings)
    for line in [*intro, *report.plan_text(prepared, args.limit)]:
        print(line)
    outcome = apply(prepared, args.zones, force=args.force, dry_run=args.dry_run, action=action)
    if outcome.forced:
        print(f"forced past {len(outcome.forced)} guard rail(s): {', '.join(sorted({v.rule for v in outcome.forced}))}")
    if args.dry_run:
        print("dry run: nothing was written")
    elif not outcome.written:
        print(f"nothing to publish: commit {prepared.commit.short} answers the same as what is published")
        return 0
    for zp in prepared.plan.zones:
        print(report.summary(zp, prepared.serial(zp.name)))
    for name in prepared.plan.dropped:
        print(f"{name}: no longer published")
    if outcome.written and outcome.manifest is not None:
        print(f"published {args.zones}/{outcome.manifest.generation} (current); the server reloads by itself")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    return _publish_and_report(args, args.commit, "publish")


def cmd_rollback(args: argparse.Namespace) -> int:
    from publisher.publish.release import rollback_target

    target = rollback_target(args.lists, args.zones, args.target)
    intro = [f"rollback: republishing commit {target.commit[:10]} ({target.found_as}) under new serials"]
    return _publish_and_report(args, target.commit, "rollback", intro)


def cmd_plan(args: argparse.Namespace) -> int:
    from publisher.publish.release import prepare

    prepared = prepare(args.lists, args.zones, rev=args.commit, now=_now(), show=args.limit)
    if args.json:
        print(report.plan_json(prepared, args.limit))
    elif args.markdown:
        print(report.plan_markdown(prepared, args.limit), end="")
    else:
        _warnings(prepared.build.warnings)
        for line in report.plan_text(prepared, args.limit):
            print(line)
        if prepared.nothing_to_publish:
            print("nothing to publish")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from publisher.publish.history import read

    records = read(args.zones)
    if args.limit > 0:
        records = records[-args.limit :]
    if args.json:
        print(json.dumps([r.to_json() for r in records], indent=2, sort_keys=True))
    elif not records:
        print(f"no publishes recorded in {args.zones}")
    else:
        for line in report.history_lines(records):
            print(line)
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from publisher.publish.explain import explain

    for line in report.explain_lines(explain(args.query, args.lists, args.zones, now=_now())):
        print(line)
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from publisher.publish.watch import watch

    iterations = 1 if args.once else args.iterations
    watcher = watch(args.lists, args.zones, interval=args.interval, iterations=iterations, pull=not args.no_pull)
    return 1 if iterations is not None and watcher.failures == watcher.runs and watcher.runs else 0


def cmd_install_hook(args: argparse.Namespace) -> int:
    from publisher.publish.hooks import install_hook

    path = install_hook(args.lists, force=args.force)
    print(f"installed {path}: commits with errors in the staged lists are refused (skip once with --no-verify)")
    return 0


def cmd_validate_staged(args: argparse.Namespace) -> int:
    from publisher.lists.load import load_lists
    from publisher.publish.guards import OVERRIDABLE_PROBLEMS
    from publisher.publish.vcs import StagedTree, find_repo, staged_changes

    where = find_repo(args.lists)
    if not args.all and not staged_changes(where):
        return 0  # the commit does not touch the lists: nothing to check, stay fast
    loaded = load_lists(StagedTree(where), as_of=_now())
    problems = sorted(loaded.problems, key=lambda p: (p.location.path, p.location.line or 0))
    blocking = [p for p in problems if p.is_error and p.code not in OVERRIDABLE_PROBLEMS]
    for problem in problems:
        note = (
            "  (a guard rail: publish will need --force)"
            if problem.is_error and problem.code in OVERRIDABLE_PROBLEMS
            else ""
        )
        _err(show(problem) + note)
    if blocking:
        raise ValidationFailed(blocking)
    return 0


def _common(p: argparse.ArgumentParser, *, commit: bool = True) -> None:
    if commit:
        p.add_argument(
            "--commit", default="HEAD", metavar="REV", help="the commit to read the lists from (default HEAD)"
        )
    p.add_argument("--limit", type=int, default=20, metavar="N", help="entries shown per zone (0: all; default 20)")


def register(subparsers: Any) -> None:
    """Add the git-side subcommands to cli.py's subparsers."""
    p = subparsers.add_parser("publish", help="publish the committed lists (HEAD) into zones/")
    _common(p)
    p.add_argument("--force", action="store_true", help="publish past the guard rails (never past validation errors)")
    p.add_argument("--dry-run", action="store_true", help="show the plan and the serials, write nothing")
    p.set_defaults(func=cmd_publish)

    p = subparsers.add_parser("plan", help="what a publish would change, per zone")
    _common(p)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable")
    fmt.add_argument("--markdown", action="store_true", help="for a merge request comment")
    p.set_defaults(func=cmd_plan)

    p = subparsers.add_parser("history", help="the publishes so far")
    p.add_argument("--limit", type=int, default=0, metavar="N", help="only the last N (default: all)")
    p.add_argument("--json", action="store_true", help="machine-readable")
    p.set_defaults(func=cmd_history)

    p = subparsers.add_parser("rollback", help="republish an earlier serial or commit under a new serial")
    p.add_argument("target", metavar="SERIAL|REV", help="a serial from `history`, or a git revision")
    _common(p, commit=False)
    p.add_argument("--force", action="store_true", help="publish past the guard rails")
    p.add_argument("--dry-run", action="store_true", help="show the plan, write nothing")
    p.set_defaults(func=cmd_rollback)

    p = subparsers.add_parser("explain", help="why an address or domain is listed: entries, author, commit")
    p.add_argument("query", metavar="ADDRESS|DOMAIN")
    p.set_defaults(func=cmd_explain)

    p = subparsers.add_parser("watch", help="pull, publish new commits and expiries, every N seconds")
    p.add_argument(
        "--interval", type=float, default=30.0, metavar="SECONDS", help="seconds between checks (default 30)"
    )
    p.add_argument("--once", action="store_true", help="one check, then exit")
    p.add_argument("--iterations", type=int, default=None, metavar="N", help="stop after N checks")
    p.add_argument("--no-pull", action="store_true", help="do not fetch/fast-forward from the remote")
    p.set_defaults(func=cmd_watch)

    p = subparsers.add_parser("install-hook", help="install the git pre-commit hook that validates staged lists")
    p.add_argument("--force", action="store_true", help="replace a pre-commit hook not installed by publisher")
    p.set_defaults(func=cmd_install_hook)

    p = subparsers.add_parser("validate-staged", help="validate the staged lists (what the pre-commit hook runs)")
    p.add_argument("--all", action="store_true", help="validate even when the commit does not touch the lists")
    p.set_defaults(func=cmd_validate_staged)
