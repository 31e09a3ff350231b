"""The web face looks up an email address: each email zone's answer, the DNS name it is asked
and the public fields of the entry (shown as the hash the zone lists, never the address as
written); requests stay refused and the address stays out of the access log and our links.
The email zone is built by hand as the compiler builds it (tests/email_builders.py) and added
to the web tests' published generation."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from fastapi.testclient import TestClient
from tests.email_builders import ZONE, email_config, email_source, email_zone
from tests.web_fixtures import NOW, Published, client_for

from publisher.emails import hash_label
from publisher.errors import WebError
from publisher.lists.load import load_lists
from publisher.lists.tree import DirTree
from publisher.model import EntryMeta
from publisher.publish.manifest import load_published
from publisher.web import fields
from publisher.web.security import QuietAddresses, redacted_path
from publisher.web.view import PublicView, Views

CFG = email_config()
assert CFG.email is not None
LABEL = hash_label("johndoe@gmail.com", "sha1")


def _with_email_zone(pub: Published) -> Views:
    published = load_published(pub.zones)
    entry = dataclasses.replace(published.manifest.zones["dbl.example.test"], kind="email")
    manifest = dataclasses.replace(published.manifest, zones={**published.manifest.zones, ZONE: entry})
    assert CFG.email is not None
    src = email_source("hbl/drops.yaml", [(3, "John.Doe@gmail.com", "drop box")], CFG.email)
    src.entries[3] = dataclasses.replace(src.entries[3], added="2026-11-01", by="alice")
    assert isinstance(src.entries[3], EntryMeta)
    sources = dict(load_lists(DirTree(pub.lists), as_of=NOW).sources)
    view = PublicView(
        dataclasses.replace(published, manifest=manifest, zones={**published.zones, ZONE: email_zone(CFG, [src])}),
        {**sources, ZONE: [src]},
        as_of=NOW,
        emails={ZONE: CFG.email},
    )
    views = Views(pub.zones, pub.lists, loader=lambda _z, _l: view)
    assert views.refresh()
    return views


def _client(pub: Published) -> TestClient:
    return client_for(dataclasses.replace(pub, views=_with_email_zone(pub)))


def test_the_api_looks_up_an_email_address_in_each_email_zone(pub: Published) -> None:
    got = _client(pub).get("/api/v1/lookup/JohnDoe+shop@googlemail.com")
    assert got.status_code == 200
    body = got.json()
    assert (body["query"], body["kind"]) == ("JohnDoe+shop@googlemail.com", "email")
    (hbl,) = body["zones"]
    assert hbl == {
        "zone": ZONE,
        "role": "block",
        "serial": hbl["serial"],
        "listed": True,
        "status": "listed",
        "test_point": False,
        "answers": [{"code": "127.0.0.2", "meaning": "", "txt": f"Listed in {ZONE}: drop box"}],
        "entries": [{"entry": f"{LABEL}._email", "reason": "drop box", "by": "alice"}],  # the dbl's `web: public`
        "requests": False,
        "name": f"{LABEL}._email.{ZONE}",
    }
    assert "John.Doe" not in got.text and "2026-11-01" not in got.text  # as written: in git; added: not public


def test_an_unlisted_address_and_the_openapi_kind(pub: Published) -> None:
    client = _client(pub)
    (hbl,) = client.get("/api/v1/lookup/nobody@example.org").json()["zones"]
    assert (hbl["status"], hbl["entries"], hbl["name"]) == (
        "not listed",
        [],
        f"{hash_label('nobody@example.org', 'sha1')}._email.{ZONE}",
    )
    assert "name" not in client.get("/api/v1/lookup/192.0.2.3").json()["zones"][0]  # only email zones have one
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["LookupOut"]["properties"]["kind"]["enum"] == ["ip", "domain", "email"]
    assert "name" in schemas["ZoneResultOut"]["properties"]
    kinds = {z["zone"]: z["kind"] for z in client.get("/api/v1/zones").json()["zones"]}
    assert kinds[ZONE] == "email"


def test_a_bad_address_is_a_400_problem(pub: Published) -> None:
    got = _client(pub).get("/api/v1/lookup/a..b@fraud.example")
    assert got.status_code == 400 and got.json()["field"] == "query"
    assert "has a local part that starts or ends with '.'" in got.json()["detail"]


def test_the_page_shows_the_answer_and_no_delisting_link(pub: Published) -> None:
    page = _client(pub).get("/lookup", params={"q": "john.doe@gmail.com"})
    assert page.status_code == 200
    assert f"<code>{LABEL}._email.{ZONE}</code>" in page.text
    assert "may be refused by those who use this list" in page.text
    assert "/requests/delist" not in page.text and "%40" not in page.text


def test_a_delisting_request_for_an_address_is_refused_before_it_is_logged() -> None:
    with pytest.raises(WebError) as refused:
        fields.delist_target("john.doe@gmail.com")
    assert (refused.value.status, refused.value.field) == (422, "address")
    assert "email addresses are listed by their hash and take no requests here" in refused.value.detail


def test_the_access_log_never_holds_an_address() -> None:
    assert redacted_path("/api/v1/lookup/drop@fraud.example") == "/api/v1/lookup/<email address>"
    assert redacted_path("/lookup?q=drop%40fraud.example") == "/lookup?<email address>"
    assert redacted_path("/requests/delist?address=a%40b.example") == "/requests/delist?<email address>"
    assert redacted_path("/lookup?q=192.0.2.3") == "/lookup?q=192.0.2.3"
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "h11_impl.py",
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("192.0.2.200:5000", "GET", "/lookup/drop@fraud.example", "1.1", 200),
        None,
    )
    assert QuietAddresses().filter(record)
    assert record.getMessage() == '192.0.2.200:5000 - "GET /lookup/<email address> HTTP/1.1" 200'
    assert any(isinstance(f, QuietAddresses) for f in logging.getLogger("uvicorn.access").filters)
