"""Refusals and failures as visitors see them: an RFC 9457 problem under /api/, a page elsewhere.

Every refusal of the web face is a WebError; FastAPI's own (a body that does not validate,
an unknown path, a wrong method) is turned into the same shapes, so the API never answers
HTML or a traceback. `CatchAll` turns any other exception into a 500 with a generic message,
logged once here (the traceback stays in the log, never in the response).
"""

from __future__ import annotations

import http
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, Response

from publisher.errors import WebError
from publisher.web.security import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
#: The page for an error: (status, title, detail, field) -> HTML.
ErrorPage = Callable[[int, str, str], str]


#: What the public reads when the server's own state refuses requests (the reason goes to the log).
NOT_NOW = "requests are not taken at the moment; try later"


def server_state(exc: WebError) -> bool:
    """A 503 the request service raises because of the server's own state (the lists'
    repository unreadable, zones.yaml with errors, no base branch, no secret): not the visitor's
    business, and nothing they can fix. The passing ones (a filing under way, a relay that did not
    answer) carry a Retry-After and words meant for the visitor."""
    return exc.status == 503 and exc.retry_after is None


class StateLog:
    """The reason behind a server-state 503, logged when it changes, and again at most every
    `every` seconds while it lasts (with how many were refused meanwhile): never a line a request."""

    def __init__(self, every: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self._last: str | None = None
        self._at = 0.0
        self._quiet = 0
        self._lock = threading.Lock()

    def note(self, reason: str) -> None:
        with self._lock:
            now = self.clock()
            if reason == self._last and now - self._at < self.every:
                self._quiet += 1
                return
            quiet, self._quiet = self._quiet, 0
            self._last, self._at = reason, now
        more = f" ({quiet} more refused for it since the last line)" if quiet else ""
        log.error("requests refused with 503: %s%s", reason, more)

    def public(self, exc: WebError) -> WebError:
        """What the visitor gets for `exc`: a server-state 503 logged and made generic, else `exc`."""
        if not server_state(exc):
            return exc
        self.note(exc.detail)
        return WebError(503, "Requests not taken", NOT_NOW, retry_after=60)


def is_api(path: str) -> bool:
    return path.startswith("/api/")


def title_of(status: int) -> str:
    """The status's phrase in the titles' style (sentence case): "Not found", "Method not allowed"."""
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"
    return phrase[:1] + phrase[1:].lower()


def sentence(title: str) -> str:
    """Every title shown in one style, sentence case ("invalid link" -> "Invalid link")."""
    return title[:1].upper() + title[1:]


def problem(exc: WebError) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": sentence(exc.title),
        "status": exc.status,
        "detail": exc.detail,
    }
    if exc.field is not None:
        body["field"] = exc.field
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return Response(json.dumps(body), status_code=exc.status, media_type=PROBLEM, headers=headers)


def refusal(path: str, exc: WebError, page: ErrorPage) -> Response:
    """The response to a WebError: a problem under /api/, else the error page."""
    if is_api(path):
        return problem(exc)
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return HTMLResponse(page(exc.status, sentence(exc.title), exc.detail), status_code=exc.status, headers=headers)


def _validation(exc: RequestValidationError) -> WebError:
    errors = exc.errors()
    first = errors[0] if errors else {}
    where = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    field = where[0] if where else None
    message = str(first.get("msg", "invalid input"))
    detail = f"{field}: {message}" if field else message
    return WebError(422, "Invalid input", detail, field=field)


def _http(exc: HTTPException) -> WebError:
    detail = exc.detail if isinstance(exc.detail, str) else title_of(exc.status_code)
    if exc.status_code == 404:
        detail = "no such page"
    elif exc.status_code == 405:
        detail = "this method is not allowed here"
    return WebError(exc.status_code, title_of(exc.status_code), detail)


def install(app: FastAPI, page: ErrorPage) -> None:
    """Route WebError, validation errors and HTTP errors to problems or pages."""

    async def on_web_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, WebError)
        return refusal(request.url.path, exc, page)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return refusal(request.url.path, _validation(exc), page)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        response = refusal(request.url.path, _http(exc), page)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    app.add_exception_handler(WebError, on_web_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)


class CatchAll:
    """500 for anything unexpected, logged once with its traceback; never a traceback sent."""

    def __init__(self, app: ASGIApp, page: ErrorPage) -> None:
        self.app = app
        self.page = page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            log.exception("internal error answering %s %s", scope.get("method"), scope.get("path"))
            if started:
                return  # the response is under way: the connection is closed on it
            exc = WebError(500, "Internal error", "something went wrong on our side; try again later")
            await refusal(scope.get("path", "/"), exc, self.page)(scope, receive, send)
