"""The data the stages pass along: zone configuration and parsed sources.

Configuration objects are frozen. A parsed source file is columnar (parallel
arrays, one row per entry) so that a bulk feed of millions of lines costs a few
bytes per entry instead of a Python object each; `SourceData.rows()` reads the
columns back as `Row`s for the code that wants one entry at a time. Curated YAML
entries also keep their full metadata (`EntryMeta`) for plan, explain and lookup.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import repeat
from typing import Literal, NamedTuple

from publisher.addresses import Network, format_v4
from publisher.emails import EmailSettings
from publisher.errors import Location, Problem
from publisher.partners import Generated, Partner, SpfSettings

Kind = Literal["ip", "domain", "email"]
Role = Literal["block", "allow"]
Export = Literal["bind", "rbldnsd"]  # a zone file written beside the snapshot (zones.yaml `exports`)
EXPORTS: tuple[Export, ...] = ("bind", "rbldnsd")

DEFAULT_LISTEN = ("127.0.0.1:5353", "[::1]:5353")
#: In a reason or TXT, where the queried address or domain is put (rbldnsd's `$`).
SUBST = "\x00"
#: The most bytes a TXT may hold once the longest queried address or name fills every SUBST
#: (README, Security: room for a domain zone's `$` twice, four character-strings at most).
MAX_TXT_BYTES = 1024
#: The longest text standing for SUBST in an ip zone: a wildcard's network in the zone file and
#: AXFR, `ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124` (the server's own is 39, an IPv6 address).
IP_SUBJECT_BYTES = 43


def longest_subject(kind: str, zone_name: str) -> int:
    """Bytes of the longest text that can stand for SUBST in a TXT of the zone.

    Domain zones put the queried name relative to the zone there: a query name has at
    most 253 characters, so `name.ZONE` leaves 252 - len(ZONE) for it (any bytes count once).
    Email zones have no such placeholder: their TXT never names what was queried.
    """
    if kind == "email":
        return 0
    return IP_SUBJECT_BYTES if kind == "ip" else max(0, 252 - len(zone_name.rstrip(".")))


def longest_txt(text: str, subject: int) -> int:
    """Bytes of `text` (a TXT with SUBST holes) when each hole holds `subject` bytes."""
    return len(text.encode("utf-8")) + text.count(SUBST) * (subject - 1)


def render_txt(template: str, *, code: int, reason: str, zone: str) -> str:
    """Fill a TXT template; {ip}/{domain} become SUBST, filled per query by the server."""
    out: list[str] = []
    rest = template
    while rest:
        start = rest.find("{")
        end = rest.find("}", start + 1) if start >= 0 else -1
        if start < 0 or end < 0:
            out.append(rest)
            break
        out.append(rest[:start])
        key = rest[start + 1 : end]
        if key in ("ip", "domain"):
            out.append(SUBST)
        elif key == "code":
            out.append(format_v4(code))
        elif key == "reason":
            out.append(reason)
        elif key == "zone":
            out.append(zone)
        else:  # validation refuses unknown placeholders; keep the text as written
            out.append(rest[start : end + 1])
        rest = rest[end + 1 :]
    return "".join(out)


def glob_matches(pattern: str, path: str) -> bool:
    """Does a lists-relative `path` match a zones.yaml glob (`*` stays in one folder, `**` crosses)?

    `lists.tree.glob` lists a tree's files with it; compile sorts the excludes files of a zone
    out of its sources with it, an import checks which zones would take a file in."""
    if "**" in pattern:
        # fnmatch's own `*` already crosses '/', and its translation does not backtrack without
        # end (a hand-made `.*` per `**` did: a glob of many stars hung the load).
        return fnmatch.fnmatchcase(path, re.sub(r"\*\*/?", "*", pattern))
    return path.count("/") == pattern.count("/") and fnmatch.fnmatchcase(path, pattern)


@dataclass(frozen=True, slots=True)
class Soa:
    mname: str
    rname: str
    refresh: int = 3600
    retry: int = 600
    expire: int = 604800
    minimum: int = 300


@dataclass(frozen=True, slots=True)
class NameServer:
    name: str
    addresses: tuple[str, ...] = ()  # glue, only used when the NS is inside the zone


@dataclass(frozen=True, slots=True)
class Secondary:
    """A secondary server: gets NOTIFY after each new serial, may AXFR the zone."""

    address: str
    port: int = 53
    notify: bool = True
    tsig_key: str | None = None


@dataclass(frozen=True, slots=True)
class Guards:
    """Guard-rail thresholds for publishing (see plan.py)."""

    max_removed_share: float = 0.25
    min_listings_for_share: int = 50
    max_growth_factor: float = 10.0


AclAction = Literal["pass", "refuse", "drop", "empty", "answer"]
ACL_ACTIONS: tuple[AclAction, ...] = ("pass", "refuse", "drop", "empty", "answer")


@dataclass(frozen=True, slots=True)
class AclRule:
    """One client network of a zones.yaml `acl` and what its queries get (docs/design.md, "Who may query").

    pass: answered as usual; refuse: REFUSED; drop: no answer at all; empty: every data query
    answers "not listed" (SOA and NS as usual); answer: every data query answers `code` (in
    127.255.255.0/24, publisher.errorcodes) with `txt`, where {client} is the client's address.
    """

    network: str  # CIDR text, normalised (so one network has one text)
    action: AclAction
    code: int = 0  # `answer` only
    txt: str = ""  # `answer` only
    location: Location = Location("zones.yaml")

    @property
    def shown(self) -> str:
        """The action as messages and plans name it: `refuse`, `answer 127.255.255.254`."""
        return f"answer {format_v4(self.code)}" if self.action == "answer" else self.action


#: Entry fields the lookup page may show (zones.yaml `web: public`), and those it shows by default:
#: tickets (`ticket`), authors (`by`) and partners' `owner` / `contact` are internal unless named.
PUBLIC_FIELDS: tuple[str, ...] = ("reason", "added", "expires", "code", "ticket", "by", "owner", "contact")
DEFAULT_PUBLIC: tuple[str, ...] = ("reason", "added", "expires")


@dataclass(frozen=True, slots=True)
class ZonePage:
    """A zone's zones.yaml `web:`: what `publisher web` shows of it and which requests it takes.

    `public`: the fields of a covering entry the lookup page and API show; `policy`: the zone
    page's text (plain text, paragraphs split by blank lines); `codes`: what each return code
    means, shown beside an answer; `requests`: the curated YAML file (lists-relative) that a
    confirmed request adds an entry to: in a block zone one of its `excludes` files (a delisting
    is a hole in the whole zone, whichever file lists the address), in an allow zone one of its
    sources (an entry with owner and contact). None: the zone takes no requests.
    """

    public: tuple[str, ...] = DEFAULT_PUBLIC
    policy: str = ""
    codes: tuple[tuple[int, str], ...] = ()
    requests: str | None = None

    def meaning(self, code: int) -> str:
        """What `code` means in this zone ("" when zones.yaml does not say)."""
        return next((text for c, text in self.codes if c == code), "")


@dataclass(frozen=True, slots=True)
class TransferKey:
    """An `allow_transfer` entry `{key: NAME, networks: [...]}`: a subscriber mirror that may take
    AXFR/IXFR when it signs with TSIG key NAME (serve --tsig-keys), from any address or only from
    `networks` (CIDR texts, normalised). Removing the entry, or the key from the key file, revokes it."""

    key: str  # the TSIG key name, lower case, no trailing dot
    networks: tuple[str, ...] = ()  # empty: from any address
    location: Location = Location("zones.yaml")


@dataclass(frozen=True, slots=True)
class ZoneConfig:
    name: str
    kind: Kind
    role: Role
    sources: tuple[str, ...]
    code: int  # default return code, as an int (127.0.0.2 == 0x7F000002)
    txt: str  # TXT template with {ip} / {domain}, {code}, {reason}, {zone}
    ttl: int = 2100
    soa: Soa = Soa("ns1.example.test", "hostmaster.example.test")
    ns: tuple[NameServer, ...] = ()
    protect: tuple[str, ...] = ()
    max_prefix_v4: int = 16
    max_prefix_v6: int = 32
    secondaries: tuple[Secondary, ...] = ()
    allow_transfer: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    #: allow_transfer's `{key: NAME}` entries: transfers signed with a subscriber's own TSIG key.
    transfer_keys: tuple[TransferKey, ...] = ()
    guards: Guards = Guards()
    location: Location = Location("zones.yaml")
    exports: tuple[Export, ...] = EXPORTS  # zone files written beside the snapshot, in EXPORTS order
    excludes: tuple[str, ...] = ()  # globs of local exclusion files: holes in every listing of the zone
    acl: tuple[AclRule, ...] = ()  # this zone's client ACL (Config.acl applies to every zone)
    keyed: bool = False  # `keys: required`: queries are d.c.b.a.<key>.<zone> (serve --access-keys)
    web: ZonePage = ZonePage()  # `web:`: the lookup page's public fields, policy, code meanings, requests file
    spf: SpfSettings | None = None  # `spf:`: partners declared by SPF (publisher refresh-spf); allow ip zones
    email: EmailSettings | None = None  # `email:` of a zone of kind email (set for every such zone)
    #: Set on the copy an excludes file is parsed with: every entry is checked as an exclusion.
    read_as_excludes: bool = False

    def is_excludes(self, path: str) -> bool:
        """Is `path` one of the zone's excludes files (it is then none of its sources)?"""
        return any(glob_matches(pattern, path) for pattern in self.excludes)


