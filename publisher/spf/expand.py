"""Expanding a partner's SPF record into the networks it passes (RFC 7208 sections 4-6). Pure.

`expand(domain, resolver)` walks the record once per address family (IPv4 with A
lookups, IPv6 with AAAA; IPv4-mapped IPv6 addresses are left out, receivers check them
as IPv4) carrying the set of addresses still undecided. Each term's match set is
intersected with it: a `+` term passes its part (recorded with the chain of terms that
led there), other qualifiers decide it without passing. `include` matches exactly what
the included record passes (what it fails, softfails or leaves neutral continues in the
parent); `redirect` applies only when the record has no `all`; the rest of a record
without either is neutral.

The limits are kept per address, exactly: the undecided set is split by how many
DNS-querying terms (include, a, mx, ptr, exists, redirect) and void lookups each
address has used on its own path, so an address that an `include` decided early is not
charged for the terms it never reached. What reaches an 11th DNS-querying term or a 3rd
void lookup, an `mx` with more than 10 hosts, a loop (a name already on the chain), an
included or redirected name without one valid SPF record, is an error point: a receiver
returns permerror there, so none of it is listed, and `unlisted` says where.

Where the walk must approximate, it lists fewer addresses than a receiver passes, never
more:
- `exists`, `ptr` and macros (`%{...}`) are not enumerated. Under an effective `+`
  (the term's and every enclosing include's qualifier) an `exists`, `ptr` or `a` that
  cannot be enumerated is passed over (what it would match passes anyway); any other
  qualifier, and an `include`, `mx` or `redirect` with a macro (their own errors or
  limits could turn what follows into permerror), is an error point for listing.
- Such a passed-over term counts as a void lookup for every address (an upper bound).
- Void lookups count every query that comes back empty, the address lookups of an
  `mx` term's hosts included (as pyspf does; RFC 7208 4.6.4 counts per term).
The answers a walk needs are asked once per expansion (`Expansion.queries`);
`max_queries` bounds them (outcome `budget`), any failed answer makes the whole
expansion `temperror`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from publisher.addresses import (
    V4_BITS,
    V4_MAPPED_END,
    V4_MAPPED_START,
    V6_MAX,
    AddressError,
    parse_v4,
    parse_v6,
    range_networks,
)
from publisher.errors import SpfError
from publisher.partners import chain_text
from publisher.spf.ranges import Ranges
from publisher.spf.record import DNS_MECHANISMS, Record, SyntaxProblem, Term, is_spf, parse_record
from publisher.spf.result import Answer, Expansion, Found, Outcome, Resolver, Unlisted

MAX_LOOKUPS = 10  # RFC 7208 4.6.4
MAX_VOIDS = 2
MAX_MX = 10
#: DNS-querying terms one family's walk may visit. A receiver checks one address and stops at 10;
#: the walk follows every address at once, and addresses an include decides early go on with
#: lookups to spare, so without a bound a stranger's records could make it visit 2**10 - 1 terms.
MAX_WALK_TERMS = 40
#: What one expansion can cost at most: the partner's TXT, then per family each visited term's
#: query and up to 10 MX hosts' address lookups.
MAX_QUERIES = 1 + 2 * MAX_WALK_TERMS * (1 + MAX_MX)
MAX_TXT_RECORDS = 32  # bounds on what one name's TXT answer may hold before it is read at all
MAX_TXT_BYTES = 4096

Chain = tuple[str, ...]
Key = tuple[int, int]  # (DNS-querying terms, void lookups) an address has used on its path
Classes = dict[Key, Ranges]  # the undecided addresses, by what they have used
Piece = tuple[Key, Ranges, Chain]


class _Stop(SpfError):
    """Ends the whole expansion: temperror, budget or refused (caught in `expand`)."""

    def __init__(self, outcome: Outcome, why: str) -> None:
        super().__init__(why)
        self.outcome = outcome
        self.why = why


@dataclass(frozen=True, slots=True)
class _Txt:
    """A name's SPF record, or why there is none."""

    text: str | None
    why: str = ""
    void: bool = False  # NXDOMAIN or no TXT at all
    vanished: bool = False  # no record (vs. unreadable: too large, several v=spf1)


