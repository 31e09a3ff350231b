"""`publisher lookup` of an email address or a hash: each email zone hashes the address with
its own settings and says listed or not, the normalised form, the DNS name to dig and the
entries as written (tests/email_builders.py builds the zones the way the compiler does)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.email_builders import ZONE, email_config, email_source, email_zone
from tests.test_publish import run_cli

from publisher.cli.lists import lookup_lines
from publisher.compile.lookup import EMAIL, parse_query
from publisher.emails import EmailSettings, address_name, hash_label
from publisher.lists.tree import DirTree
from publisher.model import ZoneConfig


def _setup(tmp_path: Path) -> tuple[list[ZoneConfig], dict, dict, DirTree]:  # type: ignore[type-arg]
    hbl = email_config()
    md5 = email_config("md5.example.test", EmailSettings(hash="md5"))
    assert hbl.email is not None and md5.email is not None
    curated = email_source("hbl/drops.yaml", [(3, "John.Doe@gmail.com", "phishing")], hbl.email)
    (tmp_path / "hbl").mkdir()
    (tmp_path / "hbl" / "feed.txt").write_text("# feed\nDrop@Fraud.example  # from the feed\n")
    bulk = email_source("hbl/feed.txt", [(2, "Drop@Fraud.example", "feed")], hbl.email, curated=False)
    zones = {hbl.name: email_zone(hbl, [curated, bulk]), md5.name: email_zone(md5, [])}
    return [hbl, md5], zones, {hbl.name: [curated, bulk], md5.name: []}, DirTree(tmp_path)


def test_an_address_listed_through_normalisation_shows_both_forms_and_the_name_to_dig(tmp_path: Path) -> None:
    cfgs, zones, sources, tree = _setup(tmp_path)
    lines, listed = lookup_lines(parse_query("johndoe+x@googlemail.com"), cfgs, zones, sources, tree)
    label = hash_label("johndoe@gmail.com", "sha1")
    assert listed
    assert lines == [
        f"{ZONE}: listed",
        "  normalised: johndoe@gmail.com, hashed with sha1",
        f"  DNS name: {label}._email.{ZONE}",
        f'  A 127.0.0.2  TXT "Listed in {ZONE}: phishing"',
        "  hbl/drops.yaml:3: John.Doe@gmail.com -> 127.0.0.2 'phishing'",
        "md5.example.test: not listed",
        "  normalised: johndoe@gmail.com, hashed with md5",
        f"  DNS name: {hash_label('johndoe@gmail.com', 'md5')}.md5.example.test",
    ]


def test_a_bulk_line_is_shown_as_written(tmp_path: Path) -> None:
    cfgs, zones, sources, tree = _setup(tmp_path)
    lines, listed = lookup_lines(parse_query("drop@fraud.example"), cfgs, zones, sources, tree)
    assert listed
    assert "  hbl/feed.txt:2: Drop@Fraud.example -> 127.0.0.2 'feed'" in lines


def test_an_unlisted_address_still_names_what_to_dig(tmp_path: Path) -> None:
    cfgs, zones, sources, tree = _setup(tmp_path)
    lines, listed = lookup_lines(parse_query("nobody@example.org"), cfgs, zones, sources, tree)
    assert not listed
    assert lines[:3] == [
        f"{ZONE}: not listed",
        "  normalised: nobody@example.org, hashed with sha1",
        f"  DNS name: {hash_label('nobody@example.org', 'sha1')}._email.{ZONE}",
    ]


def test_a_hash_label_is_asked_of_the_zones_of_its_algorithm_only(tmp_path: Path) -> None:
    cfgs, zones, sources, tree = _setup(tmp_path)
    _, name = address_name("John.Doe@gmail.com", EmailSettings())
    query = parse_query(name.upper())
    assert query.family == EMAIL
    lines, listed = lookup_lines(query, cfgs, zones, sources, tree)
    assert listed
    assert lines[:4] == [
        f"{ZONE}: listed",
        f"  DNS name: {name}._email.{ZONE}",
        f'  A 127.0.0.2  TXT "Listed in {ZONE}: phishing"',
        "  hbl/drops.yaml:3: John.Doe@gmail.com -> 127.0.0.2 'phishing'",
    ]
    assert lines[4] == (
        f"md5.example.test: not asked: '{name}' looks like a sha1, but the zone hashes with md5 (32 hex digits)"
    )


def test_a_domain_is_not_asked_of_email_zones_but_their_test_point_is(tmp_path: Path) -> None:
    cfgs, zones, sources, tree = _setup(tmp_path)
    assert lookup_lines(parse_query("fraud.example"), cfgs, zones, sources, tree) == ([], False)
    lines, listed = lookup_lines(parse_query("test"), cfgs, zones, sources, tree)
    assert listed
    assert lines[:3] == [
        f"{ZONE}: listed",
        f"  DNS name: test._email.{ZONE}",
        f'  A 127.0.0.2  TXT "Listed in {ZONE}: RFC 5782 test point"',
    ]
    lines, listed = lookup_lines(parse_query("invalid"), cfgs, zones, sources, tree)
    assert not listed and lines[0] == f"{ZONE}: not listed"


def test_an_address_with_no_email_zone_says_so() -> None:
    assert lookup_lines(parse_query("a@b.example"), [], {}, {}) == (["no zone here lists email addresses"], False)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("drop@", "error: 'drop@' has nothing after '@'; write the domain after '@', like drop@fraud.example"),
        ("a..b@fraud.example", "error: 'a..b@fraud.example' has a local part that starts or ends with '.' or has '..'"),
        ("mailto:drop@fraud.example", "error: 'mailto:drop@fraud.example' is a mailto: link; write the address alone"),
    ],
)
def test_a_bad_address_is_a_usage_error_with_the_fix(text: str, said: str, tmp_path: Path) -> None:
    code, out, err = run_cli("--lists", str(tmp_path), "lookup", text)
    assert (code, out) == (2, "")
    assert err.startswith(said), err
