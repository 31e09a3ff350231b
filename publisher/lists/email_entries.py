"""The entries of an email zone: an address or a ready hash -> the name it is stored under.

An email zone stores each entry as a domain row whose name is `<hash label>[.<suffix>]`
relative to the zone (model.SourceData): an address is split, checked, normalised and
hashed by emails.py; a ready hash (a line of a feed without '@', or a curated `hash:`)
is checked against the zone's algorithm (`emails.feed_label`). curated.py and bulk.py
both read through `EmailNamer`.

Speed: a feed of a million addresses is mostly plain lower-case addresses. `EmailNamer.quick`
names such a line with one regex match, a few string operations and one hash, and gives
exactly what the full path (`emails.address_name`) gives (tests/test_email_lists.py checks
this on generated addresses); anything else (upper case, an IDN, a value after the address, a
bad line) returns None and takes the full path, which also explains what is wrong.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from typing import Any

from publisher.addresses import AddressError
from publisher.emails import (
    ALL,
    MAX_ADDRESS,
    MAX_LOCAL,
    EmailSettings,
    address_name,
    feed_label,
    normalise,
    split_address,
)

__all__ = ["EmailNamer", "looks_like_address", "same_address"]

#: A lower-case address that split_address and normalise take as written: an unquoted
#: dot-string local part of lower-case atext, a lower-case ASCII host name with a dot.
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN = re.compile(rf"({_ATOM}(?:\.{_ATOM})*)@((?:{_LABEL}\.)+{_LABEL})")


def looks_like_address(text: str) -> bool:
    """Is `text` written as an address (it has an '@'), rather than a ready hash?"""
    return "@" in text


class EmailNamer:
    """Names the entries of one email zone (`ZoneConfig.email`)."""

    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings
        self._aliases = dict(settings.aliases)
        self._all_dots = ALL in settings.strip_dots
        self._dots = frozenset(settings.strip_dots)
        self._all_tags = ALL in settings.strip_tags
        self._tags = frozenset(settings.strip_tags)
        self._suffix = "." + settings.suffix if settings.suffix else ""
        self._hash: Callable[[bytes], str] = _hasher(settings.hash)

    def address(self, text: str) -> tuple[str, str]:
        """An address as written -> (its normalised form, its name); raises AddressError (BAD_EMAIL)."""
        return address_name(text, self.settings)

    def ready_hash(self, text: str) -> str:
        """A ready hash as written -> its name; raises AddressError (BAD_HASH)."""
        return self.settings.name_of(feed_label(text, self.settings.hash))

    def name(self, text: str) -> tuple[str, str]:
        """An address or a ready hash -> (normalised address or label, name)."""
        if looks_like_address(text):
            return self.address(text)
        name = self.ready_hash(text)
        return name.partition(".")[0], name

    def quick(self, line: str) -> str | None:
        """The name of a line that is exactly a plain lower-case address, else None (full path)."""
        m = _PLAIN.fullmatch(line)
        if m is None:
            return None
        local, domain = m.group(1, 2)
        if len(local) > MAX_LOCAL or len(domain) > 253 or len(line) > MAX_ADDRESS:
            return None
        domain = self._aliases.get(domain, domain)
        if self._all_dots or domain in self._dots:
            local = local.replace(".", "")
        if self._all_tags or domain in self._tags:
            plus = local.find("+")
            if plus > 0:
                local = local[:plus]
        return self._hash(f"{local}@{domain}".encode("ascii")) + self._suffix


def _hasher(algorithm: str) -> Callable[[bytes], str]:
    if algorithm == "sha256":
        return lambda data: base64.b32encode(hashlib.sha256(data).digest()).decode("ascii").rstrip("=").lower()
    new: Callable[..., Any] = getattr(hashlib, algorithm)
    return lambda data: str(new(data, usedforsecurity=False).hexdigest())


def same_address(text: str, first: str, where: str, settings: EmailSettings) -> str:
    """The duplicate message for two entries of an email zone with one name: both as written,
    and the normalised address when normalisation made them one (`where`: "line 3")."""
    if text.strip() == first.strip():
        return f"'{text}' is listed twice (first at {where})"
    if "@" not in text and "@" not in first:
        return f"'{text}' is the same hash as {where} ('{first}')"
    try:
        normalised = normalise(*split_address(first if "@" in first else text), settings)
    except AddressError:  # not stored: the entry was refused, so no duplicate of it is seen
        normalised = first
    if "@" not in text or "@" not in first:
        return f"'{text}' is the same address as {where} ('{first}'): the hash of '{normalised}'"
    if normalised == first.strip():
        return f"'{text}' is the same address as {where} ('{first}' once normalised)"
    return f"'{text}' is the same address as {where} ('{first}'): both are '{normalised}' once normalised"
