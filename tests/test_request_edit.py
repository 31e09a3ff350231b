"""lists/edit.py: entries appended and removed the way a person would, every other byte kept."""

from __future__ import annotations

import dataclasses

import pytest
from tests.conftest import LISTS

from publisher import codes
from publisher.lists.edit import EditError, append_entry, entry_problems, new_file, one_line, scalar
from publisher.lists.yamlmarks import load_yaml
from publisher.model import ZoneConfig

EXCLUDE = [
    ("ip", "198.51.100.7"),
    ("exclude", True),
    ("reason", "delisting request 2026-11-29-0001: fixed"),
    ("added", "2026-11-29"),
    ("by", "web-request"),
    ("ticket", "2026-11-29-0001"),
]
BLOCK = ZoneConfig("bl.example.test", "ip", "block", ("bl/*.yaml",), 0x7F000002, "Listed: {reason}")
ALLOW = ZoneConfig("wl.example.test", "ip", "allow", ("wl/*.yaml",), 0x7F000F01, "Allowed: {reason}")

ENTRY_TEXT = (
    "  - ip: 198.51.100.7\n"
    "    exclude: true\n"
    "    reason: 'delisting request 2026-11-29-0001: fixed'\n"
    "    added: 2026-11-29\n"
    "    by: web-request\n"
    "    ticket: 2026-11-29-0001\n"
)


def entries(data: bytes) -> list[dict[str, object]]:
    doc = load_yaml("x.yaml", data).data
    assert isinstance(doc, dict)
    return list(doc.get("entries") or [])


def test_append_to_the_sample_keeps_every_byte_and_the_blank_line_style() -> None:
    old = (LISTS / "bl" / "abuse.yaml").read_bytes()
    new, text = append_entry("bl/abuse.yaml", old, EXCLUDE)
    assert new == old + b"\n" + ENTRY_TEXT.encode()
    assert text == ENTRY_TEXT
    assert entries(new)[-1] == dict(EXCLUDE)


def test_a_new_file_has_the_schema_line_a_header_and_the_entry() -> None:
    new, _ = append_entry("bl/requests.yaml", None, EXCLUDE)
    lines = new.decode().splitlines()
    assert lines[0] == "# yaml-language-server: $schema=../../publisher/lists/schemas/list.schema.json"
    assert lines[1].startswith("# Requests filed through `publisher web`")
    assert new.decode().endswith("entries:\n" + ENTRY_TEXT)
    assert entries(new) == [dict(EXCLUDE)]
    assert entries(new_file("bl/requests.yaml")) == []


def test_entries_not_last_goes_at_the_end_of_the_sequence_not_the_file() -> None:
    old = (
        b"# top\nentries:\n  - ip: 192.0.2.1  # one\n    # about two\n  - ip: 192.0.2.2\n"
        b"\n# the defaults\ndefaults:\n  by: alice\n"
    )
    new, _ = append_entry("bl/a.yaml", old, EXCLUDE)
    head = b"# top\nentries:\n  - ip: 192.0.2.1  # one\n    # about two\n  - ip: 192.0.2.2\n"
    assert new == head + ENTRY_TEXT.encode() + b"\n# the defaults\ndefaults:\n  by: alice\n"
    doc = load_yaml("a.yaml", new).data
    assert doc["defaults"] == {"by": "alice"} and len(doc["entries"]) == 3


def test_flow_style_sequence_gets_a_flow_entry() -> None:
    old = b"entries: [{ip: 192.0.2.1}, {ip: 192.0.2.2}]  # c\n"
    new, text = append_entry("a.yaml", old, EXCLUDE)
    assert new.startswith(b"entries: [{ip: 192.0.2.1}, {ip: 192.0.2.2}, {ip: 198.51.100.7, exclude: true")
    assert new.endswith(b"}]  # c\n") and text.startswith("{ip: 198.51.100.7")
    assert entries(new)[-1] == dict(EXCLUDE)


@pytest.mark.parametrize(
    "empty", [b"entries: []  # none yet\n", b"entries:\n", b"entries: ~\n", b"defaults: {by: x}\n"]
)
def test_empty_or_missing_entries(empty: bytes) -> None:
    new, _ = append_entry("a.yaml", empty, EXCLUDE)
    assert entries(new) == [dict(EXCLUDE)]
    assert b"[]" not in new and b"~" not in new
    if empty.startswith(b"entries: []"):
        assert new == b"entries:  # none yet\n" + ENTRY_TEXT.encode()


