"""DNS over TCP (RFC 7766) on one selectors loop in one thread.

Inside the server: net.start_all -> `TcpServer` -> Responder.answer_tcp. Messages are
2-byte length prefixed; several queries per connection are answered in order (a zone
transfer streams to its end before the next query of that connection is read); a
connection idle for `idle_timeout` (no query answered, nothing sent; bytes of an
unfinished frame do not count) is closed, as is one whose peer stops reading for that
long; at `max_connections` a new connection evicts the one idle longest, or is closed at
once when every connection is busy (RFC 7766 section 6.2.2). A connection whose peer
does not read its answers is not read from either (TCP flow control does the rest), so
no client grows our buffers past one message in and LOW_WATER out. Transfers are pulled from their generator
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
from publisher.server.ratelog import Throttle

log = logging.getLogger("publisher.server")

#: Refill a connection's output from its transfer below this many bytes.
LOW_WATER = 1 << 16
MAX_MESSAGE = 65535
#: Connections taken per wake-up of a listening socket.
ACCEPT_BATCH = 64
#: A connection idle this long (or half the idle timeout, if less) may make room for a new one.
EVICT_AFTER = 1.0
#: At most one "connection closed" warning per this many seconds.
SHED_LOG_SECONDS = 10.0


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
        self.shed = 0  # connections closed at once: every slot busy
        self.evicted = 0  # idle connections closed to make room
        self._shed_log = Throttle(log, SHED_LOG_SECONDS)
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
                        self._pump(conn)
                self._expire()
            except Exception:
                # One bad connection must not take TCP down for everyone.
                log.exception("tcp loop error; continuing")

    def _accept(self, lsock: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):  # a burst of connections costs one wake-up, not one each
            try:
                sock, peer = lsock.accept()
            except OSError:  # nothing left (EAGAIN), or the peer already gave up
                return
            if len(self.conns) >= self.max_connections and not self._evict_idlest():
                self._shed(peer[0])
                sock.close()
                continue
            sock.setblocking(False)
            conn = _Conn(sock, peer)
            self.conns[sock.fileno()] = conn
            self.sel.register(sock, selectors.EVENT_READ, conn)

    def _evict_idlest(self) -> bool:
        """Close the connection idle longest, if it has been idle a while; False if none may go.

        Without this, whoever holds `max_connections` idle connections (a slowloris) locks
        every other TCP client out until the idle timeout; with it, a fresh client takes the
        place of the stalest one. Connections still sending or streaming are never evicted,
        and neither is one younger than EVICT_AFTER, so an honest client always gets the
        time to send its query.
        """
        limit = time.monotonic() - min(EVICT_AFTER, self.idle_timeout / 2)
        idle = [c for c in self.conns.values() if not c.outbuf and c.stream is None and c.last < limit]
        if not idle:
            return False
        self._close(min(idle, key=lambda c: c.last))
        self.evicted += 1
        return True

    def _shed(self, peer: str) -> None:
        # Logged once per SHED_LOG_SECONDS: a connection flood must not become a log flood.
        self.shed += 1
        self._shed_log.event(
            logging.WARNING, "tcp connection from %s closed: %d connections open (%d shed, %d idle evicted so far)",
            peer, len(self.conns), self.shed, self.evicted,
        )  # fmt: skip

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
            # Never more than one whole message ahead: the rest waits in the peer's kernel.
            chunk = conn.sock.recv(max(1, 2 + MAX_MESSAGE - len(conn.inbuf)))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not chunk:
            self._close(conn)
            return
        # Receiving bytes does not reset the idle clock: a peer dribbling a frame a byte at
        # a time is as idle as a silent one. Only answered queries and sent bytes count.
        conn.inbuf += chunk
        self._pump(conn)

    def _pump(self, conn: _Conn) -> None:
        """Answer buffered queries and send, in order, until the socket or the queries run out.

        A loop, not mutual recursion: a partial frame must cost one pass, not a stack.
        New queries are taken only while less than LOW_WATER bytes wait to be sent and no
        transfer is streaming, so a peer that sends without reading is slowed by TCP flow
        control instead of growing our buffers.
        """
        while True:
            self._fill(conn)
            while conn.stream is None and len(conn.outbuf) < LOW_WATER:
                data = self._next_message(conn)
                if data is None:
                    break
                if not self._answer(conn, data):
                    return
                self._fill(conn)
            if not conn.outbuf:
                break
            try:
                sent = conn.sock.send(conn.outbuf)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self._close(conn)
                return
            if not sent:
                break
            del conn.outbuf[:sent]
            conn.last = time.monotonic()
            if conn.outbuf:
                break  # the socket's buffer is full: EVENT_WRITE brings us back
        self._interest(conn)

    @staticmethod
    def _next_message(conn: _Conn) -> bytes | None:
        buf = conn.inbuf
        if len(buf) < 2:
            return None
        size = (buf[0] << 8) | buf[1]
        if len(buf) < 2 + size:
            return None
        data = bytes(buf[2 : 2 + size])
        del buf[: 2 + size]
        return data

    def _answer(self, conn: _Conn, data: bytes) -> bool:
        """Queue the reply (or start the transfer) for one query; False when the connection closed."""
        replies = self.responder.answer_tcp(data, conn.peer)
        first = next(replies, None)
        if first is None:
            self._close(conn)  # nothing to say to garbage: close, as UDP would drop
            return False
        conn.outbuf += len(first).to_bytes(2, "big") + first
        conn.stream = replies  # a transfer has more; a plain answer ends at once
        conn.last = time.monotonic()
        return True

    def _fill(self, conn: _Conn) -> None:
        stream = conn.stream
        while stream is not None and len(conn.outbuf) < LOW_WATER:
            msg = next(stream, None)
            if msg is None:
                conn.stream = stream = None
                break
            conn.outbuf += len(msg).to_bytes(2, "big") + msg

    def _interest(self, conn: _Conn) -> None:
        if conn.sock.fileno() not in self.conns:
            return
        busy = bool(conn.outbuf) or conn.stream is not None
        want = 0
        if not busy and len(conn.inbuf) < 2 + MAX_MESSAGE:
            want |= selectors.EVENT_READ
        if conn.outbuf:
            want |= selectors.EVENT_WRITE
        if not want:  # cannot happen (a full buffer holds a whole query); never stall silently
            self._close(conn)
            return
        try:
            self.sel.modify(conn.sock, want, conn)
        except (KeyError, ValueError):
            pass

    def _expire(self) -> None:
        now = time.monotonic()
        for conn in list(self.conns.values()):
            if now - conn.last > self.idle_timeout:
                self._close(conn)
