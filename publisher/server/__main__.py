"""`python -m publisher.server --zones DIR --listen ADDR:PORT`: the server without the CLI.

The same as `python -m publisher serve`; kept for running the server on its own.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from publisher.errors import PublisherError
from publisher.server import _ensure_logging, options, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m publisher.server", description=__doc__)
    parser.add_argument("--zones", type=Path, default=Path("zones"), help="the published zones folder")
    parser.add_argument("--listen", action="append", help="ADDR:PORT or [IPv6]:PORT (repeatable; port 0: any)")
    parser.add_argument("--log-queries", action="store_true", help="log every query and its outcome")
    parser.add_argument("--no-watch", action="store_true", help="reload on SIGHUP only")
    parser.add_argument("--tcp-idle-timeout", type=float, default=10.0, help="seconds (RFC 7766)")
    parser.add_argument("--max-tcp", type=int, default=128, help="concurrent TCP connections")
    parser.add_argument("--no-batch", action="store_true", help="plain recvfrom/sendto instead of recvmmsg")
    parser.add_argument("--metrics", metavar="ADDR:PORT", help="serve Prometheus metrics on http://ADDR:PORT/metrics")
    options.add_arguments(parser)
    args = parser.parse_args(argv)
    _ensure_logging()
    try:
        return serve(
            args.zones,
            args.listen,
            log_queries=args.log_queries,
            watch_manifest=not args.no_watch,
            tcp_idle_timeout=args.tcp_idle_timeout,
            max_tcp_connections=args.max_tcp,
            batch=not args.no_batch,
            metrics=args.metrics,
            **options.from_args(args),
        )
    except PublisherError as exc:
        logging.getLogger("publisher.server").error("%s", exc)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
