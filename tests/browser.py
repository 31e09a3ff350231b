"""A real browser for tests: Selenium driving Debian's Chromium through Debian's chromedriver.

`chromium` (module-scoped fixture) is a `selenium.webdriver.Chrome` on /usr/bin/chromium with
/usr/bin/chromedriver, both named explicitly, so Selenium Manager is never run and downloads
nothing (tests/test_browser_fixture.py makes sure). Headless, as root (`--no-sandbox`), in a
fresh profile under a temporary directory, with Chromium's own traffic (updates, sync,
background fetches, QUIC) turned off: the only requests it makes are the ones the test asks
for. The page's viewport (and so a screenshot) is WIDTH x HEIGHT pixels. The browser is quit at
teardown and its profile removed. Skipped without chromium or chromedriver, failed under CI.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from tests.conftest import require_tool

if TYPE_CHECKING:
    from selenium.webdriver import Chrome

CHROMIUM = "chromium"  # Debian's package: /usr/bin/chromium
CHROMEDRIVER = "chromedriver"  # Debian's chromium-driver: /usr/bin/chromedriver
WIDTH, HEIGHT = 1200, 900
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # the tests run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--hide-scrollbars",  # a screenshot shows the page, not a scrollbar
    f"--window-size={WIDTH},{HEIGHT}",
)


@contextmanager
def running_chromium() -> Iterator[Chrome]:
    """A headless Chromium under chromedriver, in a profile of its own; quit on exit."""
    browser, driver = require_tool(CHROMIUM), require_tool(CHROMEDRIVER)
    from selenium.webdriver import Chrome, ChromeOptions
    from selenium.webdriver.chrome.service import Service

    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
    try:
        options = ChromeOptions()
        options.binary_location = browser
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        # a driver path given to the Service: Selenium Manager is skipped (it would download one)
        chrome = Chrome(options=options, service=Service(executable_path=driver))
        try:
            # headless Chromium still keeps room for a window frame: grow the window by it, so
            # that the page (and a screenshot) is WIDTH x HEIGHT
            inner = chrome.execute_script("return [window.innerWidth, window.innerHeight]")
            chrome.set_window_size(2 * WIDTH - int(inner[0]), 2 * HEIGHT - int(inner[1]))
            yield chrome
        finally:
            chrome.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chrome]:
    with running_chromium() as chrome:
        yield chrome
