"""`publisher expiring`, `publisher search` and `publisher lookup CIDR`: what an operator
sees (tests/test_excludes.py covers lookup of an excluded address)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from tests.test_vcs import write

from publisher.cli.app import main
from publisher.lists.load import load_lists
from publisher.lists.query import expiring, search
from publisher.lists.tree import DirTree

TODAY = dt.datetime.now(dt.UTC).date()

ZONES = """\
zones:
  - name: bl.example.test
    kind: ip
    role: block
    sources: [bl/*.yaml, bl/*.txt]
  - name: dbl.example.test
    kind: domain
    role: block
    sources: [dbl/*.txt]
"""


def _curated() -> str:
    def day(n: int) -> str:
        return (TODAY + dt.timedelta(days=n)).isoformat()

    return f"""\
defaults:
  by: alice
entries:
  - ip: 192.0.2.1
    reason: dictionary attack
    ticket: ABUSE-1
    expires: {day(10)}
  - ip: 192.0.2.2
    reason: old trap hit
    ticket: ABUSE-2
    expires: {day(-3)}
  - ip: 192.0.2.3
    reason: far away
    expires: {day(100)}
    by: Bob
  - ip: 2001:db8::/48
    reason: hosting abuse
    owner: Example Hosting
    contact: abuse@hosting.example
"""


FEED = ":127.0.0.3:spam run from $\n" + "".join(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n" for i in range(3000))


def _lists(tmp_path: Path) -> Path:
    root = tmp_path / "lists"
    write(
        root,
        {
            "zones.yaml": ZONES,
            "bl/abuse.yaml": _curated(),
            "bl/feed.txt": FEED + ":127.0.0.4:proxy\n198.51.100.0/25\n198.51.100.200\n",
            "dbl/feed.txt": "spam.example\n*.tracker.example\n",
        },
    )
    return root


def _rest(line: str) -> str:
    """A result line after its `path:line` column."""
    return re.split(r"\s{2,}", line, maxsplit=1)[1]


def _run(capsys: pytest.CaptureFixture[str], root: Path, *argv: str) -> tuple[int, list[str]]:
    code = main(["--lists", str(root), *argv])
    return code, capsys.readouterr().out.splitlines()


def test_expiring_lists_soon_and_expired_entries_by_date(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _lists(tmp_path)
    code, out = _run(capsys, root, "expiring")
    assert code == 0
    assert len(out) == 2
    assert out[0].endswith(f"192.0.2.2  expires {TODAY - dt.timedelta(days=3)} (expired 2 days ago)  ABUSE-2  by alice")
    assert "/bl/abuse.yaml:8" in out[0]
    assert out[1].endswith(f"192.0.2.1  expires {TODAY + dt.timedelta(days=10)} (in 10 days)  ABUSE-1  by alice")
    code, out = _run(capsys, root, "expiring", "--days", "200")
    assert [line.split()[1] for line in out] == ["192.0.2.2", "192.0.2.1", "192.0.2.3"]
    assert out[2].endswith("by Bob")


def test_expiring_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _lists(tmp_path)
    code = main(["--lists", str(root), "expiring", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [(r["entry"], r["expired"], r["ticket"], r["line"]) for r in rows] == [
        ("192.0.2.2", True, "ABUSE-2", 8),
        ("192.0.2.1", False, "ABUSE-1", 4),
    ]


def test_expiring_core_counts_days_from_as_of(tmp_path: Path) -> None:
    root = _lists(tmp_path)
    as_of = dt.datetime.combine(TODAY, dt.time(12), tzinfo=dt.UTC)
    loaded = load_lists(DirTree(root), as_of=as_of)
    assert loaded.config is not None
    found = expiring(loaded.config.zones, loaded.sources, as_of=as_of, within=dt.timedelta(days=0))
    assert [(e.text, e.days(as_of)) for e in found] == [("192.0.2.2", -2)]


def test_search_finds_metadata_case_insensitively(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _lists(tmp_path)
    code, out = _run(capsys, root, "search", "abuse-2")
    assert code == 0 and len(out) == 1
    assert out[0].endswith("192.0.2.2  bl.example.test  ticket: ABUSE-2")
    _, out = _run(capsys, root, "search", "example HOSTING")
    assert [_rest(line) for line in out] == ["2001:db8::/48  bl.example.test  owner: Example Hosting"]
    _, out = _run(capsys, root, "search", "bob")
    assert [_rest(line) for line in out] == ["192.0.2.3  bl.example.test  by: Bob"]
    _, out = _run(capsys, root, "search", "tracker")
    assert [_rest(line) for line in out] == ["*.tracker.example  dbl.example.test  entry: *.tracker.example"]
    _, out = _run(capsys, root, "search", "no such thing")
    assert out == ["no entry contains 'no such thing'"]


def test_search_of_a_big_feed_is_bounded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _lists(tmp_path)
    code, out = _run(capsys, root, "search", "SPAM RUN")
    assert code == 0
    assert len(out) == 51
    assert _rest(out[0]) == "10.0.0.0  bl.example.test  reason: spam run from $"
    assert out[-1] == "... and 2,950 more (--limit N shows more)"
    _, out = _run(capsys, root, "search", "10.0.1", "--limit", "3")
    assert out[-1] == "... and 693 more (--limit N shows more)"
    _, out = _run(capsys, root, "search", "proxy")
    assert [_rest(line) for line in out] == [
        "198.51.100.0/25  bl.example.test  reason: proxy",
        "198.51.100.200  bl.example.test  reason: proxy",
    ]


def test_search_counts_every_match(tmp_path: Path) -> None:
    root = _lists(tmp_path)
    loaded = load_lists(DirTree(root), as_of=dt.datetime.now(dt.UTC))
    assert loaded.config is not None
    found = search(loaded.config.zones, loaded.sources, "10.0.1", limit=3)
    # 10.0.1.x, 10.0.10.x and 10.0.11.0-183 (the feed ends there): every one counted, three kept
    assert found.total == 256 + 256 + 184 and len(found.shown) == 3


def test_lookup_of_a_cidr_lists_every_overlapping_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _lists(tmp_path)
    code, out = _run(capsys, root, "lookup", "198.51.100.0/24")
    assert code == 0
    assert out == [
        "bl.example.test: 198.51.100.0/24 partly listed (129 of 256 addresses)",
        '  A 127.0.0.4  TXT "Listed by bl.example.test: proxy"',
        "  bl/feed.txt:3003: 198.51.100.0/25 inside it -> 127.0.0.4 'proxy'",
        "  bl/feed.txt:3004: 198.51.100.200 inside it -> 127.0.0.4 'proxy'",
    ]
    _, out = _run(capsys, root, "lookup", "192.0.2.0/31")
    assert out[0] == "bl.example.test: 192.0.2.0/31 partly listed (1 of 2 addresses)"
    _, out = _run(capsys, root, "lookup", "198.51.100.192/26")
    assert out[0] == "bl.example.test: 198.51.100.192/26 partly listed (1 of 64 addresses)"
    _, out = _run(capsys, root, "lookup", "198.51.100.0/26")
    assert out[0] == "bl.example.test: 198.51.100.0/26 wholly listed (64 of 64 addresses)"
    assert out[2] == "  bl/feed.txt:3003: 198.51.100.0/25 covers it -> 127.0.0.4 'proxy'"
    _, out = _run(capsys, root, "lookup", "2001:db8::/32")
    assert out[0] == "bl.example.test: 2001:db8::/32 partly listed (0.0015% of its addresses)"
    assert out[-1].endswith("2001:db8::/48 inside it -> 127.0.0.2 'hosting abuse'")
    _, out = _run(capsys, root, "lookup", "2001:db8::/64")
    assert out[0].startswith("bl.example.test: 2001:db8::/64 wholly listed")
    assert out[-1].endswith("2001:db8::/48 covers it -> 127.0.0.2 'hosting abuse'")


def test_lookup_of_a_range_that_partly_overlaps_an_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _lists(tmp_path)
    write(root, {"bl/more.txt": "203.0.113.0/25\n"})
    _, out = _run(capsys, root, "lookup", "203.0.113.64/26")
    assert out[0] == "bl.example.test: 203.0.113.64/26 wholly listed (64 of 64 addresses)"
    code, out = _run(capsys, root, "lookup", "203.0.113.0/24", "--exit-status")
    assert out[0] == "bl.example.test: 203.0.113.0/24 partly listed (128 of 256 addresses)"
    assert out[-1] == "  bl/more.txt:1: 203.0.113.0/25 inside it -> 127.0.0.2 ''"
    assert code == 0
    code, out = _run(capsys, root, "lookup", "203.0.113.128/25", "--exit-status")
    assert (code, out) == (4, ["bl.example.test: 203.0.113.128/25 not listed"])


def test_lookup_of_a_cidr_with_host_bits_says_how_to_write_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _lists(tmp_path)
    assert main(["--lists", str(root), "lookup", "198.51.100.1/24"]) == 2
    err = capsys.readouterr().err
    assert "host bits set below /24" in err and "198.51.100.0/24" in err


def test_lookup_of_a_wide_block_is_bounded_per_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _lists(tmp_path)
    code, out = _run(capsys, root, "lookup", "10.0.0.0/16")
    assert code == 0
    assert out[0] == "bl.example.test: 10.0.0.0/16 partly listed (3,000 of 65,536 addresses)"
    assert len(out) == 2 + 50 + 1
    assert out[-1] == "  ... and 2,950 more entries of bl/feed.txt in 10.0.0.0/16"
