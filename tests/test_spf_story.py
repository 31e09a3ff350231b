"""Issue 14's "Done when", end to end with real programs, as an operator sees it.

Every step is a process: the `publisher` CLI (refresh-spf, plan, publish, explain, validate),
Debian's NSD serving the partners' SPF records on loopback (tests/authdns.py), `publisher
serve` on an ephemeral loopback port (stopped by its PID) and dig asking it. The lists are the
shipped sample (tests/data/sample-lists) with `spf:` settings on wl.example.test: generated
files in wl/spf, a shared provider listed at a lower code, and partner.example declared.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from authdns import AuthDns, BlackHole
from conftest import LISTS, ROOT, require_tool
from test_server import Dig, Served, dig, v4q, v6q

Start = Callable[[Mapping[str, str]], AuthDns]
WL = "wl.example.test"
GENERATED = "wl/spf/partner.example.yaml"

#: partner.example: a nested include, an `a:` with a CIDR length, an ip6, a private range by
#: mistake, and an include of a shared provider (mailpool.example, a zone of its own).
PARTNER = (
    '@ TXT ( "v=spf1 include:_spf.partner.example a:mail.partner.example/28 ip6:2a02:898:1234::/48 "\n'
    '    "ip4:10.0.0.0/8 include:_spf.mailpool.example -all" )\n'
    '_spf TXT "v=spf1 include:_net.partner.example ip4:81.2.69.0/28 -all"\n'
    '_net TXT "v=spf1 ip4:81.2.70.0/24 -all"\n'
    "mail A 81.2.71.5\n"
)
POOL = '_spf TXT "v=spf1 ip4:91.198.174.0/24 -all"\n'
RECORDS = {"partner.example": PARTNER, "mailpool.example": POOL}

SPF_SETTINGS = """\
    sources: [wl/*.yaml, wl/spf/*.yaml]
    spf:
      dir: wl/spf
      shared:
        providers: [_spf.mailpool.example]
        code: 127.0.10.1
"""
DECLARATION = """
  - spf: partner.example
    owner: Example Partner Ltd
    contact: postmaster@partner.example
    code: 127.0.10.2
    ticket: PARTNER-12
"""
OPERATOR = ("Carol Curator", "carol@example.test")

INC = "partner.example > include:_spf.partner.example"
HEAD = "partner.example (wl.example.test, wl/spf/partner.example.yaml)"
POOLED = "partner.example > include:_spf.mailpool.example"
REFRESHED = f"""\
{HEAD}: ok, +5 -0 (0 -> 544 IPv4 addresses, 0 -> 65536 IPv6 /64s)
  + 81.2.69.0/28  {INC} > ip4:81.2.69.0/28
  + 81.2.70.0/24  {INC} > include:_net.partner.example > ip4:81.2.70.0/24
  + 81.2.71.0/28  partner.example > a:mail.partner.example/28
  + 91.198.174.0/24  partner.example > include:_spf.mailpool.example > ip4:91.198.174.0/24
  + 2a02:898:1234::/48  partner.example > ip6:2a02:898:1234::/48
  shared pool: {POOLED}: _spf.mailpool.example is a shared provider; listed at 127.0.10.1
  not listed: partner.example > ip4:10.0.0.0/8: private-use range 10.0.0.0/8 (RFC 1918)
committed COMMIT: refresh-spf: 1 partner changed
  next: review it (git show), then `publisher plan` and `publisher publish`
"""
MESSAGE = """\
refresh-spf: 1 partner changed

partner.example: +5 -0 (0 -> 544 IPv4 addresses, 0 -> 65536 IPv6 /64s)

Shared pools, listed at the zone's lower-trust code:
  partner.example > include:_spf.mailpool.example: _spf.mailpool.example is a shared provider; listed at 127.0.10.1

Not listed:
  partner.example > ip4:10.0.0.0/8: private-use range 10.0.0.0/8 (RFC 1918)
"""
GROWTH = [
    "  growth: wl.example.test would grow from 6 to 550 addresses (91.7x; the limit is 10x)",
    "  growth: wl.example.test would grow from 1 to ~2^80 IPv6 addresses (1.2e+24x; the limit is 10x)",
]


def with_spf(zones_yaml: str) -> str:
    """The sample's zones.yaml with the story's `spf:` settings on wl.example.test (any `spf:`
    block the sample has replaced)."""
    head, wl = zones_yaml.split("  - name: wl.example.test\n", 1)
    wl, rest = wl.split("\n  - name: ", 1)
    wl = re.sub(r"^    spf:.*\n(?:      .*\n)*", "", wl + "\n", flags=re.M).rstrip("\n")
    wl = re.sub(r"^    sources: .*\n", SPF_SETTINGS, wl, count=1, flags=re.M)
    return f"{head}  - name: wl.example.test\n{wl}\n  - name: {rest}"


class Operator:
    """The lists repository (the sample, with the partner declared), zones/, and the commands
    an operator types, each a process."""

    def __init__(self, tmp_path: Path, dns: AuthDns) -> None:
        self.dns = dns
        self.repo = tmp_path / "repo"
        self.lists = self.repo / "lists"
        self.zones = tmp_path / "zones"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        self.env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1", PYTHONPATH=str(ROOT))
        shutil.copytree(LISTS, self.lists)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.name", OPERATOR[0])
        self.git("config", "user.email", OPERATOR[1])
        zones_yaml = self.lists / "zones.yaml"
        zones_yaml.write_text(with_spf(zones_yaml.read_text()))
        self.commit("initial lists")

    @property
    def resolver(self) -> str:
        return f"127.0.0.1:{self.dns.port}"

    def git(self, *args: str) -> str:
        done = subprocess.run(["git", *args], cwd=self.repo, env=self.env, capture_output=True, text=True, check=True)
        return done.stdout

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--no-verify", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def declare(self, text: str = DECLARATION, message: str = "wl: partner.example by its SPF record") -> None:
        with (self.lists / "wl/partners.yaml").open("a") as f:
            f.write(text)
        self.commit(message)

    def run(self, *args: str, expect: int = 0) -> str:
        """`publisher ARGS` in the repository; its stdout and stderr, after checking its exit code."""
        cmd = [sys.executable, "-m", "publisher", "--lists", str(self.lists), "--zones", str(self.zones), *args]
        done = subprocess.run(cmd, cwd=self.repo, env=self.env, capture_output=True, text=True, timeout=60)
        out = done.stdout + done.stderr
        assert done.returncode == expect, f"publisher {' '.join(args)}: exit {done.returncode}\n{out}"
        return out

    def refresh(self, *args: str, expect: int = 0) -> str:
        return self.run("refresh-spf", "--resolver", self.resolver, *args, expect=expect)

    def current(self) -> str:
        return os.readlink(self.zones / "current")

    def serve(self, *extra: str) -> Served:
        """`publisher serve` on an ephemeral loopback port; the caller stops it (`stop`, by PID)."""
        cmd = [sys.executable, "-m", "publisher", "--lists", str(self.lists), "--zones", str(self.zones), "serve"]
        cmd += ["--listen", "127.0.0.1:0", *extra]
        proc = subprocess.Popen(
            cmd, cwd=self.repo, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        served = Served(proc, self.zones)
        threading.Thread(target=served._pump, daemon=True).start()
        served.port = int(served.wait_for(r"listening udp 127\.0\.0\.1:(\d+)")[1])
        return served


@pytest.fixture
def operator(tmp_path: Path, auth_dns: Start) -> Operator:
    require_tool("dig")
    return Operator(tmp_path, auth_dns(RECORDS))


@pytest.fixture
def published(operator: Operator) -> Iterator[tuple[Operator, Served]]:
    """The sample published, partner.example declared, refreshed and published (forced past the
    growth guard after review), and `publisher serve` answering it."""
    operator.run("publish")
    operator.declare()
    operator.refresh()
    operator.run("publish", "--force")
    served = operator.serve()
    try:
        yield operator, served
    finally:
        assert served.stop() == 0, served.log_text()


def answers(served: Served, name: str, qtype: str = "A") -> Dig:
    return dig(served.port, name, qtype)


def wait_answer(served: Served, name: str, check: Callable[[Dig], bool], timeout: float = 30.0) -> Dig:
    """Ask until `check` holds (a reload or a watch's publish landed), bounded by `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        got = answers(served, name)
        if check(got):
            return got
        assert time.monotonic() < deadline, f"{name}: {got.status} {got.answer}\n{served.log_text()}"
        time.sleep(0.1)  # polling the server's observable answers, bounded by the deadline


def rdata(got: Dig) -> list[str]:
    return sorted(record[3] for record in got.answer)


def test_a_partner_declared_by_spf_answers_after_refresh_and_publish_and_explain_tells_the_story(
    operator: Operator,
) -> None:
    operator.run("publish")
    operator.declare()
    assert "partner.example has no generated file yet" in operator.run("validate")  # a warning: exit 0

    # refresh-spf: what the record passes, the shared pool at the lower code, 10/8 refused
    out = operator.refresh()
    commit = operator.head()
    assert out == REFRESHED.replace("COMMIT", commit[:10])
    assert operator.git("log", "-1", "--format=%an <%ae>%n%B") == f"{OPERATOR[0]} <{OPERATOR[1]}>\n{MESSAGE}\n"
    assert operator.git("show", "--name-only", "--format=", "HEAD") == f"lists/{GENERATED}\n"
    text = (operator.lists / GENERATED).read_text()
    assert "  status: ok\n" in text and "10.0.0.0/8" not in text.split("\nentries:")[1]

    # plan: each entry with file:line and the refresh commit; the growth guard asks for --force
    out = operator.run("plan")
    added = re.findall(
        rf"^  \+ {GENERATED}:(\d+)  (\S+)  (127\.0\.10\.\d) 'SPF of partner\.example'  \[(\w+) ", out, re.M
    )
    assert [(net, code, sha) for _, net, code, sha in added] == [
        ("81.2.69.0/28", "127.0.10.2", commit[:10]),
        ("81.2.70.0/24", "127.0.10.2", commit[:10]),
        ("81.2.71.0/28", "127.0.10.2", commit[:10]),
        ("91.198.174.0/24", "127.0.10.1", commit[:10]),
        ("2a02:898:1234::/48", "127.0.10.2", commit[:10]),
    ], out
    lines = text.splitlines()
    for line, net, _, _ in added:
        assert lines[int(line) - 1] == f"  - ip: {net}"
    assert "guard rails: needs --force:\n" + "\n".join(GROWTH) in out

    # publish: refused by the guard, nothing written; after review, --force
    before = operator.current()
    out = operator.run("publish", expect=3)
    assert "error: publish refused by 2 guard rails; nothing was written" in out
    assert operator.current() == before
    out = operator.run("publish", "--force")
    assert "forced past 2 guard rails: growth" in out
    serial = re.search(r"^wl\.example\.test serial (\d{10}): \+5 listings \(\+544 addresses, \+2\^80 IPv6", out, re.M)
    assert serial is not None, out

    served = operator.serve()
    try:
        got = answers(served, v4q("81.2.71.5", WL))
        assert (got.status, rdata(got)) == ("NOERROR", ["127.0.10.2"])
        got = answers(served, v4q("81.2.71.5", WL), "TXT")
        assert rdata(got) == ['"81.2.71.5 is allowed by wl.example.test: SPF of partner.example"']
        assert rdata(answers(served, v6q("2a02:898:1234::25", WL))) == ["127.0.10.2"]
        assert rdata(answers(served, v4q("91.198.174.7", WL))) == ["127.0.10.1"]  # the shared pool
        assert answers(served, v4q("10.0.0.1", WL)).status == "NXDOMAIN"
        assert answers(served, v4q("81.2.71.16", WL)).status == "NXDOMAIN"  # past a:.../28
    finally:
        assert served.stop() == 0, served.log_text()

    # explain: the partner's entry, the SPF chain, the refresh commit, the serial
    out = operator.run("explain", "81.2.71.5")
    assert f"wl.example.test (serial {serial[1]}): listed" in out
    assert "  A 127.0.10.2  TXT '81.2.71.5 is allowed by wl.example.test: SPF of partner.example'" in out
    assert re.search(
        rf"^  by {GENERATED}:\d+: 81\.2\.71\.0/28 -> 127\.0\.10\.2 'SPF of partner\.example'\n"
        r"    SPF: partner\.example > a:mail\.partner\.example/28\n"
        rf"    added by Carol Curator <carol@example\.test> in {commit[:10]} 'refresh-spf: 1 partner changed' on ",
        out,
        re.M,
    ), out


def test_a_vanished_record_keeps_the_entries_for_the_grace_and_a_timeout_changes_nothing(
    published: tuple[Operator, Served], black_hole: BlackHole
) -> None:
    operator, served = published
    name = v4q("81.2.71.5", WL)
    assert rdata(answers(served, name)) == ["127.0.10.2"]

    # the partner's TXT record vanishes: the entries are kept for the grace, each with its expiry
    operator.dns.set_zones({"partner.example": PARTNER.split(")\n", 1)[1], "mailpool.example": POOL})
    out = operator.refresh(expect=1)  # cron mails: the partner's record needs a person
    assert out.endswith("needs attention: partner.example (kept): see above and the plan's notes; exit 1\n")
    kept = re.match(
        r"partner\.example \(wl\.example\.test, wl/spf/partner\.example\.yaml\): kept: partner\.example has no TXT "
        r"records since (\d{4}-\d\d-\d\d)T[\d:]+Z; 5 entries kept until (\d{4}-\d\d-\d\d)\n",
        out,
    )
    assert kept is not None, out
    since, until = dt.date.fromisoformat(kept[1]), kept[2]
    assert until == (since + dt.timedelta(days=14)).isoformat()
    assert f"  kept until {until}: 81.2.71.0/28  partner.example > a:mail.partner.example/28\n" in out
    assert operator.git("log", "-1", "--format=%B") == (
        f"refresh-spf: 1 partner changed\n\npartner.example: partner.example has no TXT records; "
        f"5 entries kept until {until}\n\n"
    )
    text = (operator.lists / GENERATED).read_text()
    assert "  status: kept\n" in text and text.count(f"    expires: {until}  # kept for the grace") == 5

    # the plan says why; publishing changes no answer (the same serial), the server still answers
    note = (
        f"note: wl.example.test: partner.example: partner.example has no TXT records since {since}; "
        f"its last good entries are kept until {until}"
    )
    assert note in operator.run("plan")
    out = operator.run("publish")
    assert note in out and "guard rails: all clear" in out
    assert re.search(r"^wl\.example\.test serial \d{10}: unchanged$", out, re.M), out
    assert rdata(answers(served, name)) == ["127.0.10.2"]
    assert rdata(answers(served, v4q("91.198.174.7", WL))) == ["127.0.10.1"]

    # a resolver that never answers: nothing changed, exit 1 (cron mails), no commit
    head, before = operator.head(), text
    out = operator.run(
        "refresh-spf", "--resolver", f"{black_hole.host}:{black_hole.port}", "--timeout", "0.5", expect=1
    )
    assert out == (
        f"{HEAD}: nothing changed: DNS lookup of partner.example TXT failed: "
        f"timeout after 0.5 s from {black_hole.host}:{black_hole.port} (at partner.example)\n"
        f"nothing changed: no commit (HEAD {head[:10]})\n"
        "not refreshed: partner.example (kept as they are; run again later)\n"
    )
    assert operator.head() == head and operator.git("status", "--porcelain") == ""
    assert (operator.lists / GENERATED).read_text() == before
    assert rdata(answers(served, name)) == ["127.0.10.2"]


LOOP = (
    '@ TXT "v=spf1 ip4:81.2.73.1 include:_a.loopy.example -all"\n'
    '_a TXT "v=spf1 ip4:81.2.73.2 include:loopy.example -all"\n'
)
_INCLUDES = [f"include:_s{i}.busy.example" for i in range(1, 12)]
LIMIT = (
    f'@ TXT ( "v=spf1 ip4:81.2.74.0/29 {" ".join(_INCLUDES[:6])} "\n'
    f'    "{" ".join(_INCLUDES[6:])} ip4:81.2.75.0/24 -all" )\n'
    + "".join(f'_s{i} TXT "v=spf1 ip4:81.2.74.{100 + i} -all"\n' for i in range(1, 12))
)
OPEN = '@ TXT "v=spf1 ip4:81.2.72.0/24 +all"\n'


def test_plus_all_a_loop_and_the_lookup_limit_are_reported_with_their_chain_and_never_guessed(
    published: tuple[Operator, Served],
) -> None:
    operator, served = published
    operator.dns.set_zones({**RECORDS, "open.example": OPEN, "loopy.example": LOOP, "busy.example": LIMIT})
    operator.declare(
        "".join(f"\n  - spf: {d}\n    owner: {d}\n" for d in ("open.example", "loopy.example", "busy.example")),
        "wl: three more partners",
    )
    out = operator.refresh("open.example", "loopy.example", "busy.example", expect=1)
    assert "\nneeds attention: open.example (failing): see above and the plan's notes; exit 1\n" in out
    blocks = out.split("\n")
    assert re.fullmatch(
        r"open\.example \(wl\.example\.test, wl/spf/open\.example\.yaml\): failing: the record of open\.example "
        r"passes every address \(`\+all` in open\.example > \+all\) since [\dT:-]+Z; nothing listed",
        blocks[0],
    ), out
    assert (
        "loopy.example (wl.example.test, wl/spf/loopy.example.yaml): ok, +2 -0 (0 -> 2 addresses)\n"
        "  + 81.2.73.1  loopy.example > ip4:81.2.73.1\n"
        "  + 81.2.73.2  loopy.example > include:_a.loopy.example > ip4:81.2.73.2\n"
        "  not listed: loopy.example > include:_a.loopy.example > include:loopy.example: "
        "include loop: loopy.example > _a.loopy.example > loopy.example\n"
    ) in out
    assert "busy.example (wl.example.test, wl/spf/busy.example.yaml): ok, +11 -0 (0 -> 18 addresses)\n" in out
    assert "  + 81.2.74.110  busy.example > include:_s10.busy.example > ip4:81.2.74.110\n" in out
    assert (
        "  not listed: busy.example > include:_s11.busy.example: the 10-lookup limit is passed here: "
        "receivers return permerror for what reaches it\n"
    ) in out
    assert "81.2.74.111" not in out and "81.2.75.0" not in out
    assert re.search(r"^committed \w{10}: refresh-spf: 3 partners changed$", out, re.M), out
    text = (operator.lists / "wl/spf/open.example.yaml").read_text()
    assert "  status: failing\n" in text and text.endswith("\nentries: []\n")
    assert '  record: "v=spf1 ip4:81.2.72.0/24 +all"\n' in text

    out = operator.run("publish")
    assert re.search(
        r"note: wl\.example\.test: open\.example: the record of open\.example passes every address "
        r"\(`\+all` in open\.example > \+all\) since \d{4}-\d\d-\d\d; nothing of it is listed",
        out,
    ), out
    assert "listings 9 -> 22; addresses 550 -> 570 (+20, -0, 0 answer differently)" in out
    wait_answer(served, v4q("81.2.73.2", WL), lambda got: rdata(got) == ["127.0.15.1"])
    assert rdata(answers(served, v4q("81.2.74.110", WL))) == ["127.0.15.1"]
    for nothing in ("81.2.72.1", "81.2.74.111", "81.2.75.1", "192.0.2.1"):  # +all's, past the limit, any
        assert answers(served, v4q(nothing, WL)).status == "NXDOMAIN", nothing
    assert rdata(answers(served, v4q("81.2.71.5", WL))) == ["127.0.10.2"]  # the first partner stays


def test_a_generated_file_edited_by_hand_is_refused_and_nothing_is_published(
    published: tuple[Operator, Served],
) -> None:
    operator, served = published
    path = operator.lists / GENERATED
    path.write_text(path.read_text().replace("  - ip: 81.2.69.0/28\n", "  - ip: 81.2.69.0/24\n"))
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if text == "generated:")
    problem = (
        f"{GENERATED}:{line}:1: {GENERATED} was changed by hand since refresh-spf wrote it (its entries no "
        "longer match its digest): publish and refresh-spf refuse it [generated-edited]\n"
        f"  fix: undo the edit (git checkout -- {GENERATED}), and change the declaration in wl/partners.yaml "
        "instead (code, include, exclude), or move the entry to a curated file\n"
    )
    out = operator.run("validate", expect=1)
    assert f"lists/{problem}" in out and "error: 1 error(s) in the lists; nothing was published" in out
    # refresh-spf refuses to write over a file with uncommitted changes
    out = operator.refresh(expect=1)
    assert out.startswith(
        f"error: refused: generated files have uncommitted changes: {GENERATED} (modified); nothing was refreshed\n"
    ), out
    # committed all the same (past the hook): publish refuses it, and what is served stays
    operator.commit("wl: widen a partner's network by hand")
    before = operator.current()
    out = operator.run("publish", expect=1)
    assert f"lists/{problem}" in out
    assert operator.current() == before
    assert answers(served, v4q("81.2.69.200", WL)).status == "NXDOMAIN"
    assert rdata(answers(served, v4q("81.2.69.5", WL))) == ["127.0.10.2"]
    # and refresh-spf refuses it too: a kept refresh would carry the /24 on under a new digest
    head = operator.head()
    out = operator.refresh(expect=1)
    assert out.startswith("error: refused: the lists of HEAD") and textwrap.indent(problem, "    ") in out, out
    assert operator.head() == head


#: A partner small enough for the growth guard: the watch publishes without --force.
SMALL = '@ TXT "v=spf1 ip4:81.2.69.0/28 a:mail.partner.example -all"\nmail A 81.2.71.5\n'


def test_serve_watch_refreshes_a_declared_partner_commits_and_serves_it_without_another_command(
    operator: Operator,
) -> None:
    operator.dns.set_zones({"partner.example": SMALL})
    operator.declare()
    operator.run("publish")
    assert re.search(r"^wl\.example\.test \(serial \d{10}\): not listed$", operator.run("explain", "81.2.69.1"), re.M)
    head = operator.head()
    served = operator.serve("--watch", "--resolver", operator.resolver, "--interval", "1")
    try:
        wait_answer(served, v4q("81.2.69.1", WL), lambda got: rdata(got) == ["127.0.10.2"])
        assert rdata(answers(served, v4q("81.2.71.5", WL))) == ["127.0.10.2"]
        assert operator.git("log", "-1", "--format=%P %s").split() == [head, "refresh-spf:", "1", "partner", "changed"]
        served.wait_for(rf"published commit {operator.head()[:10]} \(new commit\)")
    finally:
        assert served.stop() == 0, served.log_text()
    assert "(0 -> 17 addresses)" in operator.git("log", "-1", "--format=%B")