@dataclass(frozen=True, slots=True)
class Config:
    zones: tuple[ZoneConfig, ...]
    listen: tuple[str, ...] = DEFAULT_LISTEN
    path: str = "zones.yaml"
    acl: tuple[AclRule, ...] = ()  # the server-wide client ACL, consulted for every zone
    acl_files: tuple[str, ...] = ()  # the `file:`s the ACLs read (lists-relative): not list files

    def zone(self, name: str) -> ZoneConfig | None:
        for zone in self.zones:
            if zone.name == name:
                return zone
        return None


@dataclass(frozen=True, slots=True)
class Value:
    """What one entry says: its code, its reason, when it stops counting, or a hole."""

    code: int
    reason: str = ""
    expires: dt.datetime | None = None  # aware UTC; the entry counts until then
    exclude: bool = False

    def live(self, as_of: dt.datetime) -> bool:
        """Does the entry count at `as_of` (not expired)?"""
        return self.expires is None or self.expires > as_of


@dataclass(slots=True)
class EntryMeta:
    """Everything a curated YAML entry said, for plan, explain and lookup."""

    line: int
    col: int
    text: str  # the ip / domain as written
    value: int  # index into SourceData.values
    added: str | None = None
    by: str | None = None
    ticket: str | None = None
    owner: str | None = None
    contact: str | None = None
    allow_broad: bool = False
    via: str | None = None  # generated files: the SPF chain that passes the entry (partners.chain_text)


