"""Where a compiled zone answers otherwise than rbldnsd answers the same datasets.

The check behind every import: `compare` covers every address and name, not a
sample. Both sides are brought to the same shape first, disjoint sorted
intervals (a `Segs`) whose keys index a table of answers, and a domain zone's
exact and wildcard keys. When the interval bounds (or the domain keys) are the
same on both sides, as they are for an exact import, it is enough to check each
distinct (rbldnsd answer, our answer) pair once: that takes C-speed list
comparisons, not a loop over a million entries. Otherwise every elementary
interval (every name) is compared, as the diagnostics need. Also the notes on
what the publisher answers otherwise on purpose (one TXT per code, the RFC 5782
test points, IPv4-mapped IPv6). Pure.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from publisher import codes
from publisher.addresses import (
    TEST_LISTED_DOMAIN,
    TEST_LISTED_V4,
    TEST_UNLISTED_DOMAIN,
    TEST_UNLISTED_V4,
    V4_MAPPED_END,
    V4_MAPPED_START,
    Network,
    format_v4,
)
from publisher.compile.compiler import TEST_REASON
from publisher.compile.zone import CompiledZone
from publisher.importer.answers import DatasetModel, Pair
from publisher.importer.intervals import Segs
from publisher.importer.read import Notes
from publisher.model import SUBST, ZoneConfig, render_txt

__all__ = [
    "Answers",
    "Checked",
    "MAX_EXAMPLES",
    "coverage",
    "clashes",
    "compare",
    "same_answer",
    "show",
    "test_points",
    "zone_answers",
]

MAX_EXAMPLES = 5  # differences shown in a report
PairSet = frozenset[Pair]
_NONE: PairSet = frozenset()
_TEST_NAMES = {TEST_LISTED_DOMAIN, TEST_UNLISTED_DOMAIN}


@dataclass(slots=True)
class Answers:
    """What a zone answers for one address family: listed intervals, `sets[key]` their answer."""

    segs: Segs
    sets: list[PairSet]

    def at(self, point: int) -> PairSet:
        key = self.segs.at(point)
        return _NONE if key is None else self.sets[key]


def zone_answers(models: list[DatasetModel], family: int) -> Answers:
    """What the datasets of a zone answer together for one address family."""
    layers = [Answers(m.v4 if family == 4 else m.v6, [m.pairs(p) for p in m.payloads]) for m in models]
    return layers[0] if len(layers) == 1 else _union(layers)  # one dataset: already disjoint


def _union(layers: list[Answers]) -> Answers:
    """rbldnsd answers a query from every dataset of the zone (our compiler merges its
    sources the same way): cut at every bound, answer the union of the pairs."""
    points = sorted({p for a in layers for s, e in zip(a.segs.start, a.segs.end) for p in (s, e + 1)})
    pos = [0] * len(layers)
    out = Segs()
    sets: list[PairSet] = []
    ids: dict[PairSet, int] = {}
    for lo, nxt in zip(points, points[1:]):
        got: set[Pair] = set()
        for i, a in enumerate(layers):
            while pos[i] < len(a.segs) and a.segs.end[pos[i]] < lo:
                pos[i] += 1
            if pos[i] < len(a.segs) and a.segs.start[pos[i]] <= lo:
                got |= a.sets[a.segs.key[pos[i]]]
        if not got:
            continue
        pairs = frozenset(got)
        key = ids.get(pairs)
        if key is None:
            key = ids[pairs] = len(sets)
            sets.append(pairs)
        if out.end and out.end[-1] == lo - 1 and out.key[-1] == key:
            out.end[-1] = nxt - 1
        else:
            out.start.append(lo)
            out.end.append(nxt - 1)
            out.key.append(key)
    return Answers(out, sets)


def compiled_answers(zone: CompiledZone, family: int) -> Answers:
    """The compiled zone's intervals in the same shape (its answers are interned already)."""
    sets = [frozenset(zip(a.codes, a.txts)) for a in zone.answers]
    if family == 4:
        return Answers(Segs(list(zone.v4_start), list(zone.v4_end), list(zone.v4_value)), sets)
    starts = [(h << 64) | lo for h, lo in zip(zone.v6_start_hi, zone.v6_start_lo)]
    ends = [(h << 64) | lo for h, lo in zip(zone.v6_end_hi, zone.v6_end_lo)]
    return Answers(Segs(starts, ends, list(zone.v6_value)), sets)


