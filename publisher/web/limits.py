"""Rate limits of the web face: token buckets per key (a client network, a contact address,
a requested address), in memory, bounded.

A key's bucket holds `burst` tokens and gains `rate` tokens a second; a request takes one or
is refused with the seconds until the next token (the 429's Retry-After). At most `max_keys`
buckets are kept, least recently used dropped first, so a flood of distinct keys costs bounded
memory (a dropped key starts again full: the bound favours memory over exactness). Thread-safe
(the routes run in a thread pool). `client_key` folds a client address to its /24 (IPv6 /56),
as the DNS server's RRL does, so one network shares one bucket.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_KEYS = 65536


def client_key(address: str) -> str:
    """The network a client address is limited by: IPv4 /24, IPv6 /56 (IPv4-mapped: IPv4)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address[:64]  # not an address (a test client's name): limited by itself
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 56
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


class Limiter:
    """`burst` requests at once, then one every 1/`rate` seconds, per key."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a limit needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._lock = threading.Lock()

    @classmethod
    def per(cls, count: int, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> Limiter:
        """`count` requests per `seconds`, all of them at once if need be."""
        return cls(count / seconds, count, clock=clock)

    def take(self, key: str) -> int:
        """Take a token for `key`: 0 when granted, else the whole seconds until one is there (>= 1)."""
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            granted = tokens >= 1.0
            if granted:
                tokens -= 1.0
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        if granted:
            return 0
        return max(1, int((1.0 - tokens) / self.rate + 0.999))

    def give_back(self, key: str) -> None:
        """Return the token a `take` of `key` used (what it paid for did not happen)."""
        with self._lock:
            found = self._buckets.get(key)
            if found is not None:
                self._buckets[key] = (min(float(self.burst), found[0] + 1.0), found[1])

    def __len__(self) -> int:
        return len(self._buckets)
