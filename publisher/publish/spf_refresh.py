"""`publisher refresh-spf`: partners' SPF records -> their generated files -> one commit.

The declarations and the old generated files are read from HEAD's commit (never the work
tree); each declared partner (declaration order; the partners a budget left out last time
first) is expanded through the injected `expand` and the refresh rules (`spf.refresh`) turn
the result into its file; the files that changed are written, those of partners no longer
declared deleted, and exactly those paths committed as one ordinary commit on the current
branch (`vcs.commit_files`). DNS trouble of one partner is reported, never an error: its
file stays as it is. `--dry-run` writes and commits nothing.
"""

from __future__ import annotations

import datetime as dt
import difflib
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, Protocol

from publisher.errors import Problem, SpfError, VcsError
from publisher.lists.load import Loaded, load_lists
from publisher.model import SourceData, ZoneConfig
from publisher.partners import Partner
from publisher.publish.guards import OVERRIDABLE_PROBLEMS
from publisher.publish.vcs import GitTree, ListsRepo, commit_files, find_repo, uncommitted
from publisher.spf.refresh import PartnerRefresh, refresh_partner
from publisher.spf.result import Expansion, Resolver

#: The budget's own outcome for a partner the run did not reach.
UNREACHED = "the run's DNS query budget was spent before this partner; it goes first next time"


class Expander(Protocol):
    """`publisher.spf.expand.expand`."""

    def __call__(self, domain: str, resolver: Resolver, *, max_queries: int | None = None) -> Expansion: ...


#: zone name -> its declared partners, in declaration order.
Declarations = dict[str, list[Partner]]


@dataclass(frozen=True, slots=True)
class Undeclared:
    """A generated file whose partner is no longer declared in its zone: deleted by the refresh."""

    zone: str
    domain: str
    path: str
    entries: int

    @property
    def summary(self) -> str:
        return f"{self.domain}: no longer declared in {self.zone}; its generated file {self.path} is removed"


@dataclass(frozen=True, slots=True)
class ZoneRefresh:
    zone: str
    partner: PartnerRefresh


@dataclass(frozen=True, slots=True)
class RefreshReport:
    """What one `refresh-spf` did."""

    refreshed: tuple[ZoneRefresh, ...]
    undeclared: tuple[Undeclared, ...]
    commit: str | None  # None: nothing committed (nothing changed, or a dry run)
    message: str  # the commit message (also for a dry run: what it would be)
    dry_run: bool
    base: str  # the commit the declarations were read from
    queries: int = 0  # DNS queries the expansions sent
    unreached: tuple[str, ...] = field(default=())  # partners the budget left out (domains)

    @property
    def changed(self) -> int:
        return sum(1 for r in self.refreshed if r.partner.changed) + len(self.undeclared)

    @property
    def failed(self) -> tuple[PartnerRefresh, ...]:
        """Partners not refreshed (DNS trouble, budget): the command exits 1 for them."""
        return tuple(r.partner for r in self.refreshed if r.partner.status == "unchanged")


def declared_partners(loaded: Loaded) -> Declarations:
    """Every zone with `spf:` settings -> its partners as the lists declare them."""
    if loaded.config is None:
        return {}
    out: Declarations = {}
    for zone in loaded.config.zones:
        if zone.spf is not None:
            out[zone.name] = [p for source in loaded.sources.get(zone.name, []) for p in source.partners]
    return out


def _select(declarations: Declarations, domains: Sequence[str] | None) -> Declarations:
    if not domains:
        return declarations
    known = {p.domain for partners in declarations.values() for p in partners}
    wanted = {d.strip().lower().rstrip(".") for d in domains}
    unknown = sorted(wanted - known)
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        declared = ", ".join(sorted(known)[:10]) or "none"
        raise SpfError(
            f"{name} is not declared as a partner in any allowlist with `spf:` settings{hint} "
            f"(declared in HEAD: {declared}); nothing was refreshed\n"
            f"  fix: declare it (`- spf: {name}` with owner and contact), commit, and run again"
        )
    return {zone: [p for p in partners if p.domain in wanted] for zone, partners in declarations.items()}


def _ordered(partners: list[Partner], first: Sequence[str]) -> list[Partner]:
    """Declaration order, the partners in `first` (left out by a budget last time) ahead."""
    rank = {d: i for i, d in enumerate(first)}
    return sorted(partners, key=lambda p: (0, rank[p.domain]) if p.domain in rank else (1, 0))


def _old(sources: list[SourceData], path: str) -> SourceData | None:
    return next((s for s in sources if s.path == path), None)


def _undeclared(zone: ZoneConfig, tree: GitTree, sources: list[SourceData], declared: set[str]) -> list[Undeclared]:
    spf = zone.spf
    assert spf is not None
    out = []
    for path in tree.files():
        domain = spf.partner_of(path)
        if domain is not None and domain not in declared:
            old = _old(sources, path)
            out.append(Undeclared(zone.name, domain, path, len(old) if old is not None else 0))
    return out


