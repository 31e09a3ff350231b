"""Listen addresses as an operator writes them: --listen, zones.yaml `listen:`, a port already taken."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT
from publisher.errors import ServerError
from publisher.lists.config import load_config
from publisher.lists.tree import DirTree
from publisher.server.net import Endpoint, bind_pair, parse_listen

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
