"""Email addresses in hashed zones: the syntax an entry must have, the normalisation a zone
shares with its clients (README, "Email-address lists"), the labels, and zones.yaml `email:`."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from publisher import codes
from publisher.addresses import AddressError
from publisher.emails import (
    ALL,
    EmailSettings,
    address_name,
    digest_label,
    feed_label,
    hash_label,
    label_digest,
    normalise,
    split_address,
)
from publisher.lists.config import load_config
from publisher.lists.tree import DirTree

DEFAULT = EmailSettings()


@pytest.mark.parametrize(
    ("written", "hashed"),
    [
        ("drop@fraud.example", "drop@fraud.example"),
        ("Drop.Box@Fraud.EXAMPLE", "drop.box@fraud.example"),  # dots kept outside gmail.com
        ("drop+invoice@fraud.example", "drop@fraud.example"),  # tags cut everywhere by default
        ("drop+a+b@fraud.example", "drop@fraud.example"),
        ("+drop@fraud.example", "+drop@fraud.example"),  # a leading '+' is no tag (rspamd)
        ("John.Doe+x@gmail.com", "johndoe@gmail.com"),
        ("j.o.h.n.doe@GoogleMail.com", "johndoe@gmail.com"),  # the alias, then gmail.com's dots
        ("<drop@fraud.example>", "drop@fraud.example"),
        ("drop@bücher.example", "drop@xn--bcher-kva.example"),  # an IDN domain as its A-label
    ],
)
def test_the_default_normalisation(written: str, hashed: str) -> None:
    assert normalise(*split_address(written), DEFAULT) == hashed


def test_settings_choose_the_domains() -> None:
    none = EmailSettings(strip_tags=(), strip_dots=(), aliases=())
    assert normalise(*split_address("J.Doe+x@GoogleMail.com"), none) == "j.doe+x@googlemail.com"
    every = EmailSettings(strip_tags=(ALL,), strip_dots=(ALL,))
    assert normalise(*split_address("J.Doe+x@fraud.example"), every) == "jdoe@fraud.example"
    some = EmailSettings(strip_tags=("fraud.example",), strip_dots=())
    assert normalise(*split_address("a.b+x@fraud.example"), some) == "a.b@fraud.example"
    assert normalise(*split_address("a.b+x@other.example"), some) == "a.b+x@other.example"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("fraud.example", "no '@'"),
        ('"john doe"@fraud.example', "quoted local part"),
        ("@fraud.example", "empty local part"),
        ("jöhn@fraud.example", "non-ASCII local part"),
        (".drop@fraud.example", "starts or ends with '.'"),
        ("dr..op@fraud.example", "'..'"),
        ("dr op@fraud.example", "not allowed in an unquoted local part: ' '"),
        ("drop@[192.0.2.1]", "address literal"),
        ("drop@localhost", "no full domain"),
        ("drop@fraud..example", "empty label"),
        ("x" * 65 + "@fraud.example", "RFC 5321 allows 64"),
        ("mailto:drop@fraud.example", "mailto:"),
    ],
)
def test_addresses_an_email_zone_refuses(text: str, says: str) -> None:
    with pytest.raises(AddressError) as caught:
        split_address(text)
    assert says in caught.value.message
    assert caught.value.code == codes.BAD_EMAIL
    assert caught.value.fix


def test_labels_are_what_the_clients_query() -> None:
    addr = "drop@fraud.example"
    assert hash_label(addr, "sha1") == hashlib.sha1(addr.encode()).hexdigest()
    assert hash_label(addr, "md5") == hashlib.md5(addr.encode()).hexdigest()
    b32 = base64.b32encode(hashlib.sha256(addr.encode()).digest()).decode().rstrip("=").lower()
    assert hash_label(addr, "sha256") == b32 and len(b32) == 52
    for algorithm in ("md5", "sha1", "sha256"):
        label = hash_label(addr, algorithm)
        digest = label_digest(label, algorithm)
        assert digest is not None and digest_label(digest, algorithm) == label
    suffixed = EmailSettings(suffix="_email")
    assert address_name("Drop+x@Fraud.example", suffixed) == (addr, hash_label(addr, "sha1") + "._email")


def test_only_the_exact_form_of_a_label_decodes() -> None:
    sha1 = hash_label("drop@fraud.example", "sha1")
    assert label_digest(sha1[:-1], "sha1") is None
    assert label_digest(sha1 + "0", "sha1") is None
    assert label_digest(sha1[:-2] + " 0", "sha1") is None  # bytes.fromhex would skip the space
    assert label_digest(sha1[:-1] + "g", "sha1") is None
    b32 = hash_label("drop@fraud.example", "sha256")
    assert label_digest(b32.replace(b32[-1], "7"), "sha256") is None  # the 4 unused bits set
    assert label_digest(sha1, "sha256") is None


def test_feed_hashes() -> None:
    sha1 = hash_label("drop@fraud.example", "sha1")
    assert feed_label(f"  {sha1.upper()} ", "sha1") == sha1
    hex256 = hashlib.sha256(b"drop@fraud.example").hexdigest()
    assert feed_label(hex256, "sha256") == hash_label("drop@fraud.example", "sha256")
    with pytest.raises(AddressError) as caught:
        feed_label(sha1, "md5")
    assert "looks like a sha1, but this zone hashes with md5 (32 hex digits)" in caught.value.message
    assert caught.value.code == codes.BAD_HASH
    with pytest.raises(AddressError, match="is neither an email address"):
        feed_label("abcde", "sha1")


ZONE = """\
zones:
  - name: ebl.example.test
    kind: email
    role: block
    sources: [ebl/*.yaml, ebl/*.txt]
"""


def _load(tmp_path: Path, text: str) -> tuple[EmailSettings | None, list[str]]:
    (tmp_path / "zones.yaml").write_text(text)
    config, problems = load_config(DirTree(tmp_path))
    shown = [f"{p.location.line}:{p.location.col}: {p.message} [{p.code}]" for p in problems]
    return (config.zones[0].email if config else None), shown


def test_zones_yaml_email(tmp_path: Path) -> None:
    assert _load(tmp_path, ZONE) == (DEFAULT, [])
    full = ZONE + (
        "    email:\n      hash: sha256\n      suffix: _Email.\n      strip_tags: none\n"
        "      strip_dots: [GMAIL.com, proton.me]\n      aliases: {pm.me: proton.me}\n"
    )
    assert _load(tmp_path, full) == (
        EmailSettings("sha256", "_email", (), ("gmail.com", "proton.me"), (("pm.me", "proton.me"),)),
        [],
    )


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ("    email: {suffix: 'a b'}\n", "email suffix"),
        ("    email: {strip_dots: ['*.gmail.com']}\n", "is a wildcard"),
        ("    email: {aliases: {a.example: b.example, b.example: c.example}}\n", "leads to another alias"),
        ("    protect: [wl.example.test]\n", "`protect`"),
        ("    txt: 'Listed: {domain}'\n", "unknown placeholder {domain}"),
    ],
)
def test_email_settings_refused(tmp_path: Path, extra: str, says: str) -> None:
    settings, problems = _load(tmp_path, ZONE + extra)
    assert settings is None
    assert any(says in p for p in problems), problems


def test_one_message_each_for_a_scope_and_a_requests_file(tmp_path: Path) -> None:
    _, problems = _load(tmp_path, ZONE + "    email: {strip_tags: gmail.com}\n")
    assert problems == ["6:25: `strip_tags` is not `all`, `none` or a list of domains [bad-value]"]
    _, problems = _load(tmp_path, ZONE + "    excludes: [ebl/x.yaml]\n    web: {requests: ebl/req.yaml}\n")
    assert problems == [
        "7:21: an email zone takes no requests from the web page (a request names an address or a domain)"
        " [bad-email-settings]"
    ]


def test_email_settings_on_another_kind(tmp_path: Path) -> None:
    text = ZONE.replace("kind: email", "kind: domain") + "    email: {hash: md5}\n"
    _, problems = _load(tmp_path, text)
    assert problems == ["6:12: `email:` is for zones of kind email (this one is of kind domain) [bad-email-settings]"]
