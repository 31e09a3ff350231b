"""A request form's fields checked and normalised, with the lists' own address and domain rules.

`check_fields` is the cheap part (no view, no git): kind, address, organisation, contact,
reason; each refusal a WebError 422 naming its field. `request_zones` asks the published view
which zones the request is for (delist: the block zones listing the target; allowlist: one allow
zone); `check_form` does both and gives the `Ask` (without client and token, which the
confirmation adds). RFC 5782 test points are refused here with their own message, before the
lists' checks would refuse them in less friendly words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from publisher.addresses import (
    TEST_LISTED_DOMAIN,
    TEST_LISTED_V4,
    TEST_UNLISTED_DOMAIN,
    TEST_UNLISTED_V4,
    AddressError,
    format_addr,
    normalize_domain,
    parse_network,
    unmapped_network,
)
from publisher.compile.lookup import EMAIL, parse_query
from publisher.errors import WebError
from publisher.web.service import REQUEST_KINDS, Ask, Published, RequestForm, ZoneFacts

MAX_ORGANISATION = 200
MAX_REASON = 1000
MAX_ADDRESS = 300  # a domain is at most 253 characters; anything longer is not parsed at all
MAX_LOCAL = 64  # RFC 5321 4.5.3.1.1
MAX_MAIL = 254  # RFC 5321 4.5.3.1.3 (a path of 256 less its brackets)

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
_QUOTED = re.compile(r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"')  # RFC 5321 Quoted-string
_HOST_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
#: Bidirectional overrides and isolates: text that reads differently from what it holds.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_TITLE = "Invalid field"


def refuse(field: str, detail: str, status: int = 422) -> WebError:
    titles = {409: "Cannot take this request", 422: _TITLE}
    return WebError(status, titles.get(status, _TITLE), detail, field=field)


def _text(field: str, value: object, limit: int, *, lines: bool = False) -> str:
    """A free-text field: stripped, 1..limit characters, no control characters (newline in `lines` only)."""
    if not isinstance(value, str):
        raise refuse(field, f"{field} must be text")
    if len(value) > 4 * limit:  # refused by its length before it is scanned
        raise refuse(field, f"{field} is {len(value)} characters; at most {limit} are taken")
    if lines:
        value = value.replace("\r\n", "\n").replace("\r", "\n")  # forms send CR LF
    value = value.strip()
    if not value:
        raise refuse(field, f"{field} is empty; please fill it in")
    if len(value) > limit:
        raise refuse(field, f"{field} is {len(value)} characters; at most {limit} are taken")
    for at, char in enumerate(value, 1):
        if char == "\n" and lines:
            continue
        if unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or char in _BIDI:
            where = "a line break" if char in "\n\u2028\u2029" else f"the control character U+{ord(char):04X}"
            raise refuse(field, f"{field} has {where} at character {at}; remove it")
    return value


def check_contact(value: object) -> str:
    """A mail address as SMTP takes it: `local@domain`, the local part a dot-atom or a quoted
    string (<= 64), the domain a host name with a dot, written as its A-label; <= 254 in all."""
    raw = _text("contact", value, MAX_MAIL)
    local, at, domain = raw.rpartition("@")
    if not at or not local or not domain:
        raise refuse("contact", f"'{raw}' is not a mail address; write it like postmaster@example.org")
    if not (_DOT_ATOM.fullmatch(local) or _QUOTED.fullmatch(local)):
        raise refuse(
            "contact",
            f"'{raw}' is not a mail address: '{local}' is not a valid local part "
            "(letters, digits and !#$%&'*+/=?^_`{|}~- separated by single dots, or a quoted string)",
        )
    if len(local) > MAX_LOCAL:
        raise refuse("contact", f"the part before @ has {len(local)} characters; mail allows at most {MAX_LOCAL}")
    try:
        name, wildcard = normalize_domain(domain)
    except AddressError as exc:
        raise refuse("contact", f"the mail domain of '{raw}' is not valid: {exc.message}") from None
    labels = name.split(".")
    if wildcard or domain.endswith(".") or len(labels) < 2 or labels[-1].isdigit():
        raise refuse("contact", f"'{raw}' is not a mail address with a full domain, like postmaster@example.org")
    if not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise refuse("contact", f"the mail domain '{domain}' is not a host name (letters, digits and '-' only)")
    address = f"{local}@{name}"
    if len(address) > MAX_MAIL:
        raise refuse("contact", f"the mail address has {len(address)} characters; mail allows at most {MAX_MAIL}")
    return address


def _test_point(text: str, always: bool) -> WebError:
    if always:
        return refuse(
            "address",
            f"{text} is an RFC 5782 test point: it is always listed, by design, so that mail servers "
            "can check that the list answers; it cannot be delisted or allowlisted",
        )
    return refuse(
        "address",
        f"{text} is an RFC 5782 test point: it is never listed, by design, so that mail servers "
        "can check that the list does not answer for everything; there is nothing to ask about",
    )


def _raw_address(value: object) -> str:
    if not isinstance(value, str):
        raise refuse("address", "address must be text")
    raw = value.strip()
    if not raw:
        raise refuse("address", "address is empty; write an IP address or a domain")
    if len(raw) > MAX_ADDRESS:
        raise refuse("address", f"address is {len(raw)} characters; no address or domain is that long")
    if any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") or c.isspace() for c in raw):
        raise refuse("address", "address has a space or a control character; write one address or domain")
    return raw


def delist_target(value: object) -> str:
    """One address (IPv4-mapped read as IPv4) or one domain name (its A-label), never a block:
    read as `publisher lookup` reads a query."""
    raw = _raw_address(value)
    if "/" in raw:
        raise refuse("address", f"'{raw}' is a block: ask about one address (write it without /LEN)")
    try:
        query = parse_query(raw)
    except AddressError as exc:
        raise refuse("address", f"{exc.message}; write an IP address or a domain name") from None
    if query.family == EMAIL:  # refused before it is an Ask: a refusal's log line names its target
        raise refuse(
            "address",
            "email addresses are listed by their hash and take no requests here; ask the list's operators by mail",
        )
    if query.family == 4 and query.addr in (TEST_LISTED_V4, TEST_UNLISTED_V4):
        raise _test_point(raw, query.addr == TEST_LISTED_V4)
    if query.family == 0 and query.domain in (TEST_LISTED_DOMAIN, TEST_UNLISTED_DOMAIN):
        raise _test_point(query.domain, query.domain == TEST_LISTED_DOMAIN)
    return query.text


def allowlist_target(value: object) -> str:
    """An address or a CIDR block, no host bits below the prefix (IPv4-mapped read as IPv4)."""
    raw = _raw_address(value)
    try:
        net = unmapped_network(parse_network(raw))
    except AddressError as exc:
        fix = f" ({exc.fix})" if exc.fix else ""
        raise refuse(
            "address", f"{exc.message}{fix}; an allowlisting request names an address or a CIDR block"
        ) from None
    if net.family == 4:
        for point in (TEST_LISTED_V4, TEST_UNLISTED_V4):
            if net.start <= point <= net.end:
                raise _test_point(format_addr(4, point), point == TEST_LISTED_V4)
    return str(net)


def check_fields(form: RequestForm) -> Ask:
    """The form's fields checked and normalised: an Ask with no zones yet (see request_zones)."""
    if form.kind not in REQUEST_KINDS:
        raise refuse("kind", f"the kind of request must be one of: {', '.join(REQUEST_KINDS)}")
    target = delist_target(form.address) if form.kind == "delist" else allowlist_target(form.address)
    return Ask(
        kind=form.kind,
        target=target,
        zones=(),
        organisation=_text("organisation", form.organisation, MAX_ORGANISATION),
        contact=check_contact(form.contact),
        reason=_text("reason", form.reason, MAX_REASON, lines=True),
    )


