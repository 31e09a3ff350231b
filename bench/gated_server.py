"""bench-serve's server with a client ACL or a keyed zone: the published zones, gated.

`python bench/gated_server.py --zones DIR --listen ADDR:PORT --acl N [--acl-pass] | --keys N`

--acl N: a server-wide ACL of N networks (refuse /24s in 10.0.0.0/8, none of them the bench
client); --acl-pass adds a `pass` for 127.0.0.0/8, so the client is matched by a rule.
--keys N: the benchmark zone keyed, with N keys (`bench_keys`) written to an access key file
(mode 600) and read by publisher/server/keys.py, as `serve --access-keys` does; every key
has a daily quota, so each query pays the quota check too. The bench data's generation is
published without an ACL, so the ZoneSet is built here with the settings a zones.yaml `acl`
and `keys: required` give (publisher/lists/acl.py makes the same AclRules).
"""

from __future__ import annotations

import argparse
import logging
import random
import signal
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ZONE

from publisher.addresses import format_v4
from publisher.model import AclRule
from publisher.publish.manifest import load_published
from publisher.server import Server, ZoneSet, ZoneSettings, keys


def bench_keys(n: int) -> list[str]:
    """N distinct 26-character keys of [a-z0-9], the same on every call."""
    rng = random.Random(2026)
    out: set[str] = set()
    while len(out) < n:
        out.add("".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=26)))
    return sorted(out)


def write_key_file(path: Path, keys: list[str]) -> Path:
    """An access key file of `keys` (each with a quota no run reaches), mode 600."""
    lines = ["keys:"]
    for i, key in enumerate(keys):
        lines += [f"  - name: bench-{i:05d}", f"    key: {key}", "    daily_quota: 1000000000"]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def acl_rules(n: int, with_pass: bool) -> list[AclRule]:
    rules = [AclRule(f"{format_v4(0x0A000000 + (i << 8))}/24", "refuse") for i in range(n)]
    if with_pass:
        rules.append(AclRule("127.0.0.0/8", "pass"))
    return rules


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--zones", type=Path, required=True)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--acl", type=int, default=0)
    parser.add_argument("--acl-pass", action="store_true")
    parser.add_argument("--keys", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    published = load_published(args.zones)
    settings = {ZONE: ZoneSettings(keyed=True)} if args.keys else {}
    zs = ZoneSet.build(published.zones.values(), settings, acl=acl_rules(args.acl, args.acl_pass))
    if args.keys:
        key_file = write_key_file(args.zones.parent / "bench-access-keys.yaml", bench_keys(args.keys))
        zs = replace(zs, access_keys=keys.load(key_file))
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # before the serving threads start: they inherit it
    server = Server(None, [args.listen], zoneset=zs, send_notify=False)
    server.start()
    signal.sigwait(stop)
    server.stop()


if __name__ == "__main__":
    main()
