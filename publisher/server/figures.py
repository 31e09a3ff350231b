"""The server's figures as one plain value: what the metrics export and what SIGUSR1 sums.

Inside the server: `of_server` reads a running app.Server (its per-thread counters in
stats.py, the TCP server, the reload record, the served ZoneSet) without locks, as a
metrics scrape always did. Under `serve --workers N` each worker sends its `Figures` to
the parent as one JSON line when asked (workers.py), and the parent adds them up with
`combine`: counters are summed (a dead worker's last report is kept, so they never go
back), connection gauges are summed, zone and publish figures are the first worker's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from publisher.server.keys import OUTCOMES, KeyUsage
from publisher.server.ratelog import Throttle
from publisher.server.stats import CATEGORIES, LATENCY_BOUNDS_NS, Stats
from publisher.server.zoneset import ZoneSet


@dataclass(slots=True)
class ZoneFigures:
    serial: int
    listings: int | None = None  # manifest counts.listings
    expiring_7d: int | None = None


@dataclass(slots=True)
class Figures:
    """Counters (summed over workers) and gauges of one process or of all workers."""

    queries: dict[str, list[int]] = field(default_factory=dict)  # zone -> count per stats.CATEGORIES
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_NS) + 1))
    latency_ns: int = 0
    rrl: list[int] = field(default_factory=lambda: [0, 0, 0])  # dropped, slipped, coded
    internal_errors: int = 0
    tcp_active: int = 0
    tcp_max: int = 0
    tcp_evicted: int = 0
    tcp_full_seconds: float = 0.0
    reloads: dict[str, int] = field(default_factory=lambda: {"success": 0, "failure": 0})
    last_reload: float = 0.0
    last_reload_ok: bool = True
    last_good_reload: float = 0.0
    zones: dict[str, ZoneFigures] = field(default_factory=dict)
    generation: str = ""
    source_kind: str = ""
    commit: str = ""
    published_at: float | None = None
    workers: int = 1  # processes answering (1 without --workers)
    restarts: int = 0  # workers the parent replaced since start
    # Access keys (keys.KeyUsage): per key name a count per keys.OUTCOMES, since start and on
    # UTC day `keys_day` (days since the epoch); queries with an unknown key, the same two ways.
    keys_total: dict[str, list[int]] = field(default_factory=dict)
    keys_day: int = 0
    keys_today: dict[str, list[int]] = field(default_factory=dict)
    keys_unknown_total: int = 0
    keys_unknown_today: int = 0

    @property
    def serials(self) -> dict[str, int]:
        return {name: z.serial for name, z in self.zones.items()}

    def to_json(self) -> dict[str, object]:
        # Shallow, not dataclasses.asdict: its deep copy of 10,000 keys' rows took 130 ms, each second.
        out: dict[str, object] = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["zones"] = {name: dataclasses.asdict(z) for name, z in self.zones.items()}
        return out

    @classmethod
    def from_json(cls, obj: object) -> Figures:
        """The value of to_json(); raises ValueError on anything else."""
        if not isinstance(obj, dict):
            raise ValueError("figures: not an object")
        try:
            zones = {str(k): ZoneFigures(**v) for k, v in obj.get("zones", {}).items()}
            return cls(**{**obj, "zones": zones})
        except (TypeError, AttributeError) as exc:
            raise ValueError(f"figures: {exc}") from exc


class Observed(Protocol):
    """What `of_server` reads (app.Server)."""

    stats: Stats
    zones: ZoneSet
    last_reload: tuple[float, bool]
    last_good_reload: float
    reloads: dict[str, int]
    internal_errors: Throttle
    key_usage: KeyUsage


def timestamp(text: object) -> float | None:
    """ISO 8601 text -> seconds since the epoch (naive means UTC); None when it is not one."""
    if not isinstance(text, str):
        return None
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()


def of_server(server: Observed) -> Figures:
    stats = server.stats
    zs = server.zones  # one read: a reload meanwhile does not mix two sets
    buckets, total_ns = stats.latency_totals()
    rrl = stats.rrl_totals()
    tcp = stats.tcp
    published = zs.manifest.zones if zs.manifest is not None else {}
    zones = {}
    for name in sorted(zs.zones):
        counts = published[name].meta.counts if name in published else None
        zones[name] = ZoneFigures(
            zs.zones[name].serial,
            counts.listings if counts is not None else None,
            counts.expiring_7d if counts is not None else None,
        )
    source = zs.manifest.source if zs.manifest is not None else None
    when, ok = server.last_reload
    key_day, key_today, key_total, unknown_today, unknown_total = server.key_usage.snapshot()
    return Figures(
        queries=stats.totals(),
        latency=buckets,
        latency_ns=total_ns,
        rrl=[rrl.dropped, rrl.slipped, rrl.coded],
        internal_errors=server.internal_errors.count,
        tcp_active=tcp.active if tcp else 0,
        tcp_max=tcp.max_connections if tcp else 0,
        tcp_evicted=tcp.evicted if tcp else 0,
        tcp_full_seconds=tcp.full_seconds if tcp else 0.0,
        reloads=dict(server.reloads),
        last_reload=when,
        last_reload_ok=ok,
        last_good_reload=server.last_good_reload,
        zones=zones,
        generation=zs.generation,
        source_kind=source.kind if source is not None else "",
        commit=(source.commit or "") if source is not None else "",
        published_at=timestamp(zs.manifest.published_at if zs.manifest is not None else None),
        keys_total=key_total,
        keys_day=key_day,
        keys_today=key_today,
        keys_unknown_total=unknown_total,
        keys_unknown_today=unknown_today,
    )


def _add(into: list[int], values: Iterable[int]) -> None:
    for i, value in enumerate(values):
        into[i] += value


def combine(live: list[Figures], retired: Figures | None = None, *, restarts: int = 0) -> Figures:
    """The figures of every live worker (in slot order) plus the counters of those that died.

    Counters: summed, `retired` included. Gauges: TCP connections and the cap summed; the
    last reload time the latest, its success only when every worker's last load succeeded,
    the last good load the oldest (the stalest worker); zones and publish the first live
    worker's (all load the same zones/current, within a poll of each other).
    """
    out = Figures(workers=len(live), restarts=restarts, last_good_reload=0.0)
    for part in [*live, *([retired] if retired is not None else [])]:
        for zone, row in part.queries.items():
            _add(out.queries.setdefault(zone, [0] * len(CATEGORIES)), row)
        _add(out.latency, part.latency)
        out.latency_ns += part.latency_ns
        _add(out.rrl, part.rrl)
        out.internal_errors += part.internal_errors
        out.tcp_evicted += part.tcp_evicted
        out.tcp_full_seconds += part.tcp_full_seconds
        for result, n in part.reloads.items():
            out.reloads[result] = out.reloads.get(result, 0) + n
    _combine_keys(out, [*live, *([retired] if retired is not None else [])])
    if live:
        first = live[0]
        out.tcp_active = sum(p.tcp_active for p in live)
        out.tcp_max = sum(p.tcp_max for p in live)
        out.last_reload = max(p.last_reload for p in live)
        out.last_reload_ok = all(p.last_reload_ok for p in live)
        out.last_good_reload = min(p.last_good_reload for p in live)
        out.zones = dict(first.zones)
        out.generation, out.source_kind, out.commit = first.generation, first.source_kind, first.commit
        out.published_at = first.published_at
    return out


def _combine_keys(out: Figures, parts: list[Figures]) -> None:
    """Per-key counts summed: since start all parts; today only the parts of the latest UTC day."""
    out.keys_day = max((p.keys_day for p in parts), default=0)
    for part in parts:
        for name, row in part.keys_total.items():
            _add(out.keys_total.setdefault(name, [0] * len(OUTCOMES)), row)
        out.keys_unknown_total += part.keys_unknown_total
        if part.keys_day == out.keys_day:
            for name, row in part.keys_today.items():
                _add(out.keys_today.setdefault(name, [0] * len(OUTCOMES)), row)
            out.keys_unknown_today += part.keys_unknown_today


def counters_only(fig: Figures) -> Figures:
    """What a dead worker leaves to the sums: its counters, none of its gauges."""
    return Figures(
        queries={zone: list(row) for zone, row in fig.queries.items()},
        latency=list(fig.latency),
        latency_ns=fig.latency_ns,
        rrl=list(fig.rrl),
        internal_errors=fig.internal_errors,
        tcp_evicted=fig.tcp_evicted,
        tcp_full_seconds=fig.tcp_full_seconds,
        reloads=dict(fig.reloads),
        keys_total={name: list(row) for name, row in fig.keys_total.items()},
        keys_day=fig.keys_day,
        keys_today={name: list(row) for name, row in fig.keys_today.items()},
        keys_unknown_total=fig.keys_unknown_total,
        keys_unknown_today=fig.keys_unknown_today,
    )
