"""Email zones compiled: the merge rules, the test point, the hash table, snapshot and exports.

Sources are built as the list reader builds them (email_fixtures): domain rows named
`<hash label>[.<suffix>]`. What a user sees: the answers `publisher lookup` gives by hash
name, the snapshot the server loads, the BIND and rbldnsd files.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
from array import array
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import require_tool
from email_fixtures import (
    EBL,
    EBL_SETTINGS,
    HBL,
    HBL_SETTINGS,
    LISTED,
    NOW,
    OTHER,
    UNLISTED,
    email_source,
    hbl_zone,
    name,
)
from publisher import codes
from publisher.addresses import format_v4, parse_code
from publisher.compile.compiler import compile_zone
from publisher.compile.hashes import HashTable
from publisher.compile.lookup import Query, zone_answer
from publisher.compile.render import iter_records, render_bind, render_rbldnsd
from publisher.compile.snapshot import dump_snapshot, load_snapshot
from publisher.compile.zone import CompiledZone
from publisher.emails import EmailSettings
from publisher.errors import SnapshotError, ValidationFailed
from publisher.model import SourceData, Value

C2, C3, C4 = parse_code("127.0.2.2"), parse_code("127.0.2.3"), parse_code("127.0.2.4")


def answer(zone: CompiledZone, address_or_name: str) -> list[tuple[str, str]]:
    """What `publisher lookup` says for an address (hashed here, as the CLI will) or a name."""
    rel = name(address_or_name, zone_settings(zone)) if "@" in address_or_name else address_or_name
    return [(format_v4(c), t) for c, t in zone_answer(zone, Query(0, domain=rel))]


def zone_settings(zone: CompiledZone) -> EmailSettings:
    return EBL_SETTINGS if zone.name == EBL.name else HBL_SETTINGS


def test_a_listed_address_answers_by_its_hash_name_and_the_test_point_by_test_suffix() -> None:
    zone = hbl_zone()
    assert answer(zone, LISTED) == [("127.0.2.2", "listed: drop box")]
    assert answer(zone, "DROP.box@fraud.EXAMPLE") == [("127.0.2.2", "listed: drop box")]  # same once normalised
    assert answer(zone, OTHER) == [("127.0.2.3", "listed: phishing sender")]
    assert answer(zone, UNLISTED) == []
    assert answer(zone, "test._email") == [("127.0.0.2", "listed: RFC 5782 test point")]
    assert answer(zone, "test") == answer(zone, "invalid._email") == answer(zone, "_email") == []
    assert zone.domain_is_ent("_email") and not zone.domain_is_ent("test")
    assert isinstance(zone.dom_exact, HashTable) and not zone.dom_wild


def test_no_suffix_and_two_level_suffix() -> None:
    zone = compile_zone(EBL, [email_source("ebl/a.txt", [(LISTED, Value(C2, "x"))], EBL_SETTINGS)], as_of=NOW)
    label = name(LISTED, EBL_SETTINGS)
    assert len(label) == 52 and "." not in label
    assert zone.lookup_domain(label) >= 0 and zone.lookup_domain("test") >= 0
    assert zone.lookup_domain("invalid") == -1 and zone.dom_ents == frozenset()
    two = EmailSettings(suffix="_e.hash")
    deep = replace(HBL, email=two)
    zone = compile_zone(deep, [email_source("a.txt", [(LISTED, Value(C2, "x"))], two)], as_of=NOW)
    assert zone.dom_ents == {"_e.hash", "hash"}
    assert zone.lookup_domain(name(LISTED, two)) >= 0
    assert zone.lookup_domain("test._e.hash") >= 0


def test_merge_rules_per_file_and_across_files() -> None:
    past = NOW.replace(year=2025)
    first = email_source(
        "hbl/a.txt",
        [
            (LISTED, Value(C2, "first")),
            (LISTED, Value(C3, "second entry of the name: the first wins")),
            (OTHER, Value(C2, "expired", expires=past)),
            (OTHER, Value(C4, "live after the expired one")),
            ("held@example.net", Value(C2, "held")),
        ],
    )
    second = email_source(
        "hbl/b.txt",
        [
            (LISTED, Value(C3, "other feed")),
            ("held@example.net", Value(0, exclude=True)),  # holes only this file
            (UNLISTED, Value(C2, "only here")),
        ],
    )
    zone = compile_zone(HBL, [first, second], as_of=NOW)
    assert answer(zone, LISTED) == [("127.0.2.2", "listed: first"), ("127.0.2.3", "listed: other feed")]
    assert answer(zone, OTHER) == [("127.0.2.4", "listed: live after the expired one")]
    assert answer(zone, "held@example.net") == [("127.0.2.2", "listed: held")]
    assert answer(zone, UNLISTED) == [("127.0.2.2", "listed: only here")]


def test_an_exclusion_in_the_only_file_and_the_zones_excludes_files_unlist() -> None:
    zone_cfg = replace(HBL, excludes=("hbl/excl/*.txt",))
    src = email_source("hbl/a.txt", [(LISTED, Value(C2, "x")), (OTHER, Value(C2, "y")), (UNLISTED, Value(C2, "z"))])
    src.add_domain(name(UNLISTED), False, src.add_value(Value(0, exclude=True)), 4)  # later: the first wins
    own = email_source("hbl/b.txt", [(OTHER, Value(0, exclude=True))])
    excl = email_source("hbl/excl/delist.txt", [(LISTED, Value(0, exclude=True))])
    zone = compile_zone(zone_cfg, [src, own, excl], as_of=NOW)
    assert answer(zone, LISTED) == []  # the zone's excludes file holes every file
    assert answer(zone, OTHER) == [("127.0.2.2", "listed: y")]  # an exclusion holes its own file only
    assert answer(zone, UNLISTED) == [("127.0.2.2", "listed: z")]
    hole_only = compile_zone(HBL, [email_source("hbl/a.txt", [(LISTED, Value(0, exclude=True))])], as_of=NOW)
    assert answer(hole_only, LISTED) == [] and len(hole_only.dom_exact) == 1  # the test point alone


def test_a_name_that_is_no_hash_label_is_refused_located() -> None:
    src = email_source("hbl/a.txt", [(LISTED, Value(C2, "x"))])
    src.add_domain("not-a-hash._email", False, 0, 2)
    with pytest.raises(ValidationFailed) as info:
        compile_zone(HBL, [src], as_of=NOW)
    (problem,) = info.value.problems
    assert (problem.location.path, problem.location.line, problem.code) == ("hbl/a.txt", 2, codes.BAD_HASH)
    upper = email_source("hbl/a.txt", [])
    upper.add_domain(name(LISTED).upper().replace("_EMAIL", "_email"), False, upper.add_value(Value(C2)), 7)
    with pytest.raises(ValidationFailed) as info:
        compile_zone(HBL, [upper], as_of=NOW)
    assert "is not a sha1 hash name of this email zone" in info.value.problems[0].message


def _big_source(n: int, path: str = "hbl/big.txt", seed: str = "") -> SourceData:
    src = SourceData(path)
    src.add_value(Value(C2, "bulk"))
    src.dom_name = [hashlib.sha1(f"user{i}{seed}@example.com".encode()).hexdigest() + "._email" for i in range(n)]
    src.dom_wild = bytearray(n)
    src.dom_value = array("i", bytes(4 * n))
    src.dom_line = array("I", range(1, n + 1))
    return src


def test_a_big_table_costs_about_24_bytes_per_sha1_and_finds_every_name() -> None:
    src = _big_source(100_000)
    zone = compile_zone(HBL, [src], as_of=NOW)
    table = zone.dom_exact
    assert isinstance(table, HashTable)
    assert table.nbytes / 100_000 <= 24
    assert all(zone.lookup_domain(n) >= 0 for n in src.dom_name[::97])
    assert zone.lookup_domain(hashlib.sha1(b"nobody@example.com").hexdigest() + "._email") == -1
    names = list(table)
    assert names[0] == "test._email" and names[1:] == sorted(src.dom_name)  # the documented order
    assert [n for n, _ in table.items()] == names and list(table.values()) == [table[n] for n in names[:3]] + [
        table[n] for n in names[3:]
    ]


def test_same_input_same_snapshot_bytes_and_a_round_trip() -> None:
    a, b = _big_source(2000), _big_source(2000)
    b.dom_name.reverse()  # another row order, the same entries
    za, zb = compile_zone(HBL, [a], as_of=NOW), compile_zone(HBL, [b], as_of=NOW)
    data = dump_snapshot(za)
    assert dump_snapshot(zb) == data
    loaded = load_snapshot(data)
    assert loaded.dom_exact == za.dom_exact and loaded.dom_ents == za.dom_ents
    assert dump_snapshot(loaded) == data
    assert all(loaded.lookup_domain(n) == za.lookup_domain(n) for n in a.dom_name[::50] + ["test._email"])
    sha256 = compile_zone(EBL, [email_source("ebl/a.txt", [(LISTED, Value(C2))], EBL_SETTINGS)], as_of=NOW)
    again = load_snapshot(dump_snapshot(sha256))
    assert again.lookup_domain(name(LISTED, EBL_SETTINGS)) == sha256.lookup_domain(name(LISTED, EBL_SETTINGS)) >= 0


def test_a_damaged_email_snapshot_is_refused() -> None:
    zone = hbl_zone()
    data = dump_snapshot(zone)
    damaged = bytearray(data)
    damaged[-5] ^= 0x40  # inside the table
    with pytest.raises(SnapshotError, match="CRC-32"):
        load_snapshot(bytes(damaged))
    table = zone.dom_exact
    assert isinstance(table, HashTable)
    past = HashTable(table.algorithm, table.suffix, table.heads, table.tails, array("I", [9] * len(table.heads)))
    with pytest.raises(SnapshotError, match="points at answer 9"):
        load_snapshot(dump_snapshot(replace(zone, dom_exact=past)))


def test_bind_export_named_checkzone_reads_the_same_records(tmp_path: Path) -> None:
    zone = hbl_zone()
    out = io.StringIO()
    render_bind(zone, out)
    path = tmp_path / "hbl.example.test.zone"
    path.write_text(out.getvalue())
    run = subprocess.run(
        [require_tool("named-checkzone"), "-i", "none", "-D", "-o", "-", zone.name, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = {" ".join(line.split()) for line in run.stdout.splitlines()}
    listed = f"{name(LISTED)}.{zone.name}."
    assert f"{listed} 900 IN A 127.0.2.2" in lines
    assert f'{listed} 900 IN TXT "listed: drop box"' in lines
    assert f"test._email.{zone.name}. 900 IN A 127.0.0.2" in lines
    assert "fraud.example" not in out.getvalue().lower()  # no plain address anywhere
    assert len([r for r in iter_records(zone) if r.rtype == "A"]) == 3  # AXFR: the same records


def test_rbldnsd_export_is_a_dnset_of_the_hash_names() -> None:
    out = io.StringIO()
    render_rbldnsd(hbl_zone(), out)
    text = out.getvalue()
    assert "$DATASET dnset:domains @\n" in text
    assert f"{name(LISTED)} :127.0.2.2:listed: drop box\n" in text
    assert "test._email :127.0.0.2:listed: RFC 5782 test point\n" in text
    assert "fraud.example" not in text.lower()
