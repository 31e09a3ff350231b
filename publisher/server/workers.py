"""`serve --workers N`: N processes answering on the same ports, started and watched by this one.

Inside the server: publisher.server.serve() runs a `Supervisor` instead of an app.Server
when N > 1. The parent serves no DNS itself: it probes each listen address once
(net.probe: a port held by anything fails there with the usual error, and port 0 is
resolved), then starts N `python -m publisher.server.worker` processes (worker.py); each
loads zones/current and binds the resolved ports with SO_REUSEPORT, and the kernel spreads
datagrams and connections over them by source address and port.

- Reload: each worker polls the manifest on its own; SIGHUP to the parent (what publish
  sends to the pid in zones/server.pid) is forwarded to every worker.
- NOTIFY: worker 0 alone. A replacement worker 0 is told the serials its predecessor
  had loaded (and so announced), and notifies only zones whose serial differs.
- Restart: a worker that dies is replaced and both events are logged. A slot is restarted
  at most once a second; while replacements keep dying within HEALTHY seconds the wait
  doubles up to RESTART_MAX, and a worker that served HEALTHY seconds resets it.
- Counters: the parent asks every worker for its figures over its socket pair (at each
  metrics scrape, on SIGUSR1, and every REFRESH seconds) and adds them up
  (figures.combine); a dead worker's last report stays in the sums, so counters never go
  back (what it counted after that report is lost with it).
- Daily quotas of access keys (keys.py): after each collection the parent sends every
  worker what the other workers (and dead ones) answered today per key, so a key's quota
  holds across workers at most about REFRESH seconds late. The parent reads the key file once at start
  to refuse a bad one before any worker starts; the workers read it on their own after.
- Stop: SIGTERM/SIGINT stop every worker (SIGKILL after STOP_TIMEOUT), then the parent
  exits 0. A worker whose parent dies stops too (end of file on its socket).
"""

from __future__ import annotations

import logging
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.errors import PublisherError, ServerError
from publisher.model import DEFAULT_LISTEN
from publisher.publish.manifest import read_manifest
from publisher.server import keys, net, stats
from publisher.server.figures import Figures, combine, counters_only
from publisher.server.ratelog import Throttle
from publisher.server.wakeup import Requests
from publisher.server.worker import Channel, Serving, spec

if TYPE_CHECKING:
    from publisher.server.metrics import Exporter

log = logging.getLogger("publisher.server")

POLL_SECONDS = 0.5
RESTART_MIN = 1.0  # seconds between two starts of one slot, at least
RESTART_MAX = 30.0
HEALTHY = 10.0  # a worker that lived this long died of something else than a crash loop
START_TIMEOUT = 300.0  # every worker loads the zones: large ones take a while
STOP_TIMEOUT = 10.0
ASK_TIMEOUT = 2.0
REFRESH = 1.0


@dataclass(eq=False)
class Slot:
    """One worker position: its current process, and what it last reported."""

    index: int
    proc: subprocess.Popen[bytes] | None = None
    chan: Channel | None = None
    pid: int = 0
    ready: bool = False
    started: float = 0.0  # time.monotonic() of the last start
    backoff: float = RESTART_MIN
    due: float | None = None  # when the replacement starts
    last: Figures | None = None


