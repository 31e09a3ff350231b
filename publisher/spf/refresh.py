"""From an `Expansion` to a partner's generated file: the refresh rules (docs/design.md,
"Partners from SPF"). Pure: the caller reads DNS, the old file and the clock.

On each network the record passes, in this order: the declaration's filters (`include` keeps
only addresses inside its networks or chains through its names, `exclude` drops the others;
networks are clipped or subtracted exactly), the special-purpose ranges (refused whole), the
stricter of the zone's and the declaration's `max_prefix` (refused), shared pools (listed at
the zone's `shared.code`, or not at all). Every refusal and shared pool is a `not_listed` line.

A record that fails to resolve for a while (temperror) or a run out of DNS budget changes
nothing. A record gone, unusable, passing everything, or shrinking by more than the zone's
`max_removed_share` keeps the last good entries until `since + grace` (status `kept`); then
they are dropped (status `failing` when nothing is left).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from publisher.addresses import Network, format_v4
from publisher.errors import SpfError
from publisher.model import SourceData, ZoneConfig
from publisher.partners import Generated, GeneratedStatus, Partner, SpfSettings, chain_text
from publisher.spf.chains import filtered, pool_of, shared_pools
from publisher.spf.ranges import Ranges
from publisher.spf.render import Listed, iso, parse_iso, render
from publisher.spf.result import Expansion, Outcome
from publisher.spf.spans import Counts, cidrs, clip, count, merge, subtract
from publisher.spf.special import special_overlap

#: ok / kept / failing: the file's status after the refresh; unchanged: nothing concluded, nothing written.
RefreshStatus = Literal["ok", "kept", "failing", "unchanged"]

_TROUBLE: dict[str, str] = {
    "vanished": "the SPF record is gone",
    "permerror": "the SPF record cannot be used (permerror)",
    "refused": "the SPF record passes every address",
    "temperror": "a DNS lookup failed",
    "budget": "the run's DNS query budget ran out before this partner",
}


@dataclass(frozen=True, slots=True)
class PartnerRefresh:
    """What one refresh did to one partner: the report line, the commit line, the file."""

    domain: str
    path: str  # its generated file, lists-relative
    outcome: Outcome
    status: RefreshStatus
    why: str  # kept / failing / unchanged: what went wrong ("" when ok)
    since: str | None  # kept / failing: ISO UTC when the trouble started
    entries: tuple[Listed, ...]  # the new file's entries
    added: tuple[Listed, ...]
    removed: tuple[Listed, ...]  # old live entries no longer listed (grace over included)
    kept: tuple[Listed, ...]  # old entries no longer passed, kept with `expires`
    not_listed: tuple[str, ...]
    before: Counts
    after: Counts
    text: bytes | None  # the new file; None when nothing was concluded (temperror, budget)
    changed: bool  # the file differs from the old one (or there was none)
    header: Generated | None = None
    #: shared pools listed at the zone's lower-trust code: `<chain>: <why>; listed at <code>`
    #: (those not listed at all are `not_listed` lines)
    shared: tuple[str, ...] = ()
    #: ok again after kept / failing: what the trouble was (its kept entries no longer expire)
    recovered: str = ""

    @property
    def until(self) -> str | None:
        """The last day kept entries are listed (YYYY-MM-DD), None when none are kept."""
        return max((e.expires for e in self.kept if e.expires), default=None)

    @property
    def summary(self) -> str:
        """The commit message's line for this partner."""
        d = self.domain
        if self.status == "unchanged":
            return f"{d}: {self.why}; nothing changed"
        moved = f"+{len(self.added)} -{len(self.removed)}"
        if self.status == "ok":
            if not self.changed:
                return f"{d}: unchanged ({self.after.text()})"
            again = f"; the record is good again (was: {self.recovered})" if self.recovered else ""
            return f"{d}: {moved} ({self.before.moved(self.after)}){again}"
        lead = f"{moved}; " if self.added or self.removed else ""
        if self.status == "kept":
            n = len(self.kept)
            return f"{d}: {lead}{self.why}; {n} entr{'y' if n == 1 else 'ies'} kept until {self.until}"
        return f"{d}: {lead}{self.why}; nothing listed"


# --- the refresh -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Old:
    network: Network
    via: str
    added: str | None
    code: int
    expires: dt.datetime | None


