"""The web face's rate limits: a burst, then the rate; per network; bounded memory."""

from __future__ import annotations

from publisher.web.limits import Limiter, client_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_one_per_interval_with_the_wait_told() -> None:
    clock = Clock()
    limit = Limiter.per(5, 3600, clock=clock)
    assert [limit.take("192.0.2.0/24") for _ in range(5)] == [0] * 5
    assert limit.take("192.0.2.0/24") == 720  # the next token in 3600/5 s
    assert limit.take("198.51.100.0/24") == 0  # another network has its own bucket
    clock.now += 719
    assert limit.take("192.0.2.0/24") == 1
    clock.now += 1
    assert limit.take("192.0.2.0/24") == 0


def test_a_flood_of_distinct_keys_keeps_a_bounded_table() -> None:
    limit = Limiter(1.0, 1, max_keys=1000, clock=Clock())
    for i in range(20000):
        limit.take(f"key{i}")
    assert len(limit) == 1000


def test_clients_are_limited_by_network() -> None:
    assert client_key("192.0.2.77") == client_key("192.0.2.1") == "192.0.2.0/24"
    assert client_key("::ffff:192.0.2.9") == "192.0.2.0/24"
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:3::9") == "2001:db8:1::/56"
    assert client_key("testclient") == "testclient"
