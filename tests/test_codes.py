"""Problem codes (publisher/codes.py): declared once, unique, and the only codes in use."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

import test_bulk
import test_config
import test_sources
from publisher import codes
from publisher.addresses import AddressError, normalize_domain, parse_code, parse_network, parse_range
from publisher.lists.bulk_syntax import parse_ip_token, parse_value

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


@pytest.mark.parametrize(
    ("parse", "text", "code"),
    [
        (parse_network, "192.0.2.300", codes.BAD_ADDRESS),
        (parse_network, "192.0.2.0/33", codes.BAD_ADDRESS),
        (parse_network, "192.0.2.7/24", codes.HOST_BITS),
        (parse_network, "2001:db8::1/32", codes.HOST_BITS),
        (parse_range, "192.0.2.9-192.0.2.1", codes.BAD_ADDRESS),
        (parse_ip_token, "10.1.1/16", codes.HOST_BITS),
        (parse_ip_token, "10..1", codes.BAD_ADDRESS),
        (normalize_domain, "spam..example", codes.BAD_DOMAIN),
        (normalize_domain, "a*.example", codes.BAD_DOMAIN),
        (parse_code, "127.0.0.1", codes.BAD_CODE),
        (parse_code, "10.0.0.2", codes.BAD_CODE),
        (parse_code, "127.0.0.300", codes.BAD_CODE),
        (parse_value, ":300:text", codes.BAD_CODE),
        (parse_value, ":x:text", codes.BAD_CODE),
        (parse_value, "::text", codes.BAD_VALUE),
        (parse_value, ":2 3:text", codes.BAD_VALUE),
    ],
)
def test_address_errors_carry_their_code(parse: Callable[[str], object], text: str, code: str) -> None:
    with pytest.raises(AddressError) as caught:
        parse(text)
    assert caught.value.code == code, caught.value.message
