"""The command line: `publisher COMMAND` (or `python -m publisher COMMAND`).

Builds the parser from the command modules (cli/lists.py, serve.py, keys.py, publishing.py,
explain.py, hooks.py, imports.py, spf.py: each adds its subcommands and handlers), runs the
chosen handler with a Display, and turns errors into exit codes: every PublisherError is
caught here once, printed as `error: ...` on stderr, and exits with its code (1 for bad
lists, 2 for usage, 3 for a guard-rail refusal); a traceback only with --debug.

The global options --debug, --lists and --zones work before and after the command
(`publisher --lists L validate`, `publisher validate --lists L`); given in both places,
the one after the command wins, as a repeated option does. Not given, --lists and --zones
are lists/ and zones/ of the repository root, found from the current folder (cli/root.py).
Options are never abbreviated (`--com` is not `--commit`); an unknown command or option
gets the closest known one (cli/typos.py).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from publisher import __version__
from publisher.cli import explain, hooks, imports, keys, lists, publishing, query, requests, serve, spf, typos, web
from publisher.cli.display import Display, Handler
from publisher.cli.root import DEFAULT_LISTS, DEFAULT_ZONES, resolve_defaults
from publisher.errors import PublisherError, UsageError, ValidationFailed

if TYPE_CHECKING:
    from publisher.cli.display import Subparsers

#: The subcommands in the order `publisher --help` lists them.
COMMANDS = (
    lists.add_validate,
    lists.add_compile,
    lists.add_lookup,
    query.add_expiring,
    query.add_search,
    serve.add_serve,
    keys.add_keys,
    publishing.add_publish,
    publishing.add_plan,
    publishing.add_history,
    publishing.add_rollback,
    explain.add_explain,
    publishing.add_watch,
    spf.add_refresh_spf,
    hooks.add_install_hook,
    hooks.add_validate_staged,
    imports.add_import_rbldnsd,
    requests.add_requests,
    web.add_web,
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
    where.add_argument(
        "--lists",
        type=Path,
        default=default(DEFAULT_LISTS),
        help="the lists folder (default: lists/ of the repository)",
    )
    where.add_argument(
        "--zones",
        type=Path,
        default=default(DEFAULT_ZONES),
        help="the zones folder (default: zones/ of the repository)",
    )


class _Parser(argparse.ArgumentParser):
    """A command's parser: no abbreviated options (a typo is reported, not taken)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="publisher", description="Git-driven DNSBL/DNSWL publisher")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _global_options(parser, command=False)
    # argparse's typing ties the subparsers to the main parser's class; ours are the same class
    sub = cast(
        "Subparsers", parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    )
    for add in COMMANDS:
        _with_global_options(add(sub))
    return parser


def _with_global_options(command: argparse.ArgumentParser) -> None:
    """The global options on a command and on each of its own commands (`requests accept`)."""
    _global_options(command, command=True)
    for action in command._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                _with_global_options(child)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = typos.parse(build_parser(), sys.argv[1:] if argv is None else argv)
        resolve_defaults(args)
    except UsageError as exc:
        Display().err(f"error: {exc}")
        return exc.exit_code
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
