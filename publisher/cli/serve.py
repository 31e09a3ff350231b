"""`serve`: the DNS server on zones/, optionally with the git watcher (`--watch`) beside it.

The server is publisher.server and its flags are publisher.server.options, the same set
as `python -m publisher.server`; this adds --watch/--interval, which run
publisher.publish.watch in a thread so that new commits get published and then served.
Without --watch nothing of git, the lists or the publish machinery is imported.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from publisher.cli.display import Display
from publisher.server import options

if TYPE_CHECKING:
    from publisher.cli.display import Subparsers


def cmd_serve(args: argparse.Namespace, display: Display) -> int:
    import threading

    from publisher.server import serve

    serving = options.from_args(args)  # before the watcher starts: bad values stop here
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
        return serve(args.zones, args.listen, **serving)
    finally:
        stop.set()


def add_serve(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser("serve", help="serve zones/ over DNS (UDP and TCP)")
    options.add_arguments(p, zones=False)  # --zones: a global option of the CLI
    git = p.add_argument_group("publishing while serving (publisher serve only)")
    git.add_argument("--watch", action="store_true", help="also publish new commits of the lists (see `watch`)")
    git.add_argument(
        "--interval",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="with --watch: seconds between checks (default 60)",
    )
    p.set_defaults(func=cmd_serve)
    return p
