"""The SPF expansion against a real DNS server: NSD on loopback serving test partners' records
(tests/authdns.py), asked through `DnsResolver`; every shape cross-checked with pyspf, an
independent check_host(), pointed at the same NSD: each found network's sampled addresses
pass, sampled addresses outside do not."""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Iterator, Mapping

import dns.resolver
import pytest

import spf  # pyspf
from authdns import AuthDns, BlackHole
from publisher.spf.expand import expand
from publisher.spf.resolver import DnsResolver
from publisher.spf.result import Expansion
from spf_fake import listed, networks, whys

#: pyspf asks dnspython through its deprecated module-level `query`
pytestmark = pytest.mark.filterwarnings("ignore:please use dns.resolver.resolve:DeprecationWarning")

Start = Callable[[Mapping[str, str]], AuthDns]
ZONE = "example.test"

RECORDS = r"""
partner TXT ( "v=spf1 include:_spf.partner.example.test a:mail.partner.example.test/30//64 mx/31 "
    "-ip4:203.0.113.64/26 ip4:203.0.113.0/24 -all" )
_spf.partner TXT "v=spf1 include:_net2.partner.example.test " "ip4:198.51.100.0/27 ~all"
_net2.partner TXT "v=spf1 ip6:2001:db8:a::/48 ip4:198.51.100.128/28 -all"
partner TXT "google-site-verification=abc"
partner MX 10 mx1.partner.example.test.
mail.partner A 192.0.2.10
mail.partner AAAA 2001:db8:b::10
mx1.partner A 192.0.2.20
mx1.partner AAAA 2001:db8:c::20
redir TXT "v=spf1 ip4:192.0.2.128/28 redirect=_spf.partner.example.test"
loop TXT "v=spf1 ip4:192.0.2.200 include:_a.loop.example.test -all"
_a.loop TXT "v=spf1 ip4:192.0.2.201 include:loop.example.test -all"
LIMIT_RECORD
void TXT ( "v=spf1 a:gone1.example.test a:gone2.example.test ip4:198.51.100.64/28 "
    "a:gone3.example.test ip4:198.51.100.80/28 -all" )
macro TXT "v=spf1 ip4:192.0.2.64/29 exists:%{i}._spf.macro.example.test ip6:2001:db8:d::/64 -all"
192.0.2.99._spf.macro A 127.0.0.2
alias CNAME nowhere.example.test.
"""
LIMIT = " ".join(f"a:h{i}.example.test" for i in range(1, 12))
RECORDS = RECORDS.replace("LIMIT_RECORD", f'limit TXT "v=spf1 ip4:192.0.2.240/29 {LIMIT} ip4:192.0.2.248/29 -all"')
HOSTS = "\n".join(f"h{i} A 203.0.113.{200 + i}\nh{i} AAAA 2001:db8:e::{i}" for i in range(1, 12))


@pytest.fixture
def server(auth_dns: Start) -> AuthDns:
    return auth_dns({ZONE: RECORDS + HOSTS})


@pytest.fixture
def pyspf_at() -> Iterator[Callable[[AuthDns], None]]:
    """Point pyspf (which asks dnspython's default resolver) at a test server; restored after."""
    saved = dns.resolver.default_resolver

    def point(server: AuthDns) -> None:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [server.host]
        resolver.port = server.port
        dns.resolver.default_resolver = resolver

    yield point
    dns.resolver.default_resolver = saved


def verdict(ip: int, family: int, domain: str) -> str:
    text = str(ipaddress.ip_address(ip)) if family == 4 else str(ipaddress.IPv6Address(ip))
    result, _code, _why = spf.query(i=text, s=f"postmaster@{domain}", h=domain, timeout=5).check()
    return str(result)


def crosscheck(exp: Expansion, rng: random.Random) -> int:
    """pyspf passes sampled addresses of every found network (first, last, random) and not the
    addresses just outside each, nor random ones outside everything found. Returns the checks made."""
    spans = [(f.network.family, f.network.start, f.network.end) for f in exp.found]

    def inside(family: int, addr: int) -> bool:
        return any(fam == family and start <= addr <= end for fam, start, end in spans)

    checks = 0
    for family, start, end in spans:
        for addr in {start, end, rng.randint(start, end)}:
            assert verdict(addr, family, exp.domain) == "pass", (exp.domain, family, addr)
            checks += 1
        for addr in (start - 1, end + 1):
            if not inside(family, addr):
                assert verdict(addr, family, exp.domain) != "pass", (exp.domain, family, addr)
                checks += 1
    for family, bits in ((4, 32), (6, 128)):
        for _ in range(10):
            addr = rng.getrandbits(bits)
            if not inside(family, addr):
                assert verdict(addr, family, exp.domain) != "pass", (exp.domain, family, addr)
                checks += 1
    return checks


