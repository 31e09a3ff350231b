"""The batched UDP loop (recvmmsg/sendmmsg): every reply reaches its own sender.

A burst from several client sockets fills one batch with queries, garbage to drop and
packets for the slow path; the replies must go back to the right address, in full.
"""

from __future__ import annotations

import socket
import threading

import pytest
from dnslib import RCODE, DNSRecord

from publisher.server import ZoneSet, mmsg
from publisher.server.core import Responder
from publisher.server.stats import Stats
from server_fixtures import sample_zones

pytestmark = pytest.mark.skipif(not mmsg.available(), reason="recvmmsg/sendmmsg need Linux")


class _State:
    zones = ZoneSet.build(sample_zones().values())


def test_burst_replies_go_to_their_senders() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    stopping = [False]
    responder = Responder(_State(), Stats().new())
    thread = threading.Thread(target=responder.serve_udp_batched, args=(server, stopping), daemon=True)
    clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(6)]
    try:
        for c in clients:
            c.bind(("127.0.0.1", 0))
            c.settimeout(10)
        # Queue everything before the loop starts, so that one recvmmsg takes it all.
        expected: dict[int, list[int]] = {i: [] for i in range(len(clients))}
        for n in range(120):
            i = n % len(clients)
            if n % 7 == 3:
                clients[i].sendto(b"\x00\x01garbage", server.getsockname())  # dropped: no header
                continue
            name = f"{n % 250}.2.0.192.bl.example.test" if n % 5 else "test.dbl.example.test"
            q = DNSRecord.question(name, "TXT" if n % 3 == 0 else "A")
            if n % 11 == 0:
                q.header.opcode = 5  # UPDATE: the slow path answers NOTIMP
            q.header.id = n
            clients[i].sendto(bytes(q.pack()), server.getsockname())
            expected[i].append(n)
        thread.start()
        for i, c in enumerate(clients):
            got = []
            for _ in expected[i]:
                reply = DNSRecord.parse(c.recv(4096))
                got.append(reply.header.id)
                n = reply.header.id
                if n % 11 == 0:
                    assert reply.header.rcode == RCODE.NOTIMP
                elif n % 5 == 0 or n % 250 == 7:
                    assert reply.header.rcode == RCODE.NOERROR and reply.rr, n
                else:
                    assert reply.header.rcode == RCODE.NXDOMAIN and str(reply.q.qname).startswith(f"{n % 250}.2.0.192")
            assert sorted(got) == expected[i]
    finally:
        stopping[0] = True
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as poke:
            poke.sendto(b"", server.getsockname())
        thread.join(timeout=5)
        server.close()
        for c in clients:
            c.close()
