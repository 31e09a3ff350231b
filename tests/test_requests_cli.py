"""`publisher requests list | show | accept | reject` on a real repository and zones/ folder."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from tests.test_request_filing import ask, make_repo
from tests.test_vcs import commit_all, git

from publisher.cli.app import main
from publisher.compile.lookup import parse_query, zone_answer
from publisher.publish.manifest import load_published, read_manifest
from publisher.publish.vcs import ListsRepo, request_refs
from publisher.web import filing
from publisher.web.filing import file_request

NOW = dt.datetime.now(dt.UTC)


def run(where: ListsRepo, zones: Path, *args: str) -> int:
    return main(["--lists", str(where.lists), "--zones", str(zones), *args])


@pytest.fixture
def published(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[ListsRepo, Path]:
    where = make_repo(tmp_path)
    zones = tmp_path / "zones"
    assert run(where, zones, "publish") == 0
    capsys.readouterr()
    return where, zones


def answer(zones: Path, zone: str, query: str) -> list[tuple[int, str]]:
    return zone_answer(load_published(zones).zones[zone], parse_query(query))


def snapshot(where: ListsRepo, zones: Path) -> tuple[str, str, str | None]:
    manifest = read_manifest(zones)
    return (
        git(where.root, "for-each-ref").stdout,
        git(where.root, "status", "--porcelain").stdout,
        manifest.generation if manifest else None,
    )


def test_list_show_accept_publishes_and_archives(
    published: tuple[ListsRepo, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    where, zones = published
    assert answer(zones, "bl.example.test", "198.51.100.77")
    filed = file_request(where, "main", ask(target="198.51.100.77"), now=NOW)
    assert run(where, zones, "requests", "list") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["ID", "KIND", "TARGET", "ZONES", "ORGANISATION", "CONTACT", "AGE", "STATE"]
    assert out[1].split()[:4] == [filed.id, "delist", "198.51.100.77", "bl.example.test"]
    assert out[1].split()[-1] == "open"
    assert run(where, zones, "requests", "show", filed.id) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"commit {filed.commit}\n") and "Request-Token: t1" in shown
    assert "+  - ip: 198.51.100.77" in shown and "\x1b[" not in shown

    assert run(where, zones, "requests", "accept", filed.id, "--dry-run") == 0
    assert "dry run: nothing was changed" in capsys.readouterr().out
    assert answer(zones, "bl.example.test", "198.51.100.77")

    assert run(where, zones, "requests", "accept", filed.id) == 0
    out_text = capsys.readouterr().out
    assert answer(zones, "bl.example.test", "198.51.100.77") == []
    head = git(where.root, "rev-parse", "main").stdout.strip()
    assert git(where.root, "rev-parse", "HEAD").stdout.strip() == head
    assert git(where.root, "log", "-1", "--format=%P", head).stdout.split()[1] == filed.commit  # a merge
    manifest = read_manifest(zones)
    assert manifest is not None and manifest.source.commit == head
    assert "tell the requester: postmaster@example.org" in out_text
    assert git(where.root, "rev-parse", f"refs/requests/accepted/{filed.id}").stdout.strip() == filed.commit
    assert git(where.root, "branch", "--list", "requests/*").stdout == ""
    assert run(where, zones, "history", "--json") == 0
    history = json.loads(capsys.readouterr().out)
    assert head in json.dumps(history[-1])
    assert run(where, zones, "requests", "list", "--json", "--all") == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["id"], row["state"], row["contact"]) == (filed.id, "accepted", "postmaster@example.org")
    # its confirmation link, visited again, finds the request where it is kept now
    again = filing.filed(where, "t1")
    assert again is not None and (again.id, again.state, again.branch) == (
        filed.id,
        "accepted",
        f"refs/requests/accepted/{filed.id}",
    )


def test_a_guard_rail_refusal_moves_nothing(
    published: tuple[ListsRepo, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    where, zones = published
    # an allowlisted gateway inside a blocklisted range: the blocklist then covers a protected address
    filed = file_request(where, "main", ask("allowlist", "203.0.113.10"), now=NOW)
    before = snapshot(where, zones)
    assert run(where, zones, "requests", "accept", filed.id) == 3
    err = capsys.readouterr().err
    assert "covers-protected" in err or "protected" in err
    assert snapshot(where, zones) == before
    assert [r.state for r in request_refs(where)] == ["open"]


def test_two_requests_appending_to_one_file_are_both_accepted(
    published: tuple[ListsRepo, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Both append to bl/delisted.yaml: once the first is merged, the second conflicts at the end of
    the file; accept makes it again on the new base (its entry appended there) and publishes."""
    where, zones = published
    first = file_request(where, "main", ask(target="198.51.100.77", token="a"), now=NOW)
    second = file_request(where, "main", ask(target="2001:db8:dead:beef::25", token="b"), now=NOW)
    assert run(where, zones, "requests", "accept", first.id) == 0
    capsys.readouterr()
    assert run(where, zones, "requests", "accept", second.id) == 0
    out = capsys.readouterr().out
    assert "main has changed bl/delisted.yaml since it was filed" in out
    assert "its entries appended again on main" in out
    assert answer(zones, "bl.example.test", "198.51.100.77") == []
    assert answer(zones, "bl.example.test", "2001:db8:dead:beef::25") == []
    text = git(where.root, "show", "main:lists/bl/delisted.yaml").stdout
    assert text.count("  - ip: ") == 2 and text.index("198.51.100.77") < text.index("2001:db8:dead:beef::25")
    rebuilt = git(where.root, "rev-parse", f"refs/requests/accepted/{second.id}").stdout.strip()
    assert rebuilt != second.commit  # the request as made again, with its own message
    message = git(where.root, "log", "-1", "--format=%an|%B", rebuilt).stdout
    assert message.startswith("publisher web|Delisting request") and "Request-Token: b" in message