def request_zones(kind: str, target: str, zone: str | None, view: Published) -> tuple[str, ...]:
    """The zones a checked request is for, from the published view; WebError 409/422 otherwise."""
    facts = view.zone_facts()
    if kind == "allowlist":
        return (_allow_zone(zone, facts),)
    blocks = [name for name in view.listed_in(target) if name in facts and facts[name].role == "block"]
    taking = tuple(name for name in blocks if facts[name].page.requests)
    if taking:
        return taking
    if blocks:
        raise refuse(
            "address",
            f"{target} is listed in {', '.join(blocks)}, which take no delisting requests here; "
            "ask the list's operators directly",
            409,
        )
    raise refuse("address", f"{target} is not listed in any zone that takes delisting requests")


def _allow_zone(zone: str | None, facts: Mapping[str, ZoneFacts]) -> str:
    allow = sorted(name for name, f in facts.items() if f.role == "allow" and f.kind == "ip")
    taking = [name for name in allow if facts[name].page.requests]
    if zone is None or zone == "":
        if len(taking) == 1:
            return taking[0]
        if not taking:
            raise refuse("zone", "no allowlist here takes requests", 409)
        raise refuse("zone", f"choose the allowlist to ask for: {', '.join(taking)}")
    if zone in taking:
        return zone
    if zone in allow:
        raise refuse("zone", f"{zone} takes no allowlisting requests here; ask its operators directly", 409)
    choices = f"; choose one of: {', '.join(taking)}" if taking else ""
    shown = zone if len(zone) <= 64 and zone.isprintable() else "that zone"
    raise refuse("zone", f"{shown} is not an allowlist here{choices}")


def check_form(form: RequestForm, view: Published) -> Ask:
    """Fields, then zones: the Ask filing would get (client and token are the confirmation's)."""
    ask = check_fields(form)
    return Ask(
        kind=ask.kind,
        target=ask.target,
        zones=request_zones(ask.kind, ask.target, form.zone, view),
        organisation=ask.organisation,
        contact=ask.contact,
        reason=ask.reason,
    )
