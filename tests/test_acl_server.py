"""Client ACLs on a served zone: each action, nesting, server-wide vs zone ACL, IPv6 and
IPv4-mapped clients, UDP (batched and plain loop) and TCP, transfers; plus the attacker's
view: a 100,000-network ACL's load time and memory.

The server runs in process on loopback; the client address is varied by binding the
client socket to 127.0.0.N (and ::1), as `dig -b` does.
"""

from __future__ import annotations

import logging
import random
import socket
import struct
import subprocess
import time
import tracemalloc
from collections.abc import Iterator

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from conftest import require_tool
from publisher import errorcodes
from publisher.addresses import parse_v4
from publisher.model import AclRule
from publisher.server import Server, ZoneSet, ZoneSettings, acl, gate, slow
from publisher.server.stats import CATEGORIES, DENIED, new_counters
from server_fixtures import read_tcp_message, sample_zones

BL, WL, DBL = "bl.example.test", "wl.example.test", "dbl.example.test"
LISTED = f"7.2.0.192.{BL}"  # 192.0.2.7: listed with 127.0.0.2 and 127.0.0.3 (two feeds)
UNLISTED = f"8.2.0.192.{BL}"
WAIT = 1.0  # how long a dropped query is waited for (a drop sends nothing)


def rule(network: str, action: str, code: str = "", txt: str = "") -> AclRule:
    return AclRule(network, action, parse_v4(code) if code else 0, txt)  # type: ignore[arg-type]


#: Server-wide: 127/8 refused, 127.0.0/24 passes, 127.0.0.9 dropped (the nesting); 127.2/16 empty;
#: 127.3/16 and 127.5/16 answer codes; ::1 empty.
WIDE = (
    rule("127.0.0.0/8", "refuse"),
    rule("127.0.0.0/24", "pass"),
    rule("127.0.0.9/32", "drop"),
    rule("127.2.0.0/16", "empty"),
    rule("127.3.0.0/16", "answer", txt="Queries from {client} are refused"),
    rule("127.5.0.0/16", "answer", "127.255.255.254"),
    rule("::1/128", "empty"),
)
#: bl's own: 127.0.0.7 empty (beats the server-wide pass), 127.2.0.5 dropped (beats empty),
#: 127.3.0.0/24 refused (beats answer), 127.5.0.0/16 another code (the server-wide code wins),
#: 127.1.2.0/24 pass (the server-wide refusal still wins).
BL_ACL = (
    rule("127.0.0.7/32", "empty"),
    rule("127.2.0.5/32", "drop"),
    rule("127.3.0.0/24", "refuse"),
    rule("127.5.0.0/16", "answer", "127.255.255.253"),
    rule("127.1.2.0/24", "pass"),
)


def zoneset() -> ZoneSet:
    return ZoneSet.build(sample_zones().values(), {BL: ZoneSettings(acl=BL_ACL)}, acl=WIDE)


