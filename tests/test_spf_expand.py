"""The SPF expansion (publisher/spf/expand.py) over a dict-backed resolver: RFC 7208 exactly.

Each case is a record shape an operator meets; the last test checks the walk against a
per-address check_host() written here, address by address, for random small records.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.spf.expand import expand
from publisher.spf.result import Expansion
from spf_fake import FakeDns, addresses, listed, networks, whys

P = "p.example"
Z = dict[str, dict[str, list[str] | str]]


def run(zone: dict[str, dict[str, list[str] | str]], **kw: int) -> tuple[FakeDns, Expansion]:
    dns = FakeDns(zone)
    return dns, expand(P, dns, **kw)


def test_qualifiers_and_order_cut_the_wider_mechanism() -> None:
    dns = FakeDns(
        {P: {"TXT": ["v=spf1 -ip4:192.0.2.8/29 ~ip4:192.0.2.16/28 ip4:192.0.2.0/24 ?ip4:198.51.100.0/24 -all"]}}
    )
    exp = expand(P, dns)
    assert exp.outcome == "ok"
    via = "p.example > ip4:192.0.2.0/24"
    assert listed(exp) == [
        ("192.0.2.0/29", via),
        ("192.0.2.32/27", via),
        ("192.0.2.64/26", via),
        ("192.0.2.128/25", via),
    ]
    assert exp.unlisted == () and exp.lookups == 0 and exp.queries == 1


def test_include_passes_only_what_the_included_record_passes() -> None:
    zone: dict[str, dict[str, list[str] | str]] = {
        P: {"TXT": ["v=spf1 include:_spf.p.example ip4:198.51.100.0/24 -all"]},
        "_spf.p.example": {"TXT": ["v=spf1 -ip4:198.51.100.0/25 ip4:203.0.113.0/24 ~all"]},
    }
    _, exp = run(zone)
    # the include's -ip4 fails 198.51.100.0/25 there: not a match, so the parent's ip4 passes it
    assert listed(exp) == [
        ("198.51.100.0/24", "p.example > ip4:198.51.100.0/24"),
        ("203.0.113.0/24", "p.example > include:_spf.p.example > ip4:203.0.113.0/24"),
    ]
    zone[P] = {"TXT": ["v=spf1 -include:_spf.p.example ip4:203.0.0.0/16 -all"]}
    _, exp = run(zone)
    assert sum(found.network.size for found in exp.found) == 65536 - 256
    assert all(found.network.start >> 16 == 0xCB00 for found in exp.found)  # inside 203.0.0.0/16
    assert 0xCB007100 not in addresses(exp) and 0xCB0070FF in addresses(exp)  # 203.0.113.0 failed by -include


def test_redirect_applies_only_without_all() -> None:
    zone: dict[str, dict[str, list[str] | str]] = {
        P: {"TXT": ["v=spf1 ip4:192.0.2.1 redirect=_r.p.example"]},
        "_r.p.example": {"TXT": ["v=spf1 ip4:192.0.2.2 a -all"], "A": ["192.0.2.3"]},
    }
    _, exp = run(zone)
    assert listed(exp) == [
        ("192.0.2.1", "p.example > ip4:192.0.2.1"),
        ("192.0.2.2", "p.example > redirect=_r.p.example > ip4:192.0.2.2"),
        ("192.0.2.3", "p.example > redirect=_r.p.example > a"),  # `a` is the redirect target's own name
    ]
    zone[P] = {"TXT": ["v=spf1 ip4:192.0.2.1 ~all redirect=_r.p.example"]}
    dns, exp = run(zone)
    assert networks(exp) == ["192.0.2.1"]
    assert ("_r.p.example", "TXT") not in dns.asked


def test_a_and_mx_cidr_lengths_dual() -> None:
    zone: dict[str, dict[str, list[str] | str]] = {
        P: {"TXT": ["v=spf1 a:mail.p.example/28//64 mx/30 mx:other.example//127 -all"], "MX": ["mx1.p.example"]},
        "mail.p.example": {"A": ["192.0.2.77"], "AAAA": ["2001:db8:1::5"]},
        "mx1.p.example": {"A": ["198.51.100.9", "198.51.100.200"], "AAAA": ["2001:db8:2::9"]},
        "other.example": {"MX": ["mx.other.example"]},
        "mx.other.example": {"A": ["203.0.113.1"], "AAAA": ["2001:db8:3::1"]},
    }
    _, exp = run(zone)
    assert listed(exp) == [
        ("192.0.2.64/28", "p.example > a:mail.p.example/28//64"),
        ("198.51.100.8/30", "p.example > mx/30"),
        ("198.51.100.200/30", "p.example > mx/30"),
        ("203.0.113.1", "p.example > mx:other.example//127"),
        ("2001:db8:1::/64", "p.example > a:mail.p.example/28//64"),
        ("2001:db8:2::9", "p.example > mx/30"),
        ("2001:db8:3::/127", "p.example > mx:other.example//127"),
    ]


def test_families_are_walked_apart() -> None:
    """A host with only A records is a void lookup for IPv6: three of them end IPv6 before its ip6."""
    zone: dict[str, dict[str, list[str] | str]] = {
        P: {"TXT": ["v=spf1 a:h1.p.example a:h2.p.example a:h3.p.example ip6:2001:db8::/32 ip4:192.0.2.0/24 -all"]},
        "h1.p.example": {"A": ["198.51.100.1"]},
        "h2.p.example": {"A": ["198.51.100.2"]},
        "h3.p.example": {"A": ["198.51.100.3"]},
    }
    _, exp = run(zone)
    assert networks(exp) == ["192.0.2.0/24", "198.51.100.1", "198.51.100.2", "198.51.100.3"]
    assert whys(exp) == [
        "p.example > a:h3.p.example: a void lookup past the 2 allowed for IPv6 (a name without AAAA records, "
        "or a name that does not exist): receivers return permerror for what reaches it"
    ]


def test_the_eleventh_lookup_is_an_error_point() -> None:
    terms = " ".join(f"a:h{i}.p.example" for i in range(1, 12))
    zone: dict[str, dict[str, list[str] | str]] = {P: {"TXT": [f"v=spf1 ip4:192.0.2.1 {terms} ip4:192.0.2.2 -all"]}}
    for i in range(1, 12):
        zone[f"h{i}.p.example"] = {"A": [f"198.51.100.{i}"], "AAAA": [f"2001:db8::{i}"]}
    dns, exp = run(zone)
    assert networks(exp)[:2] == ["192.0.2.1", "198.51.100.1"]
    assert len(exp.found) == 1 + 10 + 10 and "198.51.100.11" not in networks(exp)
    assert "192.0.2.2" not in networks(exp)  # after the limit: receivers permerror
    assert whys(exp) == [
        "p.example > a:h11.p.example: the 10-lookup limit is passed here:"
        " receivers return permerror for what reaches it"
    ]
    assert ("h11.p.example", "A") not in dns.asked
    assert exp.lookups == 10


def test_the_limit_counts_per_address() -> None:
    """An address an include decided early is not charged for the include's later terms."""
    inner = " ".join(f"a:h{i}.p.example" for i in range(1, 10))
    zone: dict[str, dict[str, list[str] | str]] = {
        P: {"TXT": ["v=spf1 include:_i.p.example a:late.p.example -all"]},
        "_i.p.example": {"TXT": [f"v=spf1 -ip4:192.0.2.0/24 {inner} -all"]},
        "late.p.example": {"A": ["192.0.2.9", "198.51.100.99"]},
    }
    for i in range(1, 10):
        zone[f"h{i}.p.example"] = {"A": [f"203.0.113.{i}"]}
    _, exp = run(zone)
    # 192.0.2.9 used 1 lookup (include) before a:late (its 2nd); 198.51.100.99 used 1 + 9 and a:late is its 11th
    assert "192.0.2.9" in networks(exp) and "198.51.100.99" not in networks(exp)


