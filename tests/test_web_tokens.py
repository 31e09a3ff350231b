"""Confirmation link tokens: what we signed reads back; anything else is a 400 (or 410 once
expired), never another exception, whatever a visitor puts in the link."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.errors import WebError
from publisher.web import tokens

SECRET = b"k" * 32
NOW = dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.UTC)
PAYLOAD: dict[str, tokens.Flat] = {
    "kind": "delist",
    "target": "198.51.100.77",
    "zones": ["bl.example.test"],
    "reason": "fixed: the box was cleaned\nand patched",
    "zone": None,
}


def refused(token: str, *, secret: bytes = SECRET, now: dt.datetime = NOW) -> WebError:
    with pytest.raises(WebError) as caught:
        tokens.read(token, secret, now=now)
    return caught.value


def test_a_token_reads_back_with_a_fresh_nonce_and_its_expiry() -> None:
    one = tokens.issue(PAYLOAD, SECRET, now=NOW, hours=48)
    two = tokens.issue(PAYLOAD, SECRET, now=NOW, hours=48)
    assert one != two  # the nonce differs
    read = tokens.read(one, SECRET, now=NOW + dt.timedelta(hours=47, minutes=59))
    assert {k: v for k, v in read.items() if k not in ("nonce", "exp")} == PAYLOAD
    assert read["nonce"] != tokens.read(two, SECRET, now=NOW)["nonce"]
    assert len(base64.urlsafe_b64decode(str(read["nonce"]) + "==")) == 16
    assert tokens.expiry(read) == NOW + dt.timedelta(hours=48)
    assert set(one) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")  # URL-safe as is


def test_an_expired_link_is_410_and_says_to_ask_again() -> None:
    token = tokens.issue(PAYLOAD, SECRET, now=NOW, hours=48)
    err = refused(token, now=NOW + dt.timedelta(hours=48))
    assert (err.status, err.detail) == (410, "the link has expired; ask again")


def test_another_secret_an_edited_payload_or_a_truncated_link_is_400() -> None:
    token = tokens.issue(PAYLOAD, SECRET, now=NOW, hours=48)
    body, mac = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    data["target"] = "203.0.113.9"
    edited = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode() + "." + mac
    later = dict(data, target="198.51.100.77", exp=data["exp"] + 10**6)  # a forged, later expiry
    extended = base64.urlsafe_b64encode(json.dumps(later).encode()).rstrip(b"=").decode() + "." + mac
    for bad in (edited, extended, token[:-1], token[:40], body, token + "A", token.replace(".", "")):
        err = refused(bad)
        assert (err.status, err.field) == (400, None) and "not valid" in err.detail, bad
    assert refused(token, secret=b"x" * 32).status == 400
    # Expired *and* forged: the MAC is checked first, so it is "not valid", not "expired".
    assert refused(edited, now=NOW + dt.timedelta(days=30)).status == 400


def test_another_spelling_of_the_same_bytes_is_refused() -> None:
    token = tokens.issue(PAYLOAD, SECRET, now=NOW, hours=48)
    body, mac = token.split(".")
    # The MAC's last character carries 2 unused bits (43 chars for 32 bytes): set one.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = alphabet[alphabet.index(mac[-1]) ^ 1]
    assert base64.urlsafe_b64decode(mac[:-1] + twin + "=") == base64.urlsafe_b64decode(mac + "=")
    assert refused(f"{body}.{mac[:-1]}{twin}").status == 400


def test_an_oversized_link_is_refused_before_it_is_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decoding(*args: object) -> bytes:
        raise AssertionError("decoded a token over the size limit")

    monkeypatch.setattr("base64.urlsafe_b64decode", no_decoding)
    monkeypatch.setattr("hmac.new", no_decoding)
    assert refused("A" * (tokens.MAX_TOKEN + 1) + "." + "B" * 43).status == 400
    assert refused("A" * 10_000_000).status == 400


def test_a_link_without_a_secret_set_is_not_issued() -> None:
    with pytest.raises(WebError) as caught:
        tokens.issue(PAYLOAD, b"", now=NOW, hours=48)
    assert caught.value.status == 503


def test_only_flat_payloads_are_signed() -> None:
    with pytest.raises(ValueError, match="not a string"):
        tokens.issue({"zones": [{"deep": ["x"]}]}, SECRET, now=NOW, hours=1)  # type: ignore[list-item]


def _signed(body: bytes) -> str:
    """A token whose MAC is right but whose payload is not what issue writes (a leaked secret)."""
    encoded = base64.urlsafe_b64encode(body).rstrip(b"=").decode()
    return f"{encoded}.{base64.urlsafe_b64encode(tokens._mac(SECRET, encoded)).rstrip(b'=').decode()}"


def test_a_signed_payload_of_the_wrong_shape_is_still_only_a_400() -> None:
    for body in (b"[" * 3000 + b"]" * 3000, b"\xff\xfe", b'"x"', b'{"exp": "soon", "nonce": "n"}', b'{"a": {"b": 1}}'):
        assert refused(_signed(body)).status == 400


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_garbage_is_always_a_400(text: str) -> None:
    assert refused(text).status == 400


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0), st.sampled_from("AQgw_-.=%+/ \n\x00é"), st.booleans())
def test_a_changed_character_anywhere_is_a_400(at: int, char: str, insert: bool) -> None:
    token = tokens.issue(PAYLOAD, SECRET, now=NOW, hours=48)
    at %= len(token)
    changed = token[:at] + char + token[at + (0 if insert else 1) :]
    if changed == token:
        return
    err = refused(changed)
    assert err.status == 400 and "not valid" in err.detail
