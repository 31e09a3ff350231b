"""`web`: the lookup page, the JSON API and the request forms (publisher.web) under uvicorn.

It reads what is published in zones/ (reloading when a publish lands) and the lists behind
it; it compiles and publishes nothing. The HMAC secret of its forms and links is kept in the
lists repository's git dir (`$GIT_DIR/publisher/web.secret`). FastAPI and uvicorn are
imported here only, so `serve` and the other commands load none of it.
"""

from __future__ import annotations

import argparse
import errno
import logging
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.addresses import AddressError, split_listen
from publisher.cli.display import Display
from publisher.errors import ServerError, UsageError, VcsError, WebError

if TYPE_CHECKING:
    from publisher.cli.display import Subparsers
    from publisher.web.service import RequestService
    from publisher.web.settings import WebSettings
    from publisher.web.view import Views

DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_MAIL_FROM = "dnsbl-requests@localhost"
DEFAULT_SITE = "DNSBL lookup"
log = logging.getLogger("publisher.web")


def _endpoint(text: str, option: str, label: str, port: int) -> tuple[str, int]:
    """`option`'s ADDRESS:PORT; refused in words about what it is (`label`) with examples on `port`."""
    try:
        return split_listen(text)
    except AddressError as exc:
        message = exc.message
        rest = message.removeprefix(f"listen address '{text}'")
        why = f"{label}{rest}" if rest != message else message
        what = "the relay's IP address and port" if option == "--smtp" else "an IP address and port"
        fix = f"write {option} 127.0.0.1:{port} or {option} [::1]:{port} ({what}; a host name, even localhost, "
        fix += "is not looked up)"
        raise UsageError(f"{option} {text}: {why}\n  fix: {fix}") from None


def _relay(text: str) -> tuple[str, int]:
    host, port = _endpoint(text, "--smtp", "the mail relay", 25)
    if port == 0:
        raise UsageError(f"--smtp {text}: the mail relay needs its port\n  fix: write e.g. --smtp {host}:25")
    return host, port


def _mail_from(text: str) -> str:
    """The sender of confirmation mail: LOCAL@DOMAIN (a domain without a dot, like localhost, is taken)."""
    from publisher.addresses import normalize_domain

    fix = f"  fix: write e.g. --mail-from dnsbl-requests@example.test (default {DEFAULT_MAIL_FROM})"
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain or any(c.isspace() or c in '<>,;"' or ord(c) < 32 for c in text):
        raise UsageError(f"--mail-from {text}: not a mail address LOCAL@DOMAIN\n{fix}")
    try:
        name, wildcard = normalize_domain(domain)
    except AddressError as exc:
        raise UsageError(f"--mail-from {text}: the domain '{domain}' is not valid: {exc.message}\n{fix}") from None
    if wildcard:
        raise UsageError(f"--mail-from {text}: the domain '{domain}' is a wildcard\n{fix}")
    return f"{local}@{name}"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of at least 1")
    return value


def _networks(values: list[str]) -> tuple[str, ...]:
    import ipaddress

    out = []
    for value in values:
        try:
            out.append(str(ipaddress.ip_network(value, strict=True)))
        except ValueError as exc:
            try:
                block = ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise UsageError(
                    f"--trusted-proxy {value}: not an address or a CIDR block\n"
                    "  fix: write the proxy's address (127.0.0.1) or its network (10.0.0.0/8)"
                ) from None
            host = value.partition("/")[0]
            raise UsageError(
                f"--trusted-proxy {value}: {exc}\n  fix: write {block} for the whole block, or {host} for one proxy"
            ) from None
    return tuple(out)


def cmd_web(args: argparse.Namespace, display: Display) -> int:
    import secrets

    import uvicorn

    from publisher.web.app import create_app
    from publisher.web.security import load_secret
    from publisher.web.settings import WebSettings
    from publisher.web.view import Views

    host, port = _endpoint(args.listen, "--listen", "the listen address", 8080)
    smtp = _relay(args.smtp) if args.smtp else None
    mail_from = _mail_from(args.mail_from)
    proxies = _networks(args.trusted_proxy or [])
    if args.public_url and not args.public_url.startswith(("http://", "https://")):
        raise UsageError(f"--public-url {args.public_url}: give an http:// or https:// URL")
    try:
        secret = load_secret(args.lists)
    except VcsError as exc:
        log.warning("%s: a secret for this process only (forms sent before a restart must be sent again)", exc)
        secret = secrets.token_bytes(32)
    _check_base(args.lists, args.base)
    sock = _bind(host, port)  # bound here, handed to uvicorn: a taken port is refused before the banner
    try:
        port = sock.getsockname()[1]  # --listen HOST:0: the port the system chose
        listening = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        settings = WebSettings(
            zones_dir=args.zones,
            lists=args.lists,
            public_url=(args.public_url or listening).rstrip("/"),
            base=args.base,
            smtp=smtp,
            mail_from=mail_from,
            secret=secret,
            site=args.site,
            trusted_proxies=proxies,
            lookups_per_minute=args.lookup_limit,
        )
        views = Views(settings.zones_dir, settings.lists)
        service = _request_service(settings, views)
        app = create_app(settings, views, service)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            proxy_headers=False,  # X-Forwarded-For is read by the app, from trusted proxies only
            server_header=False,
            timeout_keep_alive=5,
            limit_concurrency=100,
            log_level="info",
        )
        display.err(_banner(settings, listening, taking=service is not None))
        views.start()
        try:
            uvicorn.Server(config).run(sockets=[sock])
        finally:
            views.stop()
    finally:
        sock.close()
    return 0


