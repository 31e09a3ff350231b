"""The refresh rules on canned expansions: what a partner's generated file lists, keeps and
refuses, and the lines an operator reads (the file's `not_listed`, the commit message)."""

from __future__ import annotations

import datetime as dt

from tests.spf_builders import (
    NOW,
    PARTNER_CODE,
    SHARED_CODE,
    failed,
    found,
    listed,
    ok,
    partner,
    read_back,
    refresh,
    zone,
)

from publisher.partners import SharedPools
from publisher.spf.refresh import expiry_day
from publisher.spf.result import Unlisted

INC = "include:_spf.partner.example"
DAY = dt.timedelta(days=1)


def test_a_private_range_is_refused_whole_with_its_chain_and_the_rest_listed() -> None:
    # 10/8 is refused on its own: it does not make _spf.partner.example a shared pool by its size
    result = refresh(ok(found("1.2.3.0/24", INC, "ip4:1.2.3.0/24"), found("10.0.0.0/8", INC, "ip4:10.0.0.0/8")))
    assert listed(result) == ["1.2.3.0/24"]
    assert result.not_listed == (
        "partner.example > include:_spf.partner.example > ip4:10.0.0.0/8: private-use range 10.0.0.0/8 (RFC 1918)",
    )
    assert result.status == "ok" and result.summary == "partner.example: +1 -0 (0 -> 256 addresses)"


def test_a_network_reaching_into_a_documentation_range_is_refused_whole() -> None:
    result = refresh(ok(found("2001:db8::/32", "ip6:2001:db8::/32"), found("2a00:1450::/32", "ip6:2a00:1450::/32")))
    assert listed(result) == ["2a00:1450::/32"]
    assert "documentation range 2001:db8::/32 (RFC 3849" in result.not_listed[0]


def test_plus_all_lists_nothing_and_a_first_refresh_fails() -> None:
    why = "the record of partner.example passes every address (`+all` in partner.example > +all)"
    result = refresh(failed("refused", why))
    assert result.status == "failing" and result.entries == () and result.changed
    assert result.summary == f"partner.example: {why}; nothing listed"
    assert result.text is not None and result.text.endswith(b"\nentries: []\n")
    assert read_back(result, zone()).rows() is not None and len(read_back(result, zone())) == 0


def test_plus_all_after_good_refreshes_keeps_the_last_good_entries_for_the_grace() -> None:
    good = refresh(ok(found("1.2.3.0/24", INC, "ip4:1.2.3.0/24")))
    why = "the record of partner.example passes every address (`+all` in partner.example > +all)"
    result = refresh(failed("refused", why), good, now=NOW + DAY)
    assert result.status == "kept" and listed(result) == ["1.2.3.0/24"]
    assert [e.expires for e in result.entries] == ["2026-12-15"]
    assert result.removed == () and result.added == ()


def test_a_shared_provider_is_not_listed_when_the_zone_has_no_shared_code() -> None:
    cfg = zone(shared=SharedPools(providers=("_spf.google.com",)))
    result = refresh(
        ok(
            found("35.190.247.0/24", "include:_spf.google.com", "include:_netblocks.google.com", "ip4:35.190.247.0/24"),
            found("35.191.0.0/16", "include:_spf.google.com", "include:_netblocks.google.com", "ip4:35.191.0.0/16"),
            found("5.6.7.8", "a:mail.partner.example"),
        ),
        cfg=cfg,
    )
    assert listed(result) == ["5.6.7.8"]
    assert result.not_listed == (
        "partner.example > include:_spf.google.com: shared pool (_spf.google.com is a shared provider)",
    )


