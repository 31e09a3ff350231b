"""A real MTA end to end: Debian's Postfix asks a real resolver (unbound), which asks our
server for the zones published from a git repository, and rejects or accepts mail.

    swaks (client 127.0.0.x) --SMTP--> Postfix smtpd --res_query--> /etc/resolv.conf
        --> unbound 127.0.0.1:53 --stub-zone--> our server 127.0.0.1:5353 <-- zones/ <-- publish

How Postfix is kept away from the machine's resolver. Postfix resolves through the C
library, which reads /etc/resolv.conf, and resolv.conf cannot name a port: the resolver
Postfix asks has to listen on port 53. So the test makes a private *network namespace*
(its own loopback, where port 53 of 127.0.0.1 is free and nothing else listens) and a
private *mount namespace* in which a resolv.conf of ours is bind-mounted over
/etc/resolv.conf. One holder process (`unshare --mount --net ... sleep`) keeps both
namespaces alive; every program of the chain (our server, unbound, Postfix's master, swaks,
dig) is started inside them with `nsenter --target HOLDER --mount --net`. Nothing on the
machine changes: its /etc/resolv.conf (checked before and after), its network, its
/etc/postfix and its default Postfix instance are untouched, and no packet can leave the
namespace, whose only interface is its loopback. Fixed ports (53, 5353, 25, 2526, 2527) are
safe there: a fresh network namespace has no other listener to collide with.
(`smtp_dns_resolver_options` / RES_OPTIONS cannot change the server address, and binding
port 53 on the host's loopback would touch the machine.)

Postfix is a separate instance: its own main.cf/master.cf, queue and data directories
in a temporary directory (removed afterwards), its master started in the foreground (`master -c DIR -s`) with
the log on stdout (`maillog_file = /dev/stdout`), which the test reads. Its client
restrictions are the `postfix-smtpd` snippet of docs/clients.md, read from there, and
unbound's stub zones its `unbound-stub` snippet: the page shows what this test runs.
`mynetworks` holds no loopback address, so no test client is exempt. Mail for
mail.example.test is accepted and thrown away by the `discard` transport. A second smtpd
(port 2526) checks only the blocklist: it shows what the allowlist saves a partner from.
postscreen (port 2527) scores clients with the `postfix-postscreen` snippet's weights.

Caching, twice. unbound keeps the NXDOMAIN it got before a publish for the zone's SOA
minimum (300 s), as any resolver would: the test shows that, then flushes the zone with
`unbound-control flush_zone` (what an operator does after an urgent listing); it does not
turn unbound's cache off. And each smtpd process keeps its own DNSBL answers across SMTP
sessions for its whole life (up to `max_use` connections, `max_idle` seconds): the lab
sets `max_use = 1` so that "the next connection" is served by a fresh process.

Stories, on a temporary git copy of lists/ with a lab.yaml added to bl/ and wl/:
127.0.0.77 (blocklisted) gets a 554 carrying our TXT; 127.0.0.98 (unlisted) is
accepted; a sender domain in dbl is refused by reject_rhsbl_sender; after a commit and
`python -m publisher publish` list 127.0.0.99, its next connection is refused; the partner
127.0.0.88 (allowlisted) still passes, through smtpd and postscreen, after a blocklist feed
lists it, which the covers-protected guard rail lets through only with `publish --force`.

Error answers (127.255.255.0/24, README "Error answers"): `error_answer_story` makes our
server answer an error code to the resolver and shows the documented restrictions
accept mail from a listed client, and postscreen from a fresh one, while the bare
`reject_rbl_client bl.example.test` of port 2526 rejects it with the error's TXT. How
the server is made to answer the code is the story's parameter: `over_rate_limit` (the
server restarted with `--rrl-answer code` and the resolver's /24 over its rate),
`acl_answer_for_the_resolver` (a zones.yaml `acl` rule `answer` for 127.0.0.1, the address
unbound asks from, published), and `with_a_wrong_key` (the three zones `keys: required`, the
server given a key file made by `publisher keys new`, Postfix restarted with docs/clients.md's
keyed snippet and a key the server does not know; then with the good key, which rejects the
listed client as usual).
unbound caches the error answers for their TTL (60 s) like any other: the story flushes
the three zones before and after.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NoReturn

import pytest
from tests.conftest import IN_CI, LISTS, ROOT, require_tool, stop_process
from tests.doc_snippets import CLIENTS_DOC, snippet
from tests.test_vcs import BOB, commit_all, init_repo, write

from publisher import errorcodes
from publisher.addresses import format_v4
from publisher.publish.manifest import read_manifest

SERVER_PORT = 5353  # ours, inside the private network namespace
SMTP_PORT = 25  # Postfix with the documented restrictions
BL_ONLY_PORT = 2526  # Postfix with reject_rbl_client bl.example.test alone
POSTSCREEN_PORT = 2527  # postscreen with the documented weights, then the documented smtpd
START_TIMEOUT = 20.0
MASTER = Path("/usr/lib/postfix/sbin/master")  # Postfix's master, run in the foreground
RECIPIENT = "postmaster@mail.example.test"

SPAMMER, PARTNER, STRANGER, NEWCOMER = "127.0.0.77", "127.0.0.88", "127.0.0.98", "127.0.0.99"
SAMPLE_ZONES = ("bl.example.test", "wl.example.test", "dbl.example.test")  # what Postfix queries
EMAIL_ZONE = "ebl.example.test"  # the sample's email zone: for content filters, not for Postfix

LAB_BL = f"""\
entries:
  - ip: {SPAMMER}
    reason: spam trap hit from the lab
    added: 2026-11-20
