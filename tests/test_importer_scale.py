"""The importer on feeds of tens of thousands of lines, and its exact check (compare.py).

The importer was rewritten for speed (parallel int lists sorted and painted in C-speed
passes, a comparison of interval sets instead of address by address). These tests pin
that it writes the same files and reaches the same verdict as the code before it, on
generated feeds that take each path (one value for all; several values, exclusions,
repeats and nesting; names and wildcards), and that a difference between what rbldnsd
answers and what the compiled zone answers is still found and located.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from collections.abc import Callable
from typing import Any

import pytest

from publisher.addresses import format_v4
from publisher.compile.compiler import compile_zone
from publisher.compile.zone import CompiledZone
from publisher.importer import migrate
from publisher.importer.answers import DatasetModel
from publisher.importer.compare import compare
from publisher.importer.migrate import ImportResult, import_rbldnsd
from publisher.importer.read import Notes, Specials, read_sections
from publisher.importer.write import OutputFile, convert
from publisher.lists.bulk import read_bulk_source
from publisher.model import Kind, ZoneConfig

ZONE = "bl.example.test"
AS_OF = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def v4_feed(n: int, seed: int, *, values: bool) -> str:
    """/32s, CIDRs of every size and ranges; with `values`: several codes, exclusions, repeats."""
    rng = random.Random(seed)
    lines = [":127.0.0.2:Listed: see https://bl.example.test/$"]
    for _ in range(n):
        r = rng.random()
        addr = rng.randrange(0x0B000000, 0x0B400000)  # dense enough for nesting and repeats
        if r < 0.8:
            line = format_v4(addr)
        elif r < 0.95:
            plen = rng.choice((31, 30, 28, 26, 24, 24, 22, 20, 16))
            line = f"{format_v4(addr >> (32 - plen) << (32 - plen))}/{plen}"
        else:
            line = f"{format_v4(addr)}-{format_v4(addr + rng.randrange(2, 3000))}"
        if values:
            v = rng.random()
            if v < 0.05:
                line = "!" + line
            elif v < 0.15:
                line += f" :{rng.choice((3, 4, 5))}:reason {rng.randrange(3)} $"
            elif v < 0.17:
                lines.append(f":{rng.choice((2, 6))}:block {rng.randrange(4)}")
        lines.append(line)
    return "\n".join(lines) + "\n"


def name_feed(n: int, seed: int) -> str:
    rng = random.Random(seed)
    lines = [":127.0.0.2:Listed: $"]
    labels = ["mail", "smtp", "x", "a1", "b"]
    for _ in range(n):
        name = f"{rng.choice(labels)}{rng.randrange(n // 4)}.{rng.choice(('example', 'test.example', 'b.example'))}"
        if rng.random() < 0.3:
            name = f"{rng.choice(labels)}.{name}"
        r = rng.random()
        prefix = "*." if r < 0.05 else "." if r < 0.1 else "!" if r < 0.13 else ""
        tail = f" :{rng.choice((3, 4))}:why {rng.randrange(2)}" if rng.random() < 0.1 and not prefix == "!" else ""
        lines.append(prefix + name + tail)
    return "\n".join(lines) + "\n"


CASES: dict[str, tuple[Callable[[], str], str]] = {
    "ip4set-one-value": (lambda: v4_feed(50_000, 1, values=False), "ip4set"),
    "ip4set-values": (lambda: v4_feed(50_000, 2, values=True), "ip4set"),
    "ip4trie-values": (lambda: v4_feed(50_000, 3, values=True), "ip4trie"),
    "dnset": (lambda: name_feed(50_000, 4), "dnset"),
}

#: What the importer before the rewrite (commit baef7cf) made of each case: the sha256 of
#: the files and zones.yaml snippets it wrote, the problem codes it reported and its
#: verdict (the number of errors). Problem lines are left out: of more than 20
#: same-code-two-texts clashes, the old code noted 20 in an order that changed from run
#: to run (set order); the new one notes the first 20 by address.
BEFORE = {
    "dnset": ("df20759d1a7a3320e93a7764", ["import-lost", "import-test-point", "import-wildcard-txt"], 2),
    "ip4set-one-value": ("cb54cc65306240ae856ef35c", ["import-test-point"], 0),
    "ip4set-values": ("7c4908c88cc48a9a37c9022c", ["import-lost", "import-test-point"], 19),
    "ip4trie-values": ("a370707a0837974dac02c505", ["import-skipped", "import-test-point"], 0),
}


def digest(result: ImportResult) -> tuple[str, list[str], int]:
    out = [(z.snippet, [(f.path, f.how, f.text) for f in z.files]) for z in result.zones]
    written = hashlib.sha256(json.dumps(out).encode()).hexdigest()[:24]
    return written, sorted({p.code for p in result.problems}), len(result.errors)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_large_import_writes_what_the_old_importer_wrote(case: str) -> None:
    make, dtype = CASES[case]
    result = import_rbldnsd(make(), zone=ZONE, out="bl/feed.txt", dataset=dtype, source="feed.rbl")
    assert digest(result) == BEFORE[case]


# --- a difference is found, counted and located ----------------------------------------


def model_of(text: str, dtype: str) -> DatasetModel:
    run = Notes("feed.rbl")
    specials = Specials()
    (section,) = read_sections(dtype, text.split("\n"), specials, run)
    return migrate._model(section, ZONE, "block", specials, run).model


def zone_of(text: str, kind: Kind = "ip") -> CompiledZone:
    cfg = ZoneConfig(ZONE, kind, "block", (), 0x7F000002, "{reason}", max_prefix_v4=0, max_prefix_v6=0)
    return compile_zone(cfg, [read_bulk_source("bl/feed.txt", text.encode(), cfg)], as_of=AS_OF)


BIG = "\n".join(format_v4(0x0C000000 + 2 * i) for i in range(20_000))  # 20k entries around the difference


@pytest.mark.parametrize(
    ("theirs", "ours", "shown"),
    [
        # same intervals, another answer at one of them
        (
            f"{BIG}\n192.0.2.7 :3:x\n",
            f"{BIG}\n192.0.2.7 :4:x\n",
            "192.0.2.7: rbldnsd 127.0.0.3 'x', import 127.0.0.4 'x'",
        ),
        # one address missing
        (f"{BIG}\n192.0.2.7\n", f"{BIG}\n", "192.0.2.7: rbldnsd 127.0.0.2 (no TXT), import NXDOMAIN"),
        # one more address
        (f"{BIG}\n", f"{BIG}\n192.0.2.7\n", "192.0.2.7: rbldnsd NXDOMAIN, import 127.0.0.2 (no TXT)"),
        # a hole punched into a range
        (f"{BIG}\n198.51.100.0/24\n", f"{BIG}\n198.51.100.0/24\n!198.51.100.9\n", "198.51.100.9: rbldnsd 127.0.0.2"),
    ],
)
def test_compare_finds_and_locates_an_address_difference(theirs: str, ours: str, shown: str) -> None:
    count, found = compare([model_of(theirs, "ip4set")], zone_of(ours))
    assert count == 1
    assert found[0].startswith(shown)


def test_compare_of_the_same_answers_finds_nothing() -> None:
    text = v4_feed(20_000, 5, values=False)  # one value: our reader answers as rbldnsd's ip4set
    assert compare([model_of(text, "ip4set")], zone_of(text)) == (0, [])


NAMES = "\n".join(f"n{i}.example" for i in range(20_000))


@pytest.mark.parametrize(
    ("theirs", "ours", "shown"),
    [
        (f"{NAMES}\nspam.example :3:x\n", f"{NAMES}\nspam.example :4:x\n", "spam.example: rbldnsd 127.0.0.3 'x'"),
        (f"{NAMES}\nspam.example\n", f"{NAMES}\n", "spam.example: rbldnsd 127.0.0.2 (no TXT), import NXDOMAIN"),
        (f"{NAMES}\n*.spam.example\n", f"{NAMES}\n.spam.example\n", "spam.example: rbldnsd NXDOMAIN"),
        (f"{NAMES}\n.spam.example\n!a.spam.example\n", f"{NAMES}\n.spam.example\n", "a.spam.example: rbldnsd NXDOMAIN"),
    ],
)
def test_compare_finds_and_locates_a_name_difference(theirs: str, ours: str, shown: str) -> None:
    count, found = compare([model_of(theirs, "dnset")], zone_of(ours, "domain"))
    assert count == 1
    assert found[0].startswith(shown)


def test_an_import_that_would_answer_otherwise_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """The last check of an import still catches a written file that loses an entry."""

    def lossy(*args: Any, **kwargs: Any) -> list[OutputFile]:
        files = convert(*args, **kwargs)
        first = files[0]
        return [OutputFile(first.path, first.text.replace("\n11.2.3.4\n", "\n"), first.how), *files[1:]]

    monkeypatch.setattr(migrate, "convert", lossy)
    text = v4_feed(20_000, 6, values=True) + "11.2.3.4 :9:x\n11.2.3.0/24\n"
    result = import_rbldnsd(text, zone=ZONE, out="bl/feed.txt", dataset="ip4set", source="feed.rbl")
    (differs,) = [p for p in result.errors if p.code == "import-differs"]
    assert "in 1 place(s)" in differs.message and "11.2.3.4: rbldnsd 127.0.0.9 'x'" in differs.message
