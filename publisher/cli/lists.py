"""`validate`, `compile` and `lookup`: the commands on the lists of the work tree.

The work is in publisher.lists (load and check) and publisher.publish.build (compile
into zones/, never over a publish); these handlers print its results. They import that
machinery when they run, not when the parser is built, so that other commands (`serve`)
do not load it.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.addresses import AddressError, format_v4
from publisher.cli.display import Display
from publisher.cli.words import counted
from publisher.errors import UsageError, ValidationFailed

if TYPE_CHECKING:
    from publisher.cli.display import Subparsers
    from publisher.compile.lookup import Hit, Query, RangeHit
    from publisher.compile.zone import CompiledZone
    from publisher.lists.tree import Tree
    from publisher.model import SourceData, ZoneConfig


#: `lookup CIDR` prints at most this many overlapping entries per file, then how many more.
RANGE_ENTRIES = 50


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _relative(path: str, root: Path) -> str:
    p = Path(path)
    try:
        return p.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return p.as_posix()


def cmd_validate(args: argparse.Namespace, display: Display) -> int:
    from publisher.lists.load import load_lists
    from publisher.lists.tree import DirTree

    loaded = load_lists(DirTree(args.lists), as_of=_now())
    problems = loaded.problems
    if args.paths:
        wanted = {_relative(p, args.lists) for p in args.paths}
        problems = [p for p in problems if p.location.path in wanted or p.location.path == "zones.yaml"]
    errors = [p for p in problems if p.is_error]
    display.problems(sorted(problems, key=lambda p: (p.location.path, p.location.line or 0)))
    if errors:
        raise ValidationFailed(errors)
    zones = len(loaded.config.zones) if loaded.config else 0
    entries = sum(len(s) for srcs in loaded.sources.values() for s in srcs)
    warnings = len(problems) - len(errors)
    display.line(f"ok: {counted(zones, 'zones')}, {counted(entries, 'entries')}, {counted(warnings, 'warnings')}")
    return 0


#: What `compile` counts of a zone beside its listings (an email zone's names include the test point).
_COUNTED = {"ip": "ranges", "domain": "names", "email": "hash names"}


def cmd_compile(args: argparse.Namespace, display: Display) -> int:
    from publisher.lists.tree import DirTree
    from publisher.publish.build import compile_tree, git_publish, refuse_over_publish, write_build
    from publisher.publish.manifest import Source

    out: Path = args.zones if args.out is None else args.out
    published = git_publish(out)  # checked before compiling too: a million entries take seconds
    if published is not None:
        if not args.unless_published:
            raise refuse_over_publish(out, published)
        source = published.source
        commit = f"commit {source.commit[:10]}" if source is not None and source.commit else "a commit"
        display.line(
            f"{out} holds a publish of {commit} ({published.generation}): left as it is, the work tree is not "
            "compiled over it (`make publish` publishes what is committed)"
        )
        return 0
    now = _now()
    build = compile_tree(DirTree(args.lists), as_of=now)
    display.problems(build.warnings)
    source = Source(kind="worktree", path=str(args.lists.resolve()))
    manifest, changed = write_build(out, build, source=source, now=now)
    for name, entry in sorted(manifest.zones.items()):
        counts = entry.meta.counts
        assert counts is not None  # write_build counts every zone
        state = "new serial" if name in changed else "unchanged"
        display.line(
            f"{name} serial {entry.serial} ({state}): {counted(counts.listings, 'listings')}, "
            f"{counted(counts.intervals or counts.domains, _COUNTED[entry.kind])}"
        )
    display.line(f"wrote {out}/{manifest.generation} (current)")
    return 0


def cmd_lookup(args: argparse.Namespace, display: Display) -> int:
    from publisher.compile.lookup import parse_query
    from publisher.lists.tree import DirTree
    from publisher.publish.build import compile_tree

    if "/" in args.query:
        return _lookup_range(args, display)
    try:
        query = parse_query(args.query)
    except AddressError as exc:
        said = exc.message if args.query.strip() in exc.message else f"{args.query!r}: {exc.message}"
        raise UsageError(said + (f"; {exc.fix}" if exc.fix else "")) from exc
    tree = DirTree(args.lists)
    build = compile_tree(tree, as_of=_now())
    lines, listed_anywhere = lookup_lines(query, build.config.zones, build.zones, build.loaded.sources, tree)
    display.lines(lines)
    return 0 if listed_anywhere or not args.exit_status else 4


def lookup_lines(
    query: Query,
    zones: Sequence[ZoneConfig],
    compiled: Mapping[str, CompiledZone],
    sources: Mapping[str, Sequence[SourceData]],
    tree: Tree | None = None,
) -> tuple[list[str], bool]:
    """`lookup`'s lines for one address, domain, email address or hash, and whether any zone
    lists it. Each zone of the query's kind says listed or not, its answers and the entries
    covering it; an email zone also says the address as it normalises it and the DNS name it
    is asked (an operator digs that). `tree`: where to read a bulk file's line as written."""
    from publisher.compile.lookup import EMAIL, covering_entries, email_asked, zone_answer
    from publisher.publish.explain import line_as_written

    out: list[str] = []
    listed_anywhere = False
    asked_email = False
    for cfg in zones:
        zone = compiled[cfg.name]
        asked = None
        if cfg.kind == "email" and cfg.email is not None:
            asked = email_asked(cfg.email, query)
            if not asked.name and query.family != EMAIL:
                continue  # a domain or an address: not this zone's question (its test names aside)
            asked_email = True
            if not asked.name:
                out.append(f"{cfg.name}: not asked: {asked.why}")
                continue
        elif (query.family == 0) != (cfg.kind == "domain") or query.family == EMAIL:
            continue
        answers = zone_answer(zone, query, cfg.email)
        listed_anywhere = listed_anywhere or bool(answers)
        out.append(f"{cfg.name}: {'listed' if answers else 'not listed'}")
        if asked is not None and cfg.email is not None:
            if asked.normalised:
                out.append(f"  normalised: {asked.normalised}, hashed with {cfg.email.hash}")
            out.append(f"  DNS name: {asked.name}.{cfg.name}")
        for code, txt in answers:
            out.append(f"  A {format_v4(code)}  " + (f'TXT "{txt}"' if txt else "no TXT"))
        lines: dict[str, list[str]] = {}
        for source in sources.get(cfg.name, []):
            for hit in covering_entries(source, query, cfg.email):
                text = hit.text
                if cfg.kind == "email" and tree is not None and hit.line not in source.entries:
                    text = line_as_written(tree, source.path, hit.line, lines) or text
                out.append(f"  {hit.path}:{hit.line}: {text} -> {_entry_value(cfg, hit)}")
    if query.family == EMAIL and not asked_email:
        out.append("no zone here lists email addresses")
    return out, listed_anywhere


