"""docs/clients.md against what is tested and what the sample zones answer.

The Postfix, postscreen and unbound snippets are the ones test_e2e_postfix.py runs (it
reads them from the page); every return code the page mentions is one a sample zone can
answer or an error code, the table of codes is complete, and the SpamAssassin and rspamd
snippets have a rule for each code of the sample entries. The error-code contract: each
snippet's filters, parsed as the MTA reads them, take every code its zone lists with and
no address of 127.255.255.0/24; the error table (README and this page) and the keyed
snippets are what publisher/cli/docs.py generates.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from tests.conftest import LISTS, ROOT
from tests.doc_snippets import CLIENTS_DOC, snippet, snippets
from tests.test_e2e_postfix import MAIN_CF, main_cf

from publisher import errorcodes
from publisher.addresses import format_v4, parse_v4
from publisher.cli import docs
from publisher.lists.tree import DirTree
from publisher.publish.build import Build, compile_tree

#: Some sample entries expire in 2027: the page describes the lists as they stand now.
AS_OF = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)

SMTPD_LINE = (
    "smtpd_client_restrictions = permit_dnswl_client wl.example.test=127.0.[0..255].[0..3], "
    "reject_rbl_client bl.example.test=127.0.0.[2..254], reject_rhsbl_sender dbl.example.test=127.0.[0..1].[2..254]\n"
)
#: Every address an error answer can carry (`--rrl-code` may pick any of them).
ERROR_RANGE = range(errorcodes.ERROR_NET_START, errorcodes.ERROR_NET_END + 1)
# a literal code; `127\.0\.0\.2` (a regex) counts too, `127.0.0.[2..6]` (a pattern) does
# not, nor does a server address with its port (`stub-addr: 127.0.0.1@5353`)
CODE = re.compile(r"(?<![\d.])127\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\d.\[@:])")
TABLE_ROW = re.compile(r"^\| (?P<zone>[a-z.]+) \| `(?P<code>127\.[\d.]+)` \|", re.M)


@pytest.fixture(scope="module")
def build() -> Build:
    return compile_tree(DirTree(LISTS), as_of=AS_OF)


def mta_zones(build: Build) -> set[str]:
    """The sample zones the MTA, SpamAssassin IP and rspamd IP snippets ask: not the email
    zones, whose snippets test_email_clients.py runs in the real clients."""
    return {name for name, zone in build.zones.items() if zone.info.kind != "email"}


def answered_codes(build: Build, email: bool = False) -> dict[str, set[str]]:
    """Every code each sample zone (email zones too with `email`) can answer, the test points' included."""
    keep = set(build.zones) if email else mta_zones(build)
    return {
        name: {format_v4(c) for a in zone.answers for c in a.codes}
        for name, zone in build.zones.items()
        if name in keep
    }


