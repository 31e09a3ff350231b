"""refresh-spf on a real repository: the commit it makes, and what it refuses or leaves alone."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from tests.spf_builders import NOW, found, ok
from tests.spf_repo import PARTNERS, FakeExpand, NoResolver, spf_lists
from tests.test_vcs import git, write

from publisher.addresses import parse_network
from publisher.errors import SpfError
from publisher.publish.spf_refresh import RefreshReport, refresh_spf
from publisher.spf.result import Expansion, Found

__all__ = ["spf_lists"]  # the fixture

OTHER = Expansion(
    "other.example",
    "ok",
    record="v=spf1 ip4:5.6.7.0/28 -all",
    found=(Found(parse_network("5.6.7.0/28"), ("other.example", "ip4:5.6.7.0/28")),),
    queries=1,
)
PARTNER = ok(
    found("1.2.3.0/24", "include:_spf.partner.example", "ip4:1.2.3.0/24"),
    found("10.0.0.0/8", "ip4:10.0.0.0/8"),
    record="v=spf1 include:_spf.partner.example ip4:10.0.0.0/8 -all",
)
TIMEOUT = Expansion(
    "other.example", "temperror", why="DNS timeout at other.example (timeout after 5 s from 127.0.0.1:53)"
)


def run(lists: Path, table: dict[str, Expansion], **kwargs: object) -> RefreshReport:
    options: dict[str, object] = {"now": NOW}
    options.update(kwargs)
    return refresh_spf(lists, resolver=NoResolver(), expand=FakeExpand(table), **options)  # type: ignore[arg-type]


def head(lists: Path) -> str:
    return git(lists, "rev-parse", "HEAD").stdout.strip()


def test_the_refresh_commits_exactly_the_generated_files_with_a_summary(spf_lists: Path) -> None:
    before = head(spf_lists)
    # someone's work in progress: a modified file and a staged one stay as they are
    write(
        spf_lists,
        {"wl/partners.yaml": (spf_lists / "wl/partners.yaml").read_text() + "# wip\n", "wl/new.yaml": "entries: []\n"},
    )
    git(spf_lists, "add", "wl/new.yaml")
    report = run(spf_lists, {"partner.example": PARTNER, "other.example": OTHER})
    assert report.commit is not None and report.commit == head(spf_lists) and report.failed == ()
    assert git(spf_lists, "rev-parse", "HEAD~1").stdout.strip() == before
    shown = git(spf_lists, "show", "--name-only", "--format=%an <%ae>%n%B", "HEAD").stdout
    assert shown == (
        "publisher refresh-spf <refresh-spf@localhost>\n"
        "refresh-spf: 2 partners changed\n\n"
        "partner.example: +1 -0 (0 -> 256 addresses)\n"
        "other.example: +1 -0 (0 -> 16 addresses)\n\n"
        "Not listed:\n"
        "  partner.example > ip4:10.0.0.0/8: private-use range 10.0.0.0/8 (RFC 1918)\n"
        "\n\n"
        "lists/wl/spf/other.example.yaml\n"
        "lists/wl/spf/partner.example.yaml\n"
    )
    status = git(spf_lists, "status", "--porcelain").stdout
    assert status == "A  lists/wl/new.yaml\n M lists/wl/partners.yaml\n"
    text = (spf_lists / "wl/spf/partner.example.yaml").read_text()
    assert "declared in\n# wl/partners.yaml:5." in text and "  - ip: 1.2.3.0/24\n" in text
    assert git(spf_lists, "show", "HEAD:lists/wl/spf/partner.example.yaml").stdout == text


def test_the_author_is_gits_configured_identity(spf_lists: Path) -> None:
    git(spf_lists, "config", "user.name", "Olga Operator")
    git(spf_lists, "config", "user.email", "olga@example.test")
    run(spf_lists, {"partner.example": PARTNER, "other.example": OTHER})
    assert git(spf_lists, "log", "-1", "--format=%an <%ae> / %cn").stdout.strip() == (
        "Olga Operator <olga@example.test> / Olga Operator"
    )


def test_an_unchanged_refresh_commits_nothing(spf_lists: Path) -> None:
    run(spf_lists, {"partner.example": PARTNER, "other.example": OTHER})
    first = head(spf_lists)
    report = run(spf_lists, {"partner.example": PARTNER, "other.example": OTHER}, now=NOW + dt.timedelta(days=2))
    assert report.commit is None and report.changed == 0 and head(spf_lists) == first
    assert [r.partner.summary for r in report.refreshed] == [
        "partner.example: unchanged (256 addresses)",
        "other.example: unchanged (16 addresses)",
    ]


def test_a_dry_run_writes_and_commits_nothing(spf_lists: Path) -> None:
    first = head(spf_lists)
    report = run(spf_lists, {"partner.example": PARTNER, "other.example": OTHER}, dry_run=True)
    assert report.commit is None and report.changed == 2 and head(spf_lists) == first
    assert report.message.startswith("refresh-spf: 2 partners changed\n")
    assert not (spf_lists / "wl/spf").exists() and git(spf_lists, "status", "--porcelain").stdout == ""


def test_uncommitted_changes_to_a_generated_file_are_refused_before_any_lookup(spf_lists: Path) -> None:
    run(spf_lists, {"partner.example": PARTNER, "other.example": OTHER})
    path = spf_lists / "wl/spf/partner.example.yaml"
    path.write_text(path.read_text().replace("1.2.3.0/24", "1.2.0.0/16"))
    first = head(spf_lists)
    fake = FakeExpand({"partner.example": PARTNER, "other.example": OTHER})
    with pytest.raises(SpfError) as caught:
        refresh_spf(spf_lists, resolver=NoResolver(), expand=fake, now=NOW)
    assert str(caught.value).startswith(
        "refused: generated files have uncommitted changes: wl/spf/partner.example.yaml (modified); "
        "nothing was refreshed"
    )
    assert "git checkout -- FILE" in str(caught.value)
    assert fake.calls == [] and head(spf_lists) == first and "1.2.0.0/16" in path.read_text()


def test_a_timeout_leaves_that_partner_alone_and_commits_the_others(spf_lists: Path) -> None:
    run(spf_lists, {"partner.example": PARTNER, "other.example": OTHER})
    other = (spf_lists / "wl/spf/other.example.yaml").read_bytes()
    grown = ok(found("1.2.3.0/24", "ip4:1.2.3.0/24"), found("1.2.4.0/24", "ip4:1.2.4.0/24"))
    report = run(spf_lists, {"partner.example": grown, "other.example": TIMEOUT}, now=NOW + dt.timedelta(hours=6))
    assert [r.domain for r in report.failed] == ["other.example"] and report.commit is not None
    assert (spf_lists / "wl/spf/other.example.yaml").read_bytes() == other
    message = git(spf_lists, "log", "-1", "--format=%B").stdout
    assert message.startswith("refresh-spf: 1 partner changed\n\npartner.example: +1 -0 (256 -> 512 addresses)\n")
    assert (
        "other.example: DNS timeout at other.example (timeout after 5 s from 127.0.0.1:53); nothing changed\n"
        in message
    )
    assert git(spf_lists, "show", "--name-only", "--format=", "HEAD").stdout == "lists/wl/spf/partner.example.yaml\n"


def test_a_declaration_with_an_error_is_refused_not_read_as_undeclared(spf_lists: Path) -> None:
    """Committed past the hook, a declaration the reader refuses must not delete its partner's file."""
    run(spf_lists, {"partner.example": PARTNER, "other.example": OTHER})
    broken = PARTNERS.replace("  - spf: other.example\n", "  - spf: other.example\n    max_prefix: 24\n")
    assert broken != PARTNERS
    write(spf_lists, {"wl/partners.yaml": broken})
    git(spf_lists, "commit", "-qam", "wl: a stricter prefix for other.example (mistyped)")
    before = head(spf_lists)
    with pytest.raises(SpfError) as refused:
        run(spf_lists, {"partner.example": PARTNER, "other.example": OTHER})
    message = str(refused.value)
    assert message.startswith(f"refused: the lists of HEAD ({before[:10]}) have 1 error(s); nothing was refreshed\n")
    assert "wl/partners.yaml:9:17: `max_prefix`" in message and "publisher validate" in message
    assert head(spf_lists) == before and (spf_lists / "wl/spf/other.example.yaml").exists()


