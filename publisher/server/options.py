"""The hardening flags of `serve`, shared by `publisher serve` and `python -m publisher.server`.

Place in the flow: argparse -> `add_arguments` / `from_args` -> serve(**kwargs) -> Server.
Both are off by default: TSIG needs a key file, rate limiting a rate.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from publisher.server.rrl import ANSWERS, DEFAULT_CODE, RrlSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tsig-keys", type=Path, metavar="FILE",
        help="TSIG keys for AXFR and NOTIFY (tsig-keygen output or YAML; keep it out of git, chmod 600); "
        "zones.yaml names a key per secondary with tsig_key",
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


def from_args(args: argparse.Namespace) -> dict[str, Any]:
    """serve() keyword arguments for the flags above (raises ServerError on bad values)."""
    rrl = None
    if args.rrl_qps is not None:
        rrl = RrlSettings(qps=args.rrl_qps, burst=args.rrl_burst, answer=args.rrl_answer, code=args.rrl_code)
    return {"tsig_keys": args.tsig_keys, "rrl": rrl}
