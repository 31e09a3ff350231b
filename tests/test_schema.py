"""YAML marks and JSON Schema checks: every problem lands on the right line and column."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from publisher.lists.schema import check, load_schema
from publisher.lists.yamlmarks import load_yaml

SCHEMAS = Path(__file__).resolve().parent.parent / "publisher" / "lists" / "schemas"


def _problems(text: str, schema: str = "list", path: str = "bl/x.yaml") -> list[tuple[str, str, str, str | None]]:
    loaded = load_yaml(path, text.encode())
    assert loaded.data is not None, loaded.problems
    return [
        (p.code, str(p.location), p.message, p.fix) for p in loaded.problems + check(loaded.data, loaded.marks, schema)
    ]


# --- yamlmarks ---------------------------------------------------------------------------


def test_marks_point_at_keys_and_values() -> None:
    loaded = load_yaml("f.yaml", b"entries:\n  - ip: 192.0.2.1\n    reason: spam\n")
    assert loaded.data == {"entries": [{"ip": "192.0.2.1", "reason": "spam"}]}
    assert str(loaded.marks.location(("entries", 0))) == "f.yaml:2:5"
    assert str(loaded.marks.location(("entries", 0, "reason"))) == "f.yaml:3:13"
    assert str(loaded.marks.location(("entries", 0, "reason"), key=True)) == "f.yaml:3:5"
    # A path that does not exist falls back to its nearest parent.
    assert str(loaded.marks.location(("entries", 0, "missing"))) == "f.yaml:2:5"


def test_yaml_12_scalars_keep_what_was_written() -> None:
    loaded = load_yaml("f.yaml", b"a: no\nb: 2001:0:0:1\nc: 2027-01-31\nd: 0x10\ne: true\nf: ~\n")
    assert loaded.data == {"a": "no", "b": "2001:0:0:1", "c": "2027-01-31", "d": 16, "e": True, "f": None}


def test_merge_keys_and_anchors() -> None:
    loaded = load_yaml("f.yaml", b"base: &b {by: alice}\nentry:\n  <<: *b\n  ip: 192.0.2.1\n")
    assert loaded.data["entry"] == {"by": "alice", "ip": "192.0.2.1"}


def test_recursive_alias_is_refused_not_a_crash() -> None:
    loaded = load_yaml("f.yaml", b"a: &a [*a]\n")
    assert loaded.data is None
    assert [p.code for p in loaded.problems] == ["yaml-syntax"]


def test_empty_document_has_no_data() -> None:
    loaded = load_yaml("f.yaml", b"# only a comment\n")
    assert loaded.data is None and loaded.problems == []


def test_two_documents_are_refused() -> None:
    loaded = load_yaml("f.yaml", b"a: 1\n---\nb: 2\n")
    (problem,) = loaded.problems
    assert problem.code == "yaml-syntax"
    assert str(problem.location) == "f.yaml:2:1"
    assert problem.fix and "---" in problem.fix


# --- schema messages ---------------------------------------------------------------------


def test_unknown_key_gets_did_you_mean() -> None:
    ((code, where, message, fix),) = _problems("entries:\n  - ip: 192.0.2.1\n    expire: 2027-01-31\n")
    assert (code, where) == ("unknown-key", "bl/x.yaml:3:5")
    assert "`expire`" in message and fix == "did you mean `expires`?"


def test_unknown_key_without_a_close_match_lists_the_allowed_keys() -> None:
    ((code, where, _, fix),) = _problems("entries:\n  - ip: 192.0.2.1\n    colour: red\n")
    assert (code, where) == ("unknown-key", "bl/x.yaml:3:5")
    assert fix is not None and "allowed here" in fix and "reason" in fix


def test_typo_in_subject_is_reported_once() -> None:
    problems = _problems("entries:\n  - ipp: 192.0.2.1\n")
    assert [(c, w) for c, w, _, _ in problems] == [("unknown-key", "bl/x.yaml:2:5")]
    assert problems[0][3] == "did you mean `ip`?"


def test_entry_with_both_ip_and_domain() -> None:
    ((code, where, message, _),) = _problems("entries:\n  - ip: 192.0.2.1\n    domain: spam.example\n")
    assert (code, where) == ("bad-value", "bl/x.yaml:2:5")
    assert "both `ip` and `domain`" in message


def test_wrong_type_names_expected_and_actual() -> None:
    ((code, where, message, fix),) = _problems("entries:\n  - ip: 192.0.2.1\n    exclude: yes\n")
    assert (code, where) == ("wrong-type", "bl/x.yaml:3:14")
    assert message == "`exclude` must be true or false, not a string ('yes')"
    assert fix == "write true or false"


def test_number_where_a_string_is_expected_suggests_quoting() -> None:
    ((code, where, message, fix),) = _problems("entries:\n  - ip: 192.0.2.1\n    reason: 42\n")
    assert (code, where) == ("wrong-type", "bl/x.yaml:3:13")
    assert "a whole number" in message and fix == 'quote the value: "42"'


def test_missing_required_key_in_zones() -> None:
    problems = _problems(
        "zones:\n  - name: bl.example.test\n    role: block\n    sources: [bl/*.yaml]\n", "zones", "zones.yaml"
    )
    assert [(c, w) for c, w, _, _ in problems] == [("missing-key", "zones.yaml:2:5")]
    assert "`kind`" in problems[0][2] and problems[0][3] and problems[0][3].startswith("add `kind:`")


def test_enum_value_gets_did_you_mean() -> None:
    text = "zones:\n  - name: bl.example.test\n    kind: ipv4\n    role: block\n    sources: [bl/*.yaml]\n"
    ((code, where, message, fix),) = _problems(text, "zones", "zones.yaml")
    assert (code, where) == ("bad-value", "zones.yaml:3:11")
    assert "'ipv4'" in message and fix == "did you mean `ip`?"


def test_range_and_empty_list() -> None:
    text = "zones:\n  - name: a.test\n    kind: ip\n    role: block\n    sources: []\n    ttl: -5\n"
    problems = _problems(text, "zones", "zones.yaml")
    assert [(c, w) for c, w, _, _ in problems] == [("bad-value", "zones.yaml:5:14"), ("bad-value", "zones.yaml:6:10")]
    assert "must not be empty" in problems[0][2]
    assert "at least 0" in problems[1][2]


def test_top_level_not_a_mapping() -> None:
    ((code, where, message, _),) = _problems("- ip: 192.0.2.1\n")
    assert (code, where) == ("not-a-mapping", "bl/x.yaml:1:1")
    assert "not a list" in message


@pytest.mark.parametrize("name", ["zones", "list"])
def test_shipped_schemas_are_valid_draft_2020_12(name: str) -> None:
    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    # The file editors point at is the same one the package loads.
    assert json.loads((SCHEMAS / f"{name}.schema.json").read_text()) == schema