def test_list_is_in_id_order_after_a_request_was_made_again(
    published: tuple[ListsRepo, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A request made again on accept is a newer commit: the list still goes by ID, as filed."""
    where, zones = published
    then = NOW - dt.timedelta(hours=2)
    filed = [
        file_request(where, "main", ask(target=target, token=target), now=then)
        for target in ("198.51.100.77", "192.0.2.3", "2001:db8:dead:beef::25")
    ]
    assert run(where, zones, "requests", "accept", filed[0].id) == 0
    assert run(where, zones, "requests", "accept", filed[1].id) == 0  # made again on the new base: now
    capsys.readouterr()
    assert run(where, zones, "requests", "list", "--all") == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert [row.split()[0] for row in rows] == [f.id for f in filed]
    assert [row.split()[-1] for row in rows] == ["accepted", "accepted", "open"]
    # ...and its age is the requester's confirmation's, not the remake's
    assert run(where, zones, "requests", "list", "--all", "--json") == 0
    ages = [row["age_seconds"] for row in json.loads(capsys.readouterr().out)]
    assert ages[0] == ages[1] == ages[2] >= 2 * 3600


def test_a_conflict_that_cannot_be_made_again_is_a_clear_error(
    published: tuple[ListsRepo, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A request edited by hand on its branch (an entry changed, not appended) that no longer merges:
    accept refuses, names the file, and moves nothing."""
    where, zones = published
    filed = file_request(where, "main", ask(target="198.51.100.77"), now=NOW)
    git(where.root, "checkout", "-q", f"requests/{filed.id}")
    abuse = where.lists / "bl" / "abuse.yaml"
    abuse.write_text(abuse.read_text().replace("dictionary attack against the submission port", "reworded here"))
    commit_all(where.root, "a maintainer's edit on the request's branch")
    git(where.root, "checkout", "-q", "main")
    abuse.write_text(abuse.read_text().replace("dictionary attack against the submission port", "reworded there"))
    commit_all(where.root, "reword a reason")
    before = snapshot(where, zones)
    assert run(where, zones, "requests", "accept", filed.id) == 1
    err = capsys.readouterr().err
    assert "changes bl/abuse.yaml by more than appending entries" in err and "git merge requests/" in err
    assert snapshot(where, zones) == before


def test_dirty_lists_are_not_run_over(published: tuple[ListsRepo, Path], capsys: pytest.CaptureFixture[str]) -> None:
    where, zones = published
    filed = file_request(where, "main", ask(), now=NOW)
    (where.lists / "bl" / "delisted.yaml").write_text("entries: []  # a maintainer's draft\n")
    before = snapshot(where, zones)
    assert run(where, zones, "requests", "accept", filed.id) == 1
    assert "uncommitted changes: bl/delisted.yaml" in capsys.readouterr().err
    assert snapshot(where, zones) == before


def test_reject_keeps_the_record_with_the_reason(
    published: tuple[ListsRepo, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    where, zones = published
    filed = file_request(where, "main", ask(), now=NOW)
    assert run(where, zones, "requests", "reject", filed.id, "--why", "  ") == 2
    assert run(where, zones, "requests", "reject", filed.id, "--why", "still sending spam\nsee ABUSE-1400") == 0
    assert "tell the requester: postmaster@example.org" in capsys.readouterr().out
    ref = f"refs/requests/rejected/{filed.id}"
    message = git(where.root, "log", "-1", "--format=%B", ref).stdout
    assert message.startswith(
        f"Reject request {filed.id}\n\nstill sending spam\nsee ABUSE-1400\n\nRejected-By: Alice Admin"
    )
    assert git(where.root, "rev-parse", f"{ref}^").stdout.strip() == filed.commit
    assert (
        git(where.root, "rev-parse", f"{ref}^{{tree}}").stdout
        == git(where.root, "rev-parse", f"{filed.commit}^{{tree}}").stdout
    )
    (record,) = request_refs(where)
    assert (record.state, record.commit, record.trailer("Request-Token")) == ("rejected", filed.commit, "t1")
    assert run(where, zones, "requests", "show", filed.id) == 0
    assert "still sending spam" in capsys.readouterr().out
    assert run(where, zones, "requests", "accept", filed.id) == 1
    assert f"request {filed.id} is already rejected" in capsys.readouterr().err


def test_an_unknown_id_lists_the_open_ones(
    published: tuple[ListsRepo, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    where, zones = published
    assert run(where, zones, "requests", "show", "2026-01-01-0001") == 1
    assert "there are no open requests" in capsys.readouterr().err
    filed = file_request(where, "main", ask(), now=NOW)
    assert run(where, zones, "requests", "accept", "2026-01-01-0001") == 1
    assert f"no request 2026-01-01-0001; open requests: {filed.id}" in capsys.readouterr().err
    assert run(where, zones, "requests", "list") == 0
