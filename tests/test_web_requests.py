"""The request service: a delisting or allowlisting request checked with the lists' rules,
limited, mailed as a link, shown, and filed on confirmation; every refusal a WebError with its
status and field, and nothing mailed or filed on any of them.

The published view is a small fake over the sample lists compiled for real (zone_answer is what
the view answers with); the Filer and the mailer are recording fakes (filing and the Postfix
sink are tested on their own)."""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Literal

import pytest
from tests.conftest import LISTS

from publisher.compile.compiler import compile_zone
from publisher.compile.lookup import parse_query, zone_answer
from publisher.compile.zone import CompiledZone
from publisher.errors import WebError
from publisher.lists.load import load_lists
from publisher.lists.tree import DirTree
from publisher.model import ZonePage
from publisher.web import tokens
from publisher.web.fields import MAX_MAIL, MAX_ORGANISATION, MAX_REASON
from publisher.web.requests import Requests
from publisher.web.service import Ask, Edit, Filed, RequestForm, ZoneFacts
from publisher.web.settings import WebSettings

NOW = dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.UTC)
PAGES = {
    "bl.example.test": ZonePage(requests="bl/requests.yaml"),
    "wl.example.test": ZonePage(requests="wl/requests.yaml"),
    "dbl.example.test": ZonePage(requests="dbl/requests.yaml"),
}
SETTINGS = WebSettings(
    zones_dir=Path("zones"),
    lists=LISTS,
    public_url="https://dnsbl.example.test/",
    smtp=("127.0.0.1", 25),  # taken; the recording mailer stands in for the relay
    secret=b"s" * 32,
)
DELIST = RequestForm("delist", "198.51.100.77", "Example Org", "postmaster@example.org", "We cleaned the host.")
ALLOW = RequestForm("allowlist", "192.0.2.128/28", "Example Partner", "noc@partner.example", "our outbound gateways")


@functools.cache
def compiled() -> Mapping[str, tuple[ZoneFacts, CompiledZone]]:
    loaded = load_lists(DirTree(LISTS), as_of=NOW)
    assert loaded.config is not None and not loaded.errors
    return {
        z.name: (ZoneFacts(z.name, z.kind, z.role, ZonePage()), compile_zone(z, loaded.sources[z.name], as_of=NOW))
        for z in loaded.config.zones
    }


class View:
    """The published view as the request service sees it: the sample lists, compiled."""

    def __init__(self, pages: Mapping[str, ZonePage] = PAGES, *, extra: tuple[ZoneFacts, ...] = ()) -> None:
        self.facts = {name: replace(facts, page=pages.get(name, ZonePage())) for name, (facts, _) in compiled().items()}
        self.facts.update((f.name, f) for f in extra)

    def zone_facts(self) -> Mapping[str, ZoneFacts]:
        return self.facts

    def listed_in(self, target: str) -> tuple[str, ...]:
        query = parse_query(target)
        return tuple(sorted(name for name, (_, zone) in compiled().items() if zone_answer(zone, query)))


class Filer:
    """Records what it is asked; refuses the targets in `refuse` as the lists would; idempotent by token."""

    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        self.refuse = refuse
        self.planned: list[Ask] = []
        self.asks_filed: list[Ask] = []
        self.by_token: dict[str, Filed] = {}

    def _edits(self, ask: Ask) -> tuple[Edit, ...]:
        if ask.target in self.refuse:
            raise WebError(422, "Invalid field", f"'{ask.target}' is broader than /16", field="address")
        action: Literal["exclude", "add"] = "exclude" if ask.kind == "delist" else "add"
        return tuple(Edit(z, f"{z}/requests.yaml", action, f"- ip: {ask.target}\n") for z in ask.zones)

    def plan_edits(self, ask: Ask, *, today: dt.date) -> tuple[Edit, ...]:
        assert today == NOW.date() or today > NOW.date()
        self.planned.append(ask)
        return self._edits(ask)

    def file_request(self, ask: Ask, *, now: dt.datetime) -> Filed:
        self.asks_filed.append(ask)
        if ask.token in self.by_token:
            return replace(self.by_token[ask.token], already=True)
        rid = f"{now:%Y-%m-%d}-{len(self.by_token) + 1:04d}"
        self.by_token[ask.token] = Filed(rid, f"requests/{rid}", "c" * 40, self._edits(ask), False)
        return self.by_token[ask.token]

    def filed(self, token: str) -> Filed | None:
        found = self.by_token.get(token)
        return None if found is None else replace(found, already=True)


