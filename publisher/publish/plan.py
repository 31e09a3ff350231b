"""What a publish would change, per zone. Pure.

`plan_zone` compares the newly compiled zone and its parsed sources with the
published zone and the sources it was built from, at two levels:
- addresses (IPv4 and IPv6 apart) or names: from the two compiled zones, exact,
  by one sweep over their sorted intervals; what DNS will answer differently;
- entries (listings, file:line): from the two sets of parsed sources, in
  entry_diff.py.
The guard rails that judge a plan are in guards.py.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from publisher.addresses import TEST_LISTED_DOMAIN, TEST_LISTED_V4, address_count
from publisher.compile.compiler import listing_count
from publisher.compile.zone import Answer, CompiledZone
from publisher.lists.breadth import SUFFIX_WEIGHT, is_suffix_wildcard
from publisher.model import AclRule, SourceData, ZoneConfig, ZonePage
from publisher.publish.entry_diff import (
    ADDED,
    CHANGED,
    EXPIRED,
    REMOVED,
    Change,
    Entry,
    EntryDiff,
    entry_changes,
    first_entries,
)
from publisher.publish.manifest import Manifest, ZoneMeta

__all__ = [
    "ADDED",
    "CHANGED",
    "EXPIRED",
    "REMOVED",
    "Change",
    "Entry",
    "EntryDiff",
    "IPV4",
    "IPV6",
    "NAMES",
    "Measure",
    "Plan",
    "access_notes",
    "ZonePlan",
    "amount",
    "entry_changes",
    "measured",
    "measures",
    "plan_zone",
    "weighed_names",
    "zone_sizes",
]


@dataclass(frozen=True, slots=True)
class Measure:
    """One way to count a zone: IPv4 addresses, IPv6 addresses, or names (domain zones).

    The families are kept apart: one IPv6 /48 holds 2^80 addresses and would
    drown any IPv4 change in a single sum. RFC 5782 test points are not counted.
    """

    unit: str  # IPV4, IPV6 or NAMES
    before: int
    after: int
    added: int = 0  # listed newly
    removed: int = 0  # no longer listed
    changed: int = 0  # listed before and after, answered differently


IPV4, IPV6, NAMES = "addresses", "IPv6 addresses", "names"
#: An email zone's measure: its hashed names, each one address (history.jsonl's key "names").
EMAILS = "email addresses"


def amount(count: int, unit: str = IPV4) -> str:
    """A count for people: IPv6 sizes as powers of two (2^80 reads better than 25 digits)."""
    return address_count(count, 6 if unit == IPV6 else 4)


#: Each measure's unit for a count of one.
_ONE = {IPV4: "address", IPV6: "IPv6 address", NAMES: "name", EMAILS: "email address"}


def measured(count: int, unit: str, sign: str = "") -> str:
    """`+16 addresses`, `1 address`, `-1 name`, `~2^81 IPv6 addresses`: a count with its unit."""
    return f"{sign}{amount(count, unit)} {_ONE.get(unit, unit) if count == 1 else unit}"


@dataclass(frozen=True, slots=True)
class ZonePlan:
    name: str
    kind: str
    role: str
    is_new: bool  # not published before
    listings_before: int
    listings_after: int
    measures: tuple[Measure, ...]  # IPV4 and IPV6 for ip zones, NAMES for domain zones
    changes: tuple[Change, ...]  # in display order; maybe only the first ones (see totals)
    totals: dict[tuple[str, bool], int]  # (kind, is a listing) -> how many entries changed so
    entries_known: bool  # False when the previous sources could not be read
    content_changed: bool
    #: Domain zones: names before and after, a wildcard on a public suffix counted as
    #: breadth.SUFFIX_WEIGHT names (the growth guard's measure); 0 where not computed.
    weighed_before: int = 0
    weighed_after: int = 0
    removed_from: dict[str, int] = field(default_factory=dict)  # path -> listings removed from it (REMOVED)

    def count(self, kind: str, listings: bool = True) -> int:
        return self.totals.get((kind, listings), 0)

    @property
    def changes_total(self) -> int:
        return sum(self.totals.values())

    def measure(self, unit: str) -> Measure:
        return next((m for m in self.measures if m.unit == unit), Measure(unit, 0, 0))


@dataclass(frozen=True, slots=True)
class Plan:
    zones: tuple[ZonePlan, ...]
    dropped: tuple[str, ...] = ()  # published before, no longer in zones.yaml
    first_publish: bool = False
    notes: tuple[str, ...] = field(default=())

    def zone(self, name: str) -> ZonePlan | None:
        return next((z for z in self.zones if z.name == name), None)


# --- addresses -------------------------------------------------------------


def zone_sizes(zone: CompiledZone) -> dict[str, int]:
    """What the zone lists per measure, not counting the RFC 5782 test points."""
    if zone.info.kind == "email":
        suffix = max(zone.dom_ents, key=len, default="")  # the test point sits where a hash does
        test = f"{TEST_LISTED_DOMAIN}.{suffix}" if suffix else TEST_LISTED_DOMAIN
        listed = sum(1 for v in zone.dom_exact.values() if v >= 0)
        return {EMAILS: listed - (1 if zone.dom_exact.get(test, -1) >= 0 else 0)}
    if zone.info.kind == "domain":
        names = sum(1 for v in zone.dom_exact.values() if v >= 0) + sum(1 for v in zone.dom_wild.values() if v >= 0)
        return {NAMES: names - (1 if zone.dom_exact.get(TEST_LISTED_DOMAIN, -1) >= 0 else 0)}
    return {IPV4: zone.v4_addresses - (1 if zone.lookup_v4(TEST_LISTED_V4) >= 0 else 0), IPV6: zone.v6_addresses}


def weighed_names(zone: CompiledZone) -> int:
    """The names a domain zone lists, each wildcard on a public suffix counted as SUFFIX_WEIGHT.

    An ip zone's /8 counts as its 16.7M addresses; without this, `.com` counted as one name."""
    broad = sum(1 for name, v in zone.dom_wild.items() if v >= 0 and is_suffix_wildcard(name))
    return zone_sizes(zone)[NAMES] + broad * (SUFFIX_WEIGHT - 1)


