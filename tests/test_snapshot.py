"""Snapshots: round trips, byte order, speed, and refusing damaged files."""

from __future__ import annotations

import json
import struct
import sys
import time
import zlib
from array import array
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.compile.snapshot import MAGIC, dump_snapshot, load_snapshot, read_snapshot
from publisher.compile.zone import Answer, CompiledZone
from publisher.errors import SnapshotError
from publisher.model import SUBST
from test_render import golden_domain_zone, golden_ip_zone, make_zone


def assert_same(a: CompiledZone, b: CompiledZone) -> None:
    assert a == b  # every field: info with serial, answers, arrays, dicts, ents
    for addr in (0, 0x7F000001, 0x7F000002, 0xC0000207, 0xCB007105, 0xFFFFFFFF):
        assert a.lookup_v4(addr) == b.lookup_v4(addr)
    for addr in (0x20010DB8_0001_0000_0000_0000_0000_0005, 0x20010DB8_0003 << 80, 0xFFFF_7F00_0002):
        assert a.lookup_v6(addr) == b.lookup_v6(addr)
    for name in ("test", "invalid", "spam.example", "a.spam.example", "ok.wild.example", "b.no.wild.example"):
        assert a.lookup_domain(name) == b.lookup_domain(name)


@pytest.mark.parametrize("build", [golden_ip_zone, golden_domain_zone])
def test_round_trip_gives_the_same_zone_and_the_same_bytes(build: object) -> None:
    zone = build()  # type: ignore[operator]
    data = dump_snapshot(zone)
    loaded = load_snapshot(data)
    assert_same(zone, loaded)
    assert loaded.info.serial == 2026112701
    assert dump_snapshot(loaded) == data


def test_bytes_do_not_depend_on_dict_order() -> None:
    zone = golden_domain_zone()
    reordered = make_zone(
        "domain",
        answers=[(a.codes, a.txts) for a in zone.answers],
        exact=dict(reversed(list(zone.dom_exact.items()))),
        wild=dict(reversed(list(zone.dom_wild.items()))),
    )
    assert dump_snapshot(reordered) == dump_snapshot(zone)


def test_read_snapshot_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "bl.example.test.snap"
    path.write_bytes(dump_snapshot(golden_ip_zone()))
    assert_same(read_snapshot(path), golden_ip_zone())
    with pytest.raises(SnapshotError, match="cannot read snapshot"):
        read_snapshot(tmp_path / "missing.snap")


def _swap_byte_order(data: bytes) -> bytes:
    """The same snapshot as a machine of the other byte order would have written it."""
    (header_len,) = struct.unpack_from("<I", data, 12)
    header = json.loads(data[20 : 20 + header_len])
    body_at = 20 + header_len + (-(20 + header_len) % 8)
    body = bytearray(data[body_at:])
    offset = 0
    for _, typecode, itemsize, count in header["sections"]:
        nbytes = count * itemsize
        if typecode != "blob":
            arr = array(typecode)
            arr.frombytes(body[offset : offset + nbytes])
            arr.byteswap()
            body[offset : offset + nbytes] = arr.tobytes()
        offset += nbytes + (-nbytes % 8)
    header["byteorder"] = "big" if sys.byteorder == "little" else "little"
    header["body_crc32"] = zlib.crc32(body)
    raw = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    fixed = MAGIC + struct.pack("<HHII", 1, 0, len(raw), zlib.crc32(raw))
    return fixed + raw + b"\x00" * (-(len(fixed) + len(raw)) % 8) + bytes(body)


def test_a_snapshot_of_the_other_byte_order_loads() -> None:
    zone = golden_ip_zone()
    assert_same(load_snapshot(_swap_byte_order(dump_snapshot(zone))), zone)


# --- random zones ------------------------------------------------------------------------

_names = st.from_regex(r"[a-z0-9]{1,5}(\.[a-z0-9-]{1,5}){0,3}", fullmatch=True)


@st.composite
def zones(draw: st.DrawFn) -> CompiledZone:
    n_answers = draw(st.integers(1, 4))
    answers = [
        ([draw(st.integers(0x7F000002, 0x7F0000FF))], [draw(st.text(max_size=30)) + SUBST]) for _ in range(n_answers)
    ]
    value = st.integers(0, n_answers - 1)

    def intervals(bits: int) -> list[tuple[int, int, int]]:
        points = sorted(set(draw(st.lists(st.integers(0, (1 << bits) - 1), max_size=40))))
        return [(s, e, draw(value)) for s, e in zip(points[::2], points[1::2])]

    kind = draw(st.sampled_from(["ip", "domain"]))
    if kind == "ip":
        return make_zone(answers=answers, v4=intervals(32), v6=intervals(128), serial=draw(st.integers(0, 2**32 - 1)))
    hole_or_value = st.integers(-1, n_answers - 1)
    return make_zone(
        "domain",
        answers=answers,
        exact=draw(st.dictionaries(_names, hole_or_value, max_size=20)),
        wild=draw(st.dictionaries(_names, hole_or_value, max_size=10)),
    )


