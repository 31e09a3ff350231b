"""IXFR in process: the kept differences, the answer to an IXFR request, the reload hook.

Every IXFR here is applied, as a secondary does (RFC 1995 section 4), to the records an
AXFR of the old serial gives, and must give exactly the records an AXFR of the current
serial gives. Real secondaries (NSD, Knot) take them in test_ixfr_secondaries.py.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.tsigkeyring
import pytest

from builders import source
from publisher.addresses import parse_code
from publisher.compile.compiler import compile_zone
from publisher.compile.zone import CompiledZone
from publisher.model import Secondary, Value
from publisher.server import ixfr, slow, tsig, xfr
from publisher.server.app import Server
from publisher.server.stats import new_counters
from publisher.server.zoneset import ServedZone, ZoneSet, ZoneSettings
from server_fixtures import BL, NOW, publish, with_serial
from test_tsig import KEY, keyring, write_keys

ZONE = BL.name
SERIAL = 2026112700
Rec = tuple[str, str, str]  # owner, type, rdata as text


def bl_zone(serial: int, rows: list[tuple[str, str]]) -> CompiledZone:
    """The bl zone listing `rows` (address, reason), each with 127.0.0.2."""
    values = [(addr, Value(parse_code("127.0.0.2"), reason)) for addr, reason in rows]
    return with_serial(compile_zone(BL, [source("bl/a.txt", values)], as_of=NOW), serial)


BASE = [("192.0.2.7", "spam"), ("198.51.100.0/24", "range"), ("2001:db8:1::/48", "v6"), ("203.0.113.9", "x")]
VERSIONS = [
    BASE,
    [*BASE, ("192.0.2.99", "new")],  # one added
    [r for r in BASE if r[0] != "192.0.2.7"] + [("192.0.2.99", "new")],  # one removed
    [r for r in BASE if r[0] != "192.0.2.7"] + [("192.0.2.99", "other reason"), ("2001:db8:9::1", "v6 host")],
]


def zoneset(zone: CompiledZone, journal: ixfr.Journal | None = None) -> ZoneSet:
    return replace(ZoneSet.build([zone]), ixfr=dict(journal or {}))


def history(versions: list[list[tuple[str, str]]], keep: int = 8) -> list[ZoneSet]:
    """One ZoneSet per version, each with the journal a reload would have given it."""
    sets = [zoneset(bl_zone(SERIAL, versions[0]))]
    for i, rows in enumerate(versions[1:], start=1):
        new = zoneset(bl_zone(SERIAL + i, rows))
        sets.append(replace(new, ixfr=ixfr.extend(sets[-1], new, keep)))
    return sets


def ixfr_query(serial: int | None, *, ring: dict | None = None) -> dns.message.Message:
    q = dns.message.make_query(ZONE, "IXFR")
    if serial is not None:
        q.authority.append(
            dns.rrset.from_text(ZONE + ".", 0, "IN", "SOA", f"ns1.{ZONE}. hostmaster.example.test. {serial} 1 2 3 4")
        )
    if ring is not None:
        q.use_tsig(ring, KEY, algorithm="hmac-sha256")
    return q


def records(wires: list[bytes]) -> list[Rec]:
    out: list[Rec] = []
    for wire in wires:
        msg = dns.message.from_wire(wire, one_rr_per_rrset=True)
        for rrset in msg.answer:
            for rd in rrset:
                out.append((rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype), rd.to_text()))
    return out


def axfr(sz: ServedZone) -> set[Rec]:
    got = records(list(xfr.messages(xfr.TransferRequest(sz, b"\x00\x01", ixfr_question()))))
    return {r for r in got if r[1] != "SOA"}


def ixfr_question() -> bytes:
    return dns.message.make_query(ZONE, "IXFR").to_wire()[12:]


def serial_of(rec: Rec) -> int:
    return int(rec[2].split()[2])


def apply_ixfr(start: set[Rec], seq: list[Rec]) -> tuple[set[Rec], int]:
    """RFC 1995 section 4 as a secondary reads it: (the records after, the steps applied)."""
    assert seq[0][1] == "SOA" and seq[-1] == seq[0], "an IXFR starts and ends with the current SOA"
    state, steps, i = set(start), 0, 1
    while i < len(seq) - 1:
        assert seq[i][1] == "SOA"
        i += 1
        while seq[i][1] != "SOA":
            assert seq[i] in state, f"deletes {seq[i]}, which the secondary does not hold"
            state.remove(seq[i])
            i += 1
        i += 1  # the new SOA
        while seq[i][1] != "SOA":
            assert seq[i] not in state, f"adds {seq[i]}, which the secondary holds"
            state.add(seq[i])
            i += 1
        steps += 1
    return state, steps


def ask(zs: ZoneSet, q: dns.message.Message, *, tcp: bool = True, client: str = "127.0.0.1") -> object:
    return slow.handle(zs, q.to_wire(), client, tcp, new_counters())


def test_ixfr_from_every_kept_serial_gives_the_current_zone(caplog: pytest.LogCaptureFixture) -> None:
    sets = history(VERSIONS)
    current = sets[-1]
    sz = current.zones[ZONE]
    caplog.set_level(logging.INFO, logger="publisher.server")
    for old in sets[:-1]:
        got = ask(current, ixfr_query(old.zones[ZONE].serial))
        assert isinstance(got, xfr.TransferRequest) and got.body is not None
        seq = records(list(xfr.messages(got)))
        assert serial_of(seq[0]) == SERIAL + 3
        after, steps = apply_ixfr(axfr(old.zones[ZONE]), seq)
        assert after == axfr(sz)
        assert steps >= 1
    assert "IXFR of bl.example.test serial 2026112700 -> 2026112703 to 127.0.0.1: 3 differences" in caplog.text


def test_steps_that_undo_each_other_are_condensed_into_one() -> None:
    added, removed = [*BASE, ("192.0.2.99", "x")], BASE
    sets = history([BASE, added, removed, added, removed])
    got = ask(sets[-1], ixfr_query(SERIAL))
    assert isinstance(got, xfr.TransferRequest) and got.body is not None
    seq = records(list(xfr.messages(got)))
    assert [serial_of(r) for r in seq if r[1] == "SOA"] == [SERIAL + 4, SERIAL, SERIAL + 4, SERIAL + 4]
    assert len(seq) == 4  # nothing changed in the end: no record deleted or added


def test_a_current_secondary_gets_the_soa_alone_over_tcp_and_udp() -> None:
    current = history(VERSIONS)[-1]
    for tcp in (True, False):
        got = ask(current, ixfr_query(SERIAL + 3), tcp=tcp)
        assert isinstance(got, bytes)
        msg = dns.message.from_wire(got)
        assert [r.rdtype for r in msg.answer] == [dns.rdatatype.SOA] and msg.answer[0][0].serial == SERIAL + 3


def test_unknown_serial_and_no_soa_fall_back_to_axfr(caplog: pytest.LogCaptureFixture) -> None:
    current = history(VERSIONS)[-1]
    caplog.set_level(logging.INFO, logger="publisher.server")
    for serial in (SERIAL - 5, None):
        got = ask(current, ixfr_query(serial))
        assert isinstance(got, xfr.TransferRequest) and got.body is None  # the whole zone
        seq = records(list(xfr.messages(got)))
        assert {r for r in seq if r[1] != "SOA"} == axfr(current.zones[ZONE])
        # over UDP: the SOA alone, so the client asks again over TCP
        udp = ask(current, ixfr_query(serial), tcp=False)
        assert isinstance(udp, bytes) and len(dns.message.from_wire(udp).answer) == 1
    assert "IXFR of bl.example.test to 127.0.0.1: AXFR fallback (serial 2026112695 is not one" in caplog.text
    assert "AXFR fallback (the request carries no SOA), serial 2026112703" in caplog.text


def test_a_difference_larger_than_the_zone_falls_back_to_axfr(caplog: pytest.LogCaptureFixture) -> None:
    many = [(f"192.0.2.{i}", "r") for i in range(10, 60)]
    sets = history([BASE, many, BASE, many, BASE])  # each step about as large as the zone
    caplog.set_level(logging.INFO, logger="publisher.server")
    got = ask(sets[-1], ixfr_query(SERIAL + 1))
    assert isinstance(got, xfr.TransferRequest) and got.body is None
    assert "is larger than the zone" in caplog.text


def test_over_udp_an_ixfr_that_fits_is_sent_whole_else_the_soa() -> None:
    sets = history(VERSIONS)
    small = ask(sets[1], ixfr_query(SERIAL), tcp=False)
    assert isinstance(small, bytes)
    seq = records([small])
    after, _ = apply_ixfr(axfr(sets[0].zones[ZONE]), seq)
    assert after == axfr(sets[1].zones[ZONE])
    reasons = ["a reason long enough to fill a datagram"] * 30
    big = [*BASE, *((f"192.0.2.{i}", r) for i, r in zip(range(100, 130), reasons))]
    changed = [*BASE, *((f"192.0.2.{i}", "changed" if i < 106 else r) for i, r in zip(range(100, 130), reasons))]
    sets = history([big, changed])
    got = ask(sets[1], ixfr_query(SERIAL), tcp=False)
    assert isinstance(got, bytes) and len(dns.message.from_wire(got).answer) == 1
    assert isinstance(ask(sets[1], ixfr_query(SERIAL)), xfr.TransferRequest)  # TCP: the IXFR


def test_ixfr_is_refused_outside_the_acl_and_signed_when_asked_signed(tmp_path: Path) -> None:
    sets = history(VERSIONS[:2])
    settings = ZoneSettings(secondaries=(Secondary("127.0.0.1", 5300, True, KEY),))
    keyed = ZoneSet.build([sets[1].zones[ZONE].zone], {ZONE: settings})
    keyed = replace(keyed, ixfr=sets[1].ixfr, tsig=tsig.load_keys(write_keys(tmp_path / "keys.conf")))
    refused = ask(keyed, ixfr_query(SERIAL), client="192.0.2.1")
    assert isinstance(refused, bytes) and dns.message.from_wire(refused).rcode() == dns.rcode.REFUSED
    unsigned = ask(keyed, ixfr_query(SERIAL))  # the secondary has a key: it must sign
    assert isinstance(unsigned, bytes) and dns.message.from_wire(unsigned).rcode() == dns.rcode.REFUSED
    ring = keyring()
    q = ixfr_query(SERIAL, ring=ring)
    got = slow.handle(keyed, q.to_wire(), "127.0.0.1", True, new_counters())
    assert isinstance(got, xfr.TransferRequest) and got.body is not None and got.signed is not None
    ctx, seq = None, []
    for wire in tsig.sign_stream(xfr.messages(got), got.signed):
        msg = dns.message.from_wire(wire, keyring=ring, request_mac=q.mac, xfr=True, tsig_ctx=ctx, multi=True)
        assert msg.had_tsig
        ctx = msg.tsig_ctx
        seq += [(s.name.to_text(), dns.rdatatype.to_text(s.rdtype), rd.to_text()) for s in msg.answer for rd in s]
    assert apply_ixfr(axfr(sets[0].zones[ZONE]), seq)[0] == axfr(sets[1].zones[ZONE])


def test_keep_bounds_the_journal_and_zero_disables_ixfr() -> None:
    versions = [[*BASE, (f"192.0.2.{100 + i}", "r")] for i in range(6)]
    sets = history(versions, keep=2)
    kept = [(s.old_serial, s.new_serial) for s in sets[-1].ixfr[ZONE]]
    assert kept == [(SERIAL + 3, SERIAL + 4), (SERIAL + 4, SERIAL + 5)]
    too_old = ask(sets[-1], ixfr_query(SERIAL + 2))
    assert isinstance(too_old, xfr.TransferRequest) and too_old.body is None
    assert history(versions, keep=0)[-1].ixfr == {}


def _publish(zones_dir: Path, version: int) -> None:
    zones = {ZONE: bl_zone(SERIAL + version, VERSIONS[version])}
    publish(zones_dir, zones, {ZONE: {"allow_transfer": ["127.0.0.0/8"]}})


def test_reload_keeps_the_difference_and_a_restart_rebuilds_it_from_zones(tmp_path: Path) -> None:
    zones_dir = tmp_path / "zones"
    _publish(zones_dir, 0)
    server = Server(zones_dir, ["127.0.0.1:0"], send_notify=False)
    _publish(zones_dir, 1)
    assert server.reload()
    assert [(s.old_serial, s.new_serial) for s in server.zones.ixfr[ZONE]] == [(SERIAL, SERIAL + 1)]
    _publish(zones_dir, 2)
    _publish(zones_dir, 3)
    restarted = Server(zones_dir, ["127.0.0.1:0"], send_notify=False)
    assert restarted.zones.ixfr == {}
    restarted._install_seed()  # what start() runs in the background before the NOTIFYs
    steps = restarted.zones.ixfr[ZONE]
    assert [(s.old_serial, s.new_serial) for s in steps] == [(SERIAL + i, SERIAL + i + 1) for i in range(3)]
    got = ask(restarted.zones, ixfr_query(SERIAL))
    assert isinstance(got, xfr.TransferRequest) and got.body is not None
    after, _ = apply_ixfr(axfr(zoneset(bl_zone(SERIAL, VERSIONS[0])).zones[ZONE]), records(list(xfr.messages(got))))
    assert after == axfr(restarted.zones.zones[ZONE])
