"""NOTIFY (RFC 1996): tell secondaries that a zone has a new serial.

Inside the server: app.Server, at start-up and after a reload that brings a new serial,
calls `notify_zone` in a background thread per zone. Each secondary with notify=true
gets a NOTIFY for the zone's SOA (TSIG-signed when the secondary has a `tsig_key`) from
an ephemeral UDP socket, retried a bounded number
of times with a growing timeout until it answers with the same id; the outcome is
logged. A secondary that never answers costs a few seconds of one thread, nothing else;
a thread that cannot be started costs the NOTIFY (logged), never the serving.
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
from dataclasses import dataclass

from publisher.model import Secondary
from publisher.server import tsig
from publisher.server.tsig import Keyring
from publisher.server.zoneset import ServedZone

log = logging.getLogger("publisher.server")

TRIES = 3
FIRST_TIMEOUT = 1.0


@dataclass(frozen=True, slots=True)
class NotifyResult:
    secondary: Secondary
    acknowledged: bool
    rcode: int | None
    tries: int


def notify_message(sz: ServedZone, msg_id: int) -> bytes:
    from dnslib import OPCODE, QTYPE, RR, SOA, DNSHeader, DNSQuestion, DNSRecord  # only when notifying

    info = sz.zone.info
    soa = info.soa
    rec = DNSRecord(DNSHeader(id=msg_id, opcode=OPCODE.NOTIFY, aa=1, rd=0), q=DNSQuestion(sz.name, QTYPE.SOA))
    rec.add_answer(
        RR(
            sz.name,
            QTYPE.SOA,
            ttl=info.ttl,
            rdata=SOA(soa.mname, soa.rname, (sz.serial, soa.refresh, soa.retry, soa.expire, soa.minimum)),
        )
    )
    return bytes(rec.pack())


def send_notify(
    sz: ServedZone,
    secondary: Secondary,
    *,
    tries: int = TRIES,
    first_timeout: float = FIRST_TIMEOUT,
    keys: Keyring | None = None,
) -> NotifyResult:
    """Send one NOTIFY, retrying until acknowledged or `tries` are spent.

    To a secondary with a `tsig_key` the NOTIFY is signed with that key from `keys`, and
    only an answer signed with it counts; without the key nothing is sent (tries 0).
    """
    key = None
    if secondary.tsig_key:
        key = keys.get(secondary.tsig_key) if keys is not None else None
        if key is None:
            return NotifyResult(secondary, False, None, 0)
    family = socket.AF_INET6 if ":" in secondary.address else socket.AF_INET
    timeout = first_timeout
    for attempt in range(1, tries + 1):
        msg_id = secrets.randbelow(1 << 16)
        started = time.monotonic()
        message, mac = notify_message(sz, msg_id), b""
        if key is not None:
            message, mac = tsig.sign_request(message, key)
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.settimeout(timeout)
                sock.connect((secondary.address, secondary.port))
                sock.send(message)
                while True:
                    data = sock.recv(4096)
                    if len(data) >= 12 and int.from_bytes(data[:2], "big") == msg_id and data[2] & 0x80:
                        if key is not None and (data[3] & 0x0F) == 0 and (why := tsig.check_reply(data, key, mac)):
                            log.warning(
                                "notify %s to %s: answer not signed with %s: %s",
                                sz.name,
                                secondary.address,
                                secondary.tsig_key,
                                why,
                            )
                            continue  # a forged acknowledgement: keep waiting for the real one
                        return NotifyResult(secondary, (data[3] & 0x0F) == 0, data[3] & 0x0F, attempt)
        except OSError:  # timeout, refused (ICMP), unreachable: try again after the timeout
            if attempt < tries:
                # A refusal comes back at once; waiting out the timeout gives a restarting
                # secondary the same chance a silent one gets.
                time.sleep(max(0.0, timeout - (time.monotonic() - started)))
        timeout *= 2
    return NotifyResult(secondary, False, None, tries)


def notify_zone(
    sz: ServedZone, *, tries: int = TRIES, first_timeout: float = FIRST_TIMEOUT, keys: Keyring | None = None
) -> list[NotifyResult]:
    """NOTIFY every secondary of the zone that wants it, in parallel; log each outcome."""
    targets = [s for s in sz.settings.secondaries if s.notify]
    results: list[NotifyResult] = []
    lock = threading.Lock()

    def one(secondary: Secondary) -> None:
        result = send_notify(sz, secondary, tries=tries, first_timeout=first_timeout, keys=keys)
        where = f"{secondary.address}:{secondary.port}"
        if result.tries == 0:
            log.error(
                "notify %s serial %d to %s: not sent, tsig key %r unknown",
                sz.name,
                sz.serial,
                where,
                secondary.tsig_key,
            )
        elif result.acknowledged:
            log.info("notify %s serial %d to %s: acknowledged", sz.name, sz.serial, where)
        elif result.rcode is not None:
            log.warning("notify %s serial %d to %s: answered rcode %d", sz.name, sz.serial, where, result.rcode)
        else:
            log.warning("notify %s serial %d to %s: no answer after %d tries", sz.name, sz.serial, where, tries)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=one, args=(s,), daemon=True, name=f"notify-{sz.name}") for s in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def notify_in_background(zones: list[ServedZone], keys: Keyring | None = None) -> threading.Thread | None:
    """Start one thread that notifies the secondaries of every given zone (signing with `keys`)."""
    zones = [z for z in zones if any(s.notify for s in z.settings.secondaries)]
    if not zones:
        return None

    def run() -> None:
        for sz in zones:
            try:
                notify_zone(sz, keys=keys)
            except Exception:
                log.exception("notify for %s failed", sz.name)

    thread = threading.Thread(target=run, daemon=True, name="notify")
    try:
        thread.start()
    except RuntimeError as exc:  # "can't start new thread": the zones are served, only the NOTIFY is lost
        log.error(
            "cannot start the NOTIFY thread (%s): secondaries of %s are not notified and catch up at their "
            "SOA refresh",
            exc, ", ".join(sz.name for sz in zones),
        )  # fmt: skip
        return None
    return thread
