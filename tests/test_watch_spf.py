"""watch refreshes SPF partners on the zone's schedule (jitter, budget, carry-over) and
publishes the refresh's commit through the usual path."""

from __future__ import annotations

import datetime as dt
import logging
import random
from pathlib import Path

import pytest
from tests.spf_builders import NOW, found, ok
from tests.spf_repo import ZONE, FakeExpand, NoResolver, spf_lists
from tests.test_publish import answer
from tests.test_vcs import git

from publisher.publish import history
from publisher.publish import spf_refresh as refresh
from publisher.publish.spf_refresh import refresh_spf
from publisher.publish.spf_watch import STATE_FILE, SpfRunner
from publisher.publish.watch import Watcher
from publisher.spf.result import Expansion

__all__ = ["spf_lists"]  # the fixture

PARTNER = ok(found("1.2.3.0/24", "include:_spf.partner.example", "ip4:1.2.3.0/24"))
OTHER = Expansion("other.example", "ok", found=(), queries=1)


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def runner(lists: Path, fake: FakeExpand, draws: list[tuple[float, float]], factor: float = 1.0) -> SpfRunner:
    def uniform(low: float, high: float) -> float:
        draws.append((low, high))
        return factor

    refresh = refresh_spf
    return SpfRunner(lists, resolver=NoResolver, expand=lambda: fake, uniform=uniform, refresh=refresh)


def test_watch_refreshes_at_start_then_on_the_schedule_and_publishes_the_commit(
    spf_lists: Path, tmp_path: Path
) -> None:
    zones = tmp_path / "zones"
    fake = FakeExpand({"partner.example": PARTNER, "other.example": OTHER})
    draws: list[tuple[float, float]] = []
    clock = Clock(NOW)
    watcher = Watcher(spf_lists, zones, clock=clock, spf=runner(spf_lists, fake, draws, factor=1.1))
    assert watcher.check() == "published"
    assert [d for d, _ in fake.calls] == ["partner.example", "other.example"]
    assert draws == [(0.8, 1.2)]  # every: 1h, jitter: 0.2
    refresh_commit = git(spf_lists, "rev-parse", "HEAD").stdout.strip()
    assert git(spf_lists, "log", "-1", "--format=%s").stdout.strip() == "refresh-spf: 2 partners changed"
    record = history.read(zones)[-1]
    assert record.action == "watch" and record.commit == refresh_commit
    assert answer(zones, ZONE, "1.2.3.4") and answer(zones, ZONE, "9.9.9.9")
    # 1h x 1.1 = 66 minutes: not due at 65, due at 66
    clock.now = NOW + dt.timedelta(minutes=65)
    assert watcher.check() == "up to date" and len(fake.calls) == 2
    clock.now = NOW + dt.timedelta(minutes=66)
    fake.table["partner.example"] = ok(found("1.2.3.0/24", "ip4:1.2.3.0/24"), found("5.6.7.0/24", "ip4:5.6.7.0/24"))
    assert watcher.check() == "published" and len(fake.calls) == 4
    assert answer(zones, ZONE, "5.6.7.8")
    assert git(spf_lists, "log", "-1", "--format=%s").stdout.strip() == "refresh-spf: 1 partner changed"


def test_an_unchanged_refresh_publishes_nothing_new(spf_lists: Path, tmp_path: Path) -> None:
    zones = tmp_path / "zones"
    fake = FakeExpand({"partner.example": PARTNER, "other.example": OTHER})
    clock = Clock(NOW)
    watcher = Watcher(spf_lists, zones, clock=clock, spf=runner(spf_lists, fake, []))
    watcher.check()
    head = git(spf_lists, "rev-parse", "HEAD").stdout.strip()
    clock.now = NOW + dt.timedelta(hours=2)
    assert watcher.check() == "up to date" and len(fake.calls) == 4
    assert git(spf_lists, "rev-parse", "HEAD").stdout.strip() == head


