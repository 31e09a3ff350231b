"""`publish`, `plan`, `history`, `rollback` and `watch`: publishing committed lists into zones/.

The work is in publisher.publish (release: prepare and apply; history; watch), the
formats in cli/report.py; these handlers print. A guard-rail refusal propagates as a
PublisherError (exit 3) to cli.app. The publish machinery (and GitPython) is imported
when a handler runs, not when the parser is built.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from publisher.cli.display import Display
from publisher.cli.spf import add_resolver_options
from publisher.cli.words import counted

if TYPE_CHECKING:
    from publisher.cli.display import Subparsers
    from publisher.publish.release import Prepared


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _publish_and_report(
    args: argparse.Namespace,
    display: Display,
    rev: str,
    action: str,
    intro: Sequence[str] = (),
    after: Callable[[Prepared], Sequence[str]] | None = None,
) -> int:
    import contextlib

    from publisher.cli import report
    from publisher.publish.lock import writer_lock
    from publisher.publish.release import apply, prepare

    # Held from reading what is published to the swap: a publish that planned against the
    # same generation as another would reuse its serials for other content.
    held = contextlib.nullcontext() if args.dry_run else writer_lock(args.zones, on_wait=display.err)
    with held:
        prepared = prepare(args.lists, args.zones, rev=rev, now=_now(), show=args.limit)
        display.problems(report.warnings(prepared))
        display.lines([*intro, *report.plan_text(prepared, args.limit)])
        outcome = apply(prepared, args.zones, force=args.force, dry_run=args.dry_run, action=action)
    if outcome.forced:
        rules = ", ".join(sorted({v.rule for v in outcome.forced}))
        display.line(f"forced past {counted(len(outcome.forced), 'guard rails')}: {rules}")
    if args.dry_run:
        display.line("dry run: nothing was written")
    elif not outcome.written:
        display.line(f"nothing to publish: commit {prepared.commit.short} answers the same as what is published")
        return 0
    for zp in prepared.plan.zones:
        display.line(report.summary(zp, prepared.serial(zp.name)))
    for name in prepared.plan.dropped:
        display.line(f"{name}: no longer published")
    if outcome.written and outcome.manifest is not None:
        display.line(report.published_line(args.zones, outcome.manifest.generation, outcome.reloaded))
    if after is not None and not args.dry_run:
        display.lines(after(prepared))
    return 0


def cmd_publish(args: argparse.Namespace, display: Display) -> int:
    return _publish_and_report(args, display, args.commit, "publish")


def cmd_rollback(args: argparse.Namespace, display: Display) -> int:
    from publisher.cli import report
    from publisher.publish.rollback import rollback_leftover, rollback_target

    target = rollback_target(args.lists, args.zones, args.target)
    intro = [f"rollback: republishing commit {target.commit[:10]} ({target.found_as}) under new serials"]

    def leftover(prepared: Prepared) -> list[str]:
        return report.leftover_lines(rollback_leftover(prepared.where, prepared.head, prepared.commit.sha))

    return _publish_and_report(args, display, target.commit, "rollback", intro, leftover)


def cmd_plan(args: argparse.Namespace, display: Display) -> int:
    from publisher.cli import report
    from publisher.publish.release import prepare

    prepared = prepare(args.lists, args.zones, rev=args.commit, now=_now(), show=args.limit)
    if args.json:
        display.line(report.plan_json(prepared, args.limit))
    elif args.markdown:
        display.line(report.plan_markdown(prepared, args.limit), end="")
    else:
        display.problems(report.warnings(prepared))
        display.lines(report.plan_text(prepared, args.limit))
        if prepared.nothing_to_publish:
            display.line("nothing to publish")
    return 0


def cmd_history(args: argparse.Namespace, display: Display) -> int:
    from publisher.cli import report
    from publisher.publish.history import read

    records = read(args.zones)
    shown = records[-args.limit :] if args.limit > 0 else records
    if args.json:
        display.line(json.dumps([r.to_json() for r in shown], indent=2, sort_keys=True))
    elif not shown:
        display.line(f"no publishes recorded in {args.zones}")
    else:
        display.lines(report.history_lines(shown, from_start=len(shown) == len(records)))
    return 0


def cmd_watch(args: argparse.Namespace, display: Display) -> int:
    from publisher.cli.spf import load_expand, make_resolver
    from publisher.publish.spf_watch import STATE_FILE, SpfRunner
    from publisher.publish.watch import Watcher, watch

    iterations = 1 if args.once else args.iterations
    runner = SpfRunner(
        args.lists,
        resolver=make_resolver(args.resolver, args.timeout),
        expand=load_expand,
        state=args.zones / STATE_FILE,
    )
    watcher = Watcher(args.lists, args.zones, pull=not args.no_pull, spf=runner)
    watch(args.lists, args.zones, interval=args.interval, iterations=iterations, watcher=watcher)
    if args.once:
        display.line(watcher.last)  # what the check did, on stdout: the log lines are on stderr
        if runner.attention:
            display.line(f"spf: needs attention: {', '.join(runner.attention)} (see the log)")
    return 1 if iterations is not None and watcher.failures == watcher.runs and watcher.runs else 0


def _common(p: argparse.ArgumentParser, *, commit: bool = True) -> None:
    if commit:
        p.add_argument(
            "--commit", default="HEAD", metavar="REV", help="the commit to read the lists from (default HEAD)"
        )
    p.add_argument("--limit", type=int, default=20, metavar="N", help="entries shown per zone (0: all; default 20)")


def add_publish(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser("publish", help="publish the committed lists (HEAD) into zones/")
    _common(p)
    p.add_argument("--force", action="store_true", help="publish past the guard rails (never past validation errors)")
    p.add_argument("--dry-run", action="store_true", help="show the plan and the serials, write nothing")
    p.set_defaults(func=cmd_publish)
    return p


def add_plan(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser("plan", help="what a publish would change, per zone")
    _common(p)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable")
    fmt.add_argument("--markdown", action="store_true", help="for a merge request comment")
    p.set_defaults(func=cmd_plan)
    return p


def add_history(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser("history", help="the publishes so far")
    p.add_argument("--limit", type=int, default=0, metavar="N", help="only the last N (default: all)")
    p.add_argument("--json", action="store_true", help="machine-readable")
    p.set_defaults(func=cmd_history)
    return p


def add_rollback(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser("rollback", help="republish an earlier serial or commit under a new serial")
    p.add_argument("target", metavar="SERIAL|REV", help="a serial from `history`, or a git revision")
    _common(p, commit=False)
    p.add_argument("--force", action="store_true", help="publish past the guard rails")
    p.add_argument("--dry-run", action="store_true", help="show the plan, write nothing")
    p.set_defaults(func=cmd_rollback)
    return p


def add_watch(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser("watch", help="pull, publish new commits and expiries, every N seconds")
    p.add_argument(
        "--interval", type=float, default=30.0, metavar="SECONDS", help="seconds between checks (default 30)"
    )
    p.add_argument("--once", action="store_true", help="one check, then exit")
    p.add_argument("--iterations", type=int, default=None, metavar="N", help="stop after N checks")
    p.add_argument("--no-pull", action="store_true", help="do not fetch/fast-forward from the remote")
    add_resolver_options(p)  # for the SPF refreshes of zones with `spf:` (their `schedule`)
    p.set_defaults(func=cmd_watch)
    return p