def same_answer(want: PairSet, got: PairSet) -> bool:
    """One A per code in both; where rbldnsd has several TXTs for one code (not
    representable here) any one of them is accepted."""
    want_codes: dict[int, set[str]] = {}
    for code, txt in want:
        want_codes.setdefault(code, set()).add(txt)
    got_codes = {code: txt for code, txt in got}
    if set(want_codes) != set(got_codes) or len(got_codes) != len(got):
        return False
    return all(got_codes[c] in txts for c, txts in want_codes.items())


def _differences(want: Answers, got: Answers) -> Iterator[tuple[int, int, PairSet, PairSet]]:
    """Every elementary interval where the answers differ."""
    w, g = want.segs, got.segs
    if w.start == g.start and w.end == g.end:
        combos = set(zip(w.key, g.key))
        if all(same_answer(want.sets[a], got.sets[b]) for a, b in combos):
            return  # the usual case, and the only fast one for a million entries
    points = sorted({p for segs in (w, g) for s, e in zip(segs.start, segs.end) for p in (s, e + 1)})
    iw = ig = 0
    for lo, nxt in zip(points, points[1:]):
        while iw < len(w) and w.end[iw] < lo:
            iw += 1
        while ig < len(g) and g.end[ig] < lo:
            ig += 1
        a = want.sets[w.key[iw]] if iw < len(w) and w.start[iw] <= lo else _NONE
        b = got.sets[g.key[ig]] if ig < len(g) and g.start[ig] <= lo else _NONE
        if not same_answer(a, b):
            yield lo, nxt - 1, a, b


#: Per family, the range compare() leaves out: the RFC 5782 test points, IPv4-mapped IPv6.
_COMPARED = ((4, TEST_UNLISTED_V4, TEST_LISTED_V4), (6, V4_MAPPED_START, V4_MAPPED_END))


def _carved(answers: Answers, lo: int, hi: int) -> Answers:
    return Answers(answers.segs.carve(lo, hi), answers.sets)


@dataclass(frozen=True, slots=True)
class Checked:
    """What compare() found answered alike when it found no difference: the addresses and
    names rbldnsd lists (every other one is NXDOMAIN on both sides, compared as well)."""

    v4: int
    v6: int
    names: int
    wildcards: int  # `*.name` and `.name`: every name below them


def coverage(models: list[DatasetModel], wants: tuple[Answers, Answers]) -> Checked:
    """The listed addresses and names a comparison of these models covers (test points aside)."""
    sizes = [0, 0]
    for fam, lo, hi in _COMPARED:
        side = 0 if fam == 4 else 1
        want = _carved(wants[side], lo, hi)
        segs = want.segs
        sizes[side] = sum(e - s + 1 for s, e, k in zip(segs.start, segs.end, segs.key) if want.sets[k])
    names = {n for m in models for n, payload in m.exact.items() if payload} - _TEST_NAMES
    wildcards = {n for m in models for n, payload in m.wild.items() if payload}
    return Checked(sizes[0], sizes[1], len(names), len(wildcards))


def compare(
    models: list[DatasetModel], zone: CompiledZone, wants: tuple[Answers, Answers] | None = None
) -> tuple[int, list[str]]:
    """Where the compiled zone answers otherwise than rbldnsd: (count, a few examples).

    `wants`: the models' `zone_answers` for IPv4 and IPv6, if already computed.
    Not compared: the RFC 5782 test points (the publisher always answers them) and
    IPv4-mapped IPv6 (answered from the IPv4 entries); migrate.py notes those.
    """
    found: list[str] = []
    count = 0
    if wants is None:
        wants = (zone_answers(models, 4), zone_answers(models, 6))
    for fam, lo, hi in _COMPARED:
        want = _carved(wants[0] if fam == 4 else wants[1], lo, hi)
        got = _carved(compiled_answers(zone, fam), lo, hi)
        for s, e, w, g in _differences(want, got):
            count += 1
            if len(found) < MAX_EXAMPLES:
                found.append(f"{Network(fam, s, e)}: rbldnsd {show(w)}, import {show(g)}")
    if zone.info.kind == "domain" and not _same_domains(models, zone):
        probe = "zz-import-probe"  # a fresh label: what a wildcard answers below its name
        names = {n for m in models for n in m.exact} | {f"{probe}.{n}" for m in models for n in m.wild}
        names |= set(zone.dom_exact) | {f"{probe}.{n}" for n in zone.dom_wild}
        for q in sorted(names - _TEST_NAMES):
            w = frozenset().union(*(m.pairs(m.domain_answer(q)) for m in models))
            g = _domain_got(zone, zone.lookup_domain(q))
            if not same_answer(w, g):
                count += 1
                if len(found) < MAX_EXAMPLES:
                    found.append(f"{q.replace(probe, '*')}: rbldnsd {show(w)}, import {show(g)}")
    return count, found


