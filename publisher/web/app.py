"""The web face's ASGI app: `create_app(settings)` wires the view, the request service, the
templates, the routes (pages.py: HTML; api.py: JSON under /api/v1) and the defences
(security.py) around them.

Outside in: security headers on every response, the body limit (413 before a long body is
read), a catch-all that turns an unexpected exception into a logged 500, then FastAPI's
routing with problems.py's handlers. `requests=None` (no mail relay): every request route
answers 503 "requests are not taken here".
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import jinja2
from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

from publisher import __version__
from publisher.errors import WebError
from publisher.web import problems
from publisher.web.security import (
    CSRF_COOKIE,
    BodyLimit,
    LookupLimit,
    SecurityHeaders,
    client_address,
    csrf_token,
    good_cookie,
    new_cookie,
)
from publisher.web.service import RequestService
from publisher.web.settings import WebSettings
from publisher.web.view import PublicView, Views

HERE = Path(__file__).parent

DESCRIPTION = """\
Whether an address or a domain is listed in the zones published here, why, since when and
until when, as the DNS answers it (the same published generation), and requests to delist
an address or to allowlist a partner's gateways. Refusals are RFC 9457 problem documents
(`application/problem+json`: type, title, status, detail, field). Lookups are limited per
client network; request bodies are JSON (`Content-Type: application/json`) of at most 16 KiB.
"""


@dataclass
class Web:
    """What the routes share (app.state.web)."""

    settings: WebSettings
    views: Views
    requests: RequestService | None
    env: jinja2.Environment
    lookups: LookupLimit
    secret: bytes

    def view(self) -> PublicView:
        return self.views.current()

    def client(self, request: Request) -> str:
        peer = request.client.host if request.client else None
        return client_address(peer, request.headers.get("x-forwarded-for"), self.settings.trusted_proxies)

    def service(self) -> RequestService:
        if self.requests is None:
            raise WebError(503, "Requests not taken", "requests are not taken here: ask the list's operators by mail")
        return self.requests

    def page(self, template: str, **context: Any) -> str:
        view = self.views._view  # the footer names what is shown, when anything is
        return self.env.get_template(template).render(
            site=self.settings.site, generation=view.generation if view else None, **context
        )

    def error_page(self, status: int, title: str, detail: str) -> str:
        return self.page("error.html", status=status, title=title, detail=detail)

    def html(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(self.page(template, **context), status_code=status)

    def form_page(self, request: Request, template: str, purpose: str, status: int = 200, **context: Any) -> HTMLResponse:
        """A page with a form: its CSRF field, and the cookie it is bound to (set when missing)."""
        cookie = request.cookies.get(CSRF_COOKIE)
        fresh = not good_cookie(cookie)
        if fresh:
            cookie = new_cookie()
        assert cookie is not None
        response = self.html(template, status, csrf=csrf_token(self.secret, cookie, purpose), **context)
        if fresh:
            response.set_cookie(CSRF_COOKIE, cookie, httponly=True, samesite="strict", path="/")
        return response


def web_of(request: Request) -> Web:
    return cast("Web", request.app.state.web)


def create_app(settings: WebSettings, views: Views | None = None, requests: RequestService | None = None) -> FastAPI:
    """The app. `views`: a Views the caller runs (None: one is made and run with the app's lifespan)."""
    from contextlib import asynccontextmanager
    from collections.abc import AsyncIterator

    from publisher.web import api, pages

    own = views is None
    held = views if views is not None else Views(settings.zones_dir, settings.lists)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if own:
            held.start()
        try:
            yield
        finally:
            if own:
                held.stop()

    app = FastAPI(
        title=settings.site,
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,  # the stock UIs load JavaScript from a CDN; /api lists the endpoints instead
        redoc_url=None,
        lifespan=lifespan,
    )
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value is escaped: reasons and TXT are operator text, queries attacker text
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    web = Web(
        settings,
        held,
        requests,
        env,
        LookupLimit(settings.lookups_per_minute),
        settings.secret or secrets.token_bytes(32),  # no secret given (tests): one for this process
    )
    app.state.web = web
    problems.install(app, web.error_page)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)

    def too_large(scope: Any) -> Any:
        exc = WebError(413, "Request too large", f"the request body is larger than {settings.max_body} bytes")
        return problems.refusal(scope.get("path", "/"), exc, web.error_page)

    app.add_middleware(problems.CatchAll, page=web.error_page)
    app.add_middleware(BodyLimit, limit=settings.max_body, refuse=too_large)
    app.add_middleware(SecurityHeaders)  # added last: the outermost, so errors get the headers too
    return app
