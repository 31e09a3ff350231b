"""The records one CompiledZone removes and adds against another: what an IXFR step sends.

Inside the flow: publisher.server.ixfr calls `diff(old, new)` when a reload brings a new
serial. The answer must be exact (a secondary deletes exactly what we say it had), so the
records come from `render.iter_records`, the rendering AXFR and `<zone>.zone` use, applied
to small zones built from the intervals that differ. Finding those intervals costs in
proportion to the change, not to the zone:

- Each interval renders to its own owner names, independently of its neighbours, so the
  records of a zone are the union over its intervals. The intervals only in `old` give the
  removed records, those only in `new` the added ones (less the records both give, e.g. an
  interval that shrank keeps some /32 names).
- The intervals only on one side are found by comparing the arrays in C: the common prefix
  and suffix of two ranges by galloping over array slices (memcmp), then the larger range
  is split at its middle start address, the other at the same address (bisect), and both
  halves are compared again. Ranges without a change disappear in one comparison; the
  Python-level work is about (changes x log n).
- Answer indices compare directly when the two answer tables agree where both have an
  entry (the compiler appends answers, so a new code or text usually only adds one).
  Otherwise both sides are translated to one merged table first, an O(n) pass at C speed.
- The IPv6 test point (::ffff:127.0.0.2, rendered from the IPv4 data), the apex NS and glue
  are compared on their own; domain zones are rendered whole on both sides and compared
  as sets (O(names), fine for the domain zones lists hold: tens of thousands of names; above
  `MAX_DOMAIN_NAMES` no difference is kept).

A change too large (more than `max_changes` intervals, or past `deadline`) or a TTL change
(every record changes) gives `GaveUp`: the secondary then takes the zone by AXFR.
"""

from __future__ import annotations

import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from publisher.addresses import TEST_LISTED_V4, V4_MAPPED_START
from publisher.compile.render import Record, iter_records
from publisher.compile.render_names import v6_rname
from publisher.compile.zone import Answer, CompiledZone

#: Intervals changed (both sides counted) beyond which a difference is not worth keeping.
MAX_CHANGES = 65536
#: Domain zones are compared whole (every name rendered on both sides): beyond this many names, no difference.
MAX_DOMAIN_NAMES = 100_000
#: Ranges this small are compared as Python sets of tuples.
_LEAF = 16

_TEST_OWNER_REL = v6_rname(V4_MAPPED_START + TEST_LISTED_V4)


@dataclass(frozen=True, slots=True)
class Delta:
    """`old` minus `removed` plus `added` is `new`, SOA records left out (IXFR sends its own)."""

    removed: tuple[Record, ...]
    added: tuple[Record, ...]
    intervals: int  # intervals that differ, both sides counted


@dataclass(frozen=True, slots=True)
class GaveUp:
    """No difference kept: why (for the log line of the AXFR a secondary then takes)."""

    reason: str


Columns = list["array[int]"]
Key = Callable[[Columns, int], tuple[int, ...]]


class _Budget:
    def __init__(self, max_changes: int, deadline: float | None) -> None:
        self.left = max_changes
        self.deadline = deadline
        self.over = ""

    def spend(self, n: int) -> bool:
        self.left -= n
        if self.left < 0:
            self.over = "too many intervals changed"
        elif self.deadline is not None and time.monotonic() > self.deadline:
            self.over = "computing the difference took too long"
        return not self.over


def _same(a: Columns, b: Columns, i: int, j: int, k: int) -> bool:
    return all(x[i : i + k] == y[j : j + k] for x, y in zip(a, b))


def _common_prefix(a: Columns, b: Columns, i: int, j: int, n: int) -> int:
    """The length of the common prefix of a[i:i+n] and b[j:j+n], galloping then bisecting."""
    good, step = 0, 1
    while good < n:
        k = min(good + step, n)
        if not _same(a, b, i + good, j + good, k - good):
            lo, hi = good, k - 1  # the answer is in [lo, hi]: a[good:k] differs somewhere
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if _same(a, b, i + good, j + good, mid - good):
                    lo = mid
                else:
                    hi = mid - 1
            return lo
        good, step = k, step * 2
    return good


