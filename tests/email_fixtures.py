"""Email zones for the compile and server tests, built as engineer A's reader will build them.

Not a test module of its own. Sources hold domain rows whose names are `<label>[.<suffix>]`
(`emails.address_name`), as the binding decisions of issue 15 say the list reader makes them.
"""

from __future__ import annotations

import datetime as dt

from publisher.addresses import parse_code
from publisher.compile.compiler import compile_zone
from publisher.compile.zone import CompiledZone
from publisher.emails import EmailSettings, address_name
from publisher.model import NameServer, Soa, SourceData, Value, ZoneConfig

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
HBL_SETTINGS = EmailSettings(suffix="_email")
HBL = ZoneConfig(
    name="hbl.example.test",
    kind="email",
    role="block",
    sources=("hbl/*.txt",),
    code=parse_code("127.0.2.2"),
    txt="listed: {reason}",
    ttl=900,
    soa=Soa("ns.example.test", "hostmaster.example.test", minimum=300),
    ns=(NameServer("ns.example.test"),),
    email=HBL_SETTINGS,
)
EBL_SETTINGS = EmailSettings(hash="sha256")
EBL = ZoneConfig(
    name="ebl.example.test",
    kind="email",
    role="block",
    sources=("ebl/*.txt",),
    code=parse_code("127.0.3.2"),
    txt="{reason}",
    ttl=600,
    soa=Soa("ns.example.test", "hostmaster.example.test", minimum=120),
    ns=(NameServer("ns.example.test"),),
    email=EBL_SETTINGS,
)
LISTED = "Drop.Box+tag@Fraud.example"
OTHER = "phish@bank-login.example"
UNLISTED = "someone@example.org"


def name(address: str, settings: EmailSettings = HBL_SETTINGS) -> str:
    """The name of an address relative to its zone: `<hash label>[.<suffix>]`."""
    return address_name(address, settings)[1]


def email_source(path: str, rows: list[tuple[str, Value]], settings: EmailSettings = HBL_SETTINGS) -> SourceData:
    """A parsed list file of addresses; a row `!ADDRESS` is an exclusion (Value.exclude set by the caller)."""
    src = SourceData(path)
    for line, (address, value) in enumerate(rows, start=1):
        src.add_domain(name(address, settings), False, src.add_value(value), line)
    return src


def hbl_zone(serial: int = 2026112700) -> CompiledZone:
    from dataclasses import replace

    rows = [
        (LISTED, Value(parse_code("127.0.2.2"), "drop box")),
        (OTHER, Value(parse_code("127.0.2.3"), "phishing sender")),
    ]
    zone = compile_zone(HBL, [email_source("hbl/a.txt", rows)], as_of=NOW)
    return replace(zone, info=replace(zone.info, serial=serial))


def ebl_zone(serial: int = 2026112700) -> CompiledZone:
    from dataclasses import replace

    rows = [(LISTED, Value(parse_code("127.0.3.2"), "fraud"))]
    zone = compile_zone(EBL, [email_source("ebl/a.txt", rows, EBL_SETTINGS)], as_of=NOW)
    return replace(zone, info=replace(zone.info, serial=serial))
