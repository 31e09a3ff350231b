"""`explain`: why an address or domain is listed in what is published now, with authors.

The work is in publisher.publish.explain, the format in cli/report.py; this prints it.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import TYPE_CHECKING

from publisher.cli.display import Display

if TYPE_CHECKING:
    from publisher.cli.display import Subparsers


def cmd_explain(args: argparse.Namespace, display: Display) -> int:
    from publisher.cli import report
    from publisher.publish.explain import explain
    from publisher.publish.history import published_folder

    zones = published_folder(args.zones)
    display.lines(report.explain_lines(explain(args.query, args.lists, zones, now=dt.datetime.now(dt.UTC))))
    return 0


def add_explain(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser("explain", help="why an address or domain is listed: entries, author, commit")
    p.add_argument("query", metavar="ADDRESS|DOMAIN")
    p.set_defaults(func=cmd_explain)
    return p
