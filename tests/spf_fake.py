"""A dict-backed `Resolver` for the SPF expansion's unit tests (no network).

`FakeDns({"p.example": {"TXT": ["v=spf1 ..."], "A": ["192.0.2.1"]}})`: a name absent is
NXDOMAIN, a name present without the type is NODATA, the value "SERVFAIL" for a type is
an error answer. `asked` lists every query in order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from publisher.addresses import Network
from publisher.spf.result import Answer, Expansion

Zone = Mapping[str, Mapping[str, Sequence[str] | str]]


class FakeDns:
    def __init__(self, zone: Zone) -> None:
        self.zone = {name.lower(): dict(types) for name, types in zone.items()}
        self.asked: list[tuple[str, str]] = []

    def query(self, name: str, rdtype: str) -> Answer:
        self.asked.append((name, rdtype))
        types = self.zone.get(name.lower())
        if types is None:
            return Answer("nxdomain")
        value = types.get(rdtype)
        if value == "SERVFAIL":
            return Answer("error", detail="SERVFAIL from the fake")
        if not value:
            return Answer("nodata")
        assert not isinstance(value, str)
        return Answer("ok", tuple(value))


def listed(expansion: Expansion) -> list[tuple[str, str]]:
    """(network, via) of every Found, in order."""
    return [(str(found.network), found.via) for found in expansion.found]


def networks(expansion: Expansion) -> list[str]:
    return [str(found.network) for found in expansion.found]


def addresses(expansion: Expansion, family: int = 4) -> set[int]:
    """Every address found of one family (for small sets only)."""
    out: set[int] = set()
    for found in expansion.found:
        net: Network = found.network
        if net.family == family:
            out.update(range(net.start, net.end + 1))
    return out


def whys(expansion: Expansion) -> list[str]:
    return [f"{item.via}: {item.why}" for item in expansion.unlisted]