"""
LAB_WL = f"""\
entries:
  - ip: {PARTNER}
    owner: Lab Partner Ltd
    contact: postmaster@partner.example
    code: 127.0.10.2
    reason: partner outbound gateway
    added: 2026-11-20
"""
NEWCOMER_BL = f"""\
  - ip: {NEWCOMER}
    reason: dictionary attack seen at 10:02
    added: 2026-11-27
"""
PARTNER_FEED = f"""\
# A third-party feed that also lists the partner's gateway.
:127.0.0.5:Botnet traffic from $
{PARTNER}
"""

#: The lab's own part of unbound.conf; the zones part is docs/clients.md's `unbound-stub`.
UNBOUND_CONF = """\
server:
    interface: 127.0.0.1@53
    do-ip6: no
    username: ""
    chroot: ""
    directory: "{dir}"
    pidfile: "{dir}/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 1
    num-threads: 1
    module-config: "iterator"
    # only our zones exist here: refuse every other name at once (no root hints needed)
    local-zone: "." refuse
remote-control:
    control-enable: yes
    control-interface: "{dir}/control.sock"
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.example.test
mydomain = example.test
myorigin = $myhostname
mydestination = mail.example.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
# no loopback here: every test client goes through the restrictions
mynetworks = 192.0.2.250/32
local_recipient_maps =
alias_maps =
alias_database =
local_transport = discard:
default_transport = discard:
relay_transport = discard:
smtputf8_enable = no
maillog_file = /dev/stdout
# smtpd caches DNSBL answers across sessions for its life (max_use connections, max_idle
# seconds): one connection per process, so that "the next connection" asks DNS again
max_use = 1
# postscreen waits this long for its DNSBL answers too: they arrive in milliseconds here, but
# 1 s let a loaded machine (a full test run) pass a blocklisted client once in a while
postscreen_greet_wait = 3s
# log a client the allowlist lets in ("permit_dnswl_client"), not only the rejections
smtpd_log_access_permit_actions = permit_dnswl_client
"""

MASTER_CF = f"""\
127.0.0.1:{SMTP_PORT} inet n - n - - smtpd
127.0.0.1:{BL_ONLY_PORT} inet n - n - - smtpd
  -o {{ smtpd_client_restrictions = reject_rbl_client bl.example.test }}
127.0.0.1:{POSTSCREEN_PORT} inet n - n - 1 postscreen
smtpd     pass  - - n - - smtpd
dnsblog   unix  - - n - 0 dnsblog
tlsproxy  unix  - - n - 0 tlsproxy
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
proxymap  unix  - - n - - proxymap
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""

#: Postfix's queue directory layout (what `postfix check` would create), owner-only unless said.
QUEUE_DIRS = (
    "active",
    "bounce",
    "corrupt",
    "defer",
    "deferred",
    "flush",
    "hold",
    "incoming",
    "private",
    "saved",
    "trace",
)


