"""What rbldnsd answers for one dataset, and where a compiled zone answers otherwise.

The rbldnsd dataset types differ from each other, and from our bulk format, in
ways that change answers. Read from rbldnsd's source (rbldnsd_ip4set.c, _ip4trie.c,
_ip4tset.c, _ip6trie.c, _ip6tset.c, _dnset.c) and checked against rbldnsd
1.0pre (20210120):

- ip4set: every range is cut into octet-aligned blocks (/32, /24, /16, /8); an
  address is answered by the most specific *level* that has any block for it,
  with every distinct value of the lines that gave that block (a /20 and a /22
  inside it both answer in the /22), and an exclusion at that level wins over
  any listing of the same block whatever the line order.
- ip4trie / ip6trie: CIDRs only (`A-B` ranges are ignored), longest prefix wins,
  one value per prefix (a repeated prefix keeps its first line).
- ip4tset: full dotted quads only, no exclusions; every entry answers the first
  `:A:TXT` line of the file (later ones and per-entry values are ignored).
- ip6tset: four-group /64s (`2001:db8:1:2`), `!` exclusions of single /128s; one
  value for all, as ip4tset.
- dnset: `name`, `*.name` (subdomains), `.name` (both); an exact line beats any
  wildcard, the nearest wildcard wins; an exclusion wins over listings of the
  same key; every distinct value of the same key is answered.
- `$MAXRANGE4` makes later IPv4 entries larger than it ignored.

`normalize_lines` rewrites a dataset's lines into text our bulk reader reads as
rbldnsd does (lines rbldnsd ignores become blank, ignored values are dropped),
keeping line numbers; `build_model` turns the rows read from it into the
answers (a `DatasetModel`); `compare` finds where a compiled zone answers
otherwise. Pure.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

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
from publisher.compile.zone import CompiledZone
from publisher.lists.bulk_syntax import split_token
from publisher.model import SUBST, SourceData

#: rbldnsd dataset types the importer reads (combined is split into these by read.py).
IP4_TYPES = ("ip4set", "ip4trie", "ip4tset")
IP6_TYPES = ("ip6trie", "ip6tset")
DOMAIN_TYPES = ("dnset",)
DATA_TYPES = IP4_TYPES + IP6_TYPES + DOMAIN_TYPES

Pair = tuple[int, str]  # (code, TXT with model.SUBST for the queried name; "" = no TXT)
Payload = frozenset[int]  # value ids of DatasetModel.values; empty = excluded
Seg = tuple[int, int, Payload]  # inclusive interval, disjoint and sorted in a model

_V6_HALF = re.compile(r"[0-9A-Fa-f]{1,4}(:[0-9A-Fa-f]{1,4}){3}")
_HEXCOLON = re.compile(r"[0-9A-Fa-f:]+")


def special_body(stripped: str) -> str | None:
    """The text after `$`, `#$`, `;$` or `:$` (rbldnsd special lines), else None."""
    if stripped.startswith("$"):
        return stripped[1:]
    if stripped[:2] in ("#$", ";$", ":$"):
        return stripped[2:]
    return None


def is_value_line(stripped: str) -> bool:
    return stripped.startswith(":") and not stripped.startswith("::")


@dataclass(slots=True)
class Ignored:
    """Lines rbldnsd ignores (or reads differently), counted per reason for one note each."""

    lines: dict[str, list[int]] = field(default_factory=dict)  # reason -> line numbers
    dropped: set[int] = field(default_factory=set)  # lines not read at all (others lose a part)

    def add(self, reason: str, lineno: int, *, whole: bool = True) -> None:
        self.lines.setdefault(reason, []).append(lineno)
        if whole:
            self.dropped.add(lineno)


def _why_ignored(dtype: str, excl: bool, token: str) -> str | None:
    """Why rbldnsd's `dtype` ignores this entry, or None when it reads it."""
    v6 = ":" in token
    if dtype in IP4_TYPES and v6:
        return f"rbldnsd's {dtype} ignores IPv6 entries"
    if dtype in IP6_TYPES and not v6:
        return f"rbldnsd's {dtype} ignores IPv4 entries and names"
    if dtype in ("ip4trie", "ip6trie", "ip4tset", "ip6tset") and "-" in token:
        return f"rbldnsd's {dtype} ignores A-B ranges (CIDRs only)"
    if dtype in IP6_TYPES and "." in token:
        return f"rbldnsd's {dtype} does not read dotted IPv4 inside IPv6"
    if dtype == "ip4tset":
        if excl:
            return "rbldnsd's ip4tset has no exclusions"
        if "/" in token or token.count(".") != 3:
            return "rbldnsd's ip4tset reads full single addresses only"
    if dtype == "ip6tset":
        if excl and ("/" in token or not (_HEXCOLON.fullmatch(token) and ("::" in token or token.count(":") == 7))):
            return "rbldnsd's ip6tset excludes single /128 addresses only"
        if not excl and not _V6_HALF.fullmatch(token):
            return "rbldnsd's ip6tset lists /64s written as four groups only (2001:db8:1:2)"
    return None


