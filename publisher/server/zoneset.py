"""Serving state: the compiled zones plus per-zone settings, prebuilt for the wire path.

A `ZoneSet` is built once per load (from publisher.publish.manifest's `Published`, or
directly in tests), wire/slow/xfr answer from it, and it is
never changed afterwards, so the server swaps the whole set by one reference
assignment on reload and a query in flight finishes on the set it started with.
The only mutable part is a lazy per-answer cache of prebuilt record bytes; filling it
twice from two threads is harmless because both fills are equal.
"""

from __future__ import annotations

import re
import struct
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from publisher.addresses import AddressError, Network, parse_addr, parse_network, parse_v4, parse_v6
from publisher.compile.hashes import HashTable
from publisher.compile.zone import Answer, CompiledZone
from publisher.errors import ArtifactError
from publisher.model import SUBST, AclRule, Secondary
from publisher.publish.manifest import Manifest, Published, ZoneEntry
from publisher.server.acl import Tables, client_of_text

QTYPE_A, QTYPE_NS, QTYPE_SOA, QTYPE_TXT, QTYPE_AAAA = 1, 2, 6, 16, 28
_TYPE_CLASS = {t: struct.pack(">HH", t, 1) for t in (QTYPE_A, QTYPE_NS, QTYPE_SOA, QTYPE_TXT, QTYPE_AAAA)}
#: Owner name of every answer record: a compression pointer to the question name.
PTR_QNAME = b"\xc0\x0c"
DEFAULT_ALLOW_TRANSFER = ("127.0.0.0/8", "::1/128")


def name_wire(name: str) -> bytes:
    """'bl.example.test' -> wire format with the root label ('' is the root)."""
    out = bytearray()
    for label in name.strip(".").split("."):
        if label:
            raw = label.encode("ascii")
            out.append(len(raw))
            out += raw
    out.append(0)
    return bytes(out)


def rel_wire(name: str, zone: str) -> bytes | None:
    """The labels of `name` below `zone` followed by a pointer to the question name.

    Only valid in messages whose question name is the zone apex (apex answers, AXFR).
    None when `name` is not inside `zone`.
    """
    if name == zone:
        return PTR_QNAME
    if not name.endswith("." + zone):
        return None
    return name_wire(name[: -len(zone) - 1])[:-1] + PTR_QNAME


#: rdlength (2 bytes) followed by the one character-string's length byte, by string length.
_LEN2_1 = tuple(struct.pack(">HB", n + 1, n) for n in range(256))


def txt_rdata(text: bytes) -> bytes:
    """TXT rdata: the text cut into <=255-byte character strings."""
    if len(text) < 256:
        return bytes((len(text),)) + text
    parts = []
    for i in range(0, len(text), 255):
        chunk = text[i : i + 255]
        parts.append(bytes((len(chunk),)) + chunk)
    return b"".join(parts)


def rr(owner: bytes, rtype: int, ttl: int, rdata: bytes) -> bytes:
    return owner + _TYPE_CLASS[rtype] + struct.pack(">IH", ttl, len(rdata)) + rdata


def soa_rdata(mname: str, rname: str, serial: int, refresh: int, retry: int, expire: int, minimum: int) -> bytes:
    if "@" in rname:  # tolerate the mail form hostmaster@example.test
        local, _, domain = rname.partition("@")
        rname = local + "." + domain
    return name_wire(mname) + name_wire(rname) + struct.pack(">IIIII", serial, refresh, retry, expire, minimum)


