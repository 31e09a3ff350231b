"""docs/clients.md against what is tested and what the sample zones answer.

The Postfix, postscreen and unbound snippets are the ones test_e2e_postfix.py runs (it
reads them from the page); every return code the page mentions is one a sample zone can
answer, the table of codes is complete, and the SpamAssassin and rspamd snippets have a
rule for each code of the sample entries.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from tests.conftest import LISTS, ROOT
from tests.doc_snippets import CLIENTS_DOC, snippet, snippets
from tests.test_e2e_postfix import MAIN_CF, main_cf

from publisher.addresses import format_v4
from publisher.lists.tree import DirTree
from publisher.publish.build import Build, compile_tree

#: Some sample entries expire in 2027: the page describes the lists as they stand now.
AS_OF = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)

SMTPD_LINE = (
    "smtpd_client_restrictions = permit_dnswl_client wl.example.test, "
    "reject_rbl_client bl.example.test, reject_rhsbl_sender dbl.example.test\n"
)
# a literal code; `127\.0\.0\.2` (a regex) counts too, `127.0.0.[2..6]` (a pattern) does
# not, nor does a server address with its port (`stub-addr: 127.0.0.1@5353`)
CODE = re.compile(r"(?<![\d.])127\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\d.\[@:])")
TABLE_ROW = re.compile(r"^\| (?P<zone>[a-z.]+) \| `(?P<code>127\.[\d.]+)` \|", re.M)


@pytest.fixture(scope="module")
def build() -> Build:
    return compile_tree(DirTree(LISTS), as_of=AS_OF)


def answered_codes(build: Build) -> dict[str, set[str]]:
    """Every code each sample zone can answer, the test points' included."""
    return {name: {format_v4(c) for a in zone.answers for c in a.codes} for name, zone in build.zones.items()}


def entry_codes(build: Build) -> dict[str, set[str]]:
    """The codes of the sample entries (what a rule per code has to cover)."""
    return {
        zone: {format_v4(v.code) for source in sources for v in source.values if not v.exclude}
        for zone, sources in build.loaded.sources.items()
    }


def doc_text() -> str:
    return CLIENTS_DOC.read_text()


def codes_in(text: str) -> set[str]:
    return set(CODE.findall(text.replace("\\.", ".")))


# --- the tested snippets --------------------------------------------------------------


def test_the_postfix_snippet_is_the_one_line_the_end_to_end_test_runs(tmp_path: Path) -> None:
    assert snippet("postfix-smtpd") == SMTPD_LINE
    text = main_cf(tmp_path)
    assert SMTPD_LINE in text and text.count("smtpd_client_restrictions") == 1
    assert "smtpd_client_restrictions" not in MAIN_CF  # the lab adds nothing of its own
    assert snippet("postfix-postscreen") in text


def test_every_copy_of_the_postfix_line_in_the_docs_is_the_tested_one() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in (p for p in pages if p.exists()):
        for line in page.read_text().splitlines(keepends=True):
            if line.startswith("smtpd_client_restrictions ="):
                assert line == SMTPD_LINE, f"{page.relative_to(ROOT)} shows an untested variant: {line!r}"


def test_the_unbound_snippet_points_every_sample_zone_at_the_server(build: Build) -> None:
    stubs = snippet("unbound-stub")
    for zone in build.zones:
        assert f'name: "{zone}"' in stubs and f'local-zone: "{zone}." transparent' in stubs
    assert "do-not-query-localhost: no" in stubs


def test_snippet_markers_are_well_formed() -> None:
    assert set(snippets()) == {"postfix-smtpd", "postfix-postscreen", "unbound-stub", "spamassassin", "rspamd"}
    assert doc_text().count("<!-- snippet:") == len(snippets())


# --- return codes ---------------------------------------------------------------------


def test_the_table_lists_exactly_the_codes_each_sample_zone_answers(build: Build) -> None:
    table = doc_text().split("<!-- table: return-codes -->", 1)[1].split("<!-- /table -->", 1)[0]
    rows = [(m["zone"], m["code"]) for m in TABLE_ROW.finditer(table)]
    assert len(rows) == len(set(rows)), "a code is listed twice"
    expected = {(zone, code) for zone, codes in answered_codes(build).items() for code in codes}
    assert set(rows) == expected


def test_every_code_the_page_mentions_is_one_a_sample_zone_answers(build: Build) -> None:
    mentioned = codes_in(doc_text())
    possible = set().union(*answered_codes(build).values())
    assert mentioned, "no code found: the pattern is broken"
    assert mentioned <= possible, f"codes no sample zone answers: {sorted(mentioned - possible)}"


@pytest.mark.parametrize("name", ["spamassassin", "rspamd"])
def test_the_scoring_snippets_have_a_rule_for_every_entry_code(build: Build, name: str) -> None:
    text = snippet(name)
    expected = set().union(*entry_codes(build).values())
    assert codes_in(text) == expected


def test_each_rspamd_rule_uses_only_codes_of_its_own_zone(build: Build) -> None:
    answered = answered_codes(build)
    blocks = re.findall(r'rbl = "(?P<zone>[a-z.]+)";(?P<body>.*?)\n  \}', snippet("rspamd"), re.S)
    assert {zone for zone, _ in blocks} == set(build.zones)
    for zone, body in blocks:
        assert codes_in(body) and codes_in(body) <= answered[zone], zone


def test_each_spamassassin_rule_uses_only_codes_of_its_own_zone(build: Build) -> None:
    answered = answered_codes(build)
    sets = dict(re.findall(r"eval:check_rbl\('([\w-]+)', '([a-z.]+)\.'\)", snippet("spamassassin")))
    for line in snippet("spamassassin").splitlines():
        codes = codes_in(line)
        if not codes:
            continue
        if m := re.search(r"check_rbl_sub\('([\w-]+)'", line):
            zone = sets[m[1]]
        else:
            m = re.search(r"\b(bl|wl|dbl)\.example\.test\b", line)
            assert m, line
            zone = m[0]
        assert codes <= answered[zone], line
