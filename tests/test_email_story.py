"""Issue 15 end to end, as an operator sees it: an email zone through the real commands.

Every step is a process: `publisher` (validate, install-hook and git's pre-commit hook, plan,
publish, lookup, explain, history, rollback), `publisher serve --log-queries` on an ephemeral
loopback port (stopped by its PID) and dig asking it. The lists are the shipped sample without
its email zone; the operator adds one, hbl.example.test (sha1, suffix `_email`). At the end no
plain address is anywhere under zones/ (every file of every generation, the exports, the parse
cache, the history) nor in the server's log: they see hashes only.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import LISTS, ROOT, require_tool
from publisher.cli.report import history_lines
from publisher.publish.history import HistoryRecord
from test_server import Dig, Served, dig

ZONE = "hbl.example.test"
OPERATOR = ("Erin Abuse", "erin@example.test")
ZONE_YAML = """
  # Email-address blocklist, queried as <sha1>._email.hbl.example.test
  - name: hbl.example.test
    kind: email
    role: block
    sources: [hbl/*.yaml, hbl/*.txt]
    code: 127.0.2.2
    txt: "Address listed by {zone}: {reason}"
    email:
      suffix: _email
"""
CURATED = """\
entries:
  - email: drop@fraud.example
    reason: drop box in advance-fee fraud (Reply-To)
    ticket: ABUSE-1501
  - email: John.Doe+invoice@gmail.com
    code: 127.0.2.3
    reason: phishing sender impersonating a supplier
  - email: prize@lottery.example.net
    reason: lottery scam reply address
"""
BAD = """\
  - email: '"john doe"@fraud.example'
    reason: quoted local part
  - hash: 0123456789abcdef0123456789abcdef
    reason: an md5 by mistake
  - email: johndoe@googlemail.com
    reason: the same box again
"""


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


#: A partner's ready hash of payout@fraud.example: the address itself is never written anywhere.
PAYOUT = sha1("payout@fraud.example")
FEED = f""":127.0.2.2:Address seen in spam
refunds@phish.example
billing@fake-bank.example :127.0.2.3:Phishing sender
{PAYOUT}
"""
RUN = [f"run{i}@spamrun.example" for i in range(1, 101)]
#: Every address written in the zone's files, as written and as normalised: none may reach zones/.
ADDRESSES = [
    "drop@fraud.example",
    "John.Doe+invoice@gmail.com",
    "johndoe@gmail.com",
    "prize@lottery.example.net",
    "refunds@phish.example",
    "billing@fake-bank.example",
    "john doe",
    "johndoe@googlemail.com",
    *RUN,
]
JOHN = sha1("johndoe@gmail.com")  # John.Doe+invoice@gmail.com, dots and tag removed


def name(label: str) -> str:
    return f"{label}._email.{ZONE}"


class Operator:
    """The lists repository (the sample without its email zone), zones/, and the commands an
    operator types, each a process."""

    def __init__(self, tmp_path: Path) -> None:
        self.repo = tmp_path / "repo"
        self.lists = self.repo / "lists"
        self.zones = tmp_path / "zones"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        self.env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1", PYTHONPATH=str(ROOT))
        shutil.copytree(LISTS, self.lists)
        shutil.rmtree(self.lists / "ebl")
        zones_yaml = self.lists / "zones.yaml"
        zones_yaml.write_text(zones_yaml.read_text().split("\n  # Email-address blocklist", 1)[0] + "\n")
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.name", OPERATOR[0])
        self.git("config", "user.email", OPERATOR[1])
        self.commit("initial lists")

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=self.repo, env=self.env, capture_output=True, text=True, check=check)

    def commit(self, message: str) -> str:
        """Commit everything through the pre-commit hook (when installed); the new HEAD."""
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").stdout.strip()

    def write(self, rel: str, text: str) -> None:
        path = self.lists / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def run(self, *args: str, expect: int = 0) -> str:
        """`publisher ARGS` in the repository; its stdout and stderr, after checking its exit code."""
        cmd = [sys.executable, "-m", "publisher", "--lists", str(self.lists), "--zones", str(self.zones), *args]
        done = subprocess.run(cmd, cwd=self.repo, env=self.env, capture_output=True, text=True, timeout=120)
        out = done.stdout + done.stderr
        assert done.returncode == expect, f"publisher {' '.join(args)}: exit {done.returncode}\n{out}"
        return out

    def current(self) -> str:
        return os.readlink(self.zones / "current")

    def serve(self) -> Served:
        """`publisher serve --log-queries` on an ephemeral loopback port; the caller stops it by PID."""
        cmd = [sys.executable, "-m", "publisher", "--lists", str(self.lists), "--zones", str(self.zones), "serve"]
        cmd += ["--listen", "127.0.0.1:0", "--log-queries"]
        proc = subprocess.Popen(
            cmd, cwd=self.repo, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        served = Served(proc, self.zones)
        threading.Thread(target=served._pump, daemon=True).start()
        served.port = int(served.wait_for(r"listening udp 127\.0\.0\.1:(\d+)")[1])
        return served


def rdata(got: Dig) -> list[str]:
    return sorted(record[3] for record in got.answer)


def wait_answer(served: Served, qname: str, check: Callable[[Dig], bool], timeout: float = 30.0) -> Dig:
    """Ask until `check` holds (the server reloaded what publish wrote), bounded by `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        got = dig(served.port, qname)
        if check(got):
            return got
        assert time.monotonic() < deadline, f"{qname}: {got.status} {got.answer}\n{served.log_text()}"
        time.sleep(0.1)  # polling the server's observable answers, bounded by the deadline


def serial_of(out: str, change: str) -> int:
    found = re.search(rf"^{re.escape(ZONE)} serial (\d{{10}}): {re.escape(change)}$", out, re.M)
    assert found is not None, out
    return int(found[1])


@pytest.fixture
def operator(tmp_path: Path) -> Operator:
    require_tool("dig")
    op = Operator(tmp_path)
    op.run("publish")
    assert "installed" in op.run("install-hook")
    return op


def test_an_email_zone_from_its_first_commit_to_a_rollback_with_hashes_only_in_zones_and_logs(
    operator: Operator,
) -> None:
    op = operator
    # the operator adds the zone, a curated file and a small feed: validate is clean
    (op.lists / "zones.yaml").write_text((op.lists / "zones.yaml").read_text() + ZONE_YAML)
    op.write("hbl/curated.yaml", CURATED)
    op.write("hbl/feed.txt", FEED)
    assert op.run("validate") == "ok: 4 zones, 36 entries, 0 warnings\n"

    # a bad commit: the hook refuses it, each problem located with its fix, and nothing is committed
    first = op.head()
    op.write("hbl/curated.yaml", CURATED + BAD)
    op.git("add", "-A")
    refused = op.git("commit", "-q", "-m", "hbl: new zone, with mistakes", check=False)
    assert refused.returncode != 0 and op.head() == first
    assert refused.stderr == (
        "lists/hbl/curated.yaml:10:12: '\"john doe\"@fraud.example' has a quoted local part [bad-email]\n"
        "  fix: list the address as clients extract it: SpamAssassin and rspamd do not query quoted local parts\n"
        "lists/hbl/curated.yaml:12:11: '0123456789abcdef0123456789abcdef' looks like an md5, but this zone "
        "hashes with sha1 (40 hex digits) [bad-hash]\n"
        "  fix: list sha1 hashes here, or the addresses themselves (the zone hashes them)\n"
        "lists/hbl/curated.yaml:14:5: 'johndoe@googlemail.com' is the same address as line 5 "
        "('John.Doe+invoice@gmail.com'): both are 'johndoe@gmail.com' once normalised [duplicate]\n"
        "  first at: lists/hbl/curated.yaml:5:5\n"
        "  fix: remove one of the two entries (keep the one with the better metadata)\n"
        "commit refused: 3 error(s) in the staged lists\n"
    )
    op.write("hbl/curated.yaml", CURATED)
    added = op.commit("hbl: a new email zone")[:10]  # through the hook

    # plan: the new zone's entries as written, the author and commit, the count of addresses
    out = op.run("plan")
    tag = f"[{added} Erin Abuse "
    plan = out.split(f"{ZONE}: serial ", 1)[1].splitlines()
    assert plan[1] == "  listings 0 -> 6; email addresses 0 -> 6 (+6, -0, 0 answer differently)", out
    assert [line.split(tag)[0] for line in plan[2:8]] == [
        "  + hbl/curated.yaml:2  drop@fraud.example  127.0.2.2 'drop box in advance-fee fraud (Reply-To)'  ",
        "  + hbl/curated.yaml:5  John.Doe+invoice@gmail.com  127.0.2.3 'phishing sender impersonating a supplier'  ",
        "  + hbl/curated.yaml:8  prize@lottery.example.net  127.0.2.2 'lottery scam reply address'  ",
        "  + hbl/feed.txt:2  refunds@phish.example  127.0.2.2 'Address seen in spam'  ",
        "  + hbl/feed.txt:3  billing@fake-bank.example :127.0.2.3:Phishing sender  127.0.2.3 'Phishing sender'  ",
        f"  + hbl/feed.txt:4  {PAYOUT}  127.0.2.2 'Address seen in spam'  ",
    ], out
    assert all(tag in line for line in plan[2:8]) and plan[8] == "guard rails: all clear", out

    out = op.run("publish")
    first_serial = serial_of(out, "new zone, +6 listings (+6 email addresses)")

    served = op.serve()
    try:
        # the server answers the hash of the normalised address, A and TXT; the test point; nothing else
        assert rdata(dig(served.port, name(JOHN))) == ["127.0.2.3"]
        got = dig(served.port, name(JOHN), "TXT")
        assert rdata(got) == ['"Address listed by hbl.example.test: phishing sender impersonating a supplier"']
        assert rdata(dig(served.port, name(PAYOUT), "TXT")) == [
            '"Address listed by hbl.example.test: Address seen in spam"'
        ]
        assert rdata(dig(served.port, name(sha1("billing@fake-bank.example")))) == ["127.0.2.3"]
        assert rdata(dig(served.port, name("test"))) == ["127.0.0.2"]
        assert rdata(dig(served.port, name("test"), "TXT")) == [
            '"Address listed by hbl.example.test: RFC 5782 test point"'
        ]
        assert dig(served.port, name(sha1("nobody@example.org"))).status == "NXDOMAIN"
        assert dig(served.port, f"test.{ZONE}").status == "NXDOMAIN"
        # the address as written, hashed without the normalisation: not listed
        assert dig(served.port, name(sha1("john.doe+invoice@gmail.com"))).status == "NXDOMAIN"

        # lookup and explain by the address as a mail shows it: capitals, dots and a +tag
        asked = "J.O.H.N.Doe+Newsletter@GoogleMail.com"
        assert op.run("lookup", asked) == (
            f"{ZONE}: listed\n"
            "  normalised: johndoe@gmail.com, hashed with sha1\n"
            f"  DNS name: {name(JOHN)}\n"
            '  A 127.0.2.3  TXT "Address listed by hbl.example.test: phishing sender impersonating a supplier"\n'
            "  hbl/curated.yaml:5: John.Doe+invoice@gmail.com -> 127.0.2.3 'phishing sender impersonating a supplier'\n"
        )
        out = op.run("explain", asked)
        lines = out.splitlines()
        assert lines[0].startswith(f"{asked}: in what is published now (commit {added}, "), out
        assert lines[1:7] == [
            f"{ZONE} (serial {first_serial}): listed",
            "  normalised: johndoe@gmail.com, hashed with sha1",
            f"  DNS name: {name(JOHN)}",
            "  A 127.0.2.3  TXT 'Address listed by hbl.example.test: phishing sender impersonating a supplier'",
            "  by hbl/curated.yaml:5: John.Doe+invoice@gmail.com -> 127.0.2.3 "
            "'phishing sender impersonating a supplier'",
            f"    added by Erin Abuse <erin@example.test> in {added} 'hbl: a new email zone' on "
            + lines[6].rsplit(" on ", 1)[-1],
        ], out
        out = op.run("explain", "Payout+x@Fraud.example")  # listed by the partner's hash alone
        assert f"  by hbl/feed.txt:4: {PAYOUT} -> 127.0.2.2 'Address seen in spam'\n" in out

        # a spam run's 100 senders: 6 -> 106 needs --force (growth), then the server answers them
        op.write("hbl/spamrun.txt", ":127.0.2.2:Address seen in a spam run\n" + "".join(a + "\n" for a in RUN))
        op.commit("hbl: a spam run's 100 senders")
        out = op.run("publish", expect=3)
        assert "  growth: hbl.example.test would grow from 6 to 106 email addresses (17.7x; the limit is 10x)" in out
        out = op.run("publish", "--force")
        run_serial = serial_of(out, "+100 listings (+100 email addresses)")
        run50 = name(sha1("run50@spamrun.example"))
        wait_answer(served, run50, lambda got: rdata(got) == ["127.0.2.2"])

        # 90 of them delisted: the shrink guard refuses, nothing is written; --force publishes
        op.write("hbl/spamrun.txt", ":127.0.2.2:Address seen in a spam run\n" + "".join(a + "\n" for a in RUN[:10]))
        op.commit("hbl: most of the spam run delisted")
        before = op.current()
        out = op.run("publish", expect=3)
        assert "listings 106 -> 16; email addresses 106 -> 16 (+0, -90, 0 answer differently)" in out
        assert (
            "error: publish refused by 2 guard rails; nothing was written (look at the plan, then rerun with "
            "--force if it is intended):\n"
            "  shrink: hbl.example.test would lose 90 of its 106 listings (85%; the limit is 25% for zones of "
            "50 listings or more)\n"
            "  shrink: hbl.example.test would lose 90 of its 106 email addresses (85%; the limit is 25% for "
            "zones of 50 listings or more)\n"
        ) in out
        assert op.current() == before and rdata(dig(served.port, run50)) == ["127.0.2.2"]
        out = op.run("publish", "--force")
        assert "forced past 2 guard rails: shrink\n" in out
        shrunk = serial_of(out, "-90 listings (-90 email addresses)")
        wait_answer(served, run50, lambda got: got.status == "NXDOMAIN")
        assert rdata(dig(served.port, name(sha1("run10@spamrun.example")))) == ["127.0.2.2"]

        # history shows each publish of the zone, the forced one with its rule once
        out = op.run("history")
        assert re.search(
            r"  publish   \w{10}  Erin Abuse  'hbl: most of the spam run delisted' "
            r"forced past 2 guard rails: shrink\n"
            rf"    {ZONE} {shrunk} \(\+0/-90\)\n",
            out,
        ), out
        assert f"    {ZONE} {run_serial} (+100/-0)\n" in out and f"    {ZONE} {first_serial} (+6/-0)\n" in out

        # rollback to the serial with the 100 senders: a new serial, and the answers come back
        out = op.run("rollback", str(run_serial))
        assert f"(serial {run_serial} of {ZONE}) under new serials" in out
        back = serial_of(out, "+90 listings (+90 email addresses)")
        assert back > shrunk
        wait_answer(served, run50, lambda got: rdata(got) == ["127.0.2.2"])
        assert rdata(dig(served.port, name(sha1("run100@spamrun.example")), "TXT")) == [
            '"Address listed by hbl.example.test: Address seen in a spam run"'
        ]
        assert rdata(dig(served.port, name(JOHN))) == ["127.0.2.3"]
    finally:
        assert served.stop() == 0, served.log_text()

    # hashes only: in the exports, and nowhere under zones/ an address (every file of every generation)
    log = served.log_text()
    assert f"{name(JOHN)}" in log.lower(), log  # the queries were logged, by their hashes
    exports = {p.name: p.read_text() for p in (op.zones / "current").glob(f"{ZONE}.*") if p.suffix != ".snap"}
    assert sorted(exports) == [f"{ZONE}.rbldnsd", f"{ZONE}.zone"]
    assert all(JOHN in text and PAYOUT in text for text in exports.values())
    files = [p for p in op.zones.rglob("*") if p.is_file() and not p.is_symlink()]
    assert len({p.parent for p in files if p.parent.name.startswith("gen-")}) >= 4  # those kept
    assert any(p.parent.name == ".cache" for p in files)
    for address in ADDRESSES:
        needle = address.encode()
        assert [p for p in files if needle in p.read_bytes()] == [], address
        assert address not in log, address
    assert "@" not in log, log


def test_history_names_a_rule_forced_on_two_measures_once() -> None:
    """A zone shrinking in listings and in addresses breaks the shrink rule twice: the publish says
    `forced past 2 guard rails: shrink`, and history says the same (it said `forced: shrink, shrink`)."""
    record = HistoryRecord(
        published_at="2026-11-30T09:18:29+00:00",
        action="publish",
        commit="94535cd77d" + "0" * 30,
        author="Erin Abuse",
        email=None,
        committed_at=None,
        summary="hbl: most of the spam run delisted",
        head=None,
        generation="gen-20261130T091829Z-a418ea",
        forced=("shrink", "shrink", "growth"),
        dropped=(),
        zones={},
    )
    assert history_lines([record])[0] == (
        "2026-11-30T09:18:29+00:00  publish   94535cd77d  Erin Abuse  'hbl: most of the spam run delisted' "
        "forced past 3 guard rails: growth, shrink"
    )
