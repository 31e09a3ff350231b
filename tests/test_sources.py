"""Curated list files (*.yaml): one small bad file per rule under tests/data/bad/."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from publisher.addresses import parse_code
from publisher.lists.curated import parse_expires, read_source, read_yaml_source
from publisher.model import ZoneConfig

BAD = Path(__file__).resolve().parent / "data" / "bad"
UTC = dt.UTC

BL = ZoneConfig("bl.example.test", "ip", "block", ("bl/*.yaml",), parse_code("127.0.0.2"), "{reason}")
WL = ZoneConfig("wl.example.test", "ip", "allow", ("wl/*.yaml",), parse_code("127.0.15.1"), "{reason}")
DBL = ZoneConfig("dbl.example.test", "domain", "block", ("dbl/*.yaml",), parse_code("127.0.1.2"), "{reason}")


def _read(name: str, zone: ZoneConfig = BL) -> tuple[int, list[tuple[str, str, str, str | None]]]:
    source = read_source(name, (BAD / name).read_bytes(), zone)
    return len(source), [(p.code, str(p.location), p.message, p.fix) for p in source.problems]


# (file, zone, [(code, path:line:col, words the message must contain)])
CASES = [
    ("yaml-syntax.yaml", BL, [("yaml-syntax", "yaml-syntax.yaml:6:1", "quoted scalar")]),
    ("not-utf8.yaml", BL, [("not-utf8", "not-utf8.yaml:3:16", "0xe9")]),
    ("not-a-mapping.yaml", BL, [("not-a-mapping", "not-a-mapping.yaml:2:1", "not a list")]),
    ("duplicate-key.yaml", BL, [("duplicate-key", "duplicate-key.yaml:5:5", "'reason' appears twice")]),
    ("unknown-key.yaml", BL, [("unknown-key", "unknown-key.yaml:4:5", "`expire`")]),
    ("wrong-type.yaml", BL, [("wrong-type", "wrong-type.yaml:4:14", "true or false")]),
    (
        "missing-subject.yaml",
        BL,
        [("missing-key", "missing-subject.yaml:3:5", "`ip`, `domain`, `email`, `hash` or `spf`")],
    ),
    ("bad-address.yaml", BL, [("bad-address", "bad-address.yaml:4:9", "octet 300 is out of range")]),
    ("bad-ipv6.yaml", BL, [("bad-address", "bad-ipv6.yaml:3:9", "not a valid IPv6 address")]),
    ("host-bits.yaml", BL, [("host-bits", "host-bits.yaml:4:9", "host bits set below /24")]),
    (
        "bad-code.yaml",
        BL,
        [
            ("bad-code", "bad-code.yaml:4:11", "outside 127.0.0.0/8"),
            ("bad-code", "bad-code.yaml:6:11", "127.0.0.1 is forbidden"),
            ("bad-code", "bad-code.yaml:8:11", "127.255.255.0/24"),
        ],
    ),
    ("wrong-family-domain.yaml", BL, [("wrong-family", "wrong-family-domain.yaml:3:13", "ip zone")]),
    ("wrong-family-ip.yaml", DBL, [("wrong-family", "wrong-family-ip.yaml:3:9", "domain zone")]),
    (
        "broad-prefix.yaml",
        BL,
        [
            ("broad-prefix", "broad-prefix.yaml:3:9", "broader than /16, the limit for bl.example.test"),
            ("broad-prefix", "broad-prefix.yaml:8:9", "broader than /32"),
        ],
    ),
    (
        "lists-test-point.yaml",
        BL,
        [
            ("lists-test-point", "lists-test-point.yaml:3:9", "127.0.0.1"),
            ("lists-test-point", "lists-test-point.yaml:4:9", "covers 127.0.0.1"),
            ("v4-mapped", "lists-test-point.yaml:5:9", "IPv4-mapped"),
            ("lists-test-point", "lists-test-point.yaml:5:9", "::ffff:127.0.0.1"),
        ],
    ),
    (
        "delists-test-point.yaml",
        BL,
        [
            ("delists-test-point", "delists-test-point.yaml:4:9", "delist 127.0.0.2"),
            ("delists-test-point", "delists-test-point.yaml:6:9", "delist 127.0.0.2"),
        ],
    ),
    (
        "domain-test-points.yaml",
        DBL,
        [
            ("lists-test-point", "domain-test-points.yaml:3:13", "`invalid`"),
            ("delists-test-point", "domain-test-points.yaml:4:13", "`test`"),
        ],
    ),
    ("v4-mapped.yaml", BL, [("v4-mapped", "v4-mapped.yaml:3:9", "IPv4-mapped")]),
    (
        "bad-date.yaml",
        BL,
        [
            ("bad-date", "bad-date.yaml:4:14", "day is out of range"),
            ("bad-date", "bad-date.yaml:6:12", "'last tuesday'"),
        ],
    ),
    ("missing-owner.yaml", WL, [("missing-owner", "missing-owner.yaml:7:5", "need an `owner`")]),
    (
        "bad-domain.yaml",
        DBL,
        [
            ("bad-domain", "bad-domain.yaml:4:13", "empty label"),
            ("bad-domain", "bad-domain.yaml:5:13", "'*' that is not the leading label"),
        ],
    ),
]


@pytest.mark.parametrize(("name", "zone", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_file(name: str, zone: ZoneConfig, expected: list[tuple[str, str, str]]) -> None:
    _, problems = _read(name, zone)
    assert [(c, w) for c, w, _, _ in problems] == [(c, w) for c, w, _ in expected]
    for (_, _, message, fix), (_, _, words) in zip(problems, expected):
        assert words in message
        assert fix, f"no fix for: {message}"


def test_bad_entries_are_not_stored_but_good_ones_are() -> None:
    rows, problems = _read("host-bits.yaml")
    assert rows == 1 and len(problems) == 1  # 192.0.2.1 kept, 203.0.113.7/24 refused


def test_full_entry_is_stored_with_metadata() -> None:
    text = b"""defaults: {by: alice, code: 127.0.0.3}
