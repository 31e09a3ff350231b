"""What an SPF chain passes through, for the refresh rules: the names of its terms, the
declaration's filters on them (networks clipped or subtracted exactly, names matched with the
names below them), and the shared pools (an include or redirect of a provider's name, or one
passing more than the zone's limits). Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from publisher.addresses import Network
from publisher.partners import Partner, SpfFilter, SpfSettings
from publisher.spf.result import Expansion, Found
from publisher.spf.spans import Interval, cidrs, clip, count, merge, subtract

_DOMAIN_TERMS = ("include:", "redirect=", "a:", "mx:", "exists:", "ptr:")
_POOL_TERMS = ("include:", "redirect=")


# --- chains ------------------------------------------------------------------------------------


def _term_name(term: str) -> tuple[str, str] | None:
    """(mechanism, domain) of a chain term naming a domain: `include:_spf.x` -> ("include:", "_spf.x")."""
    bare = term.lstrip("+-~?")
    low = bare.lower()
    for prefix in _DOMAIN_TERMS:
        if low.startswith(prefix):
            spec = bare[len(prefix) :]
            if prefix in ("a:", "mx:"):
                spec = spec.split("/", 1)[0]
            return prefix, spec.lower().rstrip(".")
    return None


def chain_names(chain: Sequence[str]) -> list[str]:
    """The names an SPF chain passes through: the partner's domain, then every domain-spec."""
    names = [chain[0].lower()] if chain else []
    for term in chain[1:]:
        named = _term_name(term)
        if named is not None:
            names.append(named[1])
    return names


def _under(name: str, domain: str) -> bool:
    return name == domain or name.endswith("." + domain)


def _by_chain(filters: Sequence[SpfFilter], chain: Sequence[str]) -> SpfFilter | None:
    names = chain_names(chain)
    return next((f for f in filters if f.domain and any(_under(n, f.domain) for n in names)), None)


def filtered(partner: Partner, found: Found) -> list[Network]:
    """What of `found` the declaration's include / exclude let through (exactly)."""
    net = found.network
    spans: list[Interval] = [(net.start, net.end)]
    if partner.include and _by_chain(partner.include, found.chain) is None:
        keep = merge((n.start, n.end) for n in _networks(partner.include, net.family))
        spans = clip(spans[0], keep)
    if partner.exclude:
        if _by_chain(partner.exclude, found.chain) is not None:
            return []
        cuts = merge((n.start, n.end) for n in _networks(partner.exclude, net.family))
        spans = [piece for span in spans for piece in subtract(span, cuts)]
    return [net] if spans == [(net.start, net.end)] else cidrs(net.family, spans)


def _networks(filters: Sequence[SpfFilter], family: int) -> list[Network]:
    return [f.network for f in filters if f.network is not None and f.network.family == family]


# --- shared pools ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pool:
    chain: tuple[str, ...]  # down to the include (or redirect) term
    why: str


def shared_pools(expansion: Expansion, spf: SpfSettings, refused: set[Network]) -> dict[tuple[str, ...], Pool]:
    """Every include / redirect of the expansion that is a shared pool, by its chain. Its size
    is what it passes that the zone may list (special-purpose and too broad networks refused
    on their own do not make an include a pool)."""
    passed: dict[tuple[str, ...], list[Network]] = {}
    for found in expansion.found:
        if found.network in refused:
            continue
        for k in range(1, len(found.chain) - 1):
            named = _term_name(found.chain[k])
            if named is not None and named[0] in _POOL_TERMS:
                passed.setdefault(found.chain[: k + 1], []).append(found.network)
    shared = spf.shared
    out: dict[tuple[str, ...], Pool] = {}
    for chain, nets in passed.items():
        named = _term_name(chain[-1])
        assert named is not None
        target = named[1]
        provider = next((p for p in shared.providers if _under(target, p)), None)
        size = count(nets)
        if provider is not None:
            why = f"{target} is a shared provider" + ("" if provider == target else f" (under {provider})")
        elif size.v4 > shared.max_ipv4:
            why = f"{chain[-1]} passes {size.v4} IPv4 addresses, more than the zone's {shared.max_ipv4}"
        elif size.v6_64s > shared.max_ipv6_64s:
            why = f"{chain[-1]} passes {size.v6_64s} IPv6 /64s, more than the zone's {shared.max_ipv6_64s}"
        else:
            continue
        out[chain] = Pool(chain, why)
    return out


def pool_of(chain: tuple[str, ...], pools: dict[tuple[str, ...], Pool]) -> Pool | None:
    """The outermost shared pool `chain` passes through."""
    return next((pools[chain[: k + 1]] for k in range(1, len(chain)) if chain[: k + 1] in pools), None)
