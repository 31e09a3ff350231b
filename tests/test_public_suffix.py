"""Broad domain entries (security review item 3): wildcards on public suffixes, single labels.

A domain-feed line `.com` or `*.co.uk` listed every sender of the suffix and passed the guard
rails as one listing. Now such a wildcard (and a single-label name) is a located error unless
a curated entry says `allow_broad: true` with a reason, and the growth guard weighs it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from tests.test_publish import FILES, NOW, commit_file
from tests.test_vcs import commit_all, init_repo, write

from publisher import codes
from publisher.errors import GuardRailError, Problem, ValidationFailed
from publisher.lists.breadth import SUFFIX_WEIGHT, is_suffix_wildcard
from publisher.lists.bulk import read_bulk_source
from publisher.lists.curated import read_yaml_source
from publisher.model import SourceData, ZoneConfig
from publisher.publish.manifest import current_generation
from publisher.publish.release import publish

ZONE = ZoneConfig("dbl.example.test", "domain", "block", ("dbl/*",), 0x7F000002, "{reason}")


def bulk(text: str) -> SourceData:
    return read_bulk_source("dbl/feed.txt", text.encode(), ZONE)


def curated(text: str) -> SourceData:
    return read_yaml_source("dbl/curated.yaml", text.encode(), ZONE)


def errors(source: SourceData) -> list[Problem]:
    return [p for p in source.problems if p.is_error]


def listed(source: SourceData) -> list[tuple[str, bool]]:
    return [(n, bool(w)) for n, w in zip(source.dom_name, source.dom_wild)]


@pytest.mark.parametrize(
    ("name", "broad"),
    [
        ("com", True),
        ("uk", True),
        ("co.uk", True),
        ("github.io", True),  # the list's private section: every customer's site
        ("blogspot.com", True),
        ("amazonaws.com", True),  # above s3.amazonaws.com and other suffixes
        ("foo.ck", True),  # `*.ck`
        ("unknowntld", True),  # the list's `*` rule
        ("www.ck", False),  # `!www.ck`
        ("example.co.uk", False),
        ("spam.example.com", False),
        ("xn--fa-hia.de", False),
    ],
)
def test_public_suffixes_come_from_the_public_suffix_list(name: str, broad: bool) -> None:
    assert is_suffix_wildcard(name) is broad


@pytest.mark.parametrize(
    ("line", "said"),
    [
        (".com", "'.com' is a wildcard on com, a top-level domain"),
        ("*.co.uk", "'*.co.uk' is a wildcard on co.uk, a public suffix"),
        ("*.github.io", "'*.github.io' is a wildcard on github.io, a public suffix"),
        (".uk", "'.uk' is a wildcard on uk, a top-level domain"),
        ("*.amazonaws.com", "above a public suffix"),
        ("localhost", "'localhost' is a single-label name"),
        ("com", "'com' is a single-label name"),
        ("*.COM.", "'*.COM.' is a wildcard on com"),
    ],
)
def test_a_feed_line_on_a_public_suffix_is_a_located_error(line: str, said: str) -> None:
    source = bulk(f"good.example.com\n{line}\n")
    [problem] = errors(source)
    assert (problem.code, problem.location.line, problem.location.col) == (codes.BROAD_DOMAIN, 2, 1)
    assert said in problem.message
    assert problem.fix and "curated YAML file with `allow_broad: true` and a reason" in problem.fix
    assert listed(source) == [("good.example.com", False)]  # nothing of the broad line is stored


def test_a_wildcard_under_a_registrable_domain_and_exclusions_stay_fine() -> None:
    source = bulk("*.example.co.uk\n.spam.example.com\n*.www.ck\ntest\n!.com\n")
    assert errors(source) == []
    assert ("example.co.uk", True) in listed(source) and ("spam.example.com", True) in listed(source)


def test_curated_allow_broad_needs_a_reason() -> None:
    source = curated(
        "entries:\n"
        "  - domain: '*.co.uk'\n"
        "  - domain: '.com'\n"
        "    allow_broad: true\n"
        "  - domain: '*.github.io'\n"
        "    allow_broad: true\n"
        "    reason: a phishing wave from every github.io site, on purpose\n"
        "  - domain: localhost\n"
        "    allow_broad: true\n"
        "    reason: our own test name\n"
    )
    found = sorted((p.location.line, p.code) for p in errors(source))
    assert found == [(2, codes.BROAD_DOMAIN), (4, codes.MISSING_REASON)]
    broad = next(p for p in errors(source) if p.code == codes.BROAD_DOMAIN)
    assert broad.fix and "set `allow_broad: true` on the entry and say why in `reason`" in broad.fix
    assert listed(source) == [("github.io", True), ("localhost", False)]


def test_reason_from_defaults_counts() -> None:
    source = curated("defaults:\n  allow_broad: true\n  reason: on purpose\nentries:\n  - domain: '.com'\n")
    assert errors(source) == [] and listed(source) == [("com", False), ("com", True)]


# --- the growth guard, through a real publish from git ------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path / "repo", FILES)


def test_an_allowed_public_suffix_wildcard_still_trips_the_growth_guard(repo: Path, tmp_path: Path) -> None:
    zones = tmp_path / "zones"
    publish(repo, zones, now=NOW)
    # an ordinary wildcard is one name: no guard rail
    domains = "entries:\n  - domain: spam.example\n    reason: spam domain\n"
    commit_file(repo, "dbl/domains.yaml", domains + "  - domain: '*.phish.example.com'\n    reason: kit\n", "kit")
    assert publish(repo, zones, now=NOW + dt.timedelta(hours=1)).written
    wide = "  - domain: '.com'\n    allow_broad: true\n    reason: every .com sender, on purpose\n"
    commit_file(repo, "dbl/domains.yaml", domains + wide, "all of .com")
    with pytest.raises(GuardRailError) as refused:
        publish(repo, zones, now=NOW + dt.timedelta(hours=2))
    text = str(refused.value)
    assert "growth:" in text and f"to {2 + SUFFIX_WEIGHT} names, wildcards weighed by breadth" in text, text
    forced = publish(repo, zones, now=NOW + dt.timedelta(hours=2), force=True)
    assert forced.written and codes.GROWTH in {v.rule for v in forced.forced}


def test_a_feed_with_dot_com_publishes_nothing(repo: Path, tmp_path: Path) -> None:
    zones = tmp_path / "zones"
    publish(repo, zones, now=NOW)
    generation = current_generation(zones)
    write(repo, {"zones.yaml": FILES["zones.yaml"].replace('["dbl/*.yaml"]', '["dbl/*.yaml", "dbl/*.txt"]')})
    write(repo, {"dbl/feed.txt": "phish.example.net\n.com\n"})
    commit_all(repo, "a feed with .com")
    with pytest.raises(ValidationFailed) as refused:
        publish(repo, zones, now=NOW + dt.timedelta(hours=1), force=True)
    [problem] = refused.value.problems
    assert problem.format().startswith("dbl/feed.txt:2:1: '.com' is a wildcard on com"), problem.format()
    assert current_generation(zones) == generation  # nothing published, --force or not
