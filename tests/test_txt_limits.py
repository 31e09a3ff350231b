"""A TXT may not outgrow DNS (security review, item 2).

Every `$` of a bulk text, like `{ip}` / `{domain}` of the zone template, becomes the
queried address or name. Validation takes the longest one the zone can be asked
about and refuses a text whose TXT could then exceed MAX_TXT_BYTES (1024), wherever
the text is written: a bulk line, a curated reason, the zones.yaml template. The
refusal is located and leaves zones/ alone; a text exactly at the limit is published,
transferred whole by AXFR, and accepted by named-checkzone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from builders import source
from conftest import LISTS, require_tool
from publisher.addresses import parse_code
from publisher.cli import app as cli
from publisher.compile.compiler import compile_zone
from publisher.errors import ValidationFailed
from publisher.model import MAX_TXT_BYTES, SUBST, Value, ZoneConfig, longest_subject, longest_txt, render_txt
from publisher.publish.manifest import CURRENT, MANIFEST
from test_server import Served, dig, start_server

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
#: `Listed by bl.example.test: ` (the sample bl template without its reason), 27 bytes.
BL_HEAD = len("Listed by bl.example.test: ")
#: `$ is listed by dbl.example.test: ` without the `$`: 32 bytes.
DBL_HEAD = len(" is listed by dbl.example.test: ")
#: An IPv6 wildcard's network as the zone file and AXFR put it for `$`: the longest, 43 bytes.
V6_NET = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124"
#: The longest name dbl.example.test can be asked about, relative to the zone: 236 bytes.
DBL_SUBJECT = 252 - len("dbl.example.test")
#: 22 `$` in an ip zone and enough padding for a TXT of exactly MAX_TXT_BYTES.
BL_AT_LIMIT = "$ " * 22 + "x" * (MAX_TXT_BYTES - BL_HEAD - 22 * 44)
#: The template's {domain} and one `$`: two names of 236 bytes, padding to MAX_TXT_BYTES.
DBL_AT_LIMIT = "$" + "y" * (MAX_TXT_BYTES - DBL_HEAD - 2 * DBL_SUBJECT)


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def lists_with(tmp_path: Path, files: dict[str, str]) -> Path:
    """A copy of the sample lists with `files` written (or replaced) in it."""
    lists = tmp_path / "lists"
    shutil.copytree(LISTS, lists)
    for rel, text in files.items():
        (lists / rel).write_text(text, encoding="utf-8")
    return lists


def compile_refused(tmp_path: Path, files: dict[str, str]) -> str:
    """Compile over a published zones/: exit 1, zones/ untouched; the error output."""
    zones = tmp_path / "zones"
    code, _, err = run_cli("--lists", str(LISTS), "--zones", str(zones), "compile")
    assert code == 0, err
    before = (zones / CURRENT).readlink(), (zones / CURRENT / MANIFEST).read_bytes()
    code, out, err = run_cli("--lists", str(lists_with(tmp_path, files)), "--zones", str(zones), "compile")
    assert code == 1, out + err
    assert err.rstrip().endswith("nothing was published")
    assert ((zones / CURRENT).readlink(), (zones / CURRENT / MANIFEST).read_bytes()) == before
    return err


# --- refused, located, in every place a text is written ---------------------------------------


def test_the_hostile_bulk_line_in_an_ipv6_zone_is_refused_at_its_line(tmp_path: Path) -> None:
    err = compile_refused(tmp_path, {"bl/hostile.txt": ":127.0.0.2:" + "$ " * 2040 + "\n2001:db8::1\n"})
    assert re.search(
        r"lists/bl/hostile\.txt:1:1: this text can give a TXT of 89,786 bytes in bl\.example\.test "
        r"\(2,040 place\(s\) for the queried address, up to 43 bytes each\); the limit is 1024 bytes \[txt-too-long\]",
        err,
    ), err
    assert "fix: shorten the text" in err


def test_a_bulk_text_after_an_entry_is_located_at_the_text(tmp_path: Path) -> None:
    err = compile_refused(tmp_path, {"bl/hostile.txt": "192.0.2.99\n2001:db8::1 :3:" + "$-" * 30 + "\n"})
    assert re.search(r"lists/bl/hostile\.txt:2:13: this text can give a TXT of 1,347 bytes .*\[txt-too-long\]", err)


def test_a_curated_reason_too_long_for_the_template_is_refused_at_the_reason(tmp_path: Path) -> None:
    yaml = "entries:\n  - ip: 192.0.2.99\n    reason: " + "r" * (MAX_TXT_BYTES - BL_HEAD + 1) + "\n"
    err = compile_refused(tmp_path, {"bl/long.yaml": yaml})
    assert re.search(r"lists/bl/long\.yaml:3:13: this reason can give a TXT of 1,025 bytes .*\[txt-too-long\]", err)


def test_a_template_repeating_the_reason_cannot_multiply_a_curated_reason(tmp_path: Path) -> None:
    config = (LISTS / "zones.yaml").read_text().replace('"Listed by {zone}: {reason}"', '"' + "{reason}" * 128 + '"')
    yaml = "entries:\n  - ip: 192.0.2.99\n    reason: " + "r" * 1024 + "\n"
    err = compile_refused(tmp_path, {"zones.yaml": config, "bl/long.yaml": yaml})
    assert re.search(r"lists/bl/long\.yaml:3:13: this reason can give a TXT of 131,072 bytes", err), err


def test_a_zones_yaml_template_too_long_by_itself_is_refused_once_at_the_template(tmp_path: Path) -> None:
    config = (LISTS / "zones.yaml").read_text()
    config = config.replace('"{domain} is listed by {zone}: {reason}"', '"' + "{domain}" * 120 + '"')
    err = compile_refused(tmp_path, {"zones.yaml": config})
    line = next(i for i, text in enumerate(config.splitlines(), 1) if "{domain}{domain}" in text)
    assert re.search(
        rf"lists/zones\.yaml:{line}:10: the TXT template can give a TXT of 28,320 bytes in dbl\.example\.test "
        r"\(120 place\(s\) for the queried name, up to 236 bytes each\)",
        err,
    ), err
    assert err.count("[txt-too-long]") == 1  # not once more per entry of the zone


# --- exactly at the limit: published, served and transferred whole -----------------------------


def test_the_longest_subjects() -> None:
    assert longest_subject("ip", "bl.example.test") == len(V6_NET) == 43
    assert longest_subject("domain", "dbl.example.test") == DBL_SUBJECT == 236
    assert len(("a" * 61 + ".") * 3 + "a" * (DBL_SUBJECT - 3 * 62) + ".dbl.example.test") == 253


def long_name() -> str:
    """A name of 253 characters (the DNS maximum) under *.limit.example in dbl.example.test."""
    rel = "limit.example"
    head = DBL_SUBJECT - len(rel) - 1
    labels = [("q" * 63) for _ in range(head // 64)]
    rest = head - 64 * len(labels)
    labels.append("q" * rest)
    return ".".join([*labels, rel, "dbl.example.test"])


AT_LIMIT = {
    "bl/limit.txt": f":127.0.0.9:{BL_AT_LIMIT}\n{V6_NET}\nffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\n",
    "dbl/limit.txt": f":127.0.1.9:{DBL_AT_LIMIT}\n*.limit.example\n{long_name().removesuffix('.dbl.example.test')}\n",
}


@pytest.fixture(scope="module")
def at_limit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    require_tool("dig")
    tmp = tmp_path_factory.mktemp("limit")
    lists = lists_with(tmp, AT_LIMIT)
    code, _, err = run_cli("--lists", str(lists), "--zones", str(tmp / "zones"), "compile")
    assert code == 0, err
    served = start_server(tmp / "zones")
    yield served
    served.stop()


def test_one_byte_over_the_limit_is_refused(tmp_path: Path) -> None:
    err = compile_refused(tmp_path, {"bl/limit.txt": f":127.0.0.9:{BL_AT_LIMIT}x\n{V6_NET}\n"})
    assert "lists/bl/limit.txt:1:1: this text can give a TXT of 1,025 bytes" in err


def txt_bytes(rdata: str) -> bytes:
    """dig's presentation of TXT rdata -> the bytes of its strings joined."""
    return b"".join(
        re.sub(rb"\\(\d{3}|.)", lambda m: bytes([int(m[1])]) if m[1].isdigit() else m[1], s.encode())
        for s in re.findall(r'"((?:[^"\\]|\\.)*)"', rdata)
    )


