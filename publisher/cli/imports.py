"""`publisher import-rbldnsd`: migrate an rbldnsd data file into list files (an edge; prints).

`register(subparsers)` adds the subcommand to cli.py's parser. The work is in
importer.py (pure); this reads the file, writes the list files under the lists
folder (never over an existing file without --force), and prints the problems,
what was written and the zones.yaml snippet to paste. Exit 1 when the import
cannot answer exactly like rbldnsd (the errors above say where), else 0.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from publisher.cli.app import show
from publisher.errors import UsageError
from publisher.importer.migrate import DATASET_TYPES, import_rbldnsd


def _err(text: str) -> None:
    print(text, file=sys.stderr)


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


def cmd_import_rbldnsd(args: argparse.Namespace) -> int:
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
        _err(show(problem))
    files = [f for z in result.zones for f in z.files]
    unique = {f.path: f for f in files}
    if args.import_out:
        existing = [p for p in unique if (lists / p).exists()]
        if existing and not args.force:
            raise UsageError(f"{', '.join(existing)} already exist(s) under {lists}; give --force to replace")
        for f in unique.values():
            _write(lists / f.path, f.text)
            print(f"wrote {lists / f.path} ({f.how}, {f.text.count(chr(10))} lines)")
    else:
        for f in unique.values():
            print(f"# ---- {f.path} ({f.how}) ----")
            print(f.text, end="")
    if result.zones:
        print(f"\nAdd to {lists / 'zones.yaml'} under `zones:`:\n")
        print("".join(z.snippet for z in result.zones), end="")
    errors = result.errors
    if errors:
        _err(f"error: {len(errors)} problem(s) above: the imported lists do not answer exactly like rbldnsd there")
        return 1
    return 0


def register(subparsers: Any) -> None:
    """Add `import-rbldnsd` to cli.py's subparsers."""
    p = subparsers.add_parser("import-rbldnsd", help="turn an rbldnsd data file into list files and a zones.yaml entry")
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