def _sweep(
    a: Sequence[tuple[int, int, int]],
    a_ans: Sequence[Answer],
    b: Sequence[tuple[int, int, int]],
    b_ans: Sequence[Answer],
) -> tuple[int, int, int]:
    """(added, removed, changed) address counts between two sorted disjoint interval lists."""
    added = removed = changed = 0
    same: dict[tuple[int, int], bool] = {}
    i = j = 0
    na, nb = len(a), len(b)
    inf = 1 << 129
    x = -1
    while i < na or j < nb:
        a_s, a_e, a_v = a[i] if i < na else (inf, inf, 0)
        b_s, b_e, b_v = b[j] if j < nb else (inf, inf, 0)
        x = max(x, min(a_s, b_s))
        in_a, in_b = a_s <= x, b_s <= x
        end = min(a_e if in_a else a_s - 1, b_e if in_b else b_s - 1)
        length = end - x + 1
        if in_a and in_b:
            key = (a_v, b_v)
            eq = same.get(key)
            if eq is None:
                eq = same[key] = a_ans[a_v] == b_ans[b_v]
            if not eq:
                changed += length
        elif in_a:
            removed += length
        else:
            added += length
        x = end + 1
        if in_a and a_e == end:
            i += 1
        if in_b and b_e == end:
            j += 1
    return added, removed, changed


def _windows(windows: Iterable[tuple[int, int, int]], family: int) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted((s, e) for f, s, e in windows if f == family):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _clip(
    starts: Sequence[int], ends: Sequence[int], vals: Sequence[int], lo: int, hi: int
) -> list[tuple[int, int, int]]:
    out: list[tuple[int, int, int]] = []
    i = bisect_left(ends, lo)
    while i < len(starts) and starts[i] <= hi:
        out.append((max(starts[i], lo), min(ends[i], hi), vals[i]))
        i += 1
    return out


def _family_counts(
    before: CompiledZone, after: CompiledZone, family: int, windows: Iterable[tuple[int, int, int]] | None
) -> tuple[int, int, int]:
    """Sweep the whole family, or only the windows where entries changed: elsewhere the
    answers cannot differ, and a feed of a million entries with ten edits stays cheap."""
    if family == 4:
        a = (before.v4_start, before.v4_end, before.v4_value)
        b = (after.v4_start, after.v4_end, after.v4_value)
    else:
        a = tuple(map(list, zip(*before.v6_intervals()))) or ([], [], [])  # type: ignore[assignment]
        b = tuple(map(list, zip(*after.v6_intervals()))) or ([], [], [])  # type: ignore[assignment]
    if windows is None:
        return _sweep(list(zip(*a)), before.answers, list(zip(*b)), after.answers)
    added = removed = changed = 0
    for lo, hi in _windows(windows, family):
        x, y, z = _sweep(_clip(*a, lo, hi), before.answers, _clip(*b, lo, hi), after.answers)
        added, removed, changed = added + x, removed + y, changed + z
    return added, removed, changed


