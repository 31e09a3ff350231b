"""Imported rbldnsd files answer exactly like a real rbldnsd serving the originals.

For each dataset type (ip4set, ip4trie, ip4tset, ip6trie, ip6tset, dnset, and a
combined file) a data file of a few hundred random entries is generated: CIDRs,
ranges, abbreviated forms, exclusions, repeats with the same and other values,
several codes and texts, and lines that rbldnsd ignores for that type. A real
rbldnsd serves the ORIGINAL files on an ephemeral loopback port; our pipeline
imports them (importer.import_rbldnsd), writes the lists and the printed
zones.yaml snippets to a temporary lists folder, compiles it with
build.compile_tree, round-trips each zone through a snapshot, and answers with
lookup.zone_answer. Thousands of names (listed, unlisted, edges of every range)
must get the same A and TXT records from both.

Names not compared, and why:
- the RFC 5782 test points 127.0.0.1 / 127.0.0.2 / `test` / `invalid`: the
  publisher always answers them its own way (docs/design.md, Answer semantics);
- IPv4-mapped, IPv4-compatible and 6to4 IPv6 names are not generated
  (render.KNOWN_RBLDNSD_DIFFERENCES: rbldnsd answers them from IPv4 data or
  writes the address differently);
- dnset wildcard TXT: rbldnsd puts the wildcard's base name where we put the
  queried name (KNOWN_RBLDNSD_DIFFERENCES); test_interop.expected applies it.
- Two codes with the same text at one name: rbldnsd sends that TXT once, the
  publisher once per A; TXTs are compared as sets.
Where rbldnsd answers two TXTs for one code (same code, different texts at one
name) the publisher answers one TXT per code: the importer reports it
(`import-lost`), and there our TXT must be one of rbldnsd's.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from dnslib import QTYPE

from conftest import free_port, require_tool, stop_process
from publisher.addresses import TEST_LISTED_V4, TEST_UNLISTED_V4, format_v4, format_v6
from publisher.compile.lookup import Query
from publisher.compile.snapshot import dump_snapshot, load_snapshot
from publisher.compile.zone import CompiledZone
from publisher.importer.migrate import import_rbldnsd
from publisher.lists.tree import DirTree
from publisher.publish.build import compile_tree
from test_interop import _user_exists, _wait_ready, ask, expected, qname

TEXT = {2: "spam from $", 3: "open proxy at $", 4: "botnet", 5: "dynamic range $$5 ($)", 6: "policy block", 9: ""}
CODES = [2, 3, 4, 5, 6, 9]  # code 9 never has a TXT: rbldnsd sends none, we an empty one (dropped below)
NO_TXT = 0x7F000009
V4_HOT = [0x0A000000, 0x0A010000, 0x0A020000, 0xC0000000, 0xCB000000, 0x64400000]  # 10.0-2, 192.0, 203.0, 100.64 /16s
V6_HOT = [0x20010DB8_0001, 0x20010DB8_0002, 0x2A001450_4000, 0x20010DB8_FFFF]


class Gen:
    """Random rbldnsd lines; `spans` are the (family, start, end) written, for the queries."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.lines: list[str] = []
        self.spans: list[tuple[int, int, int]] = []

    def value(self) -> str:
        r, c = self.rng.random(), self.rng.choice(CODES)
        if r < 0.6:
            return ""
        if r < 0.85:
            return f" :{c}:{TEXT[c]}"
        if r < 0.9 and c != 9:
            return f" :{c}"  # the current default TXT: may give one code two texts
        if r < 0.93:
            return " listed for $ reasons"  # the default code with this text
        return f" # a comment :{c}:"

    def default(self) -> str:
        c = self.rng.choice(CODES[:-1])  # never 9: plain-text entries take the default code
        return f":{c}:{TEXT[c]}"

    def v4(self) -> int:
        addr = self.rng.choice(V4_HOT) | self.rng.getrandbits(16)
        return addr if (addr >> 24) != 127 else addr ^ 0x01000000

    def v6(self) -> int:
        return (self.rng.choice(V6_HOT) << 80) | self.rng.getrandbits(80)

    def emit(self, count: int, entry: Callable[[], str | None]) -> None:
        for i in range(count):
            if i % 25 == 0:
                self.lines.append(self.default())
            if self.lines and self.rng.random() < 0.08:
                self.lines.append(self.rng.choice(self.lines))  # repeats, same or other value
                continue
            line = entry()
            if line is not None:
                self.lines.append(line)


