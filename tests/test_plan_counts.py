"""A plan, the publish summary and the history line count a publish alike (issue 17, item 15),
in correct plurals (item 16), and `plan --markdown` carries the guard rails' verdict."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import LISTS
from tests.test_publish import ABUSE, PARTNERS, commit_file, repo, run_cli, zones  # noqa: F401
from tests.test_vcs import init_repo

NEW_ENTRY = "  - ip: 198.51.100.0/28\n    reason: snowshoe spam\n"


def _lines(out: str, zone: str) -> list[str]:
    """The lines of one zone's part of a plan."""
    block = out.split(f"\n{zone}: ", 1)[1]
    return block.split("\n" + zone.split(".", 1)[0], 1)[0].splitlines()


def test_a_first_plan_shows_entry_lines_before_its_count_of_more(tmp_path: Path) -> None:
    lists = init_repo(tmp_path / "repo", lists_from=LISTS)
    base = ("--lists", str(lists), "--zones", str(tmp_path / "zones"))
    code, out, err = run_cli(*base, "plan", "--limit", "3")
    assert code == 0, err
    block = out.split("\nbl.example.test: ", 1)[1].split("\nwl.example.test", 1)[0].splitlines()
    listings = int(re.search(r"listings 0 -> (\d+);", block[1]).group(1))  # type: ignore[union-attr]
    shown = [line for line in block if line.startswith("  + bl/")]
    assert len(shown) == 3 and block[2:5] == shown, block
    more = int(re.fullmatch(r"  \.\.\. and (\d+) more", block[5]).group(1))  # type: ignore[union-attr]
    exclusions = sum(1 for line in out.split("\nwl.example.test", 1)[0].splitlines() if "  exclude" in line)
    assert more + 3 >= listings and exclusions <= 3
    # with room for every entry, all are shown and nothing is left to count
    code, out, _ = run_cli(*base, "plan")
    bl = out.split("\nbl.example.test: ", 1)[1].split("\nwl.example.test", 1)[0]
    assert "... and" not in bl and bl.count("\n  + bl/") == more + 3


def test_the_first_publish_after_a_compile_counts_as_the_plan_did(tmp_path: Path) -> None:
    """`make serve` compiled the work tree into zones/; the next publish cannot know the entries
    behind the change, and says the plan's "14 -> 15" everywhere, never "+0 listings"."""
    lists = init_repo(tmp_path / "repo", lists_from=LISTS)
    base = ("--lists", str(lists), "--zones", str(tmp_path / "zones"))
    assert run_cli(*base, "compile")[0] == 0
    abuse = (lists / "bl" / "abuse.yaml").read_text()
    commit_file(lists, "bl/abuse.yaml", abuse.rstrip("\n") + "\n" + NEW_ENTRY, "bl: list 198.51.100.0/28")
    code, out, err = run_cli(*base, "publish")
    assert code == 0, err
    planned = re.search(r"^  listings (\d+) -> (\d+);", out, re.M)
    assert planned is not None, out
    before, after = planned.groups()
    assert int(after) == int(before) + 1
    assert re.search(
        rf"^bl\.example\.test serial \d+: listings {before} -> {after} \(\+16 addresses\); "
        "the entries behind it are unknown$",
        out,
        re.M,
    ), out
    assert "+0 listings" not in out
    code, out, _ = run_cli(*base, "history")
    assert re.search(rf"bl\.example\.test \d+ \({before} -> {after} listings, entries unknown\)", out), out
    assert "(+0/-0)" not in out


def test_one_listing_and_one_address_are_singular(repo: Path, zones: Path) -> None:  # noqa: F811
    base = ("--lists", str(repo), "--zones", str(zones))
    assert run_cli(*base, "publish")[0] == 0
    commit_file(repo, "bl/abuse.yaml", ABUSE + "  - ip: 203.0.113.99\n    reason: x\n", "one more")
    code, out, _ = run_cli(*base, "publish")
    assert code == 0 and re.search(r"^bl\.example\.test serial \d+: \+1 listing \(\+1 address\)$", out, re.M), out
    commit_file(repo, "bl/abuse.yaml", ABUSE, "one less")
    code, out, _ = run_cli(*base, "publish")
    assert code == 0 and re.search(r"^bl\.example\.test serial \d+: -1 listing \(-1 address\)$", out, re.M), out


def test_plan_markdown_carries_the_guard_rails_verdict(repo: Path, zones: Path) -> None:  # noqa: F811
    base = ("--lists", str(repo), "--zones", str(zones))
    assert run_cli(*base, "publish")[0] == 0
    commit_file(repo, "bl/abuse.yaml", ABUSE + "  - ip: 203.0.113.99\n    reason: x\n", "one more")
    code, out, _ = run_cli(*base, "plan", "--markdown")
    assert code == 0 and "**Guard rails: all clear.**" in out, out
    commit_file(repo, "wl/partners.yaml", "\n".join(PARTNERS.splitlines()[:5]) + "\n", "drop the backup gateway")
    code, out, _ = run_cli(*base, "plan", "--markdown")
    assert "**Guard rails: refused by 1 guard rail.**" in out and "`make publish FORCE=1`" in out, out
    assert re.search(
        r"^- \*\*allowlist-removal\*\*: wl\.example\.test: 1 allowlist entry removed, 1 address left unprotected",
        out,
        re.M,
    ), out