def test_the_budget_leaves_partners_for_the_next_run_where_they_go_first(spf_lists: Path, tmp_path: Path) -> None:
    costly = Expansion("partner.example", "ok", found=PARTNER.found, queries=12)  # the zone's budget is 10
    fake = FakeExpand({"partner.example": costly, "other.example": OTHER})
    spf = runner(spf_lists, fake, [])
    assert spf.run_due(NOW)
    assert fake.calls == [("partner.example", 10)] and spf.first == {ZONE: ("other.example",)}
    assert spf.reports[0].failed[0].domain == "other.example"
    assert not spf.run_due(NOW + dt.timedelta(minutes=59))  # not due yet
    spf.run_due(NOW + dt.timedelta(hours=1))
    assert fake.calls[1:] == [("other.example", 10), ("partner.example", 9)]
    assert spf.first == {ZONE: ()}


def test_each_wait_is_within_the_jitter_of_every(spf_lists: Path) -> None:
    spf = SpfRunner(spf_lists, resolver=NoResolver, expand=lambda: FakeExpand({}), uniform=random.Random(7).uniform)
    (zone,) = spf.zones()
    waits = [spf.next_wait(zone) for _ in range(1000)]
    assert all(0.8 * 3600 <= w <= 1.2 * 3600 for w in waits)
    assert max(waits) - min(waits) > 0.3 * 3600  # the factor does vary


def test_a_failing_refresh_is_logged_and_the_publish_goes_on(spf_lists: Path, tmp_path: Path) -> None:
    fake = FakeExpand({"partner.example": PARTNER, "other.example": OTHER})
    refresh_spf(spf_lists, resolver=NoResolver(), expand=fake, now=NOW)
    git(spf_lists, "checkout", "-q", "--detach")
    fake.table["partner.example"] = ok(found("5.6.7.0/24", "ip4:5.6.7.0/24"))
    zones = tmp_path / "zones"
    spf = runner(spf_lists, fake, [])
    watcher = Watcher(spf_lists, zones, clock=Clock(NOW), spf=spf, pull=False)
    assert watcher.check() == "published"  # what HEAD holds, without the failed refresh
    assert spf.error is not None and "HEAD is detached" in spf.error
    assert answer(zones, ZONE, "1.2.3.4") and not answer(zones, ZONE, "5.6.7.8")


def test_the_schedule_outlives_the_process_so_watch_once_from_cron_keeps_to_it(
    spf_lists: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A restarted watch, or `watch --once` every minute from cron, refreshes when due, not at
    each start; the budget's carry-over survives too; a partner needing a person is a warning."""
    state = tmp_path / "zones" / STATE_FILE
    costly = Expansion("partner.example", "ok", found=PARTNER.found, queries=12)  # the zone's budget is 10
    fake = FakeExpand({"partner.example": costly, "other.example": OTHER})

    def started() -> SpfRunner:
        return SpfRunner(spf_lists, resolver=NoResolver, expand=lambda: fake, uniform=lambda lo, hi: 1.0, state=state)

    with caplog.at_level(logging.INFO, logger="publisher.watch"):
        first = started()
        assert first.run_due(NOW) and len(fake.calls) == 1
    assert first.attention == ["other.example (unchanged)"]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [f"spf {ZONE}: other.example: {refresh.UNREACHED}; nothing changed"]
    again = started()  # a new process: the due time and the carry-over come from zones/
    assert again.due == {ZONE: NOW + dt.timedelta(hours=1)} and again.first == {ZONE: ("other.example",)}
    assert not again.run_due(NOW + dt.timedelta(minutes=59)) and len(fake.calls) == 1
    started().run_due(NOW + dt.timedelta(hours=1))  # due: the left-out partner goes first
    assert fake.calls[1:] == [("other.example", 10), ("partner.example", 9)]
    state.write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="publisher.watch"):
        assert started().due == {}  # refreshed at once, and said why
    assert f"spf: {state} is unreadable" in caplog.text
