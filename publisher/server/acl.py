"""Client ACL tables: which action a client meets in a zone, answered by one bisect.

Inside the server: ZoneSet.build -> `Tables` (from the server-wide and the zones' `AclRule`s)
-> gate.py asks `client(...)` once per client address (cached) for its `Client`: the
`Verdict` of every ACL table, so a query costs a dict look-up and an index.

Within one ACL the most specific network wins: nested networks are flattened into
disjoint intervals (sorted starts, bisect). Between the server-wide ACL and a zone's own
the more severe action wins, in rbldnsd's order drop > refuse > empty > answer > pass (two
`answer`s: the server-wide one). docs/design.md, "Who may query", is the contract.
"""

from __future__ import annotations

import socket
import sys
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from publisher import errorcodes
from publisher.addresses import format_addr, parse_addr, parse_network, unmapped
from publisher.model import AclRule

#: The byte of a sockaddr's 16-bit family that holds AF_INET / AF_INET6 (both below 256).
_FAMILY_AT = 0 if sys.byteorder == "little" else 1
# Severity: a larger number wins when two ACLs both match.
PASS, ANSWER, EMPTY, REFUSE, DROP = range(5)
_SEVERITY = {"pass": PASS, "answer": ANSWER, "empty": EMPTY, "refuse": REFUSE, "drop": DROP}
#: Clients whose verdicts are cached per `Tables`; past it the cache starts afresh (a spoofed
#: flood from everywhere costs one table look-up per query, never unbounded memory).
CACHE_MAX = 65536


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one ACL rule does to a client's queries: an action, and for `answer` its code and text."""

    action: int
    code: int = 0
    txt: str = ""

    @property
    def name(self) -> str:
        return ("pass", "answer", "empty", "refuse", "drop")[self.action]


PASSED = Verdict(PASS)


def verdict_of(rule: AclRule) -> Verdict:
    action = _SEVERITY[rule.action]
    if action == PASS:
        return PASSED
    if action != ANSWER:
        return Verdict(action)
    code = rule.code or errorcodes.ACL_ANSWER.code
    known = errorcodes.BY_CODE.get(code)
    return Verdict(ANSWER, code, rule.txt or (known.txt if known is not None else errorcodes.ACL_ANSWER.txt))


def stronger(a: Verdict, b: Verdict) -> Verdict:
    """The more severe of two verdicts; `a` (the server-wide one) on a tie."""
    return b if b.action > a.action else a


class Table:
    """One ACL as disjoint intervals per family: starts, ends, verdicts (most specific network wins)."""

    __slots__ = ("v4", "v6")

    def __init__(self, rules: Iterable[tuple[int, int, int, Verdict]]) -> None:
        by_family: dict[int, list[tuple[int, int, Verdict]]] = {4: [], 6: []}
        for family, start, end, verdict in rules:
            by_family[family].append((start, end, verdict))
        self.v4 = _flatten(by_family[4], "I")
        self.v6 = _flatten(by_family[6], None)

    @classmethod
    def of(cls, rules: Sequence[AclRule]) -> Table:
        out = []
        for rule in rules:
            net = parse_network(rule.network)
            out.append((net.family, net.start, net.end, verdict_of(rule)))
        return cls(out)

    def lookup(self, family: int, addr: int) -> Verdict:
        starts, ends, values = self.v4 if family == 4 else self.v6
        i = bisect_right(starts, addr) - 1
        if i >= 0 and ends[i] >= addr:
            return values[i]
        return PASSED


def _flatten(
    nets: list[tuple[int, int, Verdict]], code: str | None
) -> tuple[Sequence[int], Sequence[int], list[Verdict]]:
    """Nested networks -> disjoint intervals, the innermost network's verdict on each.

    Networks are CIDRs, so two are either disjoint or one holds the other; of two equal
    networks the later wins.
    """
    nets = sorted(nets, key=lambda n: (n[0], -n[1]))
    starts: list[int] = []
    ends: list[int] = []
    values: list[Verdict] = []
    stack: list[tuple[int, Verdict]] = []
    cur = 0

    def emit(lo: int, hi: int, v: Verdict) -> None:
        if lo > hi:
            return
        if values and values[-1] is v and ends[-1] + 1 == lo:
            ends[-1] = hi  # adjacent pieces of one rule
            return
        starts.append(lo)
        ends.append(hi)
        values.append(v)

    for s, e, v in nets:
        while stack and stack[-1][0] < s:
            end, val = stack.pop()
            emit(cur, end, val)
            cur = max(cur, end + 1)
        if stack:
            emit(cur, s - 1, stack[-1][1])
        cur = s
        stack.append((e, v))
    while stack:
        end, val = stack.pop()
        emit(cur, end, val)
        cur = max(cur, end + 1)
    if code is None:
        return starts, ends, values
    return array(code, starts), array(code, ends), values