class Mailer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Ask, dt.datetime]] = []
        self.down = False

    def send_confirmation(self, to: str, link: str, summary: Ask, *, expires: dt.datetime) -> None:
        if self.down:
            raise WebError(503, "Mail not sent", "we could not send the confirmation mail; try again later")
        self.sent.append((to, link, summary, expires))

    def token(self, index: int = -1) -> str:
        return self.sent[index][1].split("?token=", 1)[1]


class Rig:
    def __init__(self, settings: WebSettings = SETTINGS, view: View | None = None, filer: Filer | None = None) -> None:
        self.now = NOW
        self.view = view or View()
        self.filer = filer or Filer()
        self.mailer = Mailer()
        self.service = Requests(settings, lambda: self.view, self.filer, self.mailer, clock=lambda: self.now)

    def refused(self, form: RequestForm, client: str = "192.0.2.10") -> WebError:
        with pytest.raises(WebError) as caught:
            self.service.submit(form, client)
        return caught.value

    def nothing_done(self) -> bool:
        return not self.mailer.sent and not self.filer.asks_filed


def test_a_delisting_request_is_mailed_shown_and_filed_on_confirmation() -> None:
    rig = Rig()
    done = rig.service.submit(DELIST, "192.0.2.10")
    assert (done.kind, done.target, done.zones, done.contact) == (
        "delist",
        "198.51.100.77",
        ("bl.example.test",),
        "postmaster@example.org",
    )
    assert done.expires == NOW + dt.timedelta(hours=48)
    [(to, link, summary, expires)] = rig.mailer.sent
    assert to == "postmaster@example.org" and expires == done.expires
    assert link.startswith("https://dnsbl.example.test/requests/confirm?token=")  # public_url, not a Host header
    assert summary == Ask("delist", "198.51.100.77", ("bl.example.test",), "Example Org", to, "We cleaned the host.")
    assert rig.filer.planned == [summary] and not rig.filer.asks_filed  # checked with the lists, written nowhere

    pending = rig.service.pending(rig.mailer.token())
    assert pending.form == DELIST and pending.target == "198.51.100.77" and pending.zones == ("bl.example.test",)
    assert [e.action for e in pending.edits] == ["exclude"] and pending.expires == done.expires
    assert not rig.filer.asks_filed  # the link's page (a GET a mail scanner may fetch) files nothing

    confirmed = rig.service.confirm(rig.mailer.token(), "192.0.2.99")
    assert (confirmed.id, confirmed.branch, confirmed.zones, confirmed.already) == (
        "2026-11-29-0001",
        "requests/2026-11-29-0001",
        ("bl.example.test",),
        False,
    )
    [filed] = rig.filer.asks_filed
    nonce = tokens.read(rig.mailer.token(), SETTINGS.secret, now=NOW)["nonce"]
    assert filed == replace(summary, client="192.0.2.99", token=str(nonce))


@pytest.mark.parametrize(
    ("address", "target", "zones"),
    [
        ("Cheap-Pills.Example.", "cheap-pills.example", ("dbl.example.test",)),
        ("::ffff:198.51.100.77", "198.51.100.77", ("bl.example.test",)),  # IPv4-mapped: read as IPv4
        ("  192.0.2.5 ", "192.0.2.5", ("bl.example.test",)),
    ],
)
def test_delisting_targets_are_normalised_as_the_lists_read_them(
    address: str, target: str, zones: tuple[str, ...]
) -> None:
    rig = Rig()
    done = rig.service.submit(replace(DELIST, address=address), "192.0.2.10")
    assert (done.target, done.zones) == (target, zones)


def test_an_allowlisting_request_goes_to_the_only_allow_zone_taking_requests() -> None:
    rig = Rig()
    done = rig.service.submit(replace(ALLOW, address="::ffff:192.0.2.128/124"), "198.51.100.1")
    assert (done.kind, done.target, done.zones) == ("allowlist", "192.0.2.128/28", ("wl.example.test",))
    pending = rig.service.pending(rig.mailer.token())
    assert pending.form.kind == "allowlist" and [e.action for e in pending.edits] == ["add"]
    assert rig.service.confirm(rig.mailer.token(), "198.51.100.1").zones == ("wl.example.test",)


