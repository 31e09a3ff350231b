"""Requests to a main loop ('reload', 'stats', 'stop', ...), safe to make from signal handlers.

Used by app.Server (one process) and workers.Supervisor (the parent of `--workers N`): a
request sets a flag and writes one byte to a socket pair, which wakes the loop's select().
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Mapping


class Requests:
    """The flags and the wake-up socket pair; `_init_requests()` in the owner's __init__."""

    def _init_requests(self) -> None:
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._flags: set[str] = set()

    def request(self, what: str) -> None:
        """Ask the main loop for `what` (e.g. 'reload', 'stats', 'stop')."""
        self._flags.add(what)
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    def _signals(self, extra: Mapping[signal.Signals, str] | None = None) -> None:
        """SIGHUP reload, SIGUSR1 stats, SIGTERM/SIGINT stop (and `extra`), as requests."""
        if threading.current_thread() is not threading.main_thread():
            return
        wanted = {signal.SIGHUP: "reload", signal.SIGUSR1: "stats", signal.SIGTERM: "stop", signal.SIGINT: "stop"}
        for sig, what in {**wanted, **(extra or {})}.items():
            signal.signal(sig, lambda *_, what=what: self.request(what))
