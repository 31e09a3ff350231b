"""Cross-file rules: duplicates, conflicts, expiry, useless exclusions, empty zones, protect."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

from publisher.addresses import format_v4, parse_code
from publisher.errors import Problem, sort_problems
from publisher.lists.checks import covers_protected, validate
from publisher.lists.curated import read_source
from publisher.model import Config, SourceData, ZoneConfig

BAD = Path(__file__).resolve().parent / "data" / "bad"
AS_OF = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)

BL = ZoneConfig(
    "bl.example.test", "ip", "block", ("bl/*",), parse_code("127.0.0.2"), "{reason}", protect=("wl.example.test",)
)
WL = ZoneConfig("wl.example.test", "ip", "allow", ("wl/*",), parse_code("127.0.15.1"), "{reason}")
DBL = ZoneConfig("dbl.example.test", "domain", "block", ("dbl/*",), parse_code("127.0.1.2"), "{reason}")
CONFIG = Config((BL, WL, DBL))


def _src(path: str, text: str, zone: ZoneConfig = BL) -> SourceData:
    source = read_source(path, text.encode(), zone)
    assert [p for p in source.problems if p.is_error] == []
    return source


def _bad(name: str, zone: ZoneConfig = BL) -> SourceData:
    return read_source(name, (BAD / name).read_bytes(), zone)


def _run(
    bl: list[SourceData], wl: list[SourceData] | None = None, dbl: list[SourceData] | None = None
) -> list[Problem]:
    wl = wl if wl is not None else [_src("wl/p.yaml", "entries:\n  - ip: 203.0.113.250\n    owner: X\n", WL)]
    dbl = dbl if dbl is not None else [_src("dbl/d.txt", "spam.example\n", DBL)]
    return validate(CONFIG, {BL.name: bl, WL.name: wl, DBL.name: dbl}, as_of=AS_OF)


def _codes(problems: list[Problem]) -> list[tuple[str, str]]:
    return [(p.code, str(p.location)) for p in problems]


def test_duplicate_in_one_file_names_both_places() -> None:
    (problem,) = _run([_bad("duplicate.yaml")])
    assert (problem.code, str(problem.location)) == ("duplicate", "duplicate.yaml:5:5")
    assert problem.message == "192.0.2.1 is listed twice"
    assert [(label, str(loc)) for label, loc in problem.related] == [("first at", "duplicate.yaml:3:5")]
    assert problem.fix


def test_duplicate_across_curated_files_of_a_zone() -> None:
    a = _src("bl/a.yaml", "entries:\n  - ip: 2001:db8::/48\n")
    b = _src("bl/b.yaml", "entries:\n  - ip: 192.0.2.9\n  - ip: 2001:db8::/48\n    reason: again\n")
    (problem,) = _run([a, b])
    assert (problem.code, str(problem.location)) == ("duplicate", "bl/b.yaml:3:5")
    assert [str(loc) for _, loc in problem.related] == ["bl/a.yaml:2:5"]


def test_bulk_repeats_are_not_duplicate_errors() -> None:
    a = _src("bl/a.yaml", "entries:\n  - ip: 192.0.2.9\n")
    feed = _src("bl/feed.txt", "192.0.2.9\n192.0.2.9\n")
    assert [p for p in _run([a, feed]) if p.is_error] == []


def test_listed_and_excluded_in_one_file() -> None:
    (problem,) = _run([_bad("conflict.yaml")])
    assert (problem.code, str(problem.location)) == ("conflict", "conflict.yaml:4:5")
    assert "both listed and excluded" in problem.message
    assert [str(loc) for _, loc in problem.related] == ["conflict.yaml:3:5"]


def test_expired_entries_are_warnings() -> None:
    (problem,) = _run([_bad("expired.yaml")])
    assert (problem.code, str(problem.location)) == ("expired", "expired.yaml:3:5")
    assert not problem.is_error
    assert "expired at 2026-02-01 00:00 UTC" in problem.message  # through 2026-01-31
    assert problem.fix


def test_exclusion_outside_any_listing_is_a_warning() -> None:
    (problem,) = _run([_bad("useless-exclusion.yaml")])
    assert (problem.code, str(problem.location)) == ("useless-exclusion", "useless-exclusion.yaml:4:5")
    assert not problem.is_error


def test_domain_exclusion_under_a_wildcard_is_useful() -> None:
    d = _src(
        "dbl/d.yaml", 'entries:\n  - domain: "*.bulk.example"\n  - domain: ok.bulk.example\n    exclude: true\n', DBL
    )
    assert _run([_src("bl/a.txt", "192.0.2.1\n")], dbl=[d]) == []


def test_empty_zone() -> None:
    problems = _run([_src("bl/a.txt", "# nothing yet\n")])
    assert [(p.code, p.location.path) for p in problems] == [("empty-zone", "zones.yaml")]
    assert "bl.example.test has no entries" in problems[0].message


def test_a_broken_file_does_not_also_make_the_zone_empty() -> None:
    broken = _bad("yaml-syntax.yaml")
    assert _run([broken]) == []  # the syntax error (reported by the reader) is the whole story


# --- covers-protected ----------------------------------------------------------------------


def _wl(*ips: str) -> SourceData:
    body = "".join(f"  - ip: {ip}\n    owner: Example Partner Ltd\n" for ip in ips)
    return _src("wl/partners.yaml", "entries:\n" + body, WL)


def test_blocklist_entry_covering_a_partner_gateway() -> None:
    bl = _src("bl/abuse.yaml", "entries:\n  - ip: 192.0.2.0/24\n    reason: spam\n")
    (problem,) = _run([bl], [_wl("198.51.100.25", "192.0.2.200")])
    assert (problem.code, str(problem.location)) == ("covers-protected", "bl/abuse.yaml:2:5")
    assert problem.message == (
        "192.0.2.0/24 covers 192.0.2.200 (Example Partner Ltd), protected by allowlist wl.example.test"
    )
    assert [(label, str(loc)) for label, loc in problem.related] == [("protected entry", "wl/partners.yaml:4:5")]
    assert problem.fix and "exclude: true" in problem.fix and "192.0.2.200" in problem.fix


def test_a_hole_in_the_same_file_resolves_it() -> None:
    feed = _src("bl/feed.txt", "192.0.2.0/24\n!192.0.2.200\n")
    assert _run([feed], [_wl("192.0.2.200")]) == []


def test_a_hole_in_another_file_does_not() -> None:
    feed = _src("bl/feed.txt", "192.0.2.0/24\n")
    other = _src("bl/holes.txt", "192.0.2.0/25\n!192.0.2.200\n")
    problems = _run([feed, other], [_wl("192.0.2.200")])
    assert _codes(problems) == [("covers-protected", "bl/feed.txt:1")]
    assert "`!192.0.2.200`" in (problems[0].fix or "")


def test_a_partial_hole_leaves_the_rest_reported() -> None:
    feed = _src("bl/feed.txt", "192.0.2.0/24\n!192.0.2.200\n")
    (problem,) = _run([feed], [_wl("192.0.2.200/31")])
    assert "!192.0.2.201" in (problem.fix or "")


def test_ipv6_and_expired_entries() -> None:
    bl = _src("bl/a.yaml", "entries:\n  - ip: 2001:db8::/32\n  - ip: 198.51.100.0/24\n    expires: 2026-01-01\n")
    problems = sort_problems(_run([bl], [_wl("2001:db8:100::25", "198.51.100.25")]))
    # The expired blocklist entry is no longer published, so it covers nothing; it is only a warning.
    assert _codes(problems) == [("covers-protected", "bl/a.yaml:2:5"), ("expired", "bl/a.yaml:3:5")]


def test_only_zones_with_protect_are_checked() -> None:
    plain = ZoneConfig("bl2.example.test", "ip", "block", ("bl/*",), parse_code("127.0.0.2"), "{reason}")
    config = Config((plain, WL))
    sources = {plain.name: [_src("bl/a.txt", "192.0.2.0/24\n")], WL.name: [_wl("192.0.2.200")]}
    assert covers_protected(plain, config, sources, as_of=AS_OF) == []


def test_protect_scales_to_a_big_bulk_list() -> None:
    rng = random.Random(5)
    addrs = {a for a in (rng.randrange(0x01000000, 0xDF000000) for _ in range(200_000)) if a >> 24 != 127}
    protected = sorted(rng.sample(sorted(addrs), 3))
    feed = _src("bl/feed.txt", "".join(f"{format_v4(a)}\n" for a in addrs))
    problems = covers_protected(BL, CONFIG, {BL.name: [feed], WL.name: [_wl(*map(format_v4, protected))]}, as_of=AS_OF)
    assert sorted(p.message.split(" ")[0] for p in problems) == [format_v4(a) for a in protected]
