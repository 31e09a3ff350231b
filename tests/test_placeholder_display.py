"""A bulk text's `$` is shown as `$`, never as the internal placeholder (security review, item 10).

Inside the publisher a `$` of a bulk text is kept as model.SUBST (a NUL). Whatever shows
a reason to a person (`lookup`, `explain`, `plan` as text and JSON) writes it back as `$`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.test_publish import published_sample, run_cli
from tests.test_vcs import commit_all


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, Path]:
    return published_sample(tmp_path)


def no_placeholder(text: str) -> None:
    assert "\x00" not in text and "\\x00" not in text and "\\u0000" not in text, text


def test_lookup_shows_dollar(published: tuple[Path, Path]) -> None:
    lists, _ = published
    code, out, _ = run_cli("--lists", str(lists), "lookup", "203.0.113.141")
    assert code == 0
    assert "  bl/feeds.txt:13: 203.0.113.141 -> 127.0.0.6 'Open proxy at $'" in out
    assert '  A 127.0.0.6  TXT "Listed by bl.example.test: Open proxy at 203.0.113.141"' in out
    no_placeholder(out)


def test_explain_shows_dollar(published: tuple[Path, Path]) -> None:
    lists, zones = published
    code, out, _ = run_cli("--lists", str(lists), "--zones", str(zones), "explain", "cheap-pills.example")
    assert code == 0
    assert "  by dbl/feed.txt:3: cheap-pills.example -> 127.0.1.2 'Domain $ seen in spam'" in out
    no_placeholder(out)


def test_plan_text_and_json_show_dollar(published: tuple[Path, Path]) -> None:
    lists, zones = published
    feed = lists / "bl" / "feeds.txt"
    feed.write_text(feed.read_text().replace("Open proxy at $", "Open proxy at $ (port 1080)"))
    commit_all(lists.parent, "reword the proxy text")
    code, out, err = run_cli("--lists", str(lists), "--zones", str(zones), "plan")
    assert code == 0, err
    assert "'Open proxy at $ (port 1080)' (reason was 'Open proxy at $')" in out
    no_placeholder(out)
    code, out, err = run_cli("--lists", str(lists), "--zones", str(zones), "plan", "--json")
    assert code == 0, err
    no_placeholder(out)
    (change,) = [c for c in json.loads(out)["zones"]["bl.example.test"]["changes"] if c["kind"] == "changed"]
    assert (change["reason"], change["was"]["reason"]) == ("Open proxy at $ (port 1080)", "Open proxy at $")
