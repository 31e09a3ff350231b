"""The confirmation mail: the link that turns a checked request into a branch, sent to the
request's contact address through the configured SMTP relay.

The mail says what the link would file (kind, address, zones) and nothing the visitor wrote:
the organisation and reason are shown on the link's page, before anything is filed, so the form
cannot be used to send arbitrary prose to arbitrary addresses under our name. The body is
quoted-printable: a long link stays one line once decoded, and no line on the wire exceeds 76
characters. Any failure to hand the mail to the relay is one WebError 503 and one log line.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import NoReturn, Protocol

from publisher.errors import WebError
from publisher.web.service import Ask

log = logging.getLogger(__name__)

_WHAT = {"delist": "delisting", "allowlist": "allowlisting"}


class ConfirmationSender(Protocol):
    """What the request service needs of a mailer (Mailer provides it; tests record instead)."""

    def send_confirmation(self, to: str, link: str, summary: Ask, *, expires: dt.datetime) -> None: ...


def confirmation_text(link: str, summary: Ask, expires: dt.datetime) -> str:
    """The body: what was asked, the link on its own line, and what happens without it."""
    zones = ", ".join(summary.zones)
    if summary.kind == "delist":
        what = f"that {summary.target} be removed from {zones}"
    else:
        what = f"that {summary.target} be added to the allowlist {zones}"
    when = expires.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Someone, probably you, asked {what}, giving this address ({summary.contact}) as the contact.\n"
        "\n"
        "To confirm the request, open this link and press Confirm:\n"
        "\n"
        f"{link}\n"
        "\n"
        f"The page shows the whole request before anything is filed. The link works until {when}.\n"
        "A confirmed request is filed for review by the list's maintainers; nothing changes before they accept it.\n"
        "\n"
        "If you did not ask, ignore this mail: nothing happens without the link.\n"
    )


class Mailer:
    """Sends confirmation mails through one SMTP relay (no authentication: a local relay)."""

    def __init__(self, relay: tuple[str, int], mail_from: str, *, timeout: float = 10) -> None:
        self.relay = relay
        self.mail_from = mail_from
        self.timeout = timeout

    def message(self, to: str, link: str, summary: Ask, *, expires: dt.datetime) -> EmailMessage:
        """The mail as it is sent. ValueError when `to` or the subject would carry a line break."""
        if any(c in to for c in "\r\n") or any(c in summary.target for c in "\r\n"):
            raise ValueError("a header value has a line break")
        msg = EmailMessage()
        msg["From"] = self.mail_from
        msg["To"] = to
        msg["Subject"] = f"Confirm your {_WHAT[summary.kind]} request for {summary.target}"
        msg["Date"] = format_datetime(dt.datetime.now(dt.UTC))
        msg["Message-ID"] = make_msgid("request", domain=self.mail_from.rpartition("@")[2] or "localhost")
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(
            confirmation_text(link, summary, expires), subtype="plain", charset="utf-8", cte="quoted-printable"
        )
        return msg

    def send_confirmation(self, to: str, link: str, summary: Ask, *, expires: dt.datetime) -> None:
        """Hand the mail to the relay: WebError 503 when it cannot be (422 when it refuses the address)."""
        try:
            msg = self.message(to, link, summary, expires=expires)
        except ValueError as exc:  # fields.check_contact refuses these first; this is the last guard
            raise WebError(
                422, "Invalid field", f"the contact address cannot be mailed: {exc}", field="contact"
            ) from None
        host, port = self.relay
        helo = self.mail_from.rpartition("@")[2] or "localhost"
        try:
            with smtplib.SMTP(host, port, local_hostname=helo, timeout=self.timeout) as smtp:
                smtp.send_message(msg, from_addr=self.mail_from, to_addrs=[to])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (0, b""))
            if 500 <= code < 600:
                log.info("confirmation mail: relay %s:%d refused the recipient: %d", host, port, code)
                raise WebError(
                    422,
                    "Invalid field",
                    f"our mail relay refuses this address ({code} {reply.decode('ascii', 'replace')[:200]}); "
                    "check the contact address",
                    field="contact",
                ) from None
            self._failed(exc)
        except (smtplib.SMTPException, OSError) as exc:  # refused, reset, timed out, or an SMTP error reply
            self._failed(exc)

    def _failed(self, exc: Exception) -> NoReturn:
        host, port = self.relay
        log.warning("confirmation mail not sent: relay %s:%d: %s: %s", host, port, type(exc).__name__, exc)
        raise WebError(
            503,
            "Mail not sent",
            "we could not send the confirmation mail; try again later",
            retry_after=60,
        ) from None
