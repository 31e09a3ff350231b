"""SPF data from strangers' DNS: what the worst records cost the expansion.

A partner's record and everything it includes is written by someone else. Every case
here must end with an `Expansion` (never an exception), with the DNS queries under the
expansion's fixed bound (`MAX_QUERIES`), and with output in proportion to the record's
size. No timings: the bounds are counts.
"""

from __future__ import annotations

import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from authdns import AuthDns
from conftest import require_tool
from publisher.spf.expand import MAX_QUERIES, MAX_WALK_TERMS, expand
from publisher.spf.resolver import DnsResolver
from spf_fake import FakeDns, whys

P = "p.example"
Z = dict[str, dict[str, list[str] | str]]


def test_the_query_bound() -> None:
    assert MAX_QUERIES == 1 + 2 * MAX_WALK_TERMS * 11 == 881


def test_records_too_large_to_read() -> None:
    big = "v=spf1 " + " ".join(f"ip4:198.51.{i // 250}.{i % 250}" for i in range(300))  # ~5.3 KB
    exp = expand(P, FakeDns({P: {"TXT": [big]}}))
    assert exp.outcome == "permerror" and "TXT records hold" in exp.why and "more than 4096: not read" in exp.why
    many = [f"token-{i}" for i in range(40)] + ["v=spf1 ip4:192.0.2.1 -all"]
    exp = expand(P, FakeDns({P: {"TXT": many}}))
    assert (exp.outcome, exp.why) == ("permerror", "p.example has 41 TXT records, more than 32: not read")
    zone: Z = {P: {"TXT": ["v=spf1 ip4:192.0.2.1 include:big.example -all"]}, "big.example": {"TXT": [big]}}
    exp = expand(P, FakeDns(zone))
    assert exp.outcome == "ok" and [str(f.network) for f in exp.found] == ["192.0.2.1"]
    assert "more than 4096: not read: receivers return permerror" in whys(exp)[0]


def test_a_deep_include_chain_stops_at_the_limit() -> None:
    zone: Z = {P: {"TXT": ["v=spf1 include:d1.example -all"]}}
    for i in range(1, 60):
        zone[f"d{i}.example"] = {"TXT": [f"v=spf1 ip4:10.{i}.0.0/16 include:d{i + 1}.example -all"]}
    dns = FakeDns(zone)
    exp = expand(P, dns)
    assert exp.outcome == "ok" and len(exp.found) == 10  # d1..d10's ip4; d11 is the 11th lookup
    assert "the 10-lookup limit is passed here" in whys(exp)[0]
    assert exp.queries <= 11


def test_include_fan_out_is_bounded() -> None:
    """Each record includes 10 more (a million names four levels down): the walk visits at most its bound."""
    zone: Z = {}

    def records(name: str, depth: int) -> None:
        if depth == 4:
            zone[name] = {"TXT": ["v=spf1 -all"]}
            return
        kids = [f"k{i}.{name}" for i in range(10)]
        zone[name] = {"TXT": ["v=spf1 " + " ".join(f"include:{kid}" for kid in kids) + f" ip4:10.{depth}.0.0/16"]}
        for kid in kids:
            records(kid, depth + 1)

    records(P, 0)
    assert len(zone) == 11111
    dns = FakeDns(zone)
    exp = expand(P, dns)
    assert exp.outcome == "ok" and exp.queries == len(dns.asked) <= 11
    # every address walks into k0's tree and spends its 10 lookups there: the 11th is an error point
    assert exp.found == () and exp.lookups == 10


def test_fan_out_of_early_decided_addresses_meets_the_walk_bound() -> None:
    """Includes that each decide a slice of the addresses early let the others go on: the walk
    would visit 2**10 - 1 terms; it stops at MAX_WALK_TERMS per family and lists fewer."""
    zone: Z = {}
    made = [0]

    def build(name: str, left: int) -> None:
        made[0] += 1
        terms = [f"-ip4:{10 + made[0] // 256}.{made[0] % 256}.0.0/16"]  # a slice decided here
        for k in range(left):
            kid = f"c{k}.{name}"
            terms.append(f"include:{kid}")
            build(kid, left - k - 1)
        zone[name] = {"TXT": ["v=spf1 " + " ".join(terms)]}

    build(P, 10)
    assert len(zone) == 1024
    dns = FakeDns(zone)
    exp = expand(P, dns)
    assert exp.outcome == "ok" and exp.queries <= MAX_QUERIES
    assert any("bound of 40 DNS-querying terms" in why for why in whys(exp))