def test_nested_includes_a_mx_cidr_and_the_crosscheck(server: AuthDns, pyspf_at: Callable[[AuthDns], None]) -> None:
    resolver = DnsResolver([(server.host, server.port)], timeout=2.0)
    exp = expand("partner.example.test", resolver)
    assert exp.outcome == "ok", exp.why
    top = "partner.example.test"
    inc = f"{top} > include:_spf.partner.example.test"
    assert listed(exp) == [
        ("192.0.2.8/30", f"{top} > a:mail.partner.example.test/30//64"),
        ("192.0.2.20/31", f"{top} > mx/31"),
        ("198.51.100.0/27", f"{inc} > ip4:198.51.100.0/27"),
        ("198.51.100.128/28", f"{inc} > include:_net2.partner.example.test > ip4:198.51.100.128/28"),
        ("203.0.113.0/26", f"{top} > ip4:203.0.113.0/24"),
        ("203.0.113.128/25", f"{top} > ip4:203.0.113.0/24"),
        ("2001:db8:a::/48", f"{inc} > include:_net2.partner.example.test > ip6:2001:db8:a::/48"),
        ("2001:db8:b::/64", f"{top} > a:mail.partner.example.test/30//64"),
        ("2001:db8:c::20", f"{top} > mx/31"),
    ]
    assert exp.record.startswith("v=spf1 include:_spf.partner.example.test a:mail")
    assert (exp.lookups, exp.void_lookups, exp.unlisted) == (4, 0, ())
    # the TXT of the partner, _spf, _net2; MX; A and AAAA of mail and mx1: each asked once
    assert exp.queries == resolver.queries == 8
    pyspf_at(server)
    assert crosscheck(exp, random.Random(1)) > 40


def test_more_shapes_crosschecked(server: AuthDns, pyspf_at: Callable[[AuthDns], None]) -> None:
    resolver = DnsResolver([(server.host, server.port)], timeout=2.0)
    pyspf_at(server)
    rng = random.Random(2)
    exp = expand("redir.example.test", resolver)
    assert [found.via for found in exp.found] == [
        "redir.example.test > ip4:192.0.2.128/28",
        "redir.example.test > redirect=_spf.partner.example.test > ip4:198.51.100.0/27",
        "redir.example.test > redirect=_spf.partner.example.test > include:_net2.partner.example.test"
        " > ip4:198.51.100.128/28",
        "redir.example.test > redirect=_spf.partner.example.test > include:_net2.partner.example.test"
        " > ip6:2001:db8:a::/48",
    ]
    crosscheck(exp, rng)

    exp = expand("loop.example.test", resolver)
    assert networks(exp) == ["192.0.2.200", "192.0.2.201"]
    assert whys(exp) == [
        "loop.example.test > include:_a.loop.example.test > include:loop.example.test:"
        " include loop: loop.example.test > _a.loop.example.test > loop.example.test"
    ]
    crosscheck(exp, rng)

    exp = expand("limit.example.test", resolver)
    assert networks(exp)[0] == "192.0.2.240/29" and "192.0.2.248/29" not in networks(exp)
    assert [n for n in networks(exp) if n.startswith("203.0.113.")] == [f"203.0.113.{200 + i}" for i in range(1, 11)]
    assert "the 10-lookup limit is passed here" in whys(exp)[0]
    crosscheck(exp, rng)
    assert verdict(0xC00002F8, 4, "limit.example.test") == "permerror"  # 192.0.2.248: past the limit

    exp = expand("void.example.test", resolver)
    assert networks(exp) == ["198.51.100.64/28"]
    assert "a:gone3.example.test: a void lookup past the 2 allowed" in whys(exp)[0]
    crosscheck(exp, rng)

    exp = expand("macro.example.test", resolver)
    assert networks(exp) == ["192.0.2.64/29", "2001:db8:d::/64"]
    assert whys(exp) == ["macro.example.test > exists:%{i}._spf.macro.example.test: macros cannot be enumerated"]
    crosscheck(exp, rng)
    assert verdict(0xC0000263, 4, "macro.example.test") == "pass"  # 192.0.2.99: passed by exists, not listed


def test_a_record_that_disappears_and_names_without_records(auth_dns: Start) -> None:
    server = auth_dns({ZONE: 'gone TXT "v=spf1 ip4:192.0.2.1 -all"\nalias CNAME nowhere.example.test.'})
    assert networks(expand("gone.example.test", DnsResolver([(server.host, server.port)]))) == ["192.0.2.1"]
    server.set_zones({ZONE: "gone A 192.0.2.1\nalias CNAME gone.example.test.\nbroken CNAME nowhere.example.test."})
    resolver = DnsResolver([(server.host, server.port)])
    exp = expand("gone.example.test", resolver)
    assert (exp.outcome, exp.why) == ("vanished", "gone.example.test has no TXT records")
    exp = expand("nothing.example.test", resolver)
    assert (exp.outcome, exp.why) == ("vanished", "nothing.example.test does not exist (NXDOMAIN)")
    assert resolver.query("alias.example.test", "TXT").status == "nodata"  # a CNAME to a name without TXT
    assert resolver.query("broken.example.test", "TXT").status == "nxdomain"  # a CNAME to no name
    assert resolver.query("alias.example.test", "TXT").status == "nodata"
    assert resolver.queries == 4  # the second alias query came from the instance's answers


def test_a_timeout_is_a_temperror(black_hole: BlackHole) -> None:
    resolver = DnsResolver([(black_hole.host, black_hole.port)], timeout=0.5)
    exp = expand("partner.example.test", resolver)
    assert (exp.outcome, exp.found) == ("temperror", ())
    assert exp.why == (
        f"DNS lookup of partner.example.test TXT failed: timeout after 0.5 s from {black_hole.host}"
        f":{black_hole.port} (at partner.example.test)"
    )


def test_a_resolver_that_does_not_answer_leaves_time_for_the_next(server: AuthDns, black_hole: BlackHole) -> None:
    """`--resolver DOWN --resolver UP` (or a resolv.conf whose first server is down) still refreshes."""
    resolver = DnsResolver([(black_hole.host, black_hole.port), (server.host, server.port)], timeout=0.5)
    exp = expand("partner.example.test", resolver)
    assert exp.outcome == "ok" and exp.found
