"""The tests read the sample lists from their own fixture, never from lists/.

lists/ is what a new user starts from and then replaces with real lists; `make test` must
check the code, not the operator's lists. tests/data/sample-lists/ is a copy of the shipped
lists/ (conftest.LISTS points there).
"""

from __future__ import annotations

import re

from tests.conftest import DATA, LISTS, ROOT

#: A test module may name the checkout's lists folder only to say something about the checkout itself.
ALLOWED = {
    # whether the publisher's own checkout holds its code: any path inside it would do
    "test_watch.py": 1,
}
_ROOT_LISTS = re.compile(r"""ROOT\s*/\s*["']lists["']|ROOT\s*/\s*["']lists/""")


def test_lists_points_at_the_fixture() -> None:
    assert LISTS == DATA / "sample-lists"
    assert (LISTS / "zones.yaml").is_file()


def test_no_test_module_reads_the_operators_lists_folder() -> None:
    found = {}
    for path in sorted((ROOT / "tests").rglob("*.py")):
        hits = len(_ROOT_LISTS.findall(path.read_text(encoding="utf-8")))
        if hits:
            found[path.name] = hits
    assert found == ALLOWED, "use tests.conftest.LISTS (the fixture) instead of the lists folder of the checkout"
