"""`install-hook` and `validate-staged`: the git pre-commit hook that refuses broken lists.

install-hook writes the hook (publisher.publish.hooks); the hook runs validate-staged,
which checks the lists as staged in the index and prints each problem once, then
`commit refused: N error(s) in the staged lists` when the commit is refused. Errors that
only a guard rail would refuse at publish time are shown but do not block the commit.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import TYPE_CHECKING

from publisher.cli.display import Display
from publisher.errors import ValidationFailed

if TYPE_CHECKING:
    from publisher.cli.display import Subparsers


def cmd_install_hook(args: argparse.Namespace, display: Display) -> int:
    from publisher.publish.hooks import install_hook

    path = install_hook(args.lists, force=args.force)
    display.line(f"installed {path}: commits with errors in the staged lists are refused (skip once with --no-verify)")
    return 0


def cmd_validate_staged(args: argparse.Namespace, display: Display) -> int:
    from publisher.lists.load import load_lists
    from publisher.publish.guards import OVERRIDABLE_PROBLEMS
    from publisher.publish.vcs import StagedTree, find_repo, staged_changes

    where = find_repo(args.lists)
    if not args.all and not staged_changes(where):
        return 0  # the commit does not touch the lists: nothing to check, stay fast
    loaded = load_lists(StagedTree(where), as_of=dt.datetime.now(dt.UTC))
    problems = sorted(loaded.problems, key=lambda p: (p.location.path, p.location.line or 0))
    blocking = [p for p in problems if p.is_error and p.code not in OVERRIDABLE_PROBLEMS]
    for problem in problems:
        note = (
            "  (a guard rail: publish will need --force)"
            if problem.is_error and problem.code in OVERRIDABLE_PROBLEMS
            else ""
        )
        display.err(display.show(problem) + note)
    if blocking:
        # Printed here, once: raising ValidationFailed would have main() print the errors
        # again, under a line about publishing that a commit has nothing to do with.
        display.err(f"commit refused: {len(blocking)} error(s) in the staged lists")
        return ValidationFailed.exit_code
    return 0


def add_install_hook(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser("install-hook", help="install the git pre-commit hook that validates staged lists")
    p.add_argument("--force", action="store_true", help="replace a pre-commit hook not installed by publisher")
    p.set_defaults(func=cmd_install_hook)
    return p


def add_validate_staged(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser("validate-staged", help="validate the staged lists (what the pre-commit hook runs)")
    p.add_argument("--all", action="store_true", help="validate even when the commit does not touch the lists")
    p.set_defaults(func=cmd_validate_staged)
    return p
