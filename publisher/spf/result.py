"""What expanding a partner's SPF record gives, and how it asks DNS. Pure types.

The expansion (`expand.py`) is exact: every address in `Expansion.found` gets `pass`
from check_host() for the partner's domain (RFC 7208 section 4), and every other
address does not, except those `unlisted` names (mechanisms that cannot be
enumerated, like `exists` or macros, and what comes after a limit or a non-pass
unenumerable term). It never guesses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from publisher.addresses import Network
from publisher.partners import chain_text

#: ok: the record was read and walked (possibly cut by a limit, which `unlisted` says);
#: vanished: the partner's domain has no SPF record (NXDOMAIN, no TXT, no `v=spf1`);
#: permerror: the partner's own record is unusable (syntax, two `v=spf1` records);
#: refused: the record passes every address (`+all` reached by some address): never listed;
#: temperror: a DNS lookup failed (SERVFAIL, REFUSED, timeout): nothing may be concluded;
#: budget: the run's DNS query budget ran out before the walk ended: nothing concluded.
Outcome = Literal["ok", "vanished", "permerror", "refused", "temperror", "budget"]

#: ok: records (maybe none: NOERROR without them is "nodata"); error: SERVFAIL, REFUSED, timeout, ...
AnswerStatus = Literal["ok", "nxdomain", "nodata", "error"]


@dataclass(frozen=True, slots=True)
class Answer:
    """One DNS answer as the expansion needs it."""

    status: AnswerStatus
    #: TXT: one text per record, its character-strings joined without spaces (RFC 7208 3.3);
    #: A / AAAA: addresses as text; MX: the exchange host names (lower case, no trailing dot).
    records: tuple[str, ...] = ()
    detail: str = ""  # error: what happened, for messages ("timeout after 5 s from 127.0.0.1:53")


class Resolver(Protocol):
    """DNS as the expansion asks it. `rdtype` is "TXT", "A", "AAAA" or "MX"."""

    def query(self, name: str, rdtype: str) -> Answer: ...


@dataclass(frozen=True, slots=True)
class Found:
    """A network the record passes, and the chain of terms that passes it."""

    network: Network
    #: the partner's domain, then each term followed down to the matching mechanism, as written
    #: in its record (domain-specs lower-cased): ("partner.example", "include:_spf.partner.example",
    #: "ip4:192.0.2.0/24"). A network cut out of a wider mechanism by an earlier term keeps the
    #: wider mechanism's chain.
    chain: tuple[str, ...]

    @property
    def via(self) -> str:
        return chain_text(self.chain)


@dataclass(frozen=True, slots=True)
class Unlisted:
    """Something the record may pass that is not in `found`, and why."""

    chain: tuple[str, ...]  # down to the term concerned
    why: str  # "exists cannot be enumerated", "the 10-lookup limit is passed here", ...

    @property
    def via(self) -> str:
        return chain_text(self.chain)


@dataclass(frozen=True, slots=True)
class Expansion:
    domain: str
    outcome: Outcome
    why: str = ""  # every outcome but ok: what went wrong, naming the chain and the name
    record: str = ""  # the partner's own SPF record text ("" when none was read)
    found: tuple[Found, ...] = ()  # disjoint, IPv4 then IPv6, each by address
    unlisted: tuple[Unlisted, ...] = ()
    lookups: int = 0  # DNS-querying terms counted (RFC 7208 4.6.4), the larger of the two families'
    void_lookups: int = 0
    queries: int = 0  # DNS queries sent (the budget's unit; answers are reused within one expansion)