@pytest.fixture(scope="module", params=[True, False], ids=["batched", "plain-loop"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    srv = Server(None, ["127.0.0.1:0", "[::1]:0"], zoneset=zoneset(), send_notify=False, batch=request.param)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def port(srv: Server, family: int = 4) -> int:
    return next(ep.port for ep in srv.bound if (":" in ep.host) == (family == 6))


def ask(srv: Server, name: str, qtype: str = "A", src: str = "127.0.0.1") -> DNSRecord | None:
    """One UDP query from `src`; None when nothing came back within WAIT."""
    family = socket.AF_INET6 if ":" in src else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((src, 0))
        s.settimeout(WAIT)
        s.sendto(
            DNSRecord.question(name, qtype).pack(),
            (src if family == socket.AF_INET6 else "127.0.0.1", port(srv, 6 if family == socket.AF_INET6 else 4)),
        )
        try:
            return DNSRecord.parse(s.recv(4096))
        except TimeoutError:
            return None


def ask_tcp(srv: Server, name: str, qtype: str = "A", src: str = "127.0.0.1") -> DNSRecord | None:
    """One TCP query from `src`; None when the server closed without answering."""
    with socket.create_connection(("127.0.0.1", port(srv)), timeout=10, source_address=(src, 0)) as s:
        wire = DNSRecord.question(name, qtype).pack()
        s.sendall(struct.pack(">H", len(wire)) + wire)
        try:
            return DNSRecord.parse(read_tcp_message(s))
        except ConnectionError:
            return None


def codes(reply: DNSRecord) -> list[str]:
    return sorted(str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A)


def txts(reply: DNSRecord) -> list[str]:
    return [b"".join(rr.rdata.data).decode() for rr in reply.rr if rr.rtype == QTYPE.TXT]


def test_pass_inside_refuse_answers_as_usual(server: Server) -> None:
    reply = ask(server, LISTED, src="127.0.0.1")
    assert reply is not None and reply.header.rcode == RCODE.NOERROR and codes(reply) == ["127.0.0.2", "127.0.0.3"]
    reply = ask(server, UNLISTED, src="127.0.0.1")
    assert reply is not None and reply.header.rcode == RCODE.NXDOMAIN


@pytest.mark.parametrize("name", [LISTED, f"{BL}", "anything.elsewhere.test"])
def test_refuse_answers_refused_for_every_query(server: Server, name: str) -> None:
    reply = ask(server, name, "SOA" if name == BL else "A", src="127.1.0.1")
    assert reply is not None and reply.header.rcode == RCODE.REFUSED and not reply.rr and not reply.header.aa


def test_drop_inside_pass_sends_nothing_udp_and_tcp(server: Server) -> None:
    assert ask(server, LISTED, src="127.0.0.9") is None
    assert ask(server, "x.elsewhere.test", src="127.0.0.9") is None  # outside every zone: the server-wide ACL
    assert ask_tcp(server, LISTED, src="127.0.0.9") is None
    assert ask(server, LISTED, src="127.0.0.8") is not None  # its neighbour passes


def test_empty_answers_nxdomain_for_data_and_soa_ns_as_usual(server: Server) -> None:
    for src in ("127.2.0.1", "127.0.0.7"):  # server-wide empty; bl's own empty inside the server-wide pass
        reply = ask(server, LISTED, src=src)
        assert reply is not None and reply.header.rcode == RCODE.NXDOMAIN and reply.header.aa
        assert [str(rr.rname) for rr in reply.auth] == [f"{BL}."] and reply.auth[0].rtype == QTYPE.SOA
        soa = ask(server, BL, "SOA", src=src)
        assert soa is not None and soa.header.rcode == RCODE.NOERROR and soa.rr[0].rtype == QTYPE.SOA
        ns_host = ask(server, f"ns1.{BL}", "A", src=src)  # the in-zone name server keeps its address
        assert ns_host is not None and codes(ns_host) == ["192.0.2.53"]
    other = ask(server, f"spam.example.{DBL}", src="127.0.0.7")  # bl's own ACL leaves dbl alone
    assert other is not None and codes(other) == ["127.0.1.2"]


def test_answer_gives_the_code_and_text_for_listed_and_unlisted(server: Server) -> None:
    for name in (LISTED, UNLISTED, f"spam.example.{DBL}"):
        reply = ask(server, name, "ANY", src="127.3.1.1")
        assert reply is not None and reply.header.rcode == RCODE.NOERROR and reply.header.aa, name
        assert codes(reply) == ["127.255.255.254"]
        assert txts(reply) == ["Queries from 127.3.1.1 are refused"]
        assert {rr.ttl for rr in reply.rr} == {60}
    a_only = ask(server, UNLISTED, "A", src="127.5.0.1")  # default text: the error-code table's
    txt_only = ask(server, UNLISTED, "TXT", src="127.5.0.1")
    assert a_only is not None and codes(a_only) == ["127.255.255.254"] and not txts(a_only)
    assert txt_only is not None and txts(txt_only) == [errorcodes.ACL_ANSWER.txt]
    aaaa = ask(server, UNLISTED, "AAAA", src="127.5.0.1")  # other types: NODATA, never NXDOMAIN
    assert aaaa is not None and aaaa.header.rcode == RCODE.NOERROR and not aaaa.rr and aaaa.auth


def test_server_wide_and_zone_acl_the_more_severe_wins(server: Server) -> None:
    assert ask(server, LISTED, src="127.2.0.5") is None  # zone drop over server-wide empty
    refused = ask(server, LISTED, src="127.3.0.1")  # zone refuse over server-wide answer
    assert refused is not None and refused.header.rcode == RCODE.REFUSED
    still = ask(server, LISTED, src="127.1.2.3")  # zone pass does not lift a server-wide refuse
    assert still is not None and still.header.rcode == RCODE.REFUSED
    both = ask(server, LISTED, src="127.5.0.1")  # two answers: the server-wide code
    assert both is not None and codes(both) == ["127.255.255.254"]
    # Outside bl the same clients meet the server-wide ACL alone.
    wl = ask(server, f"25.2.0.192.{WL}", src="127.3.0.1")
    assert wl is not None and codes(wl) == ["127.255.255.254"]


def test_tcp_meets_the_same_acl(server: Server) -> None:
    refused = ask_tcp(server, LISTED, src="127.1.0.1")
    assert refused is not None and refused.header.rcode == RCODE.REFUSED
    coded = ask_tcp(server, LISTED, src="127.3.1.1")
    assert coded is not None and codes(coded) == ["127.255.255.254"]
    empty = ask_tcp(server, LISTED, src="127.2.0.1")
    assert empty is not None and empty.header.rcode == RCODE.NXDOMAIN


def test_ipv6_client(server: Server) -> None:
    if not any(":" in ep.host for ep in server.bound):
        pytest.skip("no IPv6 loopback")
    reply = ask(server, LISTED, src="::1")
    assert reply is not None and reply.header.rcode == RCODE.NXDOMAIN  # ::1 is `empty`


def test_ipv4_mapped_client_counts_as_its_ipv4_address() -> None:
    zs = zoneset()
    counts = new_counters()
    query = bytes(DNSRecord.question(LISTED).pack())
    assert gate.answer(zs, query, False, counts, "::ffff:127.0.0.9") is gate.DROP
    assert gate.answer(zs, query, False, counts, socket.inet_pton(socket.AF_INET6, "::ffff:127.0.0.9")) is gate.DROP
    refused = gate.answer(zs, query, False, counts, socket.inet_pton(socket.AF_INET6, "::ffff:127.1.0.1"))
    assert isinstance(refused, bytes) and DNSRecord.parse(refused).header.rcode == RCODE.REFUSED
    sockaddr6 = struct.pack("<H", socket.AF_INET6) + b"\0" * 6 + socket.inet_pton(socket.AF_INET6, "::ffff:127.0.0.9")
    assert acl.client_key(memoryview(sockaddr6 + b"\0" * 4)) == socket.inet_pton(socket.AF_INET6, "::ffff:127.0.0.9")
    assert counts["-"][DENIED] + counts[BL][DENIED] == 2 and CATEGORIES[DENIED] == "denied"


def test_transfers_meet_drop_and_refuse_not_empty(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "publisher.server")
    slow.TRANSFER_REFUSALS._last = None  # this test's first refusal is logged whatever came before

    def axfr(src: str) -> list[DNSRecord] | None:
        with socket.create_connection(("127.0.0.1", port(server)), timeout=10, source_address=(src, 0)) as s:
            wire = DNSRecord.question(BL, "AXFR").pack()
            s.sendall(struct.pack(">H", len(wire)) + wire)
            out: list[DNSRecord] = []
            stream = s.makefile("rb")  # exact reads: a transfer's messages may arrive together
            while True:
                head = stream.read(2)
                if len(head) < 2:
                    return out or None
                msg = DNSRecord.parse(stream.read(struct.unpack(">H", head)[0]))
                out.append(msg)
                if msg.header.rcode or sum(rr.rtype == QTYPE.SOA for m in out for rr in m.rr) >= 2:
                    return out

    assert axfr("127.0.0.9") is None  # drop: closed without a word
    refused = axfr("127.1.0.1")
    # logged like a refusal by allow_transfer (throttled to a line a second: the address can be spoofed)
    assert f"AXFR of {BL} refused to 127.1.0.1: the client ACL refuses it" in caplog.text
    assert "127.0.0.9" not in caplog.text  # a drop: as if nothing had come
    assert refused is not None and refused[0].header.rcode == RCODE.REFUSED
    whole = axfr("127.2.0.1")  # empty leaves transfers to allow_transfer (127.0.0.0/8 by default)
    assert whole is not None and whole[0].header.rcode == RCODE.NOERROR and len(whole[0].rr) > 2


def test_dig_from_several_client_addresses(server: Server) -> None:
    dig = require_tool("dig")

    def run(src: str) -> str:
        cmd = [dig, "-b", src, "-p", str(port(server)), "@127.0.0.1", LISTED, "A", "+tries=1", "+time=1", "+short"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()

    assert sorted(run("127.0.0.1").split()) == ["127.0.0.2", "127.0.0.3"]
    assert run("127.3.9.9") == "127.255.255.254"
    assert run("127.2.0.1") == ""  # NXDOMAIN


def test_no_acl_means_no_gate_and_pass_only_acl_too() -> None:
    assert ZoneSet.build(sample_zones().values()).gate is None
    assert ZoneSet.build(sample_zones().values(), acl=[rule("127.0.0.0/8", "pass")]).gate is None
    assert zoneset().gate is not None


def test_huge_acl_loads_in_bounded_time_and_memory() -> None:
    """100,000 networks (an attacker-sized or a careless list): the load stays cheap."""
    rules = [rule(f"10.{i >> 8 & 255}.{i & 255}.0/24", "refuse" if i % 2 else "drop") for i in range(65536)]
    rules += [rule(f"2001:db8:{i:x}::/48", "answer") for i in range(100_000 - len(rules))]
    tracemalloc.start()
    t0 = time.perf_counter()
    zs = ZoneSet.build(sample_zones().values(), {BL: ZoneSettings(acl=BL_ACL)}, acl=rules)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert zs.gate is not None
    assert seconds < 30 and peak < 200 * 2**20, (seconds, peak)  # generous: about 2 s and 60 MiB here
    tables = zs.gate.tables
    assert tables.describe(4, parse_v4("10.1.3.3"), BL) == "refuse"
    assert tables.describe(4, parse_v4("10.1.2.3"), None) == "drop"
    query = bytes(DNSRecord.question(LISTED).pack())
    counts = new_counters()
    t0 = time.perf_counter()
    for i in range(10_000):  # a flood from ever new sources: one table look-up each, bounded cache
        gate.answer(zs, query, False, counts, struct.pack(">I", 0x0A000000 + i * 7919 % 0x01000000))
    assert (time.perf_counter() - t0) / 10_000 < 200e-6
    assert len(tables.cache) <= acl.CACHE_MAX


def test_tables_equal_a_brute_force_scan() -> None:
    """Most specific network wins within an ACL; the more severe of the two ACLs wins between them."""
    rng = random.Random(3)
    actions = ["pass", "refuse", "drop", "empty", "answer"]

    def random_rules() -> list[AclRule]:
        out = []
        for _ in range(rng.randrange(0, 9)):
            plen = rng.choice([8, 16, 24, 28, 32])
            addr = (rng.choice([0x0A000000, 0x7F000000]) + rng.randrange(1 << 17)) & ~((1 << (32 - plen)) - 1)
            code = f"127.255.255.25{rng.randrange(2, 6)}" if rng.random() < 0.5 else ""
            out.append(rule(f"{socket.inet_ntoa(addr.to_bytes(4, 'big'))}/{plen}", rng.choice(actions), code))
        return out

    def scan(rules: list[AclRule], addr: int) -> acl.Verdict:
        best: tuple[int, int] | None = None  # (prefix length, position): the longer, then the later
        for i, r in enumerate(rules):
            net, plen = r.network.split("/")
            start = parse_v4(net)
            if start <= addr < start + (1 << (32 - int(plen))) and (best is None or (int(plen), i) > best):
                best = (int(plen), i)
        return acl.verdict_of(rules[best[1]]) if best is not None else acl.PASSED

    for _ in range(200):
        wide_rules, own_rules = random_rules(), random_rules()
        wide, own = acl.Table.of(wide_rules), acl.Table.of(own_rules)
        both = acl.merged(wide, own)
        for _ in range(200):
            addr = rng.choice([0x0A000000, 0x7F000000]) + rng.randrange(1 << 17)
            want_wide, want_own = scan(wide_rules, addr), scan(own_rules, addr)
            assert wide.lookup(4, addr) == want_wide and own.lookup(4, addr) == want_own
            assert both.lookup(4, addr) == acl.stronger(want_wide, want_own)