def commit_message(refreshed: Sequence[ZoneRefresh], undeclared: Sequence[Undeclared]) -> str:
    """`refresh-spf: N partners changed`, one line per partner, then what was not listed."""
    changed = sum(1 for r in refreshed if r.partner.changed) + len(undeclared)
    lines = [f"refresh-spf: {changed} partner{'' if changed == 1 else 's'} changed", ""]
    lines += [r.partner.summary for r in refreshed]
    lines += [u.summary for u in undeclared]
    not_listed = [line for r in refreshed if r.partner.changed for line in r.partner.not_listed]
    shared = [line for r in refreshed if r.partner.changed for line in r.partner.shared]
    if shared:
        lines += ["", "Shared pools, listed at the zone's lower-trust code:"] + [f"  {line}" for line in shared]
    if not_listed:
        lines += ["", "Not listed:"] + [f"  {line}" for line in not_listed]
    return "\n".join(lines) + "\n"


def refresh_spf(
    lists_root: Path,
    *,
    resolver: Resolver,
    expand: Expander,
    domains: Sequence[str] | None = None,
    now: dt.datetime,
    dry_run: bool = False,
    budget: int | None = None,
    zone: str | None = None,
    first: Sequence[str] = (),
) -> RefreshReport:
    """Refresh the declared partners of HEAD (all, or `domains`; only `zone`'s when given).

    `budget`: the DNS queries this run may send (None: no limit); partners past it are
    reported `budget` and left as they are."""
    try:
        where = find_repo(lists_root)
        tree = GitTree(where, "HEAD")
    except VcsError as exc:
        raise SpfError(
            f"refresh-spf reads the declarations from the lists repository's HEAD: {exc}\n"
            "  fix: run it inside the lists repository (or give --lists), with at least one commit"
        ) from exc
    loaded = load_lists(tree, as_of=now)
    blocking = [p for p in loaded.errors if p.code not in OVERRIDABLE_PROBLEMS]
    if loaded.config is None or blocking:
        _refuse_errors(tree, blocking or loaded.problems)
    zones = {z.name: z for z in loaded.config.zones if z.spf is not None and (zone is None or z.name == zone)}
    every = declared_partners(loaded)
    every = {name: partners for name, partners in every.items() if name in zones}
    selected = _select(every, domains)
    undeclared: list[Undeclared] = []
    if not domains:
        for name, cfg in zones.items():
            names = {p.domain for p in every.get(name, [])}
            undeclared += _undeclared(cfg, tree, loaded.sources.get(name, []), names)
    _refuse_dirty(where, zones, selected, undeclared)
    remaining = budget
    queries = 0
    refreshed: list[ZoneRefresh] = []
    files = set(tree.files())
    for name, partners in selected.items():
        cfg = zones[name]
        for partner in _ordered(partners, first):
            if remaining is not None and remaining <= 0:
                expansion = Expansion(partner.domain, "budget", why=UNREACHED)
            else:
                expansion = expand(partner.domain, resolver, max_queries=remaining)
                queries += expansion.queries
                if remaining is not None:
                    remaining -= expansion.queries
            path = cfg.spf.generated_path(partner.domain) if cfg.spf is not None else ""
            old = _old(loaded.sources.get(name, []), path)
            old_text = tree.read(path) if path in files else None
            result = refresh_partner(partner, cfg, expansion, old, now, old_text=old_text)
            refreshed.append(ZoneRefresh(name, result))
    message = commit_message(refreshed, undeclared)
    changes: dict[str, bytes | None] = {
        r.partner.path: r.partner.text for r in refreshed if r.partner.changed and r.partner.text is not None
    }
    changes.update({u.path: None for u in undeclared})
    commit = None
    if changes and not dry_run:
        try:
            commit = commit_files(where, changes, message)
        except VcsError as exc:
            raise SpfError(f"refresh-spf: {exc}") from exc
    unreached = tuple(r.partner.domain for r in refreshed if r.partner.outcome == "budget")
    return RefreshReport(
        tuple(refreshed), tuple(undeclared), commit, message, dry_run, tree.commit.sha, queries, unreached
    )


def _refuse_errors(tree: GitTree, errors: Sequence[Problem]) -> NoReturn:
    """HEAD's lists have errors: a declaration the reader refused would read as undeclared, and
    its partner's file would be deleted. Refuse before any DNS query, as publish would (the
    guard-rail problems `--force` passes are not in the way)."""
    shown = "\n".join(textwrap.indent(p.format(), "    ") for p in errors[:5])
    more = f"\n    ... and {len(errors) - 5} more" if len(errors) > 5 else ""
    raise SpfError(
        f"refused: the lists of HEAD ({tree.commit.short}) have {len(errors)} error(s); nothing was refreshed\n"
        f"{shown}{more}\n"
        "  fix: correct them (`publisher validate` shows them all), commit, and run refresh-spf again"
    )


def _refuse_dirty(
    where: ListsRepo, zones: dict[str, ZoneConfig], selected: Declarations, undeclared: list[Undeclared]
) -> None:
    """Refuse before any DNS query when a file the refresh may write has uncommitted changes."""
    paths = [u.path for u in undeclared]
    for name, partners in selected.items():
        spf = zones[name].spf
        if spf is not None:
            paths += [spf.generated_path(p.domain) for p in partners]
    dirty = uncommitted(where, paths)
    if dirty:
        raise SpfError(
            f"refused: generated files have uncommitted changes: {', '.join(dirty)}; nothing was refreshed\n"
            "  fix: discard the edits (git checkout -- FILE): a generated file is written by refresh-spf only; "
            "change what is listed through the declaration, then run refresh-spf again"
        )
