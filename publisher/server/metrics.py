"""Prometheus metrics of the server (`serve --metrics ADDR:PORT`), computed at scrape time.

Inside the server: app.Server (its per-thread counters, the served ZoneSet and its
manifest, the reload record) -> figures.Figures -> `ServerCollector` -> prometheus-client's text format on
an HTTP server with bounded threads and per-connection deadlines (`Exporter`, httpd.py).
Nothing here runs per query: the serving threads keep bumping their plain integer
counters (stats.py) and this module sums them when Prometheus asks. Only imported when
--metrics is given, so a server without it neither loads prometheus-client nor pays its
memory.

Metrics (every zone label is a served zone's name; "-" counts queries for no zone):
  dnsbl_queries_total{zone,result}          queries by outcome (stats.CATEGORIES)
  dnsbl_query_processing_seconds            UDP answering time per query (histogram, per batch)
  dnsbl_zone_serial{zone}                   SOA serial being served
  dnsbl_zone_entries{zone}                  listing entries (manifest counts.listings)
  dnsbl_zone_entries_expiring_7d{zone}      entries whose `expires` is within 7 days of the publish
  dnsbl_reload_timestamp_seconds            when zones were last (re)loaded or a reload was tried
  dnsbl_reload_success                      1 when that load succeeded, 0 when it was refused
  dnsbl_reload_last_success_timestamp_seconds
  dnsbl_reloads_total{result}               reloads since start, success / failure
  dnsbl_publish_info{generation,source,commit}  always 1: what is served and where it came from
  dnsbl_publish_timestamp_seconds           the served generation's published_at
  dnsbl_internal_errors_total               queries whose answering raised (each answered SERVFAIL)
  dnsbl_rrl_dropped_total                   UDP queries over the rate limit (--rrl-qps) left unanswered
  dnsbl_rrl_slipped_total                   ... answered with an empty truncated reply (--rrl-answer slip)
  dnsbl_rrl_code_answers_total              ... answered 127.255.255.x (--rrl-answer code)
  dnsbl_tcp_connections                     TCP connections open now
  dnsbl_tcp_max_connections                 the cap (--max-tcp): new clients wait while it is reached
  dnsbl_tcp_evicted_total                   connections closed to let a waiting client in (tcp.py)
  dnsbl_tcp_full_seconds_total              seconds spent at the cap (a new client waited meanwhile)
  dnsbl_key_queries_total{key,outcome}      keyed-zone queries per access key (serve --access-keys):
                                            answered, refused, over_quota; key "-" outcome unknown sums
                                            every query whose key is not in the file (no label per guess)
  dnsbl_key_refused_total{reason}           refused keyed queries summed over keys: expired, zone, network
  dnsbl_workers                             processes answering (serve --workers N; 1 without)
  dnsbl_worker_restarts_total               workers that died and were replaced
With `serve --watch` (WatchCollector, registered by the CLI through `collect_also`):
  dnsbl_watch_pull_failures_total           fetches/fast-forwards of the lists that failed
  dnsbl_watch_last_pull_success_timestamp_seconds  when the lists were last fetched (absent: never)
  dnsbl_watch_check_failures_total          watch checks that failed (e.g. the lists folder unreadable)
Under --workers N the parent serves this endpoint with every worker's figures summed
(figures.combine); process_* and python_* are the parent's own.
plus prometheus-client's process_*, python_gc_* and python_info.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from publisher.errors import ServerError
from publisher.server import httpd
from publisher.server.figures import Figures
from publisher.server.net import parse_listen
from publisher.server.stats import CATEGORIES, LATENCY_BOUNDS_NS

log = logging.getLogger("publisher.server")

PREFIX = "dnsbl"


class Observed(Protocol):
    """What the collector reads: app.Server, or workers.Supervisor (the sums over its workers)."""

    def figures(self) -> Figures: ...


class WatchObserved(Protocol):
    """What WatchCollector reads: publisher.publish.watch.Watcher (plain counters, read without locks)."""

    pull_failures: int
    last_pull_ok: float | None
    failures: int


class WatchCollector(Collector):
    """The git watcher's counters (`serve --watch`): a stuck pull shows as a rising counter."""

    def __init__(self, watcher: WatchObserved) -> None:
        self.watcher = watcher

    def collect(self) -> Iterator[Metric]:
        w = self.watcher
        yield CounterMetricFamily(
            f"{PREFIX}_watch_pull_failures", "Fetches or fast-forwards of the lists that failed (see the log)",
            value=w.pull_failures,
        )  # fmt: skip
        if w.last_pull_ok is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_watch_last_pull_success_timestamp_seconds", "When the lists were last fetched",
                value=w.last_pull_ok,
            )  # fmt: skip
        yield CounterMetricFamily(
            f"{PREFIX}_watch_check_failures", "Watch checks that failed (see the log)", value=w.failures
        )