def test_the_file_of_a_partner_no_longer_declared_is_removed(spf_lists: Path) -> None:
    run(spf_lists, {"partner.example": PARTNER, "other.example": OTHER})
    undeclared = PARTNERS.replace(
        "  - spf: other.example\n    owner: Other Ltd\n    contact: postmaster@other.example\n", ""
    )
    write(spf_lists, {"wl/partners.yaml": undeclared})
    git(spf_lists, "commit", "-qam", "wl: other.example is no partner any more")
    report = run(spf_lists, {"partner.example": PARTNER})
    assert [u.path for u in report.undeclared] == ["wl/spf/other.example.yaml"]
    assert not (spf_lists / "wl/spf/other.example.yaml").exists()
    message = git(spf_lists, "log", "-1", "--format=%B").stdout
    assert (
        "other.example: no longer declared in wl.example.test; its generated file wl/spf/other.example.yaml is removed"
        in message
    )
    assert git(spf_lists, "status", "--porcelain").stdout == ""


def test_naming_a_partner_refreshes_only_it_and_an_unknown_name_is_refused(spf_lists: Path) -> None:
    report = run(spf_lists, {"partner.example": PARTNER}, domains=["Partner.Example."])
    assert [r.partner.domain for r in report.refreshed] == ["partner.example"]
    with pytest.raises(SpfError, match=r"^partner\.exmaple is not declared .*; did you mean partner\.example\?"):
        run(spf_lists, {}, domains=["partner.exmaple"])


def test_the_budget_leaves_the_rest_for_next_time_and_they_go_first(spf_lists: Path) -> None:
    costly = Expansion("partner.example", "ok", found=PARTNER.found, queries=12)
    table = {"partner.example": costly, "other.example": OTHER}
    fake = FakeExpand(table)
    report = refresh_spf(spf_lists, resolver=NoResolver(), expand=fake, now=NOW, budget=10)
    assert fake.calls == [("partner.example", 10)] and report.unreached == ("other.example",)
    assert report.failed[0].summary.startswith("other.example: the run's DNS query budget was spent")
    fake = FakeExpand(table)
    refresh_spf(
        spf_lists,
        resolver=NoResolver(),
        expand=fake,
        now=NOW,
        budget=10,
        first=report.unreached,
    )
    assert fake.calls == [("other.example", 10), ("partner.example", 9)]


def test_a_detached_head_is_refused(spf_lists: Path) -> None:
    git(spf_lists, "checkout", "-q", "--detach")
    with pytest.raises(SpfError, match="HEAD is detached"):
        run(spf_lists, {"partner.example": PARTNER, "other.example": OTHER})