@dataclass(frozen=True, slots=True)
class ZoneSettings:
    """Per-zone serving settings that are not part of the compiled data."""

    serial: int | None = None  # None: the serial in the compiled zone's info
    allow_transfer: tuple[Network, ...] = tuple(parse_network(n) for n in DEFAULT_ALLOW_TRANSFER)
    secondaries: tuple[Secondary, ...] = ()
    acl: tuple[AclRule, ...] = ()  # the zone's own client ACL (ZoneSet.acl: the server-wide one)
    keyed: bool = False  # queries must carry a key label: d.c.b.a.<key>.<zone>
    #: Subscriber mirrors (allow_transfer `{key: NAME}`): TSIG key name (lower case, no trailing
    #: dot) -> the networks it may transfer from (empty: any address).
    transfer_keys: Mapping[str, tuple[Network, ...]] = field(default_factory=dict)

    @classmethod
    def from_manifest(cls, entry: ZoneEntry) -> ZoneSettings:
        meta = entry.meta
        allow = meta.allow_transfer
        return cls(
            serial=entry.serial,
            allow_transfer=(
                tuple(parse_network(n) for n in allow) if allow is not None else ZoneSettings().allow_transfer
            ),
            secondaries=meta.secondaries or (),
            acl=meta.acl or (),
            keyed=bool(meta.keyed),
            transfer_keys={
                k.key.lower().rstrip("."): tuple(parse_network(n) for n in k.networks) for k in meta.transfer_keys or ()
            },
        )


@dataclass(frozen=True, slots=True)
class Prebuilt:
    """The record bytes of one `Answer`: A records ready, TXT with the SUBST hole kept."""

    a_rrs: bytes
    a_count: int
    txt_head: bytes  # owner pointer, type, class, TTL
    txts: tuple[bytes, ...]  # utf-8 templates, b'\0' where the queried ip/domain goes
    has_subst: tuple[bool, ...]
    #: The common case, one TXT with one SUBST: (record head up to the text, text before, after).
    txt_one: tuple[bytes, bytes, bytes] | None = None

    def txt_rrs(self, subst: bytes) -> bytes:
        one = self.txt_one
        if one is not None and len(subst) < 64:
            head, pre, post = one
            size = len(pre) + len(subst) + len(post)
            return head + _LEN2_1[size] + pre + subst + post
        head = self.txt_head
        out = []
        for tmpl, sub in zip(self.txts, self.has_subst):
            rd = txt_rdata(tmpl.replace(b"\x00", subst) if sub else tmpl)
            out.append(head + len(rd).to_bytes(2, "big") + rd)
        return b"".join(out)


