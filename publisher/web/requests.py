"""The request service the routes call (service.RequestService): a delisting or allowlisting
request checked, limited, and mailed as a confirmation link; the link's page; the confirmation
that files it.

A submission goes from cheap to dear, so that a refused one costs little and burns nothing:
fields (fields.check_fields, no I/O) -> zones from the published view (in memory) -> the client
network's hourly limit -> `Filer.plan_edits` (reads git: what the lists would refuse is refused
now, before any mail) -> the requested address's and the contact address's daily limits -> a
signed token (tokens.py) -> the mail. The network's bucket counts every submission that reached
plan_edits (its cost falls on that network alone); the per-address buckets count only the ones
that reached the mail step, so garbage or a request the lists refuse never uses up a partner's
quota. Nothing is written anywhere before the link comes back.

Every submission and confirmation is logged in one line (kind, target, client network, outcome;
never the token, the contact or the reason); refusals at most once a minute per client network
and 60 a minute in all, the lines left out counted in the next one.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from publisher.errors import WebError
from publisher.web import tokens
from publisher.web.fields import check_fields, request_zones
from publisher.web.limits import Limiter, client_key
from publisher.web.mail import ConfirmationSender
from publisher.web.service import (
    REQUEST_KINDS,
    Ask,
    Confirmed,
    Filed,
    Filer,
    Pending,
    Published,
    RequestForm,
    Submitted,
)
from publisher.web.settings import WebSettings

log = logging.getLogger(__name__)

HOUR = 3600
DAY = 86400


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _wait(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    if seconds < 90 * 60:
        return f"{(seconds + 59) // 60} minutes"
    return f"{(seconds + 3599) // 3600} hours"


def contact_key(contact: str) -> str:
    """The mailbox a contact address reaches, for its limit: case and `+tag` do not make another."""
    local, _, domain = contact.rpartition("@")
    if not local.startswith('"'):
        local = local.split("+", 1)[0]
    return f"{local.lower()}@{domain}"


class RefusalLog:
    """At most one line a minute per client network, and `per_minute` in all, for refusals."""

    def __init__(self, ticks: Callable[[], float], *, per_minute: int = 60) -> None:
        # A dropped key only costs one more line (the overall cap holds): a small table will do.
        self._network = Limiter(1 / 60, 1, max_keys=4096, clock=ticks)
        self._all = Limiter.per(per_minute, 60, clock=ticks)
        self._quiet = 0
        self._lock = threading.Lock()

    def note(self, what: str, network: str, exc: WebError, ask: Ask | None, kind: object) -> None:
        if self._network.take(network) or self._all.take("*"):
            with self._lock:
                self._quiet += 1
            return
        with self._lock:
            quiet, self._quiet = self._quiet, 0
        # The detail may quote what the visitor typed: only the status, title and field are logged.
        shown = ask.kind if ask else kind if kind in REQUEST_KINDS else "-"
        field = f" (field {exc.field})" if exc.field else ""
        more = f"; {quiet} more refusals not logged since the last line" if quiet else ""
        log.info(
            "%s %s %s from %s refused: %d %s%s%s",
            what,
            shown,
            ask.target if ask else "-",
            network,
            exc.status,
            exc.title,
            field,
            more,
        )


class Requests:
    """service.RequestService over a published view, a Filer and a mailer."""

    def __init__(
        self,
        settings: WebSettings,
        view: Callable[[], Published],
        filer: Filer,
        mailer: ConfirmationSender | None,
        *,
        clock: Callable[[], dt.datetime] = _utcnow,
        ticks: Callable[[], float] | None = None,
    ) -> None:
        """`clock`: aware UTC now (dates, expiry); `ticks`: seconds for the limits (default: the
        monotonic clock, or `clock`'s timestamp when a clock is given, as tests do). `mailer` None
        (no relay configured): submissions answer 503, links already mailed still confirm."""
        self.settings = settings
        self.view = view
        self.filer = filer
        self.mailer = mailer
        self.clock = clock
        if ticks is None:
            ticks = time.monotonic if clock is _utcnow else (lambda: clock().timestamp())
        self._networks = Limiter.per(settings.requests_per_hour, HOUR, clock=ticks)
        self._targets = Limiter.per(settings.requests_per_day, DAY, clock=ticks)
        self._contacts = Limiter.per(settings.requests_per_day, DAY, clock=ticks)
        self._confirms = Limiter.per(settings.confirmations_per_hour, HOUR, clock=ticks)
        self.refusals = RefusalLog(ticks)

    def _limit(
        self,
        limiter: Limiter,
        key: str,
        what: str,
        field: str | None = None,
        taken: list[tuple[Limiter, str]] | None = None,
    ) -> None:
        wait = limiter.take(key)
        if wait:
            raise WebError(
                429, "Too many requests", f"{what}; try again in {_wait(wait)}", field=field, retry_after=wait
            )
        if taken is not None:
            taken.append((limiter, key))

    def link(self, token: str) -> str:
        """The confirmation link: always from settings.public_url, never from a request's Host."""
        return f"{self.settings.public_url.rstrip('/')}/requests/confirm?token={token}"

    def submit(self, form: RequestForm, client: str) -> Submitted:
        network = client_key(client)
        ask: Ask | None = None
        s = self.settings
        try:
            if s.smtp is None or self.mailer is None or len(s.secret) < tokens.MIN_SECRET:
                raise WebError(503, "Requests not taken", "requests are not taken here")
            ask = check_fields(form)  # kept for the log line should the zones refuse it
            ask = replace(ask, zones=request_zones(ask.kind, ask.target, form.zone, self.view()))
            self._limit(self._networks, network, f"at most {s.requests_per_hour} requests an hour from one network")
            now = self.clock()
            self.filer.plan_edits(ask, today=now.astimezone(dt.UTC).date())
            per_day = s.requests_per_day
            # The daily buckets of the address and the mailbox count mails sent: a token taken for
            # a mail that is not sent (the other bucket refuses, the relay fails) is given back.
            taken: list[tuple[Limiter, str]] = []
            try:
                what = f"at most {per_day} requests a day for {ask.target}"
                self._limit(self._targets, ask.target, what, "address", taken)
                what = f"at most {per_day} requests a day for one contact"
                self._limit(self._contacts, contact_key(ask.contact), what, "contact", taken)
                token = tokens.issue(_payload(ask, form.zone), s.secret, now=now, hours=s.link_hours)
                expires = tokens.expires_at(now, s.link_hours)
                self.mailer.send_confirmation(ask.contact, self.link(token), ask, expires=expires)
            except WebError:
                for limiter, key in taken:
                    limiter.give_back(key)
                raise
        except WebError as exc:
            self.refusals.note("submission", network, exc, ask, form.kind)
            raise
        log.info("submission %s %s from %s: confirmation mailed", ask.kind, ask.target, network)
        return Submitted(kind=ask.kind, target=ask.target, zones=ask.zones, contact=ask.contact, expires=expires)

    def pending(self, token: str) -> Pending:
        now = self.clock()
        payload = tokens.read(token, self.settings.secret, now=now)
        form, ask = _asked(payload)
        done = self.filer.filed(str(payload["nonce"]))
        if done is not None:
            raise WebError(409, "Already confirmed", _used(done))
        if ask.kind == "delist":
            view = self.view()
            if not set(ask.zones) & set(view.listed_in(ask.target)):
                raise WebError(
                    409,
                    "Cannot take this request",
                    f"{ask.target} is no longer listed in {', '.join(ask.zones)}: there is nothing to delist",
                    field="address",
                )
        edits = self.filer.plan_edits(ask, today=now.astimezone(dt.UTC).date())
        return Pending(form=form, target=ask.target, zones=ask.zones, edits=edits, expires=tokens.expiry(payload))

    def confirm(self, token: str, client: str) -> Confirmed:
        network = client_key(client)
        ask: Ask | None = None
        try:
            now = self.clock()
            payload = tokens.read(token, self.settings.secret, now=now)
            _, ask = _asked(payload)
            ask = replace(ask, client=client, token=str(payload["nonce"]))
            per_hour = self.settings.confirmations_per_hour
            self._limit(self._confirms, network, f"at most {per_hour} confirmations an hour from one network")
            filed = self.filer.file_request(ask, now=now)
        except WebError as exc:
            self.refusals.note("confirmation", network, exc, ask, None)
            raise
        outcome = "already filed as" if filed.already else "filed as"
        log.info("confirmation %s %s from %s: %s %s", ask.kind, ask.target, network, outcome, filed.id)
        return Confirmed(id=filed.id, branch=filed.branch, zones=ask.zones, already=filed.already)


def _used(done: Filed) -> str:
    """What a link already confirmed led to, for its second visit."""
    if done.state == "accepted":
        return f"this link was confirmed before: request {done.id} was accepted (the maintainers published it)"
    if done.state == "rejected":
        return f"this link was confirmed before: request {done.id} was rejected by the maintainers"
    return f"this link was confirmed before: request {done.id} is filed and waits for the maintainers' review"


def _payload(ask: Ask, zone: str | None) -> dict[str, tokens.Flat]:
    return {
        "kind": ask.kind,
        "target": ask.target,
        "zones": list(ask.zones),
        "organisation": ask.organisation,
        "contact": ask.contact,
        "reason": ask.reason,
        "zone": zone or None,
    }


def _asked(payload: dict[str, tokens.Flat]) -> tuple[RequestForm, Ask]:
    """The form a token carries, its fields checked again (the rules may have tightened since it
    was mailed), and the Ask for the zones the mail named."""
    kind, target, organisation, contact, reason, zone, zones = (
        payload.get(k) for k in ("kind", "target", "organisation", "contact", "reason", "zone", "zones")
    )
    texts = (kind, target, organisation, contact, reason)
    if (
        not all(isinstance(v, str) for v in texts)
        or not (zone is None or isinstance(zone, str))
        or not (isinstance(zones, list) and zones)
        or kind not in REQUEST_KINDS
    ):
        raise WebError(400, "Invalid link", "this link is not valid; ask again")
    form = RequestForm(
        kind="delist" if kind == "delist" else "allowlist",
        address=str(target),
        organisation=str(organisation),
        contact=str(contact),
        reason=str(reason),
        zone=zone if isinstance(zone, str) else None,
    )
    checked = check_fields(form)
    if checked.target != target:
        raise WebError(400, "Invalid link", "this link is not valid; ask again")
    return form, replace(checked, zones=tuple(zones))