def test_the_third_void_lookup_is_an_error_point() -> None:
    zone: dict[str, dict[str, list[str] | str]] = {
        P: {"TXT": ["v=spf1 a:gone1.p.example mx:gone2.p.example ip4:192.0.2.1 a:gone3.p.example ip4:192.0.2.2"]},
        "gone2.p.example": {"A": ["192.0.2.200"]},  # exists, but no MX: void too
    }
    _, exp = run(zone)
    assert networks(exp) == ["192.0.2.1"]
    assert exp.void_lookups == 2
    assert "a:gone3.p.example: a void lookup past the 2 allowed" in whys(exp)[0]


def test_mx_with_eleven_hosts_is_a_permerror_there() -> None:
    hosts = [f"mx{i}.p.example" for i in range(11)]
    zone: dict[str, dict[str, list[str] | str]] = {
        P: {"TXT": ["v=spf1 ip4:192.0.2.1 mx ip4:192.0.2.2 -all"], "MX": hosts},
    }
    for i, host in enumerate(hosts):
        zone[host] = {"A": [f"198.51.100.{i}"]}
    _, exp = run(zone)
    assert networks(exp) == ["192.0.2.1"]
    assert whys(exp)[0] == "p.example > mx: p.example has 11 MX records, more than 10: receivers return permerror"