def entry_codes(build: Build, email: bool = False) -> dict[str, set[str]]:
    """The codes of the sample entries (what a rule per code has to cover)."""
    keep = set(build.zones) if email else mta_zones(build)
    return {
        zone: {format_v4(v.code) for source in sources for v in source.values if not v.exclude}
        for zone, sources in build.loaded.sources.items()
        if zone in keep
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
                assert line in (SMTPD_LINE, docs.keyed(SMTPD_LINE)), (
                    f"{page.relative_to(ROOT)} shows an untested variant: {line!r}"
                )


def test_the_readme_shows_the_tested_email_snippets() -> None:
    """The README's email section shows the SpamAssassin and rspamd rules: the very ones of
    docs/clients.md, which test_email_clients.py runs."""
    readme = snippets(ROOT / "README.md")
    for name in ("spamassassin-email", "rspamd-email"):
        assert readme[name] == snippet(name), f"README.md's {name} differs from docs/clients.md's"


def test_the_unbound_snippet_points_every_sample_zone_at_the_server(build: Build) -> None:
    stubs = snippet("unbound-stub")
    for zone in build.zones:  # email zones too: their clients ask the resolver as well
        assert f'name: "{zone}"' in stubs and f'local-zone: "{zone}." transparent' in stubs
    assert "do-not-query-localhost: no" in stubs


def test_snippet_markers_are_well_formed() -> None:
    assert set(snippets()) == {
        "postfix-smtpd",
        "postfix-postscreen",
        "unbound-stub",
        "exim",
        "spamassassin",
        "rspamd",
        # email zones: run by test_email_clients.py
        "spamassassin-email",
        "rspamd-email",
        "spamassassin-email-dns",
        "rspamd-email-dns",
    }
    assert doc_text().count("<!-- snippet:") == len(snippets())


# --- return codes ---------------------------------------------------------------------


def test_the_table_lists_exactly_the_codes_each_sample_zone_answers(build: Build) -> None:
    table = doc_text().split("<!-- table: return-codes -->", 1)[1].split("<!-- /table -->", 1)[0]
    rows = [(m["zone"], m["code"]) for m in TABLE_ROW.finditer(table)]
    assert len(rows) == len(set(rows)), "a code is listed twice"
    expected = {(zone, code) for zone, codes in answered_codes(build, email=True).items() for code in codes}
    assert set(rows) == expected


def test_every_code_the_page_mentions_is_one_a_sample_zone_answers_or_an_error_code(build: Build) -> None:
    mentioned = codes_in(doc_text())
    possible = set().union(*answered_codes(build, email=True).values())
    assert mentioned, "no code found: the pattern is broken"
    odd = {c for c in mentioned - possible if not errorcodes.is_error_code(parse_v4(c))}
    assert not odd, f"codes no sample zone answers: {sorted(odd)}"


@pytest.mark.parametrize("name", ["spamassassin", "rspamd"])
def test_the_scoring_snippets_have_a_rule_for_every_entry_code(build: Build, name: str) -> None:
    text = snippet(name)
    expected = set().union(*entry_codes(build).values())
    assert codes_in(text) == expected


def test_each_rspamd_rule_uses_only_codes_of_its_own_zone(build: Build) -> None:
    answered = answered_codes(build)
    blocks = re.findall(r'rbl = "(?P<zone>[a-z.]+)";(?P<body>.*?)\n  \}', snippet("rspamd"), re.S)
    assert {zone for zone, _ in blocks} == mta_zones(build)
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


# --- the error-code contract: filters as each MTA reads them ------------------------------


def postfix_filter(pattern: str) -> list[set[int]]:
    """A Postfix `d.d.d.d` filter: per octet, the values it takes (a number, or `[a;b..c]`)."""
    octets = re.findall(r"\[[^\]]*\]|\d+", pattern)
    assert len(octets) == 4 and ".".join(octets) == pattern, pattern
    sets: list[set[int]] = []
    for octet in octets:
        values: set[int] = set()
        for part in octet.removeprefix("[").removesuffix("]").split(";"):
            low, _, high = part.partition("..")
            values.update(range(int(low), int(high or low) + 1))
        assert octet.startswith("[") or len(values) == 1, pattern
        sets.append(values)
    return sets


def postfix_takes(pattern: str, code: int) -> bool:
    return all(code >> (24 - 8 * i) & 0xFF in octet for i, octet in enumerate(postfix_filter(pattern)))


def assert_takes_listings_not_errors(what: str, takes: set[int], zone: str, must: set[str]) -> None:
    missing = {c for c in must if parse_v4(c) not in takes}
    assert not missing, f"{what}: ignores {zone}'s listing codes {sorted(missing)}"
    errors = sorted(format_v4(c) for c in takes if errorcodes.is_error_code(c))
    assert not errors, f"{what}: acts on the error answers {errors}"


def test_the_postfix_restrictions_take_every_code_of_their_zone_and_no_error_code(build: Build) -> None:
    answered = answered_codes(build)
    restrictions = re.findall(r"(\w+_client|\w+_sender) ([a-z.]+)(?:=([\d.\[\];]+))?", snippet("postfix-smtpd"))
    assert {zone for _, zone, _ in restrictions} == mta_zones(build)
    for name, zone, pattern in restrictions:
        assert pattern, f"{name} {zone} has no filter: every error answer would count as a listing"
        takes = {c for c in (*map(parse_v4, answered[zone]), *ERROR_RANGE) if postfix_takes(pattern, c)}
        assert_takes_listings_not_errors(f"{name} {zone}={pattern}", takes, zone, answered[zone])


def test_the_postscreen_sites_weigh_every_code_of_their_zone_and_no_error_code(build: Build) -> None:
    answered = answered_codes(build)
    sites = re.findall(r"([a-z.]+)(?:=([\d.\[\];]+))?\*(-?\d+)", snippet("postfix-postscreen"))
    assert sites
    for zone in {zone for zone, _, _ in sites}:
        patterns = [pattern for z, pattern, _ in sites if z == zone]
        assert all(patterns), f"a {zone} site without a filter: postscreen would count every error answer"
        takes = {
            c for c in (*map(parse_v4, answered[zone]), *ERROR_RANGE) if any(postfix_takes(p, c) for p in patterns)
        }
        assert_takes_listings_not_errors(f"postscreen {zone}", takes, zone, answered[zone])


def test_the_exim_dnslists_take_every_code_of_their_zone_and_no_error_code(build: Build) -> None:
    answered = answered_codes(build)
    lookups = re.findall(r"dnslists\s*=\s*([a-z.]+)(\S*)", snippet("exim"))
    assert {zone for zone, _ in lookups} == mta_zones(build)
    for zone, rest in lookups:
        m = re.fullmatch(r"=([\d.,]+)(/\S+)?", rest)
        assert m, f"dnslists = {zone}{rest}: want an explicit =code,code list"
        takes = {parse_v4(c) for c in m[1].split(",")}
        assert_takes_listings_not_errors(f"exim dnslists {zone}", takes, zone, answered[zone])


def test_every_scored_spamassassin_rule_names_one_listing_code_and_never_an_error(build: Build) -> None:
    text = snippet("spamassassin")
    sets = dict(re.findall(r"eval:check_rbl\('([\w-]+)', '([a-z.]+)\.'\)", text))
    scored = dict(re.findall(r"^score\s+(\w+)\s+(-?[\d.]+)$", text, re.M))
    covered: dict[str, set[str]] = {}
    for rule, score in scored.items():
        assert float(score) != 0, rule
        sub = re.search(rf"^header\s+{rule}\s+eval:check_rbl_sub\('([\w-]+)', '([\d.]+)'\)$", text, re.M)
        ask = re.search(rf"^(?:askdns\s+{rule}\s+\S+?\.|urirhssub\s+{rule}\s+)([a-z.]+?)\.? A ([\d.]+)$", text, re.M)
        assert sub or ask, f"{rule}: scored, but not by one exact code (check_rbl_sub, askdns or urirhssub ... A)"
        zone, code = (sets[sub[1]], sub[2]) if sub else (ask[1], ask[2])  # type: ignore[index]
        assert not errorcodes.is_error_code(parse_v4(code)), rule
        covered.setdefault(zone, set()).add(code)
    for rule in re.findall(r"^header\s+(\w+)\s+eval:check_rbl\(", text, re.M):
        assert rule.startswith("__") and rule not in scored, f"{rule} takes any answer: it must not score"
    for zone, codes in entry_codes(build).items():
        assert codes <= covered.get(zone, set()), zone


def test_every_rspamd_rule_ignores_codes_it_does_not_name(build: Build) -> None:
    entries = entry_codes(build)
    blocks = re.findall(r'rbl = "(?P<zone>[a-z.]+)";(?P<body>.*?)\n  \}', snippet("rspamd"), re.S)
    assert blocks
    for zone, body in blocks:
        # rspamd's stock rbl.conf says default_unknown = true: any other answer would raise the rule's symbol
        assert "unknown = false;" in body, f"{zone}: set unknown = false"
        assert "returncodes_matcher" not in body  # equality: each code stands for itself
        named = {parse_v4(c) for c in codes_in(body.split("returncodes", 1)[1])}
        assert_takes_listings_not_errors(f"rspamd {zone}", named, zone, entries[zone])


# --- generated parts ------------------------------------------------------------------------


def test_the_generated_parts_of_both_pages_are_what_make_docs_writes() -> None:
    for page in (docs.README, docs.CLIENTS_DOC):
        parts = docs.generated_parts(page.read_text())
        assert parts.get("error-codes") == docs.error_table(), f"{page.name}: run `make docs`"
    assert docs.stale() == [], "run `make docs`"
    keyed = docs.generated_parts(doc_text())
    assert set(keyed) == {"error-codes", *docs.KEYED}


def test_a_hand_edited_copy_of_the_table_is_caught() -> None:
    text = ROOT.joinpath("README.md").read_text()
    edited = text.replace("| `127.255.255.254` | refused-by-policy |", "| `127.0.0.254` | refused-by-policy |")
    assert edited != text
    assert docs.render(edited) == text


def test_the_table_names_every_error_code_and_the_answers_without_one() -> None:
    for page in (ROOT / "README.md", CLIENTS_DOC):
        table = docs.generated_parts(page.read_text())["error-codes"]
        rows = re.findall(r"^\| `(127\.255\.255\.\d+)` \| ([\w-]+) \|", table, re.M)
        assert rows == [(format_v4(e.code), e.name) for e in errorcodes.TABLE]
        for said in ("REFUSED", "`drop`", "`slip`", "--rrl-answer code", "127.255.255.255"):
            assert said in table, said


def test_the_keyed_snippets_put_the_key_in_every_lookup_and_nowhere_else(build: Build) -> None:
    parts = {name: docs.generated_parts(doc_text())[name] for name in docs.KEYED}
    reply_map = parts.pop("keyed-postfix-reply-map")
    assert reply_map.splitlines()[1:-1] == [f"KEY.{zone}    {zone}" for zone in docs.SAMPLE_ZONES]
    lookups = 0
    for name, body in parts.items():
        for line in body.splitlines():
            for m in re.finditer(r"(?<![\w-])((?:[\w-]+\.)?)((?:bl|wl|dbl)\.example\.test)(?![\w-])", line):
                if re.match(r"\s*(describe|message|#)", line):  # text for people: logs, headers, the client
                    assert m[1] != "KEY.", f"{name}: the key would show in {line!r}"
                else:
                    assert m[1] == "KEY.", f"{name}: a lookup without the key: {line!r}"
                    lookups += 1
    assert lookups >= 20
    # the keyed Postfix lines are the tested ones with the key: the same filters
    assert docs.keyed(SMTPD_LINE) in parts["keyed-postfix"]
    assert set(docs.SAMPLE_ZONES) == mta_zones(build)


def test_the_rspamd_email_rule_names_the_codes_of_the_sample_email_zone(build: Build) -> None:
    """The email snippets themselves run in test_email_clients.py; here their codes follow the sample."""
    assert codes_in(snippet("rspamd-email")) == entry_codes(build, email=True)["ebl.example.test"]