#: Collectors every Exporter of this process registers besides the server's (collect_also).
_ALSO: list[Collector] = []


def collect_also(collector: Collector) -> None:
    """Export `collector` too from every Exporter started after this call in this process."""
    _ALSO.append(collector)


class ServerCollector(Collector):
    """Turns the server's figures into metric families on each scrape."""

    def __init__(self, server: Observed) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        fig = self.server.figures()  # one read: a reload during the scrape does not mix two sets
        yield self._queries(fig)
        yield self._latency(fig)
        yield from self._zones(fig)
        yield from self._reloads(fig)
        yield from self._publish(fig)
        yield CounterMetricFamily(
            f"{PREFIX}_internal_errors", "Queries whose answering raised an internal error, each answered SERVFAIL",
            value=fig.internal_errors,
        )  # fmt: skip
        yield from self._rrl(fig)
        yield from self._keys(fig)
        yield from self._tcp(fig)
        yield GaugeMetricFamily(
            f"{PREFIX}_workers", "Processes answering queries (serve --workers; 1 without)", value=fig.workers
        )
        yield CounterMetricFamily(
            f"{PREFIX}_worker_restarts", "Workers that died and were replaced by the parent", value=fig.restarts
        )

    def _queries(self, fig: Figures) -> Metric:
        fam = CounterMetricFamily(
            f"{PREFIX}_queries", "DNS queries answered, by zone and outcome (zone '-': no served zone)",
            labels=["zone", "result"],
        )  # fmt: skip
        for zone in sorted(set(fig.zones) | set(fig.queries)):
            row = fig.queries.get(zone, [0] * len(CATEGORIES))
            for name, value in zip(CATEGORIES, row):
                fam.add_metric([zone, name], value)
        return fam

    def _latency(self, fig: Figures) -> Metric:
        cumulative, running = [], 0
        for bound, count in zip([*LATENCY_BOUNDS_NS, None], fig.latency):
            running += count
            cumulative.append(("+Inf" if bound is None else repr(bound / 1e9), running))
        return HistogramMetricFamily(
            f"{PREFIX}_query_processing_seconds",
            "Time to answer a UDP query inside the server, averaged over each receive batch",
            buckets=cumulative, sum_value=fig.latency_ns / 1e9,
        )  # fmt: skip

    def _rrl(self, fig: Figures) -> Iterator[Metric]:
        dropped, slipped, coded = fig.rrl
        for name, text, count in (
            ("dropped", "UDP queries over the rate limit left unanswered", dropped),
            ("slipped", "UDP queries over the rate limit answered with an empty truncated reply", slipped),
            ("code_answers", "UDP queries over the rate limit answered with the --rrl-code address", coded),
        ):
            yield CounterMetricFamily(f"{PREFIX}_rrl_{name}", text, value=count)

    def _keys(self, fig: Figures) -> Iterator[Metric]:
        """Per access key since start: one series per key and outcome, so at most 3 per key in the
        file plus one for every unknown key together; none at all without keys."""
        if not fig.keys_total and not fig.keys_unknown_total:
            return
        fam = CounterMetricFamily(
            f"{PREFIX}_key_queries", "Queries of keyed zones by access key and outcome (key '-': keys not in the file)",
            labels=["key", "outcome"],
        )  # fmt: skip
        refused = [0, 0, 0]
        for name in sorted(fig.keys_total):
            answered, expired, zone, network, over = fig.keys_total[name]
            fam.add_metric([name, "answered"], answered)
            fam.add_metric([name, "refused"], expired + zone + network)
            fam.add_metric([name, "over_quota"], over)
            refused[0] += expired
            refused[1] += zone
            refused[2] += network
        fam.add_metric(["-", "unknown"], fig.keys_unknown_total)
        yield fam
        why = CounterMetricFamily(
            f"{PREFIX}_key_refused", "Keyed queries refused with a known key, by reason (summed over keys)",
            labels=["reason"],
        )  # fmt: skip
        for reason, value in zip(("expired", "zone", "network"), refused):
            why.add_metric([reason], value)
        yield why

    def _tcp(self, fig: Figures) -> Iterator[Metric]:
        yield GaugeMetricFamily(f"{PREFIX}_tcp_connections", "TCP connections open", value=fig.tcp_active)
        yield GaugeMetricFamily(
            f"{PREFIX}_tcp_max_connections", "The TCP connection cap: new clients wait in the listen backlog at it",
            value=fig.tcp_max,
        )  # fmt: skip
        yield CounterMetricFamily(
            f"{PREFIX}_tcp_evicted", "TCP connections closed to let a client waiting at the cap in",
            value=fig.tcp_evicted,
        )  # fmt: skip
        yield CounterMetricFamily(
            f"{PREFIX}_tcp_full_seconds", "Seconds at the TCP connection cap (new clients waited in the backlog)",
            value=fig.tcp_full_seconds,
        )  # fmt: skip

    def _zones(self, fig: Figures) -> Iterator[Metric]:
        serial = GaugeMetricFamily(f"{PREFIX}_zone_serial", "SOA serial being served", labels=["zone"])
        entries = GaugeMetricFamily(f"{PREFIX}_zone_entries", "Listing entries in the served zone", labels=["zone"])
        expiring = GaugeMetricFamily(
            f"{PREFIX}_zone_entries_expiring_7d",
            "Entries whose expires falls within 7 days of the served generation's publish", labels=["zone"],
        )  # fmt: skip
        for name in sorted(fig.zones):
            zone = fig.zones[name]
            serial.add_metric([name], zone.serial)
            if zone.listings is not None:
                entries.add_metric([name], zone.listings)
            if zone.expiring_7d is not None:
                expiring.add_metric([name], zone.expiring_7d)
        yield from (serial, entries, expiring)

    def _reloads(self, fig: Figures) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            f"{PREFIX}_reload_timestamp_seconds", "When the zones were last loaded, or a reload last tried",
            value=fig.last_reload,
        )  # fmt: skip
        yield GaugeMetricFamily(
            f"{PREFIX}_reload_success", "1 when the last load succeeded, 0 when it was refused",
            value=int(fig.last_reload_ok),
        )  # fmt: skip
        yield GaugeMetricFamily(
            f"{PREFIX}_reload_last_success_timestamp_seconds", "When the served zones were loaded",
            value=fig.last_good_reload,
        )  # fmt: skip
        fam = CounterMetricFamily(f"{PREFIX}_reloads", "Reloads since start, by result", labels=["result"])
        for result in ("success", "failure"):
            fam.add_metric([result], fig.reloads.get(result, 0))
        yield fam

    def _publish(self, fig: Figures) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            f"{PREFIX}_publish_info", "The served generation and the commit it was published from",
            labels=["generation", "source", "commit"],
        )  # fmt: skip
        info.add_metric([fig.generation, fig.source_kind, fig.commit], 1)
        yield info
        if fig.published_at is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_publish_timestamp_seconds", "When the served generation was published",
                value=fig.published_at,
            )  # fmt: skip


