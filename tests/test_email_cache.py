"""zones/.cache never holds a plain address of an email zone (README, "Email-address lists":
DNS, zones/ and the server's logs see only hashes), while an email feed's parse is still
cached for the next publish's patch."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from tests.test_vcs import commit_all, init_repo, write

from publisher.errors import ValidationFailed
from publisher.publish.cache import CACHE_DIR
from publisher.publish.release import prepare, publish

NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(hours=1)
ZONES = """\
zones:
  - name: hbl.example.test
    kind: email
    role: block
    sources: ["hbl/*.yaml", "hbl/*.txt"]
    code: 127.0.2.2
    txt: "{reason}"
    email: {suffix: _email}
"""
CURATED = "entries:\n  - email: John.Doe+invoice@gmail.com\n    reason: phishing\n"
FEED = ":127.0.2.2:seen in spam\n" + "".join(f"run{i}@spamrun.example\n" for i in range(60)) + "run7@spamrun.example\n"
ADDRESS = re.compile(rb"[\w.+-]+@[\w-]+\.[\w.-]+")


def _addresses_in(zones: Path) -> list[tuple[str, bytes]]:
    return [(p.name, m) for p in sorted((zones / CACHE_DIR).glob("*")) for m in ADDRESS.findall(p.read_bytes())]


def test_no_plain_address_of_an_email_zone_is_written_to_the_parse_cache(tmp_path: Path) -> None:
    lists = init_repo(tmp_path / "repo", {"zones.yaml": ZONES, "hbl/hand.yaml": CURATED, "hbl/feed.txt": FEED})
    zones = tmp_path / "zones"
    publish(lists, zones, now=NOW)
    assert (zones / CACHE_DIR).is_dir()
    assert _addresses_in(zones) == []
    # a feed with a bad line is refused, and the problem (which quotes the line) is not kept either
    write(lists, {"hbl/feed.txt": FEED + "mailto:secret.box@hidden.example\n"})
    commit_all(lists.parent, "a bad line")
    with pytest.raises(ValidationFailed) as refused:
        publish(lists, zones, now=LATER)
    assert "secret.box@hidden.example" in "\n".join(p.format() for p in refused.value.problems)
    assert _addresses_in(zones) == []


def test_an_email_feed_is_still_cached_and_patched(tmp_path: Path) -> None:
    lists = init_repo(tmp_path / "repo", {"zones.yaml": ZONES, "hbl/hand.yaml": CURATED, "hbl/feed.txt": FEED})
    zones = tmp_path / "zones"
    publish(lists, zones, now=NOW)
    assert len(list((zones / CACHE_DIR).glob("*.src"))) == 1  # the feed; the curated file is parsed each time
    write(lists, {"hbl/feed.txt": FEED + "new@spamrun.example\n"})
    commit_all(lists.parent, "one more")
    p = prepare(lists, zones, now=LATER)
    zp = p.plan.zone("hbl.example.test")
    assert zp is not None and [(c.kind, c.entry.text) for c in zp.changes] == [("added", "new@spamrun.example")]
    assert not p.plan.notes
