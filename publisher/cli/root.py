"""Where lists/ and zones/ are when --lists and --zones are not given: in the repository
root, found from the current folder as git finds its top level, so that a command run in
lists/bl/ reads the same lists and zones as one run at the root.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from publisher.errors import UsageError

#: The defaults of --lists and --zones on the main parser. cli/app.py tells "not given"
#: from "given as `lists`" by identity: argparse keeps a default object as it is, and
#: makes a new Path of anything typed.
DEFAULT_LISTS = Path("lists")
DEFAULT_ZONES = Path("zones")

NOT_FOUND = "no lists/ here: run from the repository root or pass --lists/--zones"


def find_root(start: Path) -> Path | None:
    """The repository root at or above `start`: the nearest folder holding lists/zones.yaml
    or .git; or `start` itself when it holds lists/ or zones/ (a fresh lists folder, a
    deployment's zones). None when there is none."""
    for folder in (start, *start.parents):
        if (folder / "lists" / "zones.yaml").is_file() or (folder / ".git").exists():
            return folder
        if folder == start and ((start / "lists").is_dir() or (start / "zones").is_dir()):
            return start
    return None


def _shown(path: Path) -> Path:
    """`path` relative to the current folder (`../../lists` from lists/bl), as git shows paths."""
    return Path(os.path.relpath(path))


def resolve_defaults(args: argparse.Namespace) -> None:
    """Set the --lists and --zones not given to ROOT/lists and ROOT/zones.

    Neither given and no root found: UsageError. One given: the other stays relative to the
    current folder when there is no root (as `--zones /srv/zones serve` from anywhere).
    """
    lists_default = getattr(args, "lists", None) is DEFAULT_LISTS
    zones_default = getattr(args, "zones", None) is DEFAULT_ZONES
    if not (lists_default or zones_default):
        return
    root = find_root(Path.cwd())
    if root is None:
        if lists_default and zones_default:
            raise UsageError(NOT_FOUND)
        return
    if lists_default:
        args.lists = _shown(root / "lists")
    if zones_default:
        args.zones = _shown(root / "zones")