def _how(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class Supervisor(Requests):
    """The parent process of `serve --workers N`."""

    def __init__(
        self, zones_dir: Path, listen: list[str] | None, workers: int, *, metrics: str | None, serving: Serving
    ) -> None:
        self.zones_dir = zones_dir
        self.wanted = listen
        self.metrics = metrics
        self.serving = serving
        self.slots = [Slot(i) for i in range(workers)]
        self.listen: list[str] = []  # the probed addresses, port 0 resolved
        self.retired = Figures(workers=0)  # the counters of workers that died
        self.restarts = 0
        self.notified: dict[str, int] | None = None  # serials worker 0 loaded, so announced
        self._exporter: Exporter | None = None
        self._lock = threading.RLock()
        self._seq = 0
        self._ask_errors = Throttle(log, 60.0)
        self._init_requests()

    # --- life cycle ----------------------------------------------------------------

    def start(self) -> None:
        wanted = self.wanted
        if not wanted:
            try:
                manifest = read_manifest(self.zones_dir)
            except PublisherError:
                manifest = None  # the workers say what is wrong with it
            wanted = list(manifest.listen or ()) if manifest is not None else []
        access = self.serving["access_keys"]
        if access is not None:
            keys.load(access)  # a bad key file stops here (exit 2), before any worker starts
        self._take_signals()
        self.listen = [str(ep) for ep in net.probe([net.parse_listen(t) for t in wanted or DEFAULT_LISTEN])]
        now = time.monotonic()
        try:
            for slot in self.slots:
                self._spawn(slot, now)
        except ServerError:
            self.stop(quiet=True)  # the ones already started
            raise
        deadline = now + START_TIMEOUT
        while not all(slot.ready for slot in self.slots):
            if "stop" in self._flags:
                return  # SIGTERM while loading: run_forever() returns at once, serve() stops the workers
            for slot in self.slots:
                if slot.proc is not None and slot.proc.poll() is not None and not slot.ready:
                    self.stop(quiet=True)
                    raise ServerError(
                        f"worker {slot.index} {_how(slot.proc.returncode)} before serving (its error is logged above)"
                    )
            if time.monotonic() > deadline:
                self.stop(quiet=True)
                raise ServerError(f"the workers did not start serving within {START_TIMEOUT:.0f} s")
            self._read_ready(POLL_SECONDS)
        if self.metrics:
            try:
                from publisher.server import metrics  # imports prometheus-client: only when asked for
            except ImportError as exc:
                self.stop(quiet=True)
                raise ServerError(f"--metrics needs prometheus-client ({exc}): pip install prometheus-client") from exc
            try:
                self._exporter = metrics.start(self.metrics, self)
            except ServerError:
                self.stop(quiet=True)
                raise
        pids = ", ".join(str(slot.pid) for slot in self.slots)
        log.info("all %d workers serving on %s (pids %s)", len(self.slots), ", ".join(self.listen), pids)

    def _spawn(self, slot: Slot, now: float) -> None:
        """Start the slot's worker and send it its settings (it binds and loads on its own)."""
        parent_end, child_end = socket.socketpair()
        cmd = [sys.executable, "-m", "publisher.server.worker", "--slot", str(slot.index)]
        try:
            # Its own process group: a ^C at the terminal reaches the parent, which stops the workers in order.
            proc = subprocess.Popen(
                [*cmd, "--control-fd", str(child_end.fileno())],
                pass_fds=(child_end.fileno(),),
                stdin=subprocess.DEVNULL,
                process_group=0,
            )
        except OSError as exc:
            parent_end.close()
            raise ServerError(f"cannot start worker {slot.index}: {exc}") from exc
        finally:
            child_end.close()
        chan = Channel(parent_end)
        first = slot.index == 0
        settings = spec(
            self.zones_dir, self.listen, self.serving, slot=slot.index, notify=first,
            notified=self.notified if first else None, timing=bool(self.metrics),
        )  # fmt: skip
        try:
            chan.send(settings)
        except OSError:
            pass  # it died at once: reaped like any other death
        slot.proc, slot.chan, slot.pid, slot.ready, slot.started, slot.due = proc, chan, proc.pid, False, now, None
        slot.last = None

    def _take_signals(self) -> None:
        """From the start on: a SIGTERM while the workers load is a stop request, not a kill."""
        self._signals({signal.SIGCHLD: "reap"})

    def run_forever(self) -> None:
        """Watch the workers until SIGTERM/SIGINT; forward SIGHUP, sum counters on SIGUSR1."""
        self._take_signals()
        refreshed = time.monotonic()
        while True:
            self._read_ready(POLL_SECONDS)
            flags, self._flags = self._flags, set()
            if "stop" in flags:
                break
            if "reload" in flags:
                pids = [slot.pid for slot in self.slots if self._alive(slot)]
                log.info("reload requested: signalling %d workers", len(pids))
                self._signal_all(signal.SIGHUP)
            if "stats" in flags:
                self.log_stats()
            self._reap()
            self._restart_due()
            if time.monotonic() - refreshed >= REFRESH:
                refreshed = time.monotonic()
                self._refresh()
        log.info("stopping %d workers", sum(1 for slot in self.slots if self._alive(slot)))

    def stop(self, *, quiet: bool = False) -> None:
        """Stop every worker (SIGTERM, then SIGKILL after STOP_TIMEOUT) and the metrics endpoint."""
        if not quiet:
            self.log_stats()
        if self._exporter is not None:
            self._exporter.stop()
            self._exporter = None
        with self._lock:
            self._signal_all(signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT
            for slot in self.slots:
                if slot.proc is None:
                    continue
                try:
                    slot.proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.warning("worker %d (pid %d) did not stop: killing it", slot.index, slot.pid)
                    slot.proc.kill()
                    slot.proc.wait()
                if slot.chan is not None:
                    slot.chan.close()
                slot.proc, slot.chan, slot.ready, slot.due = None, None, False, None

    # --- the workers -----------------------------------------------------------------

    @staticmethod
    def _alive(slot: Slot) -> bool:
        return slot.proc is not None and slot.proc.poll() is None

    def _signal_all(self, sig: signal.Signals) -> None:
        for slot in self.slots:
            if slot.proc is not None and slot.proc.poll() is None:
                try:
                    slot.proc.send_signal(sig)
                except OSError:
                    pass

    def _read_ready(self, timeout: float) -> None:
        """Wait up to `timeout` for a wake-up or a starting worker's "serving" line; take those in."""
        with self._lock:
            starting = {slot.chan.sock: slot for slot in self.slots if slot.chan is not None and not slot.ready}
        try:
            readable, _, _ = select.select([self._wake_r, *starting], [], [], timeout)
            while self._wake_r in readable and self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            readable = []
        for sock in readable:
            slot = starting.get(sock)
            if slot is None:
                continue
            with self._lock:
                if slot.ready or slot.chan is None or slot.chan.sock is not sock:
                    continue
                try:
                    msg = slot.chan.recv(ASK_TIMEOUT)
                    if msg is None:
                        continue  # it exited: _reap will tell
                    slot.last = Figures.from_json(msg["figures"])
                except (OSError, ValueError, KeyError) as exc:
                    log.warning("worker %d: unreadable start message (%s)", slot.index, exc)
                    continue
                slot.ready = True
                if slot.index == 0:
                    self.notified = slot.last.serials
                log.info("worker %d serving (pid %d, generation %s)", slot.index, slot.pid, slot.last.generation)

    def _reap(self) -> None:
        now = time.monotonic()
        with self._lock:
            for slot in self.slots:
                if slot.proc is None or slot.proc.poll() is None:
                    continue
                lived = now - slot.started
                if lived >= HEALTHY:
                    slot.backoff = RESTART_MIN
                slot.due = max(now, slot.started + slot.backoff)
                if lived < HEALTHY:
                    slot.backoff = min(slot.backoff * 2, RESTART_MAX)
                log.warning(
                    "worker %d (pid %d) %s after %.1f s; starting a replacement in %.1f s",
                    slot.index, slot.pid, _how(slot.proc.returncode), lived, slot.due - now,
                )  # fmt: skip
                if slot.last is not None:
                    self.retired = combine([counters_only(slot.last)], self.retired)
                if slot.chan is not None:
                    self._drain(slot)
                    slot.chan.close()
                slot.proc, slot.chan, slot.ready, slot.last = None, None, False, None

    def _note(self, slot: Slot, msg: dict[str, object]) -> None:
        """Take in what a worker said unasked: worker 0's serials after each reload (it has notified them)."""
        serials = msg.get("notified")
        if slot.index == 0 and isinstance(serials, dict):
            self.notified = {str(name): int(serial) for name, serial in serials.items()}

    def _drain(self, slot: Slot) -> None:
        """Read what a dead worker wrote before dying (it stays in the socket): the serials it notified."""
        assert slot.chan is not None
        try:
            while (msg := slot.chan.recv(0.05)) is not None:
                self._note(slot, msg)
        except (OSError, ValueError):
            pass

    def _restart_due(self) -> None:
        now = time.monotonic()
        with self._lock:
            for slot in self.slots:
                if slot.due is None or now < slot.due:
                    continue
                try:
                    self._spawn(slot, now)
                except ServerError as exc:
                    slot.started, slot.due = now, now + slot.backoff
                    log.error("%s; trying again in %.0f s", exc, slot.backoff)
                    continue
                self.restarts += 1
                log.warning("worker %d restarted as pid %d", slot.index, slot.pid)

    def _refresh(self) -> None:
        """Ask every serving worker for its figures (all at once, then read the answers)."""
        with self._lock:
            self._seq += 1
            asked = []
            for slot in self.slots:
                if slot.ready and slot.chan is not None and self._alive(slot):
                    try:
                        slot.chan.send({"ask": "figures", "seq": self._seq})
                        asked.append(slot)
                    except OSError:
                        pass  # dying: _reap will tell
            deadline = time.monotonic() + ASK_TIMEOUT
            for slot in asked:
                assert slot.chan is not None
                try:
                    while True:
                        msg = slot.chan.recv(max(0.01, deadline - time.monotonic()))
                        if msg is None or msg.get("seq") == self._seq:
                            break
                        self._note(slot, msg)  # older answers (after a timeout) are skipped
                    if msg is not None:
                        slot.last = Figures.from_json(msg["figures"])
                except (OSError, ValueError, KeyError) as exc:
                    self._ask_errors.event(
                        logging.WARNING, "worker %d (pid %d) did not report its counters: %s; using its last report",
                        slot.index, slot.pid, exc or type(exc).__name__,
                    )  # fmt: skip
            first = self.slots[0]
            if first.ready and first.last is not None:
                self.notified = first.last.serials
            self._share_key_counts(asked)

    def _share_key_counts(self, slots: list[Slot]) -> None:
        """Send each worker what the others (dead ones included) answered today per access key,
        from the reports just collected: a worker refuses a key at its quota counting those."""
        if self.serving["access_keys"] is None:
            return
        reports = {slot.index: (f.keys_day, f.keys_today) for slot in self.slots if (f := slot.last) and slot.ready}
        shares = keys.Shares.of(reports, (self.retired.keys_day, self.retired.keys_today))
        for slot in slots:
            if slot.chan is not None:
                try:
                    slot.chan.send({"keys": {"day": shares.day, "others": shares.others(slot.index)}})
                except OSError:
                    pass  # dying: _reap will tell

    # --- counters ----------------------------------------------------------------------

    def figures(self) -> Figures:
        """Every worker's figures summed now (the metrics endpoint calls this per scrape)."""
        self._refresh()
        with self._lock:
            live = [slot.last for slot in self.slots if slot.ready and slot.last is not None]
            return combine(live, self.retired, restarts=self.restarts)

    def log_stats(self) -> None:
        fig = self.figures()
        for line in stats.report(fig.queries, fig.serials):
            log.info("%s (%d of %d workers)", line, fig.workers, len(self.slots))
        with self._lock:
            for slot in self.slots:
                if slot.ready and slot.last is not None:
                    queries = sum(sum(row) for row in slot.last.queries.values())
                    log.info(
                        "stats worker %d (pid %d): queries %d, generation %s",
                        slot.index, slot.pid, queries, slot.last.generation or "?",
                    )  # fmt: skip
                else:
                    log.info("stats worker %d: not serving (starting or restarting)", slot.index)
        for line in stats.key_report(fig.keys_today, fig.keys_total, fig.keys_unknown_today, fig.keys_unknown_total):
            log.info("%s", line)
        log.info("stats workers %d of %d serving, %d restarts", fig.workers, len(self.slots), fig.restarts)
        if fig.internal_errors:
            log.info("stats internal errors %d (each answered SERVFAIL)", fig.internal_errors)
