"""Generated files on the publish path, in a git repository: a refresh's removals are no
allowlist removal (the plan names them), removing a partner's whole file still is, a kept or
failing partner is a plan note, and `explain` shows the SPF chain and the refresh commit."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.spf_repo import ZONES_YAML
from tests.test_publish import run_cli
from tests.test_spf_generated import generated
from tests.test_vcs import BOB, commit_all, git, init_repo, write

PARTNERS = """\
defaults: {owner: Example Partner Ltd, contact: postmaster@partner.example}
entries:
  - spf: partner.example
    code: 127.0.10.2
    ticket: PARTNER-12
  - ip: 198.51.100.24
    owner: Hand Made Ltd
    reason: by hand
"""

CHAIN = "partner.example > include:_spf.partner.example > ip4:"
ENTRIES = [
    ("1.2.3.0/24", CHAIN + "1.2.3.0/24", "2026-11-20", None),
    ("5.6.7.8", "partner.example > a:mail.partner.example/28", "2026-11-20", None),
    ("5.6.7.9", CHAIN + "5.6.7.9", "2026-11-20", None),
]
GENERATED = "wl/spf/partner.example.yaml"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    files = {"zones.yaml": ZONES_YAML, "wl/partners.yaml": PARTNERS, GENERATED: generated(entries=ENTRIES)}
    return init_repo(tmp_path / "repo", files)


def cli(repo: Path, *args: str) -> tuple[int, str]:
    code, out, err = run_cli("--lists", str(repo), "--zones", str(repo.parent.parent / "zones"), *args)
    return code, out + err


def refresh(repo: Path, text: str | None, message: str = "refresh-spf: 1 partner changed") -> str:
    """A commit as refresh-spf makes it: the generated file rewritten (or removed, None)."""
    if text is None:
        git(repo, "rm", "-q", GENERATED)
    else:
        write(repo, {GENERATED: text})
    return commit_all(repo, message, BOB)


def test_a_refresh_removing_entries_is_no_allowlist_removal_and_the_plan_says_so(repo: Path) -> None:
    assert cli(repo, "publish")[0] == 0
    refresh(repo, generated(entries=ENTRIES[:2], refreshed="2026-12-01T07:00:00Z"))
    code, out = cli(repo, "publish")
    assert code == 0, out
    assert "note: wl.example.test: 1 entry removed by SPF refresh (partner.example), not an allowlist removal" in out
    assert "allowlist-removal" not in out and "guard rails: all clear" in out
    assert cli(repo, "lookup", "5.6.7.9")[1].count("not listed") >= 1
    # a refresh removal beside a removal by hand: only the hand one is an allowlist removal
    write(repo, {"wl/partners.yaml": PARTNERS.split("  - ip: 198.51.100.24")[0]})
    refresh(repo, generated(entries=ENTRIES[:1], refreshed="2026-12-02T07:00:00Z"), "refresh and a removal")
    code, out = cli(repo, "publish")
    assert code == 3, out
    assert re.search(
        r"^  allowlist-removal: wl\.example\.test: 1 allowlist entry removed, 2 addresses left unprotected \(with "
        r"those of the SPF refresh\): wl/partners\.yaml:\d+ 198\.51\.100\.24$",
        out,
        re.M,
    ), out
    assert "1 entry removed by SPF refresh (partner.example), not an allowlist removal" in out


def test_removing_a_partners_whole_generated_file_is_an_allowlist_removal(repo: Path) -> None:
    assert cli(repo, "publish")[0] == 0
    write(repo, {"wl/partners.yaml": PARTNERS.replace("  - spf: partner.example\n", "  - spf: gone.example\n")})
    refresh(repo, None, "partner.example is no partner any more")
    code, out = cli(repo, "publish")
    assert code == 3, out
    assert "publish refused by 1 guard rail; nothing was written" in out
    assert re.search(
        r"^  allowlist-removal: wl\.example\.test: 3 allowlist entries removed, 258 addresses left unprotected: "
        r"wl/spf/partner\.example\.yaml:\d+ 1\.2\.3\.0/24; ",
        out,
        re.M,
    ), out
    assert "removed by SPF refresh" not in out


def test_a_kept_or_failing_partner_is_a_note_of_every_plan(repo: Path) -> None:
    assert cli(repo, "publish")[0] == 0
    kept = [(ip, via, added, "2026-12-14") for ip, via, added, _ in ENTRIES]
    why = "the SPF record is gone (NXDOMAIN)"
    refresh(repo, generated(entries=kept, status="kept", why=why, since="2026-11-30T07:12:03Z"))
    note = (
        "note: wl.example.test: partner.example: the SPF record is gone (NXDOMAIN) since 2026-11-30; "
        "its last good entries are kept until 2026-12-14"
    )
    code, out = cli(repo, "plan")
    assert code == 0 and note in out, out
    code, out = cli(repo, "plan", "--markdown")
    assert "- " + note in out, out
    refresh(repo, generated(entries=(), status="failing", why=why, since="2026-11-30T07:12:03Z", not_listed=()))
    code, out = cli(repo, "plan")
    assert "note: wl.example.test: partner.example: the SPF record is gone (NXDOMAIN) since 2026-11-30; " in out
    assert "; nothing of it is listed" in out, out


def test_explain_names_the_spf_chain_and_the_refresh_commit(repo: Path) -> None:
    assert cli(repo, "publish")[0] == 0
    moved = [*ENTRIES[:2], ("5.6.7.10", CHAIN + "5.6.7.10", "2026-12-01", None)]
    sha = refresh(repo, generated(entries=moved, refreshed="2026-12-01T07:00:00Z"))
    code, out = cli(repo, "publish")
    assert code == 0, out
    serial = re.search(r"^wl\.example\.test serial (\d{10}):", out, re.M)
    assert serial is not None, out
    code, out = cli(repo, "explain", "5.6.7.10")
    assert code == 0, out
    lines = out.splitlines()
    assert f"wl.example.test (serial {serial[1]}): listed" in lines
    at = next(i for i, line in enumerate(lines) if line.startswith("  by wl/spf/partner.example.yaml:"))
    assert re.fullmatch(
        r"  by wl/spf/partner\.example\.yaml:\d+: 5\.6\.7\.10 -> 127\.0\.10\.2 'SPF of partner\.example'", lines[at]
    )
    assert lines[at + 1] == "    SPF: partner.example > include:_spf.partner.example > ip4:5.6.7.10"
    assert lines[at + 2].startswith(f"    added by {BOB[0]} <{BOB[1]}> in {sha[:10]} 'refresh-spf: 1 partner changed'")
    # an entry by hand has no SPF line
    code, out = cli(repo, "explain", "198.51.100.24")
    assert "by wl/partners.yaml:" in out and "SPF:" not in out
