"""rbldnsd data files -> our lists (importer.py), one dataset type at a time.

Each case imports a small file, writes the files and the printed zones.yaml
snippet to a temporary lists folder, compiles it (build.compile_tree) and asks
lookup.zone_answer: the answers are what rbldnsd 1.0pre answers for the same
file (checked by hand against a real rbldnsd; test_import_roundtrip.py does it
for random files). Also: what is kept as it is, what is rewritten, what is reported.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import pytest

from publisher.addresses import format_v4
from publisher.cli.display import Display
from publisher.cli.imports import add_import_rbldnsd
from publisher.compile.lookup import parse_query, zone_answer
from publisher.compile.zone import CompiledZone
from publisher.importer.migrate import ImportResult, guess_type, import_rbldnsd
from publisher.lists.tree import DirTree
from publisher.publish.build import compile_tree

ZONE = "bl.example.test"


def run(
    tmp: Path, text: str, dtype: str | None, out: str = "bl/feed.txt", zone: str = ZONE
) -> tuple[ImportResult, dict[str, CompiledZone]]:
    result = import_rbldnsd(text, zone=zone, out=out, dataset=dtype, source="feed.rbl")
    for imported in result.zones:
        for f in imported.files:
            (tmp / f.path).parent.mkdir(parents=True, exist_ok=True)
            (tmp / f.path).write_text(f.text, encoding="utf-8")
    (tmp / "zones.yaml").write_text("zones:\n" + "".join(z.snippet for z in result.zones), encoding="utf-8")
    build = compile_tree(DirTree(tmp), as_of=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    return result, build.zones


def ask(zone: CompiledZone, what: str) -> list[tuple[str, str]]:
    """[(code, TXT)] sorted; [] when not listed."""
    return sorted((format_v4(c), t) for c, t in zone_answer(zone, parse_query(what)))


def codes(result: ImportResult) -> set[str]:
    return {p.code for p in result.problems}


def files(result: ImportResult) -> dict[str, str]:
    return {f.path: f.how for z in result.zones for f in z.files}


# --- ip4set ---------------------------------------------------------------------------------


def test_ip4set_without_overlaps_is_kept_as_it_is(tmp_path: Path) -> None:
    text = (
        "# feed\n$SOA 1w ns1.ex.test admin.ex.test 0 2h 1h 1w 1h\n$NS 1d ns1.ex.test -ns2.ex.test\n$TTL 1h\n"
        ":2:Spam source $\n192.0.2.33\n192.0.2.40/29\n198.51.100.128/25\n!198.51.100.200\n198.51.100.64-71\n"
        ":127.0.0.5:Botnet $\n203.0.113.140\n203.0.113.141 :6:Open proxy at $\n203.0.113.142 :9:\n"
    )
    result, zones = run(tmp_path, text, "ip4set")
    assert files(result) == {"bl/feed.txt": "copy"}
    written = (tmp_path / "bl/feed.txt").read_text()
    assert "\n# $SOA 1w ns1.ex.test" in written and "\n198.51.100.64-71\n" in written
    zone = zones[ZONE]
    assert ask(zone, "192.0.2.44") == [("127.0.0.2", "Spam source 192.0.2.44")]
    assert ask(zone, "198.51.100.200") == []
    assert ask(zone, "198.51.100.71") == [("127.0.0.2", "Spam source 198.51.100.71")]
    assert ask(zone, "203.0.113.141") == [("127.0.0.6", "Open proxy at 203.0.113.141")]
    assert ask(zone, "203.0.113.142") == [("127.0.0.9", "")]  # rbldnsd sends no TXT at all
    snippet = result.zones[0].snippet
    assert (
        'soa: {mname: "ns1.ex.test", rname: "admin.ex.test", refresh: 7200, retry: 3600, expire: 604800, minimum: 3600}'
        in snippet
    )
    assert '- name: "ns1.ex.test"' in snippet and "ns2" not in snippet and "ttl: 3600" in snippet
    assert 'txt: "{reason}"' in snippet and 'code: "127.0.0.2"' in snippet
    assert {"import-special", "import-test-point"} == codes(result) and not result.errors


def test_ip4set_answers_every_value_of_the_most_specific_octet_level(tmp_path: Path) -> None:
    # rbldnsd cuts ranges into /32, /24, /16, /8 blocks: a /20 and a /22 both give /24 blocks,
    # so the /22 answers both values; a /25 and a /26 both give /32s.
    text = ":3:t3 $\n10.0.0.0/20\n10.0.0.0/22 :4:t4\n10.0.1.0/25 :5:t5\n10.0.1.0/26 :6:t6\n10.0.0.0/8 :7:wide\n"
    result, zones = run(tmp_path, text, "ip4set")
    assert files(result) == {"bl/feed.txt": "converted", "bl/feed-2.txt": "converted"}
    zone = zones[ZONE]
    assert ask(zone, "10.0.2.1") == [("127.0.0.3", "t3 10.0.2.1"), ("127.0.0.4", "t4")]
    assert ask(zone, "10.0.1.1") == [("127.0.0.5", "t5"), ("127.0.0.6", "t6")]
    assert ask(zone, "10.0.1.200") == [("127.0.0.3", "t3 10.0.1.200"), ("127.0.0.4", "t4")]
    assert ask(zone, "10.0.9.9") == [("127.0.0.3", "t3 10.0.9.9")]
    assert ask(zone, "10.9.9.9") == [("127.0.0.7", "wide")]
    assert "max_prefix: {ipv4: 8}" in result.zones[0].snippet
    assert not result.errors


def test_ip4set_exclusions_win_at_their_level_whatever_the_order(tmp_path: Path) -> None:
    text = "10.1.0.0/23\n!10.1.0.0/22\n!10.3.0.5\n10.3.0.5 :8:x\n10.3.0.0/24\n10.2.0.0/25\n!10.2.0.0/24\n"
    _, zones = run(tmp_path, text, "ip4set")
    zone = zones[ZONE]
    assert ask(zone, "10.1.0.9") == []  # same /24 blocks: the exclusion wins
    assert ask(zone, "10.3.0.5") == []
    assert ask(zone, "10.3.0.6") == [("127.0.0.2", "")]
    assert ask(zone, "10.2.0.9") == [("127.0.0.2", "")]  # /32 blocks beat the /24 exclusion
    assert ask(zone, "10.2.0.200") == []


def test_ip4set_same_code_two_texts_is_reported(tmp_path: Path) -> None:
    result, zones = run(tmp_path, "10.2.0.0/24 :7:a\n10.2.0.0/24 :7:b\n10.2.0.0/24 :7:a\n", "ip4set")
    assert ask(zones[ZONE], "10.2.0.1") == [("127.0.0.7", "a")]  # rbldnsd: one A, TXTs a and b
    lost = [p for p in result.errors if p.code == "import-lost"]
    assert len(lost) == 1 and lost[0].location.line == 2 and "line 1" in lost[0].message


def test_maxrange4_drops_larger_entries_as_rbldnsd_does(tmp_path: Path) -> None:
    result, zones = run(tmp_path, "$MAXRANGE4 /24\n10.7.0.0/16\n10.7.1.0/24 :10:ok\n10.8.0.0-10.8.1.255\n", "ip4set")
    zone = zones[ZONE]
    assert ask(zone, "10.7.2.1") == [] and ask(zone, "10.8.0.1") == []
    assert ask(zone, "10.7.1.1") == [("127.0.0.10", "ok")]
    skipped = [p for p in result.problems if p.code == "import-skipped"]
    assert skipped and "MAXRANGE4" in skipped[0].message and "2 line(s)" in skipped[0].message


# --- ip4trie ----------------------------------------------------------------------------------


def test_ip4trie_longest_prefix_first_line_of_a_repeat(tmp_path: Path) -> None:
    text = (
        ":3:t3 $\n10.0.0.0/20\n10.0.0.0/22 :4:t4\n10.0.0.0/22 :5:t5\n10.0.1.0/25 :5:t5\n!10.0.1.0/26\n"
        "10.0.1.0/27 :6:t6\n10.1.0.0-10.1.0.255\n10.2.0.1/24\n10.3.1\n"
    )
    result, zones = run(tmp_path, text, "ip4trie")
    assert files(result) == {"bl/feed.txt": "cleaned copy"}
    written = (tmp_path / "bl/feed.txt").read_text()
    assert "# ignored by rbldnsd: 10.1.0.0-10.1.0.255" in written and "# ignored by rbldnsd: 10.2.0.1/24" in written
    zone = zones[ZONE]
    assert ask(zone, "10.0.0.1") == [("127.0.0.4", "t4")]  # the repeated /22 keeps its first line
    assert ask(zone, "10.0.1.40") == []  # inside the excluded /26
    assert ask(zone, "10.0.1.10") == [("127.0.0.6", "t6")]  # the /27 inside the exclusion
    assert ask(zone, "10.0.1.100") == [("127.0.0.5", "t5")]
    assert ask(zone, "10.1.0.1") == [] and ask(zone, "10.2.0.1") == []
    assert ask(zone, "10.3.1.9") == [("127.0.0.3", "t3 10.3.1.9")]
    assert not result.errors


# --- ip4tset ----------------------------------------------------------------------------------


def test_ip4tset_one_value_for_all_goes_into_the_template(tmp_path: Path) -> None:
    text = ":3:t3 $\n:4:t4\n10.0.0.1\n10.0.0.2 :5:t5\n10.0.0.3/32\n10.0.0\n!10.0.0.1\n10.0.0.4 text\n10.0.0.5:6:x\n"
    result, zones = run(tmp_path, text, "ip4tset")
    assert files(result) == {"bl/feed.txt": "cleaned copy"}
    snippet = result.zones[0].snippet
    assert 'code: "127.0.0.3"' in snippet and 'txt: "t3 {ip}"' in snippet
    zone = zones[ZONE]
    for addr in ("10.0.0.1", "10.0.0.2", "10.0.0.4", "10.0.0.5"):
        assert ask(zone, addr) == [("127.0.0.3", f"t3 {addr}")]
    assert ask(zone, "10.0.0.3") == [] and ask(zone, "10.0.0.9") == []
    notes = " ".join(p.message for p in result.problems if p.code == "import-skipped")
    assert "first `:A:TXT` line" in notes and "per-entry values" in notes and "no exclusions" in notes


# --- ip6trie / ip6tset ----------------------------------------------------------------------


def test_ip6trie(tmp_path: Path) -> None:
    text = (
        ":3:t3 $\n2001:db8:1/48\n2001:db8:1:2::/64 :4:t4\n2001:db8:1:2::/64 :5:t5\n!2001:db8:1:2:8000::/65\n"
        "2001:db8:1:2:8000::/66 :6:\n::1\n2001:db8:2::1-2001:db8:2::5\n::ffff:10.0.0.0/104 :7:mapped\n"
    )
    result, zones = run(tmp_path, text, "ip6trie")
    assert files(result) == {"bl/feed.txt": "cleaned copy"}
    zone = zones[ZONE]
    assert ask(zone, "2001:db8:1::1") == [("127.0.0.3", "t3 2001:db8:1::1")]
    assert ask(zone, "2001:db8:1:2::1") == [("127.0.0.4", "t4")]
    assert ask(zone, "2001:db8:1:2:8000::1") == [("127.0.0.6", "")]
    assert ask(zone, "2001:db8:1:2:c000::1") == []
    assert ask(zone, "::1") == [("127.0.0.3", "t3 ::1")]
    assert ask(zone, "2001:db8:2::1") == []
    assert not result.errors


def test_ip6tset(tmp_path: Path) -> None:
    text = (
        ":3:t3 $\n2001:db8:1:2\n2001:db8:1:3::/64\n2001:db8:1:4::\n2001:db8:1:6/64\n"
        "!2001:db8:1:2::5\n!2001:db8:1:2:0:0:0:6\n2001:db8:1:7 :6:y\n"
    )
    result, zones = run(tmp_path, text, "ip6tset")
    zone = zones[ZONE]
    assert ask(zone, "2001:db8:1:2::1") == [("127.0.0.3", "t3 2001:db8:1:2::1")]
    assert ask(zone, "2001:db8:1:2::5") == [] and ask(zone, "2001:db8:1:2::6") == []
    assert ask(zone, "2001:db8:1:7::1") == [("127.0.0.3", "t3 2001:db8:1:7::1")]
    for addr in ("2001:db8:1:3::1", "2001:db8:1:4::1", "2001:db8:1:6::1"):
        assert ask(zone, addr) == []
    assert 'txt: "t3 {ip}"' in result.zones[0].snippet


# --- dnset ----------------------------------------------------------------------------------


def test_dnset_wildcards_exclusions_and_several_values(tmp_path: Path) -> None:
    text = (
        ":3:txt3 $\n.dot.example\n*.star.example :4:four $\n!x.star.example\na.b.example\n"
        "a.b.example :5:five\n!c.b.example\nc.b.example :6:\n*.w.example :7:w\nq.w.example\n"
    )
    result, zones = run(tmp_path, text, "dnset", zone="dbl.example.test")
    zone = zones["dbl.example.test"]
    assert ask(zone, "dot.example") == [("127.0.0.3", "txt3 dot.example")]
    assert ask(zone, "a.dot.example") == [("127.0.0.3", "txt3 a.dot.example")]
    assert ask(zone, "star.example") == [] and ask(zone, "x.star.example") == []
    assert ask(zone, "q.x.star.example") == [("127.0.0.4", "four q.x.star.example")]
    assert ask(zone, "a.b.example") == [("127.0.0.3", "txt3 a.b.example"), ("127.0.0.5", "five")]
    assert ask(zone, "c.b.example") == []
    # an exact line beats the wildcard, also in the file that holds the second values
    assert ask(zone, "q.w.example") == [("127.0.0.3", "txt3 q.w.example")]
    assert ask(zone, "z.w.example") == [("127.0.0.7", "w")]
    assert files(result) == {"bl/feed.txt": "converted", "bl/feed-2.txt": "converted"}
    assert not result.errors


def test_dnset_leak_holes_in_the_second_file(tmp_path: Path) -> None:
    text = "*.s.example :3:a\n*.s.example :4:b\nx.s.example :5:c\n*.y.s.example :6:d\n"
    result, zones = run(tmp_path, text, "dnset", zone="dbl.example.test")
    second = (tmp_path / "bl/feed-2.txt").read_text()
    assert "!x.s.example" in second and "!*.y.s.example" in second
    zone = zones["dbl.example.test"]
    assert ask(zone, "x.s.example") == [("127.0.0.5", "c")]
    assert ask(zone, "q.y.s.example") == [("127.0.0.6", "d")]
    assert ask(zone, "q.s.example") == [("127.0.0.3", "a"), ("127.0.0.4", "b")]


def test_dnset_wildcards_on_public_suffixes_and_lookalikes_are_lost(tmp_path: Path) -> None:
    """rbldnsd serves `.com` and a fullwidth name; the publisher refuses both in a feed (issue 3, 6)."""
    text = ".com\n*.github.io\n\uff47mail.com\nspam.example.com\n"
    result, zones = run(tmp_path, text, "dnset", zone="dbl.example.test")
    lost = {p.location.line: p.message for p in result.errors if p.code == "import-lost"}
    assert sorted(lost) == [1, 2, 3], lost
    assert "public suffix" in lost[2] and "becomes gmail.com" in lost[3]
    assert not [p for p in result.errors if p.code == "import-differs"]
    zone = zones["dbl.example.test"]
    assert ask(zone, "spam.example.com") == [("127.0.0.2", "")]
    assert ask(zone, "other.com") == [] and ask(zone, "gmail.com") == []


# --- YAML output, combined, guessing, problems ------------------------------------------------


def test_yaml_output(tmp_path: Path) -> None:
    text = ":3:listed $\n10.0.0.0/24\n!10.0.0.128/25\n192.0.2.1 :4:proxy\n10.1.0.1-10.1.0.4\n"
    result, zones = run(tmp_path, text, "ip4set", out="bl/feed.yaml")
    written = (tmp_path / "bl/feed.yaml").read_text()
    assert '- ip: "10.1.0.4"' in written and '- ip: "10.1.0.2/31"' in written
    zone = zones[ZONE]
    assert ask(zone, "192.0.2.1") == [("127.0.0.4", "proxy")]
    assert ask(zone, "10.0.0.200") == []
    # a curated reason cannot hold the queried address: the entry's network is written
    assert ask(zone, "10.0.0.5") == [("127.0.0.3", "listed 10.0.0.0/25")]
    assert "import-lost" in {p.code for p in result.errors}


def test_yaml_output_cannot_hold_several_codes(tmp_path: Path) -> None:
    result, _ = run(tmp_path, "10.0.0.0/24 :3:a\n10.0.0.0/24 :4:b\n", "ip4set", out="bl/feed.yaml")
    assert files(result) == {"bl/feed.yaml": "converted"}
    assert any("curated file" in p.message for p in result.errors)


def test_combined_datasets_and_subzones(tmp_path: Path) -> None:
    text = (
        "$SOA 1w ns1.ex.test admin.ex.test 0 2h 2h 1w 1h\n$1 global\n"
        "$DATASET ip4set:a @\n:3:A $1 $\n10.0.0.0/24\n"
        "$DATASET ip6trie:b @ sub\n2001:db8::/32 :4:B\n"
        "$DATASET dnset:d @\nspam.example :5:dom\n"
        "$DATASET generic:g @\nwww A 127.0.0.8\n"
    )
    result, zones = run(tmp_path, text, "combined")
    assert set(zones) == {ZONE, f"sub.{ZONE}"}
    assert files(result) == {"bl/feed.a.txt": "copy", "bl/feed.b.txt": "copy"}
    assert ask(zones[ZONE], "10.0.0.1") == [("127.0.0.3", "A global 10.0.0.1")]
    assert ask(zones[ZONE], "2001:db8::1") == [("127.0.0.4", "B")]
    assert ask(zones[f"sub.{ZONE}"], "2001:db8::1") == [("127.0.0.4", "B")]
    assert ask(zones[f"sub.{ZONE}"], "10.0.0.1") == []
    lost = " ".join(p.message for p in result.errors)
    assert "dnset `d`" in lost and "generic" in lost
    assert "soa:" in result.zones[0].snippet and "soa:" not in result.zones[1].snippet


@pytest.mark.parametrize(
    ("text", "dtype"),
    [
        ("1.2.3.4\n", "ip4set"),
        ("# c\n:2:x\n2001:db8::/32\n", "ip6trie"),
        ("!spam.example\n", "dnset"),
        ("$DATASET ip4set @\n", "combined"),
    ],
)
def test_guess_type(text: str, dtype: str) -> None:
    assert guess_type(text) == dtype


def test_test_points_and_bad_codes_are_reported(tmp_path: Path) -> None:
    result, zones = run(tmp_path, "127.0.0.1\n10.0.0.1 :1:localhost code\n10.0.0.2\n", "ip4set")
    lost = {p.location.line for p in result.errors if p.code == "import-lost"}
    assert lost == {1, 2}
    assert ask(zones[ZONE], "10.0.0.2") == [("127.0.0.2", "")]
    assert ask(zones[ZONE], "127.0.0.1") == []


def test_cli_writes_files_and_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from publisher.errors import UsageError

    source = tmp_path / "feed.rbl"
    source.write_text(":2:x $\n192.0.2.1\n")
    lists = tmp_path / "lists"
    parser = argparse.ArgumentParser()
    parser.add_argument("--lists", type=Path, default=lists)
    add_import_rbldnsd(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["import-rbldnsd", str(source), "--zone", ZONE, "--out", str(lists / "bl/feed.txt")])
    assert args.func(args, Display()) == 0
    out = capsys.readouterr().out
    assert (lists / "bl/feed.txt").read_text().endswith(":2:x $\n192.0.2.1\n")
    assert f"- name: {ZONE}" in out and 'sources: ["bl/feed.txt"]' in out
    with pytest.raises(UsageError, match="already exist"):
        args.func(args, Display())
    args = parser.parse_args(["import-rbldnsd", str(source), "--zone", ZONE, "--out", str(tmp_path / "elsewhere.txt")])
    with pytest.raises(UsageError, match="not inside the lists folder"):
        args.func(args, Display())


@pytest.mark.parametrize("relative", [True, False], ids=["relative", "absolute"])
def test_cli_names_the_input_file_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], relative: bool
) -> None:
    """Locations in the input file open as typed, not under the lists folder where no such file is."""
    from publisher.cli import main

    feed = tmp_path / "x" / "peer.data"
    feed.parent.mkdir()
    feed.write_text("192.0.2.1\n192.0.2.2\n192.0.2.3\n10.0.0.1 :1:bad code\n")
    lists = tmp_path / "lists"
    lists.mkdir()
    monkeypatch.chdir(tmp_path)
    given = "x/peer.data" if relative else str(feed)
    assert main(["--lists", "lists", "import-rbldnsd", given, "--zone", ZONE, "--type", "ip4set"]) == 1
    err = capsys.readouterr().err
    assert f"\n{given}:4:10: return code 127.0.0.1 is forbidden" in f"\n{err}", err
    assert "lists/" not in err, err


def test_the_test_point_note_says_no_txt_rather_than_an_empty_string(tmp_path: Path) -> None:
    result, _ = run(tmp_path, "192.0.2.1\n", "ip4set")
    notes = [p.message for p in result.problems if p.code == "import-test-point"]
    assert notes == [
        f"127.0.0.2 in {ZONE}: rbldnsd answers NXDOMAIN, "
        "the publisher always answers the RFC 5782 test point 127.0.0.2 (no TXT)"
    ], notes
