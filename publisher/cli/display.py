"""Where the command line's output goes: `Display`, handed to every command handler.

It holds the lists folder as the user named it, so that printed locations open as they
are, and prints lines to stdout and problems and errors to stderr. It looks up
sys.stdout and sys.stderr at each call, so redirecting them (tests) works.
Also the handler and subparsers types the command modules share.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.errors import Problem

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def display_root(lists: Path) -> str:
    """How to show the lists folder in locations: relative to the current folder if inside it."""
    try:
        return lists.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(lists)


@dataclass(frozen=True, slots=True)
class Display:
    """The terminal of one command: stdout for results, stderr for problems and errors."""

    #: The lists folder as shown in locations ("" shows them relative to it).
    root: str = ""

    @classmethod
    def for_lists(cls, lists: Path) -> Display:
        return cls(display_root(lists))

    def show(self, problem: Problem) -> str:
        """The problem as printed, its locations under the lists folder."""
        return problem.format(self.root)

    def line(self, text: str = "", *, end: str = "\n") -> None:
        print(text, end=end)

    def lines(self, texts: Iterable[str]) -> None:
        for text in texts:
            print(text)

    def err(self, text: str) -> None:
        print(text, file=sys.stderr)

    def problems(self, problems: Iterable[Problem]) -> None:
        for problem in problems:
            self.err(self.show(problem))


#: A command: the parsed arguments and the display in, the exit status out.
Handler = Callable[[argparse.Namespace, Display], int]
