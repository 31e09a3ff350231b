"""`publisher import-rbldnsd` as the README shows it: where --out lands, which zone takes the
file in, and the closing `checked:` line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import LISTS
from publisher.cli import main

FEED = "192.0.2.1\n198.51.100.0/24\n203.0.113.5 :2:spam run\n"  # 1 + 256 + 1 addresses


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the sample lists/ (zones bl, wl, dbl), the current folder at its parent."""
    shutil.copytree(LISTS, tmp_path / "lists")
    (tmp_path / "feed.ip4set").write_text(FEED)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _import(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["import-rbldnsd", *args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


@pytest.mark.parametrize("out", ["feed/feed.txt", "lists/feed/feed.txt"])
def test_out_is_taken_under_the_lists_folder_either_way(
    repo: Path, capsys: pytest.CaptureFixture[str], out: str
) -> None:
    code, lines, err = _import(capsys, "feed.ip4set", "--zone", "feed.example.test", "--out", out)
    assert code == 0, err
    assert (repo / "lists/feed/feed.txt").read_text().endswith(FEED)
    assert not (repo / "lists/lists").exists() and not (repo / "feed").exists()
    assert lines[0] == "wrote lists/feed/feed.txt (copy, 4 lines)"
    assert '    sources: ["feed/feed.txt"]' in lines
    assert lines[-1] == "checked: the result answers as rbldnsd did for 258 addresses"


def test_a_path_another_zone_takes_in_is_refused_before_writing(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = _import(capsys, "feed.ip4set", "--zone", "feed.example.test", "--out", "bl/feed.txt")
    assert code == 2 and lines == []
    assert not (repo / "lists/bl/feed.txt").exists()
    last = err.strip().splitlines()[-1]
    assert last.startswith(
        "error: bl/feed.txt would also feed bl.example.test: its source glob 'bl/*.txt' in lists/zones.yaml matches it"
    ), err
    assert "e.g. --out feed/feed.txt" in last and "or import with --zone bl.example.test" in last


def test_importing_into_a_configured_zone_says_it_joins_it(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = _import(capsys, "feed.ip4set", "--zone", "bl.example.test", "--out", "bl/feed.txt")
    assert code == 0, err
    assert "note: bl.example.test is in lists/zones.yaml already and its source glob 'bl/*.txt' takes in" in err
    assert not any("Add to" in line for line in lines)  # no second bl.example.test to paste
    assert lines[-1].startswith("checked: the result answers as rbldnsd did for 258 addresses (with the code")


@pytest.mark.parametrize(
    ("text", "dtype", "zone", "checked"),
    [
        ("2001:db8::/64\n2001:db8:1::1\n", "ip6trie", "v6.example.test", "~2^64 IPv6 addresses"),  # 2^64 + 1
        (
            "spam.example\nham.example\n*.bad.example\n",
            "dnset",
            "names.example.test",
            "2 names and every name under 1 wildcard",
        ),
    ],
)
def test_checked_counts_what_was_compared(
    repo: Path, capsys: pytest.CaptureFixture[str], text: str, dtype: str, zone: str, checked: str
) -> None:
    (repo / "data").write_text(text)
    label = zone.split(".")[0]
    code, lines, err = _import(capsys, "data", "--type", dtype, "--zone", zone, "--out", f"{label}/{label}.txt")
    assert code == 0, err
    assert lines[-1] == f"checked: the result answers as rbldnsd did for {checked}"


# --- --out from inside the lists folder (issue 17) ------------------------------------------


def test_the_repository_form_typed_inside_lists_is_refused(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: `cd lists` then --out lists/feed/feed.txt wrote lists/lists/feed/feed.txt."""
    monkeypatch.chdir(repo / "lists")
    code, lines, err = _import(capsys, "../feed.ip4set", "--zone", "feed.example.test", "--out", "lists/feed/feed.txt")
    assert (code, lines) == (2, [])
    assert err == (
        "error: --out lists/feed/feed.txt would write lists/feed/feed.txt, a folder lists/ inside the lists folder "
        "(the current folder); nothing written. --out is relative to the lists folder: write --out feed/feed.txt\n"
    )
    assert not (repo / "lists" / "lists").exists()


def test_a_lists_folder_inside_lists_is_refused_from_the_root_too(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _import(capsys, "feed.ip4set", "--zone", "feed.example.test", "--out", "lists/lists/feed.txt")
    assert code == 2
    assert err.endswith("--out is relative to the lists folder: write --out feed.txt\n")
    assert not (repo / "lists" / "lists").exists()


def test_from_a_subfolder_out_is_taken_from_the_lists_folder(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One rule: relative to the lists folder from anywhere. Before: lists/bl/feed/feed.txt."""
    monkeypatch.chdir(repo / "lists" / "bl")
    code, lines, err = _import(capsys, "../../feed.ip4set", "--zone", "feed.example.test", "--out", "feed/feed.txt")
    assert code == 0, err
    assert lines[0] == "wrote ../feed/feed.txt (copy, 4 lines)"
    assert (repo / "lists/feed/feed.txt").read_text().endswith(FEED)
    assert not (repo / "lists/bl/feed").exists()
    assert '    sources: ["feed/feed.txt"]' in lines


def test_a_path_from_a_subfolder_gets_the_lists_relative_form(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo / "lists" / "bl")
    code, _, err = _import(capsys, "../../feed.ip4set", "--zone", "feed.example.test", "--out", "../feed/feed.txt")
    assert code == 2
    assert err == (
        "error: --out ../feed/feed.txt: --out is relative to the lists folder .., wherever you run the command; "
        "nothing written. Write --out feed/feed.txt\n"
    )
    assert not (repo / "lists/feed").exists()