def normalize_lines(dtype: str, lines: Iterable[tuple[int, str]], ignored: Ignored) -> dict[int, str]:
    """line number -> the line as our bulk reader must see it to read what rbldnsd reads.

    Specials other than `$N`/`$=` are left out (read.py reads them); so are
    entries rbldnsd ignores. For the tset types only the first value line counts
    and per-entry values are dropped.
    """
    out: dict[int, str] = {}
    tset = dtype in ("ip4tset", "ip6tset")
    seen_value = False
    for lineno, line in lines:
        stripped = line.strip()
        if not stripped or stripped[0] in "#;" and special_body(stripped) is None:
            continue
        body = special_body(stripped)
        if body is not None:
            if body[:1].isdigit() or body.startswith("="):
                out[lineno] = stripped
            continue
        if is_value_line(stripped):
            if tset and seen_value:
                ignored.add(f"rbldnsd's {dtype} uses only the first `:A:TXT` line", lineno)
                continue
            seen_value = True
            out[lineno] = stripped
            continue
        excl = stripped.startswith("!")
        token, value = split_token(stripped[1:].lstrip() if excl else stripped)
        why = _why_ignored(dtype, excl, token)
        if why is not None:
            ignored.add(why, lineno)
            continue
        if tset:
            if value and value[0] not in "#;":
                ignored.add(f"rbldnsd's {dtype} ignores per-entry values (one value for all)", lineno, whole=False)
            out[lineno] = ("!" if excl else "") + token
        else:
            out[lineno] = stripped
    return out


# --- the answers of one dataset ---------------------------------------------------------


@dataclass(slots=True)
class DatasetModel:
    """What one rbldnsd dataset answers. Values are interned (code, TXT) pairs."""

    dtype: str
    values: list[Pair] = field(default_factory=list)
    first_line: list[int] = field(default_factory=list)  # where each value is first used
    v4: list[Seg] = field(default_factory=list)  # listed only: payloads never empty
    v6: list[Seg] = field(default_factory=list)
    exact: dict[str, Payload] = field(default_factory=dict)  # empty payload = excluded
    wild: dict[str, Payload] = field(default_factory=dict)
    pair_sets: dict[Payload, frozenset[Pair]] = field(default_factory=dict)  # cache of `pairs`

    def domain_answer(self, name: str) -> Payload:
        """rbldnsd's dnset lookup: the exact key, else the nearest wildcard above the name."""
        hit = self.exact.get(name)
        if hit is not None:
            return hit
        while "." in name:
            name = name.split(".", 1)[1]
            hit = self.wild.get(name)
            if hit is not None:
                return hit
        return frozenset()

    def pairs(self, payload: Payload) -> frozenset[Pair]:
        got = self.pair_sets.get(payload)
        if got is None:
            got = self.pair_sets[payload] = frozenset(self.values[v] for v in payload)
        return got


def paint(items: list[Seg]) -> list[Seg]:
    """A laminar family (any two nest or are disjoint), innermost wins -> disjoint listed segments."""
    items.sort(key=lambda t: (t[0], -t[1]))
    out: list[Seg] = []

    def emit(s: int, e: int, p: Payload) -> None:
        if s > e or not p:
            return
        if out and out[-1][1] == s - 1 and out[-1][2] == p:
            out[-1] = (out[-1][0], e, p)
        else:
            out.append((s, e, p))

    stack: list[tuple[int, Payload]] = []
    cur = 0
    for s, e, p in items:
        while stack and stack[-1][0] < s:
            top_e, top_p = stack.pop()
            emit(cur, top_e, top_p)
            cur = top_e + 1
        if stack:
            emit(cur, s - 1, stack[-1][1])
        cur = s
        stack.append((e, p))
    while stack:
        top_e, top_p = stack.pop()
        emit(cur, top_e, top_p)
        cur = top_e + 1
    return out


def octet_blocks(start: int, end: int) -> Iterator[tuple[int, int]]:
    """ip4set's expansion of a range: the fewest octet-aligned blocks (start, size)."""
    while start <= end:
        for size in (1 << 24, 1 << 16, 1 << 8, 1):
            if start % size == 0 and start + size - 1 <= end:
                break
        yield start, size
        start += size


