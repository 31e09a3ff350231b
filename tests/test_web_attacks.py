"""The issue's hostile cases against the real stack: the app with the real request service
(`Requests` on a `RepoFiler` over a real lists repository, a `Mailer` on a private Postfix).
Each is refused the way the issue says AND writes nothing: no new ref, no mail, nothing under
zones/ changed, the lists' work tree as it was."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.mailsink import PostfixSink
from tests.test_vcs import git
from tests.web_fixtures import IMG, SCRIPT, Published, csrf_of, published_repo, settings_for

from publisher.publish.vcs import find_repo
from publisher.web import tokens
from publisher.web.app import create_app
from publisher.web.filing import RepoFiler
from publisher.web.mail import Mailer
from publisher.web.requests import Requests

MAIL_FROM = "dnsbl-requests@bl.example.test"
FLOOD = "192.0.2.0/24"  # every flood submission comes from a host of this network
LISTED = [f"192.0.2.{n}" for n in range(1, 15) if n != 5]  # bl/abuse.yaml's 192.0.2.0/28 less its hole


@dataclass
class Stack:
    pub: Published
    sink: PostfixSink
    requests: Requests

    def client(self, address: str) -> TestClient:
        app = create_app(self.requests.settings, self.pub.views, self.requests)
        return TestClient(app, raise_server_exceptions=False, client=(address, 50000))


@pytest.fixture
def stack(tmp_path: Path, postfix_sink: PostfixSink) -> Iterator[Stack]:
    pub = published_repo(tmp_path)
    settings = settings_for(pub, smtp=postfix_sink.relay, mail_from=MAIL_FROM)
    filer = RepoFiler(find_repo(pub.lists), None, email=MAIL_FROM)
    yield Stack(pub, postfix_sink, Requests(settings, pub.views.current, filer, Mailer(postfix_sink.relay, MAIL_FROM)))


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(root.rglob("*"))
        if ".git" not in p.relative_to(root).parts
    }


def state(stack: Stack) -> tuple[str, str, dict[str, str], dict[str, str], int]:
    """Everything a refusal must leave as it was: refs, work tree, zones/, the Maildir."""
    repo = stack.pub.lists.parent
    return (
        git(repo, "for-each-ref").stdout,
        git(repo, "status", "--porcelain", "--untracked-files=all").stdout,
        _tree(repo),
        _tree(stack.pub.zones),
        len(stack.sink.messages()),
    )


def form(client: TestClient, path: str, **fields: str) -> dict[str, str]:
    page = client.get(path)
    assert page.status_code == 200, page.text
    return {"csrf": csrf_of(page.text), **fields}


def delisting(address: str, contact: str) -> dict[str, str]:
    return {"address": address, "organisation": "Example Org", "contact": contact, "reason": "fixed"}


def test_a_hostile_reason_and_a_hostile_query_are_shown_as_text(stack: Stack) -> None:
    client = stack.client("203.0.113.9")
    before = state(stack)
    for address, hostile in (("198.51.100.7", SCRIPT), ("198.51.100.8", IMG)):
        page = client.get(f"/lookup/{address}")
        assert page.status_code == 200 and "bl.example.test" in page.text
        assert hostile not in page.text
        escaped = hostile.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;")
        assert escaped in page.text
        assert client.get(f"/api/v1/lookup/{address}").json()["zones"][0]["entries"][0]["reason"] == hostile
    for hostile in (SCRIPT, IMG):
        page = client.get("/lookup", params={"q": hostile})
        assert page.status_code == 400 and hostile not in page.text
        assert "&lt;" in page.text and "<img" not in page.text and "<script>" not in page.text
        api = client.get(f"/api/v1/lookup/{hostile}")
        assert api.status_code == 400 and api.headers["content-type"] == "application/problem+json"
        assert api.json()["field"] == "query"
    assert state(stack) == before


def test_a_flood_from_one_network_gets_five_mails_then_429(stack: Stack) -> None:
    before = state(stack)
    answers = []
    for n in range(50):  # from 50 hosts of one /24, each for another listed address and contact
        client = stack.client(f"192.0.2.{100 + n}")
        sent = client.post(
            "/requests/delist", data=form(client, "/requests/delist", **delisting(LISTED[n % 13], f"pm{n}@flood.test"))
        )
        answers.append(sent)
    served = [n for n, a in enumerate(answers) if a.status_code == 200]
    assert served == [0, 1, 2, 3, 4]
    for refused in answers[5:]:
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert "at most 5 requests an hour from one network" in refused.text
    other = stack.client("198.51.100.50")
    fine = other.post("/requests/delist", data=form(other, "/requests/delist", **delisting(LISTED[0], "pm@else.test")))
    assert fine.status_code == 200 and "Check your mail" in fine.text
    for n in range(5):
        stack.sink.wait_for(f"pm{n}@flood.test")
    stack.sink.wait_for("pm@else.test")
    refs, work, tree, zones, mails = state(stack)
    assert (refs, work, tree, zones) == before[:4]  # mailed, nothing filed
    assert mails == before[4] + 6
    assert not [m for m in stack.sink.messages() if str(m["Delivered-To"]).startswith(("pm5@", "pm49@"))]


def test_a_1mb_post_is_413_before_it_is_read(stack: Stack) -> None:
    client = stack.client("203.0.113.9")
    fields = form(client, "/requests/delist", **delisting(LISTED[0], "pm@big.test"))
    before = state(stack)
    big = {**fields, "reason": "x" * (1 << 20)}
    page = client.post("/requests/delist", data=big)
    assert page.status_code == 413 and "larger than 16384 bytes" in page.text

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused once 16 KiB have come
        for _ in range(64):
            yield b"y" * 16384

    chunked = client.post(
        "/api/v1/requests", content=chunks(), headers={"Content-Type": "application/json"}
    )  # fmt: skip
    assert chunked.status_code == 413 and chunked.json()["status"] == 413
    assert state(stack) == before


def test_test_points_are_refused_with_their_message(stack: Stack) -> None:
    client = stack.client("203.0.113.9")
    before = state(stack)
    page = client.post("/requests/delist", data=form(client, "/requests/delist", **delisting("127.0.0.2", "a@b.test")))
    assert page.status_code == 422 and "127.0.0.2 is an RFC 5782 test point" in page.text
    assert 'aria-invalid="true" aria-describedby="address-error"' in page.text  # the message beside the field
    fields = {**delisting("127.0.0.0/24", "a@b.test"), "zone": "wl.example.test"}
    page = client.post("/requests/allowlist", data=form(client, "/requests/allowlist", **fields))
    assert page.status_code == 422 and "127.0.0.2 is an RFC 5782 test point" in page.text
    api = client.post("/api/v1/requests", json={"kind": "allowlist", **fields})
    assert api.status_code == 422 and api.json()["field"] == "address"
    assert state(stack) == before


def test_forged_and_expired_links_are_refused(stack: Stack) -> None:
    client = stack.client("203.0.113.9")
    secret = stack.requests.settings.secret
    payload: dict[str, tokens.Flat] = {
        "kind": "delist",
        "target": "192.0.2.1",
        "zones": ["bl.example.test"],
        "organisation": "Example Org",
        "contact": "pm@example.org",
        "reason": "fixed",
        "zone": None,
    }
    now = dt.datetime.now(dt.UTC)
    good = tokens.issue(payload, secret, now=now, hours=48)
    forged = tokens.issue({**payload, "target": "192.0.2.2"}, b"another secret of 32 bytes......", now=now, hours=48)
    expired = tokens.issue(payload, secret, now=now - dt.timedelta(hours=49), hours=48)
    edited = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    before = state(stack)
    for token, status in ((forged, 400), (edited, 400), (expired, 410)):
        page = client.get("/requests/confirm", params={"token": token})
        assert page.status_code == status, page.text
        api = client.post("/api/v1/requests/confirm", json={"token": token})
        assert api.status_code == status and api.json()["status"] == status
    page = client.get("/requests/confirm", params={"token": expired})
    assert "the link has expired; ask again" in page.text
    assert state(stack) == before


def test_a_form_post_without_its_csrf_token_is_403(stack: Stack) -> None:
    client = stack.client("203.0.113.9")
    fields = form(client, "/requests/delist", **delisting(LISTED[0], "pm@csrf.test"))
    before = state(stack)
    missing = client.post("/requests/delist", data={k: v for k, v in fields.items() if k != "csrf"})
    assert missing.status_code == 403 and "missing its security token" in missing.text
    stranger = stack.client("198.51.100.50")  # another visitor's cookie: the token does not match
    stranger.get("/requests/delist")
    assert stranger.post("/requests/delist", data=fields).status_code == 403
    cross_site = stack.client("198.51.100.51").post("/api/v1/requests", data={"kind": "delist"})
    assert cross_site.status_code == 415  # a cross-site form cannot post JSON
    assert state(stack) == before
