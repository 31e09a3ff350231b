"""The list files of an email zone: curated `email:`/`hash:` entries, bulk feeds of addresses or
hashes, and what validation refuses (README, "Email-address lists"). Compiled answers are
tested with the compiler; here: what `load_lists` and `publisher validate` read and say."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from tests.test_publish import run_cli

from publisher.emails import EmailSettings, address_name, hash_label
from publisher.lists.bulk import MAX_LINE_PROBLEMS, read_bulk_source
from publisher.lists.load import Loaded, load_lists
from publisher.lists.tree import DirTree
from publisher.model import SourceData

AS_OF = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
SUFFIXED = EmailSettings(suffix="_email")

ZONES = """\
zones:
  - name: ebl.example.test
    kind: email
    role: block
    sources: [ebl/*]
    code: 127.0.2.2
    txt: "{reason}"
    email: {suffix: _email}
  - name: dbl.example.test
    kind: domain
    role: block
    sources: [dbl/*]
    code: 127.0.1.2
    txt: "{reason}"
"""
DBL = "entries:\n  - domain: spam.example\n"


def _tree(tmp_path: Path, files: dict[str, str], zones: str = ZONES) -> Path:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "zones.yaml").write_text(zones)
    files = {"dbl/d.yaml": DBL, **files}
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    return tmp_path


def _load(tmp_path: Path, files: dict[str, str], zones: str = ZONES) -> Loaded:
    return load_lists(DirTree(_tree(tmp_path, files, zones)), as_of=AS_OF)


def _said(loaded: Loaded) -> list[str]:
    return [f"{p.location}: {p.message} [{p.code}]" for p in loaded.problems]


def _name(text: str) -> str:
    return address_name(text, SUFFIXED)[1]


def _source(loaded: Loaded, path: str) -> SourceData:
    return next(s for s in loaded.sources["ebl.example.test"] if s.path == path)


# --- curated entries ------------------------------------------------------------------


def test_curated_addresses_and_hashes_are_stored_by_their_hashed_name(tmp_path: Path) -> None:
    ready = hashlib.sha1(b"payout@fraud.example").hexdigest()
    loaded = _load(
        tmp_path,
        {
            "ebl/a.yaml": (
                "defaults:\n  reason: drop box\n  by: erin\n"
                "entries:\n"
                "  - email: Drop@Fraud.Example\n    ticket: T-1\n"
                "  - email: J.Doe+invoice@googlemail.com\n    code: 127.0.2.3\n    reason: phishing\n"
                f"  - hash: {ready.upper()}\n"
            )
        },
    )
    assert loaded.errors == []
    src = _source(loaded, "ebl/a.yaml")
    assert src.dom_name == [
        hash_label("drop@fraud.example", "sha1") + "._email",
        hash_label("jdoe@gmail.com", "sha1") + "._email",
        ready + "._email",
    ]
    assert list(src.dom_wild) == [0, 0, 0]
    metas = [src.entries[line] for line in src.dom_line]
    assert [m.text for m in metas] == ["Drop@Fraud.Example", "J.Doe+invoice@googlemail.com", ready.upper()]
    assert [m.by for m in metas] == ["erin"] * 3 and metas[0].ticket == "T-1"
    values = [src.values[m.value] for m in metas]
    assert [(v.code, v.reason) for v in values] == [
        (0x7F000202, "drop box"),
        (0x7F000203, "phishing"),
        (0x7F000202, "drop box"),
    ]


def test_wrong_kind_entries_are_refused_with_a_fix(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path,
        {
            "ebl/a.yaml": "entries:\n  - ip: 192.0.2.7\n  - domain: spam.example\n  - email: ok@fraud.example\n",
            "dbl/d.yaml": DBL + "  - email: drop@fraud.example\n  - hash: " + "a" * 40 + "\n",
        },
    )
    found = {(str(p.location), p.code, p.message, p.fix) for p in loaded.errors}
    assert found == {
        (
            "ebl/a.yaml:2:9",
            "wrong-family",
            "'192.0.2.7' is an IP entry, but ebl.example.test is an email zone",
            "move it to a list file of an ip zone; an email zone lists `email:` addresses or `hash:`es",
        ),
        (
            "ebl/a.yaml:3:13",
            "wrong-family",
            "'spam.example' is a domain entry, but ebl.example.test is an email zone",
            "move it to a list file of a domain zone; an email zone lists `email:` addresses or `hash:`es",
        ),
        (
            "dbl/d.yaml:3:12",
            "wrong-family",
            "'drop@fraud.example' is an email entry, but dbl.example.test is a domain zone",
            "move it to a list file of an email zone (zones.yaml `kind: email`)",
        ),
        (
            "dbl/d.yaml:4:11",
            "wrong-family",
            f"'{'a' * 40}' is a hash entry, but dbl.example.test is a domain zone",
            "move it to a list file of an email zone (zones.yaml `kind: email`)",
        ),
    }
    assert _source(loaded, "ebl/a.yaml").dom_name == [_name("ok@fraud.example")]


def test_bad_addresses_and_hashes_are_located_with_a_fix(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path,
        {
            "ebl/a.yaml": (
                "entries:\n"
                "  - email: drop@fraud\n"
                "  - hash: 0123456789abcdef0123456789abcdef\n"
                "  - email: 5b2f2ff1afd79cc492a8ca3272297796eecf740b\n"
                "  - email: ok@fraud.example\n"
            )
        },
    )
    assert [(str(p.location), p.code, p.message, p.fix) for p in loaded.errors] == [
        (
            "ebl/a.yaml:2:12",
            "bad-email",
            "'drop@fraud' has no full domain after '@'",
            "write the whole domain, like drop@fraud.example (list a domain in a domain zone)",
        ),
        (
            "ebl/a.yaml:3:11",
            "bad-hash",
            "'0123456789abcdef0123456789abcdef' looks like an md5, but this zone hashes with sha1 (40 hex digits)",
            "list sha1 hashes here, or the addresses themselves (the zone hashes them)",
        ),
        (
            "ebl/a.yaml:4:12",
            "bad-email",
            "'5b2f2ff1afd79cc492a8ca3272297796eecf740b' is not an email address (no '@')",
            "write it as local@domain; a ready hash is written `- hash: 5b2f2ff1afd79cc492a8ca3272297796eecf740b`",
        ),
    ]
    assert _source(loaded, "ebl/a.yaml").dom_name == [_name("ok@fraud.example")]


@pytest.mark.parametrize(
    "entry",
    ["  - email: a@b.example\n    hash: " + "a" * 40 + "\n", "  - reason: nothing listed\n"],
    ids=["both", "none"],
)
def test_an_entry_needs_exactly_one_subject(tmp_path: Path, entry: str) -> None:
    loaded = _load(tmp_path, {"ebl/a.yaml": "entries:\n" + entry})
    (problem,) = loaded.errors
    assert str(problem.location) == "ebl/a.yaml:2:5"
    assert problem.message.endswith("an entry needs exactly one of `ip`, `domain`, `email`, `hash` or `spf`")
    assert problem.fix is not None and "`- email: drop@fraud.example`" in problem.fix


# --- bulk feeds -----------------------------------------------------------------------


def test_a_bulk_feed_of_addresses_hashes_values_and_exclusions(tmp_path: Path) -> None:
    ready = hashlib.sha1(b"payout@fraud.example").hexdigest()
    feed = (
        "# feed\n"
        ":127.0.2.2:Address seen in spam\n"
        "refunds@phish.example\n"
        "  Billing@Fake-Bank.example :3:Phishing sender\n"
        "a#b@phish.example:4\n"
        f"{ready}\n"
        f"{ready.upper()}   # a comment\n"
        "!refunds@phish.example\n"
        "cost@phish.example :2:costs $$5\n"
        "#not@listed.example\n"
        "$ttl@listed.example\n"
    )
    loaded = _load(tmp_path, {"ebl/feed.txt": feed})
    assert loaded.errors == []
    src = _source(loaded, "ebl/feed.txt")
    rows = [(r.name, r.line, src.values[r.value]) for r in src.rows()]
    names = [
        _name("refunds@phish.example"),
        _name("billing@fake-bank.example"),
        _name("a#b@phish.example"),
        ready + "._email",
        ready + "._email",
        _name("refunds@phish.example"),
        _name("cost@phish.example"),
    ]
    assert [name for name, _, _ in rows] == names
    assert [line for _, line, _ in rows] == [3, 4, 5, 6, 7, 8, 9]
    assert [(v.code & 0xFF, v.reason, v.exclude) for _, _, v in rows] == [
        (2, "Address seen in spam", False),
        (3, "Phishing sender", False),
        (4, "Address seen in spam", False),
        (2, "Address seen in spam", False),
        (2, "Address seen in spam", False),
        (2, "", True),
        (2, "costs $5", False),
    ]
    # the hash written twice is one repeat; the exclusion is no listing
    assert [(p.code, p.message) for p in loaded.warnings] == [
        (
            "bulk-repeats",
            "1 repeated and 0 overlapping entries (e.g. line 7 repeats line 6); they are merged when compiled",
        ),
        (
            "conflict",
            "the exclusion of this address (or hash) comes after line 3, which lists it: the first entry of a file "
            "wins, so it changes nothing",
        ),
        ("bulk-special", "unrecognised special line `$ttl@listed.example`, ignored"),
    ]


@pytest.mark.parametrize(
    ("feed", "where", "code", "message"),
    [
        ("drop@@x.example\n", "2:1", "bad-email", "'drop@@x.example' has more than one '@'"),
        ("  Drop@fraud\n", "2:3", "bad-email", "'Drop@fraud' has no full domain after '@'"),
        (
            "0123456789abcdef0123456789abcdef\n",
            "2:1",
            "bad-hash",
            "'0123456789abcdef0123456789abcdef' looks like an md5, but this zone hashes with sha1 (40 hex digits)",
        ),
        (
            "not-a-hash\n",
            "2:1",
            "bad-hash",
            "'not-a-hash' is neither an email address (it has no '@') nor a sha1 hash (40 hex digits)",
        ),
        (
            "x@y.example :2:mail from $ is spam\n",
            "2:13",
            "bad-template",
            "`$` in a text of an email zone would put the queried hash into the TXT; "
            "an email zone's TXT never names the query",
        ),
        (
            ":2:mail from $\nx@y.example\n",
            "2:1",
            "bad-template",
            "`$` in a text of an email zone would put the queried hash into the TXT; "
            "an email zone's TXT never names the query",
        ),
    ],
    ids=["two-at", "no-domain", "md5-in-sha1", "no-hash", "dollar-in-line", "dollar-in-default"],
)
def test_bad_feed_lines_are_located_with_a_fix(tmp_path: Path, feed: str, where: str, code: str, message: str) -> None:
    loaded = _load(tmp_path, {"ebl/feed.txt": "ok@fraud.example\n" + feed})
    (problem,) = loaded.errors
    assert (str(problem.location), problem.code, problem.message) == (f"ebl/feed.txt:{where}", code, message)
    assert problem.fix


def test_a_hostile_feed_of_bad_lines_costs_a_bounded_output(tmp_path: Path) -> None:
    zone = _load(tmp_path, {"ebl/a.yaml": "entries:\n  - email: a@b.example\n"}).config.zones[0]  # type: ignore[union-attr]
    data = b"".join(b"bad@line%d\n" % i for i in range(100_000))
    source = read_bulk_source("ebl/feed.txt", data, zone)
    assert len(source) == 0
    assert len(source.problems) == MAX_LINE_PROBLEMS + 1
    assert source.problems[-1].code == "too-many-problems"
    assert source.problems[-1].message == f"{100_000 - MAX_LINE_PROBLEMS} more bad lines in ebl/feed.txt are not shown"


# --- validation across entries and files -----------------------------------------------


def test_duplicates_after_normalisation_name_both_as_written(tmp_path: Path) -> None:
    ready = hashlib.sha1(b"drop@fraud.example").hexdigest()
    loaded = _load(
        tmp_path,
        {
            "ebl/a.yaml": (
                "entries:\n"
                "  - email: johndoe@gmail.com\n"
                "  - email: John.Doe+x@gmail.com\n"
                "  - email: drop@fraud.example\n"
            ),
            "ebl/b.yaml": (
                f"entries:\n  - email: John.Doe+y@googlemail.com\n  - hash: {ready}\n  - email: drop@fraud.example\n"
            ),
        },
    )
    said = [(str(p.location), p.code, p.message, [(k, str(v)) for k, v in p.related]) for p in loaded.errors]
    assert said == [
        (
            "ebl/a.yaml:3:5",
            "duplicate",
            "'John.Doe+x@gmail.com' is the same address as line 2 ('johndoe@gmail.com' once normalised)",
            [("first at", "ebl/a.yaml:2:5")],
        ),
        (
            "ebl/b.yaml:2:5",
            "duplicate",
            "'John.Doe+y@googlemail.com' is the same address as ebl/a.yaml:2 ('johndoe@gmail.com' once normalised)",
            [("first at", "ebl/a.yaml:2:5")],
        ),
        (
            "ebl/b.yaml:3:5",
            "duplicate",
            f"'{ready}' is the same address as ebl/a.yaml:4 ('drop@fraud.example'): the hash of 'drop@fraud.example'",
            [("first at", "ebl/a.yaml:4:5")],
        ),
        (
            "ebl/b.yaml:4:5",
            "duplicate",
            "'drop@fraud.example' is listed twice (first at ebl/a.yaml:4)",
            [("first at", "ebl/a.yaml:4:5")],
        ),
    ]
    assert all(p.fix for p in loaded.errors)


def test_differently_written_addresses_both_normalised(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path, {"ebl/a.yaml": "entries:\n  - email: J.Doe+a@gmail.com\n  - email: jdoe+b@GoogleMail.com\n"}
    )
    (problem,) = loaded.errors
    assert problem.message == (
        "'jdoe+b@GoogleMail.com' is the same address as line 2 ('J.Doe+a@gmail.com'): "
        "both are 'jdoe@gmail.com' once normalised"
    )


def test_expired_entries_warn_and_an_empty_email_zone_is_refused(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path,
        {"ebl/a.yaml": "entries:\n  - email: drop@fraud.example\n    expires: 2026-01-31\n"},
    )
    assert _said(loaded) == [
        "ebl/a.yaml:2:5: drop@fraud.example expired at 2026-02-01 00:00 UTC; it is no longer published [expired]"
    ]
    empty = _load(tmp_path / "e", {"ebl/feed.txt": "# nothing yet\n"})
    assert [(p.code, p.message) for p in empty.errors] == [
        ("empty-zone", "zone ebl.example.test has no entries in any of its sources (ebl/*)")
    ]


def test_an_excludes_file_of_an_email_zone_is_read_and_checked(tmp_path: Path) -> None:
    zones = ZONES.replace("    email: {suffix: _email}\n", "    email: {suffix: _email}\n    excludes: [local/*]\n")
    loaded = _load(
        tmp_path,
        {
            "ebl/feed.txt": "drop@fraud.example\nrefunds@phish.example\n",
            "local/delisted.txt": "Refunds@Phish.example\nbad@@line.example\n",
        },
        zones,
    )
    assert _said(loaded) == ["local/delisted.txt:2:1: 'bad@@line.example' has more than one '@' [bad-email]"]
    (holes,) = [s for s in loaded.sources["ebl.example.test"] if s.path == "local/delisted.txt"]
    assert [(r.name, holes.values[r.value].exclude) for r in holes.rows()] == [(_name("refunds@phish.example"), True)]


def test_publisher_validate_shows_the_operator_what_is_wrong(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "ebl/a.yaml": "entries:\n  - email: drop@fraud.example\n  - email: Drop@Fraud.example\n",
            "ebl/feed.txt": "ok@fraud.example\nmailto:x@y.example\n",
        },
    )
    code, out, err = run_cli("--lists", str(root), "validate")
    assert code == 1
    assert (
        f"{root}/ebl/a.yaml:3:5: 'Drop@Fraud.example' is the same address as line 2 "
        "('drop@fraud.example' once normalised) [duplicate]\n"
    ) in out + err
    assert f"{root}/ebl/feed.txt:2:1: 'mailto:x@y.example' is a mailto: link [bad-email]\n" in out + err
    assert "  fix: write the address alone: x@y.example\n" in out + err


# --- what a new operator got wrong first ---------------------------------------------


@pytest.mark.parametrize(
    ("line", "says", "fix"),
    [
        ("192.0.2.1", "'192.0.2.1' is an IP address, not an email address or a hash", "in an ip zone's files"),
        ("notanaddress", "'notanaddress' is neither an email address (it has no '@') nor a sha1 hash", "drop@"),
        ("nodomain@", "'nodomain@' has nothing after '@'", "like nodomain@fraud.example"),
        (
            "x,y@fraud.example",
            "'x,y@fraud.example' has characters not allowed in an unquoted local part: ','",
            "letters, digits and",
        ),
    ],
)
def test_a_feed_line_that_is_no_address_says_what_it_is(tmp_path: Path, line: str, says: str, fix: str) -> None:
    loaded = _load(tmp_path, {"ebl/feed.txt": f"{line}\n"})
    (problem,) = loaded.errors
    assert str(problem.location) == "ebl/feed.txt:1:1"
    assert problem.message.startswith(says), problem.message
    assert problem.fix is not None and fix in problem.fix


def test_an_email_address_in_an_ip_feed_belongs_in_an_email_zone(tmp_path: Path) -> None:
    zones = "zones:\n  - {name: bl.example.test, kind: ip, role: block, sources: [bl/*]}\n"
    loaded = _load(tmp_path, {"bl/feed.txt": "c@b.example\n", "dbl/d.yaml": DBL}, zones)
    assert [(p.message, p.fix) for p in loaded.errors] == [
        (
            "'c@b.example' is an email address, but bl.example.test is an ip zone",
            "list email addresses in an email zone's files (kind: email)",
        )
    ]


def test_a_curated_email_without_at_is_offered_hash_only_when_it_looks_like_one(tmp_path: Path) -> None:
    ready = hashlib.sha1(b"x").hexdigest()
    text = f"entries:\n  - email: nodomain\n  - email: '{ready}'\n"
    loaded = _load(tmp_path, {"ebl/a.yaml": text})
    fixes = [p.fix or "" for p in loaded.errors]
    assert len(fixes) == 2
    assert "- hash:" not in fixes[0]
    assert f"a ready hash is written `- hash: {ready}`" in fixes[1]


def test_an_address_in_a_reason_is_a_warning(tmp_path: Path) -> None:
    text = "entries:\n  - email: drop@fraud.example\n    reason: drop box of Jane.Roe@gmail.com\n"
    feed = "x@fraud.example :2:write to abuse@list.example\n"
    loaded = _load(tmp_path, {"ebl/a.yaml": text, "ebl/feed.txt": feed})
    assert loaded.errors == []
    assert [(str(p.location), p.code) for p in loaded.warnings] == [
        ("ebl/a.yaml:2:5", "address-in-text"),
        ("ebl/feed.txt:1", "address-in-text"),
    ]
    assert "(Jane.Roe@gmail.com)" in loaded.warnings[0].message