def _v4_cidr(g: Gen, lengths: list[int]) -> tuple[str, int, int]:
    plen = g.rng.choice(lengths)
    start = g.v4() >> (32 - plen) << (32 - plen)
    end = start + (1 << (32 - plen)) - 1
    g.spans.append((4, start, end))
    octets = format_v4(start).split(".")
    if plen in (16, 24) and g.rng.random() < 0.5:
        return ".".join(octets[: plen // 8]), start, end  # abbreviated: 10.1 = 10.1.0.0/16
    return (format_v4(start) if plen == 32 else f"{format_v4(start)}/{plen}"), start, end


def ip4set_lines(g: Gen) -> str:
    def entry() -> str:
        bang = "!" if g.rng.random() < 0.12 else ""
        if g.rng.random() < 0.2:  # ranges, in rbldnsd's forms
            start = g.v4()
            end = min(start + g.rng.choice([3, 40, 255, 700, 5000]), start | 0xFFFF)
            g.spans.append((4, start, end))
            a, b = format_v4(start), format_v4(end)
            if a.rsplit(".", 1)[0] == b.rsplit(".", 1)[0] and g.rng.random() < 0.5:
                return f"{bang}{a}-{b.rsplit('.', 1)[1]}{g.value()}"
            return f"{bang}{a}-{b}{g.value()}"
        text, _, _ = _v4_cidr(g, [32, 32, 32, 31, 28, 26, 25, 24, 24, 23, 22, 20, 16, 16, 14])
        return f"{bang}{text}{'' if bang else g.value()}"

    g.lines.append("10.0.0.0/8 :6:policy block")  # the /8 level under everything hot
    g.emit(400, entry)
    return "\n".join(g.lines) + "\n127.0.0.2\n"


def ip4trie_lines(g: Gen) -> str:
    def entry() -> str:
        bang = "!" if g.rng.random() < 0.15 else ""
        r = g.rng.random()
        if r < 0.04:
            a = g.v4()
            return f"{format_v4(a)}-{format_v4(a + 9)}"  # ip4trie ignores ranges
        if r < 0.07:
            return f"{format_v4(g.v4() | 1)}/24"  # host bits: ignored by rbldnsd and refused by us
        text, _, _ = _v4_cidr(g, [32, 32, 30, 29, 27, 26, 25, 24, 22, 21, 19, 16, 13])
        return f"{bang}{text}{'' if bang else g.value()}"

    g.emit(400, entry)
    return (
        "$SOA 1w ns1.imp.test hostmaster.imp.test 0 2h 1h 1w 1h\n$NS 1d ns1.imp.test\n$TTL 1h\n"
        + "\n".join(g.lines)
        + "\n"
    )


def ip4tset_lines(g: Gen) -> str:
    def entry() -> str:
        a = g.v4()
        g.spans.append((4, a, a))
        r = g.rng.random()
        if r < 0.1:
            return f"{format_v4(a)} :3:ignored by ip4tset"
        if r < 0.13:
            return f"{format_v4(a)}/32"
        if r < 0.15:
            return f"!{format_v4(a)}"
        return format_v4(a)

    g.lines.append(":4:tset entry $")
    g.emit(300, entry)
    return "\n".join(g.lines) + "\n"


def ip6trie_lines(g: Gen) -> str:
    def entry() -> str:
        bang = "!" if g.rng.random() < 0.15 else ""
        plen = g.rng.choice([128, 128, 127, 120, 112, 96, 80, 64, 64, 60, 56, 48, 48, 44, 36])
        start = g.v6() >> (128 - plen) << (128 - plen)
        g.spans.append((6, start, start + (1 << (128 - plen)) - 1))
        if plen == 48 and g.rng.random() < 0.5:
            text = ":".join(f"{(start >> s) & 0xFFFF:x}" for s in (112, 96, 80))  # 2001:db8:1 = /48
        elif g.rng.random() < 0.2:
            text = ":".join(f"{(start >> s) & 0xFFFF:x}" for s in range(112, -1, -16)) + f"/{plen}"
        else:
            text = format_v6(start) if plen == 128 else f"{format_v6(start)}/{plen}"
        return f"{bang}{text}{'' if bang else g.value()}"

    g.emit(350, entry)
    return "\n".join(g.lines) + "\n"


def ip6tset_lines(g: Gen) -> str:
    halves: list[int] = []

    def entry() -> str:
        r = g.rng.random()
        if r < 0.2 and halves:
            addr = (g.rng.choice(halves) << 64) | g.rng.getrandbits(8)
            g.spans.append((6, addr, addr))
            return f"!{format_v6(addr)}"
        if r < 0.25:
            return f"{format_v6(g.v6() >> 64 << 64)}/64"  # not the four-group form: ignored
        half = g.v6() >> 64 & ~0xFFF | g.rng.getrandbits(4)
        halves.append(half)
        g.spans.append((6, half << 64, (half << 64) | (1 << 64) - 1))
        return ":".join(f"{(half >> s) & 0xFFFF:x}" for s in (48, 32, 16, 0)) + (" :5:ignored" if r > 0.9 else "")

    g.lines.append(":2:v6 tset $")
    g.emit(300, entry)
    return "\n".join(g.lines) + "\n"


LABELS = ["a", "b", "mail", "x-1", "spam", "_dmarc"]
SUFFIXES = ["example", "example.org", "test.example", "b.example"]


def dnset_lines(g: Gen, names: set[str]) -> str:
    def name() -> str:
        depth = g.rng.choice([0, 1, 1, 2, 3])
        n = ".".join([g.rng.choice(LABELS) for _ in range(depth)] + [g.rng.choice(SUFFIXES)])
        names.add(n)
        return n

    def entry() -> str:
        bang = "!" if g.rng.random() < 0.15 else ""
        form = g.rng.choice(["", "", "", "*.", "*.", "."])
        return f"{bang}{form}{name()}{'' if bang else g.value()}"

    g.emit(350, entry)
    return "\n".join(g.lines) + "\ntest\n"


def combined_lines(seed: int) -> tuple[str, Gen, Gen]:
    a, b = Gen(seed), Gen(seed + 1)
    v4 = ip4set_lines(a)
    v6 = ip6trie_lines(b)
    text = (
        "$SOA 0 ns1.imp.test hostmaster.imp.test 0 1h 10m 1w 5m\n$NS 0 ns1.imp.test\n"
        f"$DATASET ip4set:v4 @ sub\n{v4}$DATASET ip6trie:v6 @\n{v6}"
    )
    return text, a, b


# --- serving the originals --------------------------------------------------------------


@contextlib.contextmanager
def serve_originals(files: dict[str, tuple[str, str]]) -> Iterator[tuple[str, int]]:
    """rbldnsd on an ephemeral loopback port: zone -> (dataset type, data file text)."""
    binary = require_tool("rbldnsd")
    directory = Path(tempfile.mkdtemp(prefix="rbldnsd-import-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        directory.chmod(0o755)  # rbldnsd reads as the user it switches to
        args = []
        for zone, (dtype, text) in files.items():
            path = directory / f"{zone}.data"
            path.write_text(text, encoding="utf-8")
            path.chmod(0o644)
            args.append(f"{zone}:{dtype}:{path.name}")
        port = free_port()
        user = ["-u", "rbldns" if _user_exists("rbldns") else "nobody"] if os.geteuid() == 0 else []
        log = (directory / "rbldnsd.log").open("wb")
        proc = subprocess.Popen(
            [binary, "-n", *user, "-b", f"127.0.0.1/{port}", "-w", str(directory), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        _wait_ready(proc, port, next(iter(files)), directory / "rbldnsd.log")
        yield "127.0.0.1", port
    finally:
        if proc is not None:
            stop_process(proc)
        shutil.rmtree(directory, ignore_errors=True)


# --- the cases --------------------------------------------------------------------------


def _ip_queries(rng: random.Random, spans: list[tuple[int, int, int]], family: int, extra: int) -> list[Query]:
    top = (1 << 32) - 1 if family == 4 else (1 << 128) - 1
    out: set[int] = set()
    for fam, s, e in spans:
        if fam == family:
            out.update(a for a in (s - 1, s, rng.randint(s, e), e, e + 1) if 0 <= a <= top)
    gen = Gen(rng.randrange(1 << 30))
    out.update(gen.v4() if family == 4 else gen.v6() for _ in range(extra))
    out -= {TEST_LISTED_V4, TEST_UNLISTED_V4}  # the publisher's own test points
    return [Query(family, a) for a in sorted(out)]


def cases() -> tuple[dict[str, tuple[str, str]], dict[str, list[Query]]]:
    """(zone -> (dataset type, original text)), and the queries per zone."""
    rng = random.Random(7)
    serve: dict[str, tuple[str, str]] = {}
    queries: dict[str, list[Query]] = {}
    for dtype, maker, fam in (
        ("ip4set", ip4set_lines, 4),
        ("ip4trie", ip4trie_lines, 4),
        ("ip4tset", ip4tset_lines, 4),
        ("ip6trie", ip6trie_lines, 6),
        ("ip6tset", ip6tset_lines, 6),
    ):
        g = Gen(rng.randrange(1 << 30))
        serve[f"{dtype}.imp.test"] = (dtype, maker(g))
        queries[f"{dtype}.imp.test"] = _ip_queries(rng, g.spans, fam, 300)
    names: set[str] = set()
    serve["dnset.imp.test"] = ("dnset", dnset_lines(Gen(rng.randrange(1 << 30)), names))
    probes = names | {f"{p}.{n}" for n in names for p in ("q", "a.q")} | {n.split(".", 1)[1] for n in names if "." in n}
    queries["dnset.imp.test"] = [Query(0, domain=n) for n in sorted(probes - {"test", "invalid"})]
    text, a, b = combined_lines(rng.randrange(1 << 30))
    serve["comb.imp.test"] = ("combined", text)
    queries["comb.imp.test"] = _ip_queries(rng, a.spans, 4, 100)[::2] + _ip_queries(rng, b.spans, 6, 100)[::2]
    queries["sub.comb.imp.test"] = _ip_queries(rng, a.spans, 4, 100)[1::3]
    return serve, queries


def import_all(serve: dict[str, tuple[str, str]], lists: Path) -> tuple[dict[str, CompiledZone], dict[str, list[str]]]:
    """Import every original into `lists`, write zones.yaml from the snippets, compile."""
    snippets: list[str] = []
    codes: dict[str, list[str]] = {}
    for zone, (dtype, text) in serve.items():
        folder = zone.split(".")[0]
        result = import_rbldnsd(text, zone=zone, dataset=dtype, out=f"{folder}/{folder}.txt", source=f"{zone}.data")
        assert not [p for p in result.errors if p.code not in ("import-lost",)], [p.format() for p in result.errors]
        for imported in result.zones:
            codes[imported.config.name] = [p.code for p in result.problems]
            snippets.append(imported.snippet)
            for f in imported.files:
                (lists / f.path).parent.mkdir(parents=True, exist_ok=True)
                (lists / f.path).write_text(f.text, encoding="utf-8")
    (lists / "zones.yaml").write_text("zones:\n" + "".join(snippets), encoding="utf-8")
    build = compile_tree(DirTree(lists), as_of=dt.datetime.now(dt.UTC))
    # what the server loads: the snapshot, not the compiled object
    return {name: load_snapshot(dump_snapshot(zone)) for name, zone in build.zones.items()}, codes


def test_imported_lists_answer_like_rbldnsd_from_the_originals(tmp_path: Path) -> None:
    require_tool("rbldnsd")
    serve, queries = cases()
    zones, codes = import_all(serve, tmp_path)
    assert set(queries) <= set(zones)
    with serve_originals(serve) as server:
        for name, qs in queries.items():
            zone = zones[name]
            names = {qname(zone, q): q for q in qs}
            a_replies = ask(server, list(names), "A")
            txt_replies = ask(server, list(names), "TXT")
            mismatches: list[str] = []
            clashes = listed = 0
            for text, q in names.items():
                want_codes, want_txts = expected(zone, q)
                # rbldnsd sends a text once even when two codes share it (RFC 2181 5: no
                # duplicate RRs in an RRset); the publisher sends one TXT per A.
                want_txts = sorted(set(want_txts))
                got_codes = sorted(
                    int.from_bytes(bytes(rr.rdata.data), "big") for rr in a_replies[text].rr if rr.rtype == QTYPE.A
                )
                got_txts = sorted(b"".join(rr.rdata.data) for rr in txt_replies[text].rr if rr.rtype == QTYPE.TXT)
                listed += bool(got_codes)
                with_text = len(set(got_codes) - {NO_TXT})
                if len(got_txts) > with_text:
                    # rbldnsd: two texts for one code; we answer one TXT per code (reported)
                    clashes += 1
                    ok = want_codes == got_codes and set(want_txts) <= set(got_txts) and len(want_txts) == with_text
                else:
                    ok = (want_codes, want_txts) == (got_codes, got_txts)
                if not ok:
                    got = [format_v4(c) for c in got_codes], got_txts
                    want = [format_v4(c) for c in want_codes], want_txts
                    mismatches.append(f"{text}: rbldnsd {got}, import {want}")
            assert not mismatches, f"{name}: {len(mismatches)} of {len(names)} differ:\n" + "\n".join(mismatches[:15])
            assert 0 < listed < len(names), f"{name}: the queries must cover listed and unlisted names"
            assert (clashes > 0) <= ("import-lost" in codes[name]), (
                f"{name}: rbldnsd sent two TXTs for a code, not reported"
            )