def test_a_query_for_the_longest_name_gets_the_whole_text(at_limit: Served) -> None:
    name = long_name()
    answer = dig(at_limit.port, name, "TXT", "+tcp").answer
    (text,) = [txt_bytes(rdata) for _, _, rtype, rdata in answer if rtype == "TXT"]
    relative = name.removesuffix(".dbl.example.test").encode()
    assert text == relative + b" is listed by dbl.example.test: " + relative + b"y" * (len(DBL_AT_LIMIT) - 1)
    assert len(text) == MAX_TXT_BYTES


def axfr(served: Served, zone: str) -> str:
    dig_path = require_tool("dig")
    cmd = [dig_path, "-p", str(served.port), "@127.0.0.1", zone, "AXFR", "+nocmd", "+nostats", "+time=10", "+tries=1"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout


@pytest.mark.parametrize("zone", ["bl.example.test", "dbl.example.test"])
def test_texts_at_the_limit_transfer_whole_and_load_in_bind(at_limit: Served, zone: str) -> None:
    text = axfr(at_limit, zone)
    assert "Transfer failed" not in text and "communications error" not in text, text[-2000:]
    records = [line.split(None, 4) for line in text.splitlines() if line.strip() and not line.startswith(";")]
    assert records[0][3] == records[-1][3] == "SOA"
    longest = max(len(txt_bytes(r[4])) for r in records if r[3] == "TXT")
    assert longest == MAX_TXT_BYTES
    checkzone = require_tool("named-checkzone")
    run = subprocess.run(
        [checkzone, "-i", "local", "-k", "warn", zone, str(at_limit.zones_dir / f"{zone}.zone")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr


# --- the compiler's own guard, and the two readings of a template agree --------------------------


def test_compiling_a_hostile_text_without_validation_is_refused() -> None:
    zone = ZoneConfig("bl.example.test", "ip", "block", (), parse_code("127.0.0.2"), "{reason}")
    rows = [("2001:db8::1", Value(parse_code("127.0.0.2"), (SUBST + " ") * 2040))]
    with pytest.raises(ValidationFailed) as exc:
        compile_zone(zone, [source("bl/hostile.txt", rows)], as_of=NOW)
    (problem,) = exc.value.problems
    assert problem.code == "txt-too-long" and "89,760 bytes" in problem.message


_TEMPLATE_PARTS = st.sampled_from(["{ip}", "{domain}", "{reason}", "{code}", "{zone}", "{", "}", "{x}", "a", "é", "$"])


@given(st.lists(_TEMPLATE_PARTS, max_size=12).map("".join), st.text(max_size=20).map(lambda t: t + SUBST))
def test_longest_txt_is_the_filled_text_at_its_longest(template: str, reason: str) -> None:
    code, zone = parse_code("127.0.0.3"), "bl.example.test"
    text = render_txt(template, code=code, reason=reason, zone=zone)
    assert longest_txt(text, 43) == len(text.replace(SUBST, "x" * 43).encode())


# --- names: the longest subject holds only if every listed name fits under the zone -------------


@pytest.mark.parametrize(
    ("rel", "text"),
    [
        ("dbl/long.txt", "{name}\n"),
        ("dbl/long.txt", "*.{name}\n"),
        ("dbl/long.yaml", "entries:\n  - domain: {name}\n"),
    ],
)
def test_a_name_too_long_to_be_queried_in_the_zone_is_refused(tmp_path: Path, rel: str, text: str) -> None:
    name = long_name().removesuffix(".dbl.example.test")  # 236: the most dbl.example.test can take
    wild = text.startswith("*.")
    too_long = name if wild else "qq." + name[2:]  # 237 characters
    err = compile_refused(tmp_path, {rel: text.format(name=too_long)})
    size = len(too_long) + 2 * wild
    line = 2 if rel.endswith(".yaml") else 1
    assert re.search(
        rf"lists/{rel}:{line}:\d+: '.*' is {size} characters; under dbl\.example\.test a name may have at most 236 .*"
        r"\[bad-domain\]",
        err,
    ), err