def test_crlf_file_without_final_newline() -> None:
    old = b"entries:\r\n  - ip: 192.0.2.1\r\n    reason: x\r\n\r\n  - ip: 192.0.2.2\r\n    reason: y"
    new, _ = append_entry("a.yaml", old, EXCLUDE)
    assert new.startswith(old + b"\r\n\r\n  - ip: 198.51.100.7\r\n")
    assert b"\n" not in new.replace(b"\r\n", b"")  # no bare LF slipped in
    assert entries(new)[-1] == dict(EXCLUDE)


def test_no_final_newline_and_a_bom() -> None:
    old = b"\xef\xbb\xbfentries:\n- ip: 192.0.2.1"
    new, _ = append_entry("a.yaml", old, EXCLUDE)
    assert new.startswith(old + b"\n- ip: 198.51.100.7\n  exclude: true\n")
    assert entries(new)[-1] == dict(EXCLUDE)


HOSTILE = [
    'it\'s "fixed": really # honest',
    "yes",
    "no",
    "2026-11-29",
    "- a list?",
    "[x, y]",
    "{a: b}",
    "*alias &anchor !tag %directive @at `tick`",
    "ünïcödé ✓ 😀 \u202e",
    "  leading and trailing  ",
    "$(rm -rf /); `id` | tee <script>alert(1)</script> **bold**",
    "null",
    "0x1F",
    "1e3",
    "\\n not a newline",
]


@pytest.mark.parametrize("reason", HOSTILE)
def test_values_read_back_as_written(reason: str) -> None:
    fields = [("ip", "192.0.2.9"), ("owner", reason), ("contact", "a@b.example"), ("reason", reason)]
    new, _ = append_entry("wl/requests.yaml", None, fields)
    assert entries(new) == [dict(fields)]
    assert scalar(reason).count("\n") == 0


def test_line_breaks_are_refused_in_values_and_folded_by_one_line() -> None:
    with pytest.raises(EditError, match="one line"):
        scalar("a\nreason: injected")
    assert one_line(" a \r\n b\u2028c\n\n") == "a b c"


def test_a_file_that_is_not_a_list_is_not_edited() -> None:
    with pytest.raises(EditError, match="not a list"):
        append_entry("a.yaml", b"entries: {ip: 192.0.2.1}\n", EXCLUDE)
    with pytest.raises(EditError, match="cannot edit a.yaml"):
        append_entry("a.yaml", b"entries: [\n", EXCLUDE)


def test_entry_problems_are_the_lists_own() -> None:
    good, _ = append_entry("bl/requests.yaml", None, EXCLUDE)
    assert entry_problems("bl/requests.yaml", good, BLOCK) == []
    point, _ = append_entry("bl/requests.yaml", None, [("ip", "127.0.0.2"), ("exclude", True)])
    assert [p.code for p in entry_problems("bl/requests.yaml", point, BLOCK)] == [codes.DELISTS_TEST_POINT]
    wide = [("ip", "10.0.0.0/8"), ("owner", "Org"), ("reason", "r")]
    new, _ = append_entry("wl/requests.yaml", None, wide)
    assert [p.code for p in entry_problems("wl/requests.yaml", new, ALLOW)] == [codes.BROAD_PREFIX]
    host_bits, _ = append_entry("wl/requests.yaml", None, [("ip", "192.0.2.0/0"), ("owner", "Org")])
    assert [p.code for p in entry_problems("wl/requests.yaml", host_bits, ALLOW)] == [codes.HOST_BITS]
    ownerless, _ = append_entry("wl/requests.yaml", None, [("ip", "192.0.2.1")])
    assert [p.code for p in entry_problems("wl/requests.yaml", ownerless, ALLOW)] == [codes.MISSING_OWNER]
    twice, _ = append_entry("bl/requests.yaml", good, EXCLUDE)
    assert [p.code for p in entry_problems("bl/requests.yaml", twice, BLOCK)] == [codes.DUPLICATE]
    narrow = dataclasses.replace(ALLOW, max_prefix_v4=24)
    new, _ = append_entry("wl/requests.yaml", None, [("ip", "192.0.2.0/23"), ("owner", "Org")])
    assert [p.code for p in entry_problems("wl/requests.yaml", new, narrow)] == [codes.BROAD_PREFIX]
