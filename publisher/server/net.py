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


@dataclass(frozen=True, slots=True)
class _Failure:
    ep: Endpoint
    proto: str  # "udp" or "tcp"
    exc: OSError | None  # None: no free port for both after BIND_TRIES

    @property
    def busy(self) -> bool:
        return self.exc is not None and self.exc.errno == errno.EADDRINUSE

    @property
    def absent(self) -> bool:
        """The host has no such address (or no IPv6 at all): nothing else can answer there."""
        return self.exc is not None and self.exc.errno in ABSENT

    def __str__(self) -> str:
        why = (self.exc.strerror or str(self.exc)) if self.exc else "no free port"
        return f"cannot listen on {self.proto} {self.ep}: {why}"


#: The errors that leave an address out with a warning when another one binds: the host
#: does not have it (EADDRNOTAVAIL: no IPv6 on lo, an address of another machine) or has
#: no IPv6 at all (EAFNOSUPPORT). Anything else, a port another process holds above all,
#: stops the start: a DNSBL silent on one of its addresses makes the MTAs asking there
#: time out and accept the mail.
ABSENT = frozenset({errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT})


def _try_pair(ep: Endpoint, reuse_port: bool) -> tuple[socket.socket, socket.socket] | _Failure:
    """A UDP and a TCP socket on the same port (port 0 picks one free for both), or why not."""
    last: OSError | None = None
    for _ in range(BIND_TRIES if ep.port == 0 else 1):
        try:
            udp = _udp(ep, ep.port, reuse_port)
        except OSError as exc:
            return _Failure(ep, "udp", exc)
        port = udp.getsockname()[1]
        try:
            return udp, _tcp(ep, port, reuse_port)
        except OSError as exc:
            udp.close()
            last = exc
    return _Failure(ep, "tcp", last)


def bind_pair(ep: Endpoint, *, reuse_port: bool = False) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on the same port; port 0 picks one free for both.

    `reuse_port`: SO_REUSEPORT on both, so that the processes of `serve --workers N` each
    bind the port and the kernel spreads datagrams and connections over them.
    """
    got = _try_pair(ep, reuse_port)
    if isinstance(got, _Failure):
        raise ServerError(f"{got}{_busy_hint([got], [ep])}")
    return got


def _busy_hint(failures: list[_Failure], endpoints: list[Endpoint]) -> str:
    """What to do when ports are taken: see who holds them, or move every address elsewhere."""
    busy = [f for f in failures if f.busy and f.ep.port != 0]
    if not busy:
        return ""
    protos = "".join(p[0] for p in ("udp", "tcp") if any(f.proto == p for f in busy))
    ports = " or ".join(f"sport = :{port}" for port in sorted({f.ep.port for f in busy}))
    moved = [Endpoint(ep.host, ep.port + 1 if ep.port < 65535 else 5354) if ep.port else ep for ep in endpoints]
    make = " ".join(map(str, moved))
    make = f"'{make}'" if len(moved) > 1 else make
    held = "another server holds the port" if len(busy) == 1 else "another server holds the ports"
    return (
        f"; {held} (to see which: ss -l{protos}np '{ports}'); "
        f"to listen elsewhere: make serve LISTEN={make}, or {' '.join(f'--listen {ep}' for ep in moved)}"
    )


def bind_each(
    endpoints: list[Endpoint], *, reuse_port: bool = False
) -> list[tuple[Endpoint, socket.socket, socket.socket]]:
    """Bind every endpoint: (endpoint with its port resolved, udp, tcp) for each that binds.

    An address the host does not have (ABSENT) is left out with a warning when another one
    binds; any other failure (a port taken above all) closes what was bound and raises one
    error naming every address that failed, with one hint for all of them.
    """
    pairs: list[tuple[Endpoint, socket.socket, socket.socket]] = []
    failures: list[_Failure] = []
    for ep in endpoints:
        got = _try_pair(ep, reuse_port)
        if isinstance(got, _Failure):
            failures.append(got)
        else:
            pairs.append((Endpoint(ep.host, got[0].getsockname()[1]), *got))
    if pairs and all(f.absent for f in failures):
        for f in failures:
            log.warning("%s; serving on the other addresses", f)
        return pairs
    for _, udp, tcp in pairs:
        udp.close()
        tcp.close()
    if not failures:
        raise ServerError("no listen address")
    raise ServerError("; ".join(map(str, failures)) + _busy_hint(failures, endpoints))


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
    workers included) fails here with the same error a single server gives, and an address
    the host lacks is left out with the same warning.
    """
    pairs = bind_each(endpoints)
    for _, udp, tcp in pairs:
        udp.close()
        tcp.close()
    return [ep for ep, _, _ in pairs]


def start_all(
    endpoints: list[Endpoint],
    make_responder: Callable[[], Responder],
    *,
    idle_timeout: float,
    max_connections: int,
    batch: bool = True,
    reuse_port: bool = False,
) -> tuple[list[UdpThread], TcpServer, list[Endpoint]]:
    """Bind every endpoint (leaving out addresses the host lacks when another binds) and serve."""
    pairs = bind_each(endpoints, reuse_port=reuse_port)
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
