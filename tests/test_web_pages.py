"""The HTML pages: lookups, zone pages, the request forms and their confirmation, escaping."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from tests.web_fixtures import IMG, SCRIPT, FakeRequests, Published, client_for, csrf_of

from publisher.cli.app import main
from publisher.publish.manifest import load_published
from publisher.publish.plan import IPV4, IPV6, NAMES, amount, zone_sizes
from publisher.web.app import create_app
from publisher.web.settings import WebSettings
from publisher.web.view import Views

ROOT = Path(__file__).resolve().parent.parent


def test_the_lookup_page_says_listed_why_and_since_when(client: TestClient) -> None:
    page = client.get("/lookup/192.0.2.3")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert 'bl.example.test</a>: <span class="status">listed</span>' in text
    assert "127.0.0.2" in text and "source of spam" in text and "Listed: snowshoe spam" in text
    assert "Listed since</dt><dd>2026-11-01" in text and "Expires</dt><dd>2027-01-31" in text
    assert "192.0.2.0/28" in text
    assert 'href="/requests/delist?address=192.0.2.3"' in text
    # tickets, authors and where the entry is written stay internal
    assert "ABUSE-4711" not in text and "alice" not in text and "abuse.yaml" not in text
    assert client.get("/lookup", params={"q": "192.0.2.3"}).text == text


def test_unlisted_allowlisted_test_point_and_domain_pages(client: TestClient) -> None:
    unlisted = client.get("/lookup/8.8.8.8").text
    assert "not listed" in unlisted and "not allowlisted" in unlisted and "Ask for delisting" not in unlisted
    allowed = client.get("/lookup/203.0.113.25").text
    assert '<span class="status">allowlisted</span>' in allowed and "business partner" in allowed
    assert "Owner</dt><dd>Example Partner" in allowed and "noc@partner.example" not in allowed
    test_point = client.get("/lookup/127.0.0.2").text
    assert "RFC 5782 test point" in test_point and "Ask for delisting" not in test_point
    domain = client.get("/lookup/spam.example").text
    assert "dbl.example.test" in domain and "Ticket</dt><dd>DBL-9" in domain and "By</dt><dd>dave" in domain


def test_the_zone_page_has_the_code_table_and_the_policy(client: TestClient) -> None:
    text = client.get("/zones/bl.example.test").text
    assert "<td><code>127.0.0.3</code></td><td>dictionary attacks</td>" in text
    assert '<p class="policy">We list senders of spam.</p>' in text
    assert '<p class="policy">Ask below to be delisted.</p>' in text
    assert "3 listings" in text
    zones = client.get("/zones").text
    assert all(f'href="/zones/{z}"' in zones for z in ("bl.example.test", "wl.example.test", "dbl.example.test"))
    missing = client.get("/zones/nope.example.test")
    assert missing.status_code == 404 and "no zone named" in missing.text


def test_hostile_reasons_and_txt_are_escaped(client: TestClient) -> None:
    for address, hostile in (("198.51.100.7", SCRIPT), ("198.51.100.8", IMG)):
        text = client.get(f"/lookup/{address}").text
        assert hostile not in text
        assert text.count(escape(hostile)) == 2  # in the reason and in the TXT
        assert "<script" not in text and "<img" not in text


@pytest.mark.parametrize("query", [SCRIPT, IMG, "a" * 300, "192.0.2.1\x00"])
def test_a_hostile_query_is_refused_and_escaped(client: TestClient, query: str) -> None:
    page = client.get("/lookup", params={"q": query})
    assert page.status_code == 400
    assert "<script" not in page.text and "<img" not in page.text
    if query in (SCRIPT, IMG):
        assert f'value="{escape(query)}"' in page.text  # the query is put back into the form, escaped
    assert 'class="error"' in page.text and "Traceback" not in page.text


def test_a_path_that_is_not_utf8_is_a_400(client: TestClient) -> None:
    page = client.get("/lookup/%FF%FE")
    assert page.status_code == 400 and "not an address or a domain" in page.text


def test_the_delist_form_files_nothing_until_the_link_is_confirmed(client: TestClient, fake: FakeRequests) -> None:
    form = client.get("/requests/delist", params={"address": "198.51.100.7"})
    assert form.status_code == 200 and 'value="198.51.100.7"' in form.text
    cookie = form.headers["set-cookie"].lower()
    assert "csrf=" in cookie and "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    sent = client.post(
        "/requests/delist",
        data={
            "csrf": csrf_of(form.text),
            "address": "198.51.100.7",
            "organisation": "Example Org",
            "contact": "postmaster@example.org",
            "reason": "we fixed the host",
        },
    )
    assert sent.status_code == 200
    assert "We mailed a link to <strong>postmaster@example.org</strong>, valid until 2026-11-29 10:00 UTC" in sent.text
    ((asked, client_ip),) = fake.submitted
    assert (asked.kind, asked.address, asked.zone, client_ip) == ("delist", "198.51.100.7", None, "192.0.2.200")
    assert fake.confirmed == []
    confirm = client.get("/requests/confirm", params={"token": "good-token"})
    assert confirm.status_code == 200 and "an exclusion" in confirm.text and "Confirm</button>" in confirm.text
    assert "bl/requests.yaml" not in confirm.text  # list file paths stay internal
    assert fake.confirmed == []  # GET never files: mail scanners fetch links
    done = client.post("/requests/confirm", data={"csrf": csrf_of(confirm.text), "token": "good-token"})
    assert done.status_code == 200
    assert (
        "Filed as request\n<strong>2026-11-27-0001</strong>, branch <code>requests/2026-11-27-0001</code>" in done.text
    )
    assert fake.confirmed == [("good-token", "192.0.2.200")]
    stale = client.get("/requests/confirm", params={"token": "old"})
    assert stale.status_code == 410 and "expired" in stale.text


def test_a_refused_field_is_shown_on_the_form_with_what_was_typed(client: TestClient, fake: FakeRequests) -> None:
    form = client.get("/requests/delist")
    sent = client.post(
        "/requests/delist",
        data={
            "csrf": csrf_of(form.text),
            "address": "198.51.100.7",
            "organisation": "",
            "contact": "a@b.example",
            "reason": SCRIPT,
        },
    )
    assert sent.status_code == 422
    assert 'id="organisation-error">give your organisation' in sent.text
    assert escape(SCRIPT) in sent.text and SCRIPT not in sent.text
    assert fake.submitted == []


def test_the_allowlist_form_offers_the_allow_zones_taking_requests(client: TestClient, fake: FakeRequests) -> None:
    form = client.get("/requests/allowlist")
    assert form.status_code == 200
    assert '<input type="hidden" name="zone" value="wl.example.test">' in form.text
    sent = client.post(
        "/requests/allowlist",
        data={
            "csrf": csrf_of(form.text),
            "zone": "wl.example.test",
            "address": "203.0.113.32/29",
            "organisation": "Partner",
            "contact": "noc@partner.example",
            "reason": "our gateways",
        },
    )
    assert sent.status_code == 200 and "allowlisting request" in sent.text
    assert fake.submitted[0][0].zone == "wl.example.test" and fake.submitted[0][0].kind == "allowlist"


def test_without_a_request_service_every_request_route_is_503(pub: Published) -> None:
    client = client_for(pub, None)
    for path in ("/requests/delist", "/requests/allowlist", "/requests/confirm?token=x"):
        got = client.get(path)
        assert got.status_code == 503 and "requests are not taken here" in got.text
    for path in ("/requests/delist", "/requests/allowlist", "/requests/confirm"):
        assert client.post(path, data={"address": "x"}).status_code == 503
    lookup = client.get("/lookup/192.0.2.3")  # the lookup still works, without a link to a 503
    assert lookup.status_code == 200 and '<span class="status">listed</span>' in lookup.text
    assert "Ask for delisting" not in lookup.text


def test_without_a_mail_relay_no_new_request_is_taken_but_a_mailed_link_still_confirms(
    pub: Published, fake: FakeRequests
) -> None:
    client = client_for(pub, fake, smtp=None)
    for path in ("/requests/delist", "/requests/allowlist"):
        got = client.get(path)
        assert got.status_code == 503 and "requests are not taken here" in got.text
    api = client.post("/api/v1/requests", json={"kind": "delist", "address": "192.0.2.3"})
    assert api.status_code == 503 and api.headers["content-type"] == "application/problem+json"
    assert not fake.submitted
    assert client.get("/requests/confirm?token=good-token").status_code == 200


def test_unknown_pages_are_html_errors_in_the_layout(client: TestClient) -> None:
    got = client.get("/nowhere")
    assert got.status_code == 404 and got.headers["content-type"].startswith("text/html")
    assert "no such page" in got.text and 'href="/static/style.css"' in got.text


@pytest.mark.parametrize("smtp", [None, ("127.0.0.1", 25)])
def test_request_links_only_where_requests_are_taken(pub: Published, fake: FakeRequests, smtp: object) -> None:
    """Without a mail relay the forms answer 503: the pages must not send a listed party there,
    and the API must not say the zone takes requests."""
    client = client_for(pub, fake, smtp=smtp)
    taken = smtp is not None
    lookup = client.get("/lookup/192.0.2.3").text
    assert ('href="/requests/delist?address=192.0.2.3"' in lookup) is taken
    assert ('href="/requests/allowlist"' in client.get("/zones/wl.example.test").text) is taken
    assert client.get("/requests/delist?address=192.0.2.3").status_code == (200 if taken else 503)
    api = client.get("/api/v1/lookup/192.0.2.3").json()
    assert [z["requests"] for z in api["zones"]] == [taken, taken]
    zones = {z["zone"]: z["requests"] for z in client.get("/api/v1/zones").json()["zones"]}
    assert zones == {"bl.example.test": taken, "wl.example.test": taken, "dbl.example.test": False}
    assert client.get("/api/v1/zones/bl.example.test").json()["requests"] is taken


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/lookup/192.0.2.3",
        "/lookup?q=192.0.2.3",
        "/zones",
        "/zones/bl.example.test",
        "/api",
        "/api/v1/lookup/192.0.2.3",
        "/api/v1/zones",
        "/api/v1/zones/bl.example.test",
        "/openapi.json",
        "/static/style.css",
        "/requests/delist?address=192.0.2.3",
        "/nowhere",
    ],
)
def test_head_is_answered_wherever_get_is_with_the_same_headers_and_no_body(client: TestClient, path: str) -> None:
    got, head = client.get(path), client.head(path)
    assert head.status_code == got.status_code and head.content == b""
    for name in ("content-type", "content-length", "content-security-policy", "x-content-type-options"):
        assert head.headers.get(name) == got.headers.get(name), name


def test_the_zone_page_counts_as_the_plan_does_and_links_to_the_delisting_form(
    tmp_path: Path, fake: FakeRequests
) -> None:
    """The sample lists compiled: the page says what `publisher plan` says (no test point counted,
    IPv6 too), with spaces between its sentences; a block zone taking requests links to the form."""
    lists, zones = ROOT / "tests" / "data" / "sample-lists", tmp_path / "zones"
    assert main(["--lists", str(lists), "--zones", str(zones), "compile"]) == 0
    views = Views(zones, lists)
    assert views.refresh()
    client = TestClient(create_app(WebSettings(zones, lists, smtp=("127.0.0.1", 25)), views, fake))
    published = load_published(zones)
    for name in ("bl.example.test", "dbl.example.test"):
        sizes = zone_sizes(published.zones[name])
        listings = published.manifest.zones[name].meta.counts
        assert listings is not None
        text = " ".join(client.get(f"/zones/{name}").text.split())
        if name.startswith("bl"):
            said = f"{listings.listings} listings: {sizes[IPV4]} IPv4 and {amount(sizes[IPV6], IPV6)} IPv6 addresses"
            assert 'Listed? <a class="button" href="/requests/delist">Ask for delisting</a>' in text
            api = client.get(f"/api/v1/zones/{name}").json()
            assert (api["v4_addresses"], api["v6_addresses"]) == (sizes[IPV4], str(sizes[IPV6]))
        else:
            said = f"{listings.listings} listings: {sizes[NAMES]} names"
        assert f"{said} (the RFC 5782 test point not counted). Serial {published.zones[name].info.serial}." in text
