"""The JSON API under /api/v1: lookups, zones, and requests (OpenAPI at /openapi.json).

The response models are the API's contract: their field names are stable and documented in
the README ("The lookup page and JSON API"). An entry carries only its zone's public fields;
a field the zone does not publish is absent, not null. Request bodies are JSON only
(`Content-Type: application/json`, else 415), so a cross-site form cannot post here.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from publisher.addresses import format_v4
from publisher.errors import WebError
from publisher.web.fields import MAX_ADDRESS, MAX_MAIL, MAX_ORGANISATION, MAX_REASON
from publisher.web.service import RequestForm
from publisher.web.settings import WebSettings
from publisher.web.state import web_of
from publisher.web.tokens import MAX_TOKEN
from publisher.web.view import MAX_QUERY, Lookup, PublicView, ZoneView

router = APIRouter(prefix="/api/v1", tags=["api"])
PROBLEM_TYPE = "application/problem+json"
#: The body limit (WebSettings.max_body; no option changes it).
MAX_BODY = int(next(f.default for f in dataclasses.fields(WebSettings) if f.name == "max_body"))  # type: ignore[arg-type]


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    field: str | None = None


#: What each refusal means, for the OpenAPI description.
_MEANING = {
    400: "bad input (a query that is not an address, a domain or an email address, a body that is not JSON, "
    "a bad link)",
    404: "no such zone",
    409: "the request cannot be taken (not listed in a zone taking requests, no longer listed)",
    410: "the confirmation link has expired",
    413: f"the request body is larger than {MAX_BODY} bytes",
    415: "the body is not sent as application/json",
    422: "a field does not fit; `field` names it",
    429: "too many lookups or requests from this network or for this address; see Retry-After",
    503: "nothing is published yet, or requests are not taken (here, or at the moment); see Retry-After",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The refusals an endpoint answers, each an RFC 9457 problem (application/problem+json)."""
    ref = {"$ref": "#/components/schemas/Problem"}
    return {
        status: {"description": _MEANING[status], "content": {PROBLEM_TYPE: {"schema": ref}}} for status in statuses
    }


class AnswerOut(BaseModel):
    code: str = Field(description="the A record, e.g. 127.0.0.2")
    meaning: str = Field(description="what the code means (zones.yaml web.codes), '' when not said")
    txt: str = Field(description="the TXT record as the DNS answers it")


class EntryOut(BaseModel):
    """An entry behind an answer: only the fields its zone publishes are present."""

    model_config = ConfigDict(extra="forbid")
    entry: str = Field(description="the address block or name the entry lists")
    reason: str | None = None
    added: str | None = None
    expires: str | None = None
    code: str | None = None
    ticket: str | None = None
    by: str | None = None
    owner: str | None = None
    contact: str | None = None


class ZoneResultOut(BaseModel):
    zone: str
    role: Literal["block", "allow"]
    serial: int
    listed: bool = Field(description="the zone answers for the query (allow zones: allowlisted)")
    status: Literal["listed", "not listed", "allowlisted", "not allowlisted"]
    test_point: bool = Field(description="an RFC 5782 test point, listed by definition")
    answers: list[AnswerOut]
    entries: list[EntryOut]
    requests: bool = Field(
        description="the zone takes delisting or allowlisting requests here (false when this site takes none)"
    )
    name: str | None = Field(
        default=None,
        description="email zones: the DNS name a client asks, <hash>[.<suffix>].<zone> (the address hashed "
        "as this zone normalises it); absent for other zones",
    )


class LookupOut(BaseModel):
    query: str = Field(
        description="the query, normalised (IPv4-mapped IPv6 read as IPv4, IDN as A-label); an email address as given"
    )
    kind: Literal["ip", "domain", "email"]
    generation: str
    published_at: str
    zones: list[ZoneResultOut]


class CodeOut(BaseModel):
    code: str
    meaning: str


