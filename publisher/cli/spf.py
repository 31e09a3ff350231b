"""`refresh-spf`: partners' SPF records -> generated list files -> one commit.

The work is in publisher.publish.spf_refresh; the resolver (`publisher.spf.resolver`) and
the expansion (`publisher.spf.expand`) are imported when the handler runs. One block per
partner: its status, what was added and removed, what is kept until when, what was not
listed, or why nothing changed; then the commit. Exit 1 when a partner could not be
refreshed (DNS trouble, budget), so cron mails; the others are committed all the same.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast

from publisher.addresses import AddressError, split_listen
from publisher.cli.display import Display
from publisher.cli.words import counted
from publisher.errors import UsageError

if TYPE_CHECKING:
    from publisher.cli.display import Subparsers
    from publisher.publish.spf_refresh import Expander, RefreshReport, ZoneRefresh
    from publisher.spf.result import Resolver

#: Lines of added / removed / not listed shown per partner; the rest are counted.
SHOWN = 20


def resolver_address(text: str) -> tuple[str, int]:
    """`--resolver ADDRESS[:PORT]` (an IP address; IPv6 in brackets with a port) -> (host, port)."""
    try:
        return split_listen(text, default_port=53)
    except AddressError as exc:
        raise UsageError(
            f"--resolver {text}: {exc.message.replace('listen address', 'resolver')}\n"
            "  fix: write the resolver's IP address, optionally with a port: 127.0.0.1, 127.0.0.1:5353, [::1]:53"
        ) from None


def make_resolver(addresses: Sequence[str] | None, timeout: float) -> Callable[[], Resolver]:
    """A factory of fresh resolvers (each caches its own answers): the given servers, or
    /etc/resolv.conf's. The resolver module is loaded on the first call."""
    servers = [resolver_address(a) for a in addresses] if addresses else None
    if timeout <= 0:
        raise UsageError(f"--timeout {timeout:g}: must be more than 0 seconds")

    def build() -> Resolver:
        module = importlib.import_module("publisher.spf.resolver")
        return cast("Resolver", module.DnsResolver(nameservers=servers, timeout=timeout))

    return build


def load_expand() -> Expander:
    """`publisher.spf.expand.expand`, loaded when a refresh runs."""
    return cast("Expander", importlib.import_module("publisher.spf.expand").expand)


def _block(item: ZoneRefresh) -> list[str]:
    r = item.partner
    head = f"{r.domain} ({item.zone}, {r.path})"
    if r.status == "unchanged":
        return [f"{head}: nothing changed: {r.why}"]
    moved = f"+{len(r.added)} -{len(r.removed)}"
    lead = f", {moved}" if r.added or r.removed else ""
    if r.status == "ok":
        state = f"ok, {moved} ({r.before.moved(r.after)})" if r.changed else f"ok, unchanged ({r.after.text()})"
        if r.recovered:
            state += f"; the record is good again (was: {r.recovered}), kept entries no longer expire"
    elif r.status == "kept":
        state = f"kept{lead}: {r.why} since {r.since}; {counted(len(r.kept), 'entries')} kept until {r.until}"
    else:
        state = f"failing{lead}: {r.why} since {r.since}; nothing listed"
    lines = [f"{head}: {state}"]
    for label, entries in (("+", r.added), ("-", r.removed)):
        lines += [f"  {label} {e.network}  {e.via}" for e in entries[:SHOWN]]
        if len(entries) > SHOWN:
            lines.append(f"  {label} ... and {len(entries) - SHOWN} more")
    lines += [f"  kept until {e.expires}: {e.network}  {e.via}" for e in r.kept[:SHOWN]]
    if len(r.kept) > SHOWN:
        lines.append(f"  kept ... and {len(r.kept) - SHOWN} more")
    lines += [f"  shared pool: {text}" for text in r.shared[:SHOWN]]
    lines += [f"  not listed: {text}" for text in r.not_listed[:SHOWN]]
    if len(r.not_listed) > SHOWN:
        lines.append(f"  not listed: ... and {len(r.not_listed) - SHOWN} more (in the file's header)")
    return lines


def report_lines(report: RefreshReport) -> list[str]:
    """The per-partner blocks, then the commit (or why there is none)."""
    lines: list[str] = []
    for item in report.refreshed:
        lines += _block(item)
    lines += [u.summary for u in report.undeclared]
    if not report.refreshed and not report.undeclared:
        lines.append("no partners declared in HEAD: nothing to refresh")
    summary = report.message.splitlines()[0]
    if report.dry_run:
        lines.append(
            f"dry run: nothing was written or committed (would commit: {summary})"
            if report.changed
            else "dry run: nothing would change"
        )
    elif report.commit is not None:
        lines.append(f"committed {report.commit[:10]}: {summary}")
        lines.append("  next: review it (git show), then `publisher plan` and `publisher publish`")
    else:
        lines.append(f"nothing changed: no commit (HEAD {report.base[:10]})")
    if report.failed:
        lines.append(f"not refreshed: {', '.join(r.domain for r in report.failed)} (kept as they are; run again later)")
    troubled = [r.partner for r in report.refreshed if r.partner.status in ("kept", "failing")]
    if troubled:
        names = ", ".join(f"{r.domain} ({r.status})" for r in troubled)
        lines.append(f"needs attention: {names}: see above and the plan's notes; exit 1")
    return lines


def cmd_refresh_spf(args: argparse.Namespace, display: Display) -> int:
    from publisher.publish.spf_refresh import refresh_spf

    if args.budget is not None and args.budget < 1:
        raise UsageError(f"--budget {args.budget}: must be 1 or more DNS queries")
    resolver = make_resolver(args.resolver, args.timeout)
    report = refresh_spf(
        args.lists,
        resolver=resolver(),
        expand=load_expand(),
        domains=args.domains or None,
        now=dt.datetime.now(dt.UTC),
        dry_run=args.dry_run,
        budget=args.budget,
    )
    display.lines(report_lines(report))
    troubled = any(r.partner.status in ("kept", "failing") for r in report.refreshed)
    return 1 if report.failed or troubled else 0  # cron mails: a record that fails needs a person


def add_resolver_options(p: argparse._ActionsContainer) -> None:
    """--resolver and --timeout, for refresh-spf, watch and serve --watch (SPF lookups)."""
    p.add_argument(
        "--resolver",
        action="append",
        metavar="ADDRESS[:PORT]",
        help="a DNS resolver to ask, by IP address (repeatable, tried in turn; default: /etc/resolv.conf's)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="seconds each resolver is given per SPF query (default 5)",
    )


def add_refresh_spf(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "refresh-spf",
        help="list what partners' SPF records pass: write their generated files and commit them",
        description="Resolve the SPF record of each partner declared in HEAD (`- spf: DOMAIN` in an "
        "allowlist with `spf:` settings), write its generated list file and commit the files that "
        "changed as one commit on the current branch. Review it, then plan and publish.",
    )
    p.add_argument("domains", nargs="*", metavar="DOMAIN", help="only these partners (default: all declared)")
    add_resolver_options(p)
    p.add_argument("--budget", type=int, default=None, metavar="N", help="at most N DNS queries (default: no limit)")
    p.add_argument("--dry-run", action="store_true", help="show what would change; write and commit nothing")
    p.set_defaults(func=cmd_refresh_spf)
    return p
