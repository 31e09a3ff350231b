"""Real mail filters for the email-zone tests: Debian's SpamAssassin and rspamd, run privately.

Not a test module of its own: test_email_clients.py scans messages with them. Each client
gets a configuration of its own in a temporary directory and asks only our DNS server, on
loopback at the port given; nothing of the machine's /etc/spamassassin or /etc/rspamd
changes, and no query leaves loopback.

SpamAssassin: one `spamassassin --mbox` process scans a batch of messages (a fraction of a
second) with a rules directory holding only the stock TLD list (20_aux_tlds.cf: HashBL finds
only addresses ending in a real TLD) and 25_uribl.cf (its `uridnsbl_skip_domain` list, which
HashBL also skips unless a rule names an ACL), the plugins HashBL needs, and a local.cf of
`dns_server 127.0.0.1:PORT`, `dns_available yes` and the rules under test. Each message comes
back with an `X-Spam-Tests` header naming the scored rules it hit.

rspamd: the daemon in the foreground (`rspamd -f`), its top-level configuration reduced to
the stock rbl module (modules.d/rbl.conf, which merges local.d/rbl.conf: the rules under
test), one `normal` worker on an ephemeral loopback port, `dns { nameserver }` pointed at our
server, and DBDIR, RUNDIR and LOGDIR under the temporary directory; no redis, no controller.
Messages are posted to the worker's HTTP `/checkv2` (what rspamc does) and the symbols of the
JSON reply are returned. Start-up is waited for (bounded, `/ping`); the daemon is stopped by
its PID (its process group, which holds its workers).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from email.utils import format_datetime
from pathlib import Path

from conftest import free_port, require_tool

#: The stock SpamAssassin rules the private configuration keeps.
SA_RULES = Path("/usr/share/spamassassin")
SA_KEEP = ("20_aux_tlds.cf", "25_uribl.cf")
#: The plugins: Check runs the rules at all, URIDNSBL defines uridnsbl_skip_domain.
SA_PRE = """\
loadplugin Mail::SpamAssassin::Plugin::Check
loadplugin Mail::SpamAssassin::Plugin::URIDNSBL
loadplugin Mail::SpamAssassin::Plugin::HashBL
loadplugin Mail::SpamAssassin::Plugin::DNSEval
loadplugin Mail::SpamAssassin::Plugin::AskDNS
"""
SA_HARNESS = """\
dns_server 127.0.0.1:{port}
dns_available yes
add_header all Tests _TESTS(,)_
"""
SCAN_TIMEOUT = 120.0
RSPAMD_START_TIMEOUT = 90.0

#: rspamd's top level: the stock rbl module only, one scanner worker.
RSPAMD_CONF = """\
modules {{
  path = "${{PLUGINSDIR}}";
}}
.include "$CONFDIR/modules.d/rbl.conf"
options {{
  pidfile = "$RUNDIR/rspamd.pid";
  .include "$CONFDIR/options.inc"
  .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/options.inc"
}}
logging {{
  type = "file";
  filename = "$LOGDIR/rspamd.log";
  level = "info";
}}
worker "normal" {{
  bind_socket = "127.0.0.1:{port}";
  count = 1;
  .include "$CONFDIR/worker-normal.inc"
}}
"""
RSPAMD_DNS = """\
dns {{
  nameserver = ["127.0.0.1:{port}"];
}}
"""

_DATE = format_datetime(dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.UTC))


def message(sender: str, reply_to: str | None = None, body: str = "Hello.", subject: str = "Hello") -> str:
    """A plain message from `sender` (a From: header value), with an optional Reply-To."""
    head = [f"From: {sender}", "To: someone@receiver.net", f"Subject: {subject}", f"Date: {_DATE}"]
    head.append(f"Message-ID: <{abs(hash((sender, reply_to, body))):x}@sender.net>")
    if reply_to is not None:
        head.append(f"Reply-To: {reply_to}")
    head += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=us-ascii"]
    return "\n".join(head) + "\n\n" + body + "\n"


class SpamAssassin:
    """Debian's spamassassin with `rules` (local.cf text) asking 127.0.0.1:`dns_port` only."""

    def __init__(self, folder: Path, dns_port: int, rules: str) -> None:
        self.exe = require_tool("spamassassin")
        self.dir = folder
        self.rules = folder / "rules"
        self.site = folder / "site"
        self.home = folder / "home"
        for d in (self.rules, self.site, self.home):
            d.mkdir(parents=True, exist_ok=True)
        for name in SA_KEEP:
            (self.rules / name).write_text((SA_RULES / name).read_text())
        (self.site / "init.pre").write_text(SA_PRE)
        (self.site / "local.cf").write_text(SA_HARNESS.format(port=dns_port) + rules)

    def _run(self, *flags: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        argv = [self.exe, "-C", str(self.rules), "--siteconfigpath", str(self.site), "-x", "-p", "/dev/null", *flags]
        env = dict(os.environ, HOME=str(self.home))
        return subprocess.run(argv, input=stdin, env=env, capture_output=True, text=True, timeout=SCAN_TIMEOUT)

    def lint(self) -> str:
        """`spamassassin --lint`'s complaints ("" when the configuration is clean)."""
        done = self._run("--lint")
        return "" if done.returncode == 0 else done.stderr

    def scan(self, messages: Sequence[str]) -> list[set[str]]:
        """The scored rules each message hits, in order (one spamassassin process for all;
        it may scan an mbox out of order, so each message carries its index in X-Case)."""
        mbox = "".join(
            f"From sender@sender.net Mon Nov 30 10:00:00 2026\nX-Case: {i}\n{m}\n" for i, m in enumerate(messages)
        )
        done = self._run("--mbox", stdin=mbox)
        assert done.returncode == 0, done.stderr
        hits: dict[int, set[str]] = {}
        for head in re.split(r"^From sender@sender\.net .*\n", done.stdout, flags=re.M)[1:]:
            case = re.search(r"^X-Case: (\d+)$", head, re.M)
            tests = re.search(r"^X-Spam-Tests: (.*)$", head, re.M)
            assert case and tests, head
            hits[int(case[1])] = set() if tests[1].strip() == "none" else set(tests[1].strip().split(","))
        assert sorted(hits) == list(range(len(messages))), done.stdout + done.stderr
        return [hits[i] for i in range(len(messages))]


class Rspamd:
    """Debian's rspamd with `rbl_conf` as local.d/rbl.conf, asking 127.0.0.1:`dns_port` only."""

    def __init__(self, folder: Path, dns_port: int, rbl_conf: str) -> None:
        self.exe = require_tool("rspamd")
        self.dir = folder
        self.port = free_port()
        local = folder / "local.d"
        for d in (local, folder / "db", folder / "run", folder / "log"):
            d.mkdir(parents=True, exist_ok=True)
        (folder / "rspamd.conf").write_text(RSPAMD_CONF.format(port=self.port))
        (local / "options.inc").write_text(RSPAMD_DNS.format(port=dns_port))
        (local / "rbl.conf").write_text(rbl_conf)
        self.log = folder / "log" / "rspamd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [self.exe, "-f", "-c", str(self.dir / "rspamd.conf")]
        if os.geteuid() == 0:  # rspamd refuses to run its workers as root without -i
            argv += ["-u", "root", "-g", "root", "-i"]
        for var in ("LOCAL_CONFDIR", "DBDIR", "RUNDIR", "LOGDIR"):
            sub = {"LOCAL_CONFDIR": "", "DBDIR": "db", "RUNDIR": "run", "LOGDIR": "log"}[var]
            argv += ["--var", f"{var}={self.dir / sub if sub else self.dir}"]
        out = open(self.dir / "stdout.txt", "wb")
        self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        deadline = time.monotonic() + RSPAMD_START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"rspamd exited with {self.proc.returncode}: {self.tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ping", timeout=1) as reply:
                    if reply.read().strip() == b"pong":
                        return
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"rspamd did not answer /ping within {RSPAMD_START_TIMEOUT:.0f} s: {self.tail()}")
            time.sleep(0.2)  # polling the daemon's start-up, bounded by the deadline

    def tail(self, lines: int = 30) -> str:
        texts = [p.read_text(errors="replace") for p in (self.dir / "stdout.txt", self.log) if p.exists()]
        return "\n".join("\n".join(t.splitlines()[-lines:]) for t in texts)

    def check(self, text: str) -> dict[str, list[str]]:
        """The symbols rspamd gives the message, each with its options (`/checkv2`, as rspamc)."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/checkv2", data=text.encode(), method="POST")
        with urllib.request.urlopen(request, timeout=30) as reply:
            result = json.load(reply)
        return {name: list(sym.get("options", [])) for name, sym in result.get("symbols", {}).items()}

    def symbols(self, text: str) -> set[str]:
        return set(self.check(text))

    def stop(self) -> None:
        """SIGTERM to the main process (it stops its workers), then SIGKILL to the group."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
