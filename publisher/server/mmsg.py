"""Batched UDP for the hot loop: recvmmsg/sendmmsg (Linux) through ctypes.

Inside the server: net.UdpThread -> `BatchLoop.run` (when available) -> Responder. Every
datagram through socket.recvfrom/sendto costs two syscalls plus a bytes object, an
address tuple and its parsing back on send. Here one recvmmsg takes every datagram
waiting (up to BATCH, blocking for the first), replies are copied into fixed send slots,
and one sendmmsg sends them all back to the very sockaddr bytes they came from. The
per-datagram Python work is a few struct/memoryview operations. Where the calls are
missing (not Linux, no libc), `available()` is False and the plain loop is used.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import socket
import struct
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger("publisher.server")

BATCH = 64
SLOT = 4096  # bytes per datagram slot, for queries and for replies (ours fit UDP_MAX)
NAME = 128  # bytes per sockaddr slot
MSG_WAITFORONE = 0x10000


class _IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _MsgHdr), ("msg_len", ctypes.c_uint)]


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        recv, send = libc.recvmmsg, libc.sendmmsg
    except (OSError, AttributeError):
        return None
    recv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
    recv.restype = ctypes.c_int
    send.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    send.restype = ctypes.c_int
    return libc


_LIBC = _libc()


def available() -> bool:
    return _LIBC is not None


def sockaddr_to_tuple(raw: bytes) -> tuple[str, int]:
    """A kernel sockaddr_in / sockaddr_in6 -> (address text, port)."""
    family = int.from_bytes(raw[:2], "little")
    port = int.from_bytes(raw[2:4], "big")
    if family == socket.AF_INET6:
        return socket.inet_ntop(socket.AF_INET6, raw[8:24]), port
    return socket.inet_ntop(socket.AF_INET, raw[4:8]), port


#: The quick answer to a datagram, or None when it needs the full handler.
Quick = Callable[[bytes], "bytes | None"]
#: The full answer (sender as an address tuple), or None to drop the datagram.
Full = Callable[[bytes, tuple[str, int]], "bytes | None"]


#: The whole answer when a query gate exists (gate.py: ACLs, keyed zones): the datagram, the
#: batch's sockaddr buffer and the offset of its sender's (read only when needed); None to drop.
#: Asked for once per batch: None when there is no gate.
Gated = Callable[[bytes, memoryview, int], "bytes | None"]

#: Rate limiting: (datagram, sender's raw sockaddr) -> None to answer, else the reply (b'': none).
Limit = Callable[[bytes, memoryview], "bytes | None"]


class Observer(Protocol):
    """Takes (ns spent answering a batch, datagrams in it): stats.Latency under --metrics."""

    def observe(self, ns: int, n: int) -> None: ...


class BatchLoop:
    """Fixed buffers for BATCH datagrams in and out of one socket."""

    def __init__(self, sock: socket.socket) -> None:
        assert _LIBC is not None
        self.sock = sock
        self.rbuf = ctypes.create_string_buffer(BATCH * SLOT)
        self.sbuf = ctypes.create_string_buffer(BATCH * SLOT)
        self.names = ctypes.create_string_buffer(BATCH * NAME)
        self.riov = (_IoVec * BATCH)()
        self.siov = (_IoVec * BATCH)()
        self.rmsgs = (_MMsgHdr * BATCH)()
        self.smsgs = (_MMsgHdr * BATCH)()
        rbase, sbase, nbase = ctypes.addressof(self.rbuf), ctypes.addressof(self.sbuf), ctypes.addressof(self.names)
        # The kernel only shrinks msg_namelen to the family's size, which stays large enough.
        namelen = 28 if sock.family == socket.AF_INET6 else 16
        for i in range(BATCH):
            self.riov[i].iov_base, self.riov[i].iov_len = rbase + i * SLOT, SLOT
            self.siov[i].iov_base, self.siov[i].iov_len = sbase + i * SLOT, 0
            rh, sh = self.rmsgs[i].msg_hdr, self.smsgs[i].msg_hdr
            rh.msg_name, rh.msg_namelen = nbase + i * NAME, NAME
            sh.msg_name, sh.msg_namelen = nbase + i * NAME, namelen  # reply to the sender's address
            rh.msg_iov, rh.msg_iovlen = ctypes.addressof(self.riov[i]), 1
            sh.msg_iov, sh.msg_iovlen = ctypes.addressof(self.siov[i]), 1

    def run(
        self,
        quick: Quick,
        full: Full,
        stopping: list[bool],
        latency: Observer | None = None,
        limit: Limit | None = None,
        gated: Callable[[], Gated | None] | None = None,
    ) -> None:
        """Answer datagrams until `stopping[0]` (checked after every batch).

        `limit` (rate limiting only, rrl.py) sees each datagram with its sender's raw
        sockaddr before anything else: None lets it through, bytes replace the answer
        (b'': send nothing).

        `gated` is asked once per batch for the gated answer (None: no gate, `quick` then
        `full` as always); a gated answer sees the sender's raw sockaddr and does it all.

        `latency` (metrics only) gets each batch's answering time: two clock reads per
        batch; without it, two `is None` tests per batch.
        """
        assert _LIBC is not None
        recvmmsg, sendmmsg = _LIBC.recvmmsg, _LIBC.sendmmsg
        fd = self.sock.fileno()
        rptr, sptr = ctypes.addressof(self.rmsgs), ctypes.addressof(self.smsgs)
        size = ctypes.sizeof(_MMsgHdr)
        len_at = _MMsgHdr.msg_len.offset
        iov_len_at = _IoVec.iov_len.offset
        iov_size = ctypes.sizeof(_IoVec)
        rmsgs = memoryview(self.rmsgs).cast("B")
        siov = memoryview(self.siov).cast("B")
        rbuf = memoryview(self.rbuf).cast("B")
        sbuf = memoryview(self.sbuf).cast("B")
        names = memoryview(self.names).cast("B")
        u32 = struct.Struct("@I")
        usize = struct.Struct("@N")
        clock = time.perf_counter_ns
        observe = latency.observe if latency is not None else None
        while not stopping[0]:
            n = recvmmsg(fd, rptr, BATCH, MSG_WAITFORONE, None)
            if n <= 0:
                if n < 0 and ctypes.get_errno() not in (4, 11):  # EINTR, EAGAIN
                    log.warning("recvmmsg failed: errno %d", ctypes.get_errno())
                continue
            if stopping[0]:
                return
            t0 = clock() if observe is not None else 0
            gate = gated() if gated is not None else None
            out = 0  # replies are packed into the first slots, each keeping its sender's name
            for i in range(n):
                length = u32.unpack_from(rmsgs, i * size + len_at)[0]
                at = i * SLOT
                data = rbuf[at : at + length].tobytes()
                over = limit(data, names[i * NAME : i * NAME + NAME]) if limit is not None else None
                if over is not None:
                    resp = over or None
                elif gate is not None:
                    resp = gate(data, names, i * NAME)
                else:
                    resp = quick(data)
                    if resp is None:
                        resp = full(data, sockaddr_to_tuple(names[i * NAME : i * NAME + NAME].tobytes()))
                if resp is None or len(resp) > SLOT:
                    continue
                if out != i:
                    names[out * NAME : out * NAME + NAME] = names[i * NAME : i * NAME + NAME]
                dst = out * SLOT
                sbuf[dst : dst + len(resp)] = resp
                usize.pack_into(siov, out * iov_size + iov_len_at, len(resp))
                out += 1
            if observe is not None:
                observe(clock() - t0, n)
            sent = 0
            while sent < out:
                done = sendmmsg(fd, sptr + sent * size, out - sent, 0)
                sent += done if done > 0 else 1  # skip a datagram the kernel refuses
