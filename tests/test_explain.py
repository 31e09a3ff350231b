"""explain: the published answer, the entries behind it (file:line) and git blame on them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from tests.test_publish import ABUSE, FILES, NOW, commit_file, run_cli
from tests.test_vcs import ALICE, BOB, git, init_repo

from publisher.addresses import parse_v4
from publisher.errors import ArtifactError, UsageError
from publisher.publish.explain import explain
from publisher.publish.release import publish

EXTRA = (
    "  - ip: 203.0.113.99\n    code: 127.0.0.3\n    reason: new spam source\n    expires: 2027-01-31\n"
    "  - ip: 192.0.2.8\n    exclude: true\n    reason: cleaned up\n"
)


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, Path, str, str]:
    lists = init_repo(tmp_path / "repo", FILES)
    first = git(lists, "rev-parse", "HEAD").stdout.strip()
    second = commit_file(lists, "bl/abuse.yaml", ABUSE + EXTRA, "list 203.0.113.99, unlist 192.0.2.8", BOB)
    zones = tmp_path / "zones"
    publish(lists, zones, now=NOW)
    return lists, zones, first, second


def test_explain_names_file_line_author_and_commit(published: tuple[Path, Path, str, str]) -> None:
    lists, zones, first, second = published
    result = explain("203.0.113.99", lists, zones, now=NOW)
    assert result.source is not None and result.source.commit == second
    by_zone = {z.zone: z for z in result.zones}
    assert set(by_zone) == {"bl.example.test", "wl.example.test"}  # the domain zone does not apply
    bl = by_zone["bl.example.test"]
    assert bl.answers == [(parse_v4("127.0.0.3"), "new spam source")]
    (entry,) = bl.entries
    assert (entry.hit.path, entry.hit.line, entry.hit.text) == ("bl/abuse.yaml", 6, "203.0.113.99")
    assert entry.hit.value.expires is not None and entry.hit.value.expires.year == 2027
    assert entry.blame is not None and (entry.blame.sha, entry.blame.author, entry.blame.email) == (second, *BOB)
    assert not by_zone["wl.example.test"].answers
    older = explain("192.0.2.5", lists, zones, now=NOW).zones[0]
    assert older.entries[0].hit.line == 2 and older.entries[0].blame is not None
    assert (older.entries[0].blame.sha, older.entries[0].blame.author) == (first, ALICE[0])


def test_an_unlisted_address_shows_the_nearest_exclusion(published: tuple[Path, Path, str, str]) -> None:
    lists, zones, _, second = published
    bl = next(z for z in explain("192.0.2.8", lists, zones, now=NOW).zones if z.zone == "bl.example.test")
    assert bl.answers == [] and bl.entries == []
    assert bl.exclusion is not None and (bl.exclusion.hit.path, bl.exclusion.hit.line) == ("bl/abuse.yaml", 10)
    assert bl.exclusion.blame is not None and bl.exclusion.blame.sha == second
    nothing = next(z for z in explain("10.9.8.7", lists, zones, now=NOW).zones if z.zone == "bl.example.test")
    assert nothing.answers == [] and nothing.exclusion is None


def test_explain_domains_test_points_and_expiry_since_the_publish(published: tuple[Path, Path, str, str]) -> None:
    lists, zones, _, _ = published
    (dbl,) = explain("spam.example", lists, zones, now=NOW).zones
    assert dbl.zone == "dbl.example.test" and dbl.entries[0].hit.path == "dbl/domains.yaml"
    test = explain("127.0.0.2", lists, zones, now=NOW).zones[0]
    assert test.test_point and test.answers
    later = explain("203.0.113.99", lists, zones, now=dt.datetime(2027, 2, 1, tzinfo=dt.UTC)).zones[0]
    assert later.answers and later.entries[0].expired  # still served until the next publish


def test_explain_cli_output(published: tuple[Path, Path, str, str]) -> None:
    lists, zones, _, second = published
    code, out, _ = run_cli("--lists", str(lists), "--zones", str(zones), "explain", "203.0.113.99")
    assert code == 0
    assert "bl.example.test (serial 2026112700): listed" in out
    assert "  by bl/abuse.yaml:6: 203.0.113.99 -> 127.0.0.3 'new spam source', expires 2027-02-01T00:00:00+00:00" in out
    assert f"\n    added by {BOB[0]} <{BOB[1]}> in {second[:10]}" in out
    assert "wl.example.test (serial 2026112700): not listed" in out
    code, out, _ = run_cli("--lists", str(lists), "--zones", str(zones), "explain", "192.0.2.8")
    assert "nearest covering exclusion: bl/abuse.yaml:10: 192.0.2.8 -> exclude (a hole)" in out


def test_explain_errors(published: tuple[Path, Path, str, str], tmp_path: Path) -> None:
    lists, zones, _, _ = published
    with pytest.raises(UsageError):
        explain("*.wild.example", lists, zones, now=NOW)
    with pytest.raises(ArtifactError, match="nothing published yet"):
        explain("192.0.2.1", lists, tmp_path / "empty", now=NOW)
