"""Response-rate limiting per client network, over UDP only; off unless `--rrl-qps N`.

Inside the server: UDP loops (core.serve_udp, mmsg.BatchLoop) -> `RateLimiter.check`
before a datagram is answered. Clients are grouped by /24 (IPv4) or /56 (IPv6): the
granularity of BIND's RRL, so one network cannot dodge the limit by rotating addresses.
Each group has a token bucket: `qps` tokens a second, at most `burst` saved. A query
over its group's quota is answered as the operator chose:

  drop   no reply (the resolver times out and retries elsewhere)
  slip   an empty reply with TC set: a real resolver retries over TCP, which is not
         limited and cannot be spoofed; a spoofed victim gets no more bytes than were sent
  code   an answer in 127.255.255.0/24, Spamhaus-style: 127.255.255.255 with the TXT
         'Excessive number of queries' by default. Opt-in, because an MTA that treats any
         127.0.0.0/8 answer as "listed" rejects mail on it (configure it to ignore
         127.255.255.0/24, as Spamhaus asks).

TCP is never limited: the three-way handshake proves the address, and the TCP loop has
its own connection cap. Each UDP thread owns its limiter, so there are no locks.
"""

from __future__ import annotations

import logging
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from publisher import errorcodes
from publisher.addresses import format_v4, parse_v4
from publisher.errors import ServerError
from publisher.server.stats import RrlCounts

log = logging.getLogger("publisher.server")

ANSWERS = ("drop", "slip", "code")
DEFAULT_CODE = format_v4(errorcodes.OVER_QUOTA.code)
#: Client networks tracked at once; past it, networks whose bucket refilled are forgotten.
MAX_TRACKED = 65536
SUMMARY_SECONDS = 10.0
_HDR = struct.Struct(">2sBBHHHH")
_AF_INET = socket.AF_INET.to_bytes(2, sys.byteorder)
_AF_INET6 = socket.AF_INET6.to_bytes(2, sys.byteorder)


@dataclass(frozen=True, slots=True)
class RrlSettings:
    """What `serve --rrl-qps N [--rrl-burst B] [--rrl-answer drop|slip|code] [--rrl-code IP]` asked for."""

    qps: float
    burst: float | None = None  # None: one second's worth (qps)
    answer: str = "drop"
    code: str = DEFAULT_CODE
    ttl: int = errorcodes.TTL  # of the 'code' answers: short, so a resolver asks again once under quota

    def __post_init__(self) -> None:
        if not self.qps > 0:
            raise ServerError(f"--rrl-qps {self.qps}: want a positive number of queries per second")
        if self.burst is not None and self.burst < 1:
            raise ServerError(f"--rrl-burst {self.burst}: want at least 1")
        if self.answer not in ANSWERS:
            raise ServerError(f"--rrl-answer {self.answer!r}: want one of {', '.join(ANSWERS)}")
        try:
            code = parse_v4(self.code)
        except ValueError:
            code = -1
        if not errorcodes.is_error_code(code):
            raise ServerError(
                f"--rrl-code {self.code!r}: want an address in 127.255.255.0/24 (e.g. {DEFAULT_CODE}), "
                "the range no DNSBL uses for listings"
            )

    @property
    def txt(self) -> str:
        known = errorcodes.BY_CODE.get(parse_v4(self.code))
        return known.txt if known is not None else "Query rate limit exceeded"


def key_of_sockaddr(raw: bytes | memoryview) -> bytes:
    """The network of a kernel sockaddr (as recvmmsg fills it): /24 or /56, family-tagged."""
    fam = bytes(raw[0:2])
    if fam == _AF_INET:
        return b"4" + bytes(raw[4:7])
    if fam == _AF_INET6:
        return b"6" + bytes(raw[8:15])
    return b"?"


def key_of_addr(addr: tuple[str, int] | tuple[str, int, int, int]) -> bytes:
    """The network of a (host, port, ...) address tuple, as key_of_sockaddr gives it."""
    host = addr[0].split("%", 1)[0]
    try:
        if ":" in host:
            return b"6" + socket.inet_pton(socket.AF_INET6, host)[:7]
        return b"4" + socket.inet_pton(socket.AF_INET, host)[:3]
    except OSError:
        return b"?"


