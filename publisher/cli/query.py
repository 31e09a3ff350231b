"""`expiring` and `search`: questions about the lists of the work tree.

The answers come from publisher.lists.query over the loaded lists (with or without
errors in them: an operator asks these while fixing things); this module prints them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import TYPE_CHECKING

from publisher.cli.display import Display
from publisher.errors import UsageError, ValidationFailed

if TYPE_CHECKING:
    from publisher.cli.display import Subparsers
    from publisher.lists.load import Loaded

#: `search` prints at most this many matches, then how many more there are.
SEARCH_LIMIT = 50


def _load(args: argparse.Namespace, now: dt.datetime) -> Loaded:
    from publisher.lists.load import load_lists
    from publisher.lists.tree import DirTree

    loaded = load_lists(DirTree(args.lists), as_of=now)
    if loaded.config is None:
        raise ValidationFailed(loaded.errors)
    return loaded


def _place(display: Display, path: str, line: int) -> str:
    return f"{display.root}/{path}:{line}" if display.root else f"{path}:{line}"


def _date(expires: dt.datetime) -> str:
    """As written: a plain date D counts through D (it stops at D+1 00:00 UTC)."""
    if expires.time() == dt.time(0):
        return (expires - dt.timedelta(days=1)).date().isoformat()
    return f"{expires:%Y-%m-%d %H:%M} UTC"


def _when(expires: dt.datetime, now: dt.datetime) -> str:
    if expires > now:
        days = (expires - now).days
        return "in under a day" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
    days = (now - expires).days
    return "expired today" if days == 0 else f"expired {days} day{'s' if days != 1 else ''} ago"


def cmd_expiring(args: argparse.Namespace, display: Display) -> int:
    from publisher.lists.query import expiring

    if args.days < 0:
        raise UsageError(f"--days {args.days}: give a number of days, 0 or more")
    now = dt.datetime.now(dt.UTC)
    loaded = _load(args, now)
    assert loaded.config is not None
    found = expiring(loaded.config.zones, loaded.sources, as_of=now, within=dt.timedelta(days=args.days))
    if args.json:
        rows = [
            {
                "zone": e.zone,
                "path": e.path,
                "line": e.line,
                "entry": e.text,
                "expires": e.expires.isoformat().replace("+00:00", "Z"),
                "days": e.days(now),
                "expired": e.expires <= now,
                "ticket": e.ticket,
                "by": e.by,
            }
            for e in found
        ]
        display.line(json.dumps(rows, indent=2))
        return 0
    if not found:
        display.line(f"no entry expires within {args.days} days")
    width = max((len(_place(display, e.path, e.line)) for e in found), default=0)
    for e in found:
        extra = "".join(f"  {v}" for v in (e.ticket, f"by {e.by}" if e.by else None) if v)
        when = f"expires {_date(e.expires)} ({_when(e.expires, now)})"
        display.line(f"{_place(display, e.path, e.line):<{width}}  {e.text}  {when}{extra}")
    return 0


def cmd_search(args: argparse.Namespace, display: Display) -> int:
    from publisher.lists.query import search

    if not args.text.strip():
        raise UsageError("give the text to search for")
    loaded = _load(args, dt.datetime.now(dt.UTC))
    assert loaded.config is not None
    found = search(loaded.config.zones, loaded.sources, args.text.strip(), limit=args.limit)
    width = max((len(_place(display, m.path, m.line)) for m in found.shown), default=0)
    for m in found.shown:
        display.line(f"{_place(display, m.path, m.line):<{width}}  {m.text}  {m.zone}  {m.field}: {m.value}")
    if found.total > len(found.shown):
        display.line(f"... and {found.total - len(found.shown):,} more (--limit N shows more)")
    if not found.total:
        display.line(f"no entry contains {args.text.strip()!r}")
    return 0


def add_expiring(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser("expiring", help="entries that expire within --days days, or have expired")
    p.add_argument("--days", type=int, default=14, help="the window in days (default: 14)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_expiring)
    return p


def add_search(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "search", help="entries whose address, name, ticket, reason, owner, contact or author contains TEXT"
    )
    p.add_argument("text", help="the text to find (case-insensitive)")
    p.add_argument("--limit", type=int, default=SEARCH_LIMIT, help=f"print at most N matches (default: {SEARCH_LIMIT})")
    p.set_defaults(func=cmd_search)
    return p
