"""Which DNS owner names carry a CompiledZone's data (for render.py and the AXFR stream).

A *group* is one owner name (relative to the zone, '' = apex) with the index of
its Answer and the text that replaces SUBST in its TXT strings. DNS has no
ranges, so the rules below decide where an exact wildcard can stand in for many
names and where explicit names are needed:

- IPv4: a CIDR is a wildcard only on octet boundaries (/8, /16, /24), and only if
  one of its fixed labels has two or three digits: IPv6 nibble names are all
  single characters, so `*.2` or `*.0.2` would also catch IPv6 queries. Those, and
  CIDRs off octet boundaries, are split until they are exact (down to /32 names).
- IPv6: wildcards on nibble boundaries with at least four fixed nibbles (fewer
  would also catch four-label IPv4 names). ::ffff:0:0/96 is never rendered from
  IPv6 data: those names answer from the IPv4 data (only the RFC 5782 test point
  ::ffff:127.0.0.2 gets explicit records).
- Domains: a DNS wildcard stops matching below any name that exists, while the
  publisher's wildcards apply to every subdomain not listed on its own. So every
  existing name under a listed wildcard gets that wildcard's records itself, and
  a `*.` under it (see `domain_groups`).
"""

from __future__ import annotations

from collections.abc import Iterator

from publisher.addresses import V4_MAPPED_END, V4_MAPPED_START, format_v6
from publisher.compile.hashes import HashTable
from publisher.compile.zone import CompiledZone

Group = tuple[str, int, str]  # (relative owner, answer index, SUBST text)

OCTETS = [str(i) for i in range(256)]
_OCT = OCTETS
#: Characters of the longest DNS name (255 bytes on the wire).
_MAX_NAME = 253


def v4_text(a: int) -> str:
    """Dotted quad; a table lookup per octet is several times faster than inet_ntop here."""
    return f"{_OCT[a >> 24]}.{_OCT[(a >> 16) & 255]}.{_OCT[(a >> 8) & 255]}.{_OCT[a & 255]}"


def v4_rname(a: int) -> str:
    return f"{_OCT[a & 255]}.{_OCT[(a >> 8) & 255]}.{_OCT[(a >> 16) & 255]}.{_OCT[a >> 24]}"


# --- IPv4 -----------------------------------------------------------------------------