class _Dns:
    """The expansion's view of DNS: each (name, type) asked once, queries counted, budget kept."""

    def __init__(self, resolver: Resolver, max_queries: int | None) -> None:
        self.resolver = resolver
        self.max_queries = max_queries
        self.answers: dict[tuple[str, str], Answer] = {}
        self.queries = 0

    def ask(self, name: str, rdtype: str, chain: Chain) -> Answer:
        key = (name, rdtype)
        answer = self.answers.get(key)
        if answer is None:
            if self.max_queries is not None and self.queries >= self.max_queries:
                raise _Stop("budget", f"the DNS query budget ({self.max_queries}) ran out at {name} {rdtype}")
            self.queries += 1
            answer = self.resolver.query(name, rdtype)
            if answer.status == "error":
                detail = f": {answer.detail}" if answer.detail else ""
                raise _Stop("temperror", f"DNS lookup of {name} {rdtype} failed{detail} (at {chain_text(chain)})")
            self.answers[key] = answer
        return answer

    def spf(self, name: str, chain: Chain) -> _Txt:
        answer = self.ask(name, "TXT", chain)
        if answer.status == "nxdomain":
            return _Txt(None, f"{name} does not exist (NXDOMAIN)", void=True, vanished=True)
        texts = answer.records
        if not texts:
            return _Txt(None, f"{name} has no TXT records", void=True, vanished=True)
        if len(texts) > MAX_TXT_RECORDS:
            return _Txt(None, f"{name} has {len(texts)} TXT records, more than {MAX_TXT_RECORDS}: not read")
        size = sum(len(text.encode("utf-8", "replace")) for text in texts)
        if size > MAX_TXT_BYTES:
            return _Txt(None, f"{name}'s TXT records hold {size} bytes, more than {MAX_TXT_BYTES}: not read")
        records = [text for text in texts if is_spf(text)]
        if not records:
            return _Txt(None, f"{name} has no v=spf1 record among its {len(texts)} TXT records", vanished=True)
        if len(records) > 1:
            return _Txt(None, f"{name} has {len(records)} v=spf1 records (one is allowed)")
        return _Txt(records[0])


@dataclass(slots=True)
class _Part:
    """What a record did with the addresses that reached it."""

    passed: list[Piece] = field(default_factory=list)  # matched by a `+` term (the record passes them)
    rest: Classes = field(default_factory=dict)  # decided otherwise or left neutral, with their counts
    errors: Ranges = field(default_factory=Ranges.empty)  # permerror, or not listable past this point


def _add(classes: Classes, key: Key, ranges: Ranges) -> None:
    old = classes.get(key)
    classes[key] = ranges if old is None else old.union(ranges)


def _all(classes: Classes) -> Ranges:
    out = Ranges.empty()
    for ranges in classes.values():
        out = out.union(ranges)
    return out