def merged(wide: Table, own: Table) -> Table:
    """One table answering stronger(wide, own) everywhere: a zone's ACL over the server-wide one.

    One sweep over both tables' interval edges (a 100,000-network server-wide ACL merges in
    well under a second).
    """
    rules = []
    for family, a, b in ((4, wide.v4, own.v4), (6, wide.v6, own.v6)):
        edges = sorted(
            {x for s, e in zip(a[0], a[1]) for x in (s, e + 1)} | {x for s, e in zip(b[0], b[1]) for x in (s, e + 1)}
        )
        ia = ib = 0
        na, nb = len(a[0]), len(b[0])
        for lo, nxt in zip(edges, edges[1:]):
            while ia < na and a[1][ia] < lo:
                ia += 1
            while ib < nb and b[1][ib] < lo:
                ib += 1
            va = a[2][ia] if ia < na and a[0][ia] <= lo else PASSED
            vb = b[2][ib] if ib < nb and b[0][ib] <= lo else PASSED
            v = stronger(va, vb)
            if v.action != PASS:
                rules.append((family, lo, nxt - 1, v))
    return Table(rules)


class Client:
    """One client address: its family and address (IPv4-mapped as IPv4) and a verdict per table."""

    __slots__ = ("family", "addr", "verdicts", "uniform")

    def __init__(self, family: int, addr: int, verdicts: tuple[Verdict, ...]) -> None:
        self.family = family
        self.addr = addr
        self.verdicts = verdicts
        first = verdicts[0]
        #: The verdict of every table when they agree (the common case), else None.
        self.uniform = first if all(v is first for v in verdicts) else None

    @property
    def text(self) -> str:
        return format_addr(self.family, self.addr)


def client_of_text(text: str) -> tuple[int, int] | None:
    """(family, address) of a client's address text, IPv4-mapped as IPv4; None if unreadable."""
    try:
        family, addr = parse_addr(text.split("%", 1)[0])
    except ValueError:
        return None
    return unmapped(family, addr)


def client_of_bytes(raw: bytes) -> tuple[int, int]:
    """(family, address) of a packed address (4 or 16 bytes), IPv4-mapped as IPv4."""
    addr = int.from_bytes(raw, "big")
    return (4, addr) if len(raw) == 4 else unmapped(6, addr)


def client_key(raw: bytes | memoryview) -> bytes:
    """The packed client address of a kernel sockaddr (as recvmmsg fills it): 4 or 16 bytes."""
    if raw[_FAMILY_AT] == socket.AF_INET6:
        return bytes(raw[8:24])
    return bytes(raw[4:8])


class Tables:
    """Every ACL table of a zone set: 0 is the server-wide one (also for queries outside every
    zone); a zone with its own ACL has the merge of both. `index[zone]` is the zone's table."""

    def __init__(self, wide: Sequence[AclRule], zones: Mapping[str, Sequence[AclRule]]) -> None:
        base = Table.of(wide)
        self.tables: list[Table] = [base]
        self.index: dict[str, int] = {}
        for name, rules in zones.items():
            if rules:
                self.index[name] = len(self.tables)
                self.tables.append(merged(base, Table.of(rules)))
            else:
                self.index[name] = 0
        #: No table restricts anyone (no ACL, or only `pass` rules).
        self.empty = all(v.action == PASS for t in self.tables for v in (*t.v4[2], *t.v6[2]))
        self.cache: dict[bytes | str, Client] = {}

    def client(self, key: bytes | str | memoryview) -> Client:
        """The client with packed address (bytes), address text (str) or kernel sockaddr
        (memoryview, as recvmmsg fills it) `key` (unreadable: 0.0.0.0)."""
        if isinstance(key, memoryview):
            key = client_key(key)
        got = self.cache.get(key)
        if got is not None:
            return got
        fa = client_of_bytes(key) if isinstance(key, bytes) else client_of_text(key)
        family, addr = fa if fa is not None else (0, 0)
        got = Client(family, addr, tuple(t.lookup(family, addr) for t in self.tables))
        if len(self.cache) >= CACHE_MAX:
            self.cache.clear()
        self.cache[key] = got
        return got

    def describe(self, family: int, addr: int, zone: str | None) -> str:
        """The action name for a client in a zone (None: outside every zone), for logs and tests."""
        return self.tables[self.index.get(zone, 0) if zone else 0].lookup(family, addr).name