class ServedZone:
    """One zone as the wire path sees it: the data plus every constant record prebuilt."""

    __slots__ = (
        "name", "zone", "kind_ip", "key", "nlabels", "serial", "settings", "ttl", "neg_ttl",
        "soa_answer", "soa_neg_tail", "ns_answer", "ns_count", "glue", "glue_count",
        "extra", "extra_ents", "_cache", "_ttl4", "v4_block", "v4_start", "v4_end", "v4_value",
        "neg_auth", "keyed", "hashes", "hash_key",
    )  # fmt: skip

    def __init__(self, zone: CompiledZone, settings: ZoneSettings | None = None) -> None:
        settings = settings or ZoneSettings()
        info = zone.info
        self.name = info.name.lower().strip(".")
        self.zone = zone
        self.kind_ip = info.kind == "ip"
        #: An email zone's table (wire.fast's hashed-name path); None for other kinds.
        self.hashes = zone.dom_exact if isinstance(zone.dom_exact, HashTable) else None
        #: Its hash names' common tail in wire form, suffix and apex, without the root: b"\x06_email\x03hbl...".
        self.hash_key = name_wire(self.hashes.suffix)[:-1] if self.hashes is not None else b""
        self.key = name_wire(self.name)[:-1]
        self.hash_key += self.key
        self.nlabels = self.name.count(".") + 1
        self.serial = settings.serial if settings.serial is not None else info.serial
        self.settings = settings
        #: Queries carry a key label below the apex (gate.py answers them, never wire.fast()).
        self.keyed = settings.keyed
        self.ttl = info.ttl
        soa = info.soa
        # RFC 2308 section 5: the negative TTL is the smaller of the SOA TTL and MINIMUM.
        self.neg_ttl = min(soa.minimum, info.ttl)
        rdata = soa_rdata(soa.mname, soa.rname, self.serial, soa.refresh, soa.retry, soa.expire, soa.minimum)
        self.soa_answer = rr(PTR_QNAME, QTYPE_SOA, info.ttl, rdata)
        self.soa_neg_tail = rr(b"", QTYPE_SOA, self.neg_ttl, rdata)
        #: The authority section of a negative answer, by the apex's offset in the message:
        #: the SOA owned by a compression pointer to the apex inside the question name.
        self.neg_auth = tuple((0xC000 | off).to_bytes(2, "big") + self.soa_neg_tail for off in range(268))
        ns_rrs: list[bytes] = []
        glue: list[bytes] = []
        extra: dict[str, tuple[bytes, int, bytes, int]] = {}
        for ns in info.ns:
            host = ns.name.lower().strip(".")
            ns_rrs.append(rr(PTR_QNAME, QTYPE_NS, info.ttl, rel_wire(host, self.name) or name_wire(host)))
            owner = rel_wire(host, self.name)
            if owner is None or not ns.addresses:
                continue  # glue only for name servers inside the zone
            a4 = [parse_v4(a) for a in ns.addresses if ":" not in a]
            a6 = [parse_v6(a) for a in ns.addresses if ":" in a]
            recs = [(QTYPE_A, a.to_bytes(4, "big")) for a in a4] + [(QTYPE_AAAA, a.to_bytes(16, "big")) for a in a6]
            glue.extend(rr(owner, t, info.ttl, d) for t, d in recs)
            rel = host[: -len(self.name) - 1] if host != self.name else ""
            if rel:
                extra[rel] = (
                    b"".join(rr(PTR_QNAME, QTYPE_A, info.ttl, a.to_bytes(4, "big")) for a in a4), len(a4),
                    b"".join(rr(PTR_QNAME, QTYPE_AAAA, info.ttl, a.to_bytes(16, "big")) for a in a6), len(a6),
                )  # fmt: skip
        self.ns_answer = b"".join(ns_rrs)
        self.ns_count = len(ns_rrs)
        self.glue = b"".join(glue)
        self.glue_count = len(glue)
        #: In-zone name server hosts answer A/AAAA like any authoritative server would.
        self.extra = extra
        self.extra_ents = frozenset(r.split(".", i)[-1] for r in extra for i in range(1, r.count(".") + 1))
        self._cache: dict[int, Prebuilt] = {}
        self._ttl4 = struct.pack(">I", info.ttl)
        # bisect over an array boxes an int per probe; narrowing to the /16 first leaves a
        # few probes. v4_block[h]..v4_block[h+1] are the intervals starting inside h/16.
        self.v4_start, self.v4_end, self.v4_value = zone.v4_start, zone.v4_end, zone.v4_value
        starts = zone.v4_start
        self.v4_block = array(
            "I", [bisect_left(starts, h << 16) for h in range(65537)] if len(starts) else bytes(4 * 65537)
        )

    def prebuilt(self, idx: int) -> Prebuilt:
        got = self._cache.get(idx)
        if got is None:
            got = self._cache[idx] = self._build(self.zone.answers[idx])
        return got

    def _build(self, answer: Answer) -> Prebuilt:
        a_head = PTR_QNAME + _TYPE_CLASS[QTYPE_A] + self._ttl4 + b"\x00\x04"
        a_rrs = b"".join(a_head + code.to_bytes(4, "big") for code in answer.codes)
        distinct = answer.distinct_txts
        txts = tuple(t.encode("utf-8") for t in distinct)
        head = PTR_QNAME + _TYPE_CLASS[QTYPE_TXT] + self._ttl4
        one = None
        if len(txts) == 1 and txts[0].count(b"\x00") == 1 and len(txts[0]) < 190:
            pre, _, post = txts[0].partition(b"\x00")
            one = (head, pre, post)
        return Prebuilt(
            a_rrs=a_rrs,
            a_count=len(answer.codes),
            txt_head=head,
            txts=txts,
            has_subst=tuple(SUBST in t for t in distinct),
            txt_one=one,
        )

    def allows_transfer(self, client_ip: str, key: str | None = None) -> bool:
        """May `client_ip` (whose request verified with TSIG `key`, if any) AXFR or NOTIFY?

        A request signed with a subscriber's key (allow_transfer `{key: NAME}`) is allowed
        from the key's networks, or from anywhere when it names none. A secondary with a
        `tsig_key` must sign with that key: its address alone no longer suffices. Otherwise
        the address must be in allow_transfer's networks or be a secondary's; a signed
        request must in addition use a key of one of the zone's secondaries.
        """
        client = client_of_text(client_ip)  # a v4-mapped peer on a dual-stack socket is IPv4
        if client is None:
            return False
        family, addr = client
        key = key.lower().rstrip(".") if key else None
        subscriber = self.settings.transfer_keys.get(key) if key else None
        if subscriber is not None and (
            not subscriber or any(n.family == family and n.start <= addr <= n.end for n in subscriber)
        ):
            return True
        secondaries = [s for s in self.settings.secondaries if _addr_or_none(s.address) == (family, addr)]
        required = {s.tsig_key.lower().rstrip(".") for s in secondaries if s.tsig_key}
        if required:
            return key in required
        if key is not None and key not in {
            s.tsig_key.lower().rstrip(".") for s in self.settings.secondaries if s.tsig_key
        }:
            return False
        return bool(secondaries) or any(
            n.family == family and n.start <= addr <= n.end for n in self.settings.allow_transfer
        )