def _banner(settings: WebSettings, listening: str, *, taking: bool) -> str:
    """What the operator reads at start: where it listens, the public URL, what it reads, requests."""
    if settings.smtp is None:
        requests = "not taken (no --smtp; links mailed before still confirm)" if taking else "not taken (no --smtp)"
    elif not taking:
        requests = "not taken (the lists are in no git repository)"
    else:
        host, port = settings.smtp
        relay = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        base = f", branches from {settings.base}" if settings.base else ""
        requests = f"taken, confirmation links mailed through {relay} from {settings.mail_from}{base}"
    return (
        f"publisher web: listening on {listening}, public URL {settings.public_url}\n"
        f"  zones {settings.zones_dir}, lists {settings.lists}\n"
        f"  requests: {requests}"
    )


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket on host:port, or a ServerError saying why and what to do."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on connections of such sockets. Without
    # it each keep-alive response waits out the client's delayed ACK (40 ms: 23 lookups a second).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        shown = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        why = exc.strerror or str(exc)
        fix = ""
        if exc.errno == errno.EADDRINUSE:
            moved = f"[{host}]:{port + 1}" if family == socket.AF_INET6 else f"{host}:{port + 1}"
            fix = (
                f"; another server holds the port (to see which: ss -ltnp 'sport = :{port}'); "
                f"to listen elsewhere: make web LISTEN={moved}, or --listen {moved}"
            )
        elif exc.errno == errno.EACCES:
            fix = "; ports below 1024 need privileges: use a port above 1024 behind a reverse proxy"
        elif exc.errno == errno.EADDRNOTAVAIL:
            fix = "; this host has no such address: listen on one of its own (ip -brief address)"
        raise ServerError(f"--listen {shown}: cannot listen on tcp {shown}: {why}{fix}") from None
    return sock


def _branches(root: Path) -> list[str]:
    import subprocess

    done = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname:short)", "refs/heads/"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    return [b for b in done.stdout.split() if not b.startswith("requests/")]


def _check_base(lists: Path, base: str | None) -> None:
    """The branch requests start from exists (--base refused now, not at each submission); a
    detached HEAD with no --base is a warning: requests are refused until a branch is checked out."""
    from publisher.publish.vcs import find_repo
    from publisher.web.filing import base_branch

    try:
        where = find_repo(lists)
    except VcsError:
        return  # no repository: no requests (_request_service says so)
    try:
        base_branch(where, base)
    except WebError as exc:
        if base is None:
            log.warning(
                "%s: requests are refused until a branch is checked out there (git -C %s switch BRANCH), "
                "or start with --base BRANCH",
                exc.detail,
                where.root,
            )
            return
        branches = _branches(where.root)
        fix = f"give one of its branches: {', '.join(branches)}" if branches else "create the branch first"
        raise UsageError(
            f"--base {base}: the lists' repository {where.root} has no branch {base}\n  fix: {fix}"
        ) from None


def _request_service(settings: WebSettings, views: Views) -> RequestService | None:
    """Requests filed as branches of the lists' repository (None when the lists are in none:
    the request pages then say requests are not taken here). Without --smtp the service still
    confirms links mailed before, and answers new submissions 503."""
    from publisher.publish.vcs import find_repo
    from publisher.web.filing import RepoFiler
    from publisher.web.mail import Mailer
    from publisher.web.requests import Requests

    try:
        where = find_repo(settings.lists)
    except VcsError as exc:
        log.warning("no requests: %s", exc)
        return None
    mailer = Mailer(settings.smtp, settings.mail_from) if settings.smtp else None
    return Requests(settings, views.current, RepoFiler(where, settings.base, email=settings.mail_from), mailer)


def add_web(sub: Subparsers) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "web",
        help="the lookup page, JSON API and request forms over HTTP",
        description="Serve the lookup page, the JSON API (/api/v1, /openapi.json) and the delisting and "
        "allowlisting request forms of what zones/ publishes, reloading when a publish lands. It compiles and "
        "publishes nothing; with --smtp, confirmed requests become branches of the lists' repository for review.",
    )
    p.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="ADDRESS:PORT",
        help=f"the IP address and port to listen on, [IPv6]:PORT for IPv6 (one; default {DEFAULT_LISTEN})",
    )
    p.add_argument(
        "--public-url",
        metavar="URL",
        help="the site's public address; links in mail are built from it, never from the Host header "
        "(default http://ADDRESS:PORT of --listen)",
    )
    p.add_argument("--base", metavar="BRANCH", help="the branch requests start from (default: the checked-out one)")
    p.add_argument(
        "--smtp",
        metavar="ADDRESS:PORT",
        help="the mail relay's IP address and port for confirmation links, e.g. 127.0.0.1:25 (none: no requests)",
    )
    p.add_argument(
        "--mail-from",
        default=DEFAULT_MAIL_FROM,
        metavar="ADDR",
        help=f"the sender of confirmation mail (default {DEFAULT_MAIL_FROM})",
    )
    p.add_argument("--site", default=DEFAULT_SITE, metavar="TITLE", help=f"the pages' title (default {DEFAULT_SITE!r})")
    p.add_argument(
        "--lookup-limit",
        type=_positive,
        default=60,
        metavar="N",
        help="lookups a minute per client network (/24, IPv6 /56), pages and API together (default 60)",
    )
    p.add_argument(
        "--trusted-proxy",
        action="append",
        metavar="NET",
        help="a reverse proxy whose X-Forwarded-For names the client (repeatable)",
    )
    p.set_defaults(func=cmd_web)
    return p
