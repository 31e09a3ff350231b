"""Names that begin with digits and a hyphen are names, not IP ranges (issue 10, item 1).

`1-800-flowers.com`, `0-mail.com`, `66-77.cc` and `00-gov.cn` are listed in a domain zone
from bulk and curated files alike, and `import-rbldnsd` keeps them; an ip zone given one says
it is a name; real addresses and ranges stay wrong in a domain zone. A dnset fixture with
such names (tests/data/feeds/digit-names.dnset) is imported and served by our server, and
a real rbldnsd serving the original file must give the same answers.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from publisher.addresses import format_v4, parse_code
from publisher.compile.compiler import compile_zone
from publisher.compile.lookup import parse_query, zone_answer
from publisher.compile.zone import CompiledZone
from publisher.importer.migrate import guess_type, import_rbldnsd
from publisher.lists.bulk import read_bulk_source
from publisher.lists.curated import read_yaml_source
from publisher.lists.tree import DirTree
from publisher.model import SourceData, ZoneConfig
from publisher.publish.build import compile_tree
from publisher.server import Server, ZoneSet
from test_import_roundtrip import serve_originals
from test_interop import ask

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
BL = ZoneConfig("bl.example.test", "ip", "block", ("bl/*",), parse_code("127.0.0.2"), "{reason}")
DBL = ZoneConfig("dbl.example.test", "domain", "block", ("dbl/*",), parse_code("127.0.1.2"), "{reason}")
FIXTURE = Path(__file__).resolve().parent / "data" / "feeds" / "digit-names.dnset"

NAMES = ["1-800-flowers.com", "0-mail.com", "66-77.cc", "00-gov.cn"]
#: Addresses and ranges in rbldnsd's forms: never names.
ADDRESSES = ["1.2.3.4", "10/8", "10.1", "127.0.0.1-255", "1.2.3.4-1.2.3.9", "2001:db8::1", "10.1.2.300"]


def _problems(source: SourceData) -> list[str]:
    return [p.format() for p in source.problems]


def _answers(zone: CompiledZone, name: str) -> list[tuple[str, str]]:
    return sorted((format_v4(c), t) for c, t in zone_answer(zone, parse_query(name)))


def test_bulk_domain_zone_lists_names_that_begin_with_digits() -> None:
    text = ":127.0.1.3:digits\n" + "".join(f"{n}\n" for n in NAMES) + ".9-11.example\n"
    source = read_bulk_source("dbl/feed.txt", text.encode(), DBL)
    assert _problems(source) == []
    zone = compile_zone(DBL, [source], as_of=NOW)
    for name in NAMES:
        assert _answers(zone, name) == [("127.0.1.3", "digits")], name
        assert _answers(zone, "www." + name) == []
    assert _answers(zone, "a.9-11.example") == [("127.0.1.3", "digits")]


def test_curated_domain_zone_lists_names_that_begin_with_digits() -> None:
    text = "entries:\n" + "".join(f"  - domain: {n}\n    reason: digits\n" for n in NAMES)
    text += '  - domain: "*.66-77.cc"\n    reason: below\n'
    source = read_yaml_source("dbl/curated.yaml", text.encode(), DBL)
    assert _problems(source) == []
    zone = compile_zone(DBL, [source], as_of=NOW)
    for name in NAMES:
        assert _answers(zone, name) == [("127.0.1.2", "digits")], name
    assert _answers(zone, "x.66-77.cc") == [("127.0.1.2", "below")]


@pytest.mark.parametrize("token", ADDRESSES)
def test_addresses_and_ranges_stay_wrong_in_a_domain_zone(token: str) -> None:
    bulk = read_bulk_source("dbl/feed.txt", f"{token}\n".encode(), DBL)
    assert [(p.code, str(p.location)) for p in bulk.problems] == [("wrong-family", "dbl/feed.txt:1:1")]
    assert f"'{token}' is an IP address, but dbl.example.test is a domain zone" in bulk.problems[0].message
    curated = read_yaml_source("dbl/c.yaml", f'entries:\n  - domain: "{token}"\n'.encode(), DBL)
    assert [(p.code, str(p.location)) for p in curated.problems] == [("wrong-family", "dbl/c.yaml:2:13")]
    assert len(bulk) == len(curated) == 0


@pytest.mark.parametrize("name", NAMES)
def test_an_ip_zone_says_a_digit_name_is_a_name(name: str) -> None:
    source = read_bulk_source("bl/feed.txt", f"{name}\n".encode(), BL)
    (problem,) = source.problems
    assert problem.format() == (
        f"bl/feed.txt:1:1: '{name}' is a domain name, but bl.example.test is an ip zone [wrong-family]\n"
        "  fix: list domains in a domain zone's files"
    )


def test_rbldnsd_forms_still_read_as_ranges_in_an_ip_zone() -> None:
    source = read_bulk_source("bl/feed.txt", b"10.0.0.0/16\n127.0.0.3-255\n1.2.3.4-1.2.3.9\n20.1\n", BL)
    assert _problems(source) == []
    assert [(format_v4(s), format_v4(e)) for s, e in zip(source.v4_start, source.v4_end)] == [
        ("10.0.0.0", "10.0.255.255"),
        ("127.0.0.3", "127.0.0.255"),
        ("1.2.3.4", "1.2.3.9"),
        ("20.1.0.0", "20.1.255.255"),
    ]


# --- import-rbldnsd ---------------------------------------------------------------------------


def _import(tmp: Path, text: str, dataset: str | None) -> tuple[list[str], CompiledZone]:
    result = import_rbldnsd(text, zone=DBL.name, out="dbl/feed.txt", dataset=dataset, source="feed.dnset")
    for imported in result.zones:
        for f in imported.files:
            (tmp / f.path).parent.mkdir(parents=True, exist_ok=True)
            (tmp / f.path).write_text(f.text, encoding="utf-8")
    (tmp / "zones.yaml").write_text("zones:\n" + "".join(z.snippet for z in result.zones), encoding="utf-8")
    build = compile_tree(DirTree(tmp), as_of=NOW)
    return [p.code for p in result.problems], build.zones[DBL.name]


@pytest.mark.parametrize("dataset", ["dnset", None])
def test_import_rbldnsd_keeps_names_that_begin_with_digits(tmp_path: Path, dataset: str | None) -> None:
    text = "1-800-flowers.com\n0-mail.com :3:disposable $\n66-77.cc\n00-gov.cn\n"
    codes, zone = _import(tmp_path, text, dataset)
    assert "import-lost" not in codes and "import-skipped" not in codes, codes
    assert _answers(zone, "1-800-flowers.com") == [("127.0.0.2", "")]
    assert _answers(zone, "0-mail.com") == [("127.0.0.3", "disposable 0-mail.com")]
    assert _answers(zone, "66-77.cc") == _answers(zone, "00-gov.cn") == [("127.0.0.2", "")]


def test_a_feed_starting_with_such_a_name_is_guessed_a_dnset() -> None:
    assert guess_type("# feed\n1-800-flowers.com\n") == "dnset"
    assert guess_type("66-77.cc :2:x\n") == "dnset"
    assert guess_type("127.0.0.1-255\n") == guess_type("10/8\n") == "ip4set"


# --- the same answers as rbldnsd serving the original file ------------------------------------


def _probes(text: str) -> list[str]:
    names: set[str] = set()
    for line in text.splitlines():
        word = line.split()[0].lstrip("!").removeprefix("*.").lstrip(".") if line.strip() else ""
        if not word or word[0] in "#:":
            continue
        names |= {word, f"a.{word}", f"b.a.{word}", word.split(".", 1)[1]}
    names |= {"1-800-flowerz.com", "800-flowers.com", "0-mail.net", "x.1-800-flowers.com"}
    return sorted(names)


def _a(reply: DNSRecord) -> list[int]:
    return sorted(int.from_bytes(bytes(rr.rdata.data), "big") for rr in reply.rr if rr.rtype == QTYPE.A)


def _txt(reply: DNSRecord) -> list[bytes]:
    return sorted(b"".join(rr.rdata.data) for rr in reply.rr if rr.rtype == QTYPE.TXT)


def test_imported_feed_is_served_like_rbldnsd_serves_the_original(tmp_path: Path) -> None:
    original = FIXTURE.read_text()
    codes, zone = _import(tmp_path, original, None)
    assert "import-lost" not in codes and "import-differs" not in codes, codes
    names = [f"{n}.{zone.name}" for n in _probes(original)]
    server = Server(None, ["127.0.0.1:0"], zoneset=ZoneSet.build([zone]), send_notify=False)
    (endpoint,) = server.start()
    try:
        ours = endpoint.host, endpoint.port
        our_a, our_txt = ask(ours, names, "A"), ask(ours, names, "TXT")
    finally:
        server.stop()
    with serve_originals({zone.name: ("dnset", original)}) as theirs:
        rb_a, rb_txt = ask(theirs, names, "A"), ask(theirs, names, "TXT")
    differ = []
    for name in names:
        ours_rc, rb_rc = our_a[name].header.rcode, rb_a[name].header.rcode
        if (_a(our_a[name]), _txt(our_txt[name])) != (_a(rb_a[name]), _txt(rb_txt[name])):
            differ.append(
                f"{name}: ours {_a(our_a[name])} {_txt(our_txt[name])}, rbldnsd {_a(rb_a[name])} {_txt(rb_txt[name])}"
            )
        elif ours_rc != rb_rc and not (
            # the documented difference: an empty non-terminal is NOERROR here, NXDOMAIN in rbldnsd
            ours_rc == RCODE.NOERROR and rb_rc == RCODE.NXDOMAIN and zone.domain_is_ent(name[: -len(zone.name) - 1])
        ):
            differ.append(f"{name}: ours {RCODE[ours_rc]}, rbldnsd {RCODE[rb_rc]}")
    listed = [n for n in names if _a(rb_a[n])]
    assert not differ, "\n".join(differ)
    assert {f"{n}.{zone.name}" for n in NAMES} <= set(listed) and len(listed) < len(names)
