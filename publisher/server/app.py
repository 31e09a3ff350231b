"""The server process: load, bind, serve, reload, report, stop.

`serve()` (the CLI's entry) -> `Server`. The server holds the current `ZoneSet` in one
attribute that every responder reads per query; `reload()` builds a new set (snapshot
sha256 checked by publisher.publish.manifest.load_published) and replaces it with a single
assignment, so queries in flight finish on the old set. A set that fails to load is
refused and logged while the old one keeps serving. The main thread waits on signals
(SIGHUP reload, SIGUSR1 counters, SIGTERM/SIGINT stop) through a wake-up socket, and
polls zones/manifest.json and the zones/current link twice a second for publishes.
A reload that brings a new serial keeps the difference for IXFR before the swap (ixfr.py);
at start-up a background thread rebuilds those differences from the older generations
still in zones/, then sends the start-up NOTIFYs.
Nothing raised by those jobs (a reload, a NOTIFY thread, the stats report) leaves the
loop: it is logged, and the serving threads keep answering.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.errors import PublisherError, ServerError
from publisher.model import DEFAULT_LISTEN
from publisher.publish.manifest import CURRENT, MANIFEST, load_published
from publisher.server import ixfr, keys, net, notify, tsig
from publisher.server.core import Responder
from publisher.server.figures import Figures, of_server
from publisher.server.options import DEFAULT_IXFR_KEEP
from publisher.server.ratelog import Throttle, brief
from publisher.server.rrl import RateLimiter, RrlSettings
from publisher.server.stats import Stats, key_report
from publisher.server.tcp import TcpServer
from publisher.server.wakeup import Requests
from publisher.server.zoneset import ZoneSet

if TYPE_CHECKING:
    from publisher.server.metrics import Exporter  # prometheus-client is imported only under --metrics

log = logging.getLogger("publisher.server")

POLL_SECONDS = 0.5

Loader = Callable[[Path], ZoneSet]


def load_zoneset(zones_dir: Path) -> ZoneSet:
    """The published zones of `zones_dir` as a ZoneSet (raises ArtifactError/SnapshotError)."""
    return ZoneSet.from_published(load_published(zones_dir))


def _check_keys(zoneset: ZoneSet) -> None:
    """Log every secondary whose tsig_key, and every allow_transfer subscriber key, that is not
    in the key file: it is refused, not served unsigned."""
    for sz in zoneset.zones.values():
        for sec in sz.settings.secondaries:
            if sec.tsig_key and (zoneset.tsig is None or zoneset.tsig.get(sec.tsig_key) is None):
                log.error(
                    "zone %s: secondary %s names tsig_key %r, which is not in the --tsig-keys file: "
                    "its transfers and NOTIFYs are refused until the key is there",
                    sz.name, sec.address, sec.tsig_key,
                )  # fmt: skip
        if sz.settings.keyed and zoneset.access_keys is None:
            log.warning(
                "zone %s requires keys (keys: required) but the server has no --access-keys file: every "
                "query below its apex answers 127.255.255.252 (key unknown) until one is given",
                sz.name,
            )
        for key in sz.settings.transfer_keys:
            if zoneset.tsig is None or zoneset.tsig.get(key) is None:
                log.warning(
                    "zone %s: allow_transfer names subscriber key %r, which is not in the --tsig-keys file: "
                    "its transfers are refused until the key is there",
                    sz.name, key,
                )  # fmt: skip


class Server(Requests):
    """One serving process. `zones` is the reference swapped on reload."""

    def __init__(
        self,
        zones_dir: Path | None,
        listen: list[str] | None = None,
        *,
        log_queries: bool = False,
        watch_manifest: bool = True,
        tcp_idle_timeout: float = 10.0,
        max_tcp_connections: int = 128,
        zoneset: ZoneSet | None = None,
        loader: Loader = load_zoneset,
        send_notify: bool = True,
        batch: bool = True,
        metrics: str | None = None,
        tsig_keys: Path | None = None,
        access_keys: Path | None = None,
        rrl: RrlSettings | None = None,
        ixfr_keep: int = DEFAULT_IXFR_KEEP,
        reuse_port: bool = False,
        timing: bool | None = None,
        notified: Mapping[str, int] | None = None,
    ) -> None:
        self.zones_dir = zones_dir
        self.ixfr_keep = ixfr_keep  # IXFR differences kept per zone; 0: every transfer is an AXFR
        # Set by workers.py for each worker process of `serve --workers N`: bind with
        # SO_REUSEPORT; time queries for the parent's --metrics; at start, NOTIFY only the
        # zones whose serial differs from `notified` (what the previous worker 0 announced).
        self.reuse_port = reuse_port
        self.timing = bool(metrics) if timing is None else timing
        self.notified = notified
        self.tsig_keys = tsig_keys  # the key file (outside git), re-read on every reload
        # The subscribers' key file of keyed zones: re-read on every reload and when it changes;
        # a bad one is refused at start (KeyFileError) and on reload keeps the keys in force.
        self.access_keys = access_keys
        self.key_usage = keys.KeyUsage()  # per-key counters and quotas, kept across reloads
        self._access: keys.AccessKeys | None = None
        self._access_signature: tuple[int, ...] | None = None
        self.rrl = rrl  # response-rate limiting for UDP; None: off
        self.loader = loader
        self.log_queries = log_queries
        self.watch_manifest = watch_manifest and zones_dir is not None
        self.tcp_idle_timeout = tcp_idle_timeout
        self.max_tcp_connections = max_tcp_connections
        self.send_notify = send_notify
        self.batch = batch
        self.metrics = metrics  # ADDR:PORT of the Prometheus endpoint, None: no metrics at all
        self._exporter: Exporter | None = None
        self.stats = Stats()
        #: Internal errors while answering, shared by every responder: counted, rate-limited in the log.
        self.internal_errors = Throttle(log)
        #: Failures of the main loop's own jobs (reload, stats): logged once a minute at most.
        self._loop_errors = Throttle(log, 60.0)
        self._reload_lock = threading.Lock()
        self._signature = self._manifest_signature()
        if zoneset is None:
            if zones_dir is None:
                raise ServerError("no zones: give a zones folder or a zone set")
            try:
                zoneset = loader(zones_dir)
            except PublisherError as exc:
                raise ServerError(f"cannot load the zones: {exc}") from exc
        self._read_access_keys(zoneset, at_start=True)
        zoneset = self._with_keys(zoneset)
        self.zones: ZoneSet = zoneset
        # For the metrics: (when, succeeded) of the last load or reload attempt, and counts.
        self.last_reload: tuple[float, bool] = (time.time(), True)
        self.last_good_reload = self.last_reload[0]
        self.reloads = {"success": 0, "failure": 0}
        _check_keys(zoneset)
        wanted = listen or list(zoneset.listen) or list(DEFAULT_LISTEN)
        self.endpoints = [net.parse_listen(text) for text in wanted]
        self.bound: list[net.Endpoint] = []
        self._udp: list[net.UdpThread] = []
        self._tcp: TcpServer | None = None
        self._init_requests()

    # --- life cycle ----------------------------------------------------------------

    def start(self) -> list[net.Endpoint]:
        def make() -> Responder:
            latency = self.stats.new_latency() if self.timing else None
            limiter = RateLimiter(self.rrl, counts=self.stats.new_rrl()) if self.rrl is not None else None
            return Responder(
                self, self.stats.new(), log_queries=self.log_queries, latency=latency, limiter=limiter,
                errors=self.internal_errors,
            )  # fmt: skip

        if self.metrics:
            try:
                from publisher.server import metrics  # imports prometheus-client: only when asked for
            except ImportError as exc:
                raise ServerError(f"--metrics needs prometheus-client ({exc}): pip install prometheus-client") from exc
            self._exporter = metrics.start(self.metrics, self)
        self._udp, self._tcp, self.bound = net.start_all(
            self.endpoints,
            make,
            idle_timeout=self.tcp_idle_timeout,
            max_connections=self.max_tcp_connections,
            batch=self.batch,
            reuse_port=self.reuse_port,
        )
        self.stats.tcp = self._tcp  # for the metrics
        names = ", ".join(sorted(self.zones.zones))
        log.info("serving %d zones on %s (%s)", len(self.zones.zones), ", ".join(str(ep) for ep in self.bound), names)
        if self.zones_dir is not None and self.ixfr_keep > 0:
            threading.Thread(target=self._seed_ixfr, name="ixfr-seed", daemon=True).start()
        else:
            self._notify_at_start()
        return self.bound

    def _install_seed(self) -> None:
        assert self.zones_dir is not None
        current = self.zones
        self.zones = replace(current, ixfr=ixfr.seed(self.zones_dir, current, self.ixfr_keep))

    def _seed_ixfr(self) -> None:
        """Rebuild the IXFR differences from the older generations on disk, then NOTIFY."""
        assert self.zones_dir is not None
        with self._reload_lock:  # a reload waits: it extends the journal this installs
            self._guarded("reading the IXFR history", self._install_seed)
        self._notify_at_start()

    def _notify_at_start(self) -> None:
        """NOTIFY every zone; a replaced worker 0 only those whose serial was not announced yet."""
        if self.send_notify:
            known = self.notified
            fresh = [sz for name, sz in self.zones.zones.items() if known is None or known.get(name) != sz.serial]
            notify.notify_in_background(fresh, self.zones.tsig)

    @property
    def metrics_url(self) -> str | None:
        """http://ADDR:PORT/metrics once started with `metrics`, else None."""
        return self._exporter.url if self._exporter is not None else None

    def stop(self) -> None:
        for worker in self._udp:
            worker.stop()
        if self._tcp is not None:
            self._tcp.stop()
        self._udp, self._tcp = [], None
        if self._exporter is not None:
            self._exporter.stop()
            self._exporter = None
        self.log_stats()

    def take_signals(self) -> None:
        """SIGHUP reload, SIGUSR1 counters, SIGTERM/SIGINT stop, as requests to run_forever().

        serve() calls it before start(), so that a SIGTERM while loading or binding is a
        clean stop (exit 0), not the default kill; run_forever() calls it too.
        """
        self._signals()

    def run_forever(self) -> None:
        """Serve until SIGTERM/SIGINT or request('stop'); handles reload and stats requests."""
        self.take_signals()
        while "stop" not in self._flags:
            try:
                select.select([self._wake_r], [], [], POLL_SECONDS)
                while self._wake_r.recv(4096):
                    pass
            except (BlockingIOError, InterruptedError):
                pass
            flags, self._flags = self._flags, set()
            if "stop" in flags:
                self._flags.add("stop")
                break
            if "stats" in flags:
                self._guarded("the stats report", self.log_stats)
            if "reload" in flags:
                log.info("reload requested")
                self._guarded("reload", self.reload)
            elif self.watch_manifest:
                self._guarded("watching zones/", self._reload_if_published)
            if self.access_keys is not None:
                self._guarded("watching the access key file", self._reload_access_keys_if_changed)
                self.key_usage.tick()  # a new UTC day resets the daily quotas (keys.AccessKeys.quick reads no clock)
        log.info("stopping")

    def _reload_if_published(self) -> None:
        if self._manifest_signature() != self._signature:
            log.info("zones/manifest.json changed: reloading")
            self.reload()

    def _guarded(self, what: str, job: Callable[[], object]) -> None:
        """Run one job of the main loop; whatever it raises is logged, never raised: DNS goes on."""
        try:
            job()
        except Exception as exc:  # noqa: BLE001 - the serving threads must outlive any bug here
            self._loop_errors.event(
                logging.ERROR, "%s failed: %s; still serving generation %s",
                what, brief(exc), self.zones.generation or "?", exc=exc,
            )  # fmt: skip

    # --- reload ----------------------------------------------------------------------

    def _manifest_signature(self) -> tuple[object, ...]:
        if self.zones_dir is None:
            return ()
        parts: list[object] = []
        try:
            parts.append(os.readlink(self.zones_dir / CURRENT))
        except OSError:
            parts.append(None)
        try:
            st = os.stat(self.zones_dir / MANIFEST)
            parts.append((st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size))
        except OSError:
            parts.append(None)
        return tuple(parts)

    def reload(self) -> bool:
        """Load the zones again and swap them in; False (old zones kept) when loading fails."""
        if self.zones_dir is None:
            return False
        with self._reload_lock:
            # Taken before loading: a publish landing during the load is noticed next poll.
            signature = self._manifest_signature()
            old = self.zones
            try:
                new = self.loader(self.zones_dir)
                self._read_access_keys(new)
                new = self._with_keys(new)
            except PublisherError as exc:
                self._signature = signature
                self._note_reload(False)
                log.error("reload refused, still serving generation %s: %s", old.generation or "?", exc)
                return False
            except Exception:
                self._signature = signature
                self._note_reload(False)
                log.exception("reload failed, still serving generation %s", old.generation or "?")
                return False
            # The differences before the swap: a secondary asking right after the NOTIFY finds them.
            new = replace(new, ixfr=ixfr.extend(old, new, self.ixfr_keep))
            self.zones = new  # the swap: one reference assignment
            self._signature = signature
            self._note_reload(True)
            _check_keys(new)
        changed = [sz for name, sz in new.zones.items() if name not in old.zones or old.zones[name].serial != sz.serial]
        for name in sorted(set(old.zones) - set(new.zones)):
            log.info("zone %s is no longer served", name)
        for sz in changed:
            log.info("zone %s now serial %d", sz.name, sz.serial)
        settings = sorted(
            name
            for name, sz in new.zones.items()
            if name in old.zones and replace(old.zones[name].settings, serial=None) != replace(sz.settings, serial=None)
        )
        also = f"; who may query or transfer changed: {', '.join(settings)}" if settings else ""
        also += "; the server-wide acl changed" if old.acl != new.acl else ""
        log.info(
            "reloaded generation %s: %d zones, %d changed%s", new.generation or "?", len(new.zones), len(changed), also
        )
        if set(new.listen) and new.listen != old.listen:
            log.warning("the listen addresses changed in the manifest; restart the server to use them")
        if self.send_notify:
            notify.notify_in_background(changed, new.tsig)
        return True

    def _with_keys(self, zoneset: ZoneSet) -> ZoneSet:
        """The zone set with the TSIG keys of `--tsig-keys` (read now: a reload takes new keys)
        and the access keys last read from `--access-keys`."""
        if self.tsig_keys is not None:
            zoneset = replace(zoneset, tsig=tsig.load_keys(self.tsig_keys))
        if self.access_keys is not None:
            zoneset = replace(zoneset, access_keys=self._access)
        return zoneset

    # --- the access key file -----------------------------------------------------------

    def _access_keys_signature(self) -> tuple[int, ...] | None:
        assert self.access_keys is not None
        try:
            st = os.stat(self.access_keys)
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)  # ctime: a chmod too

    def _read_access_keys(self, zoneset: ZoneSet, *, at_start: bool = False) -> None:
        """Read --access-keys into self._access. A bad file raises at start (nothing is served);
        on reload its problems are logged and the keys in force stay."""
        path = self.access_keys
        if path is None:
            return
        self._access_signature = self._access_keys_signature()  # before reading: a change meanwhile is seen
        try:
            new = keys.load(path, self.key_usage)
        except keys.KeyFileError as exc:
            if at_start:
                raise
            for line in exc.log_lines():
                log.error("access keys: %s", line)
            kept = len(self._access) if self._access is not None else 0
            log.error("access keys: %s refused; the %d keys loaded before stay in force", path, kept)
            return
        self._access = new
        self.key_usage.keep_only(new.names)
        log.info("access keys: %d key%s loaded from %s", len(new), "" if len(new) == 1 else "s", path)
        served = {name: sz.settings.keyed for name, sz in zoneset.zones.items()}
        for line in keys.unknown_zones(new, served):
            log.warning("access keys: %s", line)

    def _reload_access_keys_if_changed(self) -> None:
        if self._access_keys_signature() == self._access_signature:
            return
        log.info("access keys: %s changed: reading it", self.access_keys)
        with self._reload_lock:
            self._read_access_keys(self.zones)
            self.zones = replace(self.zones, access_keys=self._access)

    def _note_reload(self, ok: bool) -> None:
        self.last_reload = (time.time(), ok)
        if ok:
            self.last_good_reload = self.last_reload[0]
        self.reloads["success" if ok else "failure"] += 1

    def figures(self) -> Figures:
        """Counters and gauges now, for the metrics and for the parent of `--workers`."""
        return of_server(self)

    def log_stats(self) -> None:
        serials = {name: sz.serial for name, sz in self.zones.zones.items()}
        for line in self.stats.report(serials):
            log.info("%s", line)
        if self.access_keys is not None:
            log.info("stats keys: %d in force from %s", len(self._access or ()), self.access_keys)
            _, today, total, unknown_today, unknown_total = self.key_usage.snapshot()
            for line in key_report(today, total, unknown_today, unknown_total):
                log.info("%s", line)
        if self.internal_errors.count:  # only then: bench/fuzz_net.py fails on any "internal error" line
            log.info("stats internal errors %d (each answered SERVFAIL)", self.internal_errors.count)
