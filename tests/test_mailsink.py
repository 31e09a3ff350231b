"""The Postfix mail sink the web tests mail their confirmation links through (tests/mailsink.py)."""

from __future__ import annotations

import re
import smtplib
from email.message import EmailMessage
from pathlib import Path

import pytest
from tests.mailsink import PostfixSink, running_sink

LONG_URL = "https://lists.example.test/requests/confirm?token=" + "A-b_9" * 394  # 2,021 characters


def send(sink: PostfixSink, to: list[str], subject: str, body: str) -> None:
    message = EmailMessage()
    message["From"] = "publisher web <web@lists.example.test>"
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message.set_content(body, cte="quoted-printable")
    with smtplib.SMTP(*sink.relay, timeout=10) as smtp:
        refused = smtp.send_message(message)
    assert refused == {}


def test_mail_to_two_domains_arrives_for_each_recipient(postfix_sink: PostfixSink) -> None:
    send(postfix_sink, ["postmaster@example.org", "Abuse@Other.Example.NET"], "two domains", "hello\n")
    first = postfix_sink.wait_for("postmaster@example.org")
    second = postfix_sink.wait_for("abuse@other.example.net")
    for got in (first, second):
        assert got["Subject"] == "two domains"
        assert got.get_content() == "hello\n"
    assert {str(m["Delivered-To"]).lower() for m in postfix_sink.messages()} >= {
        "postmaster@example.org",
        "abuse@other.example.net",
    }


def test_waiting_for_mail_that_never_comes_fails_with_the_log(postfix_sink: PostfixSink) -> None:
    send(postfix_sink, ["one@example.org"], "once", "only once\n")
    postfix_sink.wait_for("one@example.org")
    with pytest.raises(pytest.fail.Exception) as failed:
        postfix_sink.wait_for("one@example.org", timeout=0.5)  # each message is returned once
    assert "no mail to one@example.org within 0.5s" in str(failed.value)
    assert re.search(r"virtual\[\d+\]: \w+: to=<one@example.org>.*status=sent", str(failed.value))


def test_a_long_link_in_a_quoted_printable_body_arrives_whole(postfix_sink: PostfixSink) -> None:
    assert len(LONG_URL) > 2000
    send(postfix_sink, ["requester@example.com"], "confirm", f"Confirm your request:\n\n{LONG_URL}\n")
    got = postfix_sink.wait_for("requester@example.com")
    assert got["Content-Transfer-Encoding"] == "quoted-printable"
    raw = got.get_payload(decode=False)
    assert isinstance(raw, str) and LONG_URL not in raw and raw.count("=\n") > 20  # cut by soft line breaks
    assert LONG_URL in got.get_content().splitlines()


def etc_postfix() -> list[tuple[str, int]]:
    return sorted((str(p), p.stat().st_mtime_ns) for p in Path("/etc/postfix").rglob("*"))


def test_the_instance_leaves_no_process_behind_and_the_machines_postfix_alone() -> None:
    machine = etc_postfix()
    with running_sink() as sink:
        send(sink, ["someone@example.com"], "last", "bye\n")
        sink.wait_for("someone@example.com")
        running = sink.processes()
        assert sink.proc.pid in running and len(running) > 2  # master, smtpd, cleanup, qmgr, virtual...
        root = sink.root
    assert sink.proc.returncode is not None
    assert sink.outlived == [] and sink.processes() == []  # the master's SIGTERM stopped them all
    assert not root.exists()
    assert etc_postfix() == machine
