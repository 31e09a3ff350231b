"""bulk_patch: a patched parse is exactly the full parse of the new bytes, or None (parse in full)."""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.lists.bulk import MAX_LINE_PROBLEMS, read_bulk
from publisher.lists.bulk_patch import line_hunks, patch_bulk
from publisher.model import SourceData, ZoneConfig

IP_ZONE = ZoneConfig("bl.example.test", "ip", "block", ("*.txt",), 0x7F000002, "{reason}")
DOMAIN_ZONE = ZoneConfig("dbl.example.test", "domain", "block", ("*.txt",), 0x7F000002, "{reason}")

IP_LINES = [
    "192.0.2.1",
    "192.0.2.1",
    "192.0.2.2",
    "198.51.100.7",
    "203.0.113.0/24",
    "203.0.113.9",
    "10.1",
    "10.1.2.3-10.1.2.9",
    "127.0.0.1-255",
    "10/8",
    "127.0.0.2",
    "2001:db8::1",
    "2001:db8:1",
    "2001:db8::/32",
    "2001:db8::1/64",
    "  192.0.2.77   # trailing comment",
    "192.0.2.78 ; another",
    "not-an-address",
    "10.1.2.300",
    "192.0.2.0/23",
    "example.com",
    "",
    "# a comment",
    "; a comment",
    "\tindented 192.0.2.5",
    "192.0.2.9 \x01",
    "x" * 5000,
]
#: Lines that carry state to the lines below: a patch must give up on them (or get them right).
IP_STATE_LINES = [
    ":3:spam from $",
    ":127.0.0.4:",
    "$1 one",
    "$=base $= end",
    "#$SOA x",
    "$TTL 300",
    "!192.0.2.1",
    "!203.0.113.0/25",
    "192.0.2.50 :5:own text",
    "192.0.2.51 plain text",
    "0.0.0.0 ads.example",
    "61.174.51.0\t61.174.51.255\t24",
]

#: Edits draw from these: mostly lines a patch can take, some it must refuse.
IP_POOL = IP_LINES * 3 + IP_STATE_LINES

DOMAIN_LINES = [
    "spam.example",
    "spam.example",
    "*.spam.example",
    ".wide.example",
    "Mixed.Example",
    "sub.spam.example",
    "xn--bcher-kva.example",
    "192.0.2.1",
    "bad..name",
    "",
    "# comment",
    "ham.example # why",
    "com",
]
DOMAIN_STATE_LINES = [
    ":3:listed $",
    "$1 one",
    "!spam.example",
    "spam2.example :4:text",
    "127.0.0.1 localhost",
]
DOMAIN_POOL = DOMAIN_LINES * 3 + DOMAIN_STATE_LINES
#: Longer than the 64 bytes that decide UTF-16 or not: edits below it can be patched.
HEAD = "# a head line that no edit touches, longer than sixty-four bytes of text"


def _parse(data: bytes, zone: ZoneConfig) -> SourceData:
    return read_bulk("feed.txt", data, zone)[0]


def _check(old_text: str, new_text: str, zone: ZoneConfig) -> bool:
    old_data, new_data = old_text.encode(), new_text.encode()
    old, marks = read_bulk("feed.txt", old_data, zone)
    want, want_marks = read_bulk("feed.txt", new_data, zone)
    patched = patch_bulk(old, marks, old_data, new_data, zone)
    if patched is None:
        return False
    got = patched.source
    for field in dataclasses.fields(SourceData):
        assert getattr(got, field.name) == getattr(want, field.name), field.name
    assert patched.marks == want_marks
    # the rows said to go and come are exactly the multiset difference of the two parses
    old_rows, new_rows = list(old.rows()), list(want.rows())
    gone = [old_rows[k] for k in patched.removed]
    came = [new_rows[k] for k in patched.added]
    kept_old = [r for k, r in enumerate(old_rows) if k not in set(patched.removed)]
    kept_new = [r for k, r in enumerate(new_rows) if k not in set(patched.added)]
    assert [r[:6] for r in kept_old] == [r[:6] for r in kept_new]
    assert all(
        r.line in {h.old_start + 1 + i for h in line_hunks(old_data, new_data) or [] for i in range(len(h.old))}
        for r in gone
    )
    assert len(came) == len(patched.added)
    return True


edits = st.lists(
    st.tuples(st.sampled_from(["insert", "delete", "replace"]), st.integers(0, 10_000), st.integers(0, 10_000)),
    min_size=1,
    max_size=6,
)