@settings(max_examples=100, deadline=None)
@given(zones())
def test_random_zones_round_trip(zone: CompiledZone) -> None:
    data = dump_snapshot(zone)
    loaded = load_snapshot(data)
    assert loaded == zone
    for s, e, v in zone.v4_intervals():
        assert loaded.lookup_v4(s) == loaded.lookup_v4(e) == v
    for _, e, v in zone.v6_intervals():
        assert loaded.lookup_v6(e) == v
    assert dump_snapshot(loaded) == data


# --- damaged files -----------------------------------------------------------------------


def test_every_truncation_is_refused_with_a_snapshot_error() -> None:
    data = dump_snapshot(golden_ip_zone())
    for cut in range(len(data)):
        with pytest.raises(SnapshotError):
            load_snapshot(data[:cut])
    with pytest.raises(SnapshotError, match="truncated"):
        load_snapshot(data[:-1])
    with pytest.raises(SnapshotError, match="trailing bytes"):
        load_snapshot(data + b"\x00")


def test_flipped_bits_are_refused() -> None:
    data = dump_snapshot(golden_domain_zone())
    padding = {i for i in range(len(data)) if data[i] == 0}  # alignment bytes are not read
    for pos in range(8, len(data)):
        if pos in padding:
            continue
        damaged = bytearray(data)
        damaged[pos] ^= 0x20
        with pytest.raises(SnapshotError):
            load_snapshot(bytes(damaged))
    body_flip = bytearray(data)
    body_flip[-3] ^= 1
    with pytest.raises(SnapshotError, match="CRC-32"):
        load_snapshot(bytes(body_flip))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: b"NOTASNAP" + d[8:], "magic"),
        (lambda d: d[:8] + struct.pack("<H", 99) + d[10:], "version 99"),
        (lambda d: d[:20] + b"[" + d[21:], "header's CRC-32"),
        (lambda d: d[:12] + struct.pack("<I", 10**9) + d[16:], "truncated"),
        (lambda d: MAGIC + struct.pack("<HHII", 1, 0, 2, zlib.crc32(b"[]")) + b"[]" + bytes(2), "header is not valid"),
    ],
)
def test_damaged_headers_say_what_is_wrong(damage: object, message: str) -> None:
    data = dump_snapshot(golden_ip_zone())
    with pytest.raises(SnapshotError, match=message):
        load_snapshot(damage(data))  # type: ignore[operator]


def test_an_interval_pointing_past_the_answers_is_refused() -> None:
    zone = golden_ip_zone()
    broken = CompiledZone(
        zone.info, zone.answers[:1], v4_start=zone.v4_start, v4_end=zone.v4_end, v4_value=zone.v4_value
    )
    with pytest.raises(SnapshotError, match="points at answer"):
        load_snapshot(dump_snapshot(broken))


def test_answers_with_mismatched_txts_are_refused() -> None:
    zone = golden_ip_zone()
    broken = CompiledZone(zone.info, (Answer((0x7F000002,), ()),))
    with pytest.raises(SnapshotError, match="1 codes but 0 TXT"):
        load_snapshot(dump_snapshot(broken))


# --- speed -----------------------------------------------------------------------------


def test_a_million_intervals_load_well_under_half_a_second() -> None:
    starts = array("I", range(0x0B000000, 0x0B000000 + 4_000_000, 4))
    ends = array("I", [s + 1 for s in starts])
    zone = CompiledZone(
        golden_ip_zone().info,
        (Answer((0x7F000002,), (f"listed {SUBST}",)),),
        v4_start=starts,
        v4_end=ends,
        v4_value=array("I", bytes(4 * len(starts))),
    )
    data = dump_snapshot(zone)
    started = time.perf_counter()
    loaded = load_snapshot(data)
    elapsed = time.perf_counter() - started
    assert loaded.v4_end == ends and loaded.lookup_v4(0x0B000001) == 0 and loaded.lookup_v4(0x0B000002) == -1
    assert elapsed < 0.25, f"loading 1M intervals took {elapsed:.3f}s"
