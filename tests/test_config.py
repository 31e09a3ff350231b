"""zones.yaml -> Config: defaults, the sample config, and one bad file per rule."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.conftest import LISTS

from publisher.addresses import parse_code
from publisher.lists.config import load_config, template_problem
from publisher.lists.tree import DirTree
from publisher.model import DEFAULT_LISTEN, Guards, NameServer, Secondary, Soa

BAD = Path(__file__).resolve().parent / "data" / "bad" / "zones"


def _load(tmp_path: Path, text: str) -> tuple[object, list[tuple[str, str, str, str | None]]]:
    (tmp_path / "zones.yaml").write_text(text)
    config, problems = load_config(DirTree(tmp_path))
    return config, [(p.code, str(p.location), p.message, p.fix) for p in problems]


def test_sample_config() -> None:
    config, problems = load_config(DirTree(LISTS))
    assert problems == []
    assert config is not None
    assert [(z.name, z.kind, z.role) for z in config.zones] == [
        ("bl.example.test", "ip", "block"),
        ("wl.example.test", "ip", "allow"),
        ("dbl.example.test", "domain", "block"),
        ("ebl.example.test", "email", "block"),
    ]
    bl = config.zone("bl.example.test")
    assert bl is not None
    assert bl.sources == ("bl/*.yaml", "bl/*.txt")
    assert bl.protect == ("wl.example.test",)
    assert bl.code == parse_code("127.0.0.2")
    assert bl.soa == Soa("ns1.example.test", "hostmaster.example.test", 3600, 600, 604800, 300)
    assert bl.ns == (NameServer("ns1.example.test"),)
    assert bl.secondaries == ()
    assert config.listen == ("127.0.0.1:5353", "[::1]:5353")
    wl = config.zone("wl.example.test")
    assert wl is not None and wl.code == parse_code("127.0.15.1")
    assert str(bl.location) == "zones.yaml:22:5"


def test_defaults_merge_and_zone_keys_win(tmp_path: Path) -> None:
    config, problems = _load(
        tmp_path,
        """
defaults:
  ttl: 600
  soa: {mname: ns1.example.test, rname: hostmaster.example.test, minimum: 60}
  max_prefix: {ipv4: 20}
  guards: {max_removed_share: 0.5}
zones:
  - name: BL.Example.Test.
    kind: ip
    role: block
    sources: [bl/*.yaml]
    ttl: 300
    soa: {mname: ns2.example.test, rname: hostmaster.example.test}
    max_prefix: {ipv6: 40}
    secondaries: [{address: 127.0.0.1, port: 5300, tsig_key: null}]
    allow_transfer: [127.0.0.0/8]
""",
    )
    assert problems == []
    (zone,) = config.zones  # type: ignore[attr-defined]
    assert zone.name == "bl.example.test"
    assert zone.ttl == 300
    assert zone.soa == Soa("ns2.example.test", "hostmaster.example.test", minimum=60)  # merged key by key
    assert (zone.max_prefix_v4, zone.max_prefix_v6) == (20, 40)
    assert zone.guards == Guards(max_removed_share=0.5)
    assert zone.secondaries == (Secondary("127.0.0.1", 5300, True, None),)
    assert zone.allow_transfer == ("127.0.0.0/8",)
    assert zone.code == parse_code("127.0.0.2")  # default code
    assert zone.ns == (NameServer("ns2.example.test"),)  # defaults to the SOA mname
    assert config.listen == DEFAULT_LISTEN  # type: ignore[attr-defined]


def test_missing_zones_yaml(tmp_path: Path) -> None:
    config, problems = load_config(DirTree(tmp_path))
    assert config is None
    assert [(p.code, str(p.location)) for p in problems] == [("missing-config", "zones.yaml")]


# (file, [(code, line:col, words)])
CASES = [
    ("unknown-key.yaml", [("unknown-key", "6:5", "`sorces`")]),
    ("bad-enum.yaml", [("bad-value", "4:11", "'ipv4'")]),
    ("missing-key.yaml", [("missing-key", "3:5", "`kind`"), ("wrong-type", "6:10", "whole number")]),
    ("bad-template.yaml", [("bad-template", "7:10", "unknown placeholder {domain}")]),
    ("bad-code.yaml", [("bad-code", "3:9", "127.0.0.1 is forbidden")]),
    ("duplicate-zone.yaml", [("duplicate-zone", "7:11", "defined twice")]),
    (
        "bad-protect.yaml",
        [
            ("bad-protect", "7:15", "wl.exmple.test, which is not a zone"),
            ("bad-protect", "7:31", "dbl.example.test, a domain blocklist"),
        ],
    ),
    (
        "bad-values.yaml",
        [
            ("bad-listen", "2:10", "'127.0.0.1' is not ADDRESS:PORT"),
            ("bad-listen", "2:23", "'::1:5353'"),
            ("bad-name", "4:11", "cannot be a wildcard"),
            ("bad-glob", "7:15", "must stay inside lists/"),
            ("host-bits", "8:22", "host bits"),
            ("bad-address", "9:29", "ns2.example.test"),
        ],
    ),
]


@pytest.mark.parametrize(("name", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_zones_file(tmp_path: Path, name: str, expected: list[tuple[str, str, str]]) -> None:
    shutil.copy(BAD / name, tmp_path / "zones.yaml")
    config, problems = load_config(DirTree(tmp_path))
    assert config is None  # never a half-understood configuration
    got = sorted((p.location.line or 0, p.location.col or 0, p.code, p.message, p.fix) for p in problems)
    assert [(c, f"{line}:{col}") for line, col, c, _, _ in got] == [(c, w) for c, w, _ in expected]
    for (_, _, _, message, fix), (_, _, words) in zip(got, expected):
        assert words in message
        assert fix


def test_duplicate_zone_related(tmp_path: Path) -> None:
    shutil.copy(BAD / "duplicate-zone.yaml", tmp_path / "zones.yaml")
    _, problems = load_config(DirTree(tmp_path))
    (problem,) = problems
    # 'BL.example.test.' is the same zone as 'bl.example.test': case and the final dot do not count.
    assert [(label, str(loc)) for label, loc in problem.related] == [("first at", "zones.yaml:3:5")]


@pytest.mark.parametrize(
    ("txt", "kind", "ok"),
    [
        ("Listed by {zone}: {reason} ({ip} -> {code})", "ip", True),
        ("{domain} listed", "domain", True),
        ("{ip} listed", "domain", False),
        ("{reasn}", "ip", False),
        ("open { brace", "ip", False),
        ("stray } brace", "ip", False),
        ("no placeholders at all", "ip", True),
    ],
)
def test_template_placeholders(txt: str, kind: str, ok: bool) -> None:
    assert (template_problem(txt, kind) is None) is ok


def test_template_did_you_mean() -> None:
    why = template_problem("{reasn}", "ip")
    assert why is not None and "did you mean {reason}?" in why
