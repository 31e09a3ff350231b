"""Sockets: listen addresses, binding, and the UDP threads.

Inside the server: app.Server binds here, then every socket feeds a `Responder`. UDP is
one thread per socket in a blocking loop: batched through recvmmsg/sendmmsg where Linux
has them (mmsg.py), else recvfrom/sendto (no selector, no timeout poll per datagram).
TCP sockets go to the one `tcp.TcpServer` thread.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from publisher.addresses import AddressError, split_listen
from publisher.errors import ServerError
from publisher.server import mmsg
from publisher.server.core import Responder
from publisher.server.tcp import TcpServer

log = logging.getLogger("publisher.server")

SOCKET_BUFFER = 4 << 20  # absorbs bursts from load generators without drops
BIND_TRIES = 20
#: Connections the kernel completes and queues for accept(): where clients wait while the
#: TCP server is at its cap (tcp.py). Linux caps it at net.core.somaxconn (4096 by default).
#: Past it, new connections are not refused but their SYNs go unanswered until room frees
#: (the client resends after 1 s, 3 s, ...).
LISTEN_BACKLOG = 1024


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int

    @property
    def family(self) -> socket.AddressFamily:
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(text: str) -> Endpoint:
    """'127.0.0.1:5353' or '[::1]:5353' (an address alone means port 53); IPv6 only in brackets."""
    try:
        host, port = split_listen(text, default_port=53)
    except AddressError as exc:
        raise ServerError(f"{exc.message}; {exc.fix}" if exc.fix else exc.message) from None
    return Endpoint(host, port)


def _udp(ep: Endpoint, port: int, reuse_port: bool = False) -> socket.socket:
    sock = socket.socket(ep.family, socket.SOCK_DGRAM)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if ep.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
            except OSError:
                pass
        sock.bind((ep.host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _tcp(ep: Endpoint, port: int, reuse_port: bool = False) -> socket.socket:
    sock = socket.socket(ep.family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if ep.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((ep.host, port))
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def bind_pair(ep: Endpoint, *, reuse_port: bool = False) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on the same port; port 0 picks one free for both.

    `reuse_port`: SO_REUSEPORT on both, so that the processes of `serve --workers N` each
    bind the port and the kernel spreads datagrams and connections over them.
    """
    last: OSError | None = None
    for _ in range(BIND_TRIES if ep.port == 0 else 1):
        try:
            udp = _udp(ep, ep.port, reuse_port)
        except OSError as exc:
            raise ServerError(f"cannot listen on udp {ep}: {exc.strerror or exc}{_busy_hint(exc, ep, 'u')}") from exc
        port = udp.getsockname()[1]
        try:
            return udp, _tcp(ep, port, reuse_port)
        except OSError as exc:
            udp.close()
            last = exc
    hint = _busy_hint(last, ep, "t") if last else ""
    raise ServerError(f"cannot listen on tcp {ep}: {last.strerror if last else 'no free port'}{hint}")


def _busy_hint(exc: OSError, ep: Endpoint, proto: str) -> str:
    """What to do when the port is taken: see who holds it, or listen elsewhere."""
    if exc.errno != errno.EADDRINUSE or ep.port == 0:
        return ""
    other = Endpoint(ep.host, ep.port + 1 if ep.port < 65535 else 5354)
    return (
        f"; another server holds the port (to see which: ss -l{proto}np 'sport = :{ep.port}'); "
        f"to listen elsewhere: make serve LISTEN={other}, or --listen {other}"
    )


class UdpThread:
    """One socket, one thread, one Responder."""

    def __init__(self, sock: socket.socket, responder: Responder, *, batch: bool = True) -> None:
        self.sock = sock
        self.responder = responder
        self._stopping = [False]
        # Batching needs Linux's recvmmsg; the query log wants one address per line anyway.
        batched = batch and mmsg.available() and not responder.log_queries
        loop = responder.serve_udp_batched if batched else responder.serve_udp
        self.thread = threading.Thread(
            target=loop, args=(sock, self._stopping), name=f"udp-{sock.getsockname()[1]}", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stopping[0] = True
        # A blocking recvfrom does not notice close(). shutdown() wakes it on Linux (raising
        # ENOTCONN here on an unconnected socket, but waking the reader all the same); a
        # datagram to itself is the fallback, which SO_REUSEPORT may hand to a sibling.
        try:
            self.sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass
        try:
            with socket.socket(self.sock.family, socket.SOCK_DGRAM) as poke:
                poke.sendto(b"", self.sock.getsockname()[:2])
        except OSError:
            pass
        self.thread.join(timeout=2)
        self.sock.close()


def probe(endpoints: list[Endpoint]) -> list[Endpoint]:
    """The endpoints that can be bound now, port 0 resolved to a free port (nothing stays bound).

    `serve --workers N` calls this in the parent before its workers bind with SO_REUSEPORT:
    the probe binds without it, so a port held by anything (another server with its own
    workers included) fails here with the same error a single server gives.
    """
    found: list[Endpoint] = []
    errors: list[str] = []
    for ep in endpoints:
        try:
            udp, tcp = bind_pair(ep)
        except ServerError as exc:
            errors.append(str(exc))
            log.warning("%s", exc)
            continue
        found.append(Endpoint(ep.host, udp.getsockname()[1]))
        udp.close()
        tcp.close()
    if not found:
        raise ServerError("; ".join(errors) or "no listen address")
    return found


def start_all(
    endpoints: list[Endpoint],
    make_responder: Callable[[], Responder],
    *,
    idle_timeout: float,
    max_connections: int,
    batch: bool = True,
    reuse_port: bool = False,
) -> tuple[list[UdpThread], TcpServer, list[Endpoint]]:
    """Bind every endpoint (skipping unavailable ones when another works) and start serving."""
    pairs: list[tuple[Endpoint, socket.socket, socket.socket]] = []
    errors: list[str] = []
    for ep in endpoints:
        try:
            udp, tcp = bind_pair(ep, reuse_port=reuse_port)
        except ServerError as exc:
            errors.append(str(exc))
            log.warning("%s", exc)
            continue
        pairs.append((Endpoint(ep.host, udp.getsockname()[1]), udp, tcp))
    if not pairs:
        raise ServerError("; ".join(errors) or "no listen address")
    udps = [UdpThread(udp, make_responder(), batch=batch) for _, udp, _ in pairs]
    tcp_server = TcpServer(
        [tcp for _, _, tcp in pairs], make_responder(), idle_timeout=idle_timeout, max_connections=max_connections
    )
    tcp_server.start()
    for worker in udps:
        worker.start()
    for ep, _, _ in pairs:
        log.info("listening udp %s", ep)
        log.info("listening tcp %s", ep)
    return udps, tcp_server, [ep for ep, _, _ in pairs]
