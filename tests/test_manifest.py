"""manifest.json and history.jsonl as types: what the writers write reads back to the same
bytes, and a malformed manifest is refused with its path and the field at fault."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import ROOT
from tests.test_publish import ABUSE, FILES, NOW, commit_file
from tests.test_vcs import init_repo

from publisher.errors import ArtifactError
from publisher.lists.tree import DirTree
from publisher.model import Secondary
from publisher.publish import history
from publisher.publish.build import compile_tree, write_build
from publisher.publish.history import HistoryRecord, ZoneRecord
from publisher.publish.manifest import (
    CURRENT,
    MANIFEST,
    Counts,
    Manifest,
    Origin,
    Source,
    ZoneEntry,
    ZoneFiles,
    ZoneMeta,
    load_published,
    read_manifest,
)
from publisher.publish.release import publish


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, Path]:
    """A work-tree compile, then a publish from git, a second one and a rollback: (lists, zones)."""
    lists = init_repo(tmp_path / "repo", FILES)
    zones = tmp_path / "zones"
    write_build(zones, compile_tree(DirTree(lists), as_of=NOW), source=Source("worktree", path=str(lists)), now=NOW)
    publish(lists, zones, now=NOW + dt.timedelta(hours=1))
    commit_file(lists, "bl/abuse.yaml", ABUSE + "  - ip: 203.0.113.99\n    reason: new\n", "more")
    publish(lists, zones, now=NOW + dt.timedelta(hours=2))
    publish(lists, zones, rev="HEAD~1", now=NOW + dt.timedelta(hours=3), action="rollback")
    return lists, zones


def test_every_generation_written_reads_back_to_the_same_bytes(published: tuple[Path, Path]) -> None:
    _, zones = published
    generations = sorted(zones.glob("gen-*"))
    assert len(generations) == 4
    for gen in generations:
        text = (gen / MANIFEST).read_text()
        assert Manifest.loads(text, gen / MANIFEST).dumps() == text
    manifest = read_manifest(zones)
    assert manifest is not None and manifest.action == "rollback"
    assert manifest.source is not None and manifest.source.kind == "git" and manifest.source.head is not None
    bl = manifest.zones["bl.example.test"]
    assert bl.files == ZoneFiles.of("bl.example.test") and set(bl.sha256) == set(bl.files.names())
    assert bl.meta.counts is not None and bl.meta.counts.listings == 2
    assert bl.meta.origin is not None and bl.meta.origin.commit == manifest.source.commit
    assert load_published(zones).manifest == manifest


def test_the_history_reads_back_to_the_same_lines(published: tuple[Path, Path]) -> None:
    _, zones = published
    lines = (zones / history.HISTORY).read_text().splitlines()
    records = history.read(zones)
    assert [r.action for r in records] == ["publish", "publish", "rollback"]
    assert [json.dumps(r.to_json(), sort_keys=True) for r in records] == lines
    assert history.last(zones) == records[-1]
    moved = records[1].zones["bl.example.test"]
    assert moved.changed and moved.listings_added == 1 and moved.measures["ipv4"].added == 1


def test_a_recovered_record_round_trips(published: tuple[Path, Path]) -> None:
    _, zones = published
    manifest = read_manifest(zones)
    assert manifest is not None
    rec = history.recovered_record(manifest)
    assert rec.recovered and rec.generation == manifest.generation and rec.forced == ()
    assert rec.zones["bl.example.test"].listings_added is None and not rec.zones["bl.example.test"].measures
    history.append(zones, rec)
    assert history.last(zones) == rec
    line = (zones / history.HISTORY).read_text().splitlines()[-1]
    assert '"recovered": true' in line and "listings_added" not in line


def test_a_hand_made_manifest_round_trips_with_optional_fields_left_out(tmp_path: Path) -> None:
    entry = ZoneEntry(
        serial=2026112700,
        kind="ip",
        role="block",
        files=ZoneFiles.of("bl.example.test"),
        sha256={"bl.example.test.snap": "ab" * 32},
        meta=ZoneMeta(
            counts=Counts(1, 1, 1, 2**80, 0),  # no expiring_7d: an older manifest
            secondaries=(Secondary("192.0.2.53", tsig_key="k1"),),
            origin=Origin("c0ffee", None, None, None, None),
        ),
    )
    manifest = Manifest("gen-x", {"bl.example.test": entry}, source=Source("bench"))
    data = json.loads(manifest.dumps())
    assert set(data) == {"format", "generation", "source", "zones"}
    zone = data["zones"]["bl.example.test"]
    assert zone["next_expiry"] is None and "expiring_7d" not in zone["counts"] and "allow_transfer" not in zone
    assert zone["counts"]["v6_addresses"] == str(2**80) and zone["author"] is None
    assert Manifest.from_json(data, tmp_path) == manifest


def _valid() -> dict[str, object]:
    return json.loads(
        Manifest(
            "gen-x",
            {"bl.example.test": ZoneEntry(1, "ip", "block", ZoneFiles.of("bl.example.test"), {}, ZoneMeta())},
        ).dumps()
    )


def _zone(data: dict[str, object]) -> dict[str, object]:
    return data["zones"]["bl.example.test"]  # type: ignore[index,no-any-return]


_DELETE = object()


def _set(path: str, value: object):  # type: ignore[no-untyped-def]
    """A change to a valid manifest: set the field at `path` (keys joined by /), or delete it."""

    def change(data: dict[str, object]) -> object:
        *parents, last = path.split("/")
        node = data
        for key in parents:
            node = node[key]  # type: ignore[assignment]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value
        return data

    return change


BAD = [
    ("not an object", lambda d: [d], "the manifest: expected an object"),
    ("format", _set("format", 2), "manifest format 2, expected 1"),
    ("generation missing", _set("generation", _DELETE), "`generation` is missing"),
    ("zones a list", _set("zones", []), "zones: expected an object"),
    (
        "serial a string",
        _set("zones/bl.example.test/serial", "1"),
        "zones['bl.example.test'].serial: expected an integer",
    ),
    (
        "serial a bool",
        _set("zones/bl.example.test/serial", True),
        "zones['bl.example.test'].serial: expected an integer",
    ),
    ("kind", _set("zones/bl.example.test/kind", "mx"), "zones['bl.example.test'].kind: expected one of ip, domain"),
    ("files missing", _set("zones/bl.example.test/files", _DELETE), "zones['bl.example.test']: `files` is missing"),
    (
        "file name",
        _set("zones/bl.example.test/files/bind", 7),
        "zones['bl.example.test'].files.bind: expected a string",
    ),
    (
        "sha256",
        _set("zones/bl.example.test/sha256", {"x": 1}),
        "zones['bl.example.test'].sha256['x']: expected a string",
    ),
    (
        "counts",
        _set("zones/bl.example.test/counts", {"listings": 1, "intervals": 1, "v4_addresses": 1, "domains": 0}),
        "zones['bl.example.test'].counts: `v6_addresses` is missing",
    ),
    (
        "secondaries",
        _set("zones/bl.example.test/secondaries", [{"address": "192.0.2.1", "port": "53"}]),
        "zones['bl.example.test'].secondaries[0].port: expected an integer",
    ),
    ("allow_transfer", _set("zones/bl.example.test/allow_transfer", "10/8"), "allow_transfer: expected a list"),
    ("source", _set("source", {"commit": "abc"}), "source: `kind` is missing"),
    ("listen", _set("listen", [53]), "listen[0]: expected a string"),
]


@pytest.mark.parametrize(("name", "change", "message"), BAD, ids=[b[0] for b in BAD])
def test_a_malformed_manifest_is_refused_with_its_path_and_field(
    tmp_path: Path, name: str, change: object, message: str
) -> None:
    gen = tmp_path / "gen-x"
    gen.mkdir()
    (tmp_path / CURRENT).symlink_to("gen-x")
    (gen / MANIFEST).write_text(json.dumps(change(_valid())))  # type: ignore[operator]
    with pytest.raises(ArtifactError) as info:
        read_manifest(tmp_path)
    assert str(info.value).startswith(f"{gen / MANIFEST}: "), info.value
    assert message in str(info.value), info.value
    with pytest.raises(ArtifactError):
        load_published(tmp_path)


def test_unreadable_json_is_refused_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"^/x/manifest.json: unreadable manifest: "):
        Manifest.loads("{", "/x/manifest.json")


def test_a_history_line_that_is_no_record_is_skipped(tmp_path: Path) -> None:
    good = HistoryRecord(
        published_at="2026-11-27T10:00:00+00:00",
        action="publish",
        commit="abc",
        author="A",
        email="a@example.test",
        committed_at=None,
        summary="s",
        head="abc",
        generation="gen-x",
        forced=(),
        dropped=(),
        zones={"bl.example.test": ZoneRecord(serial=1, previous_serial=None, changed=True, listings=3)},
    )
    history.append(tmp_path, good)
    with open(tmp_path / history.HISTORY, "a") as fh:
        fh.write('not json\n[1, 2]\n{"generation": 7}\n{"generation": "g", "zones": {"z": {"serial": "1"}}}\n')
    assert history.read(tmp_path) == [good]
    assert history.last(tmp_path) == good


def test_the_server_reads_zones_without_the_publishing_stack() -> None:
    code = (
        "import sys, publisher.server, publisher.publish.manifest; "
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('git', 'jsonschema', 'yaml')); "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