def _question_end(data: bytes) -> int:
    """Where the one question of a plain query ends, or 0 when it is not one."""
    if len(data) < 17 or data[2] & 0xF8 or data[4:6] != b"\x00\x01":
        return 0
    pos = 12
    try:
        ln = data[pos]
        while ln:
            if ln > 63:
                return 0
            pos += ln + 1
            ln = data[pos]
    except IndexError:
        return 0
    end = pos + 5
    return end if end <= len(data) and pos <= 266 else 0


class RateLimiter:
    """Token buckets per client network for one UDP thread."""

    def __init__(
        self, settings: RrlSettings, clock: Callable[[], float] = time.monotonic, counts: RrlCounts | None = None
    ) -> None:
        self.settings = settings
        #: What the queries over quota got (exported as dnsbl_rrl_*_total).
        self.counts = counts if counts is not None else RrlCounts()
        self.qps = float(settings.qps)
        self.burst = float(settings.burst if settings.burst is not None else max(1.0, settings.qps))
        self.clock = clock
        self.buckets: dict[bytes, list[float]] = {}
        self._summary_at = clock()
        self._summary_count = 0
        code = parse_v4(settings.code).to_bytes(4, "big")
        ttl = struct.pack(">I", settings.ttl)
        text = settings.txt.encode("ascii")
        self._a_rr = b"\xc0\x0c\x00\x01\x00\x01" + ttl + b"\x00\x04" + code
        self._txt_rr = b"\xc0\x0c\x00\x10\x00\x01" + ttl + struct.pack(">HB", len(text) + 1, len(text)) + text

    def allow(self, key: bytes) -> bool:
        """Take a token from the network's bucket; False when it has none."""
        now = self.clock()
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= MAX_TRACKED:
                self._forget(now)
            self.buckets[key] = [self.burst - 1.0, now]
            return True
        tokens = bucket[0] + (now - bucket[1]) * self.qps
        if tokens > self.burst:
            tokens = self.burst
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return True
        bucket[0] = tokens
        return False

    def _forget(self, now: float) -> None:
        """Drop the networks whose bucket is full again (they are as good as new)."""
        full = [k for k, (tokens, at) in self.buckets.items() if tokens + (now - at) * self.qps >= self.burst]
        for k in full:
            del self.buckets[k]
        if len(self.buckets) >= MAX_TRACKED // 2:  # a spoofed flood from everywhere: start afresh
            self.buckets.clear()

    def check(self, data: bytes, key: bytes) -> bytes | None:
        """None: within quota, answer normally. Else the reply to send instead (b'' = none)."""
        if self.allow(key):
            return None
        reply = self.over_quota(data)
        counts = self.counts
        if not reply:
            counts.dropped += 1
        elif self.settings.answer == "slip":
            counts.slipped += 1
        else:
            counts.coded += 1
        self._summary_count += 1
        now = self.clock()
        if now - self._summary_at >= SUMMARY_SECONDS:
            log.warning(
                "rate limit: %d queries over %s/s answered with %s in the last %.0fs (%d since start)",
                self._summary_count, f"{self.qps:g}", self.settings.answer, now - self._summary_at, counts.total,
            )  # fmt: skip
            self._summary_at, self._summary_count = now, 0
        return reply

    def check_sockaddr(self, data: bytes, raw: bytes | memoryview) -> bytes | None:
        """`check` for the batched loop, keyed straight from the kernel's sockaddr bytes."""
        return self.check(data, key_of_sockaddr(raw))

    def over_quota(self, data: bytes) -> bytes:
        """The reply for an over-quota query: b'' to drop, else a reply no bigger than needed."""
        answer = self.settings.answer
        if answer == "drop":
            return b""
        end = _question_end(data)
        if not end:
            return b""  # only plain queries get anything back
        question = data[12:end]
        rd, cd = data[2] & 0x01, data[3] & 0x10
        if answer == "slip":
            return _HDR.pack(data[:2], 0x82 | rd, cd, 1, 0, 0, 0) + question
        qtype = (data[end - 4] << 8) | data[end - 3]
        records = []
        if qtype in (1, 255):
            records.append(self._a_rr)
        if qtype in (16, 255):
            records.append(self._txt_rr)
        return _HDR.pack(data[:2], 0x84 | rd, cd, 1, len(records), 0, 0) + question + b"".join(records)