def _addr_or_none(text: str) -> tuple[int, int] | None:
    try:
        return parse_addr(text)
    except ValueError:
        return None


#: The hot query, matched whole by one regex in C (wire.fast): header with QR=0, opcode 0,
#: QD=1, AN=NS=0, AR 0 or 1 (group 1); four canonical decimal labels (no leading zero, at
#: most 255), d, c, b, a (2-5), length bytes included; an ip zone's apex (6) and the root;
#: qtype A, TXT or ANY (7), class IN; then an optional OPT with version 0: UDP size (8),
#: the flags byte holding DO (9), rdlength (10) and the options (11).
_OCTET = rb"(\x01\d|\x02[1-9]\d|\x03(?:1\d\d|2[0-4]\d|25[0-5]))"
_HOT_HEAD = rb"..[\x00-\x07].\x00\x01\x00\x00\x00\x00\x00([\x00\x01])"
_HOT_TAIL = rb")\x00\x00([\x01\x10\xff])\x00\x01(?:\x00\x00\x29(..).\x00(.).(..)(.*))?"


def _hot_matcher(served: Mapping[str, ServedZone]) -> tuple[re.Pattern[bytes] | None, dict[bytes, ServedZone]]:
    names = list(served)
    if any(a != b and a.endswith("." + b) for a in names for b in names):
        return None, {}  # nested zones: the most specific-zone rule needs the full walk
    table = {sz.key: sz for sz in served.values() if sz.kind_ip and not sz.keyed}
    if not table:
        return None, {}
    apexes = b"|".join(re.escape(key) for key in sorted(table, key=len, reverse=True))
    pattern = _HOT_HEAD + _OCTET * 4 + b"(" + apexes + _HOT_TAIL
    return re.compile(pattern, re.IGNORECASE | re.DOTALL), table


