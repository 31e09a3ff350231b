"""Shared by the tests of the web face: a published list repository with hostile text in it,
the app over it, and a fake request service that records what reached it."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.test_vcs import init_repo

from publisher.errors import WebError
from publisher.publish.release import publish
from publisher.web.app import create_app
from publisher.web.service import Confirmed, Edit, Pending, RequestForm, RequestService, Submitted
from publisher.web.settings import WebSettings
from publisher.web.view import Views

NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
EXPIRES = dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.UTC)
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'

ZONES_YAML = """\
defaults:
  soa: {mname: ns1.example.test, rname: hostmaster.example.test}
  ns: [{name: ns1.example.test}]
zones:
  - name: bl.example.test
    kind: ip
    role: block
    sources: ["bl/*.yaml"]
    code: "127.0.0.2"
    txt: "Listed: {reason}"
    protect: [wl.example.test]
    web:
      codes:
        127.0.0.2: source of spam
        127.0.0.3: dictionary attacks
      policy: |
        We list senders of spam.

        Ask below to be delisted.
      requests: bl/delisted.yaml
    excludes: [bl/delisted.yaml]
  - name: wl.example.test
    kind: ip
    role: allow
    sources: ["wl/*.yaml"]
    code: "127.0.10.1"
    txt: "{reason}"
    web:
      public: [reason, added, owner]
      codes:
        127.0.10.1: business partner
      requests: wl/requests.yaml
  - name: dbl.example.test
    kind: domain
    role: block
    sources: ["dbl/*.yaml"]
    code: "127.0.1.2"
    txt: "{domain}: {reason}"
    web:
      public: [reason, ticket, by]
"""

ABUSE = f"""\
entries:
  - ip: 192.0.2.0/28
    reason: snowshoe spam
    added: 2026-11-01
    expires: 2027-01-31
    ticket: ABUSE-4711
    by: alice
  - ip: 192.0.2.5
    exclude: true
    reason: cleaned up
    ticket: ABUSE-4712
  - ip: 198.51.100.7
    code: 127.0.0.3
    reason: "{SCRIPT}"
    ticket: ABUSE-4713
  - ip: 198.51.100.8
    reason: '{IMG}'
"""

PARTNERS = """\
entries:
  - ip: 203.0.113.25
    reason: partner gateway
    added: 2026-06-01
    owner: Example Partner
    contact: noc@partner.example
    ticket: PARTNER-1
"""

DOMAINS = """\
entries:
  - domain: spam.example
    reason: spam domain
    ticket: DBL-9
    by: dave
"""

FILES = {
    "zones.yaml": ZONES_YAML,
    "bl/delisted.yaml": "entries: []\n",
    "bl/abuse.yaml": ABUSE,
    "wl/partners.yaml": PARTNERS,
    "dbl/domains.yaml": DOMAINS,
}


@dataclass
class Published:
    lists: Path
    zones: Path
    views: Views


def published_repo(tmp_path: Path) -> Published:
    """The lists above committed and published; a Views loaded on them (not running)."""
    lists = init_repo(tmp_path / "repo", FILES)
    zones = tmp_path / "zones"
    publish(lists, zones, now=NOW)
    views = Views(zones, lists)
    assert views.refresh()
    return Published(lists, zones, views)


@dataclass
class FakeRequests:
    """A RequestService that records what reached it (the real one is tested on its own)."""

    submitted: list[tuple[RequestForm, str]] = field(default_factory=list)
    confirmed: list[tuple[str, str]] = field(default_factory=list)
    fail: Exception | None = None

    def submit(self, form: RequestForm, client: str) -> Submitted:
        if self.fail is not None:
            raise self.fail
        if not form.organisation.strip():
            raise WebError(422, "Invalid request", "give your organisation", field="organisation")
        self.submitted.append((form, client))
        return Submitted(form.kind, form.address, ("bl.example.test",), form.contact, EXPIRES)

    def pending(self, token: str) -> Pending:
        if token != "good-token":
            raise WebError(410, "Link expired", "this confirmation link has expired: send the request again")
        form = RequestForm("delist", "198.51.100.7", "Example Org", "postmaster@example.org", "fixed it")
        edit = Edit("bl.example.test", "bl/delisted.yaml", "exclude", "- ip: 198.51.100.7\n")
        return Pending(form, "198.51.100.7", ("bl.example.test",), (edit,), EXPIRES)

    def confirm(self, token: str, client: str) -> Confirmed:
        self.pending(token)
        self.confirmed.append((token, client))
        rid = "2026-11-27-0001"
        return Confirmed(rid, f"requests/{rid}", ("bl.example.test",), already=len(self.confirmed) > 1)


def settings_for(pub: Published, **changes: object) -> WebSettings:
    # a relay named (the fake service mails nothing): without one, new requests are not taken
    base: dict[str, object] = {
        "zones_dir": pub.zones,
        "lists": pub.lists,
        "secret": b"s" * 32,
        "smtp": ("127.0.0.1", 25),
    }
    base.update(changes)
    return WebSettings(**base)  # type: ignore[arg-type]


def client_for(
    pub: Published,
    requests: RequestService | None = None,
    *,
    address: str = "192.0.2.200",
    **changes: object,
) -> TestClient:
    app = create_app(settings_for(pub, **changes), pub.views, requests)
    return TestClient(app, raise_server_exceptions=False, client=(address, 50000))


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert found, "the form has no CSRF field"
    return found.group(1)


# --- fixtures for the web tests (a pytest plugin: tests/conftest.py) -------------------------


@pytest.fixture
def pub(tmp_path: Path) -> Published:
    """The web tests' lists, published in a temporary repository."""
    return published_repo(tmp_path)


@pytest.fixture
def fake() -> FakeRequests:
    return FakeRequests()


@pytest.fixture
def client(pub: Published, fake: FakeRequests) -> TestClient:
    """The app on `pub` with the recording request service, as a client from 192.0.2.200."""
    return client_for(pub, fake)
