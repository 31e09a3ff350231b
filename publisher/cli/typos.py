"""Unknown commands and options: `error: unknown command 'valdate'; did you mean 'validate'?`.

argparse would print its usage and "invalid choice" (or "unrecognized arguments"); this
names the one word that is wrong and the closest known one, as the lists' schema check
does for keys. The parsers are built with allow_abbrev=False (cli/app.py): a prefix such
as `--com` is then an unknown option with a suggestion, not silently taken as `--commit`.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Iterable, Sequence

from publisher.errors import UsageError


def _closest(word: str, known: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, sorted(set(known)), n=1, cutoff=0.6)
    return close[0] if close else None


def _takes_value(parser: argparse.ArgumentParser) -> dict[str, bool]:
    """Each option string of `parser` -> whether a value follows it (--lists X, not --debug)."""
    # argparse has no public listing of a parser's options; _actions is what it formats --help from.
    return {s: action.nargs != 0 for action in parser._actions for s in action.option_strings}


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _unknown_option(word: str, known: Iterable[str], command: str | None) -> UsageError:
    name = word.partition("=")[0]
    where = f" for {command}" if command else ""
    guess = _closest(name, known)
    help_of = f"publisher {command} --help" if command else "publisher --help"
    hint = f"did you mean {guess!r}?" if guess else f"`{help_of}` lists them"
    return UsageError(f"unknown option {name!r}{where}; {hint}")


def _check_before_command(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """The global options before COMMAND, and COMMAND itself."""
    options = _takes_value(parser)
    commands = _commands(parser)
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            i += 1
        elif word.startswith("-") and word != "-":
            name, eq, _ = word.partition("=")
            if name not in options:
                raise _unknown_option(word, options, None)
            i += 2 if options[name] and not eq else 1
            continue
        if i < len(argv) and argv[i] not in commands:
            guess = _closest(argv[i], commands)
            hint = f"did you mean {guess!r}?" if guess else f"the commands: {', '.join(commands)}"
            raise UsageError(f"unknown command {argv[i]!r}; {hint}")
        return


def parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """`parser.parse_args(argv)`, an unknown command or option raising UsageError with the
    closest known one; argparse's own errors (a missing argument, a bad value) exit as before."""
    _check_before_command(parser, argv)
    args, extras = parser.parse_known_args(argv)
    command = getattr(args, "command", None)
    sub = _commands(parser).get(command or "")
    for word in extras:
        if word.startswith("-") and word != "-":
            raise _unknown_option(word, _takes_value(sub or parser), command)
    if extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    return args