def _domain_got(zone: CompiledZone, idx: int) -> PairSet:
    return frozenset(zip(zone.answers[idx].codes, zone.answers[idx].txts)) if idx >= 0 else _NONE


def _same_domains(models: list[DatasetModel], zone: CompiledZone) -> bool:
    """One dataset, and the compiled zone has the same exact and wildcard keys with the
    same answers: both look a name up the same way (the exact key, else the nearest
    wildcard above it), so every name is answered alike. Else the caller compares
    name by name."""
    if len(models) != 1:
        return False
    m = models[0]
    ours, theirs = m.exact, zone.dom_exact
    if _TEST_NAMES & ours.keys():
        return False  # rare: the publisher answers these its own way, compared name by name
    # The same keys: as many (the test names aside), and every one of ours is theirs.
    if len(ours) != len(theirs) - len(_TEST_NAMES & theirs.keys()) or len(m.wild) != len(zone.dom_wild):
        return False
    if not all(map(theirs.__contains__, ours)) or not all(map(zone.dom_wild.__contains__, m.wild)):
        return False
    combos: set[tuple[frozenset[int], int]] = set(zip(m.wild.values(), map(zone.dom_wild.__getitem__, m.wild)))
    combos.update(zip(ours.values(), map(theirs.__getitem__, ours)))
    return all(same_answer(m.pairs(p), _domain_got(zone, idx)) for p, idx in combos)


def show(pairs: PairSet) -> str:
    if not pairs:
        return "NXDOMAIN"
    # A listing without text has no TXT record (what rbldnsd answers too), not an empty one.
    return ", ".join(f"{format_v4(c)} {repr(t.replace(SUBST, '$')) if t else '(no TXT)'}" for c, t in sorted(pairs))


# --- what the publisher answers otherwise on purpose: notes for the user -------------------


def clashes(models: list[DatasetModel], wants: tuple[Answers, Answers], run: Notes) -> None:
    """Several TXTs for one code at one name: rbldnsd sends them all, we send one TXT per A."""
    lines = {p: ln for m in models for p, ln in zip(m.values, m.first_line)}
    seen: set[frozenset[tuple[int, str]]] = set()
    # In address order, then names in file order: the first 20 are the same on every run.
    groups = [a.sets[k] for a in wants for k in dict.fromkeys(a.segs.key)]
    groups += [m.pairs(p) for m in models for p in dict.fromkeys([*m.exact.values(), *m.wild.values()])]
    for pairs in groups:
        by_code: dict[int, list[tuple[int, str]]] = {}
        for pair in pairs:
            by_code.setdefault(pair[0], []).append(pair)
        for code, same in by_code.items():
            key = frozenset(same)
            if len(same) > 1 and key not in seen and len(seen) < 20:
                seen.add(key)
                first, *rest = sorted(same, key=lambda p: lines.get(p, 0))
                run.note(
                    lines.get(rest[0]),
                    codes.IMPORT_LOST,
                    f"code {format_v4(code)} is answered with {len(same)} TXTs at one name by rbldnsd; "
                    f"the publisher answers one TXT per code (the one of line {lines.get(first)})",
                    "give the entries different codes, or one text",
                    error=True,
                )


def test_points(name: str, models: list[DatasetModel], want4: Answers, cfg: ZoneConfig, run: Notes) -> None:
    test = (TEST_LISTED_V4, render_txt(cfg.txt, code=TEST_LISTED_V4, reason=TEST_REASON, zone=name))
    if cfg.kind == "ip":
        here = want4.at(TEST_LISTED_V4)
        point = "127.0.0.2"
    else:
        here = frozenset().union(*(m.pairs(m.domain_answer(TEST_LISTED_DOMAIN)) for m in models))
        point = f"`{TEST_LISTED_DOMAIN}`"
    if not same_answer(here, frozenset([test])):
        run.note(
            None,
            codes.IMPORT_TEST_POINT,
            f"{point} in {name}: rbldnsd answers {show(here)}, the publisher always answers "
            f"the RFC 5782 test point {show(frozenset([test]))}",
        )
    listed6 = [m for m in models if m.v6.overlaps(V4_MAPPED_START, V4_MAPPED_END)]
    if listed6:
        run.note(
            None,
            codes.IMPORT_V4_MAPPED,
            f"{name}: IPv4-mapped IPv6 names (::ffff:a.b.c.d) answer from the IPv4 entries, "
            "not from the IPv6 ranges that cover ::ffff:0:0/96",
        )
