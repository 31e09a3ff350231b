"""503s that come from the server's own state: the public reads "try later", the operator's log
reads the reason, once (not a line a request)."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from fastapi.testclient import TestClient
from tests.web_fixtures import Published, settings_for

from publisher.publish.vcs import find_repo
from publisher.web.app import create_app
from publisher.web.filing import RepoFiler
from publisher.web.requests import Requests
from publisher.web.service import Ask


class Mailer:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send_confirmation(self, to: str, link: str, ask: Ask, *, expires: dt.datetime) -> None:
        self.sent.append(link)


DELIST = {
    "kind": "delist",
    "address": "192.0.2.3",
    "organisation": "Example Org",
    "contact": "postmaster@example.org",
    "reason": "fixed",
}


def test_a_missing_base_branch_is_try_later_to_the_public_and_the_reason_once_to_the_log(
    pub: Published, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(pub, base="nosuchbranch")
    mailer = Mailer()
    service = Requests(settings, pub.views.current, RepoFiler(find_repo(pub.lists), "nosuchbranch"), mailer)
    client = TestClient(create_app(settings, pub.views, service), raise_server_exceptions=False)
    caplog.set_level(logging.INFO)
    for n in range(3):
        got = client.post("/api/v1/requests", json={**DELIST, "contact": f"p{n}@example.org"})
        assert got.status_code == 503 and got.headers["content-type"] == "application/problem+json"
        assert got.json()["detail"] == "requests are not taken at the moment; try later"
        assert "nosuchbranch" not in got.text and got.headers["retry-after"] == "60"
    page = client.get("/requests/confirm?token=x")  # a bad token is the visitor's: 400, as before
    assert page.status_code == 400
    logged = [r.getMessage() for r in caplog.records if "no branch nosuchbranch" in r.getMessage()]
    assert logged == ["requests refused with 503: the lists' repository has no branch nosuchbranch"]
    assert not mailer.sent
