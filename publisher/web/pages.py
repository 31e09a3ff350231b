"""The HTML pages: the lookup form and result, the zone pages, the request forms and their
confirmation, and /api (a plain listing of the JSON endpoints). Server-rendered, no JavaScript.

Every form POST carries a CSRF field bound to the visitor's cookie (security.py); it is
checked before anything else is done. A refusal with a `field` re-shows the form with the
message beside that field and what was typed.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from publisher.errors import WebError
from publisher.web.security import CSRF_COOKIE, check_csrf
from publisher.web.service import RequestForm, RequestKind
from publisher.web.state import Web, web_of
from publisher.web.tokens import MAX_TOKEN
from publisher.web.view import MAX_QUERY

router = APIRouter(include_in_schema=False)

FIELDS = ("address", "organisation", "contact", "reason", "zone")
#: (method, path, what) of the JSON API, for /api.
ENDPOINTS = (
    ("GET", "/api/v1/lookup/{query}", "is an address or domain listed: per zone the answers and public entry fields"),
    ("GET", "/api/v1/zones", "the zones published here"),
    ("GET", "/api/v1/zones/{zone}", "one zone: return codes and meanings, policy, counts, serial"),
    ("POST", "/api/v1/requests", "ask for a delisting or an allowlisting (JSON); 202, a link is mailed"),
    ("POST", "/api/v1/requests/confirm", 'confirm with the mailed token {"token": ...}; 201, filed for review'),
    ("GET", "/openapi.json", "the OpenAPI description of the above"),
)


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    web = web_of(request)
    view = web.views.latest
    return web.html("index.html", q="", zones=list(view.zones.values()) if view else [], max_query=MAX_QUERY)


def _lookup(request: Request, text: str) -> HTMLResponse:
    web = web_of(request)
    web.lookups.take(web.client(request))
    view = web.view()
    try:
        found = view.lookup(text)
    except WebError as exc:
        return web.html(
            "index.html",
            exc.status,
            q=text[:MAX_QUERY],
            error=exc.detail,
            zones=list(view.zones.values()),
            max_query=MAX_QUERY,
        )
    return web.html("lookup.html", q=found.query, found=found, max_query=MAX_QUERY, taking=web.takes_requests())


@router.get("/lookup", response_class=HTMLResponse)
def lookup_form(request: Request, q: str | None = None) -> Response:
    if q is None:
        return RedirectResponse("/", status_code=303)
    return _lookup(request, q)


@router.get("/lookup/{query:path}", response_class=HTMLResponse)
def lookup_page(request: Request, query: str) -> HTMLResponse:
    return _lookup(request, query)


@router.get("/zones", response_class=HTMLResponse)
def zones_page(request: Request) -> HTMLResponse:
    web = web_of(request)
    view = web.view()
    return web.html("zones.html", view=view, zones=list(view.zones.values()))


@router.get("/zones/{zone}", response_class=HTMLResponse)
def zone_page(request: Request, zone: str) -> HTMLResponse:
    web = web_of(request)
    view = web.view()
    found = view.zone(zone)
    paragraphs = [p.strip() for p in found.page.policy.split("\n\n") if p.strip()]
    from publisher.addresses import format_v4

    codes = [(format_v4(c), m) for c, m in found.page.codes]
    taking = web.takes_requests()
    return web.html("zone.html", view=view, zone=found, paragraphs=paragraphs, codes=codes, taking=taking)


@router.get("/api", response_class=HTMLResponse)
def api_page(request: Request) -> HTMLResponse:
    return web_of(request).html("api.html", endpoints=ENDPOINTS)


# --- requests -------------------------------------------------------------------------------


def _allow_zones(web: Web) -> list[str]:
    view = web.views.latest
    if view is None:
        return []
    return [z.name for z in view.zones.values() if z.role == "allow" and z.page.requests is not None]


def _form(request: Request, kind: RequestKind, values: dict[str, str], status: int = 200, **more: Any) -> HTMLResponse:
    web = web_of(request)
    return web.form_page(
        request,
        f"{kind}.html",
        kind,
        status,
        values=values,
        allow_zones=_allow_zones(web),
        error=more.get("error"),
        field=more.get("field"),
    )


async def _posted(request: Request, purpose: str) -> FormData:
    """The form, once its CSRF field matches the cookie (403 otherwise: nothing is done)."""
    web = web_of(request)
    form = await request.form(max_files=0, max_fields=16)
    token = form.get("csrf")
    check_csrf(web.secret, request.cookies.get(CSRF_COOKIE), purpose, token if isinstance(token, str) else None)
    return form


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


@router.get("/requests/delist", response_class=HTMLResponse)
def delist_form(request: Request, address: str = "") -> HTMLResponse:
    web_of(request).taking()
    return _form(request, "delist", {"address": address[:MAX_QUERY]})


@router.get("/requests/allowlist", response_class=HTMLResponse)
def allowlist_form(request: Request) -> HTMLResponse:
    web_of(request).taking()
    return _form(request, "allowlist", {})


async def _submit(request: Request, kind: RequestKind) -> HTMLResponse:
    web = web_of(request)
    service = web.taking()
    form = await _posted(request, kind)
    values = {name: _text(form, name) for name in FIELDS}
    asked = RequestForm(
        kind,
        values["address"],
        values["organisation"],
        values["contact"],
        values["reason"],
        (values["zone"] or None) if kind == "allowlist" else None,
    )
    try:
        done = await web.call(service.submit, asked, web.client(request))
    except WebError as exc:
        if exc.field is None or exc.status == 429:
            raise
        return _form(request, kind, values, exc.status, error=exc.detail, field=exc.field)
    return web.html("submitted.html", done=done)


@router.post("/requests/delist", response_class=HTMLResponse)
async def delist_submit(request: Request) -> HTMLResponse:
    return await _submit(request, "delist")


@router.post("/requests/allowlist", response_class=HTMLResponse)
async def allowlist_submit(request: Request) -> HTMLResponse:
    return await _submit(request, "allowlist")


@router.get("/requests/confirm", response_class=HTMLResponse)
async def confirm_page(request: Request, token: str = "") -> HTMLResponse:
    """What the link would file, and a Confirm button: GET never files (mail scanners fetch links)."""
    web = web_of(request)
    service = web.service()
    web.lookups.take(web.client(request))  # pending() reads git: limited like a lookup
    if not token or len(token) > MAX_TOKEN:
        raise WebError(400, "Bad link", "this confirmation link is incomplete: copy the whole link from the mail")
    pending = await web.call(service.pending, token)
    return web.form_page(request, "confirm.html", "confirm", pending=pending, token=token)


@router.post("/requests/confirm", response_class=HTMLResponse)
async def confirm_submit(request: Request) -> HTMLResponse:
    web = web_of(request)
    service = web.service()
    form = await _posted(request, "confirm")
    token = _text(form, "token")
    if not token or len(token) > MAX_TOKEN:
        raise WebError(400, "Bad link", "this confirmation link is incomplete: copy the whole link from the mail")
    done = await web.call(service.confirm, token, web.client(request))
    return web.html("confirmed.html", done=done)