class _Walk:
    """One family's walk; `notes` (what is not listed, and why) is shared by both families."""

    def __init__(self, dns: _Dns, family: int, notes: dict[tuple[Chain, str], None]) -> None:
        self.dns = dns
        self.family = family
        self.rdtype = "A" if family == 4 else "AAAA"
        self.notes = notes
        self.max_lookups = 0
        self.max_voids = 0
        self.visits = 0  # DNS-querying terms visited, against MAX_WALK_TERMS

    def space(self) -> Ranges:
        if self.family == 4:
            return Ranges.of(0, (1 << V4_BITS) - 1)
        return Ranges.of(0, V6_MAX).subtract(Ranges.of(V4_MAPPED_START, V4_MAPPED_END))

    def leave_out(self, chain: Chain, why: str) -> None:
        self.notes[(chain, why)] = None

    def error_point(self, part: _Part, undecided: Classes, chain: Chain, why: str) -> None:
        part.errors = part.errors.union(_all(undecided))
        self.leave_out(chain, why)

    def count(self, part: _Part, undecided: Classes, chain: Chain, *, void: bool) -> Classes:
        """Charge every undecided address a DNS-querying term (or a void lookup); past the limit, an error point."""
        if not void and undecided:
            self.visits += 1
            if self.visits > MAX_WALK_TERMS:
                why = f"the expansion's bound of {MAX_WALK_TERMS} DNS-querying terms is passed here: not listed"
                self.error_point(part, undecided, chain, why)
                return {}
        kept: Classes = {}
        over: Classes = {}
        for (lookups, voids), ranges in undecided.items():
            key = (lookups, voids + 1) if void else (lookups + 1, voids)
            if (key[1] if void else key[0]) > (MAX_VOIDS if void else MAX_LOOKUPS):
                over[key] = ranges
            else:
                kept[key] = ranges
                self.max_lookups = max(self.max_lookups, key[0])
                self.max_voids = max(self.max_voids, key[1])
        if over:
            why = (
                f"a void lookup past the {MAX_VOIDS} allowed for IPv{self.family} (a name without "
                f"{self.rdtype} records, or a name that does not exist)"
                if void
                else f"the {MAX_LOOKUPS}-lookup limit is passed here"
            )
            self.error_point(part, over, chain, why + ": receivers return permerror for what reaches it")
        return kept

    def record(
        self, rec: Record, domain: str, chain: Chain, undecided: Classes, plus: bool, top: bool, names: Chain
    ) -> _Part:
        """Walk `rec` (the record of `domain`, reached through the records `names`) for the addresses
        `undecided`; `plus`: a `+` match here passes for the partner; `top`: the partner's own result."""
        part = _Part()
        for term in rec.mechanisms:
            if not undecided:
                break
            tchain = (*chain, term.text)
            if term.kind in DNS_MECHANISMS:
                undecided = self.count(part, undecided, tchain, void=False)
            undecided = self.term(term, domain, tchain, undecided, plus, top, names, part)
        if undecided and rec.redirect is not None and not rec.has_all:
            tchain = (*chain, rec.redirect.text)
            undecided = self.count(part, undecided, tchain, void=False)
            if undecided:
                if rec.redirect.macro or rec.redirect.domain is None:
                    why = "macros cannot be enumerated: nothing it passes is listed"
                    self.error_point(part, undecided, tchain, why)
                else:
                    self.follow(rec.redirect.domain, tchain, undecided, plus, top, names, part, True)
                undecided = {}
        for key, ranges in undecided.items():
            _add(part.rest, key, ranges)
        return part

    def term(
        self,
        term: Term,
        domain: str,
        chain: Chain,
        undecided: Classes,
        plus: bool,
        top: bool,
        names: Chain,
        part: _Part,
    ) -> Classes:
        """Apply one mechanism; returns the addresses still undecided after it."""
        if not undecided:
            return undecided
        passing = plus and term.qualifier == "+"
        kind = term.kind
        if kind in ("exists", "ptr") or term.macro:
            what = "macros" if term.macro else kind
            if passing and kind in ("exists", "ptr", "a"):
                self.leave_out(chain, f"{what} cannot be enumerated")
                return self.count(part, undecided, chain, void=True)
            self.error_point(part, undecided, chain, f"{what} cannot be enumerated: what reaches it is not listed")
            return {}
        if kind == "all":
            if passing:
                why = f"the record of {chain[0]} passes every address (`{term.text}` in {chain_text(chain)})"
                raise _Stop("refused", why)
            if term.qualifier == "?" and top:
                self.leave_out(chain, "neutral for every other address (?all)")
            return self.decide(undecided, _all(undecided), term, chain, part)
        if kind in ("ip4", "ip6"):
            net = term.network
            if net is None or net.family != self.family:
                return undecided
            return self.decide(undecided, Ranges.of(net.start, net.end), term, chain, part)
        target = term.domain or domain
        if kind == "include":
            sub = _Part()
            self.follow(target, chain, undecided, plus and term.qualifier == "+", False, names, sub, False)
            part.errors = part.errors.union(sub.errors)
            if term.qualifier == "+":
                part.passed.extend(sub.passed)
            else:
                for key, ranges, _ in sub.passed:
                    _add(part.rest, key, ranges)
            return sub.rest
        hosts = [target]
        if kind == "mx":
            answer = self.dns.ask(target, "MX", chain)
            if not answer.records:
                undecided = self.count(part, undecided, chain, void=True)
            if len(answer.records) > MAX_MX:
                why = f"{target} has {len(answer.records)} MX records, more than {MAX_MX}: receivers return permerror"
                self.error_point(part, undecided, chain, why)
                return {}
            hosts = [host for host in answer.records if host]  # as listed: a name twice costs twice (pyspf)
        blocks: list[tuple[int, int]] = []
        for host in hosts:
            answer = self.dns.ask(host, self.rdtype, chain)
            if not answer.records:
                undecided = self.count(part, undecided, chain, void=True)
            blocks.extend(self.blocks(answer.records, term.v4_len if self.family == 4 else term.v6_len))
        if not undecided or not blocks:
            return undecided
        return self.decide(undecided, Ranges.build(blocks), term, chain, part)

    def blocks(self, addresses: tuple[str, ...], length: int) -> list[tuple[int, int]]:
        bits = V4_BITS if self.family == 4 else 128
        size = 1 << (bits - length)
        out: list[tuple[int, int]] = []
        for text in addresses:
            try:
                addr = parse_v4(text) if self.family == 4 else parse_v6(text)
            except AddressError:
                continue  # not an address of this family: it matches nothing
            start = addr - addr % size
            out.append((start, start + size - 1))
        return out

    def decide(self, undecided: Classes, match: Ranges, term: Term, chain: Chain, part: _Part) -> Classes:
        left: Classes = {}
        for key, ranges in undecided.items():
            hit = ranges.intersect(match)
            if hit:
                if term.qualifier == "+":
                    part.passed.append((key, hit, chain))
                else:
                    _add(part.rest, key, hit)
                ranges = ranges.subtract(hit)
            if ranges:
                left[key] = ranges
        return left

    def follow(
        self,
        target: str,
        chain: Chain,
        undecided: Classes,
        plus: bool,
        top: bool,
        names: Chain,
        part: _Part,
        redirect: bool,
    ) -> None:
        """Walk the record of `target` (include or redirect) into `part`."""
        if target in names:
            kind = "redirect" if redirect else "include"
            self.error_point(part, undecided, chain, f"{kind} loop: {chain_text((*names, target))}")
            return
        txt = self.dns.spf(target, chain)
        if txt.void:
            undecided = self.count(part, undecided, chain, void=True)
        if txt.text is None:
            self.error_point(part, undecided, chain, f"{txt.why}: receivers return permerror for what reaches it")
            return
        rec = parse_record(txt.text)
        if isinstance(rec, SyntaxProblem):
            why = f"the record of {target} has a syntax error at {rec}: receivers return permerror for what reaches it"
            self.error_point(part, undecided, chain, why)
            return
        sub = self.record(rec, target, chain, undecided, plus, top, (*names, target))
        part.passed.extend(sub.passed)
        part.errors = part.errors.union(sub.errors)
        for key, ranges in sub.rest.items():
            _add(part.rest, key, ranges)


