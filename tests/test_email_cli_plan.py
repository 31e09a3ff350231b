"""The plan of an email zone: its measure reads as email addresses (history.jsonl keeps the key
"names"), its entries show as written, and the removal and growth guard rails apply to it.
Zones built by hand as the compiler builds them (tests/email_builders.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tests.email_builders import ZONE, email_config, email_source, email_zone

from publisher.cli.report import change_line, summary
from publisher.lists.tree import DirTree
from publisher.publish.email_entries import as_written
from publisher.publish.guards import check_guards
from publisher.publish.history import measures_json
from publisher.publish.plan import EMAILS, Plan, ZonePlan, plan_zone, zone_sizes

NOW = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)
CFG = email_config()
assert CFG.email is not None
SETTINGS = CFG.email


def _addresses(n: int) -> list[tuple[int, str, str]]:
    return [(i + 3, f"Drop.{i}@Fraud.example", "drop box") for i in range(n)]


def _plan(before: int, after: int) -> ZonePlan:
    old = email_source("hbl/drops.yaml", _addresses(before), SETTINGS)
    new = email_source("hbl/drops.yaml", _addresses(after), SETTINGS)
    return plan_zone(
        CFG,
        email_zone(CFG, [new]),
        [new],
        NOW,
        before=email_zone(CFG, [old]),
        before_sources=[old],
        before_as_of=NOW,
        same_settings=True,
        keep=50,
    )


def test_an_email_zone_counts_addresses_without_its_test_point() -> None:
    zone = email_zone(CFG, [email_source("hbl/drops.yaml", _addresses(3), SETTINGS)])
    assert zone.dom_exact.get("test._email", -1) >= 0
    assert zone_sizes(zone) == {EMAILS: 3}


def test_the_summary_and_history_of_an_email_zone_read_as_addresses() -> None:
    zp = _plan(3, 4)
    assert summary(zp, 2026112701) == f"{ZONE} serial 2026112701: +1 listing (+1 email address)"
    assert measures_json(zp) == {"names": {"before": 3, "after": 4, "added": 1, "removed": 0, "answer_differently": 0}}


def test_removing_most_of_a_100_address_zone_needs_force() -> None:
    zp = _plan(100, 10)
    (shrink, *_) = check_guards(Plan((zp,)), {ZONE: CFG})
    assert shrink.rule == "shrink"
    assert shrink.message.startswith(f"{ZONE} would lose 90 of its 100 listings (90%")
    assert any(
        v.message.startswith(f"{ZONE} would lose 90 of its 100 email addresses")
        for v in check_guards(Plan((zp,)), {ZONE: CFG})
    )
    assert check_guards(Plan((_plan(100, 90),)), {ZONE: CFG}) == []


def test_growing_an_email_zone_tenfold_needs_force() -> None:
    (growth, *_) = (v for v in check_guards(Plan((_plan(3, 40),)), {ZONE: CFG}) if v.rule == "growth")
    assert growth.message.startswith(f"{ZONE} would grow from 3 to 40 listings")


def test_plan_entries_show_the_address_as_written_or_the_bulk_line(tmp_path: Path) -> None:
    old = email_source("hbl/drops.yaml", _addresses(1), SETTINGS)
    new = email_source("hbl/drops.yaml", [*_addresses(1), (9, "John.Doe+Shop@GoogleMail.com", "phish")], SETTINGS)
    (tmp_path / "hbl").mkdir()
    (tmp_path / "hbl" / "feed.txt").write_text("# feed\nDrop@Fraud.example\n")
    feed = email_source("hbl/feed.txt", [(2, "Drop@Fraud.example", "feed")], SETTINGS, curated=False)
    zp = plan_zone(
        CFG,
        email_zone(CFG, [new, feed]),
        [new, feed],
        NOW,
        before=email_zone(CFG, [old]),
        before_sources=[old],
        before_as_of=NOW,
        keep=50,
    )
    shown = as_written(zp, [new, feed], [old], DirTree(tmp_path), None)
    assert [change_line(c, {}) for c in shown.changes] == [
        "  + hbl/drops.yaml:9  John.Doe+Shop@GoogleMail.com  127.0.0.2 'phish'",
        "  + hbl/feed.txt:2  Drop@Fraud.example  127.0.0.2 'feed'",
    ]
