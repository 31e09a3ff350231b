"""`python -m publisher.server --zones DIR --listen ADDR:PORT`: the server without the CLI.

It takes the same serving flags as `publisher serve` (publisher.server.options) and
logs a refusal to start instead of printing it; `publisher serve --watch` adds the git
watcher, which this entry point never loads.
"""

from __future__ import annotations

import argparse
import logging
import sys

from publisher.errors import PublisherError
from publisher.server import _ensure_logging, options, serve


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m publisher.server", description="Serve the published zones over DNS (UDP and TCP)."
    )
    options.add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _ensure_logging()
    try:
        return serve(args.zones, args.listen, **options.from_args(args))
    except PublisherError as exc:
        logging.getLogger("publisher.server").error("%s", exc)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