def _old_entries(old: SourceData | None) -> list[_Old]:
    if old is None:
        return []
    out = []
    for row in old.rows():
        if row.family == 0:
            continue
        value = old.values[row.value]
        meta = old.entries.get(row.line)
        via = meta.via if meta is not None and meta.via else ""
        added = meta.added if meta is not None else None
        out.append(_Old(Network(row.family, row.start, row.end), via, added, value.code, value.expires))
    return out


def expiry_day(since: dt.datetime, grace: int) -> str:
    """The last day (YYYY-MM-DD, UTC) of a grace of `grace` seconds from `since`, rounded up:
    an `expires: D` counts through D."""
    end = since.astimezone(dt.UTC) + dt.timedelta(seconds=grace)
    return (end - dt.timedelta(microseconds=1)).date().isoformat()


def _day_end(day: str) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day) + dt.timedelta(days=1), dt.time(), dt.UTC)


def _listable(
    partner: Partner, zone: ZoneConfig, spf: SpfSettings, expansion: Expansion
) -> tuple[list[Listed], list[str], list[str]]:
    """The networks the rules let through (`code` set for shared pools, `added` empty), the
    not_listed lines (the expansion's own unlisted lines first), and the shared pools listed
    at the zone's lower-trust code."""
    limit_v4 = max(zone.max_prefix_v4, partner.max_prefix_v4 or 0)
    limit_v6 = max(zone.max_prefix_v6, partner.max_prefix_v6 or 0)

    def refusal(net: Network) -> str | None:
        special = special_overlap(net)
        if special is not None:
            return special
        limit = limit_v4 if net.family == 4 else limit_v6
        plen = net.prefixlen
        if plen is not None and plen < limit:
            own = limit > (zone.max_prefix_v4 if net.family == 4 else zone.max_prefix_v6)
            return f"{net} is broader than /{limit}, " + (
                "the declaration's max_prefix" if own else f"the limit for {zone.name}"
            )
        return None

    pools = shared_pools(expansion, spf, {f.network for f in expansion.found if refusal(f.network) is not None})
    not_listed = [f"{u.via}: {u.why}" for u in expansion.unlisted]
    said: set[tuple[str, ...]] = set()
    shared: list[str] = []
    out: list[Listed] = []
    for found in expansion.found:
        for net in filtered(partner, found):
            why = refusal(net)
            if why is not None:
                not_listed.append(f"{found.via}: {why}")
                continue
            code = None
            pool = pool_of(found.chain, pools)
            if pool is not None:
                if pool.chain not in said:
                    said.add(pool.chain)
                    if spf.shared.code is None:
                        not_listed.append(f"{chain_text(pool.chain)}: shared pool ({pool.why})")
                    else:
                        code_text = format_v4(spf.shared.code)
                        shared.append(f"{chain_text(pool.chain)}: {pool.why}; listed at {code_text}")
                if spf.shared.code is None:
                    continue
                code = spf.shared.code
            out.append(Listed(net, found.via, "", code if code != partner.code else None))
    return out, not_listed, shared


def _shrink(old_live: Sequence[_Old], new: Sequence[Listed], share: float) -> str:
    """Why the new entries drop too much of the old live ones ("" when within the share)."""
    before = count(o.network for o in old_live)
    kept = count(_kept_parts(old_live, new))
    for family, was, still, unit in (
        ("IPv4", before.v4, kept.v4, "addresses"),
        ("IPv6", before.v6_64s, kept.v6_64s, "/64s"),
    ):
        gone = was - still
        if was and gone / was > share:
            return (
                f"the SPF record shrank: {gone} of {was} {family} {unit} would go "
                f"({round(100 * gone / was)}%, more than the zone's {round(100 * share)}%)"
            )
    return ""


def _kept_parts(old: Sequence[_Old], new: Sequence[Listed]) -> list[Network]:
    """The parts of the old entries the new ones still cover."""
    covered: dict[int, Ranges] = {
        fam: merge((n.network.start, n.network.end) for n in new if n.network.family == fam) for fam in (4, 6)
    }
    out: list[Network] = []
    for o in old:
        net = o.network
        out.extend(cidrs(net.family, clip((net.start, net.end), covered[net.family])))
    return out