_EXCLUDED = -1


def _keyed(rows: Iterable[tuple[int, int, int | None]], first_wins: bool) -> list[Seg]:
    """Rows (start, end, value id or None for an exclusion) -> one payload per key."""
    keys: dict[tuple[int, int], set[int]] = {}
    for s, e, v in rows:
        got = keys.get((s, e))
        if got is None:
            keys[(s, e)] = {_EXCLUDED if v is None else v}
        elif not first_wins:
            got.add(_EXCLUDED if v is None else v)
    return [(s, e, frozenset() if _EXCLUDED in vs else frozenset(vs)) for (s, e), vs in keys.items()]


def build_model(
    dtype: str, source: SourceData, maxrange: Callable[[int], int | None], ignored: Ignored
) -> DatasetModel:
    """The answers of the rows our reader read from `normalize_lines`' text."""
    model = DatasetModel(dtype)
    ids: dict[Pair, int] = {}

    def used(v: int, line: int) -> int | None:
        """The model's id of source value `v` (None: an exclusion); interned on first use."""
        value = source.values[v]
        if value.exclude:
            return None
        pair = (value.code, value.reason)
        if pair not in ids:
            ids[pair] = len(model.values)
            model.values.append(pair)
            model.first_line.append(line)
        return ids[pair]

    rows4: list[tuple[int, int, int | None]] = []
    for row in source.rows(4):
        limit = maxrange(row.line)
        if limit is not None and row.end - row.start + 1 > limit:
            ignored.add(f"rbldnsd ignores entries larger than $MAXRANGE4 ({limit} addresses)", row.line)
            continue
        rows4.append((row.start, row.end, used(row.value, row.line)))
    rows6 = [(row.start, row.end, used(row.value, row.line)) for row in source.rows(6)]
    if dtype == "ip4set":
        blocks = [(bs, bs + size - 1, v) for s, e, v in rows4 for bs, size in octet_blocks(s, e)]
        model.v4 = paint(_keyed(blocks, first_wins=False))
    else:
        model.v4 = paint(_keyed(rows4, first_wins=True))
        model.v6 = paint(_keyed(rows6, first_wins=True))
    exact: list[tuple[str, int | None]] = []
    wild: list[tuple[str, int | None]] = []
    for row in source.rows(0):
        (wild if row.wild else exact).append((row.name, used(row.value, row.line)))
    model.exact = _domain_keys(exact)
    model.wild = _domain_keys(wild)
    return model


def _domain_keys(rows: list[tuple[str, int | None]]) -> dict[str, Payload]:
    keys: dict[str, set[int]] = {}
    for name, v in rows:
        keys.setdefault(name, set()).add(_EXCLUDED if v is None else v)
    return {n: frozenset() if _EXCLUDED in vs else frozenset(vs) for n, vs in keys.items()}


# --- several datasets of one zone, and comparing with a compiled zone --------------------

PairSeg = tuple[int, int, frozenset[Pair]]
MAX_EXAMPLES = 5  # differences shown in a report


def zone_segments(models: list[DatasetModel], family: int) -> list[PairSeg]:
    """What the datasets of a zone answer together for one address family."""
    layers = [[(s, e, m.pairs(p)) for s, e, p in (m.v4 if family == 4 else m.v6)] for m in models]
    return layers[0] if len(layers) == 1 else union_segments(layers)  # one dataset: already disjoint


def union_segments(layers: list[list[PairSeg]]) -> list[PairSeg]:
    """Disjoint segments of several layers -> disjoint segments with the union of their pairs.

    rbldnsd answers a query from every dataset of the zone; our compiler merges
    its sources the same way.
    """
    points = sorted({p for layer in layers for s, e, _ in layer for p in (s, e + 1)})
    pos = [0] * len(layers)
    out: list[PairSeg] = []
    for lo, nxt in zip(points, points[1:]):
        got: set[Pair] = set()
        for i, layer in enumerate(layers):
            while pos[i] < len(layer) and layer[pos[i]][1] < lo:
                pos[i] += 1
            if pos[i] < len(layer) and layer[pos[i]][0] <= lo:
                got |= layer[pos[i]][2]
        if not got:
            continue
        pairs = frozenset(got)
        if out and out[-1][1] == lo - 1 and out[-1][2] == pairs:
            out[-1] = (out[-1][0], nxt - 1, pairs)
        else:
            out.append((lo, nxt - 1, pairs))
    return out


