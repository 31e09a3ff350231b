"""TSIG (RFC 8945) for zone transfers and NOTIFY: keys, verifying requests, signing replies.

Inside the server: `serve --tsig-keys FILE` -> `load_keys` -> `Keyring` (kept on the
ZoneSet, re-read on reload) -> slow.handle() calls `verify` on a signed request and
signs its reply with `sign`; the TCP loop signs every message of a transfer with
`sign_stream`; notify.py signs each NOTIFY with `sign_request` and checks the answer
with `check_reply`. dnslib has no TSIG, so the MACs are computed by dnspython's
`dns.tsig` (a maintained library, imported only when a key file is given); the
messages themselves stay our hand-built bytes, and only the TSIG record is appended.

Keys never live in the repository: the file is given on the command line and holds
either the output of BIND's `tsig-keygen` (`key "name" { algorithm hmac-sha256;
secret "..."; };`, the format NSD and Knot can include too) or YAML:

    xfr-key:
      algorithm: hmac-sha256
      secret: base64==

zones.yaml only names a key per secondary (`tsig_key: xfr-key`).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import stat
import struct
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from publisher.errors import ServerError
from publisher.server.ratelog import Throttle

log = logging.getLogger("publisher.server")
#: Refused signatures: anyone can send a forged signed packet, so one warning per second at most.
REFUSALS = Throttle(log)

QTYPE_TSIG = 250
NOTAUTH = 9
BADSIG, BADKEY, BADTIME = 16, 17, 18
FUDGE = 300
#: Algorithms accepted in a key file (RFC 8945 section 6: HMAC-MD5 is not among them).
ALGORITHMS = ("hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1")
_BIND_KEY = re.compile(
    r'key\s+"?(?P<name>[^"\s{]+)"?\s*\{\s*algorithm\s+"?(?P<alg>[\w-]+)"?\s*;\s*secret\s+"(?P<secret>[^"]*)"\s*;\s*\}\s*;'
)


#: What a key file may hold, for the errors: both forms the docs show.
FORMS = (
    'either `tsig-keygen NAME` output (key "NAME" { algorithm hmac-sha256; secret "BASE64"; };) '
    "or YAML (NAME: {algorithm: hmac-sha256, secret: BASE64})"
)


def _norm(name: str) -> str:
    return name.strip().lower().rstrip(".")


@dataclass(frozen=True, slots=True)
class Keyring:
    """The TSIG keys by name (lower case, no trailing dot); values are dns.tsig.Key."""

    keys: Mapping[str, Any]
    source: str = ""

    def get(self, name: str | None) -> Any | None:
        return self.keys.get(_norm(name)) if name else None

    def by_dns_name(self) -> dict[Any, Any]:
        return {key.name: key for key in self.keys.values()}


def load_keys(path: Path) -> Keyring:
    """Read a key file (tsig-keygen output or YAML). Raises ServerError, naming the file."""
    import dns.name
    import dns.tsig

    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except (OSError, UnicodeError) as exc:
        raise ServerError(f"{path}: cannot read the TSIG key file: {exc}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s: the TSIG key file is readable by others; chmod 600 it", path)
    raw: dict[str, tuple[str, str]] = {}
    if "{" in text and re.search(r"\bkey\s", text):
        for m in _BIND_KEY.finditer(text):
            raw[m.group("name")] = (m.group("alg"), m.group("secret"))
        if not raw:
            raise ServerError(f"{path}: no key clause could be read; a TSIG key file holds {FORMS}")
    else:
        import yaml

        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ServerError(f"{path}: neither a key clause nor YAML ({exc}); a TSIG key file holds {FORMS}") from exc
        if not isinstance(doc, dict) or not doc:
            raise ServerError(f"{path}: no key could be read; a TSIG key file holds {FORMS}")
        for name, item in doc.items():
            if not isinstance(item, dict) or "secret" not in item:
                raise ServerError(
                    f"{path}: key {name!r}: want `algorithm:` and `secret:` (base64); a TSIG key file holds {FORMS}"
                )
            raw[str(name)] = (str(item.get("algorithm", "hmac-sha256")), str(item["secret"]))
    keys: dict[str, Any] = {}
    for name, (alg, secret) in raw.items():
        alg = alg.lower().rstrip(".")
        if alg not in ALGORITHMS:
            raise ServerError(f"{path}: key {name!r}: algorithm {alg!r} is not one of {', '.join(ALGORITHMS)}")
        try:
            secret_bytes = base64.b64decode(secret, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ServerError(f"{path}: key {name!r}: the secret is not base64 ({exc})") from exc
        if len(secret_bytes) < 16:
            raise ServerError(
                f"{path}: key {name!r}: a {len(secret_bytes)}-byte secret is too short (tsig-keygen makes 32)"
            )
        try:
            keys[_norm(name)] = dns.tsig.Key(dns.name.from_text(_norm(name)), secret_bytes, alg)
        except Exception as exc:
            raise ServerError(f"{path}: key {name!r}: {exc}") from exc
    return Keyring(keys, str(path))


@dataclass(frozen=True, slots=True)
class Signed:
    """A request whose TSIG verified: the key, and its MAC that the reply's MAC covers."""

    key: Any  # dns.tsig.Key
    mac: bytes
    original_id: int

    @property
    def key_name(self) -> str:
        return _norm(self.key.name.to_text())


def _tsig_rdata(key: Any, original_id: int, error: int = 0, other: bytes = b"", time_signed: int = 0) -> Any:
    import dns.rdataclass
    import dns.rdatatype
    from dns.rdtypes.ANY.TSIG import TSIG

    return TSIG(
        dns.rdataclass.ANY, dns.rdatatype.TSIG, key.algorithm, time_signed, FUDGE, b"", original_id, error, other
    )