def _hot_email_matcher(
    served: Mapping[str, ServedZone],
) -> tuple[re.Pattern[bytes] | None, dict[bytes, ServedZone]]:
    """The hashed-name query of an email zone, `<label>[.<suffix>].ZONE` A/TXT/ANY, matched whole
    like the hot IPv4 query: the label's length byte (2: 32, 40 or 52) and the label (3: 32 to 52
    letters and digits), then the suffix and apex (4), then the rest as in the IPv4 pattern."""
    names = list(served)
    if any(a != b and a.endswith("." + b) for a in names for b in names):
        return None, {}
    table = {sz.hash_key: sz for sz in served.values() if sz.hashes is not None and not sz.keyed and not sz.extra}
    if not table:
        return None, {}
    tails = b"|".join(re.escape(key) for key in sorted(table, key=len, reverse=True))
    pattern = _HOT_HEAD + rb"([\x20\x28\x34])((?-i:[0-9A-Za-z]{32,52}))(" + tails + _HOT_TAIL
    return re.compile(pattern, re.IGNORECASE | re.DOTALL), {k.lower(): sz for k, sz in table.items()}


#: d.c.b.a.KEY.ZONE of a keyed ip zone: the hot query with the key's length byte (6) and the key
#: (7: 16 to 63 of a-z0-9, either case) between the address and the apex (8).
_KEY = rb"([\x10-\x3f])((?-i:[A-Za-z0-9]{16,63}))("  # case-blind by hand: half the cost of (?i)


class Gate:
    """What gate.py needs to answer when an ACL restricts someone or a zone is keyed."""

    def __init__(self, served: Mapping[str, ServedZone], tables: Tables, keyed: set[str]) -> None:
        self.tables = tables
        self.keyed = bool(keyed)
        #: No ACL restricts anyone (only keyed zones brought the gate): no client look-up up front.
        self.open = tables.empty
        counts: dict[int, dict[bytes, ServedZone]] = {}
        for sz in served.values():
            counts.setdefault(sz.nlabels, {})[sz.key] = sz
        #: Every zone, keyed or not (ZoneSet.by_count leaves keyed zones out for wire.fast()).
        self.by_count = tuple(sorted(counts.items(), reverse=True))
        names = list(served)
        nested = any(a != b and a.endswith("." + b) for a in names for b in names)
        #: wire.fast() may answer for a client that passes unless a keyed zone lies inside
        #: another zone (ZoneSet.by_count would find the outer zone for its names).
        self.fast_ok = not any(a != b and a.endswith("." + b) for a in keyed for b in names)
        self.keyed_table = {sz.key: sz for sz in served.values() if sz.keyed and sz.kind_ip}
        self.keyed_rx: re.Pattern[bytes] | None = None
        if self.keyed_table and not nested:
            apexes = b"|".join(re.escape(k) for k in sorted(self.keyed_table, key=len, reverse=True))
            pattern = _HOT_HEAD + _OCTET * 4 + _KEY + apexes + _HOT_TAIL
            self.keyed_rx = re.compile(pattern, re.IGNORECASE | re.DOTALL)
        #: Error answers' records by (code, text), built on first use.
        self.errors: dict[tuple[int, str], tuple[bytes, bytes]] = {}

    @classmethod
    def build(cls, served: Mapping[str, ServedZone], wide: Sequence[AclRule]) -> Gate | None:
        """The gate of a zone set, or None when no ACL restricts anyone and no zone is keyed."""
        tables = Tables(wide, {name: sz.settings.acl for name, sz in served.items()})
        keyed = {name for name, sz in served.items() if sz.keyed}
        if tables.empty and not keyed:
            return None
        return cls(served, tables, keyed)