def _edit(lines: list[str], pool: list[str], ops: list[tuple[str, int, int]]) -> list[str]:
    out = list(lines)
    for op, where, what in ops:
        at = 1 + where % len(out)  # the head line stays
        if op == "insert" or len(out) == 1:
            out.insert(at, pool[what % len(pool)])
        elif op == "delete":
            del out[1 + at % (len(out) - 1)]
        else:
            out[1 + at % (len(out) - 1)] = pool[what % len(pool)]
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.lists(st.integers(0, len(IP_POOL) - 1), min_size=0, max_size=40),
    ops=edits,
    newline=st.booleans(),
)
def test_patched_ip_parse_is_the_full_parse(base: list[int], ops: list[tuple[str, int, int]], newline: bool) -> None:
    lines = [HEAD] + [IP_POOL[i] for i in base]
    new = _edit(lines, IP_POOL, ops)
    end = "\n" if newline else ""
    _check("\n".join(lines) + end, "\n".join(new) + end, IP_ZONE)


@settings(max_examples=200, deadline=None)
@given(base=st.lists(st.integers(0, len(DOMAIN_POOL) - 1), min_size=0, max_size=30), ops=edits)
def test_patched_domain_parse_is_the_full_parse(base: list[int], ops: list[tuple[str, int, int]]) -> None:
    lines = [HEAD] + [DOMAIN_POOL[i] for i in base]
    _check("\n".join(lines) + "\n", "\n".join(_edit(lines, DOMAIN_POOL, ops)) + "\n", DOMAIN_ZONE)


def _feed(n: int) -> list[str]:
    return [
        "# feed",
        ":3:listed: $",
        *(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(n)),
        "192.0.2.0/24",
    ]


def test_one_appended_line_is_patched() -> None:
    lines = _feed(5000)
    assert _check("\n".join(lines) + "\n", "\n".join([*lines, "203.0.113.77"]) + "\n", IP_ZONE)


def test_deleted_replaced_and_bad_lines_are_patched() -> None:
    lines = _feed(3000)
    new = list(lines)
    del new[100]
    new[2000] = "10.1.2.300"  # a bad line: its problem lands at its line
    new.insert(2500, "10.0.0.7")  # a repeat: the summary is computed again
    new.insert(2600, "# comment")
    assert _check("\n".join(lines) + "\n", "\n".join(new) + "\n", IP_ZONE)


def test_state_lines_are_not_patched() -> None:
    lines = _feed(100)
    for line in [":4:other", "$1 x", "!10.0.0.5", "10.0.0.200 :5:own", "10.0.0.201 text"]:
        old, marks = read_bulk("feed.txt", ("\n".join(lines) + "\n").encode(), IP_ZONE)
        new_data = ("\n".join([*lines, line]) + "\n").encode()
        assert patch_bulk(old, marks, ("\n".join(lines) + "\n").encode(), new_data, IP_ZONE) is None, line


def test_past_the_problem_limit_is_not_patched() -> None:
    lines = ["# feed", *(["10.1.2.300"] * (MAX_LINE_PROBLEMS - 1)), "10.0.0.1"]
    assert _check("\n".join(lines), "\n".join([*lines, "10.1.2.301"]), IP_ZONE)
    assert not _check("\n".join(lines), "\n".join([*lines, "10.1.2.301", "10.1.2.302"]), IP_ZONE)


@settings(max_examples=300, deadline=None)
@given(
    old=st.lists(st.sampled_from(["a", "b", "c", "", "dd"]), max_size=12),
    new=st.lists(st.sampled_from(["a", "b", "c", "", "dd"]), max_size=12),
    end_old=st.booleans(),
    end_new=st.booleans(),
)
def test_line_hunks_turn_old_lines_into_new(old: list[str], new: list[str], end_old: bool, end_new: bool) -> None:
    a = ("\n".join(old) + ("\n" if end_old else "")).encode()
    b = ("\n".join(new) + ("\n" if end_new else "")).encode()
    hunks = line_hunks(a, b)
    assert hunks is not None
    lines = a.split(b"\n")
    for h in reversed(hunks):
        assert lines[h.old_start : h.old_start + len(h.old)] == list(h.old)
        lines[h.old_start : h.old_start + len(h.old)] = list(h.new)
    assert lines == b.split(b"\n")


def test_line_hunks_give_up_on_a_long_stretch() -> None:
    a = "\n".join(map(str, range(100))).encode()
    b = a.replace(b"\n1\n", b"\nx\n").replace(b"\n98\n", b"\ny\n")
    assert line_hunks(a, b, max_lines=50) is None
    assert line_hunks(a, b) is not None