def test_a_shared_provider_below_a_listed_name_is_listed_at_the_lower_code() -> None:
    cfg = zone(shared=SharedPools(providers=("google.com",), code=SHARED_CODE))
    result = refresh(ok(found("35.190.247.0/24", "include:_spf.google.com", "ip4:35.190.247.0/24")), cfg=cfg)
    assert [(str(e.network), e.code) for e in result.entries] == [("35.190.247.0/24", SHARED_CODE)]
    assert result.not_listed == ()
    assert result.shared == (
        "partner.example > include:_spf.google.com: _spf.google.com is a shared provider (under google.com); "
        "listed at 127.0.10.9",
    )
    source = read_back(result, cfg)
    assert [source.values[r.value].code for r in source.rows()] == [SHARED_CODE]


def test_an_include_passing_more_than_the_zones_limit_is_a_shared_pool() -> None:
    cfg = zone(shared=SharedPools(max_ipv4=256))
    big = "include:_spf.bigmail.example"
    result = refresh(
        ok(
            found("11.1.0.0/24", big, "ip4:11.1.0.0/24"),
            found("11.2.0.0/24", big, "ip4:11.2.0.0/24"),
            found("12.0.0.0/24", "include:_spf.small.example", "ip4:12.0.0.0/24"),
        ),
        cfg=cfg,
    )
    assert listed(result) == ["12.0.0.0/24"]  # exactly 256 is not more than 256
    assert result.not_listed == (
        "partner.example > include:_spf.bigmail.example: shared pool (include:_spf.bigmail.example passes 512 IPv4 "
        "addresses, more than the zone's 256)",
    )


def test_the_stricter_max_prefix_applies_the_zones_or_the_declarations() -> None:
    expansion = ok(
        found("11.0.0.0/15", "ip4:11.0.0.0/15"),
        found("12.0.0.0/23", "ip4:12.0.0.0/23"),
        found("2a00:1450::/31", "ip6:2a00:1450::/31"),
    )
    by_zone = refresh(expansion)
    assert listed(by_zone) == ["12.0.0.0/23"]
    assert by_zone.not_listed == (
        "partner.example > ip4:11.0.0.0/15: 11.0.0.0/15 is broader than /16, the limit for wl.example.test",
        "partner.example > ip6:2a00:1450::/31: 2a00:1450::/31 is broader than /32, the limit for wl.example.test",
    )
    by_partner = refresh(expansion, who=partner(max_prefix_v4=24, max_prefix_v6=16))
    assert listed(by_partner) == []
    assert "12.0.0.0/23 is broader than /24, the declaration's max_prefix" in by_partner.not_listed[1]
    assert "broader than /32, the limit for wl.example.test" in by_partner.not_listed[2]  # /16 is not stricter


def test_network_filters_clip_and_subtract_exactly() -> None:
    expansion = ok(found("1.2.0.0/22", "ip4:1.2.0.0/22"), found("5.6.7.0/24", "ip4:5.6.7.0/24"))
    kept = refresh(expansion, who=partner(include=["1.2.1.0/24", "1.2.2.128/25"]))
    assert listed(kept) == ["1.2.1.0/24", "1.2.2.128/25"]
    cut = refresh(expansion, who=partner(exclude=["1.2.1.0/24", "5.6.7.128/25"]))
    assert listed(cut) == ["1.2.0.0/24", "1.2.2.0/23", "5.6.7.0/25"]
    assert all(e.via == "partner.example > ip4:1.2.0.0/22" for e in cut.entries[:2])
    assert cut.not_listed == ()  # the declaration's own choice, not a refusal


def test_domain_filters_follow_the_chain_and_names_below() -> None:
    expansion = ok(
        found("1.2.3.0/24", "include:_spf.partner.example", "ip4:1.2.3.0/24"),
        found("5.6.7.0/24", "include:eu._spf.partner.example", "ip4:5.6.7.0/24"),
        found("35.190.247.0/24", "include:_spf.google.com", "ip4:35.190.247.0/24"),
        found("9.9.9.9", "a:mail.partner.example"),
    )
    only = refresh(expansion, who=partner(include=["_spf.partner.example"]))
    assert listed(only) == ["1.2.3.0/24", "5.6.7.0/24"]
    without = refresh(expansion, who=partner(exclude=["_spf.google.com", "mail.partner.example"]))
    assert listed(without) == ["1.2.3.0/24", "5.6.7.0/24"]
    either = refresh(expansion, who=partner(include=["_spf.google.com", "1.2.3.0/25"]))
    assert listed(either) == ["1.2.3.0/25", "35.190.247.0/24"]


