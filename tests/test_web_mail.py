"""The confirmation mail through a loopback SMTP receiver: the link arrives whole, the mail says
what would be filed and carries nothing the visitor wrote, and a relay that is absent, refuses,
or says nothing is a 503 (a refused recipient a 422 on the contact field)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import logging
import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage

import pytest

from publisher.errors import WebError
from publisher.web.mail import Mailer
from publisher.web.service import Ask

EXPIRES = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
ASK = Ask(
    kind="delist",
    target="198.51.100.77",
    zones=("bl.example.test",),
    organisation="Example Org: URGENT, visit http://phish.example/",
    contact="postmaster@example.org",
    reason="Your account is suspended, call +1 555 0100",
)
LINK = "http://127.0.0.1:8080/requests/confirm?token=" + "eyJhIjoiYiJ9" * 400 + ".MAC_-x"  # 4.8 kB, one line


class Receiver(socketserver.ThreadingTCPServer):
    """A minimal SMTP server on 127.0.0.1:<ephemeral>: records each DATA; `mode` makes it misbehave."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mode: str = "accept") -> None:
        super().__init__(("127.0.0.1", 0), Session)
        self.mode = mode
        self.mails: list[tuple[str, list[str], bytes]] = []
        self.sessions = threading.Semaphore(0)


class Session(socketserver.StreamRequestHandler):
    server: Receiver

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        mode, sender, rcpts = self.server.mode, "", []
        if mode == "silent":  # accepts the connection, never greets: the client times out
            self.rfile.readline()
            return
        self.reply("421 busy" if mode == "busy" else "220 receiver ESMTP")
        for raw in self.rfile:
            verb = raw.decode().strip().upper()
            if verb.startswith(("EHLO", "HELO")):
                self.reply("250 receiver")
            elif verb.startswith("MAIL FROM:"):
                sender = raw.decode().strip()[10:]
                self.reply("250 ok")
            elif verb.startswith("RCPT TO:"):
                rcpts.append(raw.decode().strip()[8:])
                self.reply("550 5.1.1 no such user" if mode == "nouser" else "250 ok")
            elif verb == "DATA":
                self.reply("354 go on")
                data = b"".join(iter(self.rfile.readline, b".\r\n"))
                self.server.mails.append((sender, rcpts, data))
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                break
            else:
                self.reply("250 ok")


@contextmanager
def receiver(mode: str = "accept") -> Iterator[Receiver]:
    server = Receiver(mode)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def relay_of(server: Receiver) -> tuple[str, int]:
    host, port = server.server_address[:2]
    return str(host), int(port)


def sent(server: Receiver) -> EmailMessage:
    assert len(server.mails) == 1
    msg = email.message_from_bytes(server.mails[0][2], policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_the_mail_carries_the_link_whole_and_says_what_would_be_filed() -> None:
    with receiver() as server:
        Mailer(relay_of(server), "dnsbl-requests@example.test").send_confirmation(
            "postmaster@example.org", LINK, ASK, expires=EXPIRES
        )
    sender, rcpts, data = server.mails[0]
    assert (sender, rcpts) == ("<dnsbl-requests@example.test>", ["<postmaster@example.org>"])
    assert all(len(line) <= 78 for line in data.split(b"\r\n"))  # nothing for a relay to rewrap
    msg = sent(server)
    assert msg["Subject"] == "Confirm your delisting request for 198.51.100.77"
    assert (msg["From"], msg["To"], msg["Auto-Submitted"]) == (
        "dnsbl-requests@example.test",
        "postmaster@example.org",
        "auto-generated",
    )
    assert msg["Message-ID"].endswith("@example.test>") and msg["Date"]
    body = msg.get_content()
    assert LINK in body.splitlines()  # decoded, the link is one line of its own
    assert "removed from bl.example.test" in body and "198.51.100.77" in body
    assert "If you did not ask, ignore this mail: nothing happens without the link." in body
    assert "2026-12-01 10:00 UTC" in body
    # Nothing the visitor wrote travels: the form cannot send prose to a stranger's mailbox.
    assert "phish" not in body and "suspended" not in body and "Example Org" not in body


def test_an_allowlisting_request_and_a_quoted_local_part() -> None:
    ask = Ask("allowlist", "192.0.2.0/28", ("wl.example.test",), "Partner", '"gate keeper"@example.org', "gateways")
    with receiver() as server:
        Mailer(relay_of(server), "web@example.test").send_confirmation(ask.contact, LINK, ask, expires=EXPIRES)
    msg = sent(server)
    assert msg["Subject"] == "Confirm your allowlisting request for 192.0.2.0/28"
    assert server.mails[0][1] == ['<"gate keeper"@example.org>']
    assert "added to the allowlist wl.example.test" in msg.get_content()


def closed_port() -> tuple[str, int]:
    """A loopback port nothing listens on: a connection to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    return "127.0.0.1", port


@pytest.mark.parametrize("mode", ["absent", "busy", "silent"])
def test_a_relay_that_is_absent_busy_or_silent_is_a_503_logged_once(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="publisher.web.mail")
    with receiver(mode) as server:
        relay = closed_port() if mode == "absent" else relay_of(server)
        with pytest.raises(WebError) as caught:
            Mailer(relay, "web@example.test", timeout=0.5).send_confirmation(
                "postmaster@example.org", LINK, ASK, expires=EXPIRES
            )
    err = caught.value
    assert (err.status, err.detail) == (503, "we could not send the confirmation mail; try again later")
    assert err.retry_after and not server.mails
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and f"relay 127.0.0.1:{relay[1]}" in lines[0] and "postmaster" not in lines[0]


def test_a_recipient_the_relay_refuses_is_a_422_on_the_contact() -> None:
    with receiver("nouser") as server, pytest.raises(WebError) as caught:
        Mailer(relay_of(server), "web@example.test").send_confirmation("nobody@example.org", LINK, ASK, expires=EXPIRES)
    assert (caught.value.status, caught.value.field) == (422, "contact")
    assert "550" in caught.value.detail and not server.mails


@pytest.mark.parametrize(
    "to",
    ["postmaster@example.org\r\nBcc: victim@example.net", "a@example.org\nSubject: spam"],
)
def test_a_line_break_never_reaches_a_header(to: str) -> None:
    with receiver() as server, pytest.raises(WebError) as caught:
        Mailer(relay_of(server), "web@example.test").send_confirmation(to, LINK, ASK, expires=EXPIRES)
    assert (caught.value.status, caught.value.field) == (422, "contact") and not server.mails
