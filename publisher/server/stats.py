"""Per-zone query counters, kept per serving thread and summed when reported.

Place in the flow: the wire/slow paths bump a counter per query; the server logs the
totals on SIGUSR1 and at exit. Each thread owns its `Counters`, so a bump is a plain
list increment with no lock and no lost updates; only the report walks them all.
"""

from __future__ import annotations

import threading
from collections import defaultdict

CATEGORIES = ("listed", "not_listed", "nodata", "refused", "formerr", "servfail", "other")
LISTED, NOT_LISTED, NODATA, REFUSED, FORMERR, SERVFAIL, OTHER = range(len(CATEGORIES))
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


class Stats:
    """The registry of every thread's counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._all: list[Counters] = []

    def new(self) -> Counters:
        counters = new_counters()
        with self._lock:
            self._all.append(counters)
        return counters

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
        totals = self.totals()
        lines = []
        for zone in sorted(set(serials) | set(totals)):
            row = totals.get(zone, [0] * len(CATEGORIES))
            serial = f"serial {serials[zone]}" if zone in serials else "not served"
            counts = " ".join(f"{name} {value}" for name, value in zip(CATEGORIES, row))
            label = "no zone" if zone == NO_ZONE else zone
            lines.append(f"stats {label} ({serial}): queries {sum(row)} {counts}")
        return lines
