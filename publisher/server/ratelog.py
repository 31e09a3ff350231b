"""Rate-limited log lines for events a client can cause once per packet or connection.

Inside the server: `Throttle` stands between a per-packet event (an internal error while
answering, a refused TSIG signature or transfer, the TCP server at its connection cap, a failed
metrics connection) and the log. It counts every event (the count is exported and
reported), writes at most one line per `interval` seconds, and that line says how many
were held back since the previous one. So a spoofed flood costs one counter increment per
packet, not a log line per packet.

For debugging, the first event from each distinct site (exception type plus the code line
that raised it) is logged with its full traceback, once per site for the life of the
process, whatever the interval; later events from that site are one line each.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

#: Distinct sites whose first traceback is logged; a bound, so odd inputs cannot grow the set.
MAX_SITES = 32
#: Longest exception text put in a line: the message may quote bytes a client sent.
MAX_TEXT = 200


def brief(exc: BaseException | None) -> str:
    """'ValueError: message' on one line, cut to MAX_TEXT characters."""
    if exc is None:
        return "unknown error"
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = text.replace("\n", " ")
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def _site(exc: BaseException) -> tuple[str, str, int]:
    """(exception type, file, line) of the innermost frame that raised `exc`."""
    tb = exc.__traceback__
    if tb is None:
        return (type(exc).__qualname__, "", 0)
    while tb.tb_next is not None:
        tb = tb.tb_next
    return (type(exc).__qualname__, tb.tb_frame.f_code.co_filename, tb.tb_lineno)


class Throttle:
    """Counts events of one kind and logs at most one line per `interval` seconds.

    Shared by every serving thread of a server: the lock is taken once per event, which
    only happens on the (rare) path that has something to log.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        #: Every event since start, logged or not.
        self.count = 0
        self._held = 0
        self._last: float | None = None
        self._sites: set[tuple[str, str, int]] = set()
        self._lock = threading.Lock()

    def event(self, level: int, msg: str, *args: object, exc: BaseException | None = None) -> bool:
        """Count one event; log `msg % args` unless a line went out less than `interval` ago.

        With `exc`, the first event from the code line that raised it carries the traceback
        (and is logged even inside the interval). True when a line was written.
        """
        with self._lock:
            self.count += 1
            first = False
            if exc is not None and len(self._sites) < MAX_SITES:
                site = _site(exc)
                first = site not in self._sites
                self._sites.add(site)
            now = self.clock()
            if not first and self._last is not None and now - self._last < self.interval:
                self._held += 1
                return False
            held, self._held, self._last = self._held, 0, now
        suffix = f" ({held} more not logged since the previous line)" if held else ""
        self.logger.log(level, msg + "%s", *args, suffix, exc_info=exc if first else None)
        return True


__all__ = ["MAX_SITES", "Throttle", "brief"]
