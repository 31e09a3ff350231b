"""Bulk list files (*.txt) in rbldnsd syntax: forms, values, bad lines, repeats."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher.addresses import AddressError, Network, parse_code
from publisher.lists.bulk import MAX_LINE_PROBLEMS, read_bulk_source
from publisher.lists.bulk_syntax import expand_txt, parse_ip_token, parse_value, split_token
from publisher.model import SUBST, SourceData, ZoneConfig

BAD = Path(__file__).resolve().parent / "data" / "bad"

BL = ZoneConfig("bl.example.test", "ip", "block", ("bl/*.txt",), parse_code("127.0.0.2"), "{reason}")
DBL = ZoneConfig("dbl.example.test", "domain", "block", ("dbl/*.txt",), parse_code("127.0.1.2"), "{reason}")


def _read(text: str | bytes, zone: ZoneConfig = BL) -> SourceData:
    data = text.encode() if isinstance(text, str) else text
    return read_bulk_source("bl/feed.txt", data, zone)


def _v4(source: SourceData) -> list[tuple[str, int]]:
    return [(str(Network(4, s, e)), ln) for s, e, ln in zip(source.v4_start, source.v4_end, source.v4_line)]


def _codes(source: SourceData) -> list[tuple[str, str]]:
    return [(p.code, str(p.location)) for p in source.problems]


# --- address forms (rbldnsd ip4set / ip6trie) ------------------------------------------


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("192.0.2.0/24", "192.0.2.0/24"),
        ("10.1", "10.1.0.0/16"),
        ("10.1.2", "10.1.2.0/24"),
        ("10/8", "10.0.0.0/8"),
        ("10.16/12", "10.16.0.0/12"),
        ("127.0.0.1-255", "127.0.0.1-127.0.0.255"),
        ("10.16-31", "10.16.0.0/12"),  # a one-octet right end replaces the last octet given
        ("10.16.0-31", "10.16.0.0/19"),
        ("192.0.2.0-192.0.2.127", "192.0.2.0/25"),
        ("010.0.0.1", "10.0.0.1"),  # rbldnsd reads octets as decimal
        ("2001:db8::/32", "2001:db8::/32"),
        ("2001:db8::7", "2001:db8::7"),
        ("2001:db8:1", "2001:db8:1::/48"),  # trailing groups left out
        ("2001:db8:c000/36", "2001:db8:c000::/36"),
        ("2001:21ab:def7:4242", "2001:21ab:def7:4242::/64"),
    ],
)
def test_address_forms(token: str, expected: str) -> None:
    assert str(parse_ip_token(token)) == expected


@pytest.mark.parametrize(
    ("token", "words"),
    [
        ("10", "bare number"),
        ("192.0.2.256", "out of range"),
        ("1.2.3.4.5", "5 parts"),
        ("1..2.3", "empty octet"),
        ("192.0.2.7/24", "host bits"),
        ("192.0.2.0/33", "bad prefix length"),
        ("10.1-10.2.3", "different lengths"),
        ("10.0.0.9-10.0.0.1", "ends before it starts"),
        ("2001:db8::g", "not a valid IPv6"),
        ("2001:db8::1/32", "host bits"),
        ("2001:db8:12345", "not a valid IPv6"),
    ],
)
def test_address_errors(token: str, words: str) -> None:
    with pytest.raises(AddressError) as info:
        parse_ip_token(token)
    assert words in info.value.message


def test_split_token() -> None:
    assert split_token("192.0.2.1 :3:spam") == ("192.0.2.1", ":3:spam")
    assert split_token("192.0.2.1:3:spam") == ("192.0.2.1", ":3:spam")  # rbldnsd allows the value glued
    assert split_token("2001:db8::1 :3:x") == ("2001:db8::1", ":3:x")
    assert split_token("::ffff:192.0.2.1") == ("::ffff:192.0.2.1", "")
    assert split_token("192.0.2.1# note") == ("192.0.2.1", "# note")


# --- values and TXT ----------------------------------------------------------------------


def test_parse_value() -> None:
    assert parse_value(":127.0.0.3:spam") == (parse_code("127.0.0.3"), "spam")
    assert parse_value(":3:spam") == (parse_code("127.0.0.3"), "spam")  # N means 127.0.0.N
    assert parse_value(":5") == (parse_code("127.0.0.5"), None)  # default TXT
    assert parse_value(":6:") == (parse_code("127.0.0.6"), "")  # explicitly no TXT


def test_expand_txt() -> None:
    assert expand_txt("see http://x.example/?$", {}, None) == f"see http://x.example/?{SUBST}"
    assert expand_txt("costs $$5", {}, None) == "costs $5"
    assert expand_txt("$1/spam/$ $2", {"1": "See http://x.example", "2": "for details"}, None) == (
        f"See http://x.example/spam/{SUBST} for details"
    )
    base = "See http://x.example/bl?$= ($)"
    assert expand_txt("r123", {}, base) == f"See http://x.example/bl?r123 ({SUBST})"
    assert expand_txt("", {}, base) == f"See http://x.example/bl?{SUBST} ({SUBST})"
    assert expand_txt("=other list", {}, base) == "other list"


def test_values_follow_rbldnsd() -> None:
    source = _read(
        "# default value for what follows\n"
        ":127.0.0.2:IP address $ is listed\n"
        "192.0.2.4\n"
        "192.0.2.5 :5\n"
        "192.0.2.6 :6:\n"
        "192.0.2.7 IP address $ running an open relay\n"
        "$1 https://x.example/\n"
        "192.0.2.8 :8:see $1$\n"
        "!192.0.2.9\n"
    )
    assert source.problems == []
    got = [(str(Network(4, s, s)), source.values[v]) for s, v in zip(source.v4_start, source.v4_value)]
    values = {addr: (v.code - 0x7F000000, v.reason, v.exclude) for addr, v in got}
    assert values == {
        "192.0.2.4": (2, f"IP address {SUBST} is listed", False),
        "192.0.2.5": (5, f"IP address {SUBST} is listed", False),  # specific A, default TXT
        "192.0.2.6": (6, "", False),  # specific A, no TXT
        "192.0.2.7": (2, f"IP address {SUBST} running an open relay", False),
        "192.0.2.8": (8, f"see https://x.example/{SUBST}", False),
        "192.0.2.9": (2, "", True),
    }


def test_without_a_default_line_the_zone_code_applies() -> None:
    source = _read("192.0.2.1\n")
    assert source.values[source.v4_value[0]].code == BL.code


def test_comments_blank_lines_and_crlf() -> None:
    source = _read("# c\r\n; also a comment\r\n\r\n  192.0.2.1   # trailing\r\n192.0.2.2 ; note\r\n")
    assert source.problems == []
    assert _v4(source) == [("192.0.2.1", 4), ("192.0.2.2", 5)]


def test_domains_dnset() -> None:
    source = _read(
        ":127.0.1.2:Domain $ in spam\nspam.example\n*.phish.example\n.both.example\n!ok.phish.example\n", DBL
    )
    assert source.problems == []
    rows = [
        (n, w, ln, source.values[v].exclude)
        for n, w, v, ln in zip(source.dom_name, source.dom_wild, source.dom_value, source.dom_line)
    ]
    assert rows == [
        ("spam.example", 0, 2, False),
        ("phish.example", 1, 3, False),
        ("both.example", 0, 4, False),
        ("both.example", 1, 4, False),
        ("ok.phish.example", 0, 5, True),
    ]
    assert source.values[source.dom_value[0]].reason == f"Domain {SUBST} in spam"


# --- bad files (tests/data/bad/bulk-*.txt) ---------------------------------------------

CASES = [
    (
        "bulk-bad-address.txt",
        BL,
        [
            ("bad-address", "bulk-bad-address.txt:3:1", "octet 256"),
            ("bad-address", "bulk-bad-address.txt:4:1", "5 parts"),
            ("bad-address", "bulk-bad-address.txt:5:3", "IPv6"),
            ("bad-address", "bulk-bad-address.txt:6:1", "prefix length"),
            ("wrong-family", "bulk-bad-address.txt:7:1", "domain name"),
        ],
    ),
    (
        "bulk-host-bits.txt",
        BL,
        [
            ("host-bits", "bulk-host-bits.txt:2:1", "below /24"),
            ("host-bits", "bulk-host-bits.txt:3:1", "below /32"),
        ],
    ),
    (
        "bulk-bad-value.txt",
        BL,
        [
            ("bad-code", "bulk-bad-value.txt:2:11", "127.0.0.1 is forbidden"),
            ("bad-code", "bulk-bad-value.txt:3:11", "outside 127.0.0.0/8"),
            ("bad-code", "bulk-bad-value.txt:4:1", "'x'"),
            ("bad-value", "bulk-bad-value.txt:5:11", "not a value"),
        ],
    ),
    (
        "bulk-special.txt",
        BL,
        [
            ("bulk-special", "bulk-special.txt:1:1", "`$SOA` is ignored"),
            ("bulk-special", "bulk-special.txt:2:1", "`$NS` is ignored"),
            ("bulk-special", "bulk-special.txt:3:1", "`$TTL` is ignored"),
        ],
    ),
    ("bulk-unsupported.txt", BL, [("bulk-unsupported", "bulk-unsupported.txt:1:1", "$DATASET")]),
    (
        "bulk-wrong-family.txt",
        BL,
        [
            ("wrong-family", "bulk-wrong-family.txt:2:1", "ip zone"),
            ("wrong-family", "bulk-wrong-family.txt:3:1", "ip zone"),
        ],
    ),
    (
        "bulk-test-points.txt",
        BL,
        [
            ("lists-test-point", "bulk-test-points.txt:2:1", "127.0.0.1"),
            ("delists-test-point", "bulk-test-points.txt:3:2", "127.0.0.2"),
            ("broad-prefix", "bulk-test-points.txt:4:1", "broader than /16"),
        ],
    ),
    ("bulk-not-utf8.txt", BL, [("not-utf8", "bulk-not-utf8.txt:1:14", "0xe9")]),
    (
        "bulk-domains.txt",
        DBL,
        [
            ("wrong-family", "bulk-domains.txt:2:1", "domain zone"),
            ("bad-domain", "bulk-domains.txt:3:1", "empty label"),
            ("lists-test-point", "bulk-domains.txt:4:1", "`invalid`"),
            ("delists-test-point", "bulk-domains.txt:5:2", "`test`"),
        ],
    ),
]


@pytest.mark.parametrize(("name", "zone", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_bulk_file(name: str, zone: ZoneConfig, expected: list[tuple[str, str, str]]) -> None:
    source = read_bulk_source(name, (BAD / name).read_bytes(), zone)
    assert _codes(source) == [(c, w) for c, w, _ in expected]
    for problem, (_, _, words) in zip(source.problems, expected):
        assert words in problem.message
        assert problem.fix


def test_specials_are_warnings_and_the_data_still_loads() -> None:
    source = read_bulk_source("f.txt", (BAD / "bulk-special.txt").read_bytes(), BL)
    assert all(not p.is_error for p in source.problems)
    assert _v4(source) == [("192.0.2.1", 4)]


def test_repeats_and_overlaps_are_one_warning() -> None:
    source = read_bulk_source("bulk-repeats.txt", (BAD / "bulk-repeats.txt").read_bytes(), BL)
    (problem,) = source.problems
    assert not problem.is_error
    assert (problem.code, str(problem.location)) == ("bulk-repeats", "bulk-repeats.txt:3")
    # 192.0.2.1 twice (1 repeat); 192.0.2.1 inside 192.0.2.0/24 and the /26 inside the /25 (2 overlaps)
    assert problem.message.startswith("1 repeated and 2 overlapping entries (e.g. line 3 repeats line 1)")
    assert len(source) == 5  # everything is kept: the compiler merges


def test_exclusions_are_not_overlaps() -> None:
    source = _read("192.0.2.0/24\n!192.0.2.7\n")
    assert source.problems == []


def test_a_wrong_file_is_cut_short() -> None:
    source = _read("".join(f"garbage line {i}\n" for i in range(MAX_LINE_PROBLEMS + 10)))
    assert len(source.problems) == MAX_LINE_PROBLEMS + 1
    assert source.problems[-1].code == "too-many-problems"
    assert source.problems[-1].message.startswith("10 more bad lines")


def test_fast_path_and_full_path_agree() -> None:
    # The same addresses through the inet_pton fast path and through the full parser.
    plain = _read("192.0.2.1\n2001:db8::/48\n192.0.2.0/28\n")
    spaced = _read(" 192.0.2.1 \n 2001:db8::/48 \n 192.0.2.0/28 \n")
    assert _v4(plain) == _v4(spaced)
    assert plain.v6_start == spaced.v6_start and plain.v6_end == spaced.v6_end
    assert list(plain.v4_value) == list(spaced.v4_value)


def test_chunk_boundaries_keep_line_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    text = ":127.0.0.3:x\n" + "".join(f"192.0.2.{i}\n" for i in range(1, 60)) + "spam.example\n"
    whole = _read(text)
    monkeypatch.setattr("publisher.lists.bulk._CHUNK", 7)  # cut every line or two
    cut = _read(text)
    assert _v4(cut) == _v4(whole) and len(_v4(cut)) == 59
    assert list(cut.v4_value) == list(whole.v4_value)
    assert _codes(cut) == _codes(whole) == [("wrong-family", "bl/feed.txt:61:1")]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("spam.example", ("spam.example", 0)),
        ("_dmarc.example.com", ("_dmarc.example.com", 0)),
        ("Spam.Example.", ("spam.example", 0)),  # the full parser normalises
        ("a-.example", "bad-domain"),
        ("-a.example", "bad-domain"),
        ("1.2.3.4", "wrong-family"),
        ("x" * 64 + ".example", "bad-domain"),
        ("1password.example", ("1password.example", 0)),
    ],
)
def test_domain_fast_path_agrees_with_the_rules(line: str, expected: tuple[str, int] | str) -> None:
    source = _read(line + "\n", DBL)
    if isinstance(expected, str):
        assert [p.code for p in source.problems] == [expected]
    else:
        assert source.problems == [] and list(zip(source.dom_name, source.dom_wild)) == [expected]


LATE = """\
zones:
  - name: bl.example.test
    kind: ip
    role: block
    sources: [bl/*.txt]
  - name: ebl.example.test
    kind: email
    role: block
    sources: [ebl/*.txt]
"""


def test_an_exclusion_below_its_own_listing_is_a_warning(tmp_path: Path) -> None:
    """The first entry of a file wins, so `!entry` appended below the entry (the natural way to
    delist it) changes nothing, where an rbldnsd ip4set delists: a warning, located, with the
    fix. Above the listing, or of a wider listing, an exclusion works and says nothing."""
    import datetime as dt

    from publisher.lists.load import load_lists
    from publisher.lists.tree import DirTree

    (tmp_path / "zones.yaml").write_text(LATE)
    (tmp_path / "bl").mkdir()
    (tmp_path / "ebl").mkdir()
    (tmp_path / "bl" / "feed.txt").write_text(
        "!192.0.2.9\n192.0.2.9\n192.0.2.33\n192.0.2.0/24\n!192.0.2.7\n!192.0.2.33\n"
    )
    (tmp_path / "ebl" / "feed.txt").write_text("drop@fraud.example\n!Drop+x@Fraud.example\n")
    loaded = load_lists(DirTree(tmp_path), as_of=dt.datetime(2026, 11, 30, tzinfo=dt.UTC))
    assert loaded.errors == []
    shown = [(str(p.location), p.code, p.message, p.fix) for p in loaded.warnings if p.code == "conflict"]
    assert shown == [
        (
            "bl/feed.txt:6",
            "conflict",
            "the exclusion of 192.0.2.33 comes after line 3, which lists it: the first entry of a file wins, "
            "so it changes nothing",
            "to delist it, remove line 3 (or move the exclusion above it); else remove the exclusion",
        ),
        (
            "ebl/feed.txt:2",
            "conflict",
            "the exclusion of this address (or hash) comes after line 1, which lists it: the first entry of a "
            "file wins, so it changes nothing",
            "to delist it, remove line 1 (or move the exclusion above it); else remove the exclusion",
        ),
    ]
