"""Partners declared by their SPF records (README, "Partner allowlists from SPF").

An allow zone's curated YAML may declare a partner by domain (`- spf: partner.example`,
with owner and contact like any allowlist entry): `publisher refresh-spf` resolves
the partner's SPF record (RFC 7208) and writes what it passes into one generated
curated file per partner, `<spf.dir>/<domain>.yaml`, committed like any change.
This module holds the vocabulary the stages share: the zone's `spf:` settings
(zones.yaml), a declared `Partner`, the `Generated` header of a generated file,
and the digest that tells a generated file edited by hand. Pure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from publisher.addresses import Network
from publisher.errors import Location

#: Who writes generated files: their `generated.by` and their entries' `by`.
GENERATED_BY = "publisher refresh-spf"
#: How the line a generated file's entries start at begins; the digest covers it and every byte after it.
ENTRIES_LINE = b"entries:"
#: The separator of an SPF chain as files, plans and `explain` show it.
CHAIN_SEP = " > "

DAY = 86400


@dataclass(frozen=True, slots=True)
class SharedPools:
    """zones.yaml `spf: shared:`: includes that are shared sending pools (a provider's whole
    platform, where anyone can send), and what the zone lists of them.

    An include is a shared pool when its target is one of `providers` or below one, or when
    what it passes exceeds `max_ipv4` IPv4 addresses or `max_ipv6_64s` IPv6 /64 networks.
    Its addresses are listed at `code` (a lower trust) or, when `code` is None, not at all.
    """

    providers: tuple[str, ...] = ()  # lower-case names, no trailing dot
    max_ipv4: int = 65536
    max_ipv6_64s: int = 65536
    code: int | None = None


@dataclass(frozen=True, slots=True)
class SpfSchedule:
    """zones.yaml `spf: schedule:`: how often `watch` refreshes the zone's partners."""

    every: int = 6 * 3600  # seconds
    jitter: float = 0.1  # each wait is `every` times a random factor in [1 - jitter, 1 + jitter]
    budget: int = 500  # DNS queries one refresh run of the zone may send; partners past it wait


@dataclass(frozen=True, slots=True)
class SpfSettings:
    """A zone's zones.yaml `spf:` (allow zones of kind ip only)."""

    dir: str  # lists-relative folder of the generated files; the zone's sources must read them
    schedule: SpfSchedule = SpfSchedule()
    grace: int = 14 * DAY  # seconds a partner's last good entries stay after its record fails or shrinks
    max_removed_share: float = 0.5  # a refresh removing more of a partner's addresses keeps them for `grace`
    shared: SharedPools = SharedPools()

    def generated_path(self, domain: str) -> str:
        """The generated file of a partner: `<dir>/<domain>.yaml`."""
        return f"{self.dir}/{domain}.yaml"

    def partner_of(self, path: str) -> str | None:
        """The partner domain a path in `dir` is generated for, or None for any other path."""
        prefix = self.dir + "/"
        if not path.startswith(prefix) or not path.endswith(".yaml"):
            return None
        name = path[len(prefix) : -len(".yaml")]
        return name if name and "/" not in name else None


@dataclass(frozen=True, slots=True)
class SpfFilter:
    """One item of a declaration's `include:` / `exclude:`: an address filter (a network) or a
    chain filter (a domain: the SPF chain passes through this name or a name below it)."""

    text: str  # as written
    network: Network | None = None
    domain: str | None = None  # lower-case A-label, no trailing dot


@dataclass(frozen=True, slots=True)
class Partner:
    """A `- spf: DOMAIN` entry of an allow zone's curated file (file `defaults` merged in)."""

    domain: str  # lower-case A-label, no trailing dot
    location: Location  # where the entry was written (path:line:col)
    owner: str
    code: int  # the entry's code, else the file's default, else the zone's
    reason: str = ""  # "" -> generated entries say "SPF of DOMAIN"
    contact: str | None = None
    ticket: str | None = None
    by: str | None = None
    added: str | None = None
    max_prefix_v4: int | None = None  # the entry's own limit; the zone's max_prefix applies too
    max_prefix_v6: int | None = None
    include: tuple[SpfFilter, ...] = ()  # empty: everything the record passes
    exclude: tuple[SpfFilter, ...] = ()


GeneratedStatus = Literal["ok", "kept", "failing"]


@dataclass(frozen=True, slots=True)
class Generated:
    """The `generated:` mapping heading a file refresh-spf wrote.

    status `ok`: the entries are what the record passes (after the zone's rules); `kept`: the
    record failed, vanished or shrank past the zone's share, and the last good entries are
    kept, those no longer passed carrying `expires` (the end of the grace); `failing`: the
    record fails and nothing is kept (never refreshed well, or the grace ended).
    """

    partner: str
    declared: str  # "wl/partners.yaml:31", where the partner was declared at the refresh
    refreshed: str  # ISO 8601 UTC: the refresh that last changed the file
    record: str  # the partner's own SPF record as read ("" when there was none)
    status: GeneratedStatus = "ok"
    why: str = ""  # kept / failing: what went wrong, for the plan and the review
    since: str | None = None  # kept / failing: when it started (ISO 8601 UTC)
    not_listed: tuple[str, ...] = ()  # what the refresh left out, each with its chain and why
    digest: str = ""  # "sha256:<hex>" of the entries as written (entries_digest)
    edited: bool = False  # set by the reader: the entries no longer match `digest`
    line: int = 0  # the line of `generated:` in the file


def entries_digest(data: bytes) -> str | None:
    """`sha256:<hex>` of a generated file's entries: from the line starting `entries:` (also
    `entries: []`) to the end of the file, byte for byte. None when no line starts so."""
    if data.startswith(ENTRIES_LINE):
        at = 0
    else:
        found = data.find(b"\n" + ENTRIES_LINE)
        if found < 0:
            return None
        at = found + 1
    return "sha256:" + hashlib.sha256(data[at:]).hexdigest()


def chain_text(chain: Sequence[str]) -> str:
    """An SPF chain as shown: `partner.example > include:_spf.partner.example > ip4:192.0.2.0/24`."""
    return CHAIN_SEP.join(chain)