def v4_blocks(start: int, plen: int) -> Iterator[tuple[int, int]]:
    """(start, prefixlen) pieces of one CIDR: /32 = explicit name, /8 /16 /24 = wildcard."""
    if plen == 32:
        yield start, 32
        return
    if plen and plen % 8 == 0:
        if any((start >> (24 - 8 * i)) & 255 >= 10 for i in range(plen // 8)):
            yield start, plen
            return
        child = plen + 8  # all fixed labels single digits: *.2 would match IPv6 names
    else:
        child = (plen // 8 + 1) * 8
    step = 1 << (32 - child)
    for s in range(start, start + (1 << (32 - plen)), step):
        yield from v4_blocks(s, child)


def v4_wild(start: int, plen: int) -> str:
    octets = [_OCT[(start >> (24 - 8 * i)) & 255] for i in range(plen // 8)]
    return "*." + ".".join(reversed(octets))


def v4_groups(zone: CompiledZone) -> Iterator[Group]:
    for s, e, v in zip(zone.v4_start, zone.v4_end, zone.v4_value):
        if s == e:  # the common case of big feeds: keep it short
            yield v4_rname(s), v, v4_text(s)
        else:
            yield from v4_interval_groups(s, e, v)


def v4_interval_groups(s: int, e: int, v: int) -> Iterator[Group]:
    """The groups of one IPv4 interval with answer `v`."""
    for cs, plen in cidrs(s, e, 32):
        for bs, bl in v4_blocks(cs, plen):
            if bl == 32:
                yield v4_rname(bs), v, v4_text(bs)
            else:
                yield v4_wild(bs, bl), v, f"{v4_text(bs)}/{bl}"


# --- IPv6 -----------------------------------------------------------------------------


def cidrs(start: int, end: int, bits: int) -> list[tuple[int, int]]:
    """`addresses.range_to_cidrs`, each block's size found at once rather than by halving
    (an IPv6 prefix would take a hundred halvings)."""
    out: list[tuple[int, int]] = []
    while start <= end:
        align = (start & -start).bit_length() - 1 if start else bits
        fit = (end - start + 1).bit_length() - 1
        size = min(align, fit)
        out.append((start, bits - size))
        start += 1 << size
    return out


def v6_cidrs(zone: CompiledZone) -> list[tuple[int, int, int]]:
    """(start, prefixlen, answer) of the IPv6 data, leaving out ::ffff:0:0/96."""
    out: list[tuple[int, int, int]] = []
    for s, e, v in zone.v6_intervals():
        pieces = [(s, e)]
        if s <= V4_MAPPED_END and e >= V4_MAPPED_START:
            pieces = [(s, V4_MAPPED_START - 1), (V4_MAPPED_END + 1, e)]
        for ps, pe in pieces:
            if ps <= pe:
                out.extend((cs, plen, v) for cs, plen in cidrs(ps, pe, 128))
    return out


def v6_blocks(start: int, plen: int) -> Iterator[tuple[int, int]]:
    """(start, prefixlen) pieces: /128 explicit, nibble-aligned >= /16 wildcard."""
    if plen == 128 or (plen % 4 == 0 and plen >= 16):
        yield start, plen
        return
    child = (plen // 4 + 1) * 4
    step = 1 << (128 - child)
    for s in range(start, start + (1 << (128 - plen)), step):
        yield from v6_blocks(s, child)


def v6_rname(addr: int) -> str:
    return ".".join(reversed(f"{addr:032x}"))


def v6_groups(zone: CompiledZone, test_point: tuple[int, int] | None) -> Iterator[Group]:
    """IPv6 groups in address order, with the mapped test point (answering like 127.0.0.2)."""
    pending = test_point

    def test_group(addr: int, idx: int) -> Group:
        return v6_rname(addr), idx, v4_text(addr - V4_MAPPED_START)  # its TXT names the IPv4

    for cs, plen, v in v6_cidrs(zone):
        if pending is not None and pending[0] < cs:
            yield test_group(*pending)
            pending = None
        for bs, bl in v6_blocks(cs, plen):
            if bl == 128:
                yield v6_rname(bs), v, format_v6(bs)
            else:
                yield "*." + ".".join(reversed(f"{bs:032x}"[: bl // 4])), v, f"{format_v6(bs)}/{bl}"
    if pending is not None:
        yield test_group(*pending)


# --- domains --------------------------------------------------------------------------


def _parent(name: str) -> str:
    dot = name.find(".")
    return "" if dot < 0 else name[dot + 1 :]


def _child_wildcard(wild: dict[str, int], name: str) -> tuple[int, str]:
    """(answer, wildcard suffix) for a name below `name` that is not listed itself."""
    while True:
        value = wild.get(name)
        if value is not None:
            return value, name
        if not name:
            return -1, ""
        name = _parent(name)


def _existing(zone: CompiledZone) -> set[str]:
    """Every name that exists in the rendered zone (has records or names below it)."""
    nodes: set[str] = set()

    def add(name: str) -> None:
        while name and name not in nodes:
            nodes.add(name)
            name = _parent(name)

    for name, v in zone.dom_exact.items():
        if v >= 0:
            add(name)
    holes = []
    for name, v in zone.dom_wild.items():
        if v >= 0:
            add(name)
        else:
            holes.append(name)
    apex = zone.name
    for ns in zone.info.ns:
        ns_name = ns.name.rstrip(".").lower()
        if ns.addresses and ns_name.endswith("." + apex):
            add(ns_name[: -len(apex) - 1])
    # A wildcard hole under a listed wildcard only works if its name exists: the name
    # itself is listed (by the wildcard above), so giving it those records is exact.
    for name in sorted(holes, key=lambda n: n.count(".")):
        if name not in nodes and zone.lookup_domain(name) >= 0:
            add(name)
    return nodes


def domain_groups(zone: CompiledZone) -> list[Group]:
    """Records for listed names and wildcards, including every existing name under a
    listed wildcard (DNS would answer those from the wildcard only if they did not exist).
    """
    if not zone.dom_exact and not zone.dom_wild:
        return []
    if isinstance(zone.dom_exact, HashTable):  # an email zone: exact names only, in table order
        return [(name, idx, name) for name, idx in zone.dom_exact.pairs()]
    wild = zone.dom_wild
    groups: list[tuple[list[str], Group]] = []
    for name in _existing(zone):
        labels = name.split(".")[::-1]
        idx = zone.lookup_domain(name)
        if idx >= 0:
            groups.append((labels, (name, idx, name)))
        w, suffix = _child_wildcard(wild, name)
        if w >= 0 and len(name) + len(zone.name) + 3 <= _MAX_NAME:  # else no name fits below it
            groups.append((labels + ["*"], ("*." + name, w, "*." + suffix)))
    groups.sort()
    return [g for _, g in groups]


def excluded_but_matched(zone: CompiledZone) -> list[tuple[str, str]]:
    """Exclusions a DNS wildcard will match anyway: (name or *.name, why), for comments.

    An excluded name cannot exist without records, so a listed wildcard above it
    answers for it. An excluded wildcard is exact unless its own name is excluded too.
    """
    if isinstance(zone.dom_exact, HashTable):
        return []  # holes never enter an email zone's table
    exact_holes = [n for n, v in zone.dom_exact.items() if v < 0]
    wild_holes = [n for n, v in zone.dom_wild.items() if v < 0]
    if not exact_holes and not wild_holes:
        return []
    nodes = _existing(zone)
    out: list[tuple[str, str]] = []
    for names, prefix in ((exact_holes, ""), (wild_holes, "*.")):
        for name in sorted(names):
            if name in nodes:
                continue  # it exists: it answers NODATA, or its own records
            encloser = _parent(name)
            while encloser and encloser not in nodes:
                encloser = _parent(encloser)
            w, suffix = _child_wildcard(zone.dom_wild, encloser)
            if w >= 0:
                out.append((prefix + name, f"*.{suffix} matches it in DNS"))
    return out
