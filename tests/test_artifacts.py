"""zones/ generations: atomic swap, sha256 checks, serials, crash safety."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from publisher.addresses import parse_code
from publisher.compile.compiler import compile_zone
from publisher.errors import ArtifactError
from publisher.model import Value
from publisher.publish import artifacts
from publisher.publish.build import assign_serials
from publisher.publish.manifest import ZoneMeta, load_published, read_manifest
from test_compiler import IP_ZONE, NOW, source


def _zone(reason: str):  # type: ignore[no-untyped-def]
    src = source("bl/a.yaml", [("192.0.2.0/24", Value(parse_code("127.0.0.3"), reason))])
    zone = compile_zone(IP_ZONE, [src], as_of=NOW)
    out, _, _ = assign_serials({zone.name: zone}, None, NOW.date())
    return out[zone.name]


def test_serials_follow_rfc1982_and_the_date() -> None:
    today = dt.date(2026, 11, 27)
    assert artifacts.next_serial(None, today) == 2026112700
    assert artifacts.next_serial(2026112700, today) == 2026112701
    assert artifacts.next_serial(2026112801, today) == 2026112802
    assert artifacts.next_serial(0xFFFFFFFF, today) == 2026112700  # wrapped: date is greater
    assert artifacts.serial_gt(1, 0xFFFFFFF0)


def test_unchanged_content_keeps_its_serial(tmp_path: Path) -> None:
    zone = _zone("spam")
    artifacts.write_generation(tmp_path, {zone.name: zone}, {zone.name: ZoneMeta(artifacts.content_digest(zone))})
    prev = read_manifest(tmp_path)
    same, _, changed = assign_serials({zone.name: _zone("spam")}, prev, NOW.date())
    assert not changed and same[zone.name].info.serial == zone.info.serial
    other, _, changed = assign_serials({zone.name: _zone("other reason")}, prev, NOW.date())
    assert changed == {zone.name} and artifacts.serial_gt(other[zone.name].info.serial, zone.info.serial)


def test_generation_round_trip_and_stable_links(tmp_path: Path) -> None:
    zone = _zone("spam")
    artifacts.write_generation(tmp_path, {zone.name: zone}, {}, listen=())
    published = load_published(tmp_path)
    assert published.zones[zone.name].lookup_v4(0xC0000205) >= 0
    assert (tmp_path / "bl.example.test.zone").read_text().count("SOA") >= 1
    assert json.loads((tmp_path / "manifest.json").read_text())["zones"][zone.name]["serial"] == zone.info.serial


def test_corrupt_snapshot_is_refused(tmp_path: Path) -> None:
    zone = _zone("spam")
    gen = artifacts.write_generation(tmp_path, {zone.name: zone}, {})
    snap = gen / f"{zone.name}.snap"
    data = bytearray(snap.read_bytes())
    data[-1] ^= 0xFF
    snap.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256"):
        load_published(tmp_path)


@pytest.mark.parametrize("step", ["wrote bl.example.test", "wrote generation", "renamed generation"])
def test_a_crash_before_the_swap_leaves_the_last_good_publish(tmp_path: Path, step: str) -> None:
    first = _zone("spam")
    artifacts.write_generation(tmp_path, {first.name: first}, {})
    before = os.readlink(tmp_path / "current")

    def crash(at: str) -> None:
        if at == step:
            raise KeyboardInterrupt  # like a kill: not an ordinary error

    second = _zone("changed")
    with pytest.raises(KeyboardInterrupt):
        artifacts.write_generation(tmp_path, {second.name: second}, {}, step=crash)
    assert os.readlink(tmp_path / "current") == before
    loaded = load_published(tmp_path)
    zone = loaded.zones[first.name]
    assert zone.answers[zone.lookup_v4(0xC0000205)].txts[0].startswith("spam")
    assert not list(tmp_path.glob(".tmp-*"))


def test_unwritable_zones_dir_is_a_clear_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        target = Path("/proc/definitely/not/writable")
    else:
        target = tmp_path / "ro"
        target.mkdir()
        target.chmod(0o500)
    zone = _zone("spam")
    with pytest.raises(ArtifactError, match="cannot write"):
        artifacts.write_generation(target, {zone.name: zone}, {})