class Row(NamedTuple):
    """One entry of a SourceData: an address block (family 4 or 6) or a domain (family 0)."""

    family: int  # 4, 6, or 0 for a domain
    start: int  # first address of the block; 0 for a domain
    end: int  # last address of the block (inclusive); 0 for a domain
    name: str  # the domain, without `*.`; "" for a block
    wild: bool  # the domain's subdomains (`*.name`), not the name itself
    value: int  # index into SourceData.values
    line: int  # the 1-based line the entry came from

    @property
    def subject(self) -> tuple[int, int, int, str, bool]:
        """What the entry covers, without its value or place: equal for the same entry in two files."""
        return (self.family, self.start, self.end, self.name, self.wild)

    @property
    def text(self) -> str:
        """The entry normalised: `192.0.2.0/24`, `10.0.0.1-10.0.0.5`, `*.spam.example`."""
        if self.family == 0:
            return f"*.{self.name}" if self.wild else self.name
        return str(Network(self.family, self.start, self.end))


def _u32() -> array[int]:
    return array("I")


def _i32() -> array[int]:
    return array("i")


@dataclass(slots=True)
class SourceData:
    """One parsed list file. Row i of each family's arrays is one entry.

    `*_value` indexes `values`; `*_line` is the 1-based line the entry came from.
    IPv6 bounds are Python ints (128 bits do not fit an array). An email zone's entries are
    domain rows (never wild) whose `dom_name` is the name relative to the zone,
    `<hash label>[.<suffix>]` (`emails.address_name`, `emails.feed_label`); a curated entry's
    `EntryMeta.text` keeps the address as written.
    """

    path: str  # relative to the lists root, e.g. "bl/abuse.yaml"
    values: list[Value] = field(default_factory=list)
    v4_start: array[int] = field(default_factory=_u32)
    v4_end: array[int] = field(default_factory=_u32)
    v4_value: array[int] = field(default_factory=_i32)
    v4_line: array[int] = field(default_factory=_u32)
    v6_start: list[int] = field(default_factory=list)
    v6_end: list[int] = field(default_factory=list)
    v6_value: array[int] = field(default_factory=_i32)
    v6_line: array[int] = field(default_factory=_u32)
    dom_name: list[str] = field(default_factory=list)
    dom_wild: bytearray = field(default_factory=bytearray)
    dom_value: array[int] = field(default_factory=_i32)
    dom_line: array[int] = field(default_factory=_u32)
    entries: dict[int, EntryMeta] = field(default_factory=dict)  # by line, curated only
    problems: list[Problem] = field(default_factory=list)  # warnings and errors found while reading
    partners: list[Partner] = field(default_factory=list)  # curated `- spf: DOMAIN` declarations
    generated: Generated | None = None  # the `generated:` header of a file refresh-spf wrote

    def __len__(self) -> int:
        return len(self.v4_start) + len(self.v6_start) + len(self.dom_name)

    def add_value(self, value: Value) -> int:
        self.values.append(value)
        return len(self.values) - 1

    def add_network(self, family: int, start: int, end: int, value: int, line: int) -> None:
        """One address-block row (bulk parsing appends to the arrays directly, for speed)."""
        if family == 4:
            self.v4_start.append(start)
            self.v4_end.append(end)
            self.v4_value.append(value)
            self.v4_line.append(line)
        else:
            self.v6_start.append(start)
            self.v6_end.append(end)
            self.v6_value.append(value)
            self.v6_line.append(line)

    def add_domain(self, name: str, wildcard: bool, value: int, line: int) -> None:
        self.dom_name.append(name)
        self.dom_wild.append(1 if wildcard else 0)
        self.dom_value.append(value)
        self.dom_line.append(line)

    def location(self, line: int) -> Location:
        """Where the entry of `line` stands: a curated entry's column too."""
        meta = self.entries.get(line)
        return Location(self.path, line, meta.col if meta else None)

    def row_text(self, row: Row) -> str:
        """A row as the file writes it: a curated entry's text, else the row normalised."""
        meta = self.entries.get(row.line)
        return meta.text if meta else row.text

    def row(self, k: int) -> Row:
        """Row number `k` of `rows()` (all families)."""
        n4 = len(self.v4_start)
        if k < n4:
            return Row(4, self.v4_start[k], self.v4_end[k], "", False, self.v4_value[k], self.v4_line[k])
        k -= n4
        if k < len(self.v6_start):
            return Row(6, self.v6_start[k], self.v6_end[k], "", False, self.v6_value[k], self.v6_line[k])
        k -= len(self.v6_start)
        return Row(0, 0, 0, self.dom_name[k], bool(self.dom_wild[k]), self.dom_value[k], self.dom_line[k])

    def rows(self, family: int | None = None) -> Iterator[Row]:
        """Every entry as a Row: the IPv4 rows, then IPv6, then domains; or those of one `family` (4, 6, 0)."""
        # tuple.__new__ builds each Row in C (what Row._make does, without a Python call per row):
        # plan and lookup read a million-row feed this way.
        new, rows, no, zero = tuple.__new__, repeat(Row), repeat(""), repeat(0)
        if family is None or family == 4:
            yield from map(
                new, rows, zip(repeat(4), self.v4_start, self.v4_end, no, repeat(False), self.v4_value, self.v4_line)
            )
        if family is None or family == 6:
            yield from map(
                new, rows, zip(repeat(6), self.v6_start, self.v6_end, no, repeat(False), self.v6_value, self.v6_line)
            )
        if family is None or family == 0:
            wild = map(bool, self.dom_wild)
            yield from map(new, rows, zip(zero, zero, zero, self.dom_name, wild, self.dom_value, self.dom_line))


@dataclass(frozen=True, slots=True)
class Touched:
    """What a change to a zone's sources can alter: the address ranges (inclusive, per family,
    possibly overlapping) and domain names of every entry removed, added or changed.

    Publish computes it from the rows that differ between the published sources and the new
    ones; an incremental compile recompiles only there and keeps the rest of the published zone.
    """

    v4: tuple[tuple[int, int], ...] = ()
    v6: tuple[tuple[int, int], ...] = ()
    names: frozenset[tuple[str, bool]] = frozenset()  # (domain, wild)

    @property
    def empty(self) -> bool:
        return not (self.v4 or self.v6 or self.names)
