"""Listen addresses as an operator writes them: --listen, zones.yaml `listen:`, a port already taken."""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from subprocess import PIPE

import pytest

from conftest import ROOT, free_port
from publisher.errors import ServerError
from publisher.lists.config import load_config
from publisher.lists.tree import DirTree
from publisher.server.net import Endpoint, bind_each, bind_pair, parse_listen, probe
from server_fixtures import publish, sample_zones
from test_server import SERIAL

ZONES_YAML = """\
listen: [{listen}]
zones:
  - name: bl.example.test
    kind: ip
    role: block
    sources: [bl/*.txt]
    code: 127.0.0.2
    txt: "{{reason}}"
    soa: {{mname: ns1.example.test, rname: hostmaster.example.test}}
    ns: [{{name: ns1.example.test}}]
"""


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("127.0.0.1:5354", Endpoint("127.0.0.1", 5354)),
        ("[::1]:5354", Endpoint("::1", 5354)),
        ("127.0.0.1", Endpoint("127.0.0.1", 53)),
        ("[2001:db8::1]", Endpoint("2001:db8::1", 53)),
    ],
)
def test_listen_forms_that_work(text: str, want: Endpoint) -> None:
    assert parse_listen(text) == want


def test_a_port_alone_says_to_write_an_address() -> None:
    with pytest.raises(ServerError) as info:
        parse_listen("5361")
    assert str(info.value) == "'5361' is a port alone; write ADDRESS:PORT, e.g. 127.0.0.1:5361 or [::1]:5361"


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        # Both are real IPv6 addresses: before, they were served on port 53 without a word.
        ("::1:5361", "write [::1]:5361 for port 5361 on ::1, or [::1:5361]:53 for that address on port 53"),
        (
            "2001:db8::1:53",
            "write [2001:db8::1]:53 for port 53 on 2001:db8::1, or [2001:db8::1:53]:53 for that address on port 53",
        ),
        ("2001:db8::1", "write [2001:db8::1]:PORT, e.g. [2001:db8::1]:5353"),
    ],
)
def test_unbracketed_ipv6_is_refused_with_both_readings(text: str, fix: str) -> None:
    with pytest.raises(ServerError) as info:
        parse_listen(text)
    assert str(info.value) == f"listen address '{text}': an IPv6 address needs brackets; {fix}"


@pytest.mark.parametrize(
    ("listen", "message", "fix"),
    [
        ('"::1:5361"', "listen address '::1:5361': an IPv6 address needs brackets", "write [::1]:5361 for port 5361"),
        ('"5361"', "'5361' is a port alone", "write ADDRESS:PORT, e.g. 127.0.0.1:5361 or [::1]:5361"),
    ],
)
def test_zones_yaml_listen_says_the_same(tmp_path: Path, listen: str, message: str, fix: str) -> None:
    (tmp_path / "zones.yaml").write_text(ZONES_YAML.format(listen=listen))
    config, problems = load_config(DirTree(tmp_path))
    assert config is None
    assert [(p.code, str(p.location), p.message) for p in problems] == [("bad-listen", "zones.yaml:1:10", message)]
    assert problems[0].fix is not None and problems[0].fix.startswith(fix)


def test_a_taken_port_says_who_to_ask_and_how_to_move() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        with pytest.raises(ServerError) as info:
            bind_pair(Endpoint("127.0.0.1", port))
    assert str(info.value) == (
        f"cannot listen on udp 127.0.0.1:{port}: Address already in use; another server holds the port "
        f"(to see which: ss -lunp 'sport = :{port}'); "
        f"to listen elsewhere: make serve LISTEN=127.0.0.1:{port + 1}, or --listen 127.0.0.1:{port + 1}"
    )


def test_make_help_names_listen() -> None:
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    (line,) = [line for line in out.splitlines() if "LISTEN=" in line]
    assert "127.0.0.1:5354" in line and "ss -lunp" in line


# --- one of several addresses unusable (issue 17) -------------------------------------------


