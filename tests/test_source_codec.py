"""source_codec: a SourceData survives encoding whole, and damaged bytes are refused, never half-read."""

from __future__ import annotations

import dataclasses
import datetime as dt
import struct

import pytest

from publisher.errors import Location, Problem, Severity
from publisher.lists.bulk import read_bulk_source
from publisher.lists.curated import read_source
from publisher.lists.source_codec import CODEC_VERSION, MAGIC, CodecError, decode_source, encode_source
from publisher.model import SUBST, EntryMeta, SourceData, Value, ZoneConfig

ZONE = ZoneConfig("bl.example.test", "ip", "block", ("*.txt",), 0x7F000002, "{reason}")


def full_source() -> SourceData:
    """One of everything a SourceData can hold."""
    src = SourceData("bl/feed.yaml")
    src.add_value(Value(0x7F000002, "spam from " + SUBST + " ünï"))
    src.add_value(Value(0x7F000003, "", dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)))
    src.add_value(Value(0x7F000002, "", None, True))
    src.add_network(4, 0xC0000207, 0xC0000207, 0, 3)
    src.add_network(4, 0x0A000000, 0x0AFFFFFF, 1, 4)
    src.add_network(6, 0x20010DB8 << 96, (0x20010DB8 << 96) | ((1 << 96) - 1), 2, 5)
    src.add_network(6, (1 << 128) - 16, (1 << 128) - 1, 0, 6)
    src.add_domain("spam.example", False, 0, 7)
    src.add_domain("spam.example", True, 1, 8)
    src.entries[3] = EntryMeta(3, 5, "192.0.2.7", 0, added="2026-01-01", by="ann", ticket="T-1", allow_broad=True)
    src.entries[4] = EntryMeta(4, 7, "10.0.0.0/8", 1, owner="ops", contact="ops@example.test")
    src.problems.append(Problem(Location("bl/feed.yaml", 9, 2), "bad-address", "'x' is bad", "fix it"))
    src.problems.append(
        Problem(
            Location("bl/feed.yaml"),
            "duplicate",
            "listed twice",
            None,
            related=(("first at", Location("bl/other.yaml", 4, 1)),),
            severity=Severity.WARNING,
        )
    )
    return src


def test_every_field_round_trips() -> None:
    src = full_source()
    back, meta = decode_source(encode_source(src, {"marks": [[2, 1]], "n": 3}))
    assert back == src
    assert meta == {"marks": [[2, 1]], "n": 3}
    for field in dataclasses.fields(SourceData):
        assert getattr(back, field.name) == getattr(src, field.name), field.name
        assert type(getattr(back, field.name)) is type(getattr(src, field.name)), field.name


def test_parsed_files_round_trip() -> None:
    bulk = read_bulk_source(
        "feed.txt", b":3:listed $\n192.0.2.1\n10.0.0.0/8\n2001:db8::/32\nbad line here\n192.0.2.1\n", ZONE
    )
    assert bulk.problems and len(bulk) == 3  # 10.0.0.0/8 is too broad here
    assert decode_source(encode_source(bulk))[0] == bulk
    yaml_zone = dataclasses.replace(ZONE, sources=("*.yaml",))
    curated = read_source("a.yaml", b"entries:\n  - ip: 192.0.2.9\n    reason: r\n    expires: 2031-01-01\n", yaml_zone)
    assert curated.entries and decode_source(encode_source(curated))[0] == curated


def test_empty_source_round_trips() -> None:
    assert decode_source(encode_source(SourceData("x.txt")))[0] == SourceData("x.txt")


@pytest.mark.parametrize("where", [0, 5, 9, 20, 60, -1, -40])
def test_a_flipped_byte_is_refused(where: int) -> None:
    data = bytearray(encode_source(full_source()))
    data[where] ^= 0x20
    with pytest.raises(CodecError):
        decode_source(bytes(data))


@pytest.mark.parametrize("keep", [0, 10, 52, 100, -1])
def test_a_truncated_entry_is_refused(keep: int) -> None:
    data = encode_source(full_source())
    with pytest.raises(CodecError):
        decode_source(data[:keep])


def test_a_trailing_tail_is_refused() -> None:
    with pytest.raises(CodecError, match="checksum"):
        decode_source(encode_source(full_source()) + b"\0")


def test_another_version_is_refused() -> None:
    data = encode_source(full_source())
    head = struct.pack("<8sI", MAGIC, CODEC_VERSION + 1)
    with pytest.raises(CodecError, match="version"):
        decode_source(head + data[len(head) :])


def test_not_a_cache_entry_is_refused() -> None:
    with pytest.raises(CodecError, match="magic"):
        decode_source(b"\x80\x04\x95" + bytes(100))  # e.g. a pickle
