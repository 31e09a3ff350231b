"""DNS for the SPF expansion over dnspython: the one module of `publisher.spf` that touches the network.

`DnsResolver` implements `result.Resolver`: NXDOMAIN is `nxdomain`; NOERROR without
records of the type (a CNAME to nothing included) is `nodata`; SERVFAIL, REFUSED, a
timeout or anything else is `error` with a detail naming the server, and the expansion
then concludes nothing (a failed lookup never removes anything). TXT character-strings
are joined without spaces (RFC 7208 3.3). Answers are kept per instance (one refresh run
asks each name once) and `queries` counts what was sent, for the run's budget. The bounds
on what one name may hold (32 TXT records, 4 KiB) are the expansion's, so they hold for
any resolver.
"""

from __future__ import annotations

from typing import Any

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from publisher.spf.result import Answer

#: The EDNS payload asked for (the DNS flag day 2020 size); larger answers come over TCP.
EDNS_PAYLOAD = 1232


class DnsResolver:
    """A `Resolver` over dnspython: `nameservers` as (host, port) pairs, else /etc/resolv.conf;
    each is given `timeout` seconds a query, in turn."""

    def __init__(self, nameservers: list[tuple[str, int]] | None = None, timeout: float = 5.0) -> None:
        self._resolver = dns.resolver.Resolver(configure=nameservers is None)
        if nameservers is not None:
            self._resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port) for host, port in nameservers]
        # `timeout` for each server, in turn: a first resolver that is down leaves time for the next
        self._resolver.timeout = timeout
        self._resolver.lifetime = timeout * max(1, len(self._resolver.nameservers))
        self._resolver.cache = None
        self._resolver.use_edns(0, 0, EDNS_PAYLOAD)
        self.timeout = timeout
        self.servers = ", ".join(_server_text(server) for server in self._resolver.nameservers) or "no server"
        self.queries = 0
        self._answers: dict[tuple[str, str], Answer] = {}

    def query(self, name: str, rdtype: str) -> Answer:
        key = (name.lower().rstrip("."), rdtype)
        answer = self._answers.get(key)
        if answer is None:
            self.queries += 1
            answer = self._ask(*key)
            self._answers[key] = answer
        return answer

    def _ask(self, name: str, rdtype: str) -> Answer:
        try:
            qname = dns.name.from_text(name)
        except dns.exception.DNSException:
            return Answer("nxdomain", detail=f"{name} is not a DNS name")  # no server can hold it
        try:
            reply = self._resolver.resolve(qname, rdtype, raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN:
            return Answer("nxdomain")
        except dns.resolver.LifetimeTimeout:
            return Answer("error", detail=f"timeout after {self._resolver.lifetime:g} s from {self.servers}")
        except dns.resolver.NoNameservers as exc:
            return Answer("error", detail=f"no good answer from {self.servers} ({_short(exc)})")
        except dns.exception.DNSException as exc:
            return Answer("error", detail=f"{_short(exc)} (from {self.servers})")
        if reply.rrset is None:
            return Answer("nodata")
        return Answer("ok", tuple(_text(rdata, rdtype) for rdata in reply.rrset))


def _text(rdata: Any, rdtype: str) -> str:  # dnspython's rdata classes are not annotated per type
    if rdtype == "TXT":
        return b"".join(rdata.strings).decode("utf-8", "replace")
    if rdtype == "MX":
        return str(rdata.exchange.to_text(omit_final_dot=True)).lower()
    return str(rdata.address)


def _server_text(server: object) -> str:
    """`host:port` (`[v6]:port`) of a dnspython nameserver, as messages name it."""
    host = str(getattr(server, "address", server))
    port = getattr(server, "port", 53)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
