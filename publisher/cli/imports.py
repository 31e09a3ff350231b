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
    from publisher.importer.migrate import ImportResult, ZoneImport

#: publisher.importer.migrate.DATASET_TYPES, written out so that building the parser does
#: not import the importer (and the lists machinery under it); a test keeps them equal.
DATASET_TYPES = ("ip4set", "ip4trie", "ip4tset", "ip6trie", "ip6tset", "dnset", "combined")


def _inside(path: Path, root: Path) -> Path | None:
    try:
        return path.resolve().relative_to(root)
    except ValueError:
        return None


def _relative(out: Path, lists: Path) -> str:
    """--out as a path relative to the lists folder (zones.yaml globs are relative to it).

    One rule: a relative --out is taken from the lists folder, wherever the command runs
    (`peer/feed.txt` is lists/peer/feed.txt from lists/bl too); run from outside the lists
    folder (the repository root), a path that leads into it from there (`lists/peer/feed.txt`)
    is taken as it is. A folder named like the lists folder inside it (`lists/lists/...`,
    `lists/peer/feed.txt` typed inside lists/) is refused: it is a path written from the
    wrong folder, and would make that lists folder look like a repository root.
    """
    root = lists.resolve()
    cwd = Path.cwd()
    outside = _inside(cwd, root) is None
    if out.is_absolute():
        rel = _inside(out, root)
    else:
        rel = _inside(cwd / out, root) if outside else None
        rel = rel if rel is not None else _inside(root / out, root)
    if rel is None:
        here = None if outside or out.is_absolute() else _inside(cwd / out, root)
        if here is not None:
            raise UsageError(
                f"--out {out}: --out is relative to the lists folder {lists}, wherever you run the command; "
                f"nothing written. Write --out {here.as_posix()}"
            )
        raise UsageError(
            f"--out {out} is not inside the lists folder {lists}; sources must live there: write a path under it, "
            f"e.g. --out feed/{out.name or 'feed.txt'} (relative to {lists}/)"
        )
    if rel.parts and rel.parts[0] == root.name and len(rel.parts) > 1:
        inner = Path(*rel.parts[1:]).as_posix()
        raise UsageError(
            f"--out {out} would write {lists / rel}, a folder {root.name}/ inside the lists folder "
            f"{'(the current folder)' if lists == Path('.') else lists}; "
            f"nothing written. --out is relative to the lists folder: write --out {inner}"
        )
    if rel.suffix not in (".txt", ".yaml", ".yml"):
        raise UsageError(f"--out {out}: write a .txt (bulk) or .yaml (curated) file")
    return rel.as_posix()


def _check_claims(lists: Path, result: ImportResult, display: Display) -> set[str]:
    """Refuse files that another configured zone's sources would take in; return the
    imported zones that zones.yaml has already (their snippet is not needed)."""
    from publisher.importer.placement import claims
    from publisher.lists.config import load_config
    from publisher.lists.tree import DirTree

    config, _ = load_config(DirTree(lists))
    if config is None:
        return set()  # no zones.yaml yet (or a broken one: `validate` says so)
    ours = {z.config.name for z in result.zones}
    paths = sorted({f.path for z in result.zones for f in z.files})
    found = claims(config, paths)
    other = [c for c in found if c.zone not in ours]
    if other:
        c = other[0]
        zone = min(ours, key=len, default="")
        free = [p for p in (f"{zone.split('.')[0]}/{Path(c.path).name}", f"{zone}/{Path(c.path).name}")
                if not claims(config, [p])]  # fmt: skip
        hint = f"e.g. --out {free[0]}, " if free else ""
        raise UsageError(
            f"{c.path} would also feed {c.zone}: its source glob '{c.pattern}' in {lists / 'zones.yaml'} "
            f"matches it, and {c.zone} would publish these entries with its own code and TXT; nothing written. "
            f"Write where no other zone's sources reach ({hint}and add the zones.yaml entry the import prints), "
            f"or import with --zone {c.zone} to add them to that zone"
        )
    for c in found:
        display.err(
            f"note: {c.zone} is in {lists / 'zones.yaml'} already and its source glob '{c.pattern}' takes in "
            f"{c.path}: its entries join that zone, answered with the zone's code and TXT; no snippet to add"
        )
    return {c.zone for c in found}


def _checked_line(zones: tuple[ZoneImport, ...], configured: set[str]) -> list[str]:
    """`checked: ...`: what the comparison with rbldnsd's answers covered, per zone."""
    from publisher.publish.plan import IPV6, amount

    def many(n: int, word: str, shown: str | None = None) -> str:
        return f"{shown or n} {word}{'' if n == 1 else 'es' if word.endswith('s') else 's'}"

    out = []
    for z in zones:
        c = z.checked
        parts = [many(c.v4, "address")] if c.v4 or (z.config.kind == "ip" and not c.v6) else []
        parts += [many(c.v6, "IPv6 address", amount(c.v6, IPV6))] if c.v6 else []
        if z.config.kind == "domain":
            parts.append(many(c.names, "name"))
            parts += [f"every name under {many(c.wildcards, 'wildcard')}"] if c.wildcards else []
        what = "the result" if len(zones) == 1 else z.config.name
        own = (
            f" (with the code and TXT the import chose; {z.config.name}'s own apply)"
            if z.config.name in configured
            else ""
        )
        out.append(f"checked: {what} answers as rbldnsd did for {' and '.join(parts)}{own}")
    return out


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
    configured: set[str] = set()
    if args.import_out:
        configured = _check_claims(lists, result, display)
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
    new_zones = [z for z in result.zones if z.config.name not in configured]
    if new_zones:
        display.line(f"\nAdd to {lists / 'zones.yaml'} under `zones:`:\n")
        display.line("".join(z.snippet for z in new_zones), end="")
    errors = result.errors
    if errors:
        display.err(
            f"error: {len(errors)} problem(s) above: the imported lists do not answer exactly like rbldnsd there"
        )
        return 1
    display.lines(_checked_line(result.zones, configured))
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
        metavar="DIR/NAME.txt|.yaml",
        help="where to write, relative to the lists folder from any folder (bl/feed.txt; at the repository root "
        "lists/bl/feed.txt too; more files are named after it); default: print, write nothing",
    )
    p.add_argument("--role", choices=("block", "allow"), default="block", help="the zone's role (default block)")
    p.add_argument("--force", action="store_true", help="replace existing files")
    p.set_defaults(func=cmd_import_rbldnsd)
    return p