def _common_suffix(a: Columns, b: Columns, ie: int, je: int, n: int) -> int:
    """The length of the common suffix of a[:ie] and b[:je], at most n."""
    good, step = 0, 1
    while good < n:
        k = min(good + step, n)
        if not _same(a, b, ie - k, je - k, k - good):
            lo, hi = good, k - 1
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if _same(a, b, ie - mid, je - mid, mid - good):
                    lo = mid
                else:
                    hi = mid - 1
            return lo
        good, step = k, step * 2
    return good


def _rows(cols: Columns, lo: int, hi: int) -> list[tuple[int, ...]]:
    return list(zip(*(c[lo:hi] for c in cols)))


def _position(cols: Columns, key: tuple[int, ...], lo: int, hi: int) -> int:
    """Where `key` (the leading columns of a row) goes in cols[lo:hi], sorted by those columns."""
    for c, value in enumerate(key):
        if c == len(key) - 1:
            return bisect_left(cols[c], value, lo, hi)
        first = bisect_left(cols[c], value, lo, hi)
        hi = bisect_right(cols[c], value, first, hi)
        lo = first
    return lo


def _only(a: Columns, b: Columns, nkey: int, budget: _Budget) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    """(rows only in a, rows only in b) of two row-sorted, key-unique column sets."""
    only_a: list[tuple[int, ...]] = []
    only_b: list[tuple[int, ...]] = []
    stack = [(0, len(a[0]), 0, len(b[0]))]
    while stack and not budget.over:
        ia, ea, ib, eb = stack.pop()
        n = min(ea - ia, eb - ib)
        p = _common_prefix(a, b, ia, ib, n)
        ia, ib = ia + p, ib + p
        s = _common_suffix(a, b, ea, eb, n - p)
        ea, eb = ea - s, eb - s
        if ea - ia <= _LEAF and eb - ib <= _LEAF or ia == ea or ib == eb:
            if (ea - ia) + (eb - ib) > budget.left and not budget.spend((ea - ia) + (eb - ib)):
                break
            left, right = set(_rows(a, ia, ea)), set(_rows(b, ib, eb))
            if budget.spend(len(left ^ right)):
                only_a.extend(left - right)
                only_b.extend(right - left)
            continue
        if ea - ia >= eb - ib:
            ma = (ia + ea) // 2
            mb = _position(b, tuple(c[ma] for c in a[:nkey]), ib, eb)
        else:
            mb = (ib + eb) // 2
            ma = _position(a, tuple(c[mb] for c in b[:nkey]), ia, ea)
        stack.append((ma, ea, mb, eb))
        stack.append((ia, ma, ib, mb))
    return only_a, only_b


def _tables(old: CompiledZone, new: CompiledZone) -> tuple[tuple[Answer, ...], Columns, Columns] | None:
    """One answer table for both zones and their value arrays in it; None: the indices agree."""
    if all(x == y for x, y in zip(old.answers, new.answers)):
        return None
    ids: dict[Answer, int] = {}
    old_map = array("I", [ids.setdefault(a, len(ids)) for a in old.answers])
    new_map = array("I", [ids.setdefault(a, len(ids)) for a in new.answers])
    return (
        tuple(ids),
        [array("I", map(old_map.__getitem__, old.v4_value)), array("I", map(old_map.__getitem__, old.v6_value))],
        [array("I", map(new_map.__getitem__, new.v4_value)), array("I", map(new_map.__getitem__, new.v6_value))],
    )


def _ip_records(
    zone: CompiledZone, answers: tuple[Answer, ...], v4: Iterable[tuple[int, ...]], v6: Iterable[tuple[int, ...]]
) -> set[Record]:
    """The data records of the given intervals (the IPv6 test point left out)."""
    v4, v6 = sorted(v4), sorted(v6)
    part = CompiledZone(
        zone.info,
        answers,
        v4_start=array("I", [r[0] for r in v4]),
        v4_end=array("I", [r[1] for r in v4]),
        v4_value=array("I", [r[2] for r in v4]),
        v6_start_hi=array("Q", [r[0] for r in v6]),
        v6_start_lo=array("Q", [r[1] for r in v6]),
        v6_end_hi=array("Q", [r[2] for r in v6]),
        v6_end_lo=array("Q", [r[3] for r in v6]),
        v6_value=array("I", [r[4] for r in v6]),
    )
    test_owner = f"{_TEST_OWNER_REL}.{zone.name}"
    return {r for r in _data(part) if r.owner != test_owner}


