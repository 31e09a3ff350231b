"""The issue's story, through the real programs: the sample lists published with
`python -m publisher publish`, the real `publisher web` process mailing through a private Postfix,
and a headless Chromium doing what a listed party does: look up, ask for delisting, follow the
link in the mail, confirm; then a maintainer runs `publisher requests accept` and the page says
"not listed". Also an allowlisting request from the form, confirmed through the JSON API.

`WRITE_SCREENSHOT=1` writes the listed lookup page to docs/lookup.png (the README's picture);
otherwise the screenshot goes to a temporary directory only.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from tests.conftest import LISTS, ROOT, free_port, stop_process
from tests.mailsink import PostfixSink
from tests.test_vcs import git, init_repo

if TYPE_CHECKING:
    from selenium.webdriver import Chrome

MAIL_FROM = "dnsbl-requests@bl.example.test"
PNG = b"\x89PNG\r\n\x1a\n"


@dataclass
class Stack:
    clone: Path  # the lists' clone (its repository gets the request branches)
    lists: Path
    zones: Path
    base: str  # http://127.0.0.1:PORT
    proc: subprocess.Popen[str]
    sink: PostfixSink


def publisher(stack_lists: Path, zones: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command line, as a maintainer runs it in the clone."""
    return subprocess.run(
        [sys.executable, "-m", "publisher", "--lists", str(stack_lists), "--zones", str(zones), *args],
        cwd=stack_lists.parent,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull},
    )


def get(url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, postfix_sink: PostfixSink) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("story")
    init_repo(tmp / "origin", lists_from=LISTS)
    git(tmp, "clone", "-q", str(tmp / "origin"), "clone")
    clone = tmp / "clone"
    git(clone, "config", "user.name", "Alice Admin")
    git(clone, "config", "user.email", "alice@example.test")
    lists, zones = clone / "lists", tmp / "zones"
    done = publisher(lists, zones, "publish")
    assert done.returncode == 0, done.stdout + done.stderr
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    relay = f"{postfix_sink.relay[0]}:{postfix_sink.relay[1]}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "publisher", "--lists", str(lists), "--zones", str(zones), "web",
         "--listen", f"127.0.0.1:{port}", "--smtp", relay, "--public-url", base, "--mail-from", MAIL_FROM],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:  # until it answers with the view loaded
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if get(f"{base}/api/v1/zones")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "publisher web did not answer within 60 s"
            time.sleep(0.1)
        yield Stack(clone, lists, zones, base, proc, postfix_sink)
    finally:
        stop_process(proc)


def request_branches(clone: Path) -> list[str]:
    return git(clone, "for-each-ref", "--format=%(refname)", "refs/heads/requests/").stdout.split()


def link_in(mail: EmailMessage, base: str) -> str:
    body = mail.get_body(("plain",))
    assert body is not None
    found = re.search(rf"^{re.escape(base)}/requests/confirm\?token=\S+$", body.get_content(), re.M)
    assert found, body.get_content()
    return found.group(0)


def text_of(chrome: Chrome) -> str:
    from selenium.webdriver.common.by import By

    return str(chrome.find_element(By.TAG_NAME, "main").text)


def fill(chrome: Chrome, **fields: str) -> None:
    from selenium.webdriver.common.by import By

    for name, value in fields.items():
        box = chrome.find_element(By.NAME, name)
        box.clear()
        box.send_keys(value)


def look_up(chrome: Chrome, stack: Stack, query: str) -> str:

    chrome.get(f"{stack.base}/")
    fill(chrome, q=query)
    press(chrome, "form.lookup button")
    arrive(chrome, f"{stack.base}/lookup?q={query}")
    return text_of(chrome)


def press(chrome: Chrome, selector: str, by: str = "css selector") -> None:
    """Click a button or link and wait (10 s at most) for the page it leads to."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    old = chrome.find_element(By.TAG_NAME, "html")

    def left(_: Chrome) -> bool:
        """The old page is gone. While it is torn down chromedriver may say so in other words than
        a stale reference ("Node with given id does not belong to the document"), which Selenium's
        own staleness_of raises instead of waiting on."""
        try:
            old.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise
        return False

    chrome.find_element(by, selector).click()
    WebDriverWait(chrome, 10).until(left, f"{selector} led nowhere")


def arrive(chrome: Chrome, url: str) -> None:
    """Wait (10 s at most) for a click's navigation to land on `url` (a prefix of it)."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(chrome, 10).until(
        lambda c: c.current_url.startswith(url) and c.execute_script("return document.readyState") == "complete",
        f"never reached {url}",
    )