class Lines:
    """The lines a child process writes to one pipe, read by a thread so it never blocks."""

    def __init__(self, name: str, pipe: IO[str] | None) -> None:
        self.name = name
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(pipe,), name=f"lines-{name}", daemon=True)
        self._thread.start()

    def _pump(self, pipe: IO[str] | None) -> None:
        assert pipe is not None
        for line in iter(pipe.readline, ""):
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def so_far(self) -> list[str]:
        """Every line written until now, waited for or not."""
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return self.seen
            if line is not None:
                self.seen.append(line)

    def wait_for(self, pattern: str, timeout: float = START_TIMEOUT) -> str:
        """The next line matching the regex `pattern`; fails with what was seen so far."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                pytest.fail(f"{self.name} exited while waiting for {pattern!r}:\n" + "\n".join(self.seen[-30:]))
            self.seen.append(line)
            if regex.search(line):
                return line
        pytest.fail(f"{self.name}: no line matching {pattern!r} within {timeout}s:\n" + "\n".join(self.seen[-30:]))


@dataclass
class Lab:
    """The namespaces, the processes in them, and the list repository that feeds them."""

    tmp: Path
    lists: Path
    zones: Path
    holder: subprocess.Popen[str] | None = None
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    server: subprocess.Popen[str] | None = None
    server_log: Lines | None = None
    postfix_log: Lines | None = None
    postfix_etc: Path | None = None
    postfix_master: subprocess.Popen[str] | None = None

    def inside(self, *argv: str) -> list[str]:
        assert self.holder is not None
        return ["nsenter", f"--target={self.holder.pid}", "--mount", "--net", "--", *argv]

    def start(self, name: str, *argv: str, env: dict[str, str] | None = None) -> Lines:
        proc = subprocess.Popen(
            self.inside(*argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.procs.append(proc)
        return Lines(name, proc.stdout)

    def serve(self, *flags: str) -> None:
        """(Re)start our server on 127.0.0.1:5353 with `flags` added; wait until it listens."""
        if self.server is not None:
            stop_process(self.server)
            self.procs.remove(self.server)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        argv = ["--zones", str(self.zones), "serve", "--listen", f"127.0.0.1:{SERVER_PORT}", *flags]
        self.server_log = self.start("publisher", sys.executable, "-m", "publisher", *argv, env=env)
        self.server = self.procs[-1]
        self.server_log.wait_for("listening udp")

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.inside(*argv), capture_output=True, text=True, timeout=60)

    def stop(self) -> None:
        for proc in reversed([*self.procs, *([self.holder] if self.holder else [])]):
            stop_process(proc)

    # --- what the tests do -----------------------------------------------------------

    def send(self, client: str, sender: str = "alice@sender.example", port: int = SMTP_PORT) -> str:
        """One SMTP transaction from `client`: swaks's transcript."""
        done = self.run(
            "swaks",
            "--server",
            "127.0.0.1",
            "--port",
            str(port),
            "--local-interface",
            client,
            "--from",
            sender,
            "--to",
            RECIPIENT,
            "--helo",
            "client.example",
            "--timeout",
            "20",
            "--header",
            "Subject: end to end",
            "--body",
            "hello from the test",
        )
        return done.stdout + done.stderr

    def a(self, name: str, server: str | None = None) -> list[str]:
        """The A records for `name` from the resolver (or from `server`, ADDR@PORT, directly)."""
        at = ["@" + server.split("@")[0], "-p", server.split("@")[1]] if server else []
        return self.run("dig", "+short", "+time=5", "+tries=1", *at, name, "A").stdout.split()

    def txt(self, name: str) -> str:
        """The TXT record the resolver (unbound, through resolv.conf) gives for `name`."""
        done = self.run("dig", "+short", "+time=5", "+tries=1", name, "TXT")
        return "".join(part for part in re.findall(r'"((?:[^"\\]|\\.)*)"', done.stdout))

    def publish(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "publisher",
                "--lists",
                str(self.lists),
                "--zones",
                str(self.zones),
                "publish",
                *args,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    def published(self, *args: str) -> None:
        """`publish` must succeed; then wait until the running server serves the new serial."""
        done = self.publish(*args)
        assert done.returncode == 0, done.stdout + done.stderr
        manifest = read_manifest(self.zones)
        assert manifest is not None and self.server_log is not None
        serial = manifest.zones["bl.example.test"].serial
        self.server_log.wait_for(rf"zone bl\.example\.test now serial {serial}\b")

    def flush(self, zone: str) -> None:
        done = self.run("unbound-control", "-c", str(self.tmp / "unbound" / "unbound.conf"), "flush_zone", zone)
        assert done.returncode == 0, done.stdout + done.stderr


def _reply(transcript: str, code: str) -> str:
    """The server's reply line starting with `code` (swaks marks replies `<-` or `<**`)."""
    for line in transcript.splitlines():
        m = re.match(r"<(?:-|\*\*) +(.*)$", line)
        if m and m[1].startswith(code):
            return m[1]
    raise AssertionError(f"no {code} reply in:\n{transcript}")


def _unavailable(message: str) -> NoReturn:
    """Like require_tool: skip here, fail under CI=true."""
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it", pytrace=False)
    pytest.skip(message)


def _can_unshare() -> None:
    done = subprocess.run(["unshare", "--mount", "--net", "true"], capture_output=True, text=True)
    if done.returncode != 0:
        _unavailable(f"cannot make private namespaces here (unshare: {done.stderr.strip()}); needs root")


def main_cf(root: Path) -> str:
    """The lab's main.cf: its own settings, then the documented snippets as they are."""
    return MAIN_CF.format(dir=root) + snippet("postfix-smtpd") + snippet("postfix-postscreen")


def _postfix_instance(root: Path) -> Path:
    """main.cf, master.cf, queue and data directories for a private Postfix instance."""
    import grp
    import pwd

    etc, spool, data = root / "etc", root / "queue", root / "data"
    for d in (etc, spool, data):
        d.mkdir()
    (etc / "main.cf").write_text(main_cf(root))
    (etc / "master.cf").write_text(MASTER_CF)
    # postconf names every parameter it does not know (a misspelt snippet, for one)
    checked = subprocess.run(["postconf", "-c", str(etc), "-n"], capture_output=True, text=True)
    assert checked.returncode == 0 and not checked.stderr, checked.stderr
    postfix, postdrop = pwd.getpwnam("postfix").pw_uid, grp.getgrnam("postdrop").gr_gid
    (spool / "pid").mkdir(mode=0o755)
    for name, mode, group in [
        *((d, 0o700, -1) for d in QUEUE_DIRS),
        ("public", 0o710, postdrop),
        ("maildrop", 0o1730, postdrop),
    ]:
        path = spool / name
        path.mkdir()
        os.chown(path, postfix, group)
        path.chmod(mode)
    os.chown(data, postfix, -1)
    return etc


def _unbound_conf(root: Path) -> Path:
    root.mkdir()
    stubs = snippet("unbound-stub")
    assert f"stub-addr: 127.0.0.1@{SERVER_PORT}" in stubs  # where the lab's server listens
    conf = root / "unbound.conf"
    conf.write_text(UNBOUND_CONF.format(dir=root) + stubs)
    return conf


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    for tool in ("unshare", "nsenter", "ip", "dig", "unbound", "unbound-control", "swaks", "postfix"):
        require_tool(tool)
    if not MASTER.exists():
        _unavailable(f"{MASTER} is missing (apt-get install postfix)")
    _can_unshare()
    resolv_before = Path("/etc/resolv.conf").read_bytes()

    tmp = tmp_path_factory.mktemp("mail-lab")
    lists = init_repo(tmp / "repo", lists_from=LISTS)
    write(lists, {"bl/lab.yaml": LAB_BL, "wl/lab.yaml": LAB_WL})
    commit_all(lists.parent, "lab: a spam trap hit and a partner gateway on loopback")
    lab = Lab(tmp=tmp, lists=lists, zones=tmp / "zones")
    first = lab.publish()
    assert first.returncode == 0, first.stdout + first.stderr

    (tmp / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:5 attempts:1\n")
    unbound_conf = _unbound_conf(tmp / "unbound")
    # Postfix's daemons open their data directory by path as the postfix user, and pytest's
    # tmp dirs are root-only: the instance lives in a directory of its own, searchable by all
    postfix_root = Path(tempfile.mkdtemp(prefix="e2e-postfix-"))
    holder = (
        f"ip link set lo up && mount --bind {tmp / 'resolv.conf'} /etc/resolv.conf && echo ready && exec sleep infinity"
    )
    try:
        postfix_root.chmod(0o711)
        postfix_etc = _postfix_instance(postfix_root)
        lab.holder = subprocess.Popen(
            ["unshare", "--mount", "--net", "--", "sh", "-c", holder],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        Lines("namespace holder", lab.holder.stdout).wait_for("^ready$")
        lab.serve()
        lab.start("unbound", "unbound", "-d", "-c", str(unbound_conf)).wait_for("start of service")
        lab.postfix_log = lab.start("postfix", str(MASTER), "-c", str(postfix_etc), "-s")
        lab.postfix_etc, lab.postfix_master = postfix_etc, lab.procs[-1]
        lab.postfix_log.wait_for("daemon started")
        yield lab
    finally:
        lab.stop()
        shutil.rmtree(postfix_root, ignore_errors=True)
        assert Path("/etc/resolv.conf").read_bytes() == resolv_before, "the machine's /etc/resolv.conf changed"


def test_the_resolver_in_the_namespace_is_ours_and_answers_from_our_server(lab: Lab) -> None:
    assert lab.run("cat", "/etc/resolv.conf").stdout.startswith("nameserver 127.0.0.1\n")
    assert lab.txt("2.0.0.127.bl.example.test") == "Listed by bl.example.test: RFC 5782 test point"
    assert lab.txt("77.0.0.127.bl.example.test") == "Listed by bl.example.test: spam trap hit from the lab"


def test_a_blocklisted_client_gets_a_554_carrying_our_txt(lab: Lab) -> None:
    transcript = lab.send(SPAMMER)
    reject = _reply(transcript, "554")
    txt = lab.txt("77.0.0.127.bl.example.test")
    assert reject == (f"554 5.7.1 Service unavailable; Client host [{SPAMMER}] blocked using bl.example.test; {txt}")
    assert "spam trap hit from the lab" in reject
    assert "Ok: queued" not in transcript
    assert lab.postfix_log is not None
    lab.postfix_log.wait_for(rf"NOQUEUE: reject: RCPT from unknown\[{re.escape(SPAMMER)}\]: 554 ")


def test_an_unlisted_client_is_accepted_and_delivered(lab: Lab) -> None:
    transcript = lab.send(STRANGER)
    queued = _reply(transcript, "250 2.0.0 Ok: queued as")
    queue_id = queued.rsplit(" ", 1)[1]
    assert lab.postfix_log is not None
    lab.postfix_log.wait_for(rf"discard\[\d+\]: {queue_id}: to=<{re.escape(RECIPIENT)}>.*status=sent")


def test_postscreen_with_the_documented_weights_drops_a_blocklisted_client(lab: Lab) -> None:
    reject = _reply(lab.send(SPAMMER, port=POSTSCREEN_PORT), "550")  # 127.0.0.2 weighs 3: the threshold
    assert reject == f"550 5.7.1 Service unavailable; client [{SPAMMER}] blocked using bl.example.test"
    assert lab.postfix_log is not None
    lab.postfix_log.wait_for(rf"postscreen\[\d+\]: DNSBL rank 3 for \[{re.escape(SPAMMER)}\]")
    _reply(lab.send(STRANGER, port=POSTSCREEN_PORT), "250 2.0.0 Ok: queued")


def test_a_sender_domain_in_the_dbl_is_rejected(lab: Lab) -> None:
    reject = _reply(lab.send(STRANGER, sender="offers@cheap-pills.example"), "554")
    assert reject == (
        "554 5.7.1 Service unavailable; Sender address [offers@cheap-pills.example] blocked "
        "using dbl.example.test; cheap-pills.example is listed by dbl.example.test: "
        "Domain cheap-pills.example seen in spam"
    )
    reject = _reply(lab.send(STRANGER, sender="support@kit.phish.example.com"), "554")
    assert reject.endswith("kit.phish.example.com is listed by dbl.example.test: phishing kit hosting")
    # `*.phish.example.com` lists the subdomains, not the name itself
    _reply(lab.send(STRANGER, sender="support@phish.example.com"), "250 2.0.0 Ok: queued")


def test_publishing_a_new_listing_rejects_the_next_connection(lab: Lab) -> None:
    _reply(lab.send(NEWCOMER), "250 2.0.0 Ok: queued")
    write(lab.lists, {"bl/lab.yaml": LAB_BL + NEWCOMER_BL})
    commit_all(lab.lists.parent, f"list {NEWCOMER}", BOB)
    lab.published()
    # the resolver still holds the NXDOMAIN it was given a moment ago (SOA minimum: 300 s)
    _reply(lab.send(NEWCOMER), "250 2.0.0 Ok: queued")
    lab.flush("bl.example.test")
    reject = _reply(lab.send(NEWCOMER), "554")
    assert reject.endswith(
        f"[{NEWCOMER}] blocked using bl.example.test; Listed by bl.example.test: dictionary attack seen at 10:02"
    )


# --- error answers ------------------------------------------------------------------------

#: Makes the server at 127.0.0.1:5353 answer an error code to the resolver while entered,
#: and serve as before afterwards. Yields the code (an address in 127.255.255.0/24) and the
#: blocklist's name as the Postfix configuration asks it (bl.example.test, or KEY.bl.example.test).
ErrorSource = Callable[["Lab"], AbstractContextManager[tuple[int, str]]]


@contextmanager
def over_rate_limit(lab: Lab) -> Iterator[tuple[int, str]]:
    """The server restarted with `--rrl-answer code`, the resolver's /24 already over its rate.

    The bucket holds one query (burst 1) and earns the next in 10,000 s: after the one
    query below, everything the resolver (127.0.0.1, the same /24) asks gets the code.
    """
    lab.serve("--rrl-qps", "0.0001", "--rrl-burst", "1", "--rrl-answer", "code")
    try:
        server = f"127.0.0.1@{SERVER_PORT}"
        assert lab.a("2.0.0.127.bl.example.test", server) == ["127.0.0.2"]  # the one query within the rate
        assert lab.a("2.0.0.127.bl.example.test", server) == [format_v4(errorcodes.OVER_QUOTA.code)]
        yield errorcodes.OVER_QUOTA.code, "bl.example.test"
    finally:
        lab.serve()


def publish_zones_yaml(lab: Lab, text: str, message: str) -> None:
    """Commit `text` as zones.yaml and publish it; wait until the running server loaded it
    (a change of who may query only: the same serials, so the generation's name is waited for)."""
    write(lab.lists, {"zones.yaml": text})
    commit_all(lab.lists.parent, message, BOB)
    done = lab.publish()
    assert done.returncode == 0, done.stdout + done.stderr
    generation = re.search(r"^published \S*?(gen-\S+) ", done.stdout, re.M)
    assert generation and lab.server_log is not None, done.stdout
    lab.server_log.wait_for(rf"reloaded generation {generation[1]}\b")


#: A server-wide ACL rule for the address our server sees the resolver's queries come from:
#: unbound (inside the namespace) asks 127.0.0.1:5353 from 127.0.0.1.
RESOLVER_ACL = """\
acl:
  - networks: [127.0.0.1]
    action: answer
    txt: "Queries via this resolver are refused ({client})"
"""


@contextmanager
def acl_answer_for_the_resolver(lab: Lab) -> Iterator[tuple[int, str]]:
    """zones.yaml gets an `answer` rule for the resolver's address, published; removed after."""
    original = (lab.lists / "zones.yaml").read_text()
    assert original.count("\nzones:\n") == 1
    publish_zones_yaml(lab, original.replace("\nzones:\n", f"\n{RESOLVER_ACL}zones:\n"), "answer the resolver .254")
    try:
        # the TXT names the client: the resolver's address is the one the rule names
        assert lab.txt("77.0.0.127.bl.example.test") == "Queries via this resolver are refused (127.0.0.1)"
        yield errorcodes.ACL_ANSWER.code, "bl.example.test"
    finally:
        publish_zones_yaml(lab, original, "the resolver may query again")


def configure_postfix(lab: Lab, key: str | None) -> None:
    """main.cf with docs/clients.md's snippets: the plain ones (key None) or the keyed ones
    ("With a subscriber key") with `key`; port 2526's bare reject_rbl_client asks the same
    name. Postfix is restarted with it."""
    from publisher.cli import docs

    assert lab.postfix_etc is not None and lab.postfix_master is not None and lab.postfix_log is not None
    root, bl = lab.postfix_etc.parent, "bl.example.test"
    if key is None:
        main = main_cf(root)
    else:
        parts = {name: body.strip("`\n") + "\n" for name, body in docs.generated_parts(CLIENTS_DOC.read_text()).items()}
        reply_map = lab.postfix_etc / "dnsbl_reply_map"
        reply_map.write_text(parts["keyed-postfix-reply-map"].replace("KEY.", f"{key}."))
        keyed = parts["keyed-postfix"].replace("KEY.", f"{key}.")
        assert "/etc/postfix/dnsbl_reply_map" in keyed
        main = MAIN_CF.format(dir=root) + keyed.replace("/etc/postfix/dnsbl_reply_map", str(reply_map))
        bl = f"{key}.bl.example.test"
    (lab.postfix_etc / "main.cf").write_text(main)
    (lab.postfix_etc / "master.cf").write_text(
        MASTER_CF.replace("reject_rbl_client bl.example.test }", f"reject_rbl_client {bl} }}")
    )
    # A restart, not a reload: on SIGHUP the master warns about every parameter whose value
    # changed ("overriding earlier entry"), as if main.cf held it twice.
    trouble = [line for line in lab.postfix_log.so_far() if re.search(r"\b(warning|error|fatal|panic):", line)]
    assert not trouble, "\n".join(trouble)
    stop_process(lab.postfix_master)
    lab.procs.remove(lab.postfix_master)
    lab.postfix_log = lab.start("postfix", str(MASTER), "-c", str(lab.postfix_etc), "-s")
    lab.postfix_master = lab.procs[-1]
    lab.postfix_log.wait_for("daemon started")


def new_access_key(name: str) -> tuple[str, str]:
    """`publisher keys new NAME`: (the entry, the key)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "publisher", "keys", "new", name], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    key = re.search(r"^    key: ([a-z0-9]+)$", done.stdout, re.M)
    assert key, done.stdout
    return done.stdout, key[1]


@contextmanager
def keyed_zones(lab: Lab) -> Iterator[str]:
    """The sample's zones with `keys: required`, published; the server restarted with a key file
    of one key (from `publisher keys new`); Postfix configured with that key. Yields the key;
    afterwards all of them as they were."""
    original = (lab.lists / "zones.yaml").read_text()
    assert original.count("\n    kind: ") == len((*SAMPLE_ZONES, EMAIL_ZONE))
    entry, key = new_access_key("lab-mail")
    keys = lab.tmp / "access-keys.yaml"
    keys.write_text("keys:\n" + entry)
    keys.chmod(0o600)
    publish_zones_yaml(lab, original.replace("\n    kind: ", "\n    keys: required\n    kind: "), "subscribers only")
    try:
        lab.serve("--access-keys", str(keys))
        configure_postfix(lab, key)
        yield key
    finally:
        configure_postfix(lab, None)
        publish_zones_yaml(lab, original, "open again")
        lab.serve()


def with_a_wrong_key(good: str) -> ErrorSource:
    """Postfix configured (docs/clients.md's keyed snippet) with a key the server does not
    know; afterwards with the `good` one."""

    @contextmanager
    def wrong_key(lab: Lab) -> Iterator[tuple[int, str]]:
        _, wrong = new_access_key("not-in-the-file")
        configure_postfix(lab, wrong)
        try:
            assert lab.a(f"2.0.0.127.{wrong}.bl.example.test", f"127.0.0.1@{SERVER_PORT}") == [
                format_v4(errorcodes.KEY_UNKNOWN.code)
            ]
            yield errorcodes.KEY_UNKNOWN.code, f"{wrong}.bl.example.test"
        finally:
            configure_postfix(lab, good)

    return wrong_key


def error_answer_story(lab: Lab, make_error: ErrorSource, listed: str, fresh: str) -> None:
    """While the server answers an error code, the documented Postfix takes it for "not listed".

    `listed` is a client the blocklist lists; `fresh` a client postscreen has never seen
    (postscreen remembers a client that passed, and would not ask again), listed or not:
    the error code must weigh nothing. The control is port 2526's bare
    `reject_rbl_client bl.example.test`, which rejects on any answer, the error included.
    """
    for zone in SAMPLE_ZONES:
        lab.flush(zone)
    try:
        with make_error(lab) as (code, bl):
            name = ".".join(reversed(listed.split("."))) + "." + bl
            assert errorcodes.is_error_code(code)
            assert lab.a(name) == [format_v4(code)]  # what Postfix gets from the resolver
            txt = lab.txt(name)
            assert txt, "an error answer comes with its TXT"
            # docs/clients.md's restrictions and weights: not a listing, so the mail goes through,
            # and not an allowlisting either: it passes because nothing rejects it
            assert lab.postfix_log is not None
            queue_id = _reply(lab.send(listed), "250 2.0.0 Ok: queued as").rsplit(" ", 1)[1]
            # delivered, so smtpd's log lines for it (written first) have arrived too
            lab.postfix_log.wait_for(rf"discard\[\d+\]: {queue_id}: .*status=sent")
            permitted = [line for line in lab.postfix_log.so_far() if "permit_dnswl_client" in line]
            assert not [line for line in permitted if f"[{listed}]" in line], permitted
            _reply(lab.send(fresh, port=POSTSCREEN_PORT), "250 2.0.0 Ok: queued")
            # without a filter the error code is a listing: every client would be turned away
            reject = _reply(lab.send(listed, port=BL_ONLY_PORT), "554")
            assert reject.startswith(f"554 5.7.1 Service unavailable; Client host [{listed}] blocked"), reject
            assert reject.endswith(f"; {txt}"), reject
    finally:
        for zone in SAMPLE_ZONES:
            lab.flush(zone)
    # served as before: the listing rejects again
    _reply(lab.send(listed), "554")


def test_a_server_over_its_rate_limit_answers_an_error_code_that_rejects_no_mail(lab: Lab) -> None:
    error_answer_story(lab, over_rate_limit, listed=SPAMMER, fresh="127.0.0.111")


def test_an_acl_answer_for_the_resolver_is_an_error_code_that_rejects_no_mail(lab: Lab) -> None:
    error_answer_story(lab, acl_answer_for_the_resolver, listed=SPAMMER, fresh="127.0.0.112")


def test_a_wrong_subscriber_key_is_an_error_code_that_rejects_no_mail_and_a_good_key_rejects(lab: Lab) -> None:
    with keyed_zones(lab) as key:
        error_answer_story(lab, with_a_wrong_key(key), listed=SPAMMER, fresh="127.0.0.113")
        # the story ends with the good key in Postfix's configuration: the listing rejects as
        # usual, and the reply names the zone by our TXT, the key nowhere
        reject = _reply(lab.send(SPAMMER), "554")
        assert reject == (
            f"554 5.7.1 Service unavailable; Client host [{SPAMMER}] blocked; "
            "Listed by bl.example.test: spam trap hit from the lab"
        )
        # postscreen too, its 550 naming the plain zone through the documented reply map
        reject = _reply(lab.send(SPAMMER, port=POSTSCREEN_PORT), "550")
        assert reject == f"550 5.7.1 Service unavailable; client [{SPAMMER}] blocked using bl.example.test"
    # and the three zones open again: the plain configuration rejects it as before
    lab.flush("bl.example.test")
    _reply(lab.send(SPAMMER), "554")


# Last in the file on purpose: it leaves the blocklist covering the partner, so any later
# publish in this lab would need --force.
def test_an_allowlisted_partner_passes_even_though_the_blocklist_lists_it(lab: Lab) -> None:
    assert lab.txt("88.0.0.127.wl.example.test") == f"{PARTNER} is allowed by wl.example.test: partner outbound gateway"
    write(lab.lists, {"bl/partner-feed.txt": PARTNER_FEED})
    commit_all(lab.lists.parent, "import a feed that lists the partner", BOB)
    refused = lab.publish()
    assert refused.returncode == 3 and "covers-protected" in refused.stdout + refused.stderr, (
        refused.stdout + refused.stderr
    )
    # the guard rail exists to stop exactly this overlap; the test forces it to show that
    # Postfix, asking the allowlist first, still lets the partner in
    lab.published("--force")
    lab.flush("bl.example.test")
    assert lab.txt("88.0.0.127.bl.example.test") == f"Listed by bl.example.test: Botnet traffic from {PARTNER}"
    reject = _reply(lab.send(PARTNER, port=BL_ONLY_PORT), "554")  # the blocklist alone would refuse it
    assert f"[{PARTNER}] blocked using bl.example.test" in reject
    _reply(lab.send(PARTNER), "250 2.0.0 Ok: queued")  # permit_dnswl_client comes first
    _reply(lab.send(PARTNER, port=POSTSCREEN_PORT), "250 2.0.0 Ok: queued")  # 3 - 2 < 3
    # the RFC 5782 test point is in both zones too: the same order lets it through
    _reply(lab.send("127.0.0.2"), "250 2.0.0 Ok: queued")
    assert "blocked using bl.example.test" in _reply(lab.send("127.0.0.2", port=BL_ONLY_PORT), "554")


def test_postfix_logged_no_warning(lab: Lab) -> None:
    assert lab.postfix_log is not None
    trouble = [line for line in lab.postfix_log.so_far() if re.search(r"\b(warning|error|fatal|panic):", line)]
    assert not trouble, "\n".join(trouble)