class Exporter:
    """The /metrics HTTP endpoint: an accept loop on its own daemon thread (httpd.py bounds it)."""

    def __init__(
        self,
        listen: str,
        server: Observed,
        *,
        timeout: float = httpd.TIMEOUT,
        max_connections: int = httpd.MAX_CONNECTIONS,
    ) -> None:
        ep = parse_listen(listen)
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.registry.register(ServerCollector(server))
        for collector in _ALSO:
            self.registry.register(collector)
        server_class = type("_Http", (httpd.BoundedServer,), {"address_family": ep.family})
        try:
            self.httpd: httpd.BoundedServer = server_class(
                (ep.host, ep.port), timeout=timeout, max_connections=max_connections
            )
        except OSError as exc:
            raise ServerError(f"cannot serve metrics on {ep}: {exc.strerror or exc}") from exc
        self.httpd.set_app(make_wsgi_app(self.registry))
        host = ep.host
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{self.httpd.server_port}/metrics"
        # Polled this often for connections past their deadline (and for stop()).
        self.poll = min(0.5, timeout / 4)
        self.thread = threading.Thread(target=self._run, name="metrics", daemon=True)

    def _run(self) -> None:
        try:
            self.httpd.serve_forever(self.poll)
        except Exception:
            # Only the metrics stop: DNS answering does not depend on this thread.
            log.exception("the metrics endpoint %s stopped; DNS service continues without it", self.url)

    def start(self) -> None:
        try:
            self.thread.start()
        except RuntimeError as exc:
            self.httpd.server_close()
            raise ServerError(f"cannot start the metrics thread: {exc}") from exc
        log.info("metrics on %s", self.url)

    def stop(self) -> None:
        if self.thread.is_alive():
            self.httpd.shutdown()
        self.httpd.server_close()


def start(
    listen: str, server: Observed, *, timeout: float = httpd.TIMEOUT, max_connections: int = httpd.MAX_CONNECTIONS
) -> Exporter:
    """Serve the metrics of `server` on `listen` (ADDR:PORT, [v6]:PORT; port 0 picks one).

    Each connection gets `timeout` seconds for its whole exchange; at most `max_connections`
    are open at once, the oldest closed to make room (httpd.py).
    """
    exporter = Exporter(listen, server, timeout=timeout, max_connections=max_connections)
    exporter.start()
    return exporter


__all__ = ["Exporter", "ServerCollector", "WatchCollector", "collect_also", "start"]
