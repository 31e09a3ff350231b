"""Differential: our server and a real rbldnsd (fed our `.rbldnsd` export) answer the same.

Thousands of names (listed, unlisted, range edges, IPv6, domains, wildcards) are asked of
both, over UDP. The A records must be equal; TXT must be what `publisher lookup` says,
for us exactly and for rbldnsd after its documented transformations
(render.KNOWN_RBLDNSD_DIFFERENCES); NXDOMAIN must agree except on empty non-terminals,
where rbldnsd says NXDOMAIN and we say NOERROR with no data (the documented difference).
Zones whose listings have no text (test_empty_txt.py) are among them: both answer the A
and no TXT record.
The server runs in process here (the subprocess path is covered by test_server.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from publisher.addresses import V4_MAPPED_END, V4_MAPPED_START, partial_v6, v4_name
from publisher.compile.lookup import Query, zone_answer
from publisher.compile.zone import CompiledZone
from publisher.server import Server, ZoneSet
from test_empty_txt import textless_cases
from test_interop import ask, expected, hand_built, qname, rbldnsd


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[CompiledZone, list[Query]]]:
    return hand_built() + textless_cases(tmp_path_factory.mktemp("textless"))


@pytest.fixture(scope="module")
def ours(cases: list[tuple[CompiledZone, list[Query]]]) -> Iterator[tuple[str, int]]:
    server = Server(None, ["127.0.0.1:0"], zoneset=ZoneSet.build(z for z, _ in cases), send_notify=False)
    (endpoint,) = server.start()
    try:
        yield endpoint.host, endpoint.port
    finally:
        server.stop()


def _codes(reply: DNSRecord) -> list[int]:
    return sorted(int.from_bytes(bytes(rr.rdata.data), "big") for rr in reply.rr if rr.rtype == QTYPE.A)


def _txts(reply: DNSRecord) -> list[bytes]:
    return sorted(b"".join(rr.rdata.data) for rr in reply.rr if rr.rtype == QTYPE.TXT)


def _is_ent(zone: CompiledZone, q: Query) -> bool:
    """Names that exist only because something is listed below them."""
    if q.family == 0:
        return zone.domain_is_ent(q.domain)
    if q.family == 4:  # 'd.c.b.a' with one-character labels is also a partial nibble name
        labels = v4_name(q.addr).split(".")
        block = partial_v6(labels)
        return block is not None and zone.v6_any_listed(*block)
    return False


def test_our_answers_equal_rbldnsd(cases: list[tuple[CompiledZone, list[Query]]], ours: tuple[str, int]) -> None:
    with rbldnsd([zone for zone, _ in cases]) as theirs:
        compared = 0
        for zone, queries in cases:
            names = {qname(zone, q): q for q in queries}
            our_a, our_txt = ask(ours, list(names), "A"), ask(ours, list(names), "TXT")
            rb_a, rb_txt = ask(theirs, list(names), "A"), ask(theirs, list(names), "TXT")
            problems = []
            for name, q in names.items():
                as_text = (
                    Query(4, q.addr - V4_MAPPED_START)
                    if q.family == 6 and V4_MAPPED_START <= q.addr <= V4_MAPPED_END
                    else q
                )
                pairs = zone_answer(zone, as_text)
                want_txt = sorted(t.encode("utf-8") for _, t in pairs if t)  # no text: no TXT record
                rb_codes, rb_txts = expected(zone, q)
                if _codes(our_a[name]) != _codes(rb_a[name]):
                    problems.append(f"{name} A: ours {_codes(our_a[name])} rbldnsd {_codes(rb_a[name])}")
                if _txts(our_txt[name]) != want_txt:
                    problems.append(f"{name} TXT: ours {_txts(our_txt[name])} lookup {want_txt}")
                if _txts(rb_txt[name]) != rb_txts:
                    problems.append(f"{name} TXT: rbldnsd {_txts(rb_txt[name])} documented {rb_txts}")
                ours_rc, rb_rc = our_a[name].header.rcode, rb_a[name].header.rcode
                if ours_rc != rb_rc and not (
                    ours_rc == RCODE.NOERROR and rb_rc == RCODE.NXDOMAIN and not pairs and _is_ent(zone, q)
                ):
                    problems.append(f"{name}: ours {RCODE[ours_rc]} rbldnsd {RCODE[rb_rc]}")
                if not pairs:  # negative answers carry the SOA
                    assert [QTYPE[rr.rtype] for rr in our_a[name].auth] == ["SOA"], name
                compared += 1
            assert not problems, f"{len(problems)} differences in {zone.name}:\n" + "\n".join(problems[:20])
        assert compared > 3000