def test_a_vanished_record_keeps_the_last_good_entries_for_the_grace_then_drops_them() -> None:
    good = refresh(ok(found("1.2.3.0/24", INC, "ip4:1.2.3.0/24"), found("5.6.7.8", "a:mail.partner.example")))
    gone = refresh(failed("vanished", "record gone (NXDOMAIN)"), good, now=NOW + DAY)
    assert gone.status == "kept" and gone.since == "2026-12-01T07:12:03Z"
    assert listed(gone) == ["1.2.3.0/24", "5.6.7.8"] and len(gone.kept) == 2
    assert gone.summary == "partner.example: record gone (NXDOMAIN); 2 entries kept until 2026-12-15"
    assert gone.text is not None and b'  why: "record gone (NXDOMAIN)"\n  since: 2026-12-01T07:12:03Z\n' in gone.text
    assert b"    expires: 2026-12-15  # kept for the grace: no longer passed since 2026-12-01\n" in gone.text
    source = read_back(gone, zone())
    live = [r for r in source.rows() if source.values[r.value].live(NOW + 14 * DAY)]
    assert len(live) == 2  # still answering through 2026-12-15 (UTC)
    # the same trouble a week later: `since` stays, so does the end of the grace
    still = refresh(failed("vanished", "record gone (NXDOMAIN)"), gone, now=NOW + 8 * DAY)
    assert still.since == gone.since and [e.expires for e in still.entries] == ["2026-12-15", "2026-12-15"]
    assert not still.changed and still.text == gone.text
    over = refresh(failed("vanished", "record gone (NXDOMAIN)"), still, now=NOW + 16 * DAY)
    assert over.status == "failing" and over.entries == () and len(over.removed) == 2
    assert over.summary == "partner.example: +0 -2; record gone (NXDOMAIN); nothing listed"
    assert over.text is not None and over.text.endswith(b"\nentries: []\n")


def test_a_record_good_again_says_so_and_its_kept_entries_no_longer_expire() -> None:
    record = ok(found("1.2.3.0/24", INC, "ip4:1.2.3.0/24"), found("5.6.7.8", "a:mail.partner.example"))
    gone = refresh(failed("vanished", "record gone (NXDOMAIN)"), refresh(record), now=NOW + DAY)
    back = refresh(record, gone, now=NOW + 2 * DAY)
    assert back.status == "ok" and back.changed and [e.expires for e in back.entries] == [None, None]
    assert back.recovered == "record gone (NXDOMAIN)"
    assert back.summary == (
        "partner.example: +0 -0 (257 -> 257 addresses); the record is good again (was: record gone (NXDOMAIN))"
    )
    assert refresh(record, back, now=NOW + 3 * DAY).recovered == ""  # said once


def test_a_permerror_keeps_the_last_good_entries_too() -> None:
    good = refresh(ok(found("1.2.3.0/24", "ip4:1.2.3.0/24")))
    broken = refresh(failed("permerror", "the record of partner.example has a syntax error: 'ip4:1.2.3'"), good)
    assert broken.status == "kept" and listed(broken) == ["1.2.3.0/24"]


