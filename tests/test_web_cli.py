"""`publisher web` as an operator starts it: options checked before anything listens."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
import uvicorn
from tests.test_vcs import git
from tests.web_fixtures import Published

from publisher.cli.app import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """A start that should have been refused fails the test instead of serving forever."""

    def run(*_: object, **__: object) -> None:
        pytest.fail("publisher web started serving")

    monkeypatch.setattr(uvicorn.Server, "run", run)


def web(pub: Published, *args: str) -> int:
    return main(["--lists", str(pub.lists), "--zones", str(pub.zones), "web", *args])


def test_a_base_branch_that_does_not_exist_is_refused_at_start(
    pub: Published, capsys: pytest.CaptureFixture[str]
) -> None:
    assert web(pub, "--base", "nosuchbranch", "--smtp", "127.0.0.1:25") == 2
    err = capsys.readouterr().err
    assert "--base nosuchbranch: the lists' repository" in err and "has no branch nosuchbranch" in err
    assert "fix: give one of its branches: main" in err


def test_a_detached_head_is_a_warning_at_start(
    pub: Published, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    git(pub.lists.parent, "checkout", "-q", "--detach")
    monkeypatch.setattr(uvicorn.Server, "run", lambda *_, **__: None)
    assert web(pub, "--listen", "127.0.0.1:0") == 0
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("HEAD is detached" in w and "--base BRANCH" in w for w in warned), warned


def test_make_web_refuses_two_listen_addresses_and_help_says_one() -> None:
    two = "127.0.0.1:18082 [::1]:18082"
    done = subprocess.run(["make", "-n", "web", f"LISTEN={two}"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode != 0 and "publisher web" not in done.stdout
    assert f"make web listens on one address, LISTEN='{two}' has 2; give one" in done.stderr
    one = subprocess.run(["make", "-n", "web", "LISTEN=[::1]:18082"], cwd=ROOT, capture_output=True, text=True)
    assert one.returncode == 0 and "publisher web --listen [::1]:18082\n" in one.stdout
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    web = out[out.index("make web") : out.index("make test")]
    assert "one address" in web and "(two are refused)" in web


def test_a_taken_port_is_refused_with_who_holds_it_and_where_else_to_listen(
    pub: Published, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        assert web(pub, "--listen", f"127.0.0.1:{port}") != 0
    err = capsys.readouterr().err
    assert err == (
        f"error: --listen 127.0.0.1:{port}: cannot listen on tcp 127.0.0.1:{port}: Address already in use; "
        f"another server holds the port (to see which: ss -ltnp 'sport = :{port}'); "
        f"to listen elsewhere: make web LISTEN=127.0.0.1:{port + 1}, or --listen 127.0.0.1:{port + 1}\n"
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ("--smtp", "localhost:25"),
            "error: --smtp localhost:25: the mail relay: 'localhost' is not an IP address\n"
            "  fix: write --smtp 127.0.0.1:25 or --smtp [::1]:25 (the relay's IP address and port; "
            "a host name, even localhost, is not looked up)\n",
        ),
        (
            ("--listen", "localhost:8080"),
            "error: --listen localhost:8080: the listen address: 'localhost' is not an IP address\n"
            "  fix: write --listen 127.0.0.1:8080 or --listen [::1]:8080 (an IP address and port; "
            "a host name, even localhost, is not looked up)\n",
        ),
        (
            ("--mail-from", "nobody"),
            "error: --mail-from nobody: not a mail address LOCAL@DOMAIN\n"
            "  fix: write e.g. --mail-from dnsbl-requests@example.test (default dnsbl-requests@localhost)\n",
        ),
        (
            ("--trusted-proxy", "10.0.0.1/8"),
            "error: --trusted-proxy 10.0.0.1/8: 10.0.0.1/8 has host bits set\n"
            "  fix: write 10.0.0.0/8 for the whole block, or 10.0.0.1 for one proxy\n",
        ),
    ],
)
def test_bad_options_are_refused_in_words_about_what_they_are(
    pub: Published, capsys: pytest.CaptureFixture[str], args: tuple[str, str], said: str
) -> None:
    assert web(pub, "--listen", "127.0.0.1:0", *args) == 2
    assert capsys.readouterr().err == said


def test_help_describes_the_command_and_its_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["web", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps at the terminal's width
    assert "Serve the lookup page, the JSON API" in out
    assert "(default dnsbl- requests@localhost)" in out or "(default dnsbl-requests@localhost)" in out
    assert "(default 'DNSBL lookup')" in out and "e.g. 127.0.0.1:25" in out


@pytest.mark.parametrize("smtp", [None, "127.0.0.1:2525"])
def test_the_banner_says_where_it_listens_the_public_url_and_whether_requests_are_taken(
    pub: Published, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], smtp: str | None
) -> None:
    ports: list[int] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda _, sockets: ports.append(sockets[0].getsockname()[1]))
    extra = ("--smtp", smtp) if smtp else ()
    assert web(pub, "--listen", "127.0.0.1:0", "--public-url", "https://lookup.example.test", *extra) == 0
    (port,) = ports
    first, where, requests = capsys.readouterr().err.splitlines()[-3:]
    assert first == f"publisher web: listening on http://127.0.0.1:{port}, public URL https://lookup.example.test"
    assert where == f"  zones {pub.zones}, lists {pub.lists}"
    if smtp:
        assert requests == (
            "  requests: taken, confirmation links mailed through 127.0.0.1:2525 from dnsbl-requests@localhost"
        )
    else:
        assert requests == "  requests: not taken (no --smtp; links mailed before still confirm)"


def test_connections_to_the_listening_socket_get_no_delay() -> None:
    """asyncio sets TCP_NODELAY on accepted connections only when the listening socket names
    IPPROTO_TCP. Without it every keep-alive response waited out the client's delayed ACK:
    40 ms, 23 lookups a second where 1,500 are served (bench/results/web.md)."""
    import asyncio

    from publisher.cli.web import _bind

    async def nodelay() -> int:
        found: list[int] = []

        async def accepted(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            found.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=_bind("127.0.0.1", 0))
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        while not found:
            await asyncio.sleep(0.01)
        writer.close()
        server.close()
        await server.wait_closed()
        return found[0]

    assert asyncio.run(asyncio.wait_for(nodelay(), 10)) == 1
