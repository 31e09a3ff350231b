"""The command line: `publisher COMMAND` (or `python -m publisher COMMAND`).

Builds the parser from the command modules (cli/lists.py, serve.py, publishing.py,
explain.py, hooks.py, imports.py: each adds its subcommands and handlers), runs the
chosen handler with a Display, and turns errors into exit codes: every PublisherError is
caught here once, printed as `error: ...` on stderr, and exits with its code (1 for bad
lists, 2 for usage, 3 for a guard-rail refusal); a traceback only with --debug.

The global options --debug, --lists and --zones work before and after the command
(`publisher --lists L validate`, `publisher validate --lists L`); given in both places,
the one after the command wins, as a repeated option does.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from publisher import __version__
from publisher.cli import explain, hooks, imports, lists, publishing, query, serve
from publisher.cli.display import Display, Handler
from publisher.errors import PublisherError, ValidationFailed

#: The subcommands in the order `publisher --help` lists them.
COMMANDS = (
    lists.add_validate,
    lists.add_compile,
    lists.add_lookup,
    query.add_expiring,
    query.add_search,
    serve.add_serve,
    publishing.add_publish,
    publishing.add_plan,
    publishing.add_history,
    publishing.add_rollback,
    explain.add_explain,
    publishing.add_watch,
    hooks.add_install_hook,
    hooks.add_validate_staged,
    imports.add_import_rbldnsd,
)


#: The title of the global options in each command's --help.
AFTER_COMMAND = "global options (also before COMMAND; given in both places, the one after COMMAND wins)"


def _global_options(parser: argparse.ArgumentParser, *, command: bool) -> None:
    """--debug, --lists, --zones: on the main parser with their defaults, and on each command.

    A command's copies default to SUPPRESS: argparse copies a command's values over the
    main parser's, so a copy with a default would undo `publisher --lists X COMMAND`.
    """
    where = parser.add_argument_group(AFTER_COMMAND) if command else parser

    def default(value: object) -> object:
        return argparse.SUPPRESS if command else value

    where.add_argument("--debug", action="store_true", default=default(False), help="show tracebacks")
    where.add_argument("--lists", type=Path, default=default(Path("lists")), help="the lists folder (default: lists)")
    where.add_argument("--zones", type=Path, default=default(Path("zones")), help="the zones folder (default: zones)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="publisher", description="Git-driven DNSBL/DNSWL publisher")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _global_options(parser, command=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        _global_options(add(sub), command=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    handler: Handler = args.func
    display = Display.for_lists(args.lists)
    try:
        return handler(args, display)
    except ValidationFailed as exc:
        display.problems([p for p in exc.problems if p.is_error] if args.command != "validate" else [])
        display.err(f"error: {exc}")
        return exc.exit_code
    except PublisherError as exc:
        if args.debug:
            raise
        display.err(f"error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
