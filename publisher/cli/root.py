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
NO_CONFIG = "lists/ here has no zones.yaml: create lists/zones.yaml, or pass --lists/--zones"


def find_root(start: Path) -> Path | None:
    """The repository root at or above `start`: the nearest folder holding lists/zones.yaml
    or .git; or `start` itself when it holds zones/ (a deployment's zones). None when there
    is none. A bare lists/ does not make a root: inside the lists folder, a stray lists/
    (an import written one level too deep) would make the lists folder the root."""
    for folder in (start, *start.parents):
        if (folder / "lists" / "zones.yaml").is_file() or (folder / ".git").exists():
            return folder
        if folder == start and (start / "zones").is_dir():
            return start
    return None


def _lists_clone(start: Path, root: Path | None) -> Path | None:
    """The folder holding zones.yaml at its top, from `start` up to `root` (up to / without
    one), when `root` has no lists/zones.yaml: a lists-only clone, as docs/scaling.md lays
    it out. None otherwise."""
    if root is not None and (root / "lists" / "zones.yaml").is_file():
        return None
    for folder in (start, *start.parents):
        if (folder / "zones.yaml").is_file():
            return folder
        if folder == root:
            break
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
    cwd = Path.cwd()
    root = find_root(cwd)
    clone = _lists_clone(cwd, root) if lists_default and zones_default else None
    if clone is not None:
        lists = _shown(clone).as_posix()
        where = "zones.yaml here" if lists == "." else f"{lists}/zones.yaml"
        raise UsageError(
            f"{where} but no lists/zones.yaml: in a lists-only clone, pass --lists {lists} "
            "(the folder holding zones.yaml) and --zones DIR (the published zones, outside the clone)"
        )
    if root is None:
        if lists_default and zones_default:
            fresh = (cwd / "lists").is_dir()
            raise UsageError(NO_CONFIG if fresh else NOT_FOUND)
        return
    if lists_default:
        args.lists = _shown(root / "lists")
    if zones_default:
        args.zones = _shown(root / "zones")
