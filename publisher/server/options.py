"""The serving flags, one set for `publisher serve` and `python -m publisher.server`.

`add_arguments(parser)` adds every flag that configures the server (--zones, --listen,
query log, reload, TCP, batching, workers, metrics, TSIG, access keys, rate limiting, IXFR); `from_args(args)` turns
them into serve()'s keyword arguments. The CLI adds its own --zones (a global option)
and its git-side --watch/--interval around these.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TypedDict

from publisher.errors import ServerError
from publisher.model import DEFAULT_LISTEN
from publisher.server.rrl import ANSWERS, DEFAULT_CODE, RrlSettings

#: IXFR differences kept per zone (--ixfr-keep): the publisher keeps 4 generations on disk.
DEFAULT_IXFR_KEEP = 8
#: --workers above this is a typo, not a machine: each worker holds its own copy of the zones.
MAX_WORKERS = 256


class ServeOptions(TypedDict):
    """serve()'s keyword arguments after `zones_dir` and `listen`."""

    workers: int  # processes (workers.py); 1: the server runs in this process

    log_queries: bool
    watch_manifest: bool
    tcp_idle_timeout: float
    max_tcp_connections: int
    batch: bool
    metrics: str | None
    tsig_keys: Path | None
    access_keys: Path | None
    rrl: RrlSettings | None
    ixfr_keep: int


def add_arguments(parser: argparse.ArgumentParser, *, zones: bool = True) -> None:
    """Add the serving flags to `parser`; `zones=False` leaves --zones to the caller."""
    if zones:
        parser.add_argument("--zones", type=Path, default=Path("zones"), help="the zones folder (default: zones)")
    parser.add_argument(
        "--listen", action="append", default=None, metavar="ADDR:PORT",
        help="address to listen on, ADDR:PORT or [IPv6]:PORT, repeatable; port 0 picks a free port "
        f"(default: the manifest's, else {' and '.join(DEFAULT_LISTEN)})",
    )  # fmt: skip
    parser.add_argument("--log-queries", action="store_true", help="log every query and its outcome")
    parser.add_argument(
        "--no-watch", action="store_true", help="do not watch zones/ for new publishes: reload on SIGHUP only"
    )
    parser.add_argument(
        "--tcp-idle-timeout", type=float, default=10.0, metavar="SECONDS",
        help="close idle TCP connections after this long (RFC 7766; default 10)",
    )  # fmt: skip
    parser.add_argument(
        "--max-tcp", type=int, default=128, metavar="N",
        help="concurrent TCP connections (default 128); more wait in the listen backlog until an idle one gives way",
    )  # fmt: skip
    parser.add_argument("--no-batch", action="store_true", help="plain recvfrom/sendto instead of recvmmsg")
    parser.add_argument(
        "--workers", default="1", metavar="N",
        help="serve from N processes on the same ports (SO_REUSEPORT), each on its own core; 'auto': one per "
        "usable core (default 1: one process)",
    )  # fmt: skip
    parser.add_argument("--metrics", metavar="ADDR:PORT", help="serve Prometheus metrics on http://ADDR:PORT/metrics")
    parser.add_argument(
        "--tsig-keys", type=Path, metavar="FILE",
        help="TSIG keys for AXFR and NOTIFY (tsig-keygen output or YAML; keep it out of git, chmod 600); "
        "zones.yaml names a key per secondary with tsig_key",
    )  # fmt: skip
    parser.add_argument(
        "--access-keys", type=Path, metavar="FILE",
        help="the subscribers' keys of keyed zones (`keys: required`; YAML, see `publisher keys new`; keep it "
        "out of git, chmod 600); re-read on reload and when it changes",
    )  # fmt: skip
    parser.add_argument(
        "--rrl-qps", type=float, metavar="N",
        help="response-rate limit: N UDP queries a second per client /24 (IPv6 /56); default off",
    )  # fmt: skip
    parser.add_argument(
        "--rrl-burst", type=float, metavar="N", help="queries a client network may save up (default: N of --rrl-qps)"
    )
    parser.add_argument(
        "--rrl-answer", choices=ANSWERS, default="drop",
        help="over quota: drop (default), slip (empty TC reply: retry over TCP), code (answer --rrl-code)",
    )  # fmt: skip
    parser.add_argument(
        "--rrl-code", default=DEFAULT_CODE, metavar="IP",
        help=f"with --rrl-answer code: the 127.255.255.0/24 answer "
        f"(default {DEFAULT_CODE}, 'Excessive number of queries')",
    )  # fmt: skip

    parser.add_argument(
        "--ixfr-keep", type=int, default=DEFAULT_IXFR_KEEP, metavar="N",
        help=f"IXFR: keep the differences of the last N serials per zone (default {DEFAULT_IXFR_KEEP}); "
        "0: secondaries always take the whole zone by AXFR",
    )  # fmt: skip


def workers_count(text: str) -> int:
    """--workers: a count >= 1, or 'auto' for the cores this process may run on."""
    if text.strip().lower() == "auto":
        return max(1, len(os.sched_getaffinity(0)))
    if not text.strip().isdigit() or not 1 <= int(text) <= MAX_WORKERS:
        raise ServerError(f"--workers {text!r}: want a number from 1 to {MAX_WORKERS}, or auto (one per core)")
    return int(text)


def from_args(args: argparse.Namespace) -> ServeOptions:
    """serve() keyword arguments for the flags above (raises ServerError on bad values)."""
    if args.ixfr_keep < 0:
        raise ServerError(f"--ixfr-keep {args.ixfr_keep}: give 0 (no IXFR) or more")
    rrl = None
    if args.rrl_qps is not None:
        rrl = RrlSettings(qps=args.rrl_qps, burst=args.rrl_burst, answer=args.rrl_answer, code=args.rrl_code)
    return ServeOptions(
        workers=workers_count(args.workers),
        log_queries=args.log_queries,
        watch_manifest=not args.no_watch,
        tcp_idle_timeout=args.tcp_idle_timeout,
        max_tcp_connections=args.max_tcp,
        batch=not args.no_batch,
        metrics=args.metrics,
        tsig_keys=args.tsig_keys,
        access_keys=args.access_keys,
        rrl=rrl,
        ixfr_keep=args.ixfr_keep,
    )
