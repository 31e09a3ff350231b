"""The web face's defences: bounded bodies, CSRF, headers, limits, the client address, the
secret file, internal errors; and the real `publisher web` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from tests.conftest import ROOT, free_port, stop_process
from tests.web_fixtures import FakeRequests, Published, client_for, csrf_of

from publisher.errors import ConfigError
from publisher.web.security import CSP, client_address, load_secret

MB = 1 << 20


def _form(client: TestClient, **fields: str) -> dict[str, str]:
    page = client.get("/requests/delist")
    return {
        "csrf": csrf_of(page.text),
        "address": "198.51.100.7",
        "organisation": "Org",
        "contact": "a@example.org",
        "reason": "fixed",
        **fields,
    }


@pytest.mark.parametrize(
    "path", ["/", "/lookup/192.0.2.3", "/api/v1/zones", "/nowhere", "/api/v1/x", "/static/style.css"]
)
def test_every_response_has_the_security_headers(client: TestClient, path: str) -> None:
    got = client.get(path)
    assert got.headers["content-security-policy"] == CSP
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["referrer-policy"] == "no-referrer"
    assert "server" not in got.headers or "uvicorn" not in got.headers["server"]


def test_a_1mb_form_post_is_413_and_nothing_is_submitted(client: TestClient, fake: FakeRequests) -> None:
    data = _form(client, reason="x" * MB)
    got = client.post("/requests/delist", data=data)
    assert got.status_code == 413 and "larger than 16384 bytes" in got.text
    assert fake.submitted == []
    api = client.post("/api/v1/requests", content=b"{" + b" " * MB + b"}", headers={"content-type": "application/json"})
    assert api.status_code == 413 and api.headers["content-type"] == "application/problem+json"


def test_a_chunked_1mb_post_is_cut_at_the_limit(client: TestClient, fake: FakeRequests) -> None:
    data = _form(client)
    body = "&".join(f"{k}={v}" for k, v in data.items()).encode() + b"&reason=" + b"y" * MB
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for start in range(0, len(body), 4096):
            sent += 1
            yield body[start : start + 4096]

    got = client.post(
        "/requests/delist", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert got.status_code == 413
    assert fake.submitted == []


def test_a_form_post_without_the_csrf_field_is_403_and_nothing_is_done(client: TestClient, fake: FakeRequests) -> None:
    data = _form(client)
    for bad in ({k: v for k, v in data.items() if k != "csrf"}, {**data, "csrf": "0" * 64}):
        got = client.post("/requests/delist", data=bad)
        assert got.status_code == 403 and "security token" in got.text
    # a token made for another form does not pass either
    confirm = client.get("/requests/confirm", params={"token": "good-token"})
    other = client.post("/requests/delist", data={**data, "csrf": csrf_of(confirm.text)})
    assert other.status_code == 403
    # nor a right token with another visitor's cookie (a cross-site post carries no cookie)
    client.cookies.clear()
    assert client.post("/requests/delist", data=data).status_code == 403
    assert client.post("/requests/confirm", data={"token": "good-token"}).status_code == 403
    assert fake.submitted == [] and fake.confirmed == []


def test_lookups_are_limited_per_client_network(pub: Published) -> None:
    flood = client_for(pub, address="198.51.100.1", lookups_per_minute=60)
    codes = [flood.get(f"/api/v1/lookup/192.0.2.{i % 200}").status_code for i in range(100)]
    assert codes[:60] == [200] * 60 and set(codes[60:]) == {429}
    limited = flood.get("/lookup/192.0.2.3")  # pages and the API share the limit
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    api = flood.get("/api/v1/lookup/192.0.2.3")
    assert api.json()["status"] == 429 and int(api.headers["retry-after"]) >= 1
    same_net = TestClient(flood.app, client=("198.51.100.77", 1))
    assert same_net.get("/api/v1/lookup/192.0.2.3").status_code == 429
    other_net = TestClient(flood.app, client=("203.0.113.9", 1))
    assert other_net.get("/api/v1/lookup/192.0.2.3").status_code == 200


def test_x_forwarded_for_is_read_from_trusted_proxies_only() -> None:
    assert client_address("192.0.2.1", "198.51.100.9", ()) == "192.0.2.1"
    assert client_address("192.0.2.1", "198.51.100.9", ("10.0.0.0/8",)) == "192.0.2.1"
    assert client_address("10.1.2.3", "203.0.113.5, 198.51.100.9", ("10.0.0.0/8",)) == "198.51.100.9"
    assert client_address("10.1.2.3", "not-an-address", ("10.0.0.0/8",)) == "10.1.2.3"


def test_a_trusted_proxy_s_client_is_limited_not_the_proxy(pub: Published) -> None:
    proxied = client_for(pub, address="10.0.0.1", lookups_per_minute=1, trusted_proxies=("10.0.0.0/8",))
    first = {"x-forwarded-for": "198.51.100.1"}
    assert proxied.get("/api/v1/lookup/192.0.2.3", headers=first).status_code == 200
    assert proxied.get("/api/v1/lookup/192.0.2.3", headers=first).status_code == 429
    assert proxied.get("/api/v1/lookup/192.0.2.3", headers={"x-forwarded-for": "203.0.113.1"}).status_code == 200


def test_an_internal_error_is_a_generic_500(pub: Published, caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeRequests(fail=RuntimeError("db password is hunter2"))
    client = client_for(pub, fake)
    page = client.post("/requests/delist", data=_form(client))
    assert page.status_code == 500 and "something went wrong" in page.text
    api = client.post(
        "/api/v1/requests", json={"kind": "delist", "address": "a", "organisation": "o", "contact": "c", "reason": "r"}
    )
    assert api.status_code == 500 and api.json()["detail"].startswith("something went wrong")
    for got in (page, api):
        assert "hunter2" not in got.text and "Traceback" not in got.text
        assert got.headers["content-security-policy"] == CSP
    logged = [r for r in caplog.records if "hunter2" in (r.exc_text or "") or "hunter2" in str(r.exc_info)]
    assert len(logged) == 2  # once per failure


def test_the_secret_is_made_private_and_a_readable_one_is_refused(pub: Published) -> None:
    secret = load_secret(pub.lists)
    path = pub.lists.parent / ".git" / "publisher" / "web.secret"
    assert len(secret) == 32 and path.read_bytes() == secret
    assert (path.stat().st_mode & 0o777, path.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    assert load_secret(pub.lists) == secret
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="readable or writable by its group or others"):
        load_secret(pub.lists)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_real_process_serves_the_page_and_the_api(pub: Published) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "publisher", "--lists", str(pub.lists), "--zones", str(pub.zones), "web",
         "--listen", f"127.0.0.1:{port}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # until it answers (and has loaded the view), or gives up
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                status, _ = _get(f"{base}/api/v1/zones")
                if status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "publisher web did not answer within 60 s"
            time.sleep(0.1)
        status, page = _get(f"{base}/lookup/192.0.2.3")
        assert status == 200 and '<span class="status">listed</span>' in page
        status, body = _get(f"{base}/api/v1/lookup/203.0.113.25")
        assert status == 200 and json.loads(body)["zones"][1]["status"] == "allowlisted"
        status, body = _get(f"{base}/requests/delist")
        assert status == 503 and "requests are not taken here" in body
    finally:
        stop_process(proc)
    assert proc.returncode is not None
