"""`keys new NAME`: a fresh access key entry for the key file of keyed zones (`serve --access-keys`).

The key is 32 characters of a-z and 0-9 from `secrets` (about 165 bits). The entry goes to
stdout as YAML, indented to sit under the file's `keys:` (so `>> FILE` appends it); how to
put it in force goes to stderr. Each option is checked by the same function the server's
reader uses (publisher.server.keys_file), and the entry is read back by that reader before
it is printed, so what is printed is what the server accepts.
"""

from __future__ import annotations

import argparse
import secrets
import string
import time
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.cli.display import Display
from publisher.errors import UsageError

if TYPE_CHECKING:
    from publisher.cli.display import Subparsers

ALPHABET = string.ascii_lowercase + string.digits
KEY_LENGTH = 32


def new_key() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(KEY_LENGTH))


def _flow(items: list[str]) -> str:
    return "[" + ", ".join(f'"{item}"' if ":" in item else item for item in items) + "]"


def entry(
    name: str,
    key: str,
    *,
    zones: list[str] | None = None,
    networks: list[str] | None = None,
    quota: str | None = None,
    expires: str | None = None,
) -> str:
    """The YAML of one key entry (indented for the `keys:` list); raises UsageError on a bad value."""
    from publisher.server import keys_file as kf

    try:
        lines = [f"  - name: {kf.check_name(name)}", f"    key: {key}"]
        if zones:
            lines.append(f"    zones: {_flow([kf.check_zone(z) for z in zones])}")
        if networks:
            for net in networks:
                kf.check_network(net)
            lines.append(f"    networks: {_flow([n.strip() for n in networks])}")
        if quota is not None:
            lines.append(f"    daily_quota: {kf.check_quota(quota)}")
        if expires is not None:
            if kf.check_expires(expires) <= time.time():
                raise kf.BadValue(f"--expires {expires.strip()} is already past", "give a day still ahead")
            lines.append(f"    expires: {expires.strip()}")
    except kf.BadValue as exc:
        raise UsageError(f"{exc.message}; {exc.fix}") from exc
    text = "\n".join(lines) + "\n"
    _, problems = kf.parse("keys:\n" + text)
    if problems:  # a bug here, not a user error: never print an entry the server refuses
        raise UsageError("the entry does not read back: " + "; ".join(p.message for p in problems))
    return text


def cmd_keys_new(args: argparse.Namespace, display: Display) -> int:
    text = entry(args.name, new_key(), zones=args.zone, networks=args.network, quota=args.quota, expires=args.expires)
    display.line(text, end="")
    display.err(
        "add it under `keys:` in the access key file (`serve --access-keys FILE`, chmod 600); the server "
        "reads the file again when it changes. Give the subscriber the key: it goes in the query name, "
        "KEY.ZONE (README: Keyed access for subscribers)"
    )
    return 0


def add_keys(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser("keys", help="access keys of keyed zones (serve --access-keys)")
    cmds = p.add_subparsers(dest="keys_command", required=True, metavar="KEYS_COMMAND")
    new = cmds.add_parser("new", help="print a new key entry for the access key file")
    new.add_argument("name", metavar="NAME", help="the subscriber's name: what logs and metrics show")
    new.add_argument(
        "--zone", action="append", metavar="ZONE", help="a keyed zone it may query, repeatable (default: every one)"
    )
    new.add_argument("--expires", metavar="DATE", help="last day it works (YYYY-MM-DD, UTC) or a date-time")
    new.add_argument("--quota", metavar="N", help="queries per UTC day (default: no quota)")
    new.add_argument(
        "--network", action="append", metavar="CIDR", help="a client network it may query from, repeatable"
    )
    new.set_defaults(func=cmd_keys_new)
    # Run anywhere: the key file is outside the lists repository (no --lists/--zones needed).
    p.set_defaults(lists=Path("lists"), zones=Path("zones"))  # not cli.root's defaults: no repository lookup
    return p
