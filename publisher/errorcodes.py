"""The error-code contract: every error answer the server can give, in 127.255.255.0/24.

A DNSBL client that reads an A record as "listed" rejects mail on it. So an answer that
means "you may not ask" (a refused client network, a missing, unknown or expired key, a
quota run out, a rate limit) is an address in 127.255.255.0/24, which no list entry may
use (addresses.parse_code refuses it) and which every client snippet in docs/clients.md
ignores. The table below is the one source: the README's table, docs/clients.md and the
server's TXT texts are made from it. The codes follow Spamhaus's where Spamhaus has one
(.252 a wrong query name, .254 an open resolver, .255 too many queries), so rules written
for Spamhaus's error codes work unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The TTL of every error answer: short, so a resolver asks again within a minute.
TTL = 60
#: 127.255.255.0/24: error answers only, never a listing.
ERROR_NET_START = 0x7FFFFF00
ERROR_NET_END = 0x7FFFFFFF


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One error answer: its A record, its name, and what the client is told."""

    code: int  # the A record, in 127.255.255.0/24
    name: str  # short name for logs, metrics and docs
    txt: str  # the TXT answered with it
    when: str  # when the server gives it (for the README table)


KEY_UNKNOWN = ErrorCode(
    0x7FFFFFFC,
    "key-unknown",
    "Access refused: missing or unknown key in the query name (typing error in the DNSBL name?)",
    "a keyed zone was asked without a key, or with one that is not in the key file",
)
KEY_REFUSED = ErrorCode(
    0x7FFFFFFD,
    "key-refused",
    "Access refused: this key has expired, is not valid for this zone, or is not allowed from your network",
    "a known key past its expiry, used for a zone it does not cover, or from outside its networks",
)
ACL_ANSWER = ErrorCode(
    0x7FFFFFFE,
    "refused-by-policy",
    "Access refused by policy: query via a public or open resolver, or from a network that may not query",
    "a zones.yaml `acl` rule with `action: answer` (its default code) matched the client",
)
OVER_QUOTA = ErrorCode(
    0x7FFFFFFF,
    "over-quota",
    "Excessive number of queries: the key's daily quota or the rate limit is used up",
    "a key over its daily quota, or `serve --rrl-answer code` over the rate limit",
)

#: Every error answer, by code.
TABLE: tuple[ErrorCode, ...] = (KEY_UNKNOWN, KEY_REFUSED, ACL_ANSWER, OVER_QUOTA)
BY_CODE: dict[int, ErrorCode] = {e.code: e for e in TABLE}


def is_error_code(code: int) -> bool:
    """Is `code` (an IPv4 address as int) in the error range 127.255.255.0/24?"""
    return ERROR_NET_START <= code <= ERROR_NET_END
