"""An email zone's sources -> its HashTable: the merge rules of the other kinds, at C speed.

The rows are domain rows whose names are `<label>[.<suffix>]` (publisher/emails.py); the
rules are those of compiler.py: within one file the first entry of a name wins and an
exclusion holes only that file; across files every distinct code is answered; expired
entries are left out; the zone's `excludes` files hole the whole zone; holes never enter
the table. A bulk feed of a million hashes is one file with one value: its rows go
through dict, sort, join and `bytes.fromhex` in C, never a Python loop body per row
(compiler._domains, the generic path, costs ~3.8 s per million names). Pure.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable, Iterable

from publisher import codes
from publisher.compile.excludes import HOLE
from publisher.compile.hashes import HashTable, split_digests
from publisher.emails import ALGORITHMS, LABEL_LENGTH, EmailSettings, label_digest
from publisher.errors import Location, Problem, ValidationFailed
from publisher.model import SourceData

_HEX = re.compile(r"[0-9a-f]*")


def suffix_names(settings: EmailSettings) -> frozenset[str]:
    """The empty non-terminals of an email zone: its suffix and the suffix's parents."""
    parts = settings.suffix.split(".") if settings.suffix else []
    return frozenset(".".join(parts[i:]) for i in range(len(parts)))


def _per_file(source: SourceData, vmap: list[int | None]) -> dict[str, int]:
    """name -> pair id or HOLE of one file, the first live entry of each name winning."""
    names: list[str] = source.dom_name
    mapped = list(map(vmap.__getitem__, source.dom_value))
    if None in mapped:  # expired entries are left out (a later live one of the name then counts)
        keep = [k for k, m in enumerate(mapped) if m is not None]
        names = [names[k] for k in keep]
        mapped = [mapped[k] for k in keep]
    # reversed: of two rows of a name, the first is inserted last and stays
    return dict(zip(reversed(names), reversed(mapped)))  # type: ignore[arg-type]


def merged_names(
    sources: list[SourceData],
    vmaps: list[list[int | None]],
    answer: Callable[[Iterable[int]], int],
    holes: set[str],
) -> dict[str, int]:
    """name -> answer id of every listed name (no holes)."""
    files = [f for f in (_per_file(s, v) for s, v in zip(sources, vmaps) if len(s.dom_name)) if f]
    if not files:
        return {}
    big = max(range(len(files)), key=lambda i: len(files[i]))
    base = files[big]
    single = {p: answer((p,)) for p in set(base.values()) if p != HOLE}
    single[HOLE] = HOLE
    merged = dict(zip(base, map(single.__getitem__, base.values())))
    # names of the other files: each combined over every file, in file order (first TXT wins)
    for name in {n for i, f in enumerate(files) if i != big for n in f}:
        ids = [f[name] for f in files if f.get(name, HOLE) != HOLE]
        merged[name] = answer(ids) if ids else HOLE
    for name in holes:
        merged.pop(name, None)
    if HOLE in merged.values():
        merged = {n: v for n, v in merged.items() if v != HOLE}
    return merged


def email_table(
    settings: EmailSettings,
    sources: list[SourceData],
    vmaps: list[list[int | None]],
    answer: Callable[[Iterable[int]], int],
    holes: set[str],
) -> HashTable:
    """The zone's listed names as a HashTable (answer ids as `answer` gave them; no test point)."""
    merged = merged_names(sources, vmaps, answer, holes)
    algorithm = settings.hash
    size, encoding = ALGORITHMS[algorithm]
    length = LABEL_LENGTH[algorithm]
    tail = "." + settings.suffix if settings.suffix else ""
    names = sorted(merged)  # fixed-length lower-case hex: the names' order is the digests' order
    bad = not all(len(n) == length + len(tail) for n in (names[0], names[-1])) if names else False
    if names and not bad:
        bad = set(map(len, names)) != {length + len(tail)}
    labels = [n[:length] for n in names] if tail else names
    if names and tail and not bad:
        # every name is `label + tail`: with equal lengths the joined texts agree only then
        bad = "".join(names) != tail.join(labels) + tail
    values = list(map(merged.__getitem__, names))
    if not bad and encoding == "hex":
        joined = "".join(labels)
        if _HEX.fullmatch(joined):
            heads, tails = split_digests(bytes.fromhex(joined), size)
            return HashTable(algorithm, settings.suffix, heads, tails, array("I", values))
        bad = True
    rows = [(label_digest(label, algorithm), v) for label, v in zip(labels, values)] if not bad else []
    if bad or any(d is None for d, _ in rows):
        raise _not_a_label(settings, sources, names, labels, tail)
    return HashTable.build(algorithm, settings.suffix, rows)  # type: ignore[arg-type]


def _not_a_label(
    settings: EmailSettings, sources: list[SourceData], names: list[str], labels: list[str], tail: str
) -> ValidationFailed:
    """The first name that is not a hash label of the zone, located (the reader refuses these
    first: this keeps a direct compile from writing a table the server would misread)."""
    algorithm = settings.hash
    wrong = next(n for n, label in zip(names, labels) if n != label + tail or label_digest(label, algorithm) is None)
    location = Location("<compile>")
    for src in sources:
        if wrong in src.dom_name:
            location = Location(src.path, src.dom_line[src.dom_name.index(wrong)])
            break
    message = f"'{wrong}' is not a {algorithm} hash name of this email zone"
    fix = f"list addresses or {algorithm} hashes (the reader turns them into `<hash>{tail}`)"
    return ValidationFailed([Problem(location, codes.BAD_HASH, message, fix)])
