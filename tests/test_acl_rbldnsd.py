"""Differential: our client ACL and a real rbldnsd's `acl` dataset answer the same clients alike.

rbldnsd serves our `.rbldnsd` export of bl with a global acl (`:acl:FILE`) and the zone's own
(`ZONE:acl:FILE`), each with :ignore, :refuse, :empty, :pass and an "always listed" A+TXT
line; ours serves the same zone with the equivalent zones.yaml rules. The same names are
asked of both from several client addresses (127.0.0.N): whether a reply comes at all, its
rcode, its A records and, for the "always listed" client, its TXT must agree.

Deliberate differences (docs/design.md "Who may query"), not compared: our error answers
carry TTL 60 (rbldnsd uses the zone's TTL), and rbldnsd has no `answer` code default.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from dnslib import QTYPE, DNSRecord

from conftest import free_port, require_tool, stop_process
from publisher.addresses import parse_v4
from publisher.compile import render
from publisher.model import AclRule
from publisher.server import Server, ZoneSet, ZoneSettings
from server_fixtures import sample_zones
from test_interop import _user_exists, _wait_ready, write

BL = "bl.example.test"
GLOBAL_ACL = """\
127.0.0.0/8 :refuse
127.0.0.0/24 :pass
127.0.0.9 :ignore
127.1.0.0/16 :refuse
127.2.0.0/16 :empty
127.3.0.0/16 :127.255.255.254:Queries from $ are refused
"""
ZONE_ACL = """\
127.0.0.7 :empty
127.2.0.5 :ignore
127.3.3.0/24 :refuse
"""
OURS_WIDE = (
    AclRule("127.0.0.0/8", "refuse"),
    AclRule("127.0.0.0/24", "pass"),
    AclRule("127.0.0.9/32", "drop"),
    AclRule("127.1.0.0/16", "refuse"),
    AclRule("127.2.0.0/16", "empty"),
    AclRule("127.3.0.0/16", "answer", parse_v4("127.255.255.254"), "Queries from {client} are refused"),
)
OURS_ZONE = (
    AclRule("127.0.0.7/32", "empty"),
    AclRule("127.2.0.5/32", "drop"),
    AclRule("127.3.3.0/24", "refuse"),
)
CLIENTS = (
    "127.0.0.1",
    "127.0.0.7",
    "127.0.0.9",
    "127.1.0.1",
    "127.2.0.1",
    "127.2.0.5",
    "127.3.0.1",
    "127.3.3.3",
    "127.4.0.1",
)
NAMES = (f"7.2.0.192.{BL}", f"8.2.0.192.{BL}", f"0.100.51.198.{BL}", f"ns1.{BL}")


@pytest.fixture(scope="module")
def theirs() -> Iterator[int]:
    binary = require_tool("rbldnsd")
    directory = Path(tempfile.mkdtemp(prefix="rbldnsd-acl-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        directory.chmod(0o755)
        data = write(sample_zones()[BL], render.render_rbldnsd, directory, ".rbldnsd")
        (directory / "global.acl").write_text(GLOBAL_ACL)
        (directory / "zone.acl").write_text(ZONE_ACL)
        for path in (data, directory / "global.acl", directory / "zone.acl"):
            path.chmod(0o644)
        port = free_port()
        user = ["-u", "rbldns" if _user_exists("rbldns") else "nobody"] if os.geteuid() == 0 else []
        args = [render.rbldnsd_zone_arg(BL, data.name), f"{BL}:acl:zone.acl", ":acl:global.acl"]
        log = (directory / "rbldnsd.log").open("wb")
        cmd = [binary, "-n", "-f", *user, "-b", f"127.0.0.1/{port}", "-w", str(directory), *args]
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        _wait_ready(proc, port, BL, directory / "rbldnsd.log")  # its probe comes from 127.0.0.1: a pass
        yield port
    finally:
        if proc is not None:
            stop_process(proc)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def ours() -> Iterator[int]:
    zs = ZoneSet.build([sample_zones()[BL]], {BL: ZoneSettings(acl=OURS_ZONE)}, acl=OURS_WIDE)
    srv = Server(None, ["127.0.0.1:0"], zoneset=zs, send_notify=False)
    (endpoint,) = srv.start()
    try:
        yield endpoint.port
    finally:
        srv.stop()


def outcomes(port: int, src: str, questions: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[object, ...]]:
    """(rcode, A records, TXT records) per question, asked over UDP from `src` all at once;
    ('no reply',) for those unanswered within a second (a drop sends nothing)."""
    out: dict[tuple[str, str], tuple[object, ...]] = dict.fromkeys(questions, ("no reply",))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((src, 0))
        s.settimeout(1.0)
        for i, (name, qtype) in enumerate(questions):
            q = DNSRecord.question(name, qtype)
            q.header.id = i
            s.sendto(q.pack(), ("127.0.0.1", port))
        for _ in questions:
            try:
                reply = DNSRecord.parse(s.recv(4096))
            except TimeoutError:
                break
            a = sorted(str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A)
            txt = sorted(b"".join(rr.rdata.data).decode() for rr in reply.rr if rr.rtype == QTYPE.TXT)
            out[questions[reply.header.id]] = (reply.header.rcode, a, txt if src.startswith("127.3.0.") else len(txt))
    return out


#: rbldnsd's `empty` and "always listed" hide the in-zone name servers' addresses too; ours
#: answers them as usual (docs/design.md: SOA, NS and the name servers' addresses as usual).
KNOWN = {(src, f"ns1.{BL}", "A") for src in ("127.0.0.7", "127.2.0.1", "127.3.0.1")}


def test_acl_answers_equal_rbldnsd(theirs: int, ours: int) -> None:
    questions = [(name, qtype) for name in NAMES for qtype in ("A", "TXT")] + [(BL, "SOA")]
    problems = []
    differ = set()
    for src in CLIENTS:
        got, want = outcomes(ours, src, questions), outcomes(theirs, src, questions)
        for q in questions:
            same = got[q][0] == want[q][0] if q[1] == "SOA" else got[q] == want[q]
            if (src, *q) in KNOWN:
                differ.add((src, *q))
                assert got[q][:2] == (0, ["192.0.2.53"]) and want[q][:2] == (0, []), (src, q, got[q], want[q])
            elif not same:
                problems.append(f"from {src}: {q[0]} {q[1]}: ours {got[q]}, rbldnsd {want[q]}")
    assert not problems, "\n".join(problems)
    assert differ == KNOWN