def test_thousands_of_terms_and_huge_cidr_sets() -> None:
    """10 includes of 240 `ip4:x/32` each, failed by `-include`, before `ip4:0.0.0.0/1`: 2,400 holes,
    each costing at most 62 CIDR blocks of output; the interval sets bisect, so this stays near-linear."""
    zone: Z = {}
    parent = []
    for r in range(10):
        terms = " ".join(f"ip4:{1 + (r * 240 + i) % 127}.{(r * 240 + i) // 127}.{r}.{i % 7}" for i in range(240))
        zone[f"h{r}.example"] = {"TXT": ["v=spf1 " + terms]}  # passes them: a `-include` fails them
        parent.append(f"-include:h{r}.example")
    zone[P] = {"TXT": ["v=spf1 " + " ".join(parent) + " ip4:0.0.0.0/1 -all"]}
    tracemalloc.start()
    exp = expand(P, FakeDns(zone))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert exp.outcome == "ok"
    holes = 2400
    assert holes * 10 < len(exp.found) <= (holes + 1) * 62
    assert sum(f.network.size for f in exp.found) == 2**31 - holes
    assert peak < 64 * 2**20
    zone[P] = {"TXT": ["v=spf1 " + " ".join(["a"] * 2000)], "A": ["192.0.2.1"], "AAAA": ["2001:db8::1"]}
    exp = expand(P, FakeDns(zone))  # 2,000 terms in 4,006 bytes: the 11th is the limit
    assert (
        exp.outcome == "ok" and exp.queries == 3 and [str(f.network) for f in exp.found] == ["192.0.2.1", "2001:db8::1"]
    )
    assert whys(exp) == [
        "p.example > a: the 10-lookup limit is passed here: receivers return permerror for what reaches it"
    ]


def test_many_mx_hosts_with_many_addresses() -> None:
    zone: Z = {P: {"TXT": ["v=spf1 " + " ".join(f"mx:m{i}.example/24" for i in range(12)) + " -all"]}}
    for i in range(12):
        hosts = [f"h{j}.m{i}.example" for j in range(10)]
        zone[f"m{i}.example"] = {"MX": hosts}
        for j, host in enumerate(hosts):
            zone[host] = {
                "A": [f"{20 + i}.{j}.{k}.1" for k in range(100)],
                "AAAA": [f"2001:db8:{i}:{j}::{k}" for k in range(5)],
            }
    exp = expand(P, FakeDns(zone))
    assert exp.outcome == "ok"
    assert exp.queries == 1 + 10 * (1 + 10 + 10)  # TXT; per mx: MX, 10 A, 10 AAAA; the 11th mx not asked
    assert sum(f.network.size for f in exp.found if f.network.family == 4) == 10 * 10 * 100 * 256
    assert sum(f.network.size for f in exp.found if f.network.family == 6) == 10 * 10 * 5


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=80), max_size=4), st.text(max_size=200))
def test_no_input_raises(texts: list[str], record: str) -> None:
    zone: Z = {P: {"TXT": [record, *texts]}, "x.example": {"TXT": texts}}
    for txt in (record, "v=spf1 " + record, "v=spf1 include:x.example " + record):
        zone[P] = {"TXT": [txt]}
        exp = expand(P, FakeDns(zone))
        assert exp.outcome in ("ok", "vanished", "permerror", "refused")
        assert exp.queries <= MAX_QUERIES


def test_large_answers_from_a_real_server(auth_dns: object) -> None:
    """Over real DNS (TCP after truncation): a 5 KB record and 40 TXT records are read, then refused."""
    require_tool("nsd")
    big = " ".join(f'"{chunk}"' for chunk in ["v=spf1 " + "ip4:192.0.2.1 " * 17] + ["ip4:192.0.2.2 " * 17] * 20)
    many = "\n".join(f'many TXT "filler-{i}"' for i in range(40))
    server: AuthDns = auth_dns({"example.test": f'big TXT {big}\n{many}\nmany TXT "v=spf1 -all"'})  # type: ignore[operator]
    resolver = DnsResolver([(server.host, server.port)], timeout=2.0)
    exp = expand("big.example.test", resolver)
    assert exp.outcome == "permerror" and "more than 4096: not read" in exp.why
    exp = expand("many.example.test", resolver)
    assert (exp.outcome, exp.why) == ("permerror", "many.example.test has 41 TXT records, more than 32: not read")