def test_include_and_redirect_loops() -> None:
    zone: dict[str, dict[str, list[str] | str]] = {
        P: {"TXT": ["v=spf1 ip4:192.0.2.1 include:a.p.example ip4:192.0.2.3 -all"]},
        "a.p.example": {"TXT": ["v=spf1 ip4:192.0.2.2 include:p.example -all"]},
    }
    _, exp = run(zone)
    assert networks(exp) == ["192.0.2.1", "192.0.2.2"]
    assert whys(exp)[0] == (
        "p.example > include:a.p.example > include:p.example: include loop: p.example > a.p.example > p.example"
    )
    zone[P] = {"TXT": ["v=spf1 ip4:192.0.2.1 redirect=r.p.example"]}
    zone["r.p.example"] = {"TXT": ["v=spf1 ip4:192.0.2.5 redirect=p.example"]}
    _, exp = run(zone)
    assert networks(exp) == ["192.0.2.1", "192.0.2.5"]
    assert "redirect loop: p.example > r.p.example > p.example" in whys(exp)[0]


def test_macros_exists_and_ptr_by_qualifier() -> None:
    for term in ("a:%{i}.p.example", "exists:%{i}._spf.p.example", "ptr", "+ptr:p.example"):
        dns = FakeDns({P: {"TXT": [f"v=spf1 {term} ip4:192.0.2.0/24 -all"]}})
        exp = expand(P, dns)
        assert networks(exp) == ["192.0.2.0/24"], term  # what `+` would match passes anyway
        assert "cannot be enumerated" in whys(exp)[0]
        assert not any(name.startswith("%") for name, _ in dns.asked)
    for term in ("-exists:%{i}._spf.p.example", "~ptr", "?a:%{l}.p.example", "include:%{d}.spf.example"):
        exp = expand(P, FakeDns({P: {"TXT": [f"v=spf1 ip4:192.0.2.1 {term} ip4:192.0.2.0/24 -all"]}}))
        assert networks(exp) == ["192.0.2.1"], term  # it may decide what follows: nothing after it is listed
        assert "cannot be enumerated: what reaches it is not listed" in whys(exp)[0]
    # a `+exists` under a `-include` would fail what it matches: not passed over
    exp = expand(
        P,
        FakeDns(
            {
                P: {"TXT": ["v=spf1 -include:_x.p.example ip4:192.0.2.0/24"]},
                "_x.p.example": {"TXT": ["v=spf1 exists:%{i}.x.p.example"]},
            }
        ),
    )
    assert exp.found == ()


def test_plus_all_is_refused_question_all_is_noted() -> None:
    exp = expand(P, FakeDns({P: {"TXT": ["v=spf1 ip4:192.0.2.1 +all"]}}))
    assert (exp.outcome, exp.found) == ("refused", ())
    assert exp.why == "the record of p.example passes every address (`+all` in p.example > +all)"
    exp = expand(P, FakeDns({P: {"TXT": ["v=spf1 include:x.example -all"]}, "x.example": {"TXT": ["v=spf1 all"]}}))
    assert exp.outcome == "refused" and "(`all` in p.example > include:x.example > all)" in exp.why
    # ... but `all` in a `-include` fails everything there: nothing passes, nothing refused
    exp = expand(
        P, FakeDns({P: {"TXT": ["v=spf1 -include:x.example ip4:192.0.2.1"]}, "x.example": {"TXT": ["v=spf1 all"]}})
    )
    assert (exp.outcome, exp.found) == ("ok", ())
    # the addresses +all would reach are none: ip4:0.0.0.0/0 and ip6:::/0 decided them all
    exp = expand(P, FakeDns({P: {"TXT": ["v=spf1 -ip4:0.0.0.0/0 -ip6:::/0 +all"]}}))
    assert exp.outcome == "ok"
    exp = expand(P, FakeDns({P: {"TXT": ["v=spf1 ip4:192.0.2.1 ?all"]}}))
    assert exp.outcome == "ok" and networks(exp) == ["192.0.2.1"]
    assert whys(exp) == ["p.example > ?all: neutral for every other address (?all)"]


