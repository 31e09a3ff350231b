"""DNS over TCP (RFC 7766) on one selectors loop in one thread.

Inside the server: net.start_all -> `TcpServer` -> Responder.answer_tcp. Messages are
2-byte length prefixed; several queries per connection are answered in order (a zone
transfer streams to its end before the next query of that connection is read); a
connection idle for `idle_timeout` (no query answered, nothing sent; bytes of an
unfinished frame do not count) is closed, as is one whose peer stops reading for that
long. A connection whose peer does not read its answers is not read from either (TCP flow
control does the rest), so no client grows our buffers past one message in and LOW_WATER
out. Transfers are pulled from their generator only as fast as the peer reads, so a slow
secondary never holds a whole zone in memory.

At `max_connections` no new connection is accepted, nor closed: it waits in the listen
backlog (as in NSD) until a slot frees. While one waits, a connection gives way to it
(`_victims`, RFC 7766 section 6.2.2) once it has been idle EVICT_AFTER (the idle timeout
under load), or once it has been open `idle_timeout` whatever it does, except a zone
transfer in progress. So a client waits at most about EVICT_AFTER per `max_connections`
connections queued ahead of it when idle ones hold the slots (0.25 s per 128), and at most
`idle_timeout` when busy ones do. The listening sockets leave the selector while nothing
could be accepted, so a full server sleeps instead of polling them.
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
#: While a client waits for a slot, a connection idle this long (or half the idle timeout,
#: if less) gives way to it: the idle timeout under load (NSD lowers its own to 0.2 s).
#: An honest client's query is already in its socket when it is accepted from the backlog.
EVICT_AFTER = 0.25
#: At most one "at the cap" warning per this many seconds.
FULL_LOG_SECONDS = 10.0
#: After accept() fails for want of resources (EMFILE, ENOBUFS), retry after this long.
ACCEPT_RETRY = 0.5


class _Conn:
    __slots__ = ("sock", "peer", "inbuf", "outbuf", "stream", "last", "born")

    def __init__(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        self.sock = sock
        self.peer = peer
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.stream: Iterator[bytes] | None = None
        self.last = self.born = time.monotonic()


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
        self.evicted = 0  # connections closed to let a waiting client in
        self._listening = False  # the listening sockets are in the selector
        self._full_since: float | None = None  # at the cap since then
        self._full_total = 0.0  # seconds at the cap before _full_since
        self._retry_accept_at = 0.0  # after accept() ran out of resources
        self._full_log = Throttle(log, FULL_LOG_SECONDS)
        self._accept_log = Throttle(log, FULL_LOG_SECONDS)
        self.thread = threading.Thread(target=self._run, name="tcp", daemon=True)

    @property
    def active(self) -> int:
        return len(self.conns)

    @property
    def full_seconds(self) -> float:
        """Seconds spent at `max_connections` since start (new clients waited meanwhile)."""
        since = self._full_since
        return self._full_total + (time.monotonic() - since if since is not None else 0.0)

    def start(self) -> None:
        for sock in self.socks:
            sock.setblocking(False)
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
                events = self.sel.select(self._listen_or_not(tick))
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

    def _listen_or_not(self, tick: float) -> float:
        """Put the listening sockets in the selector when a connection could be accepted now.

        Below the cap, always. At the cap, only once some connection may give way; else they
        leave it (a readable socket we do not accept from would wake select at once, forever)
        and the loop sleeps until the first connection may give way. Returns select's timeout.
        """
        now = time.monotonic()
        timeout = tick
        full = len(self.conns) >= self.max_connections
        self._note_full(full, now)
        if now < self._retry_accept_at:
            want, timeout = False, min(tick, self._retry_accept_at - now)
        elif not full:
            want = True
        else:
            at = self._first_victim_at()
            want = at <= now
            if not want:
                timeout = min(tick, max(0.01, at - now))
        if want != self._listening:
            for sock in self.socks:
                if want:
                    self.sel.register(sock, selectors.EVENT_READ, None)
                else:
                    self.sel.unregister(sock)
            self._listening = want
        return timeout

    def _note_full(self, full: bool, now: float) -> None:
        if full and self._full_since is None:
            self._full_since = now
            # Once per FULL_LOG_SECONDS: a connection flood must not become a log flood.
            self._full_log.event(
                logging.WARNING, "tcp: %d connections open, the cap: new connections wait in the listen backlog "
                "until one idle for %gs gives way (%d given way so far)", len(self.conns), self._evict_after,
                self.evicted,
            )  # fmt: skip
        elif not full and self._full_since is not None:
            self._full_total += now - self._full_since
            self._full_since = None

    @property
    def _evict_after(self) -> float:
        return min(EVICT_AFTER, self.idle_timeout / 2)

    def _first_victim_at(self) -> float:
        """When the first connection may give way to a waiting client (inf: none ever may)."""
        grace, life = self._evict_after, self.idle_timeout
        at = float("inf")
        for c in self.conns.values():
            if c.stream is None:
                at = min(at, c.born + life, at if c.outbuf else c.last + grace)
        return at

    def _victims(self, now: float) -> list[_Conn]:
        """Who gives way to waiting clients, first to go first.

        Idle ones (no answer pending, no query answered and nothing sent for EVICT_AFTER:
        bytes of an unfinished frame do not count, so dribbling a byte now and then holds no
        slot), idlest first; then any open `idle_timeout` or longer, oldest first, so not even
        a client sending complete queries all the time keeps a slot from others for longer.
        A zone transfer in progress never gives way.
        """
        idle_since, born_before = now - self._evict_after, now - self.idle_timeout
        conns = [c for c in self.conns.values() if c.stream is None]
        idle = sorted((c for c in conns if not c.outbuf and c.last <= idle_since), key=lambda c: c.last)
        taken = {id(c) for c in idle}
        old = sorted((c for c in conns if id(c) not in taken and c.born <= born_before), key=lambda c: c.born)
        return idle + old

    def _accept(self, lsock: socket.socket) -> None:
        victims: list[_Conn] = []
        looked = False
        for _ in range(ACCEPT_BATCH):  # a burst of connections costs one wake-up, not one each
            full = len(self.conns) >= self.max_connections
            if full and not looked:
                victims, looked = self._victims(time.monotonic()), True
            if full and not victims:
                return  # the rest wait in the listen backlog until a slot frees
            try:
                sock, peer = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return  # nothing waits
            except ConnectionAbortedError:
                continue  # the peer gave up while it waited
            except OSError as exc:  # out of descriptors or buffers: not in a tight loop
                self._retry_accept_at = time.monotonic() + ACCEPT_RETRY
                self._accept_log.event(logging.WARNING, "tcp accept failed (%s); retrying in %gs", exc, ACCEPT_RETRY)
                return
            if full:
                self._close(victims.pop(0))
                self.evicted += 1
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
