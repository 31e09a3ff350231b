"""The NSD fixture the SPF tests resolve against: it serves what it is given, and changes."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import dns.message
import dns.query
import dns.rcode
import pytest

from authdns import AuthDns, BlackHole


def _txt(server: AuthDns, name: str) -> tuple[int, list[str]]:
    reply = dns.query.udp(dns.message.make_query(name, "TXT"), server.host, port=server.port, timeout=2)
    return reply.rcode(), [b"".join(r.strings).decode() for a in reply.answer for r in a]  # type: ignore[attr-defined]


def test_serves_the_records_and_their_change(auth_dns: Callable[[Mapping[str, str]], AuthDns]) -> None:
    server = auth_dns({"partner.example": '@ TXT "v=spf1 ip4:1.2.3.0/24 " "-all"'})
    assert _txt(server, "partner.example") == (dns.rcode.NOERROR, ["v=spf1 ip4:1.2.3.0/24 -all"])
    assert _txt(server, "gone.partner.example")[0] == dns.rcode.NXDOMAIN
    server.set_zones({"partner.example": '@ TXT "v=spf1 -all"'})
    assert _txt(server, "partner.example") == (dns.rcode.NOERROR, ["v=spf1 -all"])


def test_black_hole_never_answers(black_hole: BlackHole) -> None:
    with pytest.raises(dns.exception.Timeout):
        dns.query.udp(
            dns.message.make_query("partner.example", "TXT"), black_hole.host, port=black_hole.port, timeout=0.3
        )
