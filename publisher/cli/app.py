"""The command line: `python -m publisher COMMAND`. The only module that prints.

Every command catches PublisherError once and exits with its code (1 for bad
lists, 2 for usage, 3 for a guard-rail refusal); tracebacks only with --debug.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from publisher import __version__
from publisher.addresses import AddressError, format_v4
from publisher.errors import Problem, PublisherError, UsageError, ValidationFailed
from publisher.lists.tree import DirTree

Handler = Callable[[argparse.Namespace], int]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _err(text: str) -> None:
    print(text, file=sys.stderr)


#: The lists folder as the user named it, so that printed locations open as they are.
_ROOT = ""


def display_root(lists: Path) -> str:
    """How to show the lists folder in locations: relative to the current folder if inside it."""
    try:
        return lists.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(lists)


def show(problem: Problem) -> str:
    return problem.format(_ROOT)


def _print_problems(problems: Sequence[Problem]) -> None:
    for problem in problems:
        _err(show(problem))


def cmd_validate(args: argparse.Namespace) -> int:
    from publisher.lists.load import load_lists

    loaded = load_lists(DirTree(args.lists), as_of=_now())
    problems = loaded.problems
    if args.paths:
        wanted = {_relative(p, args.lists) for p in args.paths}
        problems = [p for p in problems if p.location.path in wanted or p.location.path == "zones.yaml"]
    errors = [p for p in problems if p.is_error]
    _print_problems(sorted(problems, key=lambda p: (p.location.path, p.location.line or 0)))
    if errors:
        raise ValidationFailed(errors)
    zones = len(loaded.config.zones) if loaded.config else 0
    entries = sum(len(s) for srcs in loaded.sources.values() for s in srcs)
    warnings = len(problems) - len(errors)
    print(f"ok: {zones} zones, {entries} entries, {warnings} warning(s)")
    return 0


def _relative(path: str, root: Path) -> str:
    p = Path(path)
    try:
        return p.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return p.as_posix()


def cmd_compile(args: argparse.Namespace) -> int:
    from publisher.publish.build import compile_tree, write_build
    from publisher.publish.manifest import Source

    now = _now()
    build = compile_tree(DirTree(args.lists), as_of=now)
    _print_problems(build.warnings)
    source = Source(kind="worktree", path=str(args.lists.resolve()))
    manifest, changed = write_build(args.out, build, source=source, now=now)
    for name, entry in sorted(manifest.zones.items()):
        counts = entry.meta.counts
        assert counts is not None  # write_build counts every zone
        state = "new serial" if name in changed else "unchanged"
        print(
            f"{name} serial {entry.serial} ({state}): {counts.listings} listings, "
            f"{counts.intervals or counts.domains} {'names' if entry.kind == 'domain' else 'ranges'}"
        )
    print(f"wrote {args.out}/{manifest.generation} (current)")
    return 0


def cmd_lookup(args: argparse.Namespace) -> int:
    from publisher.compile.lookup import covering_entries, parse_query, zone_answer
    from publisher.publish.build import compile_tree

    try:
        query = parse_query(args.query)
    except AddressError as exc:
        raise UsageError(f"{args.query!r}: {exc.message}") from exc
    build = compile_tree(DirTree(args.lists), as_of=_now())
    listed_anywhere = False
    for cfg in build.config.zones:
        zone = build.zones[cfg.name]
        answers = zone_answer(zone, query)
        if (query.family == 0) != (cfg.kind == "domain"):
            continue
        if answers:
            listed_anywhere = True
            print(f"{cfg.name}: listed")
            for code, txt in answers:
                print(f'  A {format_v4(code)}  TXT "{txt}"')
        else:
            print(f"{cfg.name}: not listed")
        for source in build.loaded.sources.get(cfg.name, []):
            for hit in covering_entries(source, query):
                what = "exclude" if hit.value.exclude else format_v4(hit.value.code)
                expiry = f" expires {hit.value.expires.date()}" if hit.value.expires else ""
                print(f"  {hit.path}:{hit.line}: {hit.text} -> {what} {hit.value.reason!r}{expiry}")
    return 0 if listed_anywhere or not args.exit_status else 4


def cmd_serve(args: argparse.Namespace) -> int:
    import threading

    from publisher.server import serve

    stop = threading.Event()
    if args.watch:
        from publisher.publish.watch import watch

        thread = threading.Thread(
            target=watch,
            args=(args.lists, args.zones),
            kwargs={"interval": args.interval, "stop": stop},
            name="watch",
            daemon=True,
        )
        thread.start()
    try:
        from publisher.server import options

        return serve(
            args.zones,
            args.listen or None,
            log_queries=args.log_queries,
            metrics=args.metrics,
            **options.from_args(args),
        )
    finally:
        stop.set()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="publisher", description="Git-driven DNSBL/DNSWL publisher")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--lists", type=Path, default=Path("lists"), help="the lists folder (default: lists)")
    parser.add_argument("--zones", type=Path, default=Path("zones"), help="the zones folder (default: zones)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check the list files; exit 1 on problems")
    p.add_argument("paths", nargs="*", help="only report problems in these files")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("compile", help="compile the work tree's lists into zones/")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: --zones)")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("lookup", help="which zones list an address or domain, and why")
    p.add_argument("query", help="IPv4/IPv6 address or domain")
    p.add_argument("--exit-status", action="store_true", help="exit 4 when listed nowhere")
    p.set_defaults(func=cmd_lookup)

    p = sub.add_parser("serve", help="serve zones/ over DNS (UDP and TCP)")
    p.add_argument(
        "--listen",
        action="append",
        default=[],
        metavar="ADDR:PORT",
        help="address to listen on, repeatable (default: manifest's, else 127.0.0.1:5353 and [::1]:5353)",
    )
    p.add_argument("--log-queries", action="store_true", help="log every query")
    p.add_argument("--metrics", metavar="ADDR:PORT", help="serve Prometheus metrics on http://ADDR:PORT/metrics")
    p.add_argument("--watch", action="store_true", help="also publish new commits of the lists (see `watch`)")
    p.add_argument("--interval", type=float, default=60.0, help="with --watch: seconds between checks")
    from publisher.server import options

    options.add_arguments(p)
    p.set_defaults(func=cmd_serve)

    from publisher.cli import git as cli_git
    from publisher.cli import imports as cli_import

    cli_git.register(sub)
    cli_import.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "out", "unset") is None:
        args.out = args.zones
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    handler: Handler = args.func
    global _ROOT
    _ROOT = display_root(args.lists)
    try:
        return handler(args)
    except ValidationFailed as exc:
        _print_problems([p for p in exc.problems if p.is_error] if args.command != "validate" else [])
        _err(f"error: {exc}")
        return exc.exit_code
    except PublisherError as exc:
        if args.debug:
            raise
        _err(f"error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
