"""The responder: one query in, the reply out, whatever happens inside.

Inside the server: serving loops (net.py) -> `Responder` -> wire.fast() / slow.handle().
It owns one thread's counters, reads the current `ZoneSet` once per query (so a reload
never mixes two sets within one answer), turns any internal error into SERVFAIL plus a
rate-limited log line, and logs queries when asked. The UDP loop lives here too because it is the
hot path: its locals are bound once and each datagram costs one recvfrom and one sendto.
"""

from __future__ import annotations

import logging
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any, Protocol

from publisher.server import mmsg, slow, tsig, xfr
from publisher.server.gate import DROP, Drop
from publisher.server.gate import answer as gate_answer
from publisher.server.gate import batch_answerer as gate_batch
from publisher.server.keys_file import shown
from publisher.server.ratelog import Throttle, brief
from publisher.server.rrl import RateLimiter, key_of_addr
from publisher.server.stats import NO_ZONE, SERVFAIL, Counters, Latency, bump
from publisher.server.wire import fast
from publisher.server.zoneset import ZoneSet

log = logging.getLogger("publisher.server")
qlog = logging.getLogger("publisher.server.queries")

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED", 9: "NOTAUTH"}
#: Largest datagram read: bigger queries are not DNS queries anyone sends.
RECV_BYTES = 4096


class HasZones(Protocol):
    """What the responder needs from the server: the current zone set (swapped on reload)."""

    zones: ZoneSet


def describe(data: bytes, zs: ZoneSet | None = None) -> str:
    """'name TYPE' of a query for log lines, best effort. In a keyed zone of `zs` the key
    label shows its first 4 characters only (keys are never logged whole)."""
    try:
        labels, pos = [], 12
        while data[pos]:
            ln = data[pos]
            labels.append(data[pos + 1 : pos + 1 + ln].decode("ascii", "backslashreplace"))
            pos += ln + 1
        qtype = (data[pos + 1] << 8) | data[pos + 2]
        from dnslib import QTYPE

        if zs is not None:
            _hide_key(labels, zs)
        return f"{'.'.join(labels) or '.'} {QTYPE.get(qtype, str(qtype))}"
    except (IndexError, ValueError):
        return f"<{len(data)} bytes unparsable>"


def _hide_key(labels: list[str], zs: ZoneSet) -> None:
    """Shorten the key label (right below the apex) when the most specific zone is keyed."""
    for i in range(1, len(labels)):
        sz = zs.zones.get(".".join(labels[i:]).lower())
        if sz is not None:
            if sz.keyed:
                labels[i - 1] = shown(labels[i - 1])
            return