def refresh_partner(
    partner: Partner,
    zone: ZoneConfig,
    expansion: Expansion,
    old: SourceData | None,
    now: dt.datetime,
    *,
    old_text: bytes | None = None,
) -> PartnerRefresh:
    """Apply the refresh rules to one partner. `old` is its generated file as the lists read it
    (None: never refreshed), `old_text` its bytes: an unchanged result keeps its `refreshed` and
    reports `changed=False`. Its header is `old.generated`."""
    spf = zone.spf
    if spf is None:
        raise SpfError(f"{zone.name} has no `spf:` settings in zones.yaml; {partner.domain} cannot be refreshed")
    path = spf.generated_path(partner.domain)
    old_header = old.generated if old is not None and old.generated is not None else None
    olds = _old_entries(old)
    live = [o for o in olds if o.expires is None or o.expires > now]
    # entries kept for a grace that has ended leave the file now (they no longer answer)
    ended = [Listed(o.network, o.via, o.added or "") for o in olds if o.expires is not None and o.expires <= now]
    before = count(o.network for o in live)
    if expansion.outcome in ("temperror", "budget"):
        why = expansion.why or _TROUBLE[expansion.outcome]
        return PartnerRefresh(
            partner.domain,
            path,
            expansion.outcome,
            "unchanged",
            why,
            None,
            (),
            (),
            (),
            (),
            (),
            before,
            before,
            None,
            False,
        )
    today = now.astimezone(dt.UTC).date().isoformat()
    ok = expansion.outcome == "ok"
    new: list[Listed] = []
    not_listed = [f"{u.via}: {u.why}" for u in expansion.unlisted]
    shared: list[str] = []
    if ok:
        new, not_listed, shared = _listable(partner, zone, spf, expansion)
    why = "" if ok else expansion.why or _TROUBLE[expansion.outcome]
    if ok:
        why = _shrink(live, new, spf.max_removed_share)
    troubled = bool(why)
    since_dt = now
    if troubled and old_header is not None and old_header.status in ("kept", "failing"):
        since_dt = parse_iso(old_header.since) or now
    since = iso(since_dt) if troubled else None
    old_by_net = {o.network: o for o in live}
    entries: list[Listed] = []
    added: list[Listed] = []
    for listed in new:
        prior = old_by_net.get(listed.network)
        entry = replace(listed, added=(prior.added or today) if prior is not None else today)
        entries.append(entry)
        if prior is None:
            added.append(entry)
    kept: list[Listed] = []
    removed: list[Listed] = []
    new_nets = {e.network for e in entries}
    covered = {
        fam: merge((e.network.start, e.network.end) for e in entries if e.network.family == fam) for fam in (4, 6)
    }
    if troubled:
        until = expiry_day(since_dt, spf.grace)
        still = _day_end(until) > now
        for o in live:
            if o.network in new_nets:
                continue
            rest = cidrs(o.network.family, subtract((o.network.start, o.network.end), covered[o.network.family]))
            code = None if o.code == partner.code else o.code
            for net in rest:
                gone = Listed(net, o.via, o.added or today, code, until, since_dt.date().isoformat())
                (kept if still else removed).append(gone)
    else:
        removed = [Listed(o.network, o.via, o.added or today) for o in live if o.network not in new_nets]
    removed += ended
    entries.extend(kept)
    entries.sort(key=lambda e: (e.network.family, e.network.start, e.network.end))
    status: GeneratedStatus = "kept" if kept else "failing" if troubled and not ok else "ok"
    if status == "ok":  # a shrink past its grace is the record as it is now
        why, since = "", None
    header = Generated(
        partner=partner.domain,
        declared=f"{partner.location.path}:{partner.location.line}" if partner.location.line else partner.location.path,
        refreshed=old_header.refreshed if old_header is not None else iso(now),
        record=expansion.record,
        status=status,
        why=why,
        since=since,
        not_listed=tuple(not_listed),
    )
    text = render(partner, header, entries)
    changed = old_text is None or text != old_text
    if changed and header.refreshed != iso(now):
        header = replace(header, refreshed=iso(now))
        text = render(partner, header, entries)
    after = count(e.network for e in entries if e.expires is None or _day_end(e.expires) > now)
    return PartnerRefresh(
        partner.domain,
        path,
        expansion.outcome,
        status,
        why,
        since,
        tuple(entries),
        tuple(added),
        tuple(removed),
        tuple(kept),
        tuple(not_listed),
        before,
        after,
        text,
        changed,
        header,
        tuple(shared),
        old_header.why if status == "ok" and old_header is not None and old_header.status != "ok" else "",
    )
