"""What each explicit YAML tag is refused as, and that the README's Security table says so (item 10)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from tests.test_publish import run_cli

from conftest import LISTS, ROOT

#: value -> (the code it is refused with, how the README's Security table names it)
CASES = {
    "!!binary aGVsbG8=": ("wrong-type", "`!!binary`"),
    "!!timestamp 2026-11-01": ("wrong-type", "`!!timestamp`"),
    "!!set {a: null}": ("wrong-type", "`!!set`"),
    "!!omap [a: 1]": ("wrong-type", "`!!omap`"),
    "!!pairs [a: 1]": ("wrong-type", "`!!pairs`"),
    "!!python/object/apply:os.system [echo hi]": ("wrong-type", "`!!python/object/apply:...` on `[...]`"),
    "!!python/name:os.system x": ("yaml-syntax", "`!!python/...`"),
    "!foo x": ("yaml-syntax", "`!foo`"),
}


@pytest.mark.parametrize("value", sorted(CASES))
def test_an_explicit_tag_is_refused_with_its_code(tmp_path: Path, value: str) -> None:
    code = CASES[value][0]
    lists = tmp_path / "lists"
    shutil.copytree(LISTS, lists)
    (lists / "bl" / "tagged.yaml").write_text(f"entries:\n  - ip: 192.0.2.99\n    reason: {value}\n")
    status, _, err = run_cli("--lists", str(lists), "validate")
    assert status == 1
    assert re.search(rf"bl/tagged\.yaml:3:13: .* \[{code}\]$", err, re.M), err


def test_the_readme_names_the_same_codes() -> None:
    rows = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| YAML |")]
    for code, shown in CASES.values():
        (row,) = [r for r in rows if shown in r]
        assert row.rstrip().endswith(f"| `{code}` |"), row
