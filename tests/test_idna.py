"""Internationalised domain names (security review item 6): IDNA 2008, lookalikes refused.

`normalize_domain` used Python's IDNA 2003 codec: `ｇｍａｉｌ.com`, `gmail。com`, `pay\\u00adpal.com`
and `*.cｏm` silently became `gmail.com`, `paypal.com`, `*.com`, and `faß.de` listed `fass.de`
instead of `xn--fa-hia.de`, the name mail software queries under IDNA 2008 / UTS 46.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from tests.test_publish import FILES, NOW

from publisher import addresses, codes
from publisher.addresses import AddressError, normalize_domain
from publisher.compile.lookup import parse_query
from publisher.lists.bulk import read_bulk_source
from publisher.lists.curated import read_yaml_source
from publisher.model import SourceData, ZoneConfig

ZONE = ZoneConfig("dbl.example.test", "domain", "block", ("dbl/*",), 0x7F000002, "{reason}")

#: The issue's examples: written -> what the old codec made of it (and what it becomes now).
LOOKALIKES = {
    "ｇｍａｉｌ.com": "gmail.com",  # fullwidth letters
    "gmail。com": "gmail.com",  # ideographic full stop
    "pay\u00adpal.com": "paypal.com",  # soft hyphen
    "*.cｏm": "*.com",  # fullwidth o, and a wildcard on a public suffix
}


@pytest.mark.parametrize(("written", "became"), LOOKALIKES.items())
def test_a_lookalike_is_refused_naming_what_it_becomes(written: str, became: str) -> None:
    with pytest.raises(AddressError) as caught:
        normalize_domain(written)
    assert caught.value.code == codes.CONFUSABLE_DOMAIN
    assert f"becomes {became}:" in caught.value.message
    assert caught.value.fix and f"write {became} if that is the name meant" in caught.value.fix


def test_the_invisible_character_is_named() -> None:
    with pytest.raises(AddressError) as caught:
        normalize_domain("pay\u00adpal.com")
    assert "U+00AD SOFT HYPHEN" in caught.value.message


@pytest.mark.parametrize(
    ("written", "name"),
    [
        ("faß.de", "xn--fa-hia.de"),  # IDNA 2008 non-transitional: not fass.de
        ("FAß.DE.", "xn--fa-hia.de"),  # letter case only: no lookalike
        ("*.Bücher.example", "xn--bcher-kva.example"),
        ("xn--fa-hia.de", "xn--fa-hia.de"),
        ("Spam.Example.COM", "spam.example.com"),
    ],
)
def test_idna_2008_names(written: str, name: str) -> None:
    assert normalize_domain(written)[0] == name


def test_allow_confusable_lists_the_mapped_name() -> None:
    assert normalize_domain("ｇｍａｉｌ.com", allow_confusable=True) == ("gmail.com", False)


def test_pure_ascii_names_never_go_through_idna(monkeypatch: pytest.MonkeyPatch) -> None:
    class Refuse:
        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"idna.{name} used for an ASCII name")

    monkeypatch.setattr(addresses, "idna", Refuse())
    assert normalize_domain("*.Spam.Example.COM.") == ("spam.example.com", True)


def test_an_invalid_idna_2008_name_is_a_bad_domain() -> None:
    with pytest.raises(AddressError) as caught:
        normalize_domain("a\u200db.example")  # a zero-width joiner outside its context
    assert caught.value.code == codes.BAD_DOMAIN and "IDNA 2008" in caught.value.message


# --- list files ---------------------------------------------------------------------------


def bulk(text: str) -> SourceData:
    return read_bulk_source("dbl/feed.txt", text.encode(), ZONE)


def curated(text: str) -> SourceData:
    return read_yaml_source("dbl/curated.yaml", text.encode(), ZONE)


def test_feed_lines_with_lookalikes_are_located_errors() -> None:
    source = bulk("ok.example.com\n" + "\n".join(f"  {w}" for w in LOOKALIKES) + "\nfaß.de\n")
    found = [(p.location.line, p.location.col, p.code) for p in source.problems]
    assert found == [(n, 3, codes.CONFUSABLE_DOMAIN) for n in (2, 3, 4, 5)]
    assert list(source.dom_name) == ["ok.example.com", "xn--fa-hia.de"]


def test_curated_allow_confusable_is_a_warning_and_needs_a_reason() -> None:
    source = curated(
        "entries:\n"
        "  - domain: ｇｍａｉｌ.com\n"
        "  - domain: gmail。com\n"
        "    allow_confusable: true\n"
        "    reason: the written form is in a phishing kit\n"
        "  - domain: pay\u00adpal.com\n"
        "    allow_confusable: true\n"
        "  - domain: '*.cｏm'\n"
        "    allow_confusable: true\n"
        "    reason: also on a public suffix\n"
    )
    found = sorted((p.location.line, p.code, p.is_error) for p in source.problems)
    assert found == [
        (2, codes.CONFUSABLE_DOMAIN, True),
        (3, codes.CONFUSABLE_DOMAIN, False),  # allowed: a warning naming what it lists
        (6, codes.CONFUSABLE_DOMAIN, False),
        (7, codes.MISSING_REASON, True),
        (8, codes.BROAD_DOMAIN, True),  # *.cｏm is *.com: still refused as broad
        (8, codes.CONFUSABLE_DOMAIN, False),
    ]
    warning = next(p for p in source.problems if p.location.line == 3)
    assert warning.format().startswith("dbl/curated.yaml:3:13: warning: 'gmail。com' becomes gmail.com")
    assert list(source.dom_name) == ["gmail.com"]


def test_allow_confusable_is_per_entry_not_a_file_default() -> None:
    source = curated("defaults:\n  allow_confusable: true\n  reason: x\nentries:\n  - domain: ｇｍａｉｌ.com\n")
    assert [p.code for p in source.problems] == [codes.UNKNOWN_KEY]


# --- lookups ------------------------------------------------------------------------------


def test_lookup_of_a_unicode_name_asks_for_its_a_label(tmp_path: Path) -> None:
    from publisher.cli import main

    for path, text in {**FILES, "dbl/domains.yaml": "entries:\n  - domain: faß.de\n    reason: spam\n"}.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")

    def lookup(query: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["--lists", str(tmp_path), "lookup", query])
        return code, out.getvalue(), err.getvalue()

    assert parse_query("Faß.de").domain == "xn--fa-hia.de"
    assert "dbl.example.test: listed" in lookup("faß.de")[1]
    assert "dbl.example.test: listed" in lookup("xn--fa-hia.de")[1]
    assert "dbl.example.test: not listed" in lookup("fass.de")[1]
    code, _, err = lookup("ｆａß.de")
    assert code != 0 and "becomes faß.de (xn--fa-hia.de)" in err, err


def test_a_lookalike_zone_name_is_refused(tmp_path: Path) -> None:
    from publisher.lists.load import load_lists
    from publisher.lists.tree import DirTree

    for path, text in {**FILES, "zones.yaml": FILES["zones.yaml"].replace("- name: dbl.", "- name: \uff44bl.")}.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    [problem] = load_lists(DirTree(tmp_path), as_of=NOW).errors
    assert problem.code == codes.BAD_NAME and "becomes dbl.example.test" in problem.message
    assert problem.fix == "write the name as DNS will see it"
