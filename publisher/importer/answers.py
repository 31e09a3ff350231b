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
answers (a `DatasetModel`); compare.py finds where a compiled zone answers
otherwise. Pure. Feeds have millions of lines: the common line and the common
row (one entry, one value, no overlap) take no per-item Python loop body;
sorting, grouping and painting (intervals.py) work on parallel lists of ints.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import compress

from publisher.importer.intervals import Segs, octet_rows, paint, union
from publisher.lists.bulk_syntax import split_token
from publisher.model import SourceData

#: rbldnsd dataset types the importer reads (combined is split into these by read.py).
IP4_TYPES = ("ip4set", "ip4trie", "ip4tset")
IP6_TYPES = ("ip6trie", "ip6tset")
DOMAIN_TYPES = ("dnset",)
DATA_TYPES = IP4_TYPES + IP6_TYPES + DOMAIN_TYPES

Pair = tuple[int, str]  # (code, TXT with model.SUBST for the queried name; "" = no TXT)
Payload = frozenset[int]  # value ids of DatasetModel.values; empty = excluded

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


#: Lines that `normalize_lines` keeps exactly as written (one token, nothing rbldnsd ignores
#: for the type): the bulk of a feed, matched in C; any other line takes the full rules.
_PLAIN = {
    "ip4set": re.compile(r"[^\s#;$:!][^\s#;:]*"),
    "ip4trie": re.compile(r"[^\s#;$:!-][^\s#;:-]*"),
    "ip4tset": re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+"),
    "ip6trie": re.compile(r"[0-9A-Fa-f]+:[0-9A-Fa-f:]*(?:/[0-9]+)?"),
    "ip6tset": _V6_HALF,
    "dnset": re.compile(r"[^\s#;$:!][^\s#;]*"),
}


def normalize_lines(dtype: str, first: int, lines: Sequence[str], ignored: Ignored) -> list[str]:
    """Each line (line `first` onwards) as our bulk reader must see it to read what rbldnsd reads.

    "" for a line not to be read: comments, specials other than `$N`/`$=` (read.py
    reads them), entries rbldnsd ignores. For the tset types only the first value
    line counts and per-entry values are dropped.
    """
    plain = _PLAIN[dtype].fullmatch
    out = list(lines)
    tset = dtype in ("ip4tset", "ip6tset")
    seen_value = False
    for i in [i for i, m in enumerate(map(plain, lines)) if m is None]:
        lineno = first + i
        stripped = lines[i].strip()
        out[i] = ""
        if not stripped or stripped[0] in "#;" and special_body(stripped) is None:
            continue
        body = special_body(stripped)
        if body is not None:
            if body[:1].isdigit() or body.startswith("="):
                out[i] = stripped
            continue
        if is_value_line(stripped):
            if tset and seen_value:
                ignored.add(f"rbldnsd's {dtype} uses only the first `:A:TXT` line", lineno)
                continue
            seen_value = True
            out[i] = stripped
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
            out[i] = ("!" if excl else "") + token
        else:
            out[i] = stripped
    return out


# --- the answers of one dataset ---------------------------------------------------------

EMPTY: Payload = frozenset()


@dataclass(slots=True)
class DatasetModel:
    """What one rbldnsd dataset answers. Values are interned (code, TXT) pairs, and the
    payloads (sets of value ids) of the address intervals are interned in `payloads`."""

    dtype: str
    values: list[Pair] = field(default_factory=list)
    first_line: list[int] = field(default_factory=list)  # where each value is first used
    payloads: list[Payload] = field(default_factory=lambda: [EMPTY])  # Segs.key -> payload; 0 = excluded
    v4: Segs = field(default_factory=Segs)  # listed only: keys never 0
    v6: Segs = field(default_factory=Segs)
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
        return EMPTY

    def pairs(self, payload: Payload) -> frozenset[Pair]:
        got = self.pair_sets.get(payload)
        if got is None:
            got = self.pair_sets[payload] = frozenset(self.values[v] for v in payload)
        return got

    def intern(self, payload: Payload, ids: dict[Payload, int]) -> int:
        got = ids.get(payload)
        if got is None:
            got = ids[payload] = len(self.payloads)
            self.payloads.append(payload)
        return got


_EXCLUDED = -1


def _first_uses(column: Sequence[int]) -> dict[int, int]:
    """Each distinct item -> the index of its first occurrence, in order of first occurrence."""
    firsts = dict(zip(reversed(column), range(len(column) - 1, -1, -1)))  # the earliest index stays
    return {item: firsts[item] for item in dict.fromkeys(column)}


