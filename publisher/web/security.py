"""The web face's defences that sit around the routes: bounded bodies, CSRF tokens for forms,
security headers, the client's address, the lookup limit, and the secret they are keyed by.

`BodyLimit` and `SecurityHeaders` are pure ASGI middleware: a body longer than
`settings.max_body` is refused with 413 before more than that is read (a Content-Length over
the limit before any of it). A form's CSRF token is HMAC-SHA256(secret, cookie | purpose) of a
random `csrf` cookie (HttpOnly, SameSite=Strict): a cross-site page can neither read the
cookie nor forge the field. The secret lives in the lists repository's git dir
(`$GIT_DIR/publisher/web.secret`, 32 random bytes, 0600), outside the work tree and zones/.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
import stat
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from publisher.errors import ConfigError, WebError
from publisher.publish.vcs import find_repo
from publisher.web.filing import state_dir
from publisher.web.limits import Limiter, client_key

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
CSRF_COOKIE = "csrf"
SECRET_BYTES = 32


class SecurityHeaders:
    """Adds HEADERS to every response (errors included)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in HEADERS if h[0] not in names)]
            await send(message)

        await self.app(scope, receive, with_headers)


class HeadAsGet:
    """HEAD answered wherever GET is (pages, API, static files): the GET's status and headers
    (Content-Length included), no body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def no_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, no_body)


class BodyLimit:
    """413 for a body over `limit` bytes: at once when Content-Length says so; a body without
    one (chunked) is read here, up to the limit, before the app sees any of it, and refused as
    soon as it passes the limit (the rest is never read)."""

    def __init__(self, app: ASGIApp, limit: int, refuse: Callable[[Scope], ASGIApp]) -> None:
        self.app = app
        self.limit = limit
        self.refuse = refuse  # the 413 response for a scope (page or problem)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: int | None = None
        for name, value in scope.get("headers", []):
            if name.lower() == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.limit + 1
        if declared is not None:
            if declared > self.limit:
                await self.refuse(scope)(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await self.refuse(scope)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


# --- CSRF ---------------------------------------------------------------------------------


def new_cookie() -> str:
    return secrets.token_urlsafe(32)


def good_cookie(value: str | None) -> bool:
    return value is not None and 20 <= len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum()


def csrf_token(secret: bytes, cookie: str, purpose: str) -> str:
    """The hidden field of a form for `purpose`, bound to the visitor's cookie."""
    return hmac.new(secret, f"{cookie}|{purpose}".encode(), hashlib.sha256).hexdigest()


def check_csrf(secret: bytes, cookie: str | None, purpose: str, field: str | None) -> None:
    """WebError 403 unless `field` is the token of this cookie and purpose."""
    if not good_cookie(cookie) or not field:
        raise WebError(
            403,
            "Form expired",
            "this form is missing its security token (cookies off, or the form came from another site): "
            "open the form again and resend it",
        )
    assert cookie is not None
    if not hmac.compare_digest(csrf_token(secret, cookie, purpose), field):
        raise WebError(403, "Form expired", "this form's security token does not match: open the form again")


# --- the client ---------------------------------------------------------------------------


def client_address(peer: str | None, forwarded: str | None, trusted: tuple[str, ...]) -> str:
    """The client: the socket peer, or the last X-Forwarded-For hop when the peer is a trusted proxy."""
    address = peer or "unknown"
    if forwarded and trusted and _within(address, trusted):
        hop = forwarded.split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(hop))
        except ValueError:
            return address
    return address


def _within(address: str, networks: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for net in networks:
        try:
            if ip in ipaddress.ip_network(net, strict=False):
                return True
        except ValueError:
            continue
    return False


class LookupLimit:
    """Lookups (page and API together) per client network."""

    def __init__(self, per_minute: int) -> None:
        self.limiter = Limiter.per(per_minute, 60.0)

    def take(self, client: str) -> None:
        wait = self.limiter.take(client_key(client))
        if wait:
            raise WebError(
                429,
                "Too many lookups",
                f"too many lookups from your network; try again in {wait} s (or query the DNS zone itself)",
                retry_after=wait,
            )


# --- the secret ---------------------------------------------------------------------------


def load_secret(lists: Path) -> bytes:
    """The HMAC key of CSRF tokens and confirmation links: `web.secret` in state_dir, made
    (32 random bytes, 0600) when missing; a file others may read is refused (ConfigError).
    VcsError when the lists are in no git repository."""
    path = state_dir(find_repo(lists)) / "web.secret"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(SECRET_BYTES))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the web secret: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{path}: not a regular file\n  fix: remove it; a new secret is made")
        if st.st_mode & 0o077:
            raise ConfigError(
                f"{path}: the web secret is readable or writable by its group or others "
                f"(mode {stat.S_IMODE(st.st_mode):04o})\n  fix: chmod 600 {path}"
            )
        data = fh.read(SECRET_BYTES + 1)
    if len(data) != SECRET_BYTES:
        raise ConfigError(f"{path}: holds {len(data)} bytes, not {SECRET_BYTES}\n  fix: remove it; a new one is made")
    return data


#: What an access log line says instead of a path that holds an email address.
REDACTED = "<email address>"


def redacted_path(path: str) -> str:
    """A request path (with its query string) as the access log may show it: one that holds an
    email address (a lookup of one, `@` or `%40`) keeps its route and loses the rest."""
    if "@" not in unquote(path):
        return path
    for route in ("/api/v1/lookup/", "/lookup/", "/lookup?"):
        if path.startswith(route):
            return route + REDACTED
    return path.split("?", 1)[0] + "?" + REDACTED if "@" not in unquote(path.split("?", 1)[0]) else REDACTED


class QuietAddresses(logging.Filter):
    """uvicorn's access log (`client - "METHOD PATH HTTP/x" status`) without the email addresses
    looked up: a visitor's address is hashed for the lookup and written nowhere (README, Security)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redacted_path(args[2]), *args[3:])
        return True


def quiet_access_log() -> None:
    """Put QuietAddresses on uvicorn's access logger (once)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, QuietAddresses) for f in access.filters):
        access.addFilter(QuietAddresses())