def test_a_shrink_past_the_share_keeps_what_went_and_adds_what_came() -> None:
    wide = ok(*(found(f"1.2.{i}.0/24", f"ip4:1.2.{i}.0/24") for i in range(4)))
    good = refresh(wide)
    shrunk = refresh(ok(found("1.2.0.0/24", "ip4:1.2.0.0/24"), found("8.8.4.0/24", "ip4:8.8.4.0/24")), good)
    assert shrunk.status == "kept"
    assert shrunk.why == "the SPF record shrank: 768 of 1024 IPv4 addresses would go (75%, more than the zone's 50%)"
    assert listed(shrunk) == ["1.2.0.0/24", "1.2.1.0/24", "1.2.2.0/24", "1.2.3.0/24", "8.8.4.0/24"]
    assert [str(e.network) for e in shrunk.kept] == ["1.2.1.0/24", "1.2.2.0/24", "1.2.3.0/24"]
    assert [str(e.network) for e in shrunk.added] == ["8.8.4.0/24"] and shrunk.removed == ()
    assert shrunk.summary.startswith("partner.example: +1 -0; the SPF record shrank: 768 of 1024")
    assert shrunk.summary.endswith("; 3 entries kept until 2026-12-14")


def test_a_shrink_within_the_share_removes_at_once() -> None:
    good = refresh(ok(*(found(f"1.2.{i}.0/24", f"ip4:1.2.{i}.0/24") for i in range(4))))
    smaller = refresh(ok(*(found(f"1.2.{i}.0/24", f"ip4:1.2.{i}.0/24") for i in range(2))), good)
    assert smaller.status == "ok" and listed(smaller) == ["1.2.0.0/24", "1.2.1.0/24"]
    assert [str(e.network) for e in smaller.removed] == ["1.2.2.0/24", "1.2.3.0/24"]
    assert smaller.summary == "partner.example: +0 -2 (1024 -> 512 addresses)"


def test_a_timeout_or_a_spent_budget_changes_nothing() -> None:
    good = refresh(ok(found("1.2.3.0/24", "ip4:1.2.3.0/24")))
    timeout = refresh(failed("temperror", "DNS timeout at _spf.partner.example"), good, now=NOW + DAY)
    assert timeout.status == "unchanged" and timeout.text is None and not timeout.changed
    assert timeout.removed == () and timeout.before == timeout.after
    assert timeout.summary == "partner.example: DNS timeout at _spf.partner.example; nothing changed"
    budget = refresh(failed("budget", ""), good)
    assert budget.text is None and budget.summary.endswith("budget ran out before this partner; nothing changed")


def test_an_unchanged_refresh_keeps_refreshed_and_the_added_dates() -> None:
    expansion = ok(found("1.2.3.0/24", "ip4:1.2.3.0/24"))
    first = refresh(expansion)
    again = refresh(expansion, first, now=NOW + 3 * DAY)
    assert not again.changed and again.text == first.text
    assert again.summary == "partner.example: unchanged (256 addresses)"
    more = refresh(ok(found("1.2.3.0/24", "ip4:1.2.3.0/24"), found("5.6.7.8", "ip4:5.6.7.8")), first, now=NOW + 3 * DAY)
    assert more.changed and [e.added for e in more.entries] == ["2026-11-30", "2026-12-03"]
    assert more.text is not None and b"refreshed: 2026-12-03T07:12:03Z" in more.text


def test_unlisted_terms_are_said_in_the_file() -> None:
    unlisted = (Unlisted(("partner.example", "exists:%{i}._spf.partner.example"), "exists cannot be enumerated"),)
    result = refresh(ok(found("1.2.3.0/24", "ip4:1.2.3.0/24"), unlisted=unlisted))
    assert result.not_listed == ("partner.example > exists:%{i}._spf.partner.example: exists cannot be enumerated",)


def test_the_grace_ends_on_a_whole_day_rounded_up() -> None:
    assert expiry_day(dt.datetime(2026, 11, 30, 0, 0, tzinfo=dt.UTC), 14 * 86400) == "2026-12-13"
    assert expiry_day(dt.datetime(2026, 11, 30, 0, 0, 1, tzinfo=dt.UTC), 14 * 86400) == "2026-12-14"


def test_entries_at_the_partners_code_take_it_from_the_defaults() -> None:
    result = refresh(ok(found("1.2.3.0/24", "ip4:1.2.3.0/24")))
    source = read_back(result, zone())
    assert [source.values[r.value].code for r in source.rows()] == [PARTNER_CODE]
    assert result.text is not None and b"    code:" not in result.text
