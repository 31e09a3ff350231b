"""publisher.web.view: what the lookup page and API answer, read from the published generation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.test_publish import commit_file
from tests.web_fixtures import ABUSE, IMG, NOW, SCRIPT, Published

from publisher.cli.app import main
from publisher.errors import WebError
from publisher.publish.release import publish
from publisher.web.app import create_app
from publisher.web.settings import WebSettings
from publisher.web.view import Views


def test_a_listed_address_shows_the_answer_its_meaning_and_the_public_fields_only(pub: Published) -> None:
    found = pub.views.current().lookup("192.0.2.3")
    assert found.query == "192.0.2.3" and found.kind == "ip"
    bl, wl = found.zones
    assert (bl.zone, bl.status, bl.listed) == ("bl.example.test", "listed", True)
    assert [(a.code, a.meaning, a.txt) for a in bl.answers] == [
        ("127.0.0.2", "source of spam", "Listed: snowshoe spam")
    ]
    (entry,) = bl.entries
    assert entry.entry == "192.0.2.0/28"
    assert entry.fields == (("reason", "snowshoe spam"), ("added", "2026-11-01"), ("expires", "2027-01-31"))
    assert (wl.status, wl.answers, wl.entries) == ("not allowlisted", (), ())
    assert found.generation == pub.views.current().generation and found.published_at.startswith("2026-11-27")


def test_an_unlisted_an_allowlisted_and_an_excluded_address(pub: Published) -> None:
    view = pub.views.current()
    assert [z.status for z in view.lookup("8.8.8.8").zones] == ["not listed", "not allowlisted"]
    bl, wl = view.lookup("203.0.113.25").zones
    assert (bl.status, wl.status) == ("not listed", "allowlisted")
    assert wl.answers[0].meaning == "business partner"
    # wl publishes owner (its `public` names it), never the contact or the ticket
    assert wl.entries[0].fields == (
        ("reason", "partner gateway"),
        ("added", "2026-06-01"),
        ("owner", "Example Partner"),
    )
    # an exclusion inside a listed block makes a hole: not listed, and no entry shown for it
    assert view.lookup("192.0.2.5").zones[0].status == "not listed"
    assert view.lookup("192.0.2.5").zones[0].entries == ()


def test_a_domain_shows_the_fields_its_zone_makes_public(pub: Published) -> None:
    (dbl,) = pub.views.current().lookup("SPAM.example.").zones
    assert dbl.listed and dbl.answers[0].txt == "spam.example: spam domain"
    assert dbl.entries[0].fields == (("reason", "spam domain"), ("ticket", "DBL-9"), ("by", "dave"))
    (clean,) = pub.views.current().lookup("ham.example").zones
    assert clean.status == "not listed"


def test_the_test_point_is_listed_by_definition_and_by_no_entry(pub: Published) -> None:
    bl, wl = pub.views.current().lookup("127.0.0.2").zones
    assert bl.listed and bl.test_point and bl.entries == ()
    assert pub.views.current().lookup("::ffff:127.0.0.2").query == "127.0.0.2"
    (dbl,) = pub.views.current().lookup("test").zones
    assert dbl.test_point


def test_hostile_text_comes_back_as_the_operator_wrote_it(pub: Published) -> None:
    """Escaping is the page's job; the view hands the text over unchanged."""
    view = pub.views.current()
    assert view.lookup("198.51.100.7").zones[0].entries[0].get("reason") == SCRIPT
    assert view.lookup("198.51.100.8").zones[0].answers[0].txt == f"Listed: {IMG}"


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("", "give an IPv4"),
        ("x" * 300, "longer than 255"),
        ("192.0.2.1\x00", "control characters"),
        ("192.0.2.0/24", "look up one address"),
        ("*.example.com", "wildcard"),
        ("<script>", "not an address or a domain"),
        ("\udcff.example", "not an address or a domain"),
    ],
)
def test_anything_but_an_address_or_a_domain_is_a_400_on_the_q_field(pub: Published, query: str, says: str) -> None:
    with pytest.raises(WebError) as caught:
        pub.views.current().lookup(query)
    assert caught.value.status == 400 and caught.value.field == "q" and says in caught.value.detail


def test_what_the_request_service_asks_of_the_view(pub: Published) -> None:
    view = pub.views.current()
    assert view.listed_in("192.0.2.3") == ("bl.example.test",)
    assert view.listed_in("203.0.113.25") == ("wl.example.test",)
    assert view.listed_in("spam.example") == ("dbl.example.test",)
    assert view.listed_in("not an address") == ()
    facts = view.zone_facts()
    assert sorted(facts) == ["bl.example.test", "dbl.example.test", "wl.example.test"]
    assert facts["wl.example.test"].role == "allow" and facts["bl.example.test"].page.requests == "bl/delisted.yaml"
    assert view.zones["dbl.example.test"].page.requests is None


def test_a_new_publish_is_shown_without_a_restart(pub: Published) -> None:
    views = Views(pub.zones, pub.lists, interval=0.05)
    views.start()
    try:
        first = views.wait_for(lambda v: True, timeout=30)
        assert first is not None and first.lookup("198.51.100.99").zones[0].status == "not listed"
        commit_file(pub.lists, "bl/abuse.yaml", ABUSE + "  - ip: 198.51.100.99\n    reason: new listing\n", "list it")
        publish(pub.lists, pub.zones, now=NOW.replace(hour=11))
        second = views.wait_for(lambda v: v.generation != first.generation, timeout=30)
        assert second is not None
        found = second.lookup("198.51.100.99").zones[0]
        assert found.status == "listed" and found.entries[0].get("reason") == "new listing"
        assert first.lookup("198.51.100.99").zones[0].status == "not listed"  # the old view is untouched
    finally:
        views.stop()


def test_a_broken_generation_keeps_the_old_view(pub: Published) -> None:
    before = pub.views.current().generation
    bad = pub.zones / "gen-20991231T000000Z-bad"
    bad.mkdir()
    (bad / "manifest.json").write_text("not json")
    os.symlink(bad.name, pub.zones / "current.new")
    os.replace(pub.zones / "current.new", pub.zones / "current")
    assert not pub.views.refresh()
    assert pub.views.current().generation == before
    assert pub.views.current().lookup("192.0.2.3").zones[0].listed


def test_nothing_published_is_try_later_to_the_public_and_the_path_and_fix_once_to_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    views = Views(tmp_path / "zones", tmp_path / "lists")
    for _ in range(3):
        assert not views.refresh()
    with pytest.raises(WebError) as caught:
        views.current()
    assert (caught.value.status, caught.value.detail) == (503, "nothing is published yet; try later")
    logged = [r.getMessage() for r in caplog.records if "nothing published yet" in r.getMessage()]
    assert logged == [f"{tmp_path / 'zones'}: nothing published yet (run `make publish` or `make compile`)"]
    api = TestClient(create_app(WebSettings(tmp_path / "zones", tmp_path / "lists"), views)).get("/api/v1/zones")
    assert api.status_code == 503 and api.json()["detail"] == "nothing is published yet; try later"
    assert str(tmp_path) not in api.text


def test_a_work_tree_compile_is_shown_with_its_entries(tmp_path: Path, pub: Published) -> None:
    """What `make compile` / `make serve` write before the first publish (source: worktree)."""
    zones = tmp_path / "compiled"
    assert main(["--lists", str(pub.lists), "--zones", str(zones), "compile"]) == 0
    views = Views(zones, pub.lists)
    assert views.refresh()
    bl = views.current().lookup("192.0.2.3").zones[0]
    assert bl.listed and bl.entries[0].get("reason") == "snowshoe spam"