LONG_LOCAL = "a" * 65 + "@example.org"
CJK = "".join(chr(0x4E00 + i * 397) for i in range(16))  # 16 characters, 52 as an A-label
REFUSALS = [
    # (form changes, status, field, words the visitor reads)
    ({"kind": "remove"}, 422, "kind", "must be one of: delist, allowlist"),
    ({"address": ""}, 422, "address", "address is empty"),
    ({"address": "198.51.100.0/24"}, 422, "address", "ask about one address"),
    ({"address": "198.51.100.256"}, 422, "address", "out of range"),
    ({"address": "*.spam.example"}, 422, "address", "wildcard"),
    ({"address": "a" * 400}, 422, "address", "no address or domain is that long"),
    ({"address": "198.51.100.77\nBcc: x"}, 422, "address", "control character"),
    ({"address": "127.0.0.2"}, 422, "address", "always listed, by design"),
    ({"address": "::FFFF:7F00:2"}, 422, "address", "always listed, by design"),
    ({"address": "test."}, 422, "address", "always listed, by design"),
    ({"address": "127.0.0.1"}, 422, "address", "never listed, by design"),
    ({"address": "192.0.2.200"}, 422, "address", "not listed in any zone that takes delisting requests"),
    ({"address": "nowhere.example"}, 422, "address", "not listed in any zone"),
    ({"organisation": "  "}, 422, "organisation", "organisation is empty"),
    ({"organisation": "x" * (MAX_ORGANISATION + 1)}, 422, "organisation", "at most 200"),
    ({"organisation": "Evil\u202eCorp"}, 422, "organisation", "U+202E"),
    ({"organisation": "Two\nlines"}, 422, "organisation", "a line break"),
    ({"contact": "postmaster"}, 422, "contact", "not a mail address"),
    ({"contact": "a@b@example.org"}, 422, "contact", "not a valid local part"),
    ({"contact": "a..b@example.org"}, 422, "contact", "not a valid local part"),
    ({"contact": "jörg@example.org"}, 422, "contact", "not a valid local part"),
    ({"contact": "root@localhost"}, 422, "contact", "full domain"),
    ({"contact": "root@[192.0.2.1]"}, 422, "contact", "not valid"),
    ({"contact": "root@192.0.2.1"}, 422, "contact", "full domain"),
    ({"contact": "root@under_score.example"}, 422, "contact", "not a host name"),
    ({"contact": LONG_LOCAL}, 422, "contact", "at most 64"),
    ({"contact": "a@" + ("b" * 60 + ".") * 5 + "org"}, 422, "contact", "at most 254"),
    ({"contact": "a" * 64 + "@" + ".".join([CJK] * 4) + ".example"}, 422, "contact", "284 characters; mail allows"),
    ({"contact": "a@example.org\r\nBcc: victim@example.net"}, 422, "contact", "control character"),
    ({"reason": ""}, 422, "reason", "reason is empty"),
    ({"reason": "x" * (MAX_REASON + 1)}, 422, "reason", "at most 1000"),
    ({"reason": "x" * 1_000_000}, 422, "reason", "1000000 characters; at most 1000"),
    ({"reason": "bell\x07"}, 422, "reason", "U+0007"),
    ({"reason": "lone \ud800 surrogate"}, 422, "reason", "U+D800"),
]


@pytest.mark.parametrize(("change", "status", "field", "words"), REFUSALS)
def test_every_refusal_says_which_field_and_mails_and_files_nothing(
    change: dict[str, str], status: int, field: str, words: str
) -> None:
    rig = Rig()
    err = rig.refused(replace(DELIST, **change))  # type: ignore[arg-type]
    assert (err.status, err.field) == (status, field) and words in err.detail, err.detail
    assert rig.nothing_done() and not rig.filer.planned


@pytest.mark.parametrize(
    ("change", "status", "field", "words"),
    [
        ({"address": "192.0.2.129/28"}, 422, "address", "host bits set below /28"),
        ({"address": "spam.example"}, 422, "address", "names an address or a CIDR block"),
        ({"address": "127.0.0.0/30"}, 422, "address", "always listed, by design"),
        ({"zone": "bl.example.test"}, 422, "zone", "not an allowlist here; choose one of: wl.example.test"),
        ({"zone": "<script>" * 20}, 422, "zone", "that zone is not an allowlist here"),
    ],
)
def test_allowlisting_refusals(change: dict[str, str], status: int, field: str, words: str) -> None:
    rig = Rig()
    err = rig.refused(replace(ALLOW, **change))  # type: ignore[arg-type]
    assert (err.status, err.field) == (status, field) and words in err.detail, err.detail
    assert rig.nothing_done() and not rig.filer.planned


