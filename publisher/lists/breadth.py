"""How broad a domain entry is: the domain counterpart of an ip zone's `max_prefix`.

A wildcard whose base is a public suffix, or lies above one (`.com`, `*.co.uk`,
`*.github.io`, `*.amazonaws.com` above `s3.amazonaws.com`), lists the names of
every registrant under it; a single-label name (`localhost`, `com`) is no host
anyone mails from. Both are refused unless a curated entry says `allow_broad: true`
with a reason (checks.check_domain). The suffixes are those of the Public Suffix
List shipped by the `publicsuffixlist` package, its private section included: a
wildcard on `github.io` or `blogspot.com` lists every customer's site. Names under
a TLD the list does not know count as under a public suffix (the list's `*` rule).

`SUFFIX_WEIGHT` is what the growth guard counts for such a wildcard (publish/plan.py).
The list is read on the first wildcard or single-label name, never for exact
multi-label names: bulk feeds of millions of names do not pay for it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import idna
from publicsuffixlist import PSLFILE, PublicSuffixList

from publisher import codes
from publisher.addresses import TEST_LISTED_DOMAIN

__all__ = [
    "SUFFIX_WEIGHT",
    "BROAD_DOMAIN_FIX_BULK",
    "BROAD_DOMAIN_FIX_YAML",
    "broad_domain",
    "is_suffix_wildcard",
]

#: Names the growth guard counts for one wildcard on a public suffix: the order of the names
#: registered under .com (about 1.6e8). An ip zone counts a /8 as its 16.7M addresses; a domain
#: zone had counted `.com` as one name, so adding it passed the guard. With this weight one such
#: wildcard grows any zone of fewer than ~11M names past the default 10x.
SUFFIX_WEIGHT = 100_000_000

#: How to keep a broad entry on purpose, after "narrow it" (curated, bulk): bulk lines cannot say why.
BROAD_DOMAIN_FIX_YAML = "set `allow_broad: true` on the entry and say why in `reason`"
BROAD_DOMAIN_FIX_BULK = "move it to a curated YAML file with `allow_broad: true` and a reason"


@dataclass(frozen=True, slots=True)
class _Suffixes:
    psl: PublicSuffixList
    covering: frozenset[str]  # every rule's base (`*.` removed) and each of its ancestors
    wild_bases: frozenset[str]  # `x.y` of each `*.x.y` rule


def _a_label(name: str) -> str | None:
    if name.isascii():
        return name.lower()
    try:
        return idna.encode(name, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError:
        return None


@functools.cache
def _suffixes() -> _Suffixes:
    with open(PSLFILE, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    covering: set[str] = set()
    wild: set[str] = set()
    for line in lines:
        rule = line.split(None, 1)[0] if line.strip() else ""
        if not rule or rule.startswith(("//", "!")):
            continue
        base = _a_label(rule.removeprefix("*."))
        if base is None:
            continue
        if rule.startswith("*."):
            wild.add(base)
        labels = base.split(".")
        covering.update(".".join(labels[i:]) for i in range(len(labels)))
    return _Suffixes(PublicSuffixList(lines), frozenset(covering), frozenset(wild))


def is_suffix_wildcard(name: str) -> bool:
    """Is `name` (normalised) a public suffix or above one, so that `*.name` lists other owners' names?"""
    if "." not in name:
        return True  # a TLD: known or not, the list's `*` rule makes it a suffix
    s = _suffixes()
    if name in s.covering:
        return True
    return name.partition(".")[2] in s.wild_bases and bool(s.psl.is_public(name))


def broad_domain(name: str, wild: bool, text: str, keep: str) -> tuple[str, str, str] | None:
    """(code, message, fix) when the entry is too broad to list without `allow_broad`, else None.

    `keep` says how to keep it anyway (BROAD_DOMAIN_FIX_YAML or BROAD_DOMAIN_FIX_BULK)."""
    if wild and is_suffix_wildcard(name):
        what = (
            "a top-level domain"
            if "." not in name
            else "a public suffix"
            if _is_public(name)
            else "above a public suffix"
        )
        return (
            codes.BROAD_DOMAIN,
            f"'{text}' is a wildcard on {name}, {what}: it would list every name registered under it",
            f"list the names or a wildcard under a registrable domain (*.spam.example.co.uk), or {keep}",
        )
    if not wild and "." not in name and name != TEST_LISTED_DOMAIN:
        return (
            codes.BROAD_DOMAIN,
            f"'{text}' is a single-label name (a top-level domain or a local host name), "
            "not a domain anyone sends mail from",
            f"write the whole name (spam.example), or {keep}",
        )
    return None


#: (code, message, fix), as lists/checks.py's Finding.
_Finding = tuple[str, str, str | None]


def first_per_code(findings: list[_Finding]) -> list[_Finding]:
    """One finding per code: rbldnsd's `.com` is two rows (com, *.com) but one mistake."""
    first: dict[str, _Finding] = {}
    for finding in findings:
        first.setdefault(finding[0], finding)
    return list(first.values())


def _is_public(name: str) -> bool:
    return bool(_suffixes().psl.is_public(name))
