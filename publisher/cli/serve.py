"""`serve`: the DNS server on zones/, optionally with the git watcher (`--watch`) beside it.

The server is publisher.server and its flags are publisher.server.options, the same set
as `python -m publisher.server`; this adds --watch/--interval, which run
publisher.publish.watch in a thread so that new commits get published and then served.
On a fresh server (nothing in zones/ yet) --watch first publishes in the foreground and
serves once something is published, retrying every interval meanwhile (the reason logged
once), instead of exiting for want of zones. With --metrics the watch's pull counters join
the server's metrics. Without --watch nothing of git, the lists or the publish machinery is
imported.
"""

from __future__ import annotations

import argparse
import threading
from typing import TYPE_CHECKING

from publisher.cli.display import Display
from publisher.server import options

if TYPE_CHECKING:
    from publisher.cli.display import Subparsers
    from publisher.publish.watch import Watcher


def _first_publish(watcher: Watcher, interval: float) -> bool:
    """Wait for zones/ to hold a publish (at once when it does); False when SIGTERM/SIGINT came first."""
    import signal

    from publisher.publish.watch import wait_for_publish

    if watcher.published():
        return True
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        return wait_for_publish(watcher, interval=interval, stop=stop)
    # The server installs its own handlers once it runs; until then a stop ends the wait.
    before = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return wait_for_publish(watcher, interval=interval, stop=stop)
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def cmd_serve(args: argparse.Namespace, display: Display) -> int:
    from publisher.server import serve

    serving = options.from_args(args)  # before the watcher starts: bad values stop here
    stop = threading.Event()
    if args.watch:
        from publisher.cli.spf import load_expand, make_resolver
        from publisher.publish.spf_watch import STATE_FILE, SpfRunner
        from publisher.publish.watch import Watcher, watch

        runner = SpfRunner(
            args.lists,
            resolver=make_resolver(args.resolver, args.timeout),
            expand=load_expand,
            state=args.zones / STATE_FILE,
        )
        watcher = Watcher(args.lists, args.zones, spf=runner)
        if args.metrics:
            try:
                from publisher.server import metrics
            except ImportError:
                pass  # the server says what is missing when it starts the endpoint
            else:
                metrics.collect_also(metrics.WatchCollector(watcher))
        if not _first_publish(watcher, args.interval):
            return 0
        thread = threading.Thread(
            target=watch,
            args=(args.lists, args.zones),
            kwargs={"interval": args.interval, "stop": stop, "watcher": watcher},
            name="watch",
            daemon=True,
        )
        thread.start()
    try:
        return serve(args.zones, args.listen, **serving)
    finally:
        stop.set()


def add_serve(sub: Subparsers) -> argparse.ArgumentParser:
    from publisher.cli.spf import add_resolver_options

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
    add_resolver_options(git)  # with --watch: the SPF refreshes of zones with `spf:` (their `schedule`)
    p.set_defaults(func=cmd_serve)
    return p
