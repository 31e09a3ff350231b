"""Guard rails: which plans a publish refuses without --force, each with its numbers. Pure.

`check_guards` judges a plan (plan.py) and returns every `Violation`, its rule
one of the guard-rail codes in `codes` (shrink, growth, empty, dropped,
allowlist-removal, covers-protected); the publish refuses when there is any and
--force was not given. Thresholds come from each zone's `guards` in zones.yaml
(model.Guards). Validation errors never get here: they stop the build before
the plan and are never overridable, except the two problems lists/checks.py
reports that are guard rails at publish (OVERRIDABLE_PROBLEMS).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from publisher import codes
from publisher.errors import Problem
from publisher.lists.breadth import SUFFIX_WEIGHT
from publisher.model import ZoneConfig
from publisher.publish.plan import EXPIRED, NAMES, REMOVED, Change, Plan, ZonePlan, amount, measured
from publisher.publish.spf_notes import refresh_removals

#: Validation problems that are guard rails at publish: `--force` may override them.
#: Every other validation error is never overridable.
OVERRIDABLE_PROBLEMS = frozenset({codes.COVERS_PROTECTED, codes.EMPTY_ZONE})


#: The growth guard's extra measure of a domain zone: names, a wildcard on a public suffix
#: weighed as lists/breadth.SUFFIX_WEIGHT names (the shrink guard counts plain names).
WEIGHED = "names, wildcards weighed by breadth"


@dataclass(frozen=True, slots=True)
class Violation:
    zone: str
    rule: str  # a guard-rail code: SHRINK, GROWTH, EMPTY, DROPPED, COVERS_PROTECTED, ALLOWLIST_REMOVAL
    message: str


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "all"


def _factor(ratio: float) -> str:
    """A growth factor for people: `12.5x`, `5505.7x`, `1.2e+24x` (IPv6 counts reach 2^128)."""
    return f"{ratio:.1f}x" if ratio < 1e6 else f"{ratio:.2g}x"


def _examples(changes: Sequence[Change], total: int, limit: int = 5) -> str:
    shown = [f"{c.entry.path}:{c.entry.line} {c.entry.text}" for c in changes[:limit]]
    more = total - len(shown)
    return "; ".join(shown) + (f"; ... and {more} more" if more > 0 else "")


def check_guards(
    plan: Plan,
    configs: dict[str, ZoneConfig],
    problems: Sequence[Problem] = (),
    zone_of: dict[str, str] | None = None,
) -> list[Violation]:
    """Every guard rail the plan breaks, each with its numbers. All are overridable with
    --force; validation errors never reach here (they stop the build before the plan).

    `problems` are the loader's; those coded codes.COVERS_PROTECTED become violations,
    attributed to a zone through `zone_of` (source path -> zone name, of the new commit: entries
    removed from a generated file still in it are an SPF refresh's, not an allowlist removal).
    """
    out: list[Violation] = []
    for zp in plan.zones:
        cfg = configs.get(zp.name)
        if cfg is not None and not zp.is_new and zp.content_changed:
            out.extend(_zone_guards(zp, cfg, zone_of or {}))
    emptied = {v.zone for v in out if v.rule == codes.EMPTY}
    for problem in problems:
        if problem.code not in OVERRIDABLE_PROBLEMS or not problem.is_error:
            continue
        if problem.code == codes.EMPTY_ZONE:
            zone = next((c.name for c in configs.values() if c.location == problem.location), "")
            if zone in emptied:
                continue  # already reported with its numbers
            out.append(Violation(zone, codes.EMPTY, f"{problem.location}: {problem.message}"))
        else:
            zone = (zone_of or {}).get(problem.location.path, "")
            out.append(Violation(zone, problem.code, f"{problem.location}: {problem.message}"))
    for name in plan.dropped:
        out.append(Violation(name, codes.DROPPED, f"{name} is published now and is no longer in zones.yaml"))
    return out


def _zone_guards(zp: ZonePlan, cfg: ZoneConfig, zone_of: dict[str, str]) -> list[Violation]:
    g = cfg.guards
    out: list[Violation] = []
    removed_listings = zp.count(REMOVED) + zp.count(EXPIRED)
    counts = [("listings", zp.listings_before, zp.listings_after, removed_listings)]
    counts += [(m.unit, m.before, m.after, m.removed) for m in zp.measures]
    if zp.listings_before >= g.min_listings_for_share:
        for unit, whole, _, lost in counts:
            if whole and lost / whole > g.max_removed_share:
                out.append(
                    Violation(
                        zp.name,
                        codes.SHRINK,
                        (
                            f"{zp.name} would lose {amount(lost, unit)} of its {amount(whole, unit)} {unit} "
                            f"({_share(lost, whole)}; the limit is {g.max_removed_share:.0%} for zones of "
                            f"{g.min_listings_for_share} listings or more)"
                        ),
                    )
                )
    weighed = zp.weighed_before, zp.weighed_after
    if weighed != (zp.measure(NAMES).before, zp.measure(NAMES).after):
        counts.append((WEIGHED, *weighed, 0))  # a wildcard on a public suffix joined or left
    for unit, old, new, _ in counts:
        if old and new / old > g.max_growth_factor:
            out.append(
                Violation(
                    zp.name,
                    codes.GROWTH,
                    (
                        f"{zp.name} would grow from {amount(old, unit)} to {amount(new, unit)} {unit} "
                        f"({_factor(new / old)}; the limit is {g.max_growth_factor:g}x)"
                        + (
                            f": a wildcard on a public suffix counts as {SUFFIX_WEIGHT:,} names"
                            if unit == WEIGHED
                            else ""
                        )
                    ),
                )
            )
    had = zp.listings_before or any(m.before for m in zp.measures)
    if had and (zp.listings_after == 0 or not any(m.after for m in zp.measures)):
        now = ", ".join(measured(m.before, m.unit) for m in zp.measures if m.before)
        out.append(
            Violation(
                zp.name,
                codes.EMPTY,
                (
                    f"{zp.name} would become empty (only the RFC 5782 test points): it lists "
                    f"{zp.listings_before} listing{'' if zp.listings_before == 1 else 's'}"
                    f"{', ' + now if now else ''} now"
                ),
            )
        )
    if zp.role == "allow":
        # removals of an SPF refresh follow the partner's record (its share and grace): plan notes, no guard
        refresh = refresh_removals(zp, cfg, zone_of)
        gone = [c for c in zp.changes if c.kind == REMOVED and c.is_listing and c.entry.path not in refresh]
        n = zp.count(REMOVED) - sum(zp.removed_from[path] for path in refresh)
        unprotected = ", ".join(measured(m.removed, m.unit) for m in zp.measures if m.removed)
        left = f", {unprotected} left unprotected" if unprotected else ""
        if left and refresh:  # addresses are counted for the whole zone
            left += " (with those of the SPF refresh)"
        if n:
            out.append(
                Violation(
                    zp.name,
                    codes.ALLOWLIST_REMOVAL,
                    (f"{zp.name}: {n} allowlist entr{'y' if n == 1 else 'ies'} removed{left}: {_examples(gone, n)}"),
                )
            )
        elif not zp.entries_known and unprotected:
            out.append(Violation(zp.name, codes.ALLOWLIST_REMOVAL, f"{zp.name}: {unprotected} left unprotected"))
    return out
