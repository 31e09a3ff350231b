"""Our renderings against the real programs: BIND's zone tools and rbldnsd.

- named-checkzone accepts every rendered zone, and named-compilezone reads back
  exactly the records of `iter_records` (so secondaries fed by AXFR and a BIND
  loading the file hold the same data).
- A real rbldnsd on an ephemeral loopback port, serving our `.rbldnsd` files,
  answers A and TXT like `publisher lookup` (lookup.zone_answer) for thousands of
  listed and unlisted names, except for the documented KNOWN_RBLDNSD_DIFFERENCES.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from conftest import LISTS, free_port, require_tool, stop_process
from publisher.addresses import (
    TEST_LISTED_V4,
    TEST_LISTED_V6,
    TEST_UNLISTED_V4,
    TEST_UNLISTED_V6,
    V4_MAPPED_END,
    V4_MAPPED_START,
    parse_addr,
    v4_name,
    v6_name,
)
from publisher.compile import render
from publisher.compile.lookup import Query, zone_answer
from publisher.compile.zone import CompiledZone
from publisher.model import SUBST
from test_render import golden_domain_zone, golden_ip_zone, make_zone, unescape

# --- zones under test --------------------------------------------------------------------


def random_ip_zone(seed: int = 5782, name: str = "rnd.example.test") -> tuple[CompiledZone, list[Query]]:
    """A few thousand intervals of every shape, and queries inside, at the edges and outside."""
    rng = random.Random(seed)
    rows4: dict[int, tuple[int, int, int]] = {TEST_LISTED_V4: (TEST_LISTED_V4, TEST_LISTED_V4, 0)}
    for _ in range(1500):
        plen = rng.choice([32] * 12 + [30, 27, 24, 24, 20, 16, 0])
        if plen == 0:  # a range that is not one CIDR
            start = rng.getrandbits(32)
            end = min(start + rng.randrange(2, 300), 0xFFFFFFFF)
        else:
            start = rng.getrandbits(32) >> (32 - plen) << (32 - plen)
            end = start + (1 << (32 - plen)) - 1
        rows4[start] = (start, end, rng.randrange(4))
    rows6: dict[int, tuple[int, int, int]] = {}
    for _ in range(200):
        plen = rng.choice([128, 128, 126, 64, 64, 56, 48, 33])
        top = rng.choice([0x20010DB8, 0x2A000000 | rng.getrandbits(16), 0x30000000])
        start = ((top << 96) | rng.getrandbits(96)) >> (128 - plen) << (128 - plen)
        rows6[start] = (start, start + (1 << (128 - plen)) - 1, rng.randrange(4))
    zone = make_zone(
        name=name,
        answers=[
            (["127.0.0.2"], [f"RFC 5782 test point {SUBST}"]),
            (["127.0.0.2"], [f"Listed: see https://bl.example.test/lookup?ip={SUBST}"]),
            (["127.0.0.3", "127.0.0.11"], [f"spam source {SUBST}", "policy: dynamic range"]),
            (["127.0.0.4"], ["snowshoe $$ network"]),
        ],
        v4=_disjoint(rows4.values()),
        v6=_disjoint(rows6.values()),
    )
    queries = [Query(4, a) for a in (TEST_LISTED_V4, TEST_UNLISTED_V4)]
    queries += [Query(6, a) for a in (TEST_LISTED_V6, TEST_UNLISTED_V6)]
    for s, e, _ in zone.v4_intervals():
        queries += [Query(4, a & 0xFFFFFFFF) for a in (s - 1, rng.randint(s, e), e + 1)]
    queries += [Query(4, rng.getrandbits(32)) for _ in range(1000)]
    for s, e, _ in zone.v6_intervals():
        queries += [Query(6, a % (1 << 128)) for a in (s - 1, rng.randint(s, e), e)]
    queries += [Query(6, (0x20010DB8 << 96) | rng.getrandbits(96)) for _ in range(200)]
    # anywhere, except 6to4 2002::/16 (KNOWN_RBLDNSD_DIFFERENCES) and the ::/96 of IPv4-compatible
    queries += [Query(6, a) for a in (rng.getrandbits(128) for _ in range(300)) if a >> 112 != 0x2002 and a >> 32]
    # IPv4-mapped names answer from the IPv4 data, in rbldnsd as in the publisher
    queries += [Query(6, V4_MAPPED_START + s) for s, _, _ in list(zone.v4_intervals())[:100]]
    return zone, queries


def _disjoint(rows: object) -> list[tuple[int, int, int]]:
    out: list[tuple[int, int, int]] = []
    for s, e, v in sorted(rows):  # type: ignore[call-overload]
        if out and s <= out[-1][1]:
            continue
        out.append((s, e, v))
    return out


def random_domain_zone(seed: int = 2606, name: str = "rdbl.example.test") -> tuple[CompiledZone, list[Query]]:
    rng = random.Random(seed)
    labels = ["a", "b", "mail", "spam-1", "x_y"]

    def name_of(depth: int) -> str:
        return ".".join(rng.choice(labels) for _ in range(depth)) + rng.choice([".example", ".test", ""])

    exact = {name_of(rng.randint(1, 3)): rng.choice([-1, 0, 1, 2, 2]) for _ in range(150)}
    wild = {name_of(rng.randint(1, 3)): rng.choice([-1, 0, 1, 2, 2]) for _ in range(60)}
    exact.update({"test": 0, "invalid": -1})
    zone = make_zone(
        "domain",
        name=name,
        answers=[
            (["127.0.0.2"], [f"{SUBST}: RFC 5782 test point"]),
            (["127.0.1.2"], [f"{SUBST} is listed"]),
            (["127.0.1.3", "127.0.1.4"], [f"phishing {SUBST}", "malware"]),
        ],
        exact=exact,
        wild=wild,
    )
    names = set(exact) | set(wild) | {f"{p}.{w}" for w in wild for p in ("a", "q.a", "zz")}
    names |= {name_of(rng.randint(1, 4)) for _ in range(500)}
    return zone, [Query(0, domain=n) for n in sorted(names)]


def _addr_queries(zone: CompiledZone, n: int = 60) -> list[Query]:
    rng = random.Random(1)
    out = [Query(4, a) for a in (TEST_LISTED_V4, TEST_UNLISTED_V4)] + [Query(6, TEST_LISTED_V6)]
    for s, e, _ in zone.v4_intervals():
        out += [Query(4, a & 0xFFFFFFFF) for a in (s - 1, s, rng.randint(s, e), e, e + 1)]
    for s, e, _ in zone.v6_intervals():
        out += [Query(6, a % (1 << 128)) for a in (s - 1, s, rng.randint(s, e), e, e + 1)]
    out += [Query(4, rng.getrandbits(32)) for _ in range(n)]
    return out


def hand_built() -> list[tuple[CompiledZone, list[Query]]]:
    gip, gdom = golden_ip_zone(), golden_domain_zone()
    dom_names = [*gdom.dom_exact, *gdom.dom_wild, "a.spam.example", "q.no.wild.example", "a.x.y.wild.example"]
    return [
        (gip, _addr_queries(gip)),
        (gdom, [Query(0, domain=n) for n in dom_names]),
        random_ip_zone(),
        random_domain_zone(),
    ]


def sample_zones() -> list[tuple[CompiledZone, list[Query]]]:
    """The shipped sample lists, compiled; skips until the loader and lists exist."""
    if not (LISTS / "zones.yaml").exists():
        pytest.skip("lists/zones.yaml is not there yet")
    try:
        from publisher.lists.tree import DirTree
        from publisher.publish.build import compile_tree
    except ImportError as exc:
        pytest.skip(f"the loader is not there yet: {exc}")
    build = compile_tree(DirTree(LISTS), as_of=dt.datetime.now(dt.UTC))
    out = []
    for zone in build.zones.values():
        if zone.info.kind == "ip":
            out.append((zone, _addr_queries(zone, 500)))
        else:
            names = [*zone.dom_exact, *zone.dom_wild, *(f"a.{w}" for w in zone.dom_wild), "not-listed.example"]
            out.append((zone, [Query(0, domain=n) for n in names]))
    return out


# --- BIND's tools -------------------------------------------------------------------------


def write(zone: CompiledZone, fn: object, directory: Path, suffix: str) -> Path:
    path = directory / f"{zone.name}{suffix}"
    with path.open("w", encoding="utf-8") as fh:
        fn(zone, fh)  # type: ignore[operator]
    return path


def compiled_by_bind(tool: str, zone: CompiledZone, path: Path) -> Counter[tuple[str, str, int, object]]:
    """The records named-compilezone reads from our file, fully qualified."""
    run = subprocess.run(
        # -k warn: names with '_' (allowed in domain lists) are not host names; BIND
        # secondaries only warn about them (check-names secondary warn).
        [tool, "-i", "none", "-k", "warn", "-s", "full", "-o", "-", zone.name, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"named-compilezone refused {zone.name}:\n{run.stdout[-2000:]}{run.stderr}"
    out: Counter[tuple[str, str, int, object]] = Counter()
    for line in run.stdout.splitlines():
        if not line or line.startswith(("zone ", ";")) or line == "OK":
            continue
        owner, ttl, _cls, rtype, rdata = line.split(None, 4)
        value: object = rdata.strip()
        if rtype in ("A", "AAAA"):
            value = parse_addr(str(value))[1]
        elif rtype == "TXT":
            value = b"".join(unescape(m) for m in _strings(str(value))).decode("utf-8")
        elif rtype == "NS":
            value = str(value).rstrip(".")
        elif rtype == "SOA":
            m, r, *nums = str(value).split()
            value = (m.rstrip("."), r.rstrip("."), *map(int, nums))
        out[(owner.rstrip("."), rtype, int(ttl), value)] += 1
    return out


def _strings(rdata: str) -> list[str]:
    from test_render import _STRING

    return _STRING.findall(rdata)


def _check_bind(zones: list[tuple[CompiledZone, list[Query]]], tmp_path: Path) -> None:
    checkzone = require_tool("named-checkzone")
    compilezone = require_tool("named-compilezone")
    for zone, _ in zones:
        path = write(zone, render.render_bind, tmp_path, ".zone")
        cmd = [checkzone, "-i", "local", zone.name, str(path)]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, f"named-checkzone refused {zone.name}:\n{run.stdout}{run.stderr}"
        want = Counter((r.owner, r.rtype, r.ttl, r.rdata) for r in render.iter_records(zone))
        assert compiled_by_bind(compilezone, zone, path) == want


def test_bind_tools_read_our_zones_as_our_records(tmp_path: Path) -> None:
    _check_bind(hand_built(), tmp_path)


def test_bind_tools_read_the_sample_zones(tmp_path: Path) -> None:
    _check_bind(sample_zones(), tmp_path)


# --- rbldnsd -------------------------------------------------------------------------------


@contextlib.contextmanager
def rbldnsd(zones: list[CompiledZone]) -> Iterator[tuple[str, int]]:
    """A real rbldnsd serving our files on an ephemeral loopback port; stopped by PID."""
    binary = require_tool("rbldnsd")
    # rbldnsd refuses to run as root and reads its files as the user it switches to,
    # so the directory must be world-readable (pytest's tmp_path is not).
    directory = Path(tempfile.mkdtemp(prefix="rbldnsd-test-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        directory.chmod(0o755)
        args = []
        for zone in zones:
            path = write(zone, render.render_rbldnsd, directory, ".rbldnsd")
            path.chmod(0o644)
            args.append(render.rbldnsd_zone_arg(zone.name, path.name))
        port = free_port()
        user = []
        if os.geteuid() == 0:
            user = ["-u", "rbldns" if _user_exists("rbldns") else "nobody"]
        log = (directory / "rbldnsd.log").open("wb")
        cmd = [binary, "-n", "-f", *user, "-b", f"127.0.0.1/{port}", "-w", str(directory), *args]
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        _wait_ready(proc, port, zones[0].name, directory / "rbldnsd.log")
        yield "127.0.0.1", port
    finally:
        if proc is not None:
            stop_process(proc)
        shutil.rmtree(directory, ignore_errors=True)


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _wait_ready(proc: subprocess.Popen[bytes], port: int, zone: str, log: Path) -> None:
    """Poll with SOA queries until rbldnsd answers (bounded); fail with its output."""
    deadline = time.monotonic() + 20
    probe = DNSRecord.question(zone, "SOA")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"rbldnsd exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
            sock.sendto(probe.pack(), ("127.0.0.1", port))
            try:
                sock.recvfrom(4096)
                return
            except (TimeoutError, ConnectionRefusedError):
                continue  # still loading (the wait is the socket timeout, not a sleep)
    pytest.fail(f"rbldnsd did not answer within 20 s:\n{log.read_text(errors='replace')}")


def ask(server: tuple[str, int], names: list[str], qtype: str) -> dict[str, DNSRecord]:
    """Query many names over one UDP socket, a batch in flight at a time."""
    replies: dict[str, DNSRecord] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        for lo in range(0, len(names), 64):
            pending: dict[int, str] = {}
            for i, name in enumerate(names[lo : lo + 64]):
                q = DNSRecord.question(name, qtype)
                q.header.id = lo + i & 0xFFFF
                pending[q.header.id] = name
                sock.sendto(q.pack(), server)
            while pending:
                data, _ = sock.recvfrom(4096)
                reply = DNSRecord.parse(data)
                name = pending.pop(reply.header.id, None)
                if name is not None:
                    replies[name] = reply
    return replies


def qname(zone: CompiledZone, q: Query) -> str:
    rel = v4_name(q.addr) if q.family == 4 else v6_name(q.addr) if q.family == 6 else q.domain
    return f"{rel}.{zone.name}"


def expected(zone: CompiledZone, q: Query) -> tuple[list[int], list[bytes]]:
    """What `publisher lookup` answers, as rbldnsd is documented to serve it."""
    if q.family == 6 and V4_MAPPED_START <= q.addr <= V4_MAPPED_END:
        q = Query(4, q.addr - V4_MAPPED_START)  # as lookup.parse_query reads it
    pairs = zone_answer(zone, q)
    if q.family == 0 and pairs and zone.dom_exact.get(q.domain, -1) < 0:
        # KNOWN_RBLDNSD_DIFFERENCES: a dnset wildcard puts its own base name into the TXT
        suffix = q.domain.split(".", 1)[1]  # a wildcard matches below its name only
        while suffix not in zone.dom_wild:
            suffix = suffix.split(".", 1)[1]
        answer = zone.answers[zone.dom_wild[suffix]]
        pairs = [(c, t.replace(SUBST, suffix)) for c, t in zip(answer.codes, answer.txts)]
    txts = [t.encode("utf-8")[:254].strip() for _, t in pairs]  # rbldnsd truncates and trims
    return sorted(c for c, _ in pairs), sorted(t for t in txts if t)


def _check_rbldnsd(cases: list[tuple[CompiledZone, list[Query]]]) -> None:
    with rbldnsd([zone for zone, _ in cases]) as server:
        for zone, queries in cases:
            names = {qname(zone, q): q for q in queries}
            a_replies = ask(server, list(names), "A")
            txt_replies = ask(server, list(names), "TXT")
            mismatches = []
            for name, q in names.items():
                codes, txts = expected(zone, q)
                a, t = a_replies[name], txt_replies[name]
                got_codes = sorted(int.from_bytes(bytes(rr.rdata.data), "big") for rr in a.rr if rr.rtype == QTYPE.A)
                got_txts = sorted(b"".join(rr.rdata.data) for rr in t.rr if rr.rtype == QTYPE.TXT)
                if (got_codes, got_txts) != (codes, txts) or (codes and a.header.rcode != RCODE.NOERROR):
                    mismatches.append(f"{name}: rbldnsd {got_codes} {got_txts}, lookup {codes} {txts}")
            listed = sum(1 for q in queries if zone_answer(zone, q))
            assert not mismatches, f"{len(mismatches)} of {len(names)} differ:\n" + "\n".join(mismatches[:20])
            assert listed and listed < len(queries), "the queries must cover listed and unlisted names"


def test_rbldnsd_answers_like_lookup() -> None:
    _check_rbldnsd(hand_built())


def test_rbldnsd_answers_the_sample_zones_like_lookup() -> None:
    _check_rbldnsd(sample_zones())


def test_rbldnsd_serves_soa_and_ns_at_the_apex() -> None:
    zone = golden_ip_zone()
    zone = replace(zone, info=replace(zone.info, serial=77))
    with rbldnsd([zone]) as server:
        soa = ask(server, [zone.name], "SOA")[zone.name]
        ns = ask(server, [zone.name], "NS")[zone.name]
    assert [rr.rdata.times[0] for rr in soa.rr if rr.rtype == QTYPE.SOA] == [77]
    assert sorted(str(rr.rdata).rstrip(".") for rr in ns.rr if rr.rtype == QTYPE.NS) == render.ns_names(zone)