def expand(domain: str, resolver: Resolver, *, max_queries: int | None = None) -> Expansion:
    """What the SPF record of `domain` passes, exactly, and what it may pass that is not listed."""
    domain = domain.lower().rstrip(".")
    dns = _Dns(resolver, max_queries)
    record = ""
    try:
        txt = dns.spf(domain, (domain,))
        if txt.text is None:
            outcome: Outcome = "vanished" if txt.vanished else "permerror"
            return Expansion(domain, outcome, why=txt.why, queries=dns.queries)
        record = txt.text
        rec = parse_record(record)
        if isinstance(rec, SyntaxProblem):
            why = f"the SPF record of {domain} has a syntax error at {rec}"
            return Expansion(domain, "permerror", why=why, record=record, queries=dns.queries)
        notes: dict[tuple[Chain, str], None] = {}
        pieces: list[tuple[int, int, int, Chain]] = []
        walks = [_Walk(dns, family, notes) for family in (4, 6)]
        for walk in walks:
            part = walk.record(rec, domain, (domain,), {(0, 0): walk.space()}, True, True, (domain,))
            pieces.extend((walk.family, start, end, chain) for _, ranges, chain in part.passed for start, end in ranges)
    except _Stop as stop:
        return Expansion(domain, stop.outcome, why=stop.why, record=record, queries=dns.queries)
    return Expansion(
        domain,
        "ok",
        record=record,
        found=_found(pieces),
        unlisted=tuple(Unlisted(chain, why) for chain, why in notes),
        lookups=max(walk.max_lookups for walk in walks),
        void_lookups=max(walk.max_voids for walk in walks),
        queries=dns.queries,
    )


def _found(pieces: list[tuple[int, int, int, Chain]]) -> tuple[Found, ...]:
    """Disjoint pieces as the fewest CIDR blocks, IPv4 then IPv6 by address, adjacent pieces of one chain merged."""
    merged: list[tuple[int, int, int, Chain]] = []
    for piece in sorted(pieces, key=lambda piece: (piece[0], piece[1])):
        last = merged[-1] if merged else None
        if last is not None and last[0] == piece[0] and last[3] == piece[3] and last[2] == piece[1] - 1:
            merged[-1] = (last[0], last[1], piece[2], last[3])
        else:
            merged.append(piece)
    found: list[Found] = []
    for family, start, end, chain in merged:
        found.extend(Found(net, chain) for net in range_networks(family, start, end))
    return tuple(found)
