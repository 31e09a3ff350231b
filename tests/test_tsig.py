"""TSIG (RFC 8945) on AXFR and NOTIFY: publisher.server.tsig in process, then against real peers.

In process: keys load from tsig-keygen output and YAML; a signed AXFR streams with every
message signed (checked by dnspython, the client side); unsigned, wrong-secret and unknown
keys are refused with NOTAUTH and the TSIG error RFC 8945 asks for. Against a real NSD
secondary holding the same key: it transfers the zone after our signed NOTIFY, and one
holding a wrong secret gets nothing. `dig -y` checks the same from the command line.
"""

from __future__ import annotations

import base64
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.tsig
import dns.tsigkeyring
import pytest

from conftest import free_port, require_tool, stop_process
from publisher.errors import ServerError
from publisher.model import Secondary
from publisher.server import slow, tsig, xfr
from publisher.server.stats import new_counters
from publisher.server.zoneset import ZoneSet, ZoneSettings
from server_fixtures import publish, sample_zones
from test_server import BL, SERIAL, Served, dig, start_server
from test_server_secondary import NSD_CONF

SECRET = base64.b64encode(bytes(range(32))).decode()
WRONG = base64.b64encode(bytes(range(1, 33))).decode()
KEY = "xfr-key"


def write_keys(path: Path, secret: str = SECRET, name: str = KEY) -> Path:
    # The format `tsig-keygen` prints, which NSD's and BIND's configurations include too.
    path.write_text(f'key "{name}" {{\n\talgorithm hmac-sha256;\n\tsecret "{secret}";\n}};\n')
    path.chmod(0o600)
    return path


def keyring(secret: str = SECRET, name: str = KEY) -> dict:
    return dns.tsigkeyring.from_text({name: ("hmac-sha256", secret)})


@pytest.fixture
def zones(tmp_path: Path) -> ZoneSet:
    settings = {BL: ZoneSettings(secondaries=(Secondary("127.0.0.1", 5300, True, KEY),))}
    zs = ZoneSet.build(sample_zones(SERIAL).values(), settings)
    return replace(zs, tsig=tsig.load_keys(write_keys(tmp_path / "keys.conf")))


def signed_query(name: str, qtype: str, ring: dict, key: str = KEY) -> dns.message.Message:
    q = dns.message.make_query(name, qtype)
    q.use_tsig(ring, key, algorithm="hmac-sha256")
    return q


# --- key files --------------------------------------------------------------------------