class ZoneSummaryOut(BaseModel):
    zone: str
    kind: Literal["ip", "domain", "email"]
    role: Literal["block", "allow"]
    serial: int
    listings: int | None
    requests: bool


class ZonesOut(BaseModel):
    generation: str
    published_at: str
    zones: list[ZoneSummaryOut]


class ZoneOut(ZoneSummaryOut):
    generation: str
    published_at: str
    v4_addresses: int | None = Field(description="IPv4 addresses listed, the RFC 5782 test point not counted")
    v6_addresses: str | None = Field(description="a decimal string: it outgrows JSON's exact integers")
    domains: int | None = Field(description="names listed, the RFC 5782 test point not counted")
    codes: list[CodeOut]
    policy: str
    public: list[str] = Field(description="the entry fields this zone's lookups show")


class RequestIn(BaseModel):
    """The limits are the request service's own (publisher.web.fields)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["delist", "allowlist"]
    address: str = Field(
        max_length=MAX_ADDRESS, description="delist: an address or a domain; allowlist: an address or CIDR"
    )
    organisation: str = Field(max_length=MAX_ORGANISATION)
    contact: str = Field(max_length=MAX_MAIL, description="the mail address the confirmation link is sent to")
    reason: str = Field(max_length=MAX_REASON)
    zone: str | None = Field(default=None, max_length=MAX_QUERY, description="allowlist: the allow zone")


class SubmittedOut(BaseModel):
    status: Literal["confirmation-sent"]
    kind: Literal["delist", "allowlist"]
    target: str
    zones: list[str]
    contact: str
    expires: str


class ConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(max_length=MAX_TOKEN)


class ConfirmedOut(BaseModel):
    id: str
    branch: str
    zones: list[str]
    status: Literal["filed", "already-filed"]


def lookup_out(found: Lookup, taking: bool = True) -> dict[str, Any]:
    """`taking`: this process takes new requests (a zone's `requests` is false otherwise)."""
    return {
        "query": found.query,
        "kind": found.kind,
        "generation": found.generation,
        "published_at": found.published_at,
        "zones": [
            {
                "zone": z.zone,
                "role": z.role,
                "serial": z.serial,
                "listed": z.listed,
                "status": z.status,
                "test_point": z.test_point,
                "answers": [{"code": a.code, "meaning": a.meaning, "txt": a.txt} for a in z.answers],
                "entries": [{"entry": e.entry, **dict(e.fields)} for e in z.entries],
                "requests": z.requests and taking,
                "name": z.name,
            }
            for z in found.zones
        ],
    }


def _summary(zone: ZoneView, taking: bool) -> dict[str, Any]:
    return {
        "zone": zone.name,
        "kind": zone.kind,
        "role": zone.role,
        "serial": zone.serial,
        "listings": zone.counts.listings if zone.counts else None,
        "requests": zone.page.requests is not None and taking,
    }


def zone_out(view: PublicView, zone: ZoneView, taking: bool = True) -> dict[str, Any]:
    counts = zone.counts
    return {
        **_summary(zone, taking),
        "generation": view.generation,
        "published_at": view.published_at,
        "v4_addresses": counts.v4_addresses if counts else None,
        "v6_addresses": str(counts.v6_addresses) if counts else None,
        "domains": counts.domains if counts else None,
        "codes": [{"code": format_v4(c), "meaning": m} for c, m in zone.page.codes],
        "policy": zone.page.policy,
        "public": list(zone.page.public),
    }


@router.get(
    "/lookup/{query:path}",
    response_model=LookupOut,
    response_model_exclude_none=True,
    responses=problems(400, 429, 503),
    summary="Look up an address, a domain or an email address",
    operation_id="lookup",
)
def api_lookup(query: str, request: Request) -> dict[str, Any]:
    """Is this address, domain or email address listed, in which zones, with which answers, and why.
    An email address is hashed by each email zone as its clients hash it; it is not logged."""
    web = web_of(request)
    web.lookups.take(web.client(request))
    try:
        found = web.view().lookup(query)
    except WebError as exc:
        if exc.field != "q":
            raise
        raise WebError(exc.status, exc.title, exc.detail, field="query") from None  # the API's name for it
    return lookup_out(found, web.takes_requests())


@router.get(
    "/zones", response_model=ZonesOut, responses=problems(503), summary="List the zones", operation_id="listZones"
)
def api_zones(request: Request) -> dict[str, Any]:
    """The zones published here."""
    web = web_of(request)
    view = web.view()
    return {
        "generation": view.generation,
        "published_at": view.published_at,
        "zones": [_summary(z, web.takes_requests()) for z in view.zones.values()],
    }


@router.get(
    "/zones/{zone}",
    response_model=ZoneOut,
    responses=problems(404, 503),
    summary="Describe one zone",
    operation_id="getZone",
)
def api_zone(zone: str, request: Request) -> dict[str, Any]:
    """One zone: its return codes and what they mean, its policy, its size and serial."""
    web = web_of(request)
    view = web.view()
    return zone_out(view, view.zone(zone), web.takes_requests())


async def _body(request: Request, model: type[BaseModel]) -> Any:
    """The JSON body as `model`: 415 unless it is JSON, 400 when it does not parse, 422 when it does not fit."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/json":
        raise WebError(415, "Unsupported media type", "send the request as JSON (Content-Type: application/json)")
    raw = await request.body()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise WebError(400, "Bad JSON", "the request body is not JSON") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise WebError(
            422, "Invalid input", f"{field}: {first['msg']}" if field else first["msg"], field=field
        ) from None


def openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's description, made true: the Problem schema for the refusals (declared per
    endpoint), and no 422 "HTTPValidationError" where FastAPI assumed one (a path parameter
    that is any text never fails validation; request bodies are checked here, as problems)."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            stock = operation.get("responses", {}).get("422", {}).get("content", {}).get("application/json")
            if stock is not None:
                del operation["responses"]["422"]
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Problem"] = Problem.model_json_schema()
    app.openapi_schema = doc
    return doc


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


@router.post(
    "/requests",
    status_code=202,
    response_model=SubmittedOut,
    responses=problems(400, 409, 413, 415, 422, 429, 503),
    openapi_extra=_schema(RequestIn),
    summary="Ask for a delisting or an allowlisting",
    operation_id="submitRequest",
)
async def api_submit(request: Request) -> dict[str, Any]:
    """Ask for a delisting or an allowlisting: a confirmation link is mailed to `contact`;
    nothing is filed until it is followed."""
    web = web_of(request)
    service = web.taking()
    body = await _body(request, RequestIn)
    form = RequestForm(body.kind, body.address, body.organisation, body.contact, body.reason, body.zone)
    done = await web.call(service.submit, form, web.client(request))
    return {
        "status": "confirmation-sent",
        "kind": done.kind,
        "target": done.target,
        "zones": list(done.zones),
        "contact": done.contact,
        "expires": done.expires.isoformat().replace("+00:00", "Z"),
    }


@router.post(
    "/requests/confirm",
    status_code=201,
    response_model=ConfirmedOut,
    responses=problems(400, 409, 410, 413, 415, 422, 429, 503),
    openapi_extra=_schema(ConfirmIn),
    summary="Confirm a request with its mailed token",
    operation_id="confirmRequest",
)
async def api_confirm(request: Request) -> dict[str, Any]:
    """Confirm a request with the token of its mailed link: it is filed as a branch for review."""
    web = web_of(request)
    service = web.service()
    body = await _body(request, ConfirmIn)
    done = await web.call(service.confirm, body.token, web.client(request))
    return {
        "id": done.id,
        "branch": done.branch,
        "zones": list(done.zones),
        "status": "already-filed" if done.already else "filed",
    }
