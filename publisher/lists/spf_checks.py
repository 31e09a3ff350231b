"""Partners across the files of a zone: declarations against the generated files. Pure.

A zone with `spf:` settings declares partners (`- spf: DOMAIN` in its curated files, read
by spf_decl.py) and reads the files `publisher refresh-spf` writes for them,
`<spf.dir>/<domain>.yaml`. `check_partners` holds the two together:
- DUPLICATE_PARTNER: one partner declared twice in the zone (both places named);
- GENERATED_EDITED: a generated file whose entries no longer match their digest;
- GENERATED_MISPLACED: a `generated:` header outside the zone's spf folder, a file in that
  folder without one, or a header naming another partner than its file name;
- GENERATED_UNDECLARED (warning): the generated file of a partner no longer declared;
- SPF_NOT_REFRESHED (warning): a declared partner without its generated file yet.
`quiet_glob` tells the loader which empty source globs are only the spf folder before the
first refresh (no GLOB_NO_MATCH for them).
"""

from __future__ import annotations

from collections.abc import Sequence

from publisher import codes
from publisher.errors import Location, Problem, Severity
from publisher.model import Config, SourceData, ZoneConfig
from publisher.partners import Partner

__all__ = ["check_partners", "quiet_glob"]


def quiet_glob(zone: ZoneConfig, pattern: str) -> bool:
    """Is `pattern` a source glob that can only match generated files of the zone (so that
    matching nothing means only that no partner was refreshed yet)?"""
    return zone.spf is not None and pattern.startswith(zone.spf.dir + "/")


def check_partners(config: Config, sources: dict[str, list[SourceData]]) -> list[Problem]:
    problems: list[Problem] = []
    for zone in config.zones:
        srcs = [s for s in sources.get(zone.name, []) if not zone.is_excludes(s.path)]
        declared = _declared(srcs, problems)
        for source in srcs:
            problems.extend(_generated(zone, source, declared))
        problems.extend(_not_refreshed(zone, srcs, declared))
    return problems


def _declared(srcs: Sequence[SourceData], problems: list[Problem]) -> dict[str, Partner]:
    """The zone's partners by domain, the first declaration of each; later ones are reported."""
    out: dict[str, Partner] = {}
    for source in srcs:
        for partner in source.partners:
            first = out.get(partner.domain)
            if first is None:
                out[partner.domain] = partner
                continue
            problems.append(
                Problem(
                    partner.location,
                    codes.DUPLICATE_PARTNER,
                    f"{partner.domain} is declared twice in the zone; which declaration's owner, code and "
                    "filters would its generated file follow?",
                    "keep one of the two declarations (merge their include / exclude filters into it)",
                    related=(("first at", first.location),),
                )
            )
    return out


def _generated(zone: ZoneConfig, source: SourceData, declared: dict[str, Partner]) -> list[Problem]:
    header, spf, path = source.generated, zone.spf, source.path
    in_dir = spf is not None and path.startswith(spf.dir + "/")
    if header is None:
        if not in_dir or spf is None:
            return []
        return [
            Problem(
                Location(path),
                codes.GENERATED_MISPLACED,
                f"{path} is in {spf.dir}/, the folder of the files `publisher refresh-spf` writes for "
                f"{zone.name}, but it has no `generated:` header",
                f"move it out of {spf.dir}/ (for example next to the zone's other curated files); "
                f"{spf.dir}/ holds only generated files",
            )
        ]
    where = Location(path, header.line, 1) if header.line else Location(path)  # `generated:` starts its line
    partner = spf.partner_of(path) if spf is not None else None
    if spf is None or partner is None:
        home = f"in {spf.dir}/, as {spf.generated_path(header.partner)}" if spf is not None else "nowhere"
        why = "" if spf is not None else f" ({zone.name} has no `spf:` settings)"
        return [
            Problem(
                where,
                codes.GENERATED_MISPLACED,
                f"{path} has a `generated:` header, but the files refresh-spf writes for {zone.name} "
                f"belong {home}{why}",
                "remove the file (refresh-spf writes it again where it belongs), or, if its entries are "
                "meant to be curated by hand, remove the `generated:` header and the `via` lines",
            )
        ]
    if header.partner != partner:
        return [
            Problem(
                where,
                codes.GENERATED_MISPLACED,
                f"{path} was generated for {header.partner}, but its name says {partner}",
                f"remove the file and run `publisher refresh-spf {partner}`, or restore it with git",
            )
        ]
    out: list[Problem] = []
    if header.edited:
        decl = declared.get(partner)
        home = decl.location.path if decl is not None else "the file that declares the partner"
        out.append(
            Problem(
                where,
                codes.GENERATED_EDITED,
                f"{path} was changed by hand since refresh-spf wrote it (its entries no longer match its "
                "digest): publish and refresh-spf refuse it",
                f"undo the edit (git checkout -- {path}), and change the declaration in {home} instead "
                "(code, include, exclude), or move the entry to a curated file",
            )
        )
    if partner not in declared:
        out.append(
            Problem(
                Location(path),
                codes.GENERATED_UNDECLARED,
                f"{partner} is not declared in {zone.name} any more; `publisher refresh-spf` removes "
                "this file (its entries are still published until then)",
                f"run `publisher refresh-spf`, or declare `- spf: {partner}` again",
                severity=Severity.WARNING,
            )
        )
    return out


def _not_refreshed(zone: ZoneConfig, srcs: Sequence[SourceData], declared: dict[str, Partner]) -> list[Problem]:
    if zone.spf is None:
        return []
    have = {zone.spf.partner_of(s.path) for s in srcs if s.generated is not None}
    return [
        Problem(
            partner.location,
            codes.SPF_NOT_REFRESHED,
            f"{domain} has no generated file yet ({zone.spf.generated_path(domain)}): nothing of its SPF "
            "record is listed",
            f"run `publisher refresh-spf {domain}`, review and publish the commit",
            severity=Severity.WARNING,
        )
        for domain, partner in declared.items()
        if domain not in have
    ]
