"""What the routes of the web face share (app.state.web): the settings, the current view, the
request service, the templates, the lookup limit and the secret; and the page helpers over them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import jinja2
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse

from publisher.errors import WebError
from publisher.web.problems import StateLog
from publisher.web.security import CSRF_COOKIE, LookupLimit, client_address, csrf_token, good_cookie, new_cookie
from publisher.web.service import RequestService
from publisher.web.settings import WebSettings
from publisher.web.view import PublicView, Views

T = TypeVar("T")


@dataclass
class Web:
    """What the routes share (app.state.web)."""

    settings: WebSettings
    views: Views
    requests: RequestService | None
    env: jinja2.Environment
    lookups: LookupLimit
    secret: bytes
    state_log: StateLog = field(default_factory=StateLog)

    def view(self) -> PublicView:
        return self.views.current()

    def client(self, request: Request) -> str:
        peer = request.client.host if request.client else None
        return client_address(peer, request.headers.get("x-forwarded-for"), self.settings.trusted_proxies)

    def service(self) -> RequestService:
        if self.requests is None:
            raise WebError(503, "Requests not taken", "requests are not taken here: ask the list's operators by mail")
        return self.requests

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """A request service call in a worker thread. A 503 from the server's own state
        (problems.server_state) reaches the visitor as "not at the moment; try later"; its
        reason goes to the log (problems.StateLog: once, not a line per request)."""
        try:
            return await run_in_threadpool(fn, *args)
        except WebError as exc:
            public = self.state_log.public(exc)
            if public is exc:
                raise
            raise public from None

    def takes_requests(self) -> bool:
        """New requests are taken: a request service, and a mail relay to confirm them by. The
        pages link to the forms, and the API says a zone takes requests, only then."""
        return self.requests is not None and self.settings.smtp is not None

    def taking(self) -> RequestService:
        """The service, for a new request: none is taken without a mail relay to confirm it by
        (links mailed before still confirm)."""
        if self.settings.smtp is None:
            raise WebError(503, "Requests not taken", "requests are not taken here: ask the list's operators by mail")
        return self.service()

    def page(self, template: str, **context: Any) -> str:
        view = self.views.latest  # the footer names what is shown, when anything is
        return self.env.get_template(template).render(
            site=self.settings.site, generation=view.generation if view else None, **context
        )

    def error_page(self, status: int, title: str, detail: str) -> str:
        return self.page("error.html", status=status, title=title, detail=detail)

    def html(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(self.page(template, **context), status_code=status)

    def form_page(
        self, request: Request, template: str, purpose: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
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