@dataclass(frozen=True, slots=True)
class ZoneSet:
    """Every served zone, indexed for the wire path; replaced as a whole on reload."""

    zones: Mapping[str, ServedZone]
    generation: str = ""
    listen: tuple[str, ...] = ()
    #: (label count, {wire key: zone}) longest first, so the most specific zone wins. Keyed zones
    #: are left out: wire.fast() never answers them (gate.Gate.by_count has every zone).
    by_count: tuple[tuple[int, dict[bytes, ServedZone]], ...] = field(default=())
    #: The hot path's matcher: four canonical decimal labels, then an ip zone's apex and the
    #: root, checked in C by one regex (see wire.fast). None when zones nest.
    hot_v4: re.Pattern[bytes] | None = None
    hot_table: dict[bytes, ServedZone] = field(default_factory=dict)
    #: The hashed-name query of an email zone (`<label>[.<suffix>].ZONE`), and its zones by the
    #: wire form of suffix and apex (lower case); None without unkeyed email zones, or when zones nest.
    hot_email: re.Pattern[bytes] | None = None
    hot_email_table: dict[bytes, ServedZone] = field(default_factory=dict)
    #: The generation's manifest.json (counts, source commit) for the metrics; None when built directly.
    manifest: Manifest | None = None
    #: TSIG keys (tsig.Keyring) from `serve --tsig-keys`, set by the server after loading; None: no keys.
    tsig: Any = None
    #: IXFR differences kept per zone (ixfr.Step, oldest first), set by the server on (re)load.
    ixfr: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    #: The server-wide client ACL (zones.yaml top-level `acl`); each zone's own is in its settings.
    acl: tuple[AclRule, ...] = ()
    #: Access keys of keyed zones (keys.AccessKeys) from `serve --access-keys`, set by the server
    #: after loading, like `tsig`; None: no key file, every keyed query gets the key-unknown answer.
    access_keys: Any = None
    #: The query gate (gate.Gate) when an ACL restricts someone or a zone is keyed; None (the
    #: common case): the serving loops go straight to wire.fast(), one attribute test per query.
    gate: Gate | None = None

    @classmethod
    def build(
        cls,
        zones: Iterable[CompiledZone],
        settings: Mapping[str, ZoneSettings] | None = None,
        *,
        generation: str = "",
        listen: Iterable[str] = (),
        manifest: Manifest | None = None,
        acl: Iterable[AclRule] = (),
    ) -> ZoneSet:
        settings = settings or {}
        served = {}
        for z in zones:
            sz = ServedZone(z, settings.get(z.info.name))
            served[sz.name] = sz
        counts: dict[int, dict[bytes, ServedZone]] = {}
        for sz in served.values():
            if not sz.keyed:
                counts.setdefault(sz.nlabels, {})[sz.key] = sz
        by_count = tuple(sorted(counts.items(), reverse=True))
        hot_v4, hot_table = _hot_matcher(served)
        hot_email, hot_email_table = _hot_email_matcher(served)
        acl = tuple(acl)

        return cls(
            zones=served,
            generation=generation,
            listen=tuple(listen),
            by_count=by_count,
            hot_v4=hot_v4,
            hot_table=hot_table,
            hot_email=hot_email,
            hot_email_table=hot_email_table,
            manifest=manifest,
            acl=acl,
            gate=Gate.build(served, acl),
        )

    @classmethod
    def from_published(cls, published: Published) -> ZoneSet:
        """From the current generation as publisher.publish.manifest loads it."""
        manifest = published.manifest
        settings = {}
        for name in published.zones:
            try:
                settings[name] = ZoneSettings.from_manifest(manifest.zones[name])
            except (AddressError, ValueError) as exc:
                raise ArtifactError(f"manifest entry of {name}: unusable serving settings: {exc}") from exc
        return cls.build(
            published.zones.values(),
            settings,
            generation=published.generation,
            listen=manifest.listen or (),
            manifest=manifest,
            acl=manifest.acl or (),
        )

    def find(self, qname: str) -> tuple[ServedZone, str] | None:
        """The zone containing `qname` (text) and the name relative to it."""
        name = qname.lower().strip(".")
        best: tuple[ServedZone, str] | None = None
        for zname, sz in self.zones.items():
            if name == zname:
                rel = ""
            elif name.endswith("." + zname):
                rel = name[: -len(zname) - 1]
            else:
                continue
            if best is None or sz.nlabels > best[0].nlabels:
                best = (sz, rel)
        return best