def measures(
    before: CompiledZone | None,
    after: CompiledZone,
    content_changed: bool = True,
    windows: Iterable[tuple[int, int, int]] | None = None,
) -> tuple[Measure, ...]:
    """What DNS answers differently, per measure (IPv4, IPv6 / names).

    `windows` (family, start, end): where entries changed, when that is known
    to be the only place answers can change (same zone settings on both sides).
    """
    size_after = zone_sizes(after)
    size_before = zone_sizes(before) if before is not None else dict.fromkeys(size_after, 0)
    if before is None:
        return tuple(Measure(u, 0, n, added=n) for u, n in size_after.items())
    if not content_changed:
        return tuple(Measure(u, size_before.get(u, 0), n) for u, n in size_after.items())
    if after.info.kind == "domain":
        counts = {NAMES: _domain_delta(before, after)}
    elif after.info.kind == "email":
        counts = {EMAILS: _domain_delta(before, after)}
    else:
        window_list = list(windows) if windows is not None else None
        counts = {
            IPV4: _family_counts(before, after, 4, window_list),
            IPV6: _family_counts(before, after, 6, window_list),
        }
    return tuple(Measure(u, size_before.get(u, 0), size_after[u], *counts[u]) for u in size_after)


def _domain_delta(before: CompiledZone, after: CompiledZone) -> tuple[int, int, int]:
    added = removed = changed = 0
    for old, new in ((before.dom_exact, after.dom_exact), (before.dom_wild, after.dom_wild)):
        for name in old.keys() | new.keys():
            a, b = old.get(name, -1), new.get(name, -1)
            if a < 0 and b >= 0:
                added += 1
            elif a >= 0 and b < 0:
                removed += 1
            elif a >= 0 and before.answers[a] != after.answers[b]:
                changed += 1
    return added, removed, changed


def _exclusions(sources: Sequence[SourceData], as_of: dt.datetime) -> int:
    total = 0
    for src in sources:
        hole = [v.exclude and v.live(as_of) for v in src.values]
        for column in (src.v4_value, src.v6_value, src.dom_value):
            total += sum(1 for v in column if hole[v])
    return total


def plan_zone(
    cfg: ZoneConfig,
    after: CompiledZone,
    after_sources: Sequence[SourceData],
    after_as_of: dt.datetime,
    *,
    before: CompiledZone | None,
    before_sources: Sequence[SourceData] | None,
    before_as_of: dt.datetime | None,
    before_listings: int | None = None,
    unchanged: frozenset[str] = frozenset(),
    row_changes: Mapping[str, tuple[Sequence[int], Sequence[int]]] | None = None,
    content_changed: bool = True,
    same_settings: bool = False,
    keep: int | None = None,
) -> ZonePlan:
    """The plan of one zone.

    `before_sources` None: the entries behind the old zone are unknown (its
    publish was not from this repository); `before_listings` (from its
    manifest) stands in. `same_settings`: the zone's settings in zones.yaml did
    not change, so answers can only differ where entries did (a cheaper sweep).
    `keep` caps the Changes built per zone (counts stay complete). `row_changes`: per changed
    file, the rows that went and came, when publish knows them (entry_diff.entry_changes).
    """
    known = before is None or (before_sources is not None and before_as_of is not None)
    listings_after = listing_count(after_sources, after_as_of)
    diff = EntryDiff((), {}, ())
    if before is None:
        # A first publish: every entry is new; the first `keep` are shown, the rest counted.
        totals = {(ADDED, True): listings_after, (ADDED, False): _exclusions(after_sources, after_as_of)}
        diff = first_entries(after_sources, after_as_of, totals, keep)
    elif content_changed and before_sources is not None and before_as_of is not None:
        diff = entry_changes(before_sources, before_as_of, after_sources, after_as_of, unchanged, keep, row_changes)
    if before is None:
        listings_before = 0
    elif before_sources is not None and before_as_of is not None:
        listings_before = listing_count(before_sources, before_as_of)
    else:
        listings_before = before_listings or 0
    windows = diff.windows if (same_settings and before_sources is not None and content_changed) else None
    weighed = cfg.kind == "domain" and before is not None and content_changed  # only the growth guard reads it
    return ZonePlan(
        name=cfg.name,
        kind=cfg.kind,
        role=cfg.role,
        is_new=before is None,
        listings_before=listings_before,
        listings_after=listings_after,
        measures=measures(before, after, content_changed, windows),
        changes=diff.changes,
        totals=diff.totals,
        entries_known=known,
        content_changed=content_changed,
        weighed_before=weighed_names(before) if weighed and before is not None else 0,
        weighed_after=weighed_names(after) if weighed else 0,
        removed_from=diff.removed_from,
    )


