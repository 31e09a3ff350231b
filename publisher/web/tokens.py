"""Signed confirmation links: a request's fields travel in the link mailed to its contact
address, so nothing is stored until the link comes back.

A token is `base64url(JSON).base64url(HMAC-SHA256)`, unpadded: the JSON is the request's
fields plus a nonce (16 random bytes: a second confirmation of one link is found by it) and
the expiry (`exp`, Unix seconds). The MAC covers a purpose label and the encoded payload, so
no other HMAC made with the same secret (the CSRF tokens) reads as a link. Reading checks the
length before decoding anything, compares the MAC in constant time before parsing the JSON,
and takes only a flat JSON object (strings, integers, null, lists of strings): whatever a
visitor sends, the answer is the payload or a WebError (400 not valid, 410 expired).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets

from publisher.errors import WebError

#: A token longer than this is refused before any decoding. A request at every field's limit,
#: written in 4-byte characters, fits (tests/test_web_requests.py checks it).
MAX_TOKEN = 12288
MIN_SECRET = 16
_PURPOSE = b"publisher-web request-link v1\n"
_B64 = re.compile(r"[A-Za-z0-9_-]+")
_MAC_CHARS = 43  # base64url of 32 bytes, unpadded
Flat = str | int | None | list[str]


def _invalid() -> WebError:
    return WebError(400, "Invalid link", "this link is not valid; use the link from the mail as it came, or ask again")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """Strict base64url: the alphabet only, and the one canonical spelling of the bytes."""
    if not _B64.fullmatch(text) or len(text) % 4 == 1:
        raise _invalid()
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise _invalid() from None
    if _b64(data) != text:  # unused low bits set: another spelling of the same bytes
        raise _invalid()
    return data


def _mac(secret: bytes, body: str) -> bytes:
    if len(secret) < MIN_SECRET:
        raise WebError(503, "Requests not taken", "requests are not taken here: the service has no secret set")
    return hmac.new(secret, _PURPOSE + body.encode("ascii"), hashlib.sha256).digest()


def _flat(payload: object) -> dict[str, Flat]:
    """The payload if it is a flat JSON object, else ValueError (its depth and shape are bounded)."""
    if not isinstance(payload, dict):
        raise ValueError("not an object")
    for key, value in payload.items():
        ok = value is None or isinstance(value, str | int) and not isinstance(value, bool)
        ok = ok or isinstance(value, list) and all(isinstance(v, str) for v in value)
        if not (isinstance(key, str) and ok):
            raise ValueError(f"{key!r} is not a string, integer, null or list of strings")
    return payload


def issue(payload: dict[str, Flat], secret: bytes, *, now: dt.datetime, hours: int) -> str:
    """A link token carrying `payload` (a flat object), a fresh nonce, and its expiry `hours` from `now`."""
    body = dict(_flat(payload))
    body["nonce"] = _b64(secrets.token_bytes(16))
    body["exp"] = int(expires_at(now, hours).timestamp())
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")
    encoded = _b64(data)
    token = f"{encoded}.{_b64(_mac(secret, encoded))}"
    if len(token) > MAX_TOKEN:
        raise ValueError(f"a token of {len(token)} characters is over {MAX_TOKEN}: the fields' limits let too much in")
    return token


def read(token: str, secret: bytes, *, now: dt.datetime) -> dict[str, Flat]:
    """The payload of a token made by `issue` with `secret` (with its `nonce` and `exp`).

    WebError 400 for anything else (forged, edited, truncated, garbage), 410 once expired."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN:
        raise _invalid()
    encoded, dot, mac_text = token.partition(".")
    if not dot or len(mac_text) != _MAC_CHARS or not encoded:
        raise _invalid()
    mac = _unb64(mac_text)
    expected = _mac(secret, encoded) if _B64.fullmatch(encoded) else b""
    if not hmac.compare_digest(mac, expected):
        raise _invalid()
    try:
        payload = _flat(json.loads(_unb64(encoded).decode("utf-8")))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _invalid() from None
    expires = payload.get("exp")
    if not isinstance(expires, int) or not isinstance(payload.get("nonce"), str):
        raise _invalid()
    if now.timestamp() >= expires:
        raise WebError(410, "Link expired", "the link has expired; ask again")
    return payload


def expires_at(now: dt.datetime, hours: int) -> dt.datetime:
    """When a link issued at `now` stops working (aware UTC, whole seconds, as the token says)."""
    return dt.datetime.fromtimestamp(int((now + dt.timedelta(hours=hours)).timestamp()), dt.UTC)


def expiry(payload: dict[str, Flat]) -> dt.datetime:
    """When a read payload's link stops working (aware UTC)."""
    exp = payload["exp"]
    assert isinstance(exp, int)
    return dt.datetime.fromtimestamp(exp, dt.UTC)
