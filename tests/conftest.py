"""Shared fixtures: real Debian tools are required under CI, skipped elsewhere."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
#: The sample lists the tests read: a copy of the shipped lists/ (what a new user starts
#: from), so that an operator's own lists in lists/ never change what `make test` checks.
LISTS = DATA / "sample-lists"

#: Fixtures on real components, `postfix_sink` (a private Postfix) and `chromium` (Selenium on Debian's
#: Chromium), and the web tests' `pub`, `fake` and `client` (tests/web_fixtures.py).
pytest_plugins = ["tests.mailsink", "tests.browser", "tests.web_fixtures", "tests.authdns"]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

_SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")


def require_tool(name: str) -> str:
    """The full path of a Debian tool; skip the test without it, fail under CI."""
    path = shutil.which(name) or shutil.which(name, path=os.pathsep.join(_SBIN))
    if path:
        return path
    message = f"{name} is not installed (apt-get install the package that ships it)"
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it", pytrace=False)
    pytest.skip(message)


def free_port(family: int = socket.AF_INET, host: str = "127.0.0.1") -> int:
    """An ephemeral port free for both UDP and TCP at the moment of the call."""
    for _ in range(50):
        with socket.socket(family, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(family, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port found")


@pytest.fixture
def lists_dir() -> Path:
    return LISTS


def stop_process(proc: subprocess.Popen[bytes] | subprocess.Popen[str], timeout: float = 10.0) -> None:
    """Stop a daemon the test started, by its PID: SIGTERM, then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)