def test_zones_without_requests_are_named_and_several_allowlists_need_a_choice() -> None:
    quiet = Rig(view=View({"wl.example.test": PAGES["wl.example.test"]}))  # bl and dbl take no requests
    err = quiet.refused(DELIST)
    assert (err.status, err.field) == (409, "address")
    assert "listed in bl.example.test, which take no delisting requests here" in err.detail
    err = quiet.refused(replace(DELIST, address="192.0.2.200"))  # only allowlisted: not for delisting
    assert (err.status, err.field) == (422, "address") and "not listed in any zone" in err.detail

    partners = ZoneFacts("partners.example.test", "ip", "allow", ZonePage(requests="p/requests.yaml"))
    closed = ZoneFacts("closed.example.test", "ip", "allow", ZonePage())
    two = Rig(view=View(extra=(partners, closed)))
    err = two.refused(ALLOW)
    assert (err.status, err.field) == (422, "zone")
    assert "choose the allowlist to ask for: partners.example.test, wl.example.test" in err.detail
    assert two.service.submit(replace(ALLOW, zone="partners.example.test"), "192.0.2.1").zones == (
        "partners.example.test",
    )
    err = two.refused(replace(ALLOW, zone="closed.example.test"))
    assert (err.status, err.field) == (
        409,
        "zone",
    ) and "closed.example.test takes no allowlisting requests" in err.detail
    none = Rig(view=View({}))
    assert none.refused(ALLOW).status == 409 and none.nothing_done()


def test_the_lists_refusal_comes_before_any_mail_and_burns_no_address_quota() -> None:
    rig = Rig(filer=Filer(refuse=frozenset({"10.0.0.0/8"})))
    statuses = [rig.refused(replace(ALLOW, address="10.0.0.0/8"), f"203.0.113.{n}").status for n in range(8)]
    assert statuses == [422] * 5 + [429] * 3  # the lists refuse it, until the network's hourly limit
    assert not rig.mailer.sent and len(rig.filer.planned) == 5
    # Neither the partner's contact nor garbage under its name used up its daily quota.
    for _ in range(100):
        assert rig.refused(replace(ALLOW, address="192.0.2.999"), "198.18.0.1").status == 422
    for n in range(3):
        rig.service.submit(replace(ALLOW, address=f"192.0.2.{n}"), f"198.51.{n}.1")
    assert len(rig.mailer.sent) == 3


def test_per_contact_and_per_address_limits_a_day() -> None:
    rig = Rig()
    for n in range(3):
        rig.service.submit(replace(DELIST, address=f"192.0.2.{n}"), f"198.18.{n}.1")
    err = rig.refused(replace(DELIST, address="192.0.2.3", contact="Postmaster+again@EXAMPLE.org"), "198.18.9.1")
    assert (err.status, err.field) == (429, "contact") and "a day for one contact" in err.detail
    assert err.retry_after == 8 * 3600 and "8 hours" in err.detail
    for n in range(3):
        rig.service.submit(replace(DELIST, contact=f"noc{n}@example.net"), f"198.19.{n}.1")
    err = rig.refused(replace(DELIST, contact="other@example.net"), "198.19.9.1")
    assert (err.status, err.field) == (429, "address") and "for 198.51.100.77" in err.detail
    assert len(rig.mailer.sent) == 6
    rig.now += dt.timedelta(hours=8)
    rig.service.submit(replace(DELIST, contact="other@example.net"), "198.19.9.1")
    assert len(rig.mailer.sent) == 7


def test_a_flood_from_one_network_gets_five_mails_bounded_logs_and_spares_other_networks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="publisher.web.requests")
    rig = Rig()
    answers = []
    for n in range(1000):
        form = replace(DELIST, address=f"198.51.100.{128 + n % 72}", contact=f"user{n}@example.net")
        try:
            rig.service.submit(form, f"192.0.2.{n % 256}")
            answers.append(0)
        except WebError as exc:
            assert exc.status == 429 and exc.retry_after and exc.retry_after >= 1 and exc.field is None
            answers.append(exc.retry_after)
    assert answers[:5] == [0] * 5 and all(answers[5:]) and len(rig.mailer.sent) == 5
    assert len(rig.filer.planned) == 5  # a refused submission reads no git
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 6 and sum("confirmation mailed" in line for line in lines) == 5
    assert lines[5] == "submission delist 198.51.100.133 from 192.0.2.0/24 refused: 429 Too many requests"
    rig.service.submit(DELIST, "198.18.0.7")  # another network is served
    assert len(rig.mailer.sent) == 6
    rig.now += dt.timedelta(minutes=1)
    assert rig.refused(DELIST, "192.0.2.1").status == 429
    assert caplog.records[-1].getMessage().endswith("; 994 more refusals not logged since the last line")