def test_record_problems_of_the_partner_and_of_an_include() -> None:
    cases = {
        "vanished": [{}, {P: {"A": ["192.0.2.1"]}}, {P: {"TXT": ["google-site-verification=x"]}}],
        "permerror": [{P: {"TXT": ["v=spf1 -all", "v=spf1 ip4:192.0.2.1"]}}, {P: {"TXT": ["v=spf1 ip4:192.0.2.1/40"]}}],
    }
    for outcome, zones in cases.items():
        for zone in zones:
            exp = expand(P, FakeDns(zone))
            assert (exp.outcome, exp.found) == (outcome, ()), zone
    assert expand(P, FakeDns({})).why == "p.example does not exist (NXDOMAIN)"
    exp = expand(P, FakeDns({P: {"TXT": ["v=spf1 ip4:192.0.2.1/40"]}}))
    assert exp.why == (
        "the SPF record of p.example has a syntax error at column 8 ('ip4:192.0.2.1/40'): "
        "bad CIDR length /40: write 0 to 32, without leading zeros"
    )
    zone: Z = {
        P: {"TXT": ["v=spf1 ip4:192.0.2.1 include:bad.example ip4:192.0.2.2 include:two.example include:none.example"]},
        "bad.example": {"TXT": ["v=spf1 a:nodot"]},
        "two.example": {"TXT": ["v=spf1 a", "v=spf1 mx"]},
    }
    exp = expand(P, FakeDns(zone))
    assert exp.outcome == "ok" and networks(exp) == ["192.0.2.1"]
    assert "the record of bad.example has a syntax error at column 8 ('a:nodot')" in whys(exp)[0]


def test_servfail_anywhere_is_temperror_and_the_budget() -> None:
    zone: Z = {
        P: {"TXT": ["v=spf1 ip4:192.0.2.1 include:a.example -all"]},
        "a.example": {"TXT": ["v=spf1 mx:m.example -all"]},
        "m.example": {"MX": ["mx.m.example"]},
        "mx.m.example": {"A": ["192.0.2.9"], "AAAA": "SERVFAIL"},
    }
    exp = expand(P, FakeDns(zone))
    assert (exp.outcome, exp.found) == ("temperror", ())
    assert exp.why == (
        "DNS lookup of mx.m.example AAAA failed: SERVFAIL from the fake"
        " (at p.example > include:a.example > mx:m.example)"
    )
    assert expand(P, FakeDns({P: {"TXT": "SERVFAIL"}})).outcome == "temperror"
    zone["mx.m.example"] = {"A": ["192.0.2.9"]}
    assert expand(P, FakeDns(zone)).queries == 5  # TXT x2, MX, A, AAAA: each asked once
    exp = expand(P, FakeDns(zone), max_queries=3)
    assert (exp.outcome, exp.found, exp.queries) == ("budget", (), 3)
    assert exp.why == "the DNS query budget (3) ran out at mx.m.example A"


# --- the walk against check_host(), address by address --------------------------------------------

BASE = 0x0A000000  # 10.0.0.0: the small space is 10.0.0.0/27
SPACE = 32
NAMES = ["p.t", "r1.t", "r2.t", "r3.t"]
HOSTS = ["h1.t", "h2.t", "h3.t"]


@dataclass(frozen=True)
class T:
    qualifier: str
    kind: str  # ip4 a mx include all
    arg: str | None
    length: int = 32


def _text(terms: list[T], redirect: str | None) -> str:
    out = ["v=spf1"]
    for term in terms:
        q = "" if term.qualifier == "+" else term.qualifier
        if term.kind == "all":
            out.append(f"{q}all")
        elif term.kind == "ip4":
            out.append(f"{q}ip4:{term.arg}/{term.length}")
        elif term.kind == "include":
            out.append(f"{q}include:{term.arg}")
        else:
            arg = f":{term.arg}" if term.arg else ""
            out.append(f"{q}{term.kind}{arg}/{term.length}")
    if redirect:
        out.append(f"redirect={redirect}")
    return " ".join(out)


def _net(addr: int, length: int) -> str:
    return str(ipaddress.ip_network((addr, length), strict=False))


