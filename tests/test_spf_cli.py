"""`publisher refresh-spf` on the command line: the per-partner blocks, the commit, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.spf_builders import found, ok
from tests.spf_repo import FakeExpand, NoResolver, spf_lists
from tests.test_publish import run_cli
from tests.test_vcs import git

from publisher.cli import spf as cli_spf
from publisher.errors import UsageError
from publisher.spf.result import Expansion

__all__ = ["spf_lists"]  # the fixture

PARTNER = ok(
    found("1.2.3.0/24", "include:_spf.partner.example", "ip4:1.2.3.0/24"),
    found("10.0.0.0/8", "ip4:10.0.0.0/8"),
    record="v=spf1 include:_spf.partner.example ip4:10.0.0.0/8 -all",
)
TIMEOUT = Expansion(
    "other.example", "temperror", why="DNS timeout at other.example (timeout after 5 s from 127.0.0.1:53)"
)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeExpand:
    expand = FakeExpand({"partner.example": PARTNER, "other.example": TIMEOUT})
    asked: list[tuple[list[tuple[str, int]] | None, float]] = []

    def make_resolver(addresses: list[str] | None, timeout: float) -> object:
        asked.append(([cli_spf.resolver_address(a) for a in addresses] if addresses else None, timeout))
        return lambda: NoResolver()

    monkeypatch.setattr(cli_spf, "load_expand", lambda: expand)
    monkeypatch.setattr(cli_spf, "make_resolver", make_resolver)
    expand.asked = asked  # type: ignore[attr-defined]
    return expand


def test_refresh_spf_prints_a_block_per_partner_and_the_commit_and_exits_1_for_a_timeout(
    spf_lists: Path, fake: FakeExpand
) -> None:
    code, out, err = run_cli("--lists", str(spf_lists), "refresh-spf", "--resolver", "127.0.0.1:5353", "--timeout", "2")
    commit = git(spf_lists, "rev-parse", "--short=10", "HEAD").stdout.strip()
    assert code == 1, err
    assert out == (
        "partner.example (wl.example.test, wl/spf/partner.example.yaml): ok, +1 -0 (0 -> 256 addresses)\n"
        "  + 1.2.3.0/24  partner.example > include:_spf.partner.example > ip4:1.2.3.0/24\n"
        "  not listed: partner.example > ip4:10.0.0.0/8: private-use range 10.0.0.0/8 (RFC 1918)\n"
        "other.example (wl.example.test, wl/spf/other.example.yaml): nothing changed: "
        "DNS timeout at other.example (timeout after 5 s from 127.0.0.1:53)\n"
        f"committed {commit}: refresh-spf: 1 partner changed\n"
        "  next: review it (git show), then `publisher plan` and `publisher publish`\n"
        "not refreshed: other.example (kept as they are; run again later)\n"
    )
    assert fake.asked == [([("127.0.0.1", 5353)], 2.0)]  # type: ignore[attr-defined]


def test_dry_run_and_a_named_partner(spf_lists: Path, fake: FakeExpand) -> None:
    head = git(spf_lists, "rev-parse", "HEAD").stdout.strip()
    code, out, _ = run_cli("--lists", str(spf_lists), "refresh-spf", "--dry-run", "partner.example")
    assert code == 0 and out.endswith(
        "dry run: nothing was written or committed (would commit: refresh-spf: 1 partner changed)\n"
    )
    assert git(spf_lists, "rev-parse", "HEAD").stdout.strip() == head


def test_bad_options_and_unknown_partners_are_refused(spf_lists: Path, fake: FakeExpand) -> None:
    code, _, err = run_cli("--lists", str(spf_lists), "refresh-spf", "partner.exampel")
    assert code == 1 and "did you mean partner.example?" in err
    code, _, err = run_cli("--lists", str(spf_lists), "refresh-spf", "--budget", "0")
    assert code == 2 and "--budget 0: must be 1 or more DNS queries" in err


def test_resolver_addresses() -> None:
    assert cli_spf.resolver_address("127.0.0.1") == ("127.0.0.1", 53)
    assert cli_spf.resolver_address("[::1]:5353") == ("::1", 5353)
    with pytest.raises(
        UsageError, match=r"--resolver dns\.example: resolver 'dns\.example': 'dns\.example' is not an IP"
    ):
        cli_spf.resolver_address("dns.example")


def test_outside_a_repository_or_before_the_first_commit_says_where_it_reads_from(
    tmp_path: Path, fake: FakeExpand
) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    code, out, err = run_cli("--lists", str(lists), "refresh-spf")
    assert code == 1 and out == ""
    assert err.startswith("error: refresh-spf reads the declarations from the lists repository's HEAD: "), err
    assert "  fix: run it inside the lists repository (or give --lists), with at least one commit" in err
    git(tmp_path, "init", "-q")
    code, out, err = run_cli("--lists", str(lists), "refresh-spf")
    assert code == 1 and "refresh-spf reads the declarations from the lists repository's HEAD" in err, err


def test_watch_once_from_cron_keeps_to_the_schedule_and_names_what_needs_a_person(
    spf_lists: Path, fake: FakeExpand, tmp_path: Path
) -> None:
    zones = tmp_path / "zones"
    argv = ("--lists", str(spf_lists), "--zones", str(zones), "watch", "--once", "--resolver", "127.0.0.1:5353")
    code, out, err = run_cli(*argv)
    assert code == 0, err
    assert out.endswith("spf: needs attention: other.example (unchanged) (see the log)\n"), out
    assert [d for d, _ in fake.calls] == ["partner.example", "other.example"]
    assert (zones / "spf-schedule.json").exists()
    code, out, err = run_cli(*argv)  # a minute later from cron: not due (every 1h), nobody's DNS asked
    assert code == 0 and "needs attention" not in out and len(fake.calls) == 2, (out, err)
