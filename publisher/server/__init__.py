"""The authoritative DNS server for the published zones: `serve()` runs it in the foreground.

It serves what zones/current holds (read through publisher.publish.manifest) and reloads
when a publish replaces it. The answers it gives, and what each module here does, are in
docs/design.md ("Answer semantics" and the module table).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from publisher.publish import pidfile
from publisher.server.app import Server
from publisher.server.options import DEFAULT_IXFR_KEEP
from publisher.server.rrl import RrlSettings
from publisher.server.zoneset import ServedZone, ZoneSet, ZoneSettings

__all__ = ["Server", "ServedZone", "ZoneSet", "ZoneSettings", "serve"]

log = logging.getLogger("publisher.server")


def _ensure_logging() -> None:
    """Log to stderr unless the caller (the CLI) already set logging up."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s"
        )


def serve(
    zones_dir: Path,
    listen: list[str] | None,
    *,
    log_queries: bool = False,
    watch_manifest: bool = True,
    tcp_idle_timeout: float = 10.0,
    max_tcp_connections: int = 128,
    batch: bool = True,
    metrics: str | None = None,
    tsig_keys: Path | None = None,
    access_keys: Path | None = None,
    rrl: RrlSettings | None = None,
    ixfr_keep: int = DEFAULT_IXFR_KEEP,
    workers: int = 1,
) -> int:
    """Serve the zones of `zones_dir` in the foreground until SIGTERM/SIGINT; returns 0.

    `listen`: ADDR:PORT / [v6]:PORT strings; None takes the manifest's, else
    127.0.0.1:5353 and [::1]:5353. Port 0 picks a free port, logged as
    "listening udp ADDR:PORT". `metrics`: ADDR:PORT for Prometheus (GET /metrics), logged as
    "metrics on http://ADDR:PORT/metrics"; None loads no metrics code at all. `tsig_keys`:
    the TSIG key file for AXFR/NOTIFY (tsig.py); `access_keys`: the subscribers' key file of
    keyed zones (keys.py); `rrl`: UDP response-rate limiting (rrl.py).
    `workers` > 1: that many processes on the same ports, started and watched by this
    one (publisher.server.workers). Raises ServerError when it cannot start.
    """
    _ensure_logging()
    if workers > 1:
        from publisher.server.worker import Serving
        from publisher.server.workers import Supervisor

        supervisor = Supervisor(
            zones_dir, listen, workers, metrics=metrics,
            serving=Serving(
                log_queries=log_queries, watch_manifest=watch_manifest, tcp_idle_timeout=tcp_idle_timeout,
                max_tcp_connections=max_tcp_connections, batch=batch, tsig_keys=tsig_keys,
                access_keys=access_keys, rrl=rrl,
                ixfr_keep=ixfr_keep,
            ),
        )  # fmt: skip
        supervisor.start()
        try:
            _claim_pid_file(zones_dir)
            supervisor.run_forever()
        finally:
            pidfile.release(zones_dir)
            supervisor.stop()
        return 0
    server = Server(
        zones_dir,
        listen,
        log_queries=log_queries,
        watch_manifest=watch_manifest,
        tcp_idle_timeout=tcp_idle_timeout,
        max_tcp_connections=max_tcp_connections,
        batch=batch,
        metrics=metrics,
        tsig_keys=tsig_keys,
        access_keys=access_keys,
        rrl=rrl,
        ixfr_keep=ixfr_keep,
    )
    server.take_signals()
    server.start()
    try:
        _claim_pid_file(zones_dir)
        server.run_forever()
    finally:
        pidfile.release(zones_dir)
        server.stop()
    return 0


def _claim_pid_file(zones_dir: Path) -> None:
    """zones/server.pid names this process (the parent of the workers) while it serves."""
    log.info("%s", pidfile.claim(zones_dir))