def _free_on_both() -> int:
    """A port free for UDP and TCP on 127.0.0.1 and on ::1 (skips without IPv6 on lo)."""
    for _ in range(50):
        port = free_port()
        try:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(socket.AF_INET6, kind) as taken:
                    taken.bind(("::1", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                pytest.skip("no IPv6 on the loopback")
            continue
        return port
    raise RuntimeError("no port free on both")


def _serve(zones: Path, port: int, *extra: str) -> subprocess.CompletedProcess[str]:
    """`publisher serve` on 127.0.0.1:port and [::1]:port, as `make serve` does on 5353."""
    cmd = [sys.executable, "-m", "publisher", "--zones", str(zones), "serve"]
    cmd += ["--listen", f"127.0.0.1:{port}", "--listen", f"[::1]:{port}", *extra]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # Its own process group: a server that did start (the bug) is stopped with its workers.
    with subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=PIPE, stderr=PIPE, text=True, start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.fixture
def zones_dir(tmp_path: Path) -> Path:
    publish(tmp_path / "zones", sample_zones(SERIAL))
    return tmp_path / "zones"


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]])
def test_a_port_taken_on_one_address_stops_the_start(zones_dir: Path, workers: list[str]) -> None:
    """Before: a warning, then serving on [::1] only while dig @127.0.0.1 reached the other process."""
    port = _free_on_both()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", port))
        done = _serve(zones_dir, port, *workers)
    assert done.returncode == 1
    assert done.stderr == (
        f"error: cannot listen on udp 127.0.0.1:{port}: Address already in use; another server holds the port "
        f"(to see which: ss -lunp 'sport = :{port}'); to listen elsewhere: "
        f"make serve LISTEN='127.0.0.1:{port + 1} [::1]:{port + 1}', "
        f"or --listen 127.0.0.1:{port + 1} --listen [::1]:{port + 1}\n"
    )
    assert not (zones_dir / "server.pid").exists()


def test_both_taken_says_each_reason_once_and_moves_both(zones_dir: Path) -> None:
    port = _free_on_both()
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as v4,
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as v6,
    ):
        v4.bind(("127.0.0.1", port))
        v6.bind(("::1", port))
        done = _serve(zones_dir, port)
    assert done.returncode == 1
    assert done.stderr == (
        f"error: cannot listen on udp 127.0.0.1:{port}: Address already in use; "
        f"cannot listen on udp [::1]:{port}: Address already in use; another server holds the ports "
        f"(to see which: ss -lunp 'sport = :{port}'); to listen elsewhere: "
        f"make serve LISTEN='127.0.0.1:{port + 1} [::1]:{port + 1}', "
        f"or --listen 127.0.0.1:{port + 1} --listen [::1]:{port + 1}\n"
    )


def test_nothing_stays_bound_after_a_refused_start() -> None:
    port = _free_on_both()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", port))
        with pytest.raises(ServerError, match="Address already in use"):
            bind_each([Endpoint("127.0.0.1", port), Endpoint("::1", port)])
    ((_, udp, tcp),) = bind_each([Endpoint("::1", port)])  # [::1] was released
    udp.close()
    tcp.close()


@pytest.mark.parametrize("workers", [False, True])
def test_an_address_the_host_lacks_is_left_out_with_a_warning(workers: bool, caplog: pytest.LogCaptureFixture) -> None:
    """192.0.2.1 (TEST-NET-1) is on no interface here: EADDRNOTAVAIL, like [::1] on a host without IPv6."""
    caplog.set_level(logging.WARNING, "publisher.server")
    if workers:
        got = probe([Endpoint("127.0.0.1", 0), Endpoint("192.0.2.1", 0)])
        assert [ep.host for ep in got] == ["127.0.0.1"]
    else:
        pairs = bind_each([Endpoint("127.0.0.1", 0), Endpoint("192.0.2.1", 0)])
        assert [ep.host for ep, _, _ in pairs] == ["127.0.0.1"]
        for _, udp, tcp in pairs:
            udp.close()
            tcp.close()
    assert [r.getMessage() for r in caplog.records] == [
        "cannot listen on udp 192.0.2.1:0: Cannot assign requested address; serving on the other addresses"
    ]
    with pytest.raises(ServerError, match=r"^cannot listen on udp 192\.0\.2\.1:0: Cannot assign requested address$"):
        bind_each([Endpoint("192.0.2.1", 0)])