entries:
  - ip: 203.0.113.0/24
    code: 127.0.0.4
    reason: snowshoe spam run
    added: 2026-11-01
    expires: 2027-01-31
    ticket: 1234
  - ip: 2001:db8::/48
  - ip: 198.51.100.0/24
    exclude: true
"""
    source = read_yaml_source("bl/abuse.yaml", text, BL)
    assert source.problems == []
    assert list(source.v4_start) == [0xCB007100, 0xC6336400]
    assert list(source.v4_line) == [3, 10]
    assert source.v6_start == [0x20010DB8 << 96] and list(source.v6_line) == [9]
    first = source.values[source.v4_value[0]]
    assert first.code == parse_code("127.0.0.4") and first.reason == "snowshoe spam run"
    assert first.expires == dt.datetime(2027, 2, 1, tzinfo=UTC)  # through 2027-01-31
    assert source.values[source.v6_value[0]].code == parse_code("127.0.0.3")  # from defaults
    assert source.values[source.v4_value[1]].exclude
    meta = source.entries[3]
    assert (meta.line, meta.col, meta.text, meta.by, meta.ticket, meta.added) == (
        3,
        5,
        "203.0.113.0/24",
        "alice",
        "1234",
        "2026-11-01",
    )


def test_allowlist_owner_may_come_from_defaults() -> None:
    text = (
        b"defaults: {owner: Example Partner Ltd, contact: postmaster@partner.example}\n"
        b"entries:\n  - ip: 198.51.100.25\n"
    )
    source = read_yaml_source("wl/partners.yaml", text, WL)
    assert source.problems == []
    assert source.entries[3].owner == "Example Partner Ltd"
    assert source.entries[3].contact == "postmaster@partner.example"


def test_domain_forms() -> None:
    text = b'entries:\n  - domain: Spam.Example.\n  - domain: "*.phish.example.com"\n  - domain: .both.example.net\n'
    source = read_yaml_source("dbl/d.yaml", text, DBL)
    assert source.problems == []
    rows = list(zip(source.dom_name, source.dom_wild, source.dom_line))
    assert rows == [
        ("spam.example", 0, 2),
        ("phish.example.com", 1, 3),
        ("both.example.net", 0, 4),  # rbldnsd's `.name`: the name itself ...
        ("both.example.net", 1, 4),  # ... and every subdomain
    ]


def test_a_bad_default_is_reported_once_not_per_entry() -> None:
    text = b"defaults: {expire: 2027-01-01}\nentries:\n  - ip: 192.0.2.1\n  - ip: 192.0.2.2\n"
    source = read_yaml_source("bl/x.yaml", text, BL)
    assert [(p.code, str(p.location)) for p in source.problems] == [("unknown-key", "bl/x.yaml:1:12")]
    assert len(source) == 0  # nothing half-checked is kept


def test_bad_code_in_defaults_points_at_the_default() -> None:
    text = b"defaults:\n  code: 127.0.0.1\nentries:\n  - ip: 192.0.2.1\n"
    source = read_yaml_source("bl/x.yaml", text, BL)
    assert [(p.code, str(p.location)) for p in source.problems] == [("bad-code", "bl/x.yaml:2:9")]


def test_empty_file() -> None:
    source = read_yaml_source("bl/x.yaml", b"", BL)
    assert [(p.code, str(p.location)) for p in source.problems] == [("not-a-mapping", "bl/x.yaml:1:1")]


def test_unknown_file_kind() -> None:
    source = read_source("bl/notes.md", b"hello", BL)
    assert [p.code for p in source.problems] == ["unknown-format"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-01-31", dt.datetime(2027, 2, 1, tzinfo=UTC)),
        ("2027-01-31T12:30:00Z", dt.datetime(2027, 1, 31, 12, 30, tzinfo=UTC)),
        ("2027-01-31 12:30", dt.datetime(2027, 1, 31, 12, 30, tzinfo=UTC)),
        ("2027-01-31T12:30:00+02:00", dt.datetime(2027, 1, 31, 10, 30, tzinfo=UTC)),
    ],
)
def test_expires_forms(text: str, expected: dt.datetime) -> None:
    assert parse_expires(text) == expected


@pytest.mark.parametrize("text", ["2027-02-30", "31.01.2027", "soon", "2027-1-5"])
def test_expires_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_expires(text)