class Responder:
    """Answers queries for one serving thread."""

    def __init__(
        self,
        state: HasZones,
        counts: Counters,
        *,
        log_queries: bool = False,
        latency: Latency | None = None,
        limiter: RateLimiter | None = None,
        errors: Throttle | None = None,
    ) -> None:
        self.state = state
        self.counts = counts
        self.log_queries = log_queries
        #: Response-rate limiting for UDP (--rrl-qps); None, the default, costs one test per datagram.
        self.limiter = limiter
        #: The UDP processing-time histogram, only under --metrics (TCP is not timed).
        self.latency = latency
        #: Internal errors: counted, logged at most once a second (shared by a server's threads).
        self.errors = errors if errors is not None else Throttle(log)

    def answer(self, data: bytes, client: Any, tcp: bool = False) -> bytes | None:
        """The reply to one UDP (or non-transfer TCP) message; None means drop."""
        zs = self.state.zones
        try:
            resp = self._first(zs, data, tcp, client)
            if resp is DROP:
                resp = None
            elif resp is None:
                got = slow.handle(zs, data, _ip(client), tcp, self.counts)
                resp = self._transfer_over_udp(data) if isinstance(got, xfr.TransferRequest) else got
        except Exception:  # noqa: BLE001 - an internal error answers SERVFAIL (_failed logs it)
            resp = self._failed(data, client)
        if self.log_queries:
            self._log(data, resp, client, tcp)
        return resp

    def _first(self, zs: ZoneSet, data: bytes, tcp: bool, client: Any) -> bytes | None | Drop:
        """The fast path's reply, through the gate when the zone set has one (None: ask the slow path)."""
        if zs.gate is None:
            return fast(zs, data, tcp, self.counts)
        return gate_answer(zs, data, tcp, self.counts, _ip(client))

    def answer_tcp(self, data: bytes, client: Any) -> Iterator[bytes]:
        """Every message of the reply to one TCP query: one, or a whole zone transfer."""
        zs = self.state.zones
        try:
            resp = self._first(zs, data, True, client)
            if resp is DROP:
                return  # an ACL `drop`: the connection is closed without a word
            got = slow.handle(zs, data, _ip(client), True, self.counts) if resp is None else resp
        except Exception:  # noqa: BLE001 - an internal error answers SERVFAIL (_failed logs it)
            got = self._failed(data, client)
        if self.log_queries:
            self._log(data, got if not isinstance(got, xfr.TransferRequest) else None, client, True)
        if isinstance(got, xfr.TransferRequest):
            try:
                stream = xfr.messages(got)
                yield from (tsig.sign_stream(stream, got.signed) if got.signed is not None else stream)
            except Exception:
                # The secondary sees a transfer without its closing SOA and retries later.
                log.exception("transfer of %s to %s failed midway", got.zone.name, _ip(client))
                bump(self.counts, got.zone.name, SERVFAIL)
        elif got is not None:
            yield got

    def serve_udp(self, sock: socket.socket, stopping: list[bool]) -> None:
        """Answer datagrams on `sock` until `stopping[0]` is set (then one wake-up datagram)."""
        recv, send, counts, state = sock.recvfrom, sock.sendto, self.counts, self.state
        answer = self.answer
        latency, clock = self.latency, time.perf_counter_ns
        limiter = self.limiter
        resp: bytes | None | Drop
        while True:
            try:
                data, addr = recv(RECV_BYTES)
            except OSError:
                if stopping[0]:
                    return
                continue
            if stopping[0]:
                return
            if limiter is not None:
                over = limiter.check(data, key_of_addr(addr))
                if over is not None:
                    if over:
                        try:
                            send(over, addr)
                        except OSError:
                            pass
                    continue
            t0 = clock() if latency is not None else 0
            if self.log_queries:
                resp = answer(data, addr)
            else:
                zs = state.zones
                try:
                    resp = (
                        fast(zs, data, False, counts)
                        if zs.gate is None
                        else gate_answer(zs, data, False, counts, addr[0])
                    )
                except Exception:  # noqa: BLE001 - an internal error answers SERVFAIL (_failed logs it)
                    resp = self._failed(data, addr)
                if resp is DROP:
                    continue
                if resp is None:
                    resp = self._slow_udp(data, addr)
            if latency is not None:
                latency.observe(clock() - t0, 1)
            if resp is not None:
                try:
                    send(resp, addr)
                except OSError as exc:  # an unreachable client must not stop the loop
                    log.debug("sendto %s failed: %s", addr, exc)

    def serve_udp_batched(self, sock: socket.socket, stopping: list[bool]) -> None:
        """Like serve_udp, through recvmmsg/sendmmsg (see mmsg.py); falls back to it on failure."""
        try:
            limit = self.limiter.check_sockaddr if self.limiter is not None else None
            mmsg.BatchLoop(sock).run(self._quick, self._slow_udp, stopping, self.latency, limit, self._gated)
        except Exception:
            # The batch loop only moves bytes; if it breaks, serving on must not depend on it.
            log.exception("batched UDP loop failed; continuing with recvfrom/sendto")
            self.serve_udp(sock, stopping)

    def _quick(self, data: bytes) -> bytes | None:
        try:
            return fast(self.state.zones, data, False, self.counts)
        except Exception:  # noqa: BLE001 - an internal error answers SERVFAIL (_failed logs it)
            return self._failed(data, ("?", 0))

    def _gated(self) -> mmsg.Gated | None:
        """For the batched loop, once per batch: the gated answer when the zone set has a gate
        (gate.batch_answerer; the zone set is read once for the batch)."""
        zs = self.state.zones
        if zs.gate is None:
            return None
        return gate_batch(zs, self.counts, self._failed, self._slow_udp)

    def _slow_udp(self, data: bytes, client: Any) -> bytes | None:
        try:
            got = slow.handle(self.state.zones, data, _ip(client), False, self.counts)
            return self._transfer_over_udp(data) if isinstance(got, xfr.TransferRequest) else got
        except Exception:  # noqa: BLE001 - an internal error answers SERVFAIL (_failed logs it)
            return self._failed(data, client)

    def _transfer_over_udp(self, data: bytes) -> bytes | None:
        log.error("a transfer was granted over UDP; answering SERVFAIL")
        return slow.servfail(data)

    def _failed(self, data: bytes, client: Any) -> bytes | None:
        """SERVFAIL for the query being answered when an exception was raised (called in `except`).

        A packet that trips a bug can be sent a million times: each is counted, but the log
        gets one line a second at most (the first of each raising site with its traceback).
        """
        exc = sys.exc_info()[1]
        self.errors.event(
            logging.ERROR, "internal error answering %s from %s: %s; sent SERVFAIL",
            describe(data, self.state.zones), _ip(client), brief(exc), exc=exc,
        )  # fmt: skip
        bump(self.counts, NO_ZONE, SERVFAIL)
        try:
            return slow.servfail(data)
        except Exception:  # noqa: BLE001 - already counted and logged above: a bare header will do
            return data[:2] + b"\x80\x02" + b"\x00" * 8 if len(data) >= 12 else None

    def _log(self, data: bytes, resp: bytes | None, client: Any, tcp: bool) -> None:
        if resp is None:
            outcome = "dropped" if not tcp else "transfer"
        else:
            rcode = RCODES.get(resp[3] & 0x0F, str(resp[3] & 0x0F)) if len(resp) >= 12 else "?"
            ancount = (resp[6] << 8) | resp[7] if len(resp) >= 12 else 0
            tc = " TC" if len(resp) >= 12 and resp[2] & 0x02 else ""
            outcome = f"{rcode} an={ancount}{tc}"
        qlog.info(
            "query %s %s %s -> %s", _ip(client), "tcp" if tcp else "udp", describe(data, self.state.zones), outcome
        )


def _ip(client: Any) -> str:
    return str(client[0]) if isinstance(client, tuple) else str(client)
