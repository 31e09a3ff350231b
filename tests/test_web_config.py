"""zones.yaml `web:` (what `publisher web` shows of a zone, which file requests edit): read into
the model, every problem located, carried by the manifest, and a web-only change published as a
new generation with the same serials and a plan note."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from tests.test_publish import FILES, NOW, ZONES_YAML, commit_file
from tests.test_vcs import init_repo

from publisher import codes
from publisher.addresses import parse_v4
from publisher.cli.report import plan_text
from publisher.lists.config import load_config
from publisher.lists.tree import DirTree
from publisher.model import DEFAULT_PUBLIC, ZonePage
from publisher.publish.manifest import load_published, read_manifest
from publisher.publish.release import publish

HEAD = """\
zones:
  - name: bl.example.test
    kind: ip
    role: block
    sources: [bl/*.yaml, bl/*.txt]
    excludes: [bl/local-excludes.txt, bl/delisted.yaml]
"""


def _config(tmp_path: Path, web: str) -> tuple[ZonePage | None, list[str]]:
    (tmp_path / "bl").mkdir(exist_ok=True)
    (tmp_path / "bl" / "a.txt").write_text("192.0.2.1\n")
    (tmp_path / "zones.yaml").write_text(HEAD + web)
    config, problems = load_config(DirTree(tmp_path))
    shown = [f"{p.location.line}: {p.message} [{p.code}]" for p in problems]
    return (config.zones[0].web if config else None), shown


def test_web_is_read_with_its_defaults(tmp_path: Path) -> None:
    page, problems = _config(tmp_path, "")
    assert page == ZonePage() and page.public == DEFAULT_PUBLIC and page.requests is None and not problems
    page, problems = _config(
        tmp_path,
        "    web:\n"
        "      public: [reason, expires, ticket]\n"
        "      policy: We list sources of spam.\n"
        "      codes: {127.0.0.2: spam source, 127.0.0.4: snowshoe range}\n"
        "      requests: bl/delisted.yaml\n",
    )
    assert not problems
    assert page is not None and page.public == ("reason", "expires", "ticket")
    assert page.codes == ((parse_v4("127.0.0.2"), "spam source"), (parse_v4("127.0.0.4"), "snowshoe range"))
    assert page.meaning(parse_v4("127.0.0.4")) == "snowshoe range" and page.meaning(parse_v4("127.0.0.9")) == ""
    assert page.requests == "bl/delisted.yaml" and page.policy == "We list sources of spam."


def test_web_problems_are_located(tmp_path: Path) -> None:
    for web, message in (
        ("      requests: bl/abuse.yaml\n", "requests file 'bl/abuse.yaml' is not one of the zone's excludes files"),
        ("      requests: ../requests.yaml\n", "requests file '../requests.yaml' must stay inside lists/"),
        ("      codes: {127.0.0.300: x}\n", "127.0.0.300"),
        ("      codes: {127.255.255.254: x}\n", "127.255.255.254"),
        ("      public: [reason, notes]\n", "notes"),
        ("      requests: bl/requests.txt\n", "bl/requests.txt"),
    ):
        page, problems = _config(tmp_path, "    web:\n" + web)
        assert page is None, web
        assert any(message in p and p.startswith("8:") for p in problems), (web, problems)
    _, problems = _config(tmp_path, "    web:\n      requests: wl/requests.yaml\n")
    assert any(f"[{codes.BAD_REQUESTS_FILE}]" in p for p in problems)
    allow = HEAD.replace("role: block", "role: allow")
    for web, message in (
        ("bl/delisted.yaml", "is one of the zone's excludes files: an allowlisting adds a listing"),
        ("wl/requests.yaml", "is not one of the zone's sources (bl/*.yaml, bl/*.txt)"),
    ):
        (tmp_path / "zones.yaml").write_text(allow + f"    web:\n      requests: {web}\n")
        config, found = load_config(DirTree(tmp_path))
        assert config is None and any(message in p.message and p.location.line == 8 for p in found), found
    (tmp_path / "zones.yaml").write_text(allow + "    web:\n      requests: bl/partners.yaml\n")
    config, found = load_config(DirTree(tmp_path))
    assert config is not None and config.zones[0].web.requests == "bl/partners.yaml" and not found


def test_defaults_web_is_merged_key_by_key(tmp_path: Path) -> None:
    (tmp_path / "bl").mkdir()
    (tmp_path / "bl" / "a.txt").write_text("192.0.2.1\n")
    (tmp_path / "zones.yaml").write_text(
        "defaults:\n  web: {public: [reason], policy: House rules.}\n"
        + HEAD
        + "    web: {requests: bl/delisted.yaml}\n"
    )
    config, problems = load_config(DirTree(tmp_path))
    assert config is not None and not problems
    assert config.zones[0].web == ZonePage(public=("reason",), policy="House rules.", requests="bl/delisted.yaml")


def test_a_web_only_change_is_a_new_generation_with_the_same_serials_and_a_note(tmp_path: Path) -> None:
    lists = init_repo(tmp_path / "repo", FILES)
    zones = tmp_path / "zones"
    publish(lists, zones, now=NOW)
    before = read_manifest(zones)
    assert before is not None and all(e.meta.web is None for e in before.zones.values())
    web = "    web:\n      public: [reason, added]\n      codes: {127.0.0.2: spam source}\n"
    text = ZONES_YAML.replace("    role: block\n", "    role: block\n" + web, 1)
    assert text != ZONES_YAML
    commit_file(lists, "zones.yaml", text, "the lookup page shows reason and added")
    second = publish(lists, zones, now=NOW + dt.timedelta(hours=1))
    after = read_manifest(zones)
    assert after is not None and second.written and after.generation != before.generation
    assert {n: e.serial for n, e in after.zones.items()} == {n: e.serial for n, e in before.zones.items()}
    notes = "\n".join(plan_text(second.prepared, 20))
    assert "note: web of bl.example.test: public fields now reason, added, code meanings changed" in notes
    data = json.loads((zones / "current" / "manifest.json").read_text())
    assert data["zones"]["bl.example.test"]["web"] == {
        "public": ["reason", "added"],
        "policy": "",
        "codes": {"127.0.0.2": "spam source"},
        "requests": None,
    }
    meta = load_published(zones).manifest.zones["bl.example.test"].meta
    assert meta.web == ZonePage(public=("reason", "added"), codes=((parse_v4("127.0.0.2"), "spam source"),))