def test_key_file_formats(tmp_path: Path) -> None:
    bind = tsig.load_keys(write_keys(tmp_path / "a.conf"))
    yml = tmp_path / "b.yaml"
    yml.write_text(f"{KEY}:\n  algorithm: hmac-sha256\n  secret: {SECRET}\n")
    yml.chmod(0o600)
    other = tsig.load_keys(yml)
    assert bind.get("XFR-KEY.") == other.get(KEY) and bind.get(KEY) is not None
    assert bind.get("nope") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("xfr-key:\n  algorithm: hmac-md5\n  secret: " + SECRET, "algorithm 'hmac-md5'"),
        ("xfr-key:\n  secret: not base64!", "not base64"),
        ("xfr-key:\n  secret: c2hvcnQ=", "too short"),
        ("- a list", "no key could be read"),
        ('key "k" { algorithm hmac-sha256; };', "no key clause could be read"),
    ],
)
def test_bad_key_files_are_refused_with_the_reason(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "keys"
    path.write_text(text)
    with pytest.raises(ServerError, match=message) as info:
        tsig.load_keys(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "text", ["- a list", 'key "k" { algorithm hmac-sha256; };', "xfr-key: [1, 2]", "xfr-key: {secret: [}"]
)
def test_an_unreadable_key_file_names_both_forms_it_may_hold(tmp_path: Path, text: str) -> None:
    """The docs make the file with `tsig-keygen`: the error must not name the YAML form alone."""
    path = tmp_path / "keys"
    path.write_text(text)
    with pytest.raises(ServerError) as info:
        tsig.load_keys(path)
    assert "tsig-keygen" in str(info.value) and 'key "NAME" { algorithm hmac-sha256; secret "BASE64"; };' in str(
        info.value
    )
    assert "NAME: {algorithm: hmac-sha256, secret: BASE64}" in str(info.value)


# --- in process ---------------------------------------------------------------------------


def test_signed_axfr_streams_signed_messages(zones: ZoneSet) -> None:
    ring = keyring()
    q = signed_query(BL, "AXFR", ring)
    got = slow.handle(zones, q.to_wire(), "127.0.0.1", True, new_counters())
    assert isinstance(got, xfr.TransferRequest) and got.signed is not None
    ctx, records = None, 0
    for wire in tsig.sign_stream(xfr.messages(got), got.signed):
        msg = dns.message.from_wire(wire, keyring=ring, request_mac=q.mac, xfr=True, tsig_ctx=ctx, multi=True)
        assert msg.had_tsig  # every message signed, each chained to the one before
        ctx = msg.tsig_ctx
        records += sum(len(rrset) for rrset in msg.answer)
    assert records > 10


@pytest.mark.parametrize(
    ("ring", "key", "error"),
    [
        (keyring(WRONG), KEY, dns.tsig.PeerBadSignature),
        (keyring(SECRET, "other-key"), "other-key", dns.tsig.PeerBadKey),
    ],
    ids=["wrong-secret", "unknown-key"],
)
def test_bad_signatures_get_notauth_with_the_tsig_error(zones: ZoneSet, ring: dict, key: str, error: type) -> None:
    q = signed_query(BL, "AXFR", ring, key)
    got = slow.handle(zones, q.to_wire(), "127.0.0.1", True, new_counters())
    assert isinstance(got, bytes) and got[3] & 0x0F == dns.rcode.NOTAUTH
    with pytest.raises(error):
        dns.message.from_wire(got, keyring=ring, request_mac=q.mac)


def test_keyed_secondary_must_sign(zones: ZoneSet) -> None:
    unsigned = dns.message.make_query(BL, "AXFR").to_wire()
    got = slow.handle(zones, unsigned, "127.0.0.1", True, new_counters())
    assert isinstance(got, bytes) and got[3] & 0x0F == dns.rcode.REFUSED
    # Another loopback address, inside allow_transfer and no keyed secondary: address suffices.
    assert isinstance(slow.handle(zones, unsigned, "127.0.0.2", True, new_counters()), xfr.TransferRequest)


def test_signed_plain_query_gets_a_signed_answer(zones: ZoneSet) -> None:
    ring = keyring()
    q = signed_query(f"7.2.0.192.{BL}", "A", ring)
    got = slow.handle(zones, q.to_wire(), "192.0.2.1", False, new_counters())
    assert isinstance(got, bytes)
    msg = dns.message.from_wire(got, keyring=ring, request_mac=q.mac)
    assert sorted(str(r) for rrset in msg.answer for r in rrset) == ["127.0.0.2", "127.0.0.3"]


def test_signed_notify_from_keyed_secondary_is_acknowledged_and_signed(zones: ZoneSet) -> None:
    ring = keyring()
    q = signed_query(BL, "SOA", ring)
    q.set_opcode(dns.opcode.NOTIFY)
    q.flags |= dns.flags.AA
    q.use_tsig(ring, KEY, algorithm="hmac-sha256")
    got = slow.handle(zones, q.to_wire(), "127.0.0.1", False, new_counters())
    assert isinstance(got, bytes)
    msg = dns.message.from_wire(got, keyring=ring, request_mac=q.mac)
    assert msg.rcode() == dns.rcode.NOERROR and msg.opcode() == dns.opcode.NOTIFY


def test_outgoing_notify_is_signed_and_the_answer_checked(zones: ZoneSet) -> None:
    key = zones.tsig.get(KEY)
    wire, mac = tsig.sign_request(b"\x12\x34\x20\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"\x00\x00\x06\x00\x01", key)
    request = dns.message.from_wire(wire, keyring=keyring())
    assert request.had_tsig and request.mac == mac
    answer = dns.message.make_response(request)
    assert tsig.check_reply(answer.to_wire(), key, mac) is None
    forged = dns.message.make_response(dns.message.from_wire(wire, keyring=keyring()))
    forged.use_tsig(keyring(WRONG), KEY, algorithm="hmac-sha256")
    assert tsig.check_reply(forged.to_wire(), key, mac) is not None
    unsigned = wire[:2] + b"\xa0\x00" + wire[4:10] + b"\x00\x00" + wire[12:17]
    assert tsig.check_reply(unsigned, key, mac) is not None


# --- real peers -----------------------------------------------------------------------------------

NSD_KEY = """key:
    name: "{name}"
    algorithm: hmac-sha256
    secret: "{secret}"
"""
NSD_ZONE = """zone:
    name: {zone}
    zonefile: "{zone}.zone"
    request-xfr: AXFR 127.0.0.1@{primary} {key}
    allow-notify: 127.0.0.1 {key}
"""


def _start_nsd(tmp_path: Path, primary: int, secret: str, port: int) -> subprocess.Popen[bytes]:
    nsd = require_tool("nsd")
    nsd_dir = tmp_path / f"nsd-{port}"
    nsd_dir.mkdir()
    conf = NSD_CONF.format(port=port, dir=nsd_dir) + NSD_KEY.format(name=KEY, secret=secret)
    conf += NSD_ZONE.format(zone=BL, primary=primary, key=KEY)
    (nsd_dir / "nsd.conf").write_text(conf)
    return subprocess.Popen(
        [nsd, "-d", "-c", str(nsd_dir / "nsd.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


@pytest.fixture
def keyed_primary(tmp_path: Path) -> Iterator[tuple[Served, int]]:
    require_tool("dig")
    nsd_port = free_port()
    secondary = {"address": "127.0.0.1", "port": nsd_port, "notify": True, "tsig_key": KEY}
    zones_dir = tmp_path / "zones"
    publish(zones_dir, sample_zones(SERIAL), {BL: {"secondaries": [secondary]}})
    keys = write_keys(tmp_path / "tsig.key")
    primary = start_server(zones_dir, "--tsig-keys", str(keys))
    try:
        yield primary, nsd_port
    finally:
        primary.stop()


def _soa_serial(port: int) -> int | None:
    try:
        got = dig(port, BL, "SOA", "+time=1")
    except AssertionError:
        return None
    if got.status == "NOERROR" and got.answer:
        return int(got.answer[0][3].split()[2])
    return None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    stop_process(proc)


def _wait_serial(port: int, serial: int, timeout: float, log: Served) -> None:
    deadline = time.monotonic() + timeout
    while _soa_serial(port) != serial:
        assert time.monotonic() < deadline, f"NSD has no serial {serial} after {timeout}s:\n" + log.log_text()
        time.sleep(0.2)  # polling NSD's observable state, bounded by the deadline


def test_nsd_with_the_key_transfers_and_takes_signed_notify(keyed_primary: tuple[Served, int], tmp_path: Path) -> None:
    primary, port = keyed_primary
    proc = _start_nsd(tmp_path, primary.port, SECRET, port)
    try:
        # NSD has no zone file: only a signed AXFR (it verifies every message) brings the zone.
        _wait_serial(port, SERIAL, 60, primary)
        primary.wait_for(rf"AXFR of {BL} serial {SERIAL} to 127\.0\.0\.1 \(TSIG {KEY}\)")
        listed = dig(port, f"7.2.0.192.{BL}", "A")
        assert sorted(r[3] for r in listed.answer) == ["127.0.0.2", "127.0.0.3"]
        # A new serial: NSD's refresh is an hour, so only our NOTIFY (which NSD accepts only
        # signed with the key, see allow-notify) can bring it this fast.
        secondary = {"address": "127.0.0.1", "port": port, "notify": True, "tsig_key": KEY}
        publish(primary.zones_dir, sample_zones(SERIAL + 1), {BL: {"secondaries": [secondary]}})
        _wait_serial(port, SERIAL + 1, 30, primary)
        primary.wait_for(rf"notify {BL} serial {SERIAL + 1} to 127\.0\.0\.1:{port}: acknowledged")
    finally:
        _stop(proc)


def test_nsd_with_a_wrong_secret_gets_nothing(keyed_primary: tuple[Served, int], tmp_path: Path) -> None:
    primary, port = keyed_primary
    proc = _start_nsd(tmp_path, primary.port, WRONG, port)
    try:
        primary.wait_for(r"TSIG from 127\.0\.0\.1 refused: bad signature with key xfr-key")
        assert _soa_serial(port) is None
    finally:
        _stop(proc)


def test_dig_axfr_with_and_without_the_key(keyed_primary: tuple[Served, int]) -> None:
    primary, _ = keyed_primary
    base = [require_tool("dig"), "-p", str(primary.port), "@127.0.0.1", BL, "AXFR", "+time=5", "+tries=1"]

    def run(*extra: str) -> str:
        return subprocess.run([*base, *extra], capture_output=True, text=True, timeout=60).stdout

    good = run("-y", f"hmac-sha256:{KEY}:{SECRET}")
    assert "Transfer failed" not in good and good.count("\tSOA\t") == 2 and "tsig verify failure" not in good.lower()
    assert "Transfer failed" in run()  # unsigned, from the keyed secondary's address
    wrong = run("-y", f"hmac-sha256:{KEY}:{WRONG}")
    assert "Transfer failed" in wrong or "BADSIG" in wrong or "NOTAUTH" in wrong


def test_a_flood_of_forged_signatures_is_a_few_log_lines(
    zones: ZoneSet, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anyone can send signed packets: 500 forged ones (and 500 refused IXFRs over UDP, which a
    spoofed address can send too) are each answered, and logged in a line a second at most."""
    for throttle in (tsig.REFUSALS, slow.TRANSFER_REFUSALS):
        monkeypatch.setattr(throttle, "_last", None)
    forged = signed_query(BL, "SOA", keyring(WRONG), KEY).to_wire()
    ixfr = dns.message.make_query(BL, "IXFR").to_wire()
    caplog.set_level("WARNING", logger="publisher.server")
    started = time.monotonic()
    for _ in range(500):
        got = slow.handle(zones, forged, "192.0.2.9", False, new_counters())
        assert isinstance(got, bytes) and got[3] & 0x0F == dns.rcode.NOTAUTH
        got = slow.handle(zones, ixfr, "192.0.2.9", False, new_counters())
        assert isinstance(got, bytes) and got[3] & 0x0F == dns.rcode.REFUSED
    seconds = time.monotonic() - started
    lines = [r.getMessage() for r in caplog.records]
    forged_lines = [m for m in lines if m.startswith("TSIG from 192.0.2.9 refused")]
    refused_lines = [m for m in lines if m.startswith("IXFR of")]
    assert 1 <= len(forged_lines) <= 2 + seconds and 1 <= len(refused_lines) <= 2 + seconds, lines
    assert tsig.REFUSALS.count >= 500 and slow.TRANSFER_REFUSALS.count >= 500
