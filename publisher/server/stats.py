"""Per-zone query counters, kept per serving thread and summed when reported.

Inside the server: the wire/slow paths bump a counter per query; the server logs the
totals on SIGUSR1 and at exit. Each thread owns its `Counters`, so a bump is a plain
list increment with no lock and no lost updates; only the report walks them all. The
same goes for each UDP thread's rate-limit outcomes (`RrlCounts`); the TCP server's
connection figures are read from it (`TcpFigures`) when metrics are scraped.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import defaultdict
from typing import Protocol

#: denied: queries the client ACL or a key check answered instead of the data (dropped, `empty`,
#: an error code); an ACL `refuse` counts as refused.
CATEGORIES = ("listed", "not_listed", "nodata", "refused", "formerr", "servfail", "other", "denied")
LISTED, NOT_LISTED, NODATA, REFUSED, FORMERR, SERVFAIL, OTHER, DENIED = range(len(CATEGORIES))
#: The bucket for queries that belong to no served zone.
NO_ZONE = "-"

#: zone name -> one count per category; a missing zone gets a row of zeros on first use.
Counters = defaultdict[str, list[int]]


def _row() -> list[int]:
    return [0] * len(CATEGORIES)


def new_counters() -> Counters:
    return defaultdict(_row)


def bump(counters: Counters, zone: str, category: int) -> None:
    counters[zone][category] += 1


#: Upper bounds (ns, inclusive) of the processing-time histogram; one more bucket takes the rest.
LATENCY_BOUNDS_NS = (1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000, 10_000_000)


class Latency:
    """One UDP thread's histogram of per-query processing time; exists only under --metrics.

    The batched loop reads the clock twice per recvmmsg batch, not per query: a batch of n
    datagrams answered in t ns counts as n queries of t/n ns each. Owned by one thread,
    like `Counters`; a scrape reads it without a lock (the count is the buckets' sum).
    """

    __slots__ = ("buckets", "total_ns")

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BOUNDS_NS) + 1)
        self.total_ns = 0

    def observe(self, ns: int, n: int) -> None:
        self.buckets[bisect_left(LATENCY_BOUNDS_NS, ns // n)] += n
        self.total_ns += ns


class RrlCounts:
    """One UDP thread's queries over the rate limit, by what they got instead of the answer."""

    __slots__ = ("dropped", "slipped", "coded")

    def __init__(self) -> None:
        self.dropped = 0  # no reply at all
        self.slipped = 0  # an empty reply with TC set
        self.coded = 0  # the --rrl-code answer (127.255.255.0/24)

    @property
    def total(self) -> int:
        """Every query over the limit, whatever it got."""
        return self.dropped + self.slipped + self.coded


class TcpFigures(Protocol):
    """What the metrics read from the TCP server (tcp.TcpServer)."""

    evicted: int
    max_connections: int

    @property
    def active(self) -> int: ...

    @property
    def full_seconds(self) -> float: ...


class Stats:
    """The registry of every thread's counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._all: list[Counters] = []
        self._latency: list[Latency] = []
        self._rrl: list[RrlCounts] = []
        #: The TCP server, once started (None before, or without one).
        self.tcp: TcpFigures | None = None

    def new_rrl(self) -> RrlCounts:
        counts = RrlCounts()
        with self._lock:
            self._rrl.append(counts)
        return counts

    def rrl_totals(self) -> RrlCounts:
        """Every UDP thread's rate-limit outcomes, summed."""
        out = RrlCounts()
        with self._lock:
            every = list(self._rrl)
        for counts in every:
            out.dropped += counts.dropped
            out.slipped += counts.slipped
            out.coded += counts.coded
        return out

    def new(self) -> Counters:
        counters = new_counters()
        with self._lock:
            self._all.append(counters)
        return counters

    def new_latency(self) -> Latency:
        latency = Latency()
        with self._lock:
            self._latency.append(latency)
        return latency

    def latency_totals(self) -> tuple[list[int], int]:
        """(count per LATENCY_BOUNDS_NS bucket plus the overflow bucket, total ns) of every thread."""
        buckets = [0] * (len(LATENCY_BOUNDS_NS) + 1)
        total = 0
        with self._lock:
            recorders = list(self._latency)
        for rec in recorders:
            total += rec.total_ns
            for i, value in enumerate(list(rec.buckets)):
                buckets[i] += value
        return buckets, total

    def totals(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        with self._lock:
            tables = list(self._all)
        for table in tables:
            for zone, row in list(table.items()):
                acc = out.setdefault(zone, [0] * len(CATEGORIES))
                for i, value in enumerate(row):
                    acc[i] += value
        return out

    def report(self, serials: dict[str, int]) -> list[str]:
        """One line per zone (every served zone, even without queries) plus the no-zone bucket."""
        return report(self.totals(), serials)


def report(totals: dict[str, list[int]], serials: dict[str, int]) -> list[str]:
    """The SIGUSR1 lines for per-zone `totals` (one process's, or summed over workers)."""
    lines = []
    for zone in sorted(set(serials) | set(totals)):
        row = totals.get(zone, [0] * len(CATEGORIES))
        serial = f"serial {serials[zone]}" if zone in serials else "not served"
        counts = " ".join(f"{name} {value}" for name, value in zip(CATEGORIES, row))
        label = "no zone" if zone == NO_ZONE else zone
        lines.append(f"stats {label} ({serial}): queries {sum(row)} {counts}")
    return lines


# --- access keys (keys.py keeps the counts; these are the SIGUSR1 lines) ----------------

#: Keys reported one per line on SIGUSR1, the busiest today first; the rest are summed.
KEY_REPORT_TOP = 20
_KEY_OUTCOMES = 5  # keys.OUTCOMES: answered, expired, zone, network, over_quota


def key_report(
    today: dict[str, list[int]], total: dict[str, list[int]], unknown_today: int, unknown_total: int,
    *, top: int = KEY_REPORT_TOP,
) -> list[str]:  # fmt: skip
    """The SIGUSR1 lines of the access keys: the `top` busiest today, a line for the rest, the unknown keys.

    A key's line: today's answered, refused (expired, zone not covered, client outside its
    networks) and over-quota queries, then its answered queries since start.
    """
    zero = [0] * _KEY_OUTCOMES

    def busy(name: str) -> tuple[int, str]:
        return (-sum(today.get(name, zero)), name)

    names = sorted(set(today) | set(total), key=busy)
    lines = []
    for name in names[:top]:
        a, exp, zone, net, over = today.get(name, zero)
        lines.append(
            f"stats key {name}: today answered {a} refused {exp + zone + net} (expired {exp}, zone {zone}, "
            f"network {net}) over_quota {over}; since start answered {total.get(name, zero)[0]}"
        )
    rest = names[top:]
    if rest:
        sums = [sum(today.get(n, zero)[i] for n in rest) for i in range(_KEY_OUTCOMES)]
        lines.append(
            f"stats keys: {len(rest)} more keys: today answered {sums[0]} refused {sum(sums[1:4])} over_quota {sums[4]}"
        )
    if names or unknown_total:
        lines.append(f"stats keys unknown: today {unknown_today}; since start {unknown_total}")
    return lines