def _head_count(zone: CompiledZone) -> int:
    return sum(1 for _ in iter_records(CompiledZone(zone.info, zone.answers)))


def _data(zone: CompiledZone) -> Iterable[Record]:
    """The records after the apex SOA, NS and glue (iter_records yields those first)."""
    records = iter_records(zone)
    for _ in range(_head_count(zone)):
        next(records)
    return records


def _apex(zone: CompiledZone) -> set[Record]:
    """NS and glue, plus the IPv6 test point's records (they follow 127.0.0.2's answer)."""
    out = {r for r in iter_records(CompiledZone(zone.info, zone.answers)) if r.rtype != "SOA"}
    idx = zone.lookup_v4(TEST_LISTED_V4) if zone.info.kind == "ip" else -1
    if idx >= 0:
        t = array("I", [TEST_LISTED_V4])
        point = CompiledZone(zone.info, zone.answers, t, t, array("I", [idx]))
        owner = f"{_TEST_OWNER_REL}.{zone.name}"
        out |= {r for r in _data(point) if r.owner == owner}
    return out


def _domains(zone: CompiledZone) -> set[Record]:
    if not zone.dom_exact and not zone.dom_wild:
        return set()
    only = CompiledZone(zone.info, zone.answers, dom_exact=zone.dom_exact, dom_wild=zone.dom_wild)
    return set(_data(only))


def _v4(zone: CompiledZone, values: array[int] | None = None) -> Columns:
    return [zone.v4_start, zone.v4_end, zone.v4_value if values is None else values]


def _v6(zone: CompiledZone, values: array[int] | None = None) -> Columns:
    value = zone.v6_value if values is None else values
    return [zone.v6_start_hi, zone.v6_start_lo, zone.v6_end_hi, zone.v6_end_lo, value]


def _order(records: set[Record]) -> tuple[Record, ...]:
    return tuple(sorted(records, key=lambda r: (r.owner, r.rtype, str(r.rdata))))


def diff(
    old: CompiledZone, new: CompiledZone, *, max_changes: int = MAX_CHANGES, deadline: float | None = None
) -> Delta | GaveUp:
    """The records `new` has that `old` lacks and the reverse; `deadline` is a time.monotonic() value."""
    if old.name != new.name:
        return GaveUp(f"different zones ({old.name}, {new.name})")
    if old.info.ttl != new.info.ttl:
        return GaveUp(f"the TTL changed ({old.info.ttl} -> {new.info.ttl}): every record changes")
    budget = _Budget(max_changes, deadline)
    merged = _tables(old, new)
    answers_old, answers_new = old.answers, new.answers
    v4o, v4n, v6o, v6n = _v4(old), _v4(new), _v6(old), _v6(new)
    if merged is not None:
        answers_old = answers_new = merged[0]
        v4o, v6o = _v4(old, merged[1][0]), _v6(old, merged[1][1])
        v4n, v6n = _v4(new, merged[2][0]), _v6(new, merged[2][1])
    o4, n4 = _only(v4o, v4n, 1, budget)
    o6, n6 = _only(v6o, v6n, 2, budget) if not budget.over else ([], [])
    if budget.over:
        return GaveUp(budget.over)
    removed = _ip_records(old, answers_old, o4, o6) | _apex(old)
    added = _ip_records(new, answers_new, n4, n6) | _apex(new)
    same_names = old.dom_exact == new.dom_exact and old.dom_wild == new.dom_wild
    if not same_names or merged is not None or old.info.ns != new.info.ns:
        names = max(len(old.dom_exact) + len(old.dom_wild), len(new.dom_exact) + len(new.dom_wild))
        if names > MAX_DOMAIN_NAMES:
            return GaveUp(f"a domain zone of {names} names is compared whole only up to {MAX_DOMAIN_NAMES}")
        removed |= _domains(old)
        added |= _domains(new)
    common = removed & added
    return Delta(_order(removed - common), _order(added - common), len(o4) + len(n4) + len(o6) + len(n6))
