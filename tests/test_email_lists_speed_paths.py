"""The quick paths of an email zone's readers give exactly what the full paths give: the fast
address naming (email_entries.EmailNamer.quick), a patched parse of a feed (bulk_patch.py), a
cached parse (source_codec.py) and the parse cache key (publish/cache.py)."""

from __future__ import annotations

import dataclasses
import hashlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.addresses import AddressError
from publisher.emails import EmailSettings, address_name
from publisher.lists.bulk import read_bulk
from publisher.lists.bulk_patch import patch_bulk
from publisher.lists.email_entries import EmailNamer
from publisher.lists.query import search
from publisher.lists.source_codec import decode_source, encode_source
from publisher.model import SourceData, ZoneConfig
from publisher.publish.cache import source_key

SETTINGS = [
    EmailSettings(),
    EmailSettings("md5", "_email", (), ("*",), ()),
    EmailSettings("sha256", "a.b", ("gmail.com", "proton.me"), ("gmail.com",), (("pm.me", "proton.me"),)),
]
ZONE = ZoneConfig("ebl.example.test", "email", "block", ("*.txt",), 0x7F000002, "{reason}", email=EmailSettings())

_local = st.text(alphabet="abcdefghijklmnopqrstuvwxyzAB0123456789.+-_!#$=", min_size=1, max_size=70)
_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=66)
_domain = st.one_of(
    st.sampled_from(["gmail.com", "googlemail.com", "pm.me", "proton.me", "fraud.example"]),
    st.lists(_label, min_size=1, max_size=4).map(".".join),
)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(local=_local, domain=_domain, which=st.integers(0, len(SETTINGS) - 1))
def test_the_quick_name_is_the_full_name(local: str, domain: str, which: int) -> None:
    text = f"{local}@{domain}"
    namer = EmailNamer(SETTINGS[which])
    quick = namer.quick(text)
    try:
        full = address_name(text, SETTINGS[which])[1]
    except AddressError:
        assert quick is None, text  # the quick path never takes what the full path refuses
        return
    assert quick in (None, full), text


def test_the_quick_path_takes_the_common_forms() -> None:
    namer = EmailNamer(EmailSettings())
    for text in ["drop@fraud.example", "j.doe+tag@googlemail.com", "a_b-c@mail.sub.example.net"]:
        assert namer.quick(text) == address_name(text, EmailSettings())[1]
    for text in ["Drop@fraud.example", "drop@Fraud.example", " drop@fraud.example", "drop@fraud.example."]:
        assert namer.quick(text) is None
    # at the limits the quick path says what the full path says
    long_domain = ".".join(["d" * 63] * 3) + ".example"
    for text in [
        "a" * 64 + "@x.example",
        "a" * 65 + "@x.example",
        "a@" + "x" * 63 + ".example",
        "a@" + "x" * 64 + ".example",
        "a" * 50 + "@" + long_domain,
        "a" * 60 + "@" + long_domain,
        "a..b@x.example",
        ".a@x.example",
        "a@-x.example",
        "a@x",
    ]:
        try:
            full: str | None = address_name(text, EmailSettings())[1]
        except AddressError:
            full = None
        assert namer.quick(text) == full, text


# --- a patched and a cached parse of an email feed ---------------------------------------

HEAD = "# an email feed's head line, which no edit touches, longer than sixty-four bytes"
POOL = [
    "drop@fraud.example",
    "drop@fraud.example",
    "Drop@Fraud.example",
    "j.doe+x@gmail.com",
    "jdoe@googlemail.com",
    hashlib.sha1(b"drop@fraud.example").hexdigest(),
    hashlib.sha1(b"other@fraud.example").hexdigest().upper(),
    "refunds@phish.example  # a comment",
    "bad@@line.example",
    "0123456789abcdef0123456789abcdef",
    "mailto:x@y.example",
    "x@y.example :3:phishing",
    "!drop@fraud.example",
    ":127.0.0.4:Seen in spam",
    ":2:from $",
    "",
    "# comment",
]


