"""Subscriber mirrors in allow_transfer (`{key: NAME}`, `{key: NAME, networks: [...]}`), end to end.

A lists folder is compiled by `publisher compile` and served by the real server with a
`--tsig-keys` file; real `dig -y` AXFR and IXFR show: a subscriber's key passes for the zones
that grant it, another subscriber's key (a zone it is not granted, or from outside its
networks) is refused, an unsigned request from the same address is refused, and removing the
entry from zones.yaml (next compile) or the key from the key file (next reload) revokes it.
A real NSD takes the zone signing with its own subscriber key.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import dns.message
import dns.tsigkeyring
import pytest

from conftest import ROOT, free_port, require_tool, stop_process
from publisher.addresses import parse_network
from publisher.publish.manifest import load_published, read_manifest
from publisher.server import slow, tsig, xfr
from publisher.server.stats import new_counters
from publisher.server.zoneset import ZoneSet
from test_server import Served, dig, start_server
from test_server_secondary import NSD_CONF

BL, DBL = "bl.example.test", "dbl.example.test"
ACME = base64.b64encode(bytes(range(32))).decode()
BETA = base64.b64encode(bytes(range(100, 132))).decode()

ZONES_YAML = """\
zones:
  - name: bl.example.test
    kind: ip
    role: block
    sources: [bl/*.txt]
    allow_transfer:
      - 192.0.2.0/24
{acme}      - {{key: mirror-beta, networks: [198.51.100.0/24]}}
  - name: dbl.example.test
    kind: domain
    role: block
    sources: [dbl/*.txt]
    allow_transfer:
      - {{key: mirror-beta}}
"""
ACME_ENTRY = "      - {key: mirror-acme}\n"


def _keys(path: Path, names: dict[str, str]) -> Path:
    path.write_text(
        "".join(f'key "{n}" {{\n\talgorithm hmac-sha256;\n\tsecret "{s}";\n}};\n' for n, s in names.items())
    )
    path.chmod(0o600)
    return path


def _compile(lists: Path, zones: Path, acme: bool = True) -> None:
    (lists / "zones.yaml").write_text(ZONES_YAML.format(acme=ACME_ENTRY if acme else ""))
    cmd = [sys.executable, "-m", "publisher", "--lists", str(lists), "--zones", str(zones), "compile"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    require_tool("dig")
    lists, zones = tmp_path / "lists", tmp_path / "zones"
    (lists / "bl").mkdir(parents=True)
    (lists / "dbl").mkdir()
    (lists / "bl" / "spam.txt").write_text("192.0.2.7\n198.51.100.0/24\n")
    (lists / "dbl" / "spam.txt").write_text("spam.example\n")
    _compile(lists, zones)
    keys = _keys(tmp_path / "tsig.key", {"mirror-acme": ACME, "mirror-beta": BETA})
    server = start_server(zones, "--tsig-keys", str(keys))
    try:
        yield server
    finally:
        server.stop()


def _xfr(port: int, zone: str, qtype: str = "AXFR", key: tuple[str, str] | None = None) -> str:
    cmd = [require_tool("dig"), "-p", str(port), "@127.0.0.1", zone, qtype, "+time=5", "+tries=1"]
    if key is not None:
        cmd += ["-y", f"hmac-sha256:{key[0]}:{key[1]}"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout


def _passes(out: str) -> bool:
    # A whole zone: the SOA opens and closes it; no failure, no TSIG complaint.
    return (
        "Transfer failed" not in out and out.count("\tSOA\t") == 2 and "tsig" not in out.lower().replace("tsig\t", "")
    )


def _refused(out: str) -> bool:
    return "Transfer failed" in out or "NOTAUTH" in out or "REFUSED" in out


def test_subscriber_keys_pass_and_others_are_refused(served: Served) -> None:
    port = served.port
    acme, beta = ("mirror-acme", ACME), ("mirror-beta", BETA)
    serial = int(dig(port, BL, "SOA").answer[0][3].split()[2])
    # mirror-acme: any address, bl only; AXFR and IXFR (from an older serial: the whole zone)
    assert _passes(_xfr(port, BL, "AXFR", acme))
    assert _passes(_xfr(port, BL, f"IXFR={serial - 1}", acme))
    assert _refused(_xfr(port, DBL, "AXFR", acme))  # a zone that does not grant it
    # mirror-beta: dbl from anywhere, bl only from 198.51.100.0/24 (we are 127.0.0.1)
    assert _passes(_xfr(port, DBL, "AXFR", beta))
    assert _refused(_xfr(port, BL, "AXFR", beta))
    # unsigned from the same address: allow_transfer's networks do not hold 127.0.0.1
    assert _refused(_xfr(port, BL, "AXFR"))
    assert _refused(_xfr(port, DBL, "AXFR"))
    served.wait_for(rf"AXFR of {BL} serial \d+ to 127\.0\.0\.1 \(TSIG mirror-acme\)")
    # the first refusal's line (the rest fall in the same second: counted, not logged)
    served.wait_for(rf"AXFR of {DBL} refused to 127\.0\.0\.1: signed with key mirror-acme, which is neither")


def _ask(zs: ZoneSet, zone: str, client: str, key: tuple[str, str] | None, qtype: str = "AXFR") -> object:
    q = dns.message.make_query(zone, qtype)
    if key is not None:
        q.use_tsig(dns.tsigkeyring.from_text({key[0]: ("hmac-sha256", key[1])}), key[0], algorithm="hmac-sha256")
    return slow.handle(zs, q.to_wire(), client, True, new_counters())


def test_who_may_transfer_from_which_address(
    served: Served, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compiled manifest as the server loads it (ZoneSet.from_published), asked in process
    from addresses loopback cannot have: a networks-restricted key inside and outside them."""
    zs = replace(ZoneSet.from_published(load_published(served.zones_dir)), tsig=tsig.load_keys(tmp_path / "tsig.key"))
    assert dict(zs.zones[BL].settings.transfer_keys) == {
        "mirror-acme": (),
        "mirror-beta": (parse_network("198.51.100.0/24"),),
    }
    acme, beta = ("mirror-acme", ACME), ("mirror-beta", BETA)
    caplog.set_level("WARNING", logger="publisher.server")
    cases = [
        (BL, "198.51.100.9", beta, None),
        (BL, "203.0.113.1", acme, None),
        (BL, "192.0.2.1", None, None),  # allow_transfer's network, unsigned
        (BL, "203.0.113.1", beta, "signed with subscriber key mirror-beta, which allow_transfer grants only from"),
        (BL, "198.51.100.9", None, "unsigned, and not in allow_transfer (a subscriber mirror must sign with its"),
        (DBL, "198.51.100.9", acme, "signed with key mirror-acme, which is neither a secondary's tsig_key nor"),
    ]
    for zone, client, key, why in cases:
        monkeypatch.setattr(slow.TRANSFER_REFUSALS, "_last", None)
        caplog.clear()
        got = _ask(zs, zone, client, key)
        if why is None:
            assert isinstance(got, xfr.TransferRequest), (zone, client, key)
        else:
            assert isinstance(got, bytes) and got[3] & 0x0F == 5  # REFUSED (signed replies stay signed)
            assert f"AXFR of {zone} refused to {client}: {why}" in caplog.text, caplog.text


def test_revoked_in_zones_yaml_or_in_the_key_file(served: Served, tmp_path: Path) -> None:
    port = served.port
    acme, beta = ("mirror-acme", ACME), ("mirror-beta", BETA)
    assert _passes(_xfr(port, BL, "AXFR", acme)) and _passes(_xfr(port, DBL, "AXFR", beta))
    # 1. the entry leaves zones.yaml: a new generation, the same serials (not zone content)
    before = read_manifest(served.zones_dir)
    mark = len(served.lines)
    _compile(tmp_path / "lists", served.zones_dir, acme=False)
    after = read_manifest(served.zones_dir)
    assert before is not None and after is not None and after.generation != before.generation
    assert {n: e.serial for n, e in after.zones.items()} == {n: e.serial for n, e in before.zones.items()}
    served.wait_for(r"reloaded generation", start=mark)
    assert _refused(_xfr(port, BL, "AXFR", acme))
    assert _passes(_xfr(port, DBL, "AXFR", beta))
    # 2. mirror-beta's key leaves the key file: refused from the next reload on
    _keys(tmp_path / "tsig.key", {"mirror-acme": ACME})
    mark = len(served.lines)
    served.proc.send_signal(signal.SIGHUP)
    served.wait_for(r"reloaded generation", start=mark)
    assert _refused(_xfr(port, DBL, "AXFR", beta))
    # the operator is told, for each zone that still grants it
    for zone in (BL, DBL):
        served.wait_for(
            rf"WARNING .*zone {zone}: allow_transfer names subscriber key 'mirror-beta', which is not in the "
            r"--tsig-keys file: its transfers are refused until the key is there",
            start=mark,
        )
    assert "subscriber key 'mirror-acme', which is not" not in served.log_text()


NSD_KEY = 'key:\n    name: "mirror-acme"\n    algorithm: hmac-sha256\n    secret: "{secret}"\n'
NSD_ZONE = (
    'zone:\n    name: {zone}\n    zonefile: "{zone}.zone"\n    request-xfr: AXFR 127.0.0.1@{primary} mirror-acme\n'
)


def test_nsd_mirror_takes_the_zone_with_its_own_key(served: Served, tmp_path: Path) -> None:
    """A real NSD configured as the subscriber mirror-acme: no NOTIFY, no address grant; its
    signed AXFR alone brings the zone (NSD verifies every signed message of the stream)."""
    nsd = require_tool("nsd")
    port = free_port()
    nsd_dir = tmp_path / "nsd"
    nsd_dir.mkdir()
    conf = NSD_CONF.format(port=port, dir=nsd_dir) + NSD_KEY.format(secret=ACME)
    conf += NSD_ZONE.format(zone=BL, primary=served.port)
    (nsd_dir / "nsd.conf").write_text(conf)
    proc = subprocess.Popen(
        [nsd, "-d", "-c", str(nsd_dir / "nsd.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        served.wait_for(rf"AXFR of {BL} serial \d+ to 127\.0\.0\.1 \(TSIG mirror-acme\)", timeout=60)
        deadline = time.monotonic() + 60
        while True:  # NSD answers once it has loaded the transferred zone
            got = dig(port, f"7.2.0.192.{BL}", "A", "+time=1")
            if got.status == "NOERROR" and got.answer:
                break
            assert time.monotonic() < deadline, served.log_text()
            time.sleep(0.2)  # polling NSD's observable state, bounded by the deadline
        assert [r[3] for r in got.answer] == ["127.0.0.2"]
    finally:
        stop_process(proc)
