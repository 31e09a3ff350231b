"""Column files and hosts files read as rbldnsd syntax are told apart (issue 10, item 5).

A DShield `block.txt` line (`start<TAB>end<TAB>prefix<TAB>...`) reads, in rbldnsd's syntax
and in ours, as the start address alone with the other columns as its TXT. We keep that
reading (an rbldnsd file must answer as rbldnsd answers it) and warn, showing the range form;
the header line is refused. A hosts file (`0.0.0.0 name`) is refused with the command that
converts it. A few lines per file are shown, the rest counted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import DATA, require_tool
from publisher.addresses import format_v4, parse_code
from publisher.cli import app as cli
from publisher.compile.compiler import compile_zone
from publisher.compile.lookup import parse_query, zone_answer
from publisher.importer.migrate import import_rbldnsd
from publisher.lists.bulk import read_bulk_source
from publisher.lists.bulk_shapes import HOSTS_FIX, MAX_SHAPE_REPORTS
from publisher.model import SourceData, ZoneConfig
from test_import_roundtrip import serve_originals
from test_interop import ask

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
BL = ZoneConfig("bl.example.test", "ip", "block", ("bl/*",), parse_code("127.0.0.2"), "{reason}")
DBL = ZoneConfig("dbl.example.test", "domain", "block", ("dbl/*",), parse_code("127.0.1.2"), "{reason}")
BLOCK = DATA / "feeds" / "dshield-block.txt"  # the shape of https://feeds.dshield.org/block.txt
RANGES = "awk -F'\\t' '/^[0-9]/ {print $1 \"-\" $2}' FILE > ranges.txt"
HOSTS = (
    "# a hosts-format blocklist\n127.0.0.1 localhost\n127.0.0.1 localhost.localdomain\n"
    "255.255.255.255 broadcasthost\n::1 localhost\n0.0.0.0 0.0.0.0\n"
    "0.0.0.0 ads.example.com\n0.0.0.0\ttracker.example.net # tab and comment\n127.0.0.1 1-800-spam.example\n"
)


def _read(text: str, zone: ZoneConfig = BL, path: str = "bl/block.txt") -> SourceData:
    return read_bulk_source(path, text.encode(), zone)


def _shown(source: SourceData) -> list[str]:
    return [p.format() for p in source.problems]


def _validate(tmp: Path, where: str, text: str) -> tuple[int, str]:
    lists = tmp / "lists"
    shutil.copytree(DATA / "corpus" / "base", lists)
    (lists / where).write_text(text)
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = cli.main(["--lists", str(lists), "--zones", str(tmp / "zones"), "validate"])
    return code, err.getvalue().replace(f"{lists}/", "")


# --- column files -----------------------------------------------------------------------------


def test_the_dshield_file_is_refused_for_its_header_and_each_line_warned(tmp_path: Path) -> None:
    code, err = _validate(tmp_path, "bl/block.txt", BLOCK.read_text())
    assert code == 1
    assert (
        "bl/block.txt:22:1: 'Start\\tEnd\\tNetblock\\tAttacks\\tName\\tCoun...' looks like the header line "
        "of a tab-separated column file [column-file]\n"
        "  fix: comment it out with `#`, and see the lines below: rbldnsd syntax is one entry a line\n"
    ) in err
    assert (
        "bl/block.txt:23:1: warning: this line looks like a column file: '61.174.51.0' is listed alone, "
        "with '61.174.51.255\\t24\\t1893\\tCHINANET-ZJ-HU...' as its TXT [column-file]\n"
        "  fix: to list the range write `61.174.51.0-61.174.51.255` (61.174.51.0/24), or for the whole file: "
        f"{RANGES}; if the text is meant as the TXT, write it after a value: `ADDR :2:text`\n"
    ) in err
    assert "bl/block.txt:25:1: warning: " in err and "bl/block.txt:26:1" not in err  # three shown
    assert (
        "bl/block.txt: warning: 2 more lines look like a column file, as line 23 does [column-file]\n"
        f"  fix: to list the ranges: {RANGES}\n"
    ) in err
    assert err.endswith("error: 1 error(s) in the lists; nothing was published\n")


def test_without_the_header_the_start_addresses_are_listed_as_rbldnsd_lists_them() -> None:
    source = _read("".join(line for line in BLOCK.read_text().splitlines(True) if not line.startswith("Start")))
    assert {p.code for p in source.problems} == {"column-file"} and not any(p.is_error for p in source.problems)
    zone = compile_zone(BL, [source], as_of=NOW)
    answer = zone_answer(zone, parse_query("61.174.51.0"))
    assert [(format_v4(c), t) for c, t in answer] == [
        ("127.0.0.2", "61.174.51.255\t24\t1893\tCHINANET-ZJ-HU\tCN\tabuse@example.net")
    ]
    assert zone_answer(zone, parse_query("61.174.51.7")) == []


def test_the_suggested_command_converts_the_file_to_ranges(tmp_path: Path) -> None:
    awk = require_tool("awk")
    script = RANGES.split("'", 3)[3].split("'")[0]  # the program between the quotes
    run = subprocess.run([awk, "-F\t", script, str(BLOCK)], capture_output=True, text=True, check=True, timeout=30)
    source = _read(run.stdout)
    assert _shown(source) == []
    zone = compile_zone(BL, [source], as_of=NOW)
    for addr in ("61.174.51.0", "61.174.51.7", "193.32.162.255"):
        assert [format_v4(c) for c, _ in zone_answer(zone, parse_query(addr))] == ["127.0.0.2"], addr


def test_a_second_address_after_a_space_is_warned_too() -> None:
    source = _read("192.0.2.0 192.0.2.127 scanners\n2001:db8::1 2001:db8::ff\n")
    assert _shown(source) == [
        "bl/block.txt:1:1: warning: this line looks like a column file: '192.0.2.0' is listed alone, "
        "with '192.0.2.127 scanners' as its TXT [column-file]\n"
        "  fix: to list the range write `192.0.2.0-192.0.2.127` (192.0.2.0/25), or for the whole file: "
        f"{RANGES}; if the text is meant as the TXT, write it after a value: `ADDR :2:text`",
        "bl/block.txt:2:1: warning: this line looks like a column file: '2001:db8::1' is listed alone, "
        "with '2001:db8::ff' as its TXT [column-file]\n"
        "  fix: to list the range write `2001:db8::1-2001:db8::ff`, or for the whole file: "
        f"{RANGES}; if the text is meant as the TXT, write it after a value: `ADDR :2:text`",
    ]


def test_columns_without_an_address_suggest_the_first_column() -> None:
    (problem,) = _read("spam.example\t2026-11-01\tphishing\n", DBL, "dbl/feed.txt").problems
    assert problem.format() == (
        "dbl/feed.txt:1:1: warning: this line looks like a column file: 'spam.example' is listed alone, "
        "with '2026-11-01\\tphishing' as its TXT [column-file]\n"
        "  fix: to list the first column alone: cut -f1 FILE > first.txt; "
        "if the text is meant as the TXT, write it after a value: `ADDR :2:text`"
    )


@pytest.mark.parametrize(
    ("line", "zone"),
    [
        ("192.0.2.1 spam source", BL),
        ("192.0.2.1\tspam source", BL),  # one tab before a TXT: not columns
        ("192.0.2.1 :2:a\tb", BL),  # a TXT given after a value is meant
        ("192.0.2.1 3 attacks from 10.1", BL),
        ("192.0.2.1 mail.example", BL),  # a name as TXT, not after 0.0.0.0
        ("spam.example listed for spam", DBL),
        ("spam.example 192.0.2.1", DBL),
    ],
)
def test_ordinary_texts_are_not_column_or_hosts_lines(line: str, zone: ZoneConfig) -> None:
    assert _shown(_read(line + "\n", zone)) == []


def test_a_large_column_file_gives_a_few_lines_and_a_count() -> None:
    lines = 100_000
    text = "".join(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\t10.9.9.9\t24\tx\n" for i in range(1, lines + 1))
    source = _read(text)
    assert len(source.problems) == MAX_SHAPE_REPORTS + 1
    assert source.problems[-1].format() == (
        f"bl/block.txt: warning: {lines - MAX_SHAPE_REPORTS:,} more lines look like a column file, "
        f"as line 1 does [column-file]\n  fix: to list the ranges: {RANGES}"
    )


def test_an_imported_dshield_file_answers_as_rbldnsd_answers_it() -> None:
    original = BLOCK.read_text()
    result = import_rbldnsd(original, zone=BL.name, out="bl/block.txt", source="block.txt")
    assert [(p.code, p.location.line) for p in result.problems if p.location.line and p.code != "column-file"] == [
        ("import-skipped", 22)  # the header: rbldnsd ignores it too
    ]
    assert [p.location.line for p in result.problems if p.code == "column-file"] == [None, 23, 24, 25]
    assert not result.errors
    (written,) = result.zones[0].files
    source = read_bulk_source(written.path, written.text.encode(), result.zones[0].config)
    zone = compile_zone(result.zones[0].config, [source], as_of=NOW)
    names = [f"{a}.{BL.name}" for a in ("0.51.174.61", "7.51.174.61", "255.51.174.61")]
    with serve_originals({BL.name: ("ip4set", original)}) as theirs:
        rb = ask(theirs, names, "A")
    for name, addr in zip(names, ("61.174.51.0", "61.174.51.7", "61.174.51.255")):
        theirs_listed = [rr.rdata for rr in rb[name].rr]
        assert bool(theirs_listed) == bool(zone_answer(zone, parse_query(addr))) == (addr == "61.174.51.0"), addr


# --- hosts files ------------------------------------------------------------------------------


def test_a_hosts_file_in_a_domain_zone_is_refused_with_how_to_convert_it() -> None:
    source = _read("0.0.0.0 ads.example.com\n", DBL, "dbl/hosts.txt")
    assert _shown(source) == [
        "dbl/hosts.txt:1:1: '0.0.0.0 ads.example.com' looks like a line of a hosts file (an address, then a name); "
        "dbl.example.test is a domain zone, whose files list names alone [hosts-file]\n"
        "  fix: a hosts file lists names: keep the names alone, one a line, without localhost, e.g. "
        'awk \'($1 == "0.0.0.0" || $1 == "127.0.0.1") && $2 !~ /^(localhost|0\\.0\\.0\\.0)/ {print $2}\' '
        "FILE > names.txt"
    ]
    assert len(source) == 0


def test_no_line_of_a_hosts_file_is_listed_and_the_report_is_bounded() -> None:
    source = _read(HOSTS, DBL, "dbl/hosts.txt")
    assert len(source) == 0  # not localhost, not localhost.localdomain, not a name either
    where = [str(p.location) for p in source.problems]
    assert where == [*(f"dbl/hosts.txt:{n}:1" for n in (2, 3, 4)), "dbl/hosts.txt"]
    assert all(p.code == "hosts-file" and p.is_error for p in source.problems)
    assert source.problems[-1].message == "5 more lines look like a hosts file, as line 2 does"


def test_the_suggested_command_gives_the_names_without_localhost(tmp_path: Path) -> None:
    awk = require_tool("awk")
    script = HOSTS_FIX.split("awk '", 1)[1].rsplit("'", 1)[0]
    hosts = tmp_path / "hosts.txt"
    hosts.write_text(HOSTS)
    run = subprocess.run([awk, script, str(hosts)], capture_output=True, text=True, check=True, timeout=30)
    source = _read(run.stdout, DBL, "dbl/names.txt")
    assert _shown(source) == []
    assert sorted(source.dom_name) == ["1-800-spam.example", "ads.example.com", "tracker.example.net"]


def test_a_hosts_line_in_an_ip_zone_is_not_a_listing_of_0_0_0_0() -> None:
    (problem,) = _read("0.0.0.0 ads.example.com\n", BL, "bl/hosts.txt").problems
    assert problem.format() == (
        "bl/hosts.txt:1:1: '0.0.0.0 ads.example.com' looks like a line of a hosts file (an address, then a name); "
        "it would list 0.0.0.0 with the name as its TXT [hosts-file]\n"
        f"  fix: {HOSTS_FIX}, then list them in a domain zone's files"
    )
