"""The JSON API: field names, problems (RFC 9457), OpenAPI, and the request endpoints."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from tests.web_fixtures import IMG, SCRIPT, FakeRequests, Published, client_for

from publisher.errors import WebError
from publisher.web import fields

PROBLEM = "application/problem+json"
DELIST_BODY = {
    "kind": "delist",
    "address": "192.0.2.3",
    "organisation": "Example Org",
    "contact": "postmaster@example.org",
    "reason": "fixed",
}


def test_lookup_answers_with_the_documented_fields(client: TestClient) -> None:
    got = client.get("/api/v1/lookup/192.0.2.3")
    assert got.status_code == 200 and got.headers["content-type"] == "application/json"
    body = got.json()
    assert set(body) == {"query", "kind", "generation", "published_at", "zones"}
    bl, wl = body["zones"]
    assert bl == {
        "zone": "bl.example.test",
        "role": "block",
        "serial": bl["serial"],
        "listed": True,
        "status": "listed",
        "test_point": False,
        "answers": [{"code": "127.0.0.2", "meaning": "source of spam", "txt": "Listed: snowshoe spam"}],
        "entries": [
            {"entry": "192.0.2.0/28", "reason": "snowshoe spam", "added": "2026-11-01", "expires": "2027-01-31"}
        ],
        "requests": True,
    }
    assert (wl["status"], wl["answers"], wl["entries"]) == ("not allowlisted", [], [])


def test_internal_fields_are_absent_unless_the_zone_publishes_them(client: TestClient) -> None:
    text = client.get("/api/v1/lookup/192.0.2.3").text
    assert "ABUSE-4711" not in text and "alice" not in text and "abuse.yaml" not in text and '"line"' not in text
    wl = client.get("/api/v1/lookup/203.0.113.25").json()["zones"][1]
    assert wl["status"] == "allowlisted"
    assert wl["entries"] == [
        {"entry": "203.0.113.25", "reason": "partner gateway", "added": "2026-06-01", "owner": "Example Partner"}
    ]
    dbl = client.get("/api/v1/lookup/spam.example").json()["zones"][0]
    assert dbl["entries"][0] == {"entry": "spam.example", "reason": "spam domain", "ticket": "DBL-9", "by": "dave"}


def test_hostile_text_is_a_plain_string_in_json(client: TestClient) -> None:
    assert client.get("/api/v1/lookup/198.51.100.7").json()["zones"][0]["entries"][0]["reason"] == SCRIPT
    assert client.get("/api/v1/lookup/198.51.100.8").json()["zones"][0]["answers"][0]["txt"] == f"Listed: {IMG}"


def test_zones_and_a_zone(client: TestClient) -> None:
    zones = client.get("/api/v1/zones").json()
    assert [z["zone"] for z in zones["zones"]] == ["bl.example.test", "dbl.example.test", "wl.example.test"]
    assert zones["zones"][0] == {
        "zone": "bl.example.test",
        "kind": "ip",
        "role": "block",
        "serial": zones["zones"][0]["serial"],
        "listings": 3,
        "requests": True,
    }
    bl = client.get("/api/v1/zones/bl.example.test").json()
    assert bl["codes"] == [
        {"code": "127.0.0.2", "meaning": "source of spam"},
        {"code": "127.0.0.3", "meaning": "dictionary attacks"},
    ]
    assert bl["policy"] == "We list senders of spam.\n\nAsk below to be delisted.\n"
    assert bl["public"] == ["reason", "added", "expires"] and bl["v6_addresses"] == "0"


@pytest.mark.parametrize(
    ("method", "path", "status", "field"),
    [
        ("GET", "/api/v1/lookup/not..valid", 400, "query"),
        ("GET", "/api/v1/lookup/192.0.2.0%2F24", 400, "query"),
        ("GET", "/api/v1/lookup/" + "a" * 400, 400, "query"),
        ("GET", "/api/v1/lookup/%00", 400, "query"),
        ("GET", "/api/v1/lookup/%FF%FE", 400, "query"),
        ("GET", "/api/v1/zones/nope.example.test", 404, "zone"),
        ("GET", "/api/v1/nothing-here", 404, None),
        ("DELETE", "/api/v1/zones", 405, None),
    ],
)
def test_refusals_are_problem_documents(
    client: TestClient, method: str, path: str, status: int, field: str | None
) -> None:
    got = client.request(method, path)
    assert got.status_code == status
    assert got.headers["content-type"] == PROBLEM
    body = got.json()
    assert body["type"] == "about:blank" and body["status"] == status and body["title"] and body["detail"]
    assert body.get("field") == field
    assert "Traceback" not in got.text


def test_openapi_describes_every_endpoint_and_its_field_names(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["info"]["title"] and doc["info"]["version"] and "RFC 9457" in doc["info"]["description"]
    assert {
        "/api/v1/lookup/{query}",
        "/api/v1/zones",
        "/api/v1/zones/{zone}",
        "/api/v1/requests",
        "/api/v1/requests/confirm",
    } <= set(doc["paths"])
    schemas = doc["components"]["schemas"]
    assert set(schemas["LookupOut"]["properties"]) == {"query", "kind", "generation", "published_at", "zones"}
    assert {"listed", "status", "answers", "entries", "test_point"} <= set(schemas["ZoneResultOut"]["properties"])
    assert set(schemas["AnswerOut"]["properties"]) == {"code", "meaning", "txt"}
    assert set(schemas["ConfirmedOut"]["properties"]) == {"id", "branch", "zones", "status"}
    body = doc["paths"]["/api/v1/requests"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"kind", "address", "organisation", "contact", "reason", "zone"}
    # pages are not API endpoints; no JavaScript documentation UIs
    assert "/lookup/{query}" not in doc["paths"]
    assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404
    page = client.get("/api")
    assert page.status_code == 200 and "/api/v1/requests/confirm" in page.text and "<script" not in page.text


REQUEST = {
    "kind": "delist",
    "address": "198.51.100.7",
    "organisation": "Example Org",
    "contact": "postmaster@example.org",
    "reason": "fixed",
}


def test_a_request_is_submitted_and_confirmed_through_the_service(client: TestClient, fake: FakeRequests) -> None:
    got = client.post("/api/v1/requests", json=REQUEST)
    assert got.status_code == 202
    assert got.json() == {
        "status": "confirmation-sent",
        "kind": "delist",
        "target": "198.51.100.7",
        "zones": ["bl.example.test"],
        "contact": "postmaster@example.org",
        "expires": "2026-11-29T10:00:00Z",
    }
    assert [(f.address, client_ip) for f, client_ip in fake.submitted] == [("198.51.100.7", "192.0.2.200")]
    done = client.post("/api/v1/requests/confirm", json={"token": "good-token"})
    assert done.status_code == 201
    assert done.json() == {
        "id": "2026-11-27-0001",
        "branch": "requests/2026-11-27-0001",
        "zones": ["bl.example.test"],
        "status": "filed",
    }
    assert client.post("/api/v1/requests/confirm", json={"token": "good-token"}).json()["status"] == "already-filed"
    gone = client.post("/api/v1/requests/confirm", json={"token": "stale"})
    assert gone.status_code == 410 and gone.headers["content-type"] == PROBLEM


def test_request_bodies_are_json_only_and_checked(client: TestClient, fake: FakeRequests) -> None:
    form = client.post("/api/v1/requests", data=REQUEST)  # what a cross-site form can send
    assert form.status_code == 415 and form.headers["content-type"] == PROBLEM
    plain = client.post("/api/v1/requests", content=b"{}", headers={"content-type": "text/plain"})
    assert plain.status_code == 415
    bad = client.post("/api/v1/requests", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 400
    missing = client.post("/api/v1/requests", json={**REQUEST, "contact": None})
    assert missing.status_code == 422 and missing.json()["field"] == "contact"
    kind = client.post("/api/v1/requests", json={**REQUEST, "kind": "publish"})
    assert kind.status_code == 422 and kind.json()["field"] == "kind"
    extra = client.post("/api/v1/requests", json={**REQUEST, "admin": True})
    assert extra.status_code == 422 and extra.json()["field"] == "admin"
    refused = client.post("/api/v1/requests", json={**REQUEST, "organisation": " "})
    assert refused.status_code == 422 and refused.json()["field"] == "organisation"
    assert fake.submitted == []


def test_without_a_request_service_requests_are_not_taken(pub: Published) -> None:
    client = client_for(pub, None)
    for path, body in (("/api/v1/requests", REQUEST), ("/api/v1/requests/confirm", {"token": "good-token"})):
        got = client.post(path, json=body)
        assert got.status_code == 503 and got.headers["content-type"] == PROBLEM
        assert "requests are not taken here" in got.json()["detail"]
    assert client.get("/api/v1/lookup/192.0.2.3").status_code == 200


def test_titles_are_sentence_case_and_the_lookup_field_is_query(pub: Published, fake: FakeRequests) -> None:
    client = client_for(pub, fake)
    assert client.get("/api/v1/nothing-here").json()["title"] == "Not found"
    assert client.delete("/api/v1/zones").json()["title"] == "Method not allowed"
    bad = client.get("/api/v1/lookup/not..valid").json()
    assert (bad["title"], bad["field"]) == ("Bad query", "query")
    assert 'name="q"' in client.get("/lookup?q=not..valid").text  # the page's field keeps its name
    fake.fail = WebError(400, "Invalid link", "this link is not valid; ask again")
    api = client.post("/api/v1/requests", json=DELIST_BODY)
    assert api.status_code == 400 and api.json()["title"] == "Invalid link"


def test_the_test_point_answer_says_what_it_is_where_the_zone_does_not(client: TestClient) -> None:
    meanings = {z["zone"]: z["answers"][0]["meaning"] for z in client.get("/api/v1/lookup/127.0.0.2").json()["zones"]}
    assert meanings == {"bl.example.test": "source of spam", "wl.example.test": "test point (RFC 5782)"}
    (dbl,) = client.get("/api/v1/lookup/test").json()["zones"]
    assert dbl["answers"][0]["meaning"] == "test point (RFC 5782)"
    assert "<td>test point (RFC 5782)</td>" in client.get("/lookup/127.0.0.2").text


EXPECTED = {
    ("get", "/api/v1/lookup/{query}"): ("lookup", {"200", "400", "429", "503"}),
    ("get", "/api/v1/zones"): ("listZones", {"200", "503"}),
    ("get", "/api/v1/zones/{zone}"): ("getZone", {"200", "404", "503"}),
    ("post", "/api/v1/requests"): ("submitRequest", {"202", "400", "409", "413", "415", "422", "429", "503"}),
    ("post", "/api/v1/requests/confirm"): (
        "confirmRequest",
        {"201", "400", "409", "410", "413", "415", "422", "429", "503"},
    ),
}


def test_openapi_says_what_each_endpoint_answers_and_the_real_body_limits(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    found = {(m, p): op for p, ops in doc["paths"].items() for m, op in ops.items()}
    assert set(found) == set(EXPECTED)
    for key, (operation_id, statuses) in EXPECTED.items():
        op = found[key]
        assert op["operationId"] == operation_id and op["summary"] and not op["summary"].startswith("Api ")
        assert set(op["responses"]) == statuses, key
        for status, response in op["responses"].items():
            if status.startswith("2"):
                assert list(response["content"]) == ["application/json"]
            else:  # a problem document, and only that
                assert response["content"] == {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert set(schemas["Problem"]["properties"]) == {"type", "title", "status", "detail", "field"}
    body = found["post", "/api/v1/requests"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
    limits = {name: body[name].get("maxLength") for name in ("address", "organisation", "contact", "reason")}
    assert limits == {
        "address": fields.MAX_ADDRESS,
        "organisation": fields.MAX_ORGANISATION,
        "contact": fields.MAX_MAIL,
        "reason": fields.MAX_REASON,
    }
    assert (fields.MAX_ORGANISATION, fields.MAX_MAIL, fields.MAX_REASON) == (200, 254, 1000)


def test_the_documented_body_limits_are_the_ones_applied(client: TestClient, fake: FakeRequests) -> None:
    at_limit = {**DELIST_BODY, "organisation": "x" * fields.MAX_ORGANISATION}
    assert client.post("/api/v1/requests", json=at_limit).status_code == 202
    over = client.post("/api/v1/requests", json={**at_limit, "organisation": "x" * (fields.MAX_ORGANISATION + 1)})
    assert over.status_code == 422 and over.json()["field"] == "organisation"
    assert len(fake.submitted) == 1
