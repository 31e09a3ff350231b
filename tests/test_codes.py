"""Problem codes (publisher/codes.py): declared once, unique, and the only codes in use."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import test_bulk
import test_config
import test_sources
from publisher import codes

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "publisher"
EXPECTED = ROOT / "tests" / "data" / "corpus" / "EXPECTED.json"

DECLARED = {name: value for name, value in vars(codes).items() if name.isupper()}


def test_constants_are_unique_kebab_case_strings() -> None:
    assert DECLARED
    for name, value in DECLARED.items():
        assert isinstance(value, str) and re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", value), name
        assert name == value.upper().replace("-", "_"), f"{name} should be named after its value {value!r}"
    values = list(DECLARED.values())
    assert len(values) == len(set(values)), "two constants share a code"


def test_every_constant_has_a_comment() -> None:
    lines = (PACKAGE / "codes.py").read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"[A-Z0-9_]+ = ", line):
            assert lines[i - 1].startswith("#: "), f"{line.split()[0]} needs a `#:` comment saying what it means"


def _expected_codes() -> set[str]:
    corpus = json.loads(EXPECTED.read_text())
    out = {case["code"] for name, case in corpus.items() if not name.startswith("_")}
    for case in test_sources.CASES + test_bulk.CASES:
        out.update(code for code, _, _ in case[2])
    for case in test_config.CASES:
        out.update(code for code, _, _ in case[1])
    return out


def test_every_code_the_bad_input_tests_expect_is_declared() -> None:
    expected = _expected_codes()
    assert len(expected) > 20  # the tables were read
    assert expected <= set(DECLARED.values()), sorted(expected - set(DECLARED.values()))


#: Calls whose argument at this position is a problem code or a guard-rail rule.
_CODE_ARGUMENT = {"Problem": 1, "Violation": 1, "problem": 1, "note": 1, "error": 1}


def _literal_codes(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _literal_codes(node.body) + _literal_codes(node.orelse)
    return []


def test_no_code_is_written_as_a_string_literal() -> None:
    found: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            args = [kw.value for kw in node.keywords if kw.arg in ("code", "rule")]
            if name in _CODE_ARGUMENT and len(node.args) > _CODE_ARGUMENT[name]:
                args.append(node.args[_CODE_ARGUMENT[name]])
            for arg in args:
                found += [f"{path.relative_to(ROOT)}:{node.lineno}: {v!r}" for v in _literal_codes(arg)]
    assert not found, "use the constants of publisher/codes.py:\n" + "\n".join(found)