def build_model(dtype: str, source: SourceData, maxrange: list[tuple[int, int]], ignored: Ignored) -> DatasetModel:
    """The answers of the rows our reader read from `normalize_lines`' text.

    `maxrange`: the `$MAXRANGE4` lines, (line, addresses) in file order.
    """
    model = DatasetModel(dtype)
    ids: dict[Pair, int] = {}
    vmap: dict[int, int] = {}  # source value id -> model value id, or _EXCLUDED

    def use(values: Sequence[int], lines: Sequence[int]) -> list[int]:
        """The rows' model value ids; values are interned in order of first use, as rbldnsd reads."""
        for v, k in _first_uses(values).items():
            value = source.values[v]
            if value.exclude:
                vmap[v] = _EXCLUDED
                continue
            pair = (value.code, value.reason)
            if pair not in ids:
                ids[pair] = len(model.values)
                model.values.append(pair)
                model.first_line.append(lines[k])
            vmap[v] = ids[pair]
        return [vmap[v] for v in values]

    s4, e4, v4, l4 = list(source.v4_start), list(source.v4_end), list(source.v4_value), list(source.v4_line)
    if maxrange:
        keep = [i for i, (s, e, line) in enumerate(zip(s4, e4, l4)) if _too_large(e - s + 1, line, maxrange, ignored)]
        s4, e4, v4, l4 = ([col[i] for i in keep] for col in (s4, e4, v4, l4))
    v4 = use(v4, l4)
    v6 = use(source.v6_value, source.v6_line)
    model.v4 = _segments(model, s4, e4, v4, 32, dtype)
    model.v6 = _segments(model, list(source.v6_start), list(source.v6_end), v6, 128, dtype)
    dv = use(source.dom_value, source.dom_line)
    wild = list(source.dom_wild)
    tame = list(map(operator.not_, wild))
    model.exact = _domain_keys(list(compress(source.dom_name, tame)), list(compress(dv, tame)))
    model.wild = _domain_keys(list(compress(source.dom_name, wild)), list(compress(dv, wild)))
    return model


def _too_large(size: int, line: int, maxrange: list[tuple[int, int]], ignored: Ignored) -> bool:
    """False (and noted) for a row larger than the `$MAXRANGE4` in force at its line."""
    sizes = [limit for at, limit in maxrange if at < line]  # a limit can only be lowered
    if sizes and size > min(sizes):
        ignored.add(f"rbldnsd ignores entries larger than $MAXRANGE4 ({min(sizes)} addresses)", line)
        return False
    return True


def _segments(model: DatasetModel, ss: list[int], ee: list[int], vv: list[int], bits: int, dtype: str) -> Segs:
    distinct = set(vv)
    if len(distinct) == 1 and _EXCLUDED not in distinct:
        # One value, no exclusion (most feeds): every block answers it, whatever the
        # type's rules for repeats and nesting, so the answer is the union of the rows.
        return union(ss, ee, model.intern(frozenset(distinct), {p: k for k, p in enumerate(model.payloads)}), bits)
    if dtype == "ip4set":
        ss, ee, vv = octet_rows(ss, ee, vv)
    ss, ee, pp = _keyed(ss, ee, vv, bits, first_wins=dtype != "ip4set")
    ids: dict[Payload, int] = {p: k for k, p in enumerate(model.payloads)}
    for p in dict.fromkeys(pp):
        model.intern(p, ids)
    return paint(ss, ee, [ids[p] for p in pp])


def _keyed(
    ss: list[int], ee: list[int], vv: list[int], bits: int, *, first_wins: bool
) -> tuple[list[int], list[int], list[Payload]]:
    """Rows (start, end, value id or _EXCLUDED) -> one payload per distinct block, sorted by
    start, the larger of two blocks with one start first. An exclusion wins over listings
    of the same block; `first_wins`: of several rows of one block only the first counts."""
    n = len(ss)
    if not n:
        return [], [], []
    top = (1 << bits) - 1
    width = max(n - 1, 1).bit_length()
    # One int per row: (start, larger first, file order), sorted in C.
    keys = sorted([(((s << bits) | (top - (e - s))) << width) | k for k, (s, e) in enumerate(zip(ss, ee))])
    order = [k & ((1 << width) - 1) for k in keys]
    block = [k >> width for k in keys]
    del keys
    out_s = [ss[k] for k in order]
    out_e = [ee[k] for k in order]
    values = [vv[k] for k in order]
    singles = {v: EMPTY if v == _EXCLUDED else frozenset((v,)) for v in set(values)}
    payloads = [singles[v] for v in values]
    repeats = list(compress(range(1, n), map(operator.eq, block[1:], block)))
    if not repeats:
        return out_s, out_e, payloads
    gone: set[int] = set()
    head = -1
    got: set[int] = set()
    for i in repeats:  # i repeats the block of i - 1
        if i - 1 not in gone:
            if head >= 0:
                payloads[head] = EMPTY if _EXCLUDED in got else frozenset(got)
            head, got = i - 1, {values[i - 1]}
        gone.add(i)
        if not first_wins:
            got.add(values[i])
    payloads[head] = EMPTY if _EXCLUDED in got else frozenset(got)
    keep = [i for i in range(n) if i not in gone]
    return [out_s[i] for i in keep], [out_e[i] for i in keep], [payloads[i] for i in keep]


def _domain_keys(names: list[str], values: list[int]) -> dict[str, Payload]:
    """name -> the payload of every row of that name (an exclusion wins)."""
    singles = {v: EMPTY if v == _EXCLUDED else frozenset((v,)) for v in set(values)}
    keys = dict(zip(names, map(singles.__getitem__, values)))
    if len(keys) == len(names):
        return keys
    many: dict[str, set[int]] = {}
    for name, v in zip(names, values):
        many.setdefault(name, set()).add(v)
    for name, vs in many.items():
        if len(vs) > 1:
            keys[name] = EMPTY if _EXCLUDED in vs else frozenset(vs)
    return keys