def _append(wire: bytes, key: Any, rdata: Any) -> bytes:
    """`wire` with the TSIG record added at the end of the additional section."""
    rd = rdata.to_wire()
    record = key.name.to_wire() + struct.pack(">HHIH", QTYPE_TSIG, 255, 0, len(rd)) + rd
    arcount = ((wire[10] << 8) | wire[11]) + 1
    return wire[:10] + arcount.to_bytes(2, "big") + wire[12:] + record


def verify(data: bytes, keyring: Keyring | None, error_reply: Any, client: str = "?") -> Signed | bytes:
    """The verified signer of `data` (which carries a TSIG), or the error reply to send.

    `error_reply(rcode)` builds our plain reply to `data` with that rcode (question echoed);
    a TSIG record carrying BADKEY/BADSIG (unsigned) or BADTIME (signed) is added to it, as
    RFC 8945 section 5.2 asks. b'' means the TSIG record itself is malformed: FORMERR.
    """
    import dns.exception
    import dns.message
    import dns.tsig

    try:  # first pass: read the TSIG record without checking it, for its name and fields
        plain = dns.message.from_wire(data, keyring=lambda _m, _n: False)
    except Exception:  # noqa: BLE001 - dnspython raises many types for malformed input
        return b""  # the caller answers FORMERR
    rr = plain.tsig
    if rr is None:
        return b""
    name, rdata = rr.name, rr[0]
    key = keyring.keys.get(_norm(name.to_text())) if keyring is not None else None
    if key is None or key.algorithm != rdata.algorithm:
        REFUSALS.event(
            logging.WARNING,
            "TSIG from %s refused: unknown key %s (%s)",
            client,
            name.to_text(),
            rdata.algorithm.to_text(),
        )
        return _unsigned_error(error_reply(NOTAUTH), name, rdata, BADKEY)
    try:
        msg = dns.message.from_wire(data, keyring={key.name: key})
    except dns.tsig.BadTime:
        REFUSALS.event(
            logging.WARNING,
            "TSIG from %s refused: key %s, time signed %d is off by more than %ds",
            client,
            name.to_text(),
            rdata.time_signed,
            rdata.fudge,
        )
        now = int(time.time())
        signed = Signed(key, rdata.mac, rdata.original_id)
        other = struct.pack(">HI", now >> 32, now & 0xFFFFFFFF)
        wire, _ = sign(error_reply(NOTAUTH), signed, error=BADTIME, other=other, time_signed=rdata.time_signed)
        return wire
    except (dns.tsig.BadSignature, dns.tsig.BadKey, dns.tsig.BadAlgorithm):
        REFUSALS.event(
            logging.WARNING, "TSIG from %s refused: bad signature with key %s (wrong secret?)", client, name.to_text()
        )
        return _unsigned_error(error_reply(NOTAUTH), name, rdata, BADSIG)
    except dns.exception.DNSException:
        return b""
    return Signed(key, bytes(msg.mac or b""), rdata.original_id)


def _unsigned_error(wire: bytes, name: Any, req: Any, error: int) -> bytes:
    import dns.rdataclass
    import dns.rdatatype
    from dns.rdtypes.ANY.TSIG import TSIG

    rdata = TSIG(
        dns.rdataclass.ANY,
        dns.rdatatype.TSIG,
        req.algorithm,
        int(time.time()),
        req.fudge,
        b"",
        req.original_id,
        error,
        b"",
    )
    rd = rdata.to_wire() or b""
    record = name.to_wire() + struct.pack(">HHIH", QTYPE_TSIG, 255, 0, len(rd)) + rd
    arcount = ((wire[10] << 8) | wire[11]) + 1
    return wire[:10] + arcount.to_bytes(2, "big") + wire[12:] + record


def sign(
    wire: bytes,
    signed: Signed,
    *,
    ctx: Any = None,
    multi: bool = False,
    error: int = 0,
    other: bytes = b"",
    time_signed: int | None = None,
) -> tuple[bytes, Any]:
    """`wire` (a reply to the signed request) with its TSIG; returns the context for the next message."""
    import dns.tsig

    rdata = _tsig_rdata(signed.key, signed.original_id, error, other)
    now = int(time.time()) if time_signed is None else time_signed
    tsig, ctx = dns.tsig.sign(wire, signed.key, rdata, now, signed.mac, ctx, multi)
    return _append(wire, signed.key, tsig), ctx


def sign_stream(messages: Iterator[bytes], signed: Signed) -> Iterator[bytes]:
    """Every message of a transfer signed, each MAC chained to the one before (RFC 8945 5.3.1)."""
    ctx = None
    for wire in messages:
        out, ctx = sign(wire, signed, ctx=ctx, multi=True)
        yield out


def sign_request(wire: bytes, key: Any) -> tuple[bytes, bytes]:
    """A request (our NOTIFY) signed with `key`; returns it and its MAC, for check_reply."""
    import dns.tsig

    original_id = (wire[0] << 8) | wire[1]
    rdata = _tsig_rdata(key, original_id)
    tsig, _ = dns.tsig.sign(wire, key, rdata, int(time.time()))
    return _append(wire, key, tsig), tsig.mac


def check_reply(data: bytes, key: Any, request_mac: bytes) -> str | None:
    """None when the reply to our signed request is signed by the same key; else why not."""
    import dns.message

    try:
        dns.message.from_wire(data, keyring={key.name: key}, request_mac=request_mac)
    except Exception as exc:  # noqa: BLE001 - any failure means: not a valid signed reply
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None
