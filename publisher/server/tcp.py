"""DNS over TCP (RFC 7766) on one selectors loop in one thread.

Place in the flow: net.start_all -> `TcpServer` -> Responder.answer_tcp. Messages are
2-byte length prefixed; several queries per connection are answered in order (a zone
transfer streams to its end before the next query of that connection is read); a
connection idle for `idle_timeout` (nothing to read, nothing left to send) is closed, as
is one whose peer stops reading for that long; beyond `max_connections` new connections
are closed at once (RFC 7766 section 6.2.2). Transfers are pulled from their generator
only as fast as the peer reads, so a slow secondary never holds a whole zone in memory.
No asyncio: its import (with ssl) would cost more memory than the zone data of a big list.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time
from collections.abc import Iterator

from publisher.server.core import Responder

log = logging.getLogger("publisher.server")

#: Refill a connection's output from its transfer below this many bytes.
LOW_WATER = 1 << 16
MAX_MESSAGE = 65535


class _Conn:
    __slots__ = ("sock", "peer", "inbuf", "outbuf", "stream", "last")

    def __init__(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        self.sock = sock
        self.peer = peer
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.stream: Iterator[bytes] | None = None
        self.last = time.monotonic()


class TcpServer:
    """Every TCP listening socket, served by one thread."""

    def __init__(
        self,
        socks: list[socket.socket],
        responder: Responder,
        *,
        idle_timeout: float = 10.0,
        max_connections: int = 128,
    ) -> None:
        self.socks = socks
        self.responder = responder
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.sel = selectors.DefaultSelector()
        self.conns: dict[int, _Conn] = {}
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = False
        self.thread = threading.Thread(target=self._run, name="tcp", daemon=True)

    @property
    def active(self) -> int:
        return len(self.conns)

    def start(self) -> None:
        for sock in self.socks:
            sock.setblocking(False)
            self.sel.register(sock, selectors.EVENT_READ, None)
        self._wake_r.setblocking(False)
        self.sel.register(self._wake_r, selectors.EVENT_READ, None)
        self.thread.start()

    def stop(self) -> None:
        self._stopping = True
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass
        self.thread.join(timeout=5)
        for conn in list(self.conns.values()):
            self._close(conn)
        for sock in self.socks:
            sock.close()
        self.sel.close()
        self._wake_r.close()
        self._wake_w.close()

    def _run(self) -> None:
        tick = min(1.0, self.idle_timeout / 2)
        while not self._stopping:
            try:
                events = self.sel.select(tick)
                for key, mask in events:
                    if key.fileobj is self._wake_r:
                        continue
                    if key.data is None:
                        self._accept(key.fileobj)  # type: ignore[arg-type]
                        continue
                    conn: _Conn = key.data
                    if mask & selectors.EVENT_READ:
                        self._read(conn)
                    if mask & selectors.EVENT_WRITE and conn.sock.fileno() in self.conns:
                        self._write(conn)
                self._expire()
            except Exception:
                # One bad connection must not take TCP down for everyone.
                log.exception("tcp loop error; continuing")

    def _accept(self, lsock: socket.socket) -> None:
        try:
            sock, peer = lsock.accept()
        except OSError:
            return
        if len(self.conns) >= self.max_connections:
            log.warning("tcp connection from %s closed: %d connections open", peer[0], len(self.conns))
            sock.close()
            return
        sock.setblocking(False)
        conn = _Conn(sock, peer)
        self.conns[sock.fileno()] = conn
        self.sel.register(sock, selectors.EVENT_READ, conn)

    def _close(self, conn: _Conn) -> None:
        fd = conn.sock.fileno()
        if self.conns.pop(fd, None) is not None:
            try:
                self.sel.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
        conn.sock.close()

    def _read(self, conn: _Conn) -> None:
        try:
            chunk = conn.sock.recv(MAX_MESSAGE + 2)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not chunk:
            self._close(conn)
            return
        conn.last = time.monotonic()
        conn.inbuf += chunk
        self._process(conn)

    def _process(self, conn: _Conn) -> None:
        """Answer the complete queries buffered, in order, until a transfer is streaming."""
        buf = conn.inbuf
        while conn.stream is None and len(buf) >= 2:
            size = (buf[0] << 8) | buf[1]
            if len(buf) < 2 + size:
                break
            data = bytes(buf[2 : 2 + size])
            del buf[: 2 + size]
            replies = self.responder.answer_tcp(data, conn.peer)
            first = next(replies, None)
            if first is None:
                self._close(conn)  # nothing to say to garbage: close, as UDP would drop
                return
            conn.outbuf += len(first).to_bytes(2, "big") + first
            conn.stream = replies  # a transfer has more; a plain answer ends at once
            self._fill(conn)
        self._write(conn)

    def _fill(self, conn: _Conn) -> None:
        stream = conn.stream
        while stream is not None and len(conn.outbuf) < LOW_WATER:
            msg = next(stream, None)
            if msg is None:
                conn.stream = stream = None
                break
            conn.outbuf += len(msg).to_bytes(2, "big") + msg

    def _write(self, conn: _Conn) -> None:
        if conn.outbuf:
            try:
                sent = conn.sock.send(conn.outbuf)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self._close(conn)
                return
            if sent:
                del conn.outbuf[:sent]
                conn.last = time.monotonic()
        self._fill(conn)
        if not conn.outbuf and conn.stream is None and conn.inbuf:
            self._process(conn)  # queries that waited behind a transfer
            return
        if conn.sock.fileno() not in self.conns:
            return
        want = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.outbuf else 0)
        try:
            self.sel.modify(conn.sock, want, conn)
        except (KeyError, ValueError):
            pass

    def _expire(self) -> None:
        now = time.monotonic()
        for conn in list(self.conns.values()):
            if now - conn.last > self.idle_timeout:
                self._close(conn)

