"""The command line, the only package that prints: one module per command group.

`main` is the console entry point (`publisher`, `python -m publisher`); it imports
cli/app.py when called, so that importing a command module never runs this package's
parser machinery (no import cycle between the command modules and app.py).
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on `argv` (default: sys.argv[1:]); returns the exit status."""
    from publisher.cli.app import main as run

    return run(argv)


__all__ = ["main"]
