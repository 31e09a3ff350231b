"""`import-rbldnsd`: migrate an rbldnsd data file into list files.

The work is in publisher.importer (pure); this reads the file, writes the list files
under the lists folder (never over an existing file without --force), and prints the
problems, what was written and the zones.yaml snippet to paste. Exit 1 when the import
cannot answer exactly like rbldnsd (the errors above say where), else 0.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.cli.display import Display
from publisher.errors import UsageError

if TYPE_CHECKING:
    from publisher.cli.display import Subparsers

#: publisher.importer.migrate.DATASET_TYPES, written out so that building the parser does
#: not import the importer (and the lists machinery under it); a test keeps them equal.
DATASET_TYPES = ("ip4set", "ip4trie", "ip4tset", "ip6trie", "ip6tset", "dnset", "combined")


def _relative(out: Path, lists: Path) -> str:
    """--out as a path relative to the lists folder (zones.yaml globs are relative to it)."""
    try:
        rel = out.resolve().relative_to(lists.resolve())
    except ValueError:
        raise UsageError(f"--out {out} is not inside the lists folder {lists}; sources must live there") from None
    if rel.suffix not in (".txt", ".yaml", ".yml"):
        raise UsageError(f"--out {out}: write a .txt (bulk) or .yaml (curated) file")
    return rel.as_posix()


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # never a half-written list file


def cmd_import_rbldnsd(args: argparse.Namespace, display: Display) -> int:
    from publisher.importer.migrate import import_rbldnsd

    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{path} is not UTF-8 (byte {exc.start}); convert it first, e.g. iconv -f latin1 -t utf-8"
        ) from exc
    lists: Path = args.lists
    rel = _relative(args.import_out, lists) if args.import_out else f"imported/{args.zone.rstrip('.')}.txt"
    result = import_rbldnsd(text, zone=args.zone, out=rel, dataset=args.type, source=str(path), role=args.role)
    for problem in result.problems:
        # The input file is named as the user gave it; the files written, under the lists folder.
        display.err(problem.format("" if problem.location.path == str(path) else display.root))
    files = [f for z in result.zones for f in z.files]
    unique = {f.path: f for f in files}
    if args.import_out:
        existing = [p for p in unique if (lists / p).exists()]
        if existing and not args.force:
            raise UsageError(f"{', '.join(existing)} already exist(s) under {lists}; give --force to replace")
        for f in unique.values():
            _write(lists / f.path, f.text)
            display.line(f"wrote {lists / f.path} ({f.how}, {f.text.count(chr(10))} lines)")
    else:
        for f in unique.values():
            display.line(f"# ---- {f.path} ({f.how}) ----")
            display.line(f.text, end="")
    if result.zones:
        display.line(f"\nAdd to {lists / 'zones.yaml'} under `zones:`:\n")
        display.line("".join(z.snippet for z in result.zones), end="")
    errors = result.errors
    if errors:
        display.err(
            f"error: {len(errors)} problem(s) above: the imported lists do not answer exactly like rbldnsd there"
        )
        return 1
    return 0


def add_import_rbldnsd(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser("import-rbldnsd", help="turn an rbldnsd data file into list files and a zones.yaml entry")
    p.add_argument("file", metavar="FILE", help="the rbldnsd data file")
    p.add_argument("--zone", required=True, help="the zone it serves, e.g. bl.example.test")
    p.add_argument(
        "--type", choices=DATASET_TYPES, default=None, help="rbldnsd dataset type (default: guessed from the file)"
    )
    p.add_argument(
        "--out",
        dest="import_out",
        type=Path,
        default=None,
        metavar="lists/DIR/NAME.txt|.yaml",
        help="where to write (more files are named after it); default: print, write nothing",
    )
    p.add_argument("--role", choices=("block", "allow"), default="block", help="the zone's role (default block)")
    p.add_argument("--force", action="store_true", help="replace existing files")
    p.set_defaults(func=cmd_import_rbldnsd)
    return p