_quals = st.sampled_from("+-~?")
_addr = st.integers(0, SPACE - 1).map(lambda i: BASE + i)
_len = st.integers(27, 32)
_term = st.one_of(
    st.builds(lambda q, a, n: T(q, "ip4", _net(a, n).split("/")[0], n), _quals, _addr, _len),
    st.builds(lambda q, h, n: T(q, "a", h, n), _quals, st.sampled_from([None, *HOSTS]), _len),
    st.builds(lambda q, h, n: T(q, "mx", h, n), _quals, st.sampled_from([None, *NAMES]), _len),
    st.builds(lambda q, h: T(q, "include", h), _quals, st.sampled_from(NAMES)),
    st.builds(lambda q: T(q, "all", None), st.sampled_from("-~?")),
)
_record = st.tuples(st.lists(_term, max_size=6), st.sampled_from([None, None, *NAMES]))
_world = st.fixed_dictionaries(
    {
        "records": st.fixed_dictionaries(
            {n: (_record if n == "p.t" else st.one_of(st.none(), _record)) for n in NAMES}
        ),
        "a": st.fixed_dictionaries({h: st.lists(_addr, max_size=2, unique=True) for h in HOSTS + NAMES}),
        "mx": st.fixed_dictionaries({n: st.lists(st.sampled_from(HOSTS), max_size=3) for n in NAMES}),
    }
)


class _Perm(Exception):
    pass


class _Sim:
    """check_host() for one IPv4 address, straight from RFC 7208 section 4-6 (no sets, no classes)."""

    def __init__(self, world: dict, ip: int) -> None:  # type: ignore[type-arg]
        self.world, self.ip, self.lookups, self.voids = world, ip, 0, 0

    def dns_term(self) -> None:
        self.lookups += 1
        if self.lookups > 10:
            raise _Perm

    def void(self) -> None:
        self.voids += 1
        if self.voids > 2:
            raise _Perm

    def match(self, addrs: list[int], length: int) -> bool:
        mask = (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF
        return any(a & mask == self.ip & mask for a in addrs)

    def check(self, domain: str) -> str:
        rec = self.world["records"].get(domain)
        if rec is None:
            return "none"
        terms, redirect = rec
        result = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
        for term in terms:
            if term.kind in ("a", "mx", "include"):
                self.dns_term()
            if term.kind == "all":
                return result[term.qualifier]
            if term.kind == "ip4":
                matched = self.match([int(ipaddress.ip_address(term.arg))], term.length)
            elif term.kind == "a":
                addrs = self.world["a"].get(term.arg or domain, [])
                if not addrs:
                    self.void()
                matched = self.match(addrs, term.length)
            elif term.kind == "mx":
                hosts = self.world["mx"].get(term.arg or domain, [])
                if not hosts:
                    self.void()
                if len(hosts) > 10:
                    raise _Perm
                addrs = []
                for host in hosts:
                    found = self.world["a"].get(host, [])
                    if not found:
                        self.void()
                    addrs += found
                matched = self.match(addrs, term.length)
            else:
                if self.world["records"].get(term.arg) is None:
                    self.void()
                sub = self.check(term.arg)
                if sub == "none":
                    raise _Perm
                matched = sub == "pass"
            if matched:
                return result[term.qualifier]
        if redirect and not any(t.kind == "all" for t in terms):
            self.dns_term()
            if self.world["records"].get(redirect) is None:
                self.void()
                raise _Perm
            return self.check(redirect)
        return "neutral"


def _zone(world: dict) -> dict[str, dict[str, list[str]]]:  # type: ignore[type-arg]
    zone: dict[str, dict[str, list[str]]] = {}
    for name, rec in world["records"].items():
        if rec is not None:
            zone.setdefault(name, {})["TXT"] = [_text(*rec)]
    for name, addrs in world["a"].items():
        if addrs:
            zone.setdefault(name, {})["A"] = [str(ipaddress.IPv4Address(a)) for a in addrs]
    for name, hosts in world["mx"].items():
        if hosts:
            zone.setdefault(name, {})["MX"] = hosts
    return zone


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_world)
def test_found_is_exactly_what_check_host_passes(world: dict) -> None:  # type: ignore[type-arg]
    exp = expand("p.t", FakeDns(_zone(world)))
    assert exp.outcome in ("ok", "refused"), exp.why
    passes = set()
    for i in range(SPACE):
        sim = _Sim(world, BASE + i)
        try:
            verdict = sim.check("p.t")
        except _Perm:
            verdict = "permerror"
        if verdict == "pass":
            passes.add(BASE + i)
    if exp.outcome == "refused":
        assert passes  # +all reached by some address: it passes
        return
    assert all(f.network.family == 4 for f in exp.found)
    if any("expansion's bound" in item.why for item in exp.unlisted):
        assert addresses(exp) <= passes  # the walk's own bound lists fewer, never more
    else:
        assert addresses(exp) == passes, (_zone(world), exp)