def _check(old_text: str, new_text: str) -> None:
    old_data, new_data = old_text.encode(), new_text.encode()
    old, marks = read_bulk("feed.txt", old_data, ZONE)
    want, want_marks = read_bulk("feed.txt", new_data, ZONE)
    patched = patch_bulk(old, marks, old_data, new_data, ZONE)
    if patched is not None:
        for field in dataclasses.fields(SourceData):
            assert getattr(patched.source, field.name) == getattr(want, field.name), field.name
        assert patched.marks == want_marks
    back, _ = decode_source(encode_source(want))
    for field in dataclasses.fields(SourceData):
        assert getattr(back, field.name) == getattr(want, field.name), field.name


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.lists(st.integers(0, len(POOL) - 1), min_size=0, max_size=25),
    edits=st.lists(st.tuples(st.integers(1, 30), st.integers(0, len(POOL) - 1), st.booleans()), min_size=1, max_size=4),
)
def test_a_patched_or_cached_email_feed_is_the_full_parse(base: list[int], edits: list[tuple[int, int, bool]]) -> None:
    lines = [HEAD] + [POOL[i] for i in base]
    new = list(lines)
    for at, what, insert in edits:
        pos = 1 + at % len(new)
        if insert or pos >= len(new):
            new.insert(pos, POOL[what])
        else:
            new[pos] = POOL[what]
    _check("\n".join(lines) + "\n", "\n".join(new) + "\n")


def test_one_new_address_in_a_feed_is_patched() -> None:
    old = "\n".join([HEAD, *(f"user{i}@fraud.example" for i in range(50))]) + "\n"
    new = old + "Another.One@Fraud.example\n"
    old_src, marks = read_bulk("feed.txt", old.encode(), ZONE)
    patched = patch_bulk(old_src, marks, old.encode(), new.encode(), ZONE)
    assert patched is not None
    assert patched.source.dom_name[-1] == address_name("another.one@fraud.example", EmailSettings())[1]
    _check(old, new)


def test_the_cache_key_follows_the_normalisation() -> None:
    key = source_key("ebl/feed.txt", "ab" * 20, ZONE)
    other = dataclasses.replace(ZONE, email=EmailSettings(strip_dots=()))
    assert source_key("ebl/feed.txt", "ab" * 20, other) != key
    assert source_key("ebl/feed.txt", "ab" * 20, dataclasses.replace(ZONE, email=EmailSettings(suffix="_e"))) != key


# --- search ----------------------------------------------------------------------------


def test_search_by_plain_address_finds_curated_and_feed_entries() -> None:
    from publisher.lists.curated import read_source

    curated = read_source("ebl/a.yaml", b"entries:\n  - email: John.Doe+x@googlemail.com\n    reason: r\n", ZONE)
    feed = read_source("ebl/feed.txt", b"johndoe@gmail.com\nother@fraud.example\n", ZONE)
    sources = {ZONE.name: [curated, feed]}
    found = search((ZONE,), sources, "JohnDoe@gmail.com", limit=10)
    assert [(m.path, m.line, m.text) for m in found.shown] == [
        ("ebl/a.yaml", 2, "John.Doe+x@googlemail.com"),
        ("ebl/feed.txt", 1, address_name("johndoe@gmail.com", EmailSettings())[1]),
    ]
    assert found.total == 2
    # a word is in many hashes: a feed's lines match whole addresses or hashes only
    assert search((ZONE,), sources, "ab", limit=10).total == 0


def test_expiring_lists_an_email_zone_entry_as_written() -> None:
    import datetime as dt

    from publisher.lists.curated import read_source
    from publisher.lists.query import expiring

    src = read_source("ebl/a.yaml", b"entries:\n  - email: Prize@Lottery.example\n    expires: 2027-02-28\n", ZONE)
    found = expiring((ZONE,), {ZONE.name: [src]}, as_of=dt.datetime(2027, 2, 1, tzinfo=dt.UTC), within=dt.timedelta(30))
    assert [(e.path, e.line, e.text) for e in found] == [("ebl/a.yaml", 2, "Prize@Lottery.example")]