def test_nothing_is_mailed_when_requests_are_not_taken_and_a_mail_failure_files_nothing() -> None:
    rig = Rig(settings=replace(SETTINGS, smtp=None))
    err = rig.refused(DELIST)
    assert (err.status, err.detail) == (503, "requests are not taken here") and not rig.filer.planned
    rig = Rig()
    rig.service.mailer = None
    assert rig.refused(DELIST).status == 503 and not rig.filer.planned
    rig = Rig(settings=replace(SETTINGS, secret=b""))
    assert rig.refused(DELIST).status == 503
    rig = Rig()
    rig.mailer.down = True
    assert rig.refused(DELIST).status == 503 and rig.nothing_done()


def test_a_relay_failure_or_the_other_limit_burns_no_daily_quota() -> None:
    """The daily buckets of an address and a mailbox count mails sent: a relay that is down, or
    the mailbox's bucket refusing after the address's took a token, leaves them as they were."""
    rig = Rig()
    rig.mailer.down = True
    for n in range(5):
        assert rig.refused(DELIST, f"198.18.{n}.1").status == 503
    rig.mailer.down = False
    for n in range(3):
        rig.service.submit(DELIST, f"198.19.{n}.1")  # the relay is back: the full quota is there
    assert len(rig.mailer.sent) == 3
    rig = Rig()
    for n in range(3):  # one mailbox, three addresses: its quota is used up
        rig.service.submit(replace(ALLOW, address=f"192.0.2.{n + 1}"), f"198.18.{n}.1")
    for n in range(5):  # refused by the mailbox's bucket: 192.0.2.9's token is given back each time
        assert rig.refused(replace(ALLOW, address="192.0.2.9"), f"198.20.{n}.1").field == "contact"
    for n in range(3):
        rig.service.submit(replace(ALLOW, address="192.0.2.9", contact=f"noc{n}@example.net"), f"198.21.{n}.1")
    assert len(rig.mailer.sent) == 6


def test_a_used_link_says_what_became_of_its_request() -> None:
    rig = Rig()
    rig.service.submit(DELIST, "192.0.2.10")
    token = rig.mailer.token()
    assert rig.service.pending(token).target == "198.51.100.77"
    first = rig.service.confirm(token, "192.0.2.10")
    with pytest.raises(WebError) as used:
        rig.service.pending(token)
    assert used.value.status == 409 and f"request {first.id} is filed and waits" in used.value.detail
    rig.filer.by_token[next(iter(rig.filer.by_token))] = replace(
        rig.filer.by_token[next(iter(rig.filer.by_token))], state="accepted"
    )
    with pytest.raises(WebError) as accepted:
        rig.service.pending(token)
    assert f"request {first.id} was accepted" in accepted.value.detail


def test_a_link_confirmed_twice_files_once() -> None:
    rig = Rig()
    rig.service.submit(DELIST, "192.0.2.10")
    first = rig.service.confirm(rig.mailer.token(), "192.0.2.10")
    again = rig.service.confirm(rig.mailer.token(), "192.0.2.11")
    assert (again.id, again.branch, again.already, first.already) == (first.id, first.branch, True, False)
    assert rig.filer.asks_filed[0].token == rig.filer.asks_filed[1].token != ""
    assert len(rig.filer.by_token) == 1


def _edited(token: str, **change: object) -> str:
    body, mac = token.split(".")
    data = json.loads(tokens._unb64(body))
    data.update(change)
    return tokens._b64(json.dumps(data).encode()) + "." + mac


def refusal(rig: Rig, token: str) -> tuple[int, int]:
    """The statuses pending (the link's page) and confirm answer for a bad link."""
    statuses = []
    for call in (rig.service.pending, lambda t: rig.service.confirm(t, "192.0.2.10")):
        with pytest.raises(WebError) as caught:
            call(token)
        statuses.append(caught.value.status)
        if caught.value.status == 410:
            assert caught.value.detail == "the link has expired; ask again"
    return statuses[0], statuses[1]