def _entry_value(cfg: ZoneConfig, hit: Hit | RangeHit) -> str:
    """What an entry gives, as `lookup` shows it: `127.0.0.2 'reason' expires DATE`,
    `exclude 'reason'`, or `exclude (the zone's excludes file)`."""
    from publisher.compile.lookup import shown_reason

    what = "exclude" if hit.value.exclude else format_v4(hit.value.code)
    if cfg.is_excludes(hit.path):
        what += " (the zone's excludes file)"
    elif hit.value.reason or not hit.value.exclude:
        what += f" {shown_reason(hit.value.reason)!r}"
    return what + (f" expires {hit.value.expires.date()}" if hit.value.expires else "")


def _lookup_range(args: argparse.Namespace, display: Display) -> int:
    """`lookup CIDR`: per ip zone, how much of the block it lists and every entry overlapping it."""
    from publisher.compile.lookup import overlapping_entries, parse_range, range_answer
    from publisher.lists.tree import DirTree
    from publisher.publish.build import compile_tree

    try:
        net = parse_range(args.query)
    except AddressError as exc:
        said = exc.message if args.query.strip() in exc.message else f"{args.query!r}: {exc.message}"
        raise UsageError(said + (f"; {exc.fix}" if exc.fix else "")) from exc
    build = compile_tree(DirTree(args.lists), as_of=_now())
    listed_anywhere = False
    for cfg in build.config.zones:
        if cfg.kind != "ip":
            continue
        found = range_answer(build.zones[cfg.name], net)
        listed_anywhere = listed_anywhere or found.listed > 0
        if found.size <= 1 << 32:
            share = f" ({found.listed:,} of {found.size:,} addresses)" if found.listed else ""
        else:  # an IPv6 block: counts of 30 digits say less than a share
            share = f" ({found.listed / found.size:.4%} of its addresses)" if found.listed else ""
        display.line(f"{cfg.name}: {net} {found.how}{share}")
        for code, txt in found.answers:
            display.line(f"  A {format_v4(code)}  " + (f'TXT "{txt}"' if txt else "no TXT"))
        for source in build.loaded.sources.get(cfg.name, []):
            hits = overlapping_entries(source, net)
            for hit in hits[:RANGE_ENTRIES]:
                display.line(f"  {hit.path}:{hit.line}: {hit.text} {hit.relation} it -> {_entry_value(cfg, hit)}")
            if len(hits) > RANGE_ENTRIES:
                display.line(f"  ... and {len(hits) - RANGE_ENTRIES:,} more entries of {source.path} in {net}")
    return 0 if listed_anywhere or not args.exit_status else 4


def add_validate(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser("validate", help="check the list files; exit 1 on problems")
    p.add_argument("paths", nargs="*", help="only report problems in these files")
    p.set_defaults(func=cmd_validate)
    return p


def add_compile(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "compile",
        help="compile the work tree's lists into zones/ (for trying out; never over a publish)",
        description="Compile the lists of the work tree (uncommitted changes included) into a zones folder, "
        "with no plan, guard rails or history line. It refuses a folder whose current generation "
        "`publish` made: `publish` is the way to change what is served.",
    )
    p.add_argument("--out", type=Path, default=None, help="output folder (default: --zones)")
    p.add_argument(
        "--unless-published",
        action="store_true",
        help="when the folder holds a publish, leave it and exit 0 (what `make serve` runs)",
    )
    p.set_defaults(func=cmd_compile)
    return p


def add_lookup(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "lookup", help="which zones list an address, a CIDR block, a domain or an email address, and why"
    )
    p.add_argument(
        "query",
        help="IPv4/IPv6 address, CIDR block (every entry overlapping it), domain, email address "
        "(each email zone hashes it), or a hash as a feed shares it (32, 40 or 64 hex digits, or a sha256 label)",
    )
    p.add_argument("--exit-status", action="store_true", help="exit 4 when listed nowhere")
    p.set_defaults(func=cmd_lookup)
    return p