def carve(segs: list[PairSeg], lo: int, hi: int) -> list[PairSeg]:
    """The segments without [lo, hi] (test points and ranges compared elsewhere)."""
    i = bisect_left(segs, lo, key=lambda t: t[1])  # the first that ends at or after lo
    j = bisect_right(segs, hi, key=lambda t: t[0])  # past the last that starts at or before hi
    if i >= j:
        return segs
    pieces: list[PairSeg] = []
    s, _, p = segs[i]
    if s < lo:
        pieces.append((s, lo - 1, p))
    _, e, p = segs[j - 1]
    if e > hi:
        pieces.append((hi + 1, e, p))
    return segs[:i] + pieces + segs[j:]


def same_answer(want: frozenset[Pair], got: frozenset[Pair]) -> bool:
    """One A per code in both; where rbldnsd has several TXTs for one code (not
    representable here) any one of them is accepted."""
    want_codes: dict[int, set[str]] = {}
    for code, txt in want:
        want_codes.setdefault(code, set()).add(txt)
    got_codes = {code: txt for code, txt in got}
    if set(want_codes) != set(got_codes) or len(got_codes) != len(got):
        return False
    return all(got_codes[c] in txts for c, txts in want_codes.items())


def _pairwise(want: list[PairSeg], got: list[PairSeg]) -> Iterator[tuple[int, int, frozenset[Pair], frozenset[Pair]]]:
    if want == got:
        return  # the usual case, and the only fast one for a million entries
    points = sorted({p for segs in (want, got) for s, e, _ in segs for p in (s, e + 1)})
    iw = ig = 0
    empty: frozenset[Pair] = frozenset()
    for lo, nxt in zip(points, points[1:]):
        while iw < len(want) and want[iw][1] < lo:
            iw += 1
        while ig < len(got) and got[ig][1] < lo:
            ig += 1
        w = want[iw][2] if iw < len(want) and want[iw][0] <= lo else empty
        g = got[ig][2] if ig < len(got) and got[ig][0] <= lo else empty
        if not same_answer(w, g):
            yield lo, nxt - 1, w, g


def _got(zone: CompiledZone, rows: list[tuple[int, int, int]]) -> list[PairSeg]:
    sets = [frozenset(zip(a.codes, a.txts)) for a in zone.answers]
    return [(s, e, sets[v]) for s, e, v in rows]


def compare(
    models: list[DatasetModel], zone: CompiledZone, wants: tuple[list[PairSeg], list[PairSeg]] | None = None
) -> tuple[int, list[str]]:
    """Where the compiled zone answers otherwise than rbldnsd: (count, a few examples).

    `wants`: the models' `zone_segments` for IPv4 and IPv6, if already computed.
    Not compared: the RFC 5782 test points (the publisher always answers them) and
    IPv4-mapped IPv6 (answered from the IPv4 entries); migrate.py notes those.
    """
    found: list[str] = []
    count = 0
    if wants is None:
        wants = (zone_segments(models, 4), zone_segments(models, 6))
    for fam, lo, hi in ((4, TEST_UNLISTED_V4, TEST_LISTED_V4), (6, V4_MAPPED_START, V4_MAPPED_END)):
        want = wants[0] if fam == 4 else wants[1]
        got = _got(zone, zone.v4_intervals() if fam == 4 else zone.v6_intervals())
        for s, e, w, g in _pairwise(carve(want, lo, hi), carve(got, lo, hi)):
            count += 1
            if len(found) < MAX_EXAMPLES:
                found.append(f"{Network(fam, s, e)}: rbldnsd {show(w)}, import {show(g)}")
    if zone.info.kind == "domain":
        probe = "zz-import-probe"  # a fresh label: what a wildcard answers below its name
        names = {n for m in models for n in m.exact} | {f"{probe}.{n}" for m in models for n in m.wild}
        names |= set(zone.dom_exact) | {f"{probe}.{n}" for n in zone.dom_wild}
        for q in sorted(names - {TEST_LISTED_DOMAIN, TEST_UNLISTED_DOMAIN}):
            w = frozenset().union(*(m.pairs(m.domain_answer(q)) for m in models))
            idx = zone.lookup_domain(q)
            g = frozenset(zip(zone.answers[idx].codes, zone.answers[idx].txts)) if idx >= 0 else frozenset()
            if not same_answer(w, g):
                count += 1
                if len(found) < MAX_EXAMPLES:
                    found.append(f"{q.replace(probe, '*')}: rbldnsd {show(w)}, import {show(g)}")
    return count, found


def show(pairs: frozenset[tuple[int, str]]) -> str:
    if not pairs:
        return "NXDOMAIN"
    # A listing without text has no TXT record (what rbldnsd answers too), not an empty one.
    return ", ".join(f"{format_v4(c)} {repr(t.replace(SUBST, '$')) if t else '(no TXT)'}" for c, t in sorted(pairs))
