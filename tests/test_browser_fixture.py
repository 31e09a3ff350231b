"""The `chromium` fixture (tests/browser.py): a real Chromium fills and submits a form served on
loopback, takes a screenshot of the window's size, downloads nothing, and leaves nothing behind."""

from __future__ import annotations

import html
import struct
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.common.selenium_manager import SeleniumManager
from selenium.webdriver.support.ui import WebDriverWait
from tests.browser import HEIGHT, WIDTH, running_chromium

FORM = b"""<!doctype html><title>Lookup</title>
<form method="post" action="/lookup"><input name="q" id="q"><button id="go">Look up</button></form>"""


class Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, str]] = []  # (method, path) of every request, in order

    def _page(self, body: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # http.server's names
        self.seen.append(("GET", self.path))
        if self.path == "/":
            self._page(FORM)
        else:
            self._page(b"not found", 404)

    def do_POST(self) -> None:
        self.seen.append(("POST", self.path))
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        query = form.get("q", [""])[0]
        self._page(f"<!doctype html><title>Result</title><p id=result>{html.escape(query)} is listed</p>".encode())

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """A stdlib HTTP server on an ephemeral loopback port, in a thread; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="tiny-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5.0)


def test_the_browser_fills_and_submits_a_form(chromium: Chrome, site: str) -> None:
    Handler.seen.clear()
    chromium.get(site + "/")
    assert chromium.title == "Lookup"
    chromium.find_element(By.ID, "q").send_keys("192.0.2.1 <b>")
    chromium.find_element(By.ID, "go").click()
    # click() returns once the form is submitted, not when the next page is there: wait for it
    found = WebDriverWait(chromium, 10).until(lambda c: c.find_elements(By.ID, "result"), "no result page")
    assert found[0].text == "192.0.2.1 <b> is listed"
    assert chromium.title == "Result"
    # what reached the server is what the test asked for, nothing fetched on the side
    assert [s for s in Handler.seen if s[1] != "/favicon.ico"] == [("GET", "/"), ("POST", "/lookup")]


def test_a_screenshot_is_a_png_of_the_window(chromium: Chrome, site: str) -> None:
    chromium.get(site + "/")
    png = chromium.get_screenshot_as_png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    assert struct.unpack(">II", png[16:24]) == (WIDTH, HEIGHT)


def test_selenium_manager_is_never_run_and_nothing_is_left_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: SeleniumManager, args: list[str]) -> dict[str, str]:
        raise AssertionError(f"Selenium Manager was asked for {args}: it would download a driver")

    monkeypatch.setattr(SeleniumManager, "binary_paths", refuse)
    monkeypatch.setenv("SE_OFFLINE", "true")
    version = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True).stdout
    with running_chromium() as chrome:
        assert chrome.service.path == "/usr/bin/chromedriver"
        assert chrome.capabilities["browserVersion"] in version  # Debian's Chromium, not a download
        profile = chrome.capabilities["chrome"]["userDataDir"]
        assert Path(profile).is_dir()
        driver = chrome.service.process
    assert driver.poll() is not None  # chromedriver stopped
    assert not Path(profile).exists()
    leftovers = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if profile.encode() in cmdline.read_bytes():
                leftovers.append(cmdline.parent.name)
        except OSError:
            continue
    assert leftovers == []  # no Chromium process of that profile runs on
