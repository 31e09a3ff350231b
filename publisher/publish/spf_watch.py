"""`watch` refreshing SPF partners on each zone's `spf: schedule:`.

Each zone with `spf:` settings (zones.yaml of HEAD) is refreshed at the first check, then
every `schedule.every` seconds times a random factor within 1 +/- `schedule.jitter` (so that
many publishers do not ask a partner's DNS at the same moment), with at most
`schedule.budget` DNS queries per run; the partners a budget left out go first next time.
The refresh commits like `publisher refresh-spf`; the Watcher then publishes that commit
through the same plan, guard rails and write as any other (`action: watch`). A failing
refresh is logged once per distinct message and tried again at the next due time.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
from collections.abc import Callable
from pathlib import Path

from publisher.errors import PublisherError
from publisher.lists.config import load_config_marked
from publisher.model import ZoneConfig
from publisher.publish.spf_refresh import Expander, RefreshReport, refresh_spf
from publisher.publish.vcs import GitTree, find_repo
from publisher.spf.result import Resolver

log = logging.getLogger("publisher.watch")

#: A partner's refresh statuses that need a person: logged as warnings, named by `watch --once`.
ATTENTION = frozenset({"unchanged", "kept", "failing"})
#: The schedule's file in zones/ (next refresh per zone; partners a budget left out).
STATE_FILE = "spf-schedule.json"

#: Draws the jitter factor: uniform(low, high).
Uniform = Callable[[float, float], float]


class SpfRunner:
    """The SPF side of a Watcher: which zones are due, their runs, their carry-over."""

    def __init__(
        self,
        lists: Path,
        *,
        resolver: Callable[[], Resolver],
        expand: Callable[[], Expander],
        uniform: Uniform = random.uniform,
        refresh: Callable[..., RefreshReport] = refresh_spf,
        state: Path | None = None,
    ) -> None:
        self.lists = lists
        self.resolver = resolver  # a fresh resolver per run: its answer cache lives for one run
        self.expand = expand  # loaded when a zone is first due (the CLI imports the expansion lazily)
        self.uniform = uniform
        self.refresh = refresh
        self.due: dict[str, dt.datetime] = {}  # zone -> when it is refreshed next (absent: at once)
        self.first: dict[str, tuple[str, ...]] = {}  # zone -> partners a budget left out last run
        #: where `due` and `first` are kept between runs (zones/spf-schedule.json): a restarted
        #: watch, or `watch --once` from cron, keeps to the schedule instead of asking at once
        self.state = state
        self._load()
        self.reports: list[RefreshReport] = []  # of the last runs (one per due zone)
        self.error: str | None = None  # the last failure logged (logged once)

    def zones(self) -> list[ZoneConfig]:
        """The zones of HEAD with `spf:` settings."""
        config, _, _ = load_config_marked(GitTree(find_repo(self.lists), "HEAD"))
        return [z for z in config.zones if z.spf is not None] if config is not None else []

    def next_wait(self, zone: ZoneConfig) -> float:
        """Seconds until the zone's next refresh: `every` times a factor within 1 +/- jitter."""
        assert zone.spf is not None
        schedule = zone.spf.schedule
        return schedule.every * self.uniform(1 - schedule.jitter, 1 + schedule.jitter)

    def run_due(self, now: dt.datetime) -> bool:
        """Refresh every zone that is due; True when a refresh committed something."""
        self.reports = []
        committed = False
        try:
            zones = self.zones()
        except PublisherError as exc:
            self._failed(f"cannot read the zones for the SPF refresh: {exc}")
            return False
        for zone in zones:
            when = self.due.get(zone.name)
            if when is not None and now < when:
                continue
            assert zone.spf is not None
            self.due[zone.name] = now + dt.timedelta(seconds=self.next_wait(zone))
            try:
                report = self.refresh(
                    self.lists,
                    resolver=self.resolver(),
                    expand=self.expand(),
                    now=now,
                    budget=zone.spf.schedule.budget,
                    zone=zone.name,
                    first=self.first.get(zone.name, ()),
                )
            except PublisherError as exc:
                self._failed(f"SPF refresh of {zone.name} failed: {exc}")
                continue
            self.error = None
            self.reports.append(report)
            self.first[zone.name] = report.unreached
            for item in report.refreshed:
                trouble = item.partner.status in ATTENTION
                log.log(logging.WARNING if trouble else logging.INFO, "spf %s: %s", zone.name, item.partner.summary)
            if report.commit is not None:
                committed = True
                log.info("spf %s: committed %s: %s", zone.name, report.commit[:10], report.message.splitlines()[0])
            log.info("spf %s: next refresh at %s", zone.name, self.due[zone.name].isoformat(timespec="seconds"))
        self.save()
        return committed

    @property
    def attention(self) -> list[str]:
        """`partner.example (kept)` for every partner of the last runs that needs a person."""
        return [
            f"{item.partner.domain} ({item.partner.status})"
            for report in self.reports
            for item in report.refreshed
            if item.partner.status in ATTENTION
        ]

    def refresh_now(self) -> None:
        """Every zone due at the next check (the pull dropped the refresh's own commits)."""
        self.due.clear()
        self.save()

    def _load(self) -> None:
        if self.state is None or not self.state.exists():
            return
        try:
            raw = json.loads(self.state.read_text())
            self.due = {str(z): dt.datetime.fromisoformat(str(when)) for z, when in raw.get("due", {}).items()}
            self.first = {str(z): tuple(str(d) for d in names) for z, names in raw.get("first", {}).items()}
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("spf: %s is unreadable (%s); every zone is refreshed at once", self.state, exc)
            self.due, self.first = {}, {}

    def save(self) -> None:
        """Write `due` and `first` (a temporary file renamed over the state: never half written)."""
        if self.state is None:
            return
        data = {
            "due": {z: when.isoformat(timespec="seconds") for z, when in sorted(self.due.items())},
            "first": {z: list(names) for z, names in sorted(self.first.items()) if names},
        }
        try:
            self.state.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state.with_name(f".{self.state.name}.tmp")
            tmp.write_text(json.dumps(data, indent=2) + "\n")
            os.replace(tmp, self.state)
        except OSError as exc:
            log.warning("spf: cannot keep the schedule in %s (%s); a restart refreshes at once", self.state, exc)

    def _failed(self, message: str) -> None:
        if message != self.error:
            log.error("%s", message)
        self.error = message
