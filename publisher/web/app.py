"""The web face's ASGI app: `create_app(settings)` wires the view, the request service, the
templates, the routes (pages.py: HTML; api.py: JSON under /api/v1) and the defences
(security.py) around them.

Outside in: security headers on every response, HEAD answered as GET without the body, the
body limit (413 before a long body is read), a catch-all that turns an unexpected exception
into a logged 500, then FastAPI's routing with problems.py's handlers. `requests=None` (no
mail relay): every request route answers 503 "requests are not taken here".
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jinja2
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from publisher import __version__
from publisher.errors import WebError
from publisher.web import api, pages, problems
from publisher.web.security import BodyLimit, HeadAsGet, LookupLimit, SecurityHeaders, quiet_access_log
from publisher.web.service import RequestService
from publisher.web.settings import WebSettings
from publisher.web.state import Web
from publisher.web.view import Views

HERE = Path(__file__).parent

DESCRIPTION = """\
Whether an address or a domain is listed in the zones published here, why, since when and
until when, as the DNS answers it (the same published generation), and requests to delist
an address or to allowlist a partner's gateways. Refusals are RFC 9457 problem documents
(`application/problem+json`: type, title, status, detail, field). Lookups are limited per
client network; request bodies are JSON (`Content-Type: application/json`) of at most 16 KiB.
"""


def create_app(settings: WebSettings, views: Views | None = None, requests: RequestService | None = None) -> FastAPI:
    """The app. `views`: a Views the caller runs (None: one is made and run with the app's lifespan)."""
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
    quiet_access_log()  # no looked-up email address in uvicorn's access log
    problems.install(app, web.error_page)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)
    app.openapi = lambda: api.openapi(app)  # type: ignore[method-assign]

    def too_large(scope: Any) -> Any:
        exc = WebError(413, "Request too large", f"the request body is larger than {settings.max_body} bytes")
        return problems.refusal(scope.get("path", "/"), exc, web.error_page)

    app.add_middleware(problems.CatchAll, page=web.error_page)
    app.add_middleware(BodyLimit, limit=settings.max_body, refuse=too_large)
    app.add_middleware(HeadAsGet)  # HEAD wherever GET: the GET's status and headers, no body
    app.add_middleware(SecurityHeaders)  # added last: the outermost, so errors get the headers too
    return app