# --- who may query ------------------------------------------------------------


def access_notes(before: Manifest | None, acl: tuple[AclRule, ...], zones: Mapping[str, ZoneMeta]) -> tuple[str, ...]:
    """Plan notes on who may query or transfer: not zone content (serials stay), but an
    operator reviewing a plan must see it. `acl` and `zones`: what the publish would serve."""
    notes = _acl_notes("the server-wide acl", before.acl or () if before is not None else (), acl)
    for name, meta in zones.items():
        entry = before.zones.get(name) if before is not None else None
        old = entry.meta if entry is not None else ZoneMeta()  # a first publish, a new zone: nothing before
        notes += _acl_notes(f"acl of {name}", old.acl or (), meta.acl or ())
        if bool(old.keyed) != bool(meta.keyed):
            notes.append(f"{name}: keys {'now required' if meta.keyed else 'no longer required'} (keys: required)")
        had = {k.key: k.networks for k in old.transfer_keys or ()}
        has = {k.key: k.networks for k in meta.transfer_keys or ()}
        moves = [f"TSIG key {k} added" for k in has if k not in had]
        moves += [f"TSIG key {k} removed (revoked)" for k in had if k not in has]
        moves += [f"TSIG key {k}'s networks changed" for k in has if k in had and has[k] != had[k]]
        if entry is not None and old.allow_transfer is not None and meta.allow_transfer is not None:
            now, was = set(meta.allow_transfer), set(old.allow_transfer)
            moves += [f"{n} added" for n in meta.allow_transfer if n not in was]
            moves += [f"{n} removed" for n in old.allow_transfer if n not in now]
        if moves:
            notes.append(f"allow_transfer of {name}: {', '.join(moves)}")
        notes += _web_notes(name, old.web or ZonePage(), meta.web or ZonePage())
    return tuple(notes)


def _web_notes(name: str, old: ZonePage, new: ZonePage) -> list[str]:
    """What the lookup page shows of the zone, and which file requests edit (zones.yaml `web:`)."""
    parts = []
    if old.public != new.public:
        parts.append(f"public fields now {', '.join(new.public) or 'none'}")
    if old.policy != new.policy:
        parts.append("policy text changed")
    if old.codes != new.codes:
        parts.append("code meanings changed")
    if old.requests != new.requests:
        parts.append(f"requests now edit {new.requests}" if new.requests else "requests no longer taken")
    return [f"web of {name}: {', '.join(parts)}"] if parts else []


def _actions(rules: Sequence[AclRule]) -> str:
    counts: dict[str, int] = {}
    for rule in rules:
        counts[rule.shown] = counts.get(rule.shown, 0) + 1
    return counts.popitem()[0] if len(counts) == 1 else ", ".join(f"{n} {a}" for a, n in counts.items())


def _acl_notes(what: str, old: Sequence[AclRule], new: Sequence[AclRule]) -> list[str]:
    before = {r.network: r for r in old}
    after = {r.network: r for r in new}
    added = [r for n, r in after.items() if n not in before]
    removed = [r for n, r in before.items() if n not in after]
    changed = [r for n, r in after.items() if n in before and (r.action, r.code, r.txt) != _same(before[n])]
    parts = [
        f"{len(rules)} network{'' if len(rules) == 1 else 's'} {how} ({_actions(rules)})"
        for rules, how in ((added, "added"), (removed, "removed"), (changed, "changed, now"))
        if rules
    ]
    return [f"{what}: {', '.join(parts)}"] if parts else []


def _same(rule: AclRule) -> tuple[str, int, str]:
    return rule.action, rule.code, rule.txt