def test_lookup_delist_confirm_accept(stack: Stack, chromium: Chrome, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    # listed: the status, the reason and dates, the code's meaning; never the ticket or author
    page = look_up(chromium, stack, "198.51.100.77")
    assert "bl.example.test: listed" in page
    assert "dictionary attack against the submission port" in page
    assert "abuse of our mail service (dictionary or brute-force attacks)" in page
    assert "Listed since\n2026-11-20" in page and "Expires\n2027-03-31T23:59:59Z" in page
    assert "ABUSE-1301" not in page and "bob" not in page and "abuse.yaml" not in page
    shot = ROOT / "docs" / "lookup.png" if os.environ.get("WRITE_SCREENSHOT") else tmp_path / "lookup.png"
    assert chromium.save_screenshot(str(shot))
    assert shot.read_bytes().startswith(PNG)

    page = look_up(chromium, stack, "192.0.2.77")
    assert "bl.example.test: not listed" in page and "192.0.2.77 is not listed here." in page
    assert "wl.example.test: not allowlisted" in page and "Ask for delisting" not in page

    page = look_up(chromium, stack, "192.0.2.200")
    assert "wl.example.test: allowlisted" in page
    assert "transactional mail service, high trust" in page and "transactional mail relay" in page
    assert "Example Mail Service" not in page and "abuse@mail.example.net" not in page

    # a listed party asks for delisting: form -> mail -> link -> Confirm -> branch
    page = look_up(chromium, stack, "192.0.2.3")
    assert "bl.example.test: listed" in page and "compromised hosts sending phishing" in page
    press(chromium, "Ask for delisting", By.LINK_TEXT)
    arrive(chromium, f"{stack.base}/requests/delist?address=192.0.2.3")
    assert chromium.find_element(By.NAME, "address").get_attribute("value") == "192.0.2.3"
    fill(
        chromium,
        organisation="Example Hosting",
        contact="postmaster@hosting.example",
        reason="The compromised web server was rebuilt on Nov 27.",
    )
    press(chromium, "main form button")
    assert "Check your mail" in text_of(chromium) and "postmaster@hosting.example" in text_of(chromium)
    assert request_branches(stack.clone) == []  # nothing written before the link comes back

    mail = stack.sink.wait_for("postmaster@hosting.example")
    assert mail["From"] == MAIL_FROM and "192.0.2.3" in str(mail["Subject"])
    chromium.get(link_in(mail, stack.base))
    page = text_of(chromium)
    assert "Confirm your request" in page and "delisting of 192.0.2.3" in page
    assert "Example Hosting" in page and "The compromised web server was rebuilt" in page
    assert "bl.example.test: an exclusion is added:" in page and "ip: 192.0.2.3" in page
    assert request_branches(stack.clone) == []  # GET of the link files nothing

    press(chromium, "main form button")
    page = text_of(chromium)
    found = re.search(r"Filed as request (\d{4}-\d{2}-\d{2}-\d{4}), branch (requests/\S+) ", page)
    assert found, page
    rid, branch = found.groups()
    assert branch == f"requests/{rid}" and request_branches(stack.clone) == [f"refs/heads/{branch}"]
    delisted = git(stack.clone, "show", f"{branch}:lists/bl/delisted.yaml").stdout
    assert "- ip: 192.0.2.3\n" in delisted and f"ticket: {rid}" in delisted and "by: web-request" in delisted
    trailers = git(stack.clone, "log", "-1", "--format=%(trailers:only,unfold)", branch).stdout
    for line in (
        f"Request-Id: {rid}",
        "Request-Kind: delist",
        "Request-Target: 192.0.2.3",
        "Request-Zones: bl.example.test",
        "Request-Organisation: Example Hosting",
        "Request-Contact: postmaster@hosting.example",
        "Request-Client: 127.0.0.1",
    ):
        assert line in trailers.splitlines(), trailers
    assert git(stack.clone, "status", "--porcelain").stdout == ""  # the work tree is untouched

    # the maintainer accepts it with the real CLI; the running page follows the publish
    done = publisher(stack.lists, stack.zones, "requests", "accept", rid)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"accepted: kept as refs/requests/accepted/{rid}" in done.stdout
    deadline = time.monotonic() + 5
    while "bl.example.test: not listed" not in (page := look_up(chromium, stack, "192.0.2.3")):
        assert time.monotonic() < deadline, page
        time.sleep(0.25)
    assert request_branches(stack.clone) == []
    assert git(stack.clone, "status", "--porcelain").stdout == ""  # the checked-out branch moved with its files
    assert "- ip: 192.0.2.3\n" in (stack.lists / "bl" / "delisted.yaml").read_text()


def test_allowlisting_from_the_form_confirmed_through_the_api(stack: Stack, chromium: Chrome) -> None:
    from selenium.webdriver.common.by import By

    chromium.get(f"{stack.base}/zones/wl.example.test")
    press(chromium, "Ask to allowlist your gateways", By.LINK_TEXT)
    fill(
        chromium,
        address="198.51.100.240/29",
        organisation="Example Mail Ltd",
        contact="noc@mail.example",
        reason="Our outbound gateways for the newsletters you subscribed to.",
    )
    press(chromium, "main form button")
    assert "Check your mail" in text_of(chromium)
    before = request_branches(stack.clone)
    token = link_in(stack.sink.wait_for("noc@mail.example"), stack.base).split("token=", 1)[1]
    status, body = get(
        f"{stack.base}/api/v1/requests/confirm",
        data=json.dumps({"token": token}).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert status == 201, body
    filed = json.loads(body)
    assert filed["status"] == "filed" and filed["zones"] == ["wl.example.test"]
    assert request_branches(stack.clone) == [*before, f"refs/heads/{filed['branch']}"]
    added = git(stack.clone, "show", f"{filed['branch']}:lists/wl/requests.yaml").stdout
    assert "- ip: 198.51.100.240/29\n" in added and "owner: Example Mail Ltd" in added
    assert "contact: noc@mail.example" in added
    # the same token again answers the same request
    again = get(
        f"{stack.base}/api/v1/requests/confirm",
        data=json.dumps({"token": token}).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert again[0] == 201 and json.loads(again[1])["id"] == filed["id"]
    assert json.loads(again[1])["status"] == "already-filed"
