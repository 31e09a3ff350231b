"""A real authoritative DNS server for tests: Debian's NSD on loopback, on an ephemeral port.

The SPF tests serve their partners' records from it (`auth_dns` fixture):

    dns = auth_dns({"partner.example": '@ TXT "v=spf1 ip4:1.2.3.0/24 -all"\nmail A 1.2.3.4'})
    dns.host, dns.port          # point a resolver here
    dns.set_zones({...})        # change the records (NSD restarted, waited for)

Each zone's text is its records relative to the zone, as in a master file; the
fixture adds $ORIGIN, $TTL, the SOA and the NS. NSD is started with `-d` and
stopped by its PID at the end of the test. `black_hole()` gives an address where a
UDP socket is bound but never answers: a resolver pointed there times out.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from conftest import free_port, require_tool, stop_process

#: NSD's `server:` on 127.0.0.1:{port}, everything under {dir}; zone stanzas follow it (the
#: secondary, IXFR, TSIG and deploy tests share it).
NSD_CONF = """server:
    ip-address: 127.0.0.1@{port}
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{dir}"
    database: ""
    zonelistfile: "{dir}/zone.list"
    pidfile: "{dir}/nsd.pid"
    xfrdfile: "{dir}/xfrd.state"
    xfrdir: "{dir}"
    logfile: "{dir}/nsd.log"
    verbosity: 2
    server-count: 1
remote-control:
    control-enable: no
"""
_ZONE = """zone:
    name: {zone}
    zonefile: "{file}"
"""
_HEAD = """$ORIGIN {zone}.
$TTL 60
@ SOA ns.{zone}. hostmaster.{zone}. {serial} 3600 600 86400 60
@ NS ns.{zone}.
ns A 127.0.0.1
"""


class AuthDns:
    """NSD serving `zones` on 127.0.0.1:`port`."""

    def __init__(self, folder: Path, zones: Mapping[str, str]) -> None:
        self.nsd = require_tool("nsd")
        self.dir = folder
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.serial = 1
        self.set_zones(zones)

    def set_zones(self, zones: Mapping[str, str]) -> None:
        """Serve exactly `zones` from now on (NSD restarted on the same port, and waited for)."""
        self.stop()
        self.serial += 1
        conf = NSD_CONF.format(port=self.port, dir=self.dir)
        for i, (zone, records) in enumerate(zones.items()):
            name = zone.rstrip(".").lower()
            file = f"z{i}.zone"
            (self.dir / file).write_text(_HEAD.format(zone=name, serial=self.serial) + records + "\n")
            conf += _ZONE.format(zone=name, file=file)
        (self.dir / "nsd.conf").write_text(conf)
        check = subprocess.run(
            [self.nsd.replace("/nsd", "/nsd-checkconf"), str(self.dir / "nsd.conf")], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stderr
        log = self.dir / "nsd.log"
        log.write_text("")
        self.proc = subprocess.Popen(
            [self.nsd, "-d", "-c", str(self.dir / "nsd.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._wait(list(zones))

    def _wait(self, zones: list[str], timeout: float = 20.0) -> None:
        """Until NSD answers each zone's SOA with this serial (bounded)."""
        import dns.message
        import dns.query
        import dns.rcode

        deadline = time.monotonic() + timeout
        for zone in zones:
            while True:
                assert self.proc is not None and self.proc.poll() is None, (self.dir / "nsd.log").read_text()
                try:
                    reply = dns.query.udp(dns.message.make_query(zone, "SOA"), self.host, port=self.port, timeout=0.5)
                    if reply.rcode() == dns.rcode.NOERROR and reply.answer:
                        if reply.answer[0][0].serial == self.serial:  # type: ignore[attr-defined]
                            break
                except (OSError, dns.exception.Timeout):
                    pass
                assert time.monotonic() < deadline, f"NSD did not serve {zone}: {(self.dir / 'nsd.log').read_text()}"
                time.sleep(0.05)  # polling NSD's observable state, bounded by the deadline

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None


class BlackHole:
    """A UDP and TCP port on loopback that takes queries and never answers."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        for _ in range(50):  # an ephemeral UDP port whose TCP twin is free too
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.udp.bind((self.host, 0))
            self.port = int(self.udp.getsockname()[1])
            self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                self.tcp.bind((self.host, self.port))
            except OSError:
                self.udp.close()
                self.tcp.close()
                continue
            self.tcp.listen(8)
            return
        raise RuntimeError("no free UDP and TCP port pair on loopback")

    def close(self) -> None:
        self.udp.close()
        self.tcp.close()


@pytest.fixture
def auth_dns(tmp_path: Path) -> Iterator[Callable[[Mapping[str, str]], AuthDns]]:
    """A factory: `auth_dns({zone: records})` starts NSD serving them; stopped at the end."""
    started: list[AuthDns] = []

    def start(zones: Mapping[str, str]) -> AuthDns:
        server = AuthDns(tmp_path / f"nsd{len(started)}", zones)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    yield hole
    hole.close()