def test_links_from_another_secret_expired_or_edited_are_refused_and_file_nothing() -> None:
    rig = Rig()
    rig.service.submit(DELIST, "192.0.2.10")
    token = rig.mailer.token()
    other = Rig(settings=replace(SETTINGS, secret=b"o" * 32))
    bad = [
        (other, token, 400),
        (rig, _edited(token, target="203.0.113.9"), 400),
        (rig, _edited(token, zones=["bl.example.test", "dbl.example.test"]), 400),
        (rig, token[:-5], 400),
        (rig, "", 400),
    ]
    for who, link, status in bad:
        assert refusal(who, link) == (status, status)
    rig.now += dt.timedelta(hours=48)
    assert refusal(rig, token) == (410, 410)
    assert not rig.filer.asks_filed and not other.filer.asks_filed


def test_the_link_page_rechecks_what_is_listed_now() -> None:
    rig = Rig()
    rig.service.submit(DELIST, "192.0.2.10")
    rig.view = View({"bl.example.test": PAGES["bl.example.test"]})
    rig.view.listed_in = lambda target: ()  # type: ignore[method-assign]  # delisted since: published
    with pytest.raises(WebError) as caught:
        rig.service.pending(rig.mailer.token())
    assert (caught.value.status, caught.value.field) == (409, "address")
    assert "no longer listed in bl.example.test" in caught.value.detail


def test_confirmations_are_limited_per_network() -> None:
    rig = Rig()
    rig.service.submit(DELIST, "192.0.2.10")
    for _ in range(SETTINGS.confirmations_per_hour):
        rig.service.confirm(rig.mailer.token(), "203.0.113.5")
    with pytest.raises(WebError) as caught:
        rig.service.confirm(rig.mailer.token(), "203.0.113.77")
    assert caught.value.status == 429 and caught.value.retry_after == 180
    rig.service.confirm(rig.mailer.token(), "2001:db8::1")
    assert len(rig.filer.asks_filed) == SETTINGS.confirmations_per_hour + 1


def test_the_log_never_holds_the_token_the_contact_or_the_reason(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rig = Rig()
    rig.service.submit(replace(DELIST, reason="secret-reason-text"), "192.0.2.10")
    rig.service.confirm(rig.mailer.token(), "192.0.2.10")
    rig.refused(replace(DELIST, contact="x\nfake log line"), "198.18.0.1")
    text = caplog.text
    assert "confirmation mailed" in text and "filed as 2026-11-29-0001" in text and "refused: 422" in text
    for secret in (rig.mailer.token(), rig.mailer.token().split(".")[1], "secret-reason-text", "postmaster", "fake"):
        assert secret not in text


def test_a_request_at_every_limit_fits_in_a_link() -> None:
    widest = "\U0001f600"  # 4 bytes of UTF-8: the most a character costs in the token
    payload: dict[str, tokens.Flat] = {
        "kind": "allowlist",
        "target": "x" * 253,
        "zones": ["z" * 253] * 3,
        "organisation": widest * MAX_ORGANISATION,
        "contact": "c" * MAX_MAIL,
        "reason": widest * MAX_REASON,
        "zone": "z" * 253,
    }
    assert len(tokens.issue(payload, SETTINGS.secret, now=NOW, hours=48)) <= tokens.MAX_TOKEN
    rig = Rig()
    rig.service.submit(replace(ALLOW, organisation=widest * 200, reason=widest * 1000), "192.0.2.10")
    assert rig.service.pending(rig.mailer.token()).form.reason == widest * 1000


def test_refusals_from_many_networks_log_at_most_sixty_lines_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="publisher.web.requests")
    rig = Rig()
    for n in range(500):
        rig.refused(replace(DELIST, address="192.0.2.250"), f"2001:db8:{n:x}::1")  # not listed: 422
    assert len(caplog.records) == 60
    rig.now += dt.timedelta(minutes=1)
    rig.refused(replace(DELIST, address="192.0.2.250"), "2001:db8:ffff::1")
    assert caplog.records[-1].getMessage() == (
        "submission delist 192.0.2.250 from 2001:db8:ffff::/56 refused: 422 Invalid field (field address); "
        "440 more refusals not logged since the last line"
    )
