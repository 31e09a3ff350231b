"""The HTTP server under `serve --metrics`: a thread per connection, within bounds.

Inside the server: metrics.Exporter serves prometheus-client's WSGI app through
`BoundedServer`. The stdlib's ThreadingMixIn keeps a thread for as long as a client keeps
its connection open, so 400 idle connections made 400 threads that never left. Here:

- at most `max_connections` (default 16) connections are open at once. One more closes the
  oldest open one (as the DNS TCP server evicts its idlest), so a scrape gets through while
  a client holds idle connections; threads stay at `max_connections` plus the accept loop;
- each connection has `timeout` seconds (default 5) from accept for the whole exchange,
  request in and metrics out: a read waits at most that long, and the accept loop shuts down
  a connection past its deadline, so a client sending a byte a second is closed too;
- a failure in one connection (a reset, a timeout, a thread that cannot be started) closes
  that connection and is logged at most once every 10 s; the accept loop goes on.
"""

from __future__ import annotations

import io
import logging
import math
import socket
import sys
import threading
import time
from typing import Any, cast
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from publisher.server.ratelog import Throttle, brief

log = logging.getLogger("publisher.server")

TIMEOUT = 5.0
MAX_CONNECTIONS = 16
#: Seconds between two log lines about misbehaving metrics connections.
LOG_INTERVAL = 10.0


def _abort(conn: socket.socket) -> None:
    """Wake the thread blocked on `conn`: its read returns end-of-file, its write fails."""
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by its thread


class _ErrorStream(io.StringIO):
    """Where wsgiref writes an application's traceback: to the log, rate-limited."""

    def __init__(self, problems: Throttle) -> None:
        super().__init__()
        self.problems = problems

    def flush(self) -> None:
        text = self.getvalue().strip()
        if text:
            self.problems.event(logging.ERROR, "metrics: %s", text)
        self.seek(0)
        self.truncate()


class QuietHandler(WSGIRequestHandler):
    """No access log (a scrape every few seconds would drown the server's own log)."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def get_stderr(self) -> io.StringIO:  # wsgiref writes a failing app's traceback here, then flushes
        return _ErrorStream(cast(BoundedServer, self.server).problems)


class BoundedServer(WSGIServer):
    """A WSGI server with one thread per connection, at most `max_connections`, each for `timeout` s."""

    daemon_threads = True
    request_queue_size = 128  # a burst of connects waits in the kernel, not in threads

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[WSGIRequestHandler] = QuietHandler,
        *,
        timeout: float = TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.conn_timeout = timeout
        self.max_connections = max_connections
        #: open connection -> its deadline (time.monotonic())
        self._open: dict[socket.socket, float] = {}
        self._cond = threading.Condition()
        self.evicted = 0  # connections closed to make room for a newer one
        self.expired = 0  # connections closed at their deadline
        self.problems = Throttle(log, LOG_INTERVAL)
        super().__init__(address, handler)

    def open_connections(self) -> int:
        with self._cond:
            return len(self._open)

    def process_request(self, request: Any, client_address: Any) -> None:
        conn = cast(socket.socket, request)
        with self._cond:
            if len(self._open) >= self.max_connections:
                _abort(min(self._open, key=self._open.__getitem__))  # the oldest: earliest deadline
                self.evicted += 1
                room = self._cond.wait_for(lambda: len(self._open) < self.max_connections, self.conn_timeout)
                if not room:
                    self.shutdown_request(conn)
                    return
            self._open[conn] = time.monotonic() + self.conn_timeout
        conn.settimeout(self.conn_timeout)
        worker = threading.Thread(target=self._serve, args=(conn, client_address), name="metrics-http", daemon=True)
        try:
            worker.start()
        except RuntimeError as exc:  # "can't start new thread": out of memory or of the thread limit
            self._done(conn)
            self.problems.event(
                logging.ERROR, "metrics: cannot start a thread for a connection from %s: %s; closed it",
                _peer(client_address), brief(exc),
            )  # fmt: skip

    def _serve(self, conn: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(conn, client_address)
        except Exception as exc:  # noqa: BLE001 - a timeout, a reset, an evicted connection: close it
            log.debug("metrics connection from %s: %s", _peer(client_address), brief(exc))
        finally:
            self._done(conn)

    def _done(self, conn: socket.socket) -> None:
        self.shutdown_request(conn)
        with self._cond:
            self._open.pop(conn, None)
            self._cond.notify_all()

    def service_actions(self) -> None:
        """Called by serve_forever every poll: close the connections past their deadline."""
        now = time.monotonic()
        with self._cond:
            late = [conn for conn, deadline in self._open.items() if deadline <= now]
            for conn in late:
                self._open[conn] = math.inf  # aborted once; its thread is on its way out
        for conn in late:
            self.expired += 1
            _abort(conn)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        self.problems.event(
            logging.ERROR, "metrics: error on a connection from %s: %s", _peer(client_address), brief(exc), exc=exc
        )

    def server_close(self) -> None:
        super().server_close()
        with self._cond:
            for conn in list(self._open):
                _abort(conn)


def _peer(client_address: Any) -> str:
    return str(client_address[0]) if isinstance(client_address, tuple) else str(client_address)


__all__ = ["MAX_CONNECTIONS", "TIMEOUT", "BoundedServer", "QuietHandler"]
