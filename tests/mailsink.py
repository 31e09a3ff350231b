"""A real mail server for tests: a private Postfix instance that accepts mail for anyone.

`postfix_sink` (module-scoped fixture) runs Debian's Postfix as an instance of its own: its
main.cf/master.cf, queue and data directories in a temporary directory, its master in the
foreground (`master -d -s`, the log on stdout, read by a thread). Its smtpd listens on
127.0.0.1 at an ephemeral port, relays for 127.0.0.0/8 only, and delivers every recipient of
every domain with virtual(8) into ONE Maildir owned by `nobody`, which the test reads:

    sink.relay                      ("127.0.0.1", port): the SMTP relay to configure
    sink.messages()                 every message delivered so far, oldest first
    sink.wait_for("a@b.example")    the next message delivered to that address (envelope
                                    recipient), not returned by wait_for before; on timeout
                                    the test fails with the instance's log tail

Nothing is resolved through DNS (no client name lookup, no relaying out), the machine's
/etc/postfix and its default instance are not read or touched, and the instance is stopped by
the master's PID at teardown; every process of the instance shares the master's session,
which `processes()` lists (empty once stopped).
"""

from __future__ import annotations

import email
import email.policy
import grp
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import IO

import pytest
from tests.conftest import IN_CI, free_port, require_tool, stop_process

MASTER = Path("/usr/lib/postfix/sbin/master")
START_TIMEOUT = 20.0

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = sink.example.test
mydomain = example.test
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relay_domains =
# every domain is a virtual mailbox domain; every recipient goes to one Maildir (trailing /)
virtual_mailbox_domains = regexp:{root}/etc/everything
virtual_mailbox_maps = regexp:{root}/etc/one-maildir
virtual_mailbox_base = {root}/mail
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_minimum_uid = 1
# nothing leaves, nothing is looked up in DNS
default_transport = error:the test mail sink relays nowhere
relay_transport = error:the test mail sink relays nowhere
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
smtpd_client_restrictions =
smtpd_helo_restrictions =
smtpd_sender_restrictions =
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions =
message_size_limit = 10240000
smtputf8_enable = no
biff = no
maillog_file = /dev/stdout
"""

MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
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
virtual   unix  - n n - - virtual
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""

QUEUE_DIRS = ("active", "bounce", "corrupt", "defer", "deferred", "flush", "hold", "incoming", "private", "saved")
QUEUE_DIRS += ("trace",)


def _unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it", pytrace=False)
    pytest.skip(message)


class PostfixSink:
    """A running private Postfix instance and the Maildir it delivers every message into."""

    def __init__(self, root: Path, port: int, proc: subprocess.Popen[str]) -> None:
        self.root = root
        self.port = port
        self.proc = proc
        self.maildir = root / "mail" / "all"
        self.log: list[str] = []
        self._returned: set[str] = set()
        self.outlived: list[int] = []  # daemons still running after the master stopped (killed)
        self._pump = threading.Thread(target=self._read, args=(proc.stdout,), name="postfix-log", daemon=True)
        self._pump.start()

    def _read(self, pipe: IO[str] | None) -> None:
        assert pipe is not None
        for line in iter(pipe.readline, ""):
            self.log.append(line.rstrip("\n"))

    @property
    def relay(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log[-lines:])

    def _files(self) -> list[Path]:
        found = [p for sub in ("new", "cur") for p in (self.maildir / sub).glob("*") if p.is_file()]
        return sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.name))

    def messages(self) -> list[EmailMessage]:
        """Every message delivered so far, oldest first."""
        return [_parse(p) for p in self._files()]

    def wait_for(self, to: str, timeout: float = 20.0) -> EmailMessage:
        """The next message delivered to the envelope recipient `to` (not returned before)."""
        want = to.strip().lower()
        deadline = time.monotonic() + timeout
        while True:
            for path in self._files():
                if path.name in self._returned:
                    continue
                message = _parse(path)
                if str(message.get("Delivered-To", "")).strip().lower() == want:
                    self._returned.add(path.name)
                    return message
            if time.monotonic() > deadline or self.proc.poll() is not None:
                break
            time.sleep(0.05)
        pytest.fail(f"no mail to {to} within {timeout}s; the Postfix sink's log:\n{self.log_tail()}", pytrace=False)

    def processes(self) -> list[int]:
        """PIDs of the instance's processes: the master and every daemon it started (its session)."""
        sid = self.proc.pid
        pids: list[int] = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state ppid pgrp session
            if len(fields) > 3 and int(fields[3]) == sid and fields[0] != "Z":
                pids.append(int(entry.name))
        return pids

    def stop(self) -> None:
        """SIGTERM to the master (it stops its daemons), then wait for the session to empty."""
        stop_process(self.proc)
        deadline = time.monotonic() + 10.0
        while (left := self.processes()) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.outlived = left
        for pid in left:  # a daemon that outlived its master: stop it by its PID
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        self._pump.join(timeout=5.0)


def _parse(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _instance(root: Path, port: int) -> Path:
    """main.cf, master.cf, lookup tables, queue, data and mail directories of the instance."""
    postfix, postdrop = pwd.getpwnam("postfix").pw_uid, grp.getgrnam("postdrop").gr_gid
    nobody = pwd.getpwnam("nobody")
    etc, spool, data, mail = root / "etc", root / "queue", root / "data", root / "mail"
    for d in (etc, spool, data, mail):
        d.mkdir()
    (etc / "main.cf").write_text(MAIN_CF.format(root=root, uid=nobody.pw_uid, gid=nobody.pw_gid))
    (etc / "master.cf").write_text(MASTER_CF.format(port=port))
    (etc / "everything").write_text("/./ OK\n")
    (etc / "one-maildir").write_text("/./ all/\n")
    # Postfix waits (in 0.3 s steps, up to 2 s) for a main.cf younger than a second to settle
    settled = time.time() - 60
    for path in etc.iterdir():
        os.utime(path, (settled, settled))
    checked = subprocess.run(["postconf", "-c", str(etc), "-n"], capture_output=True, text=True)
    assert checked.returncode == 0 and not checked.stderr, checked.stderr
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
    os.chown(mail, nobody.pw_uid, nobody.pw_gid)
    mail.chmod(0o700)
    return etc


@contextmanager
def running_sink() -> Iterator[PostfixSink]:
    """Start a private Postfix instance; stop it (by PID) and remove its directory on exit."""
    require_tool("postfix")
    require_tool("postconf")
    if not MASTER.exists():
        _unavailable(f"{MASTER} is missing (apt-get install postfix)")
    if os.geteuid() != 0:
        _unavailable("a private Postfix instance needs root (its master binds and drops privileges)")
    # Postfix's daemons open their directories by path as postfix or nobody: a directory
    # searchable by all, not pytest's root-only tmp
    root = Path(tempfile.mkdtemp(prefix="mailsink-"))
    sink: PostfixSink | None = None
    try:
        root.chmod(0o711)
        port = free_port()
        etc = _instance(root, port)
        proc = subprocess.Popen(
            [str(MASTER), "-c", str(etc), "-d", "-s"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # the session names every process of the instance
            env={**os.environ, "MAIL_CONFIG": str(etc)},
        )
        sink = PostfixSink(root, port, proc)
        deadline = time.monotonic() + START_TIMEOUT
        while not any(re.search(r"daemon started", line) for line in sink.log):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Postfix sink did not start:\n{sink.log_tail()}", pytrace=False)
            time.sleep(0.02)
        yield sink
    finally:
        if sink is not None:
            sink.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def postfix_sink() -> Iterator[PostfixSink]:
    with running_sink() as sink:
        yield sink
