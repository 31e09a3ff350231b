"""`serve`: the DNS server on zones/, optionally with the git watcher (`--watch`) beside it.

The server is publisher.server; this starts it in the foreground and, with --watch, runs
publisher.publish.watch in a thread so that new commits get published and then served.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from publisher.cli.display import Display

if TYPE_CHECKING:
    from publisher.cli.display import Subparsers


def cmd_serve(args: argparse.Namespace, display: Display) -> int:
    import threading

    from publisher.server import serve

    stop = threading.Event()
    if args.watch:
        from publisher.publish.watch import watch

        thread = threading.Thread(
            target=watch,
            args=(args.lists, args.zones),
            kwargs={"interval": args.interval, "stop": stop},
            name="watch",
            daemon=True,
        )
        thread.start()
    try:
        from publisher.server import options

        return serve(
            args.zones,
            args.listen or None,
            log_queries=args.log_queries,
            metrics=args.metrics,
            **options.from_args(args),
        )
    finally:
        stop.set()


def add_serve(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser("serve", help="serve zones/ over DNS (UDP and TCP)")
    p.add_argument(
        "--listen",
        action="append",
        default=[],
        metavar="ADDR:PORT",
        help="address to listen on, repeatable (default: manifest's, else 127.0.0.1:5353 and [::1]:5353)",
    )
    p.add_argument("--log-queries", action="store_true", help="log every query")
    p.add_argument("--metrics", metavar="ADDR:PORT", help="serve Prometheus metrics on http://ADDR:PORT/metrics")
    p.add_argument("--watch", action="store_true", help="also publish new commits of the lists (see `watch`)")
    p.add_argument("--interval", type=float, default=60.0, help="with --watch: seconds between checks")
    from publisher.server import options

    options.add_arguments(p)
    p.set_defaults(func=cmd_serve)
    return p
