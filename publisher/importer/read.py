"""An rbldnsd data file -> its datasets and special lines.

A plain data file is one dataset; a `combined` file is a common part (`$SOA`,
`$NS`, `$TTL`, `$N` substitutions) and `$DATASET type[:name] subzone...`
sections, each a dataset of its own type attached to the base zone (`@`) or
subzones. `$SOA`/`$NS`/`$TTL` are kept for the zones.yaml snippet, `$MAXRANGE4`
for the model (answers.py), `$N`/`$=` stay in the text (our bulk reader
expands them); the rest becomes a note. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from publisher import codes
from publisher.errors import Location, Problem, Severity
from publisher.importer.answers import DATA_TYPES, is_value_line, special_body
from publisher.lists.bulk_syntax import looks_like_ip, split_token

__all__ = ["Notes", "Section", "Specials", "guess_type", "read_sections"]


@dataclass(frozen=True, slots=True)
class Section:
    """One dataset of the file: the whole file, or one `$DATASET` section of a combined file."""

    dtype: str
    name: str
    subzones: tuple[str, ...]
    first: int  # the line number of lines[0]
    lines: list[str]  # the dataset's own lines, consecutive in the file

    def numbered(self) -> list[tuple[int, str]]:
        return list(enumerate(self.lines, self.first))


@dataclass(slots=True)
class Specials:
    """What the special lines say that is not list data."""

    soa: list[str] | None = None  # the first $SOA's fields
    ns: list[str] | None = None
    ttl: int | None = None
    maxrange: list[tuple[int, int]] | None = None  # (line, addresses), in file order
    variables: list[tuple[int, str]] | None = None  # global `$N` / `$=` lines


class Notes:
    """The problems of one import, located in the source file."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def note(self, line: int | None, code: str, message: str, fix: str | None = None, error: bool = False) -> None:
        severity = Severity.ERROR if error else Severity.WARNING
        self.problems.append(Problem(Location(self.source, line), code, message, fix, severity=severity))


def guess_type(text: str) -> str:
    """`combined` with a `$DATASET` line; else from the first entry: ip6trie, ip4set or dnset.

    A token is an address only when written as one: `1-800-flowers.com` starts a dnset."""
    for line in text.splitlines():
        s = line.strip()
        body = special_body(s)
        if body is not None:
            if body.upper().startswith("DATASET"):
                return "combined"
            continue
        if not s or s[0] in "#;" or is_value_line(s):
            continue
        token, rest = split_token(s.lstrip("!").strip())
        if "\t" in rest and "." not in token and not looks_like_ip(token):
            continue  # a column header (`Start<TAB>End<TAB>...`) says nothing of the type
        if ":" in token:
            return "ip6trie"
        return "ip4set" if looks_like_ip(token) else "dnset"
    return "ip4set"


def read_sections(dataset: str, lines: list[str], specials: Specials, run: Notes) -> list[Section]:
    """The datasets of the file (its lines, line 1 first); fills `specials` from the special lines."""
    marks = _special_lines(lines, 1)
    if dataset != "combined":
        _read_specials(marks, specials, run, top=True)
        return [Section(dataset, dataset, ("@",), 1, lines)]
    heads = [(lineno, body) for lineno, _, body in marks if body.upper().startswith("DATASET")]
    sections: list[Section] = []
    ends = [lineno for lineno, _ in heads[1:]] + [len(lines) + 1]
    for (lineno, body), end in zip(heads, ends):
        words = body.split()
        dtype, _, name = words[1].partition(":") if len(words) > 1 else ("", "", "")
        subzones = tuple(words[2:])
        if dtype not in DATA_TYPES:
            run.note(
                lineno,
                codes.IMPORT_UNSUPPORTED,
                f"dataset `{words[1] if len(words) > 1 else ''}` is not imported: only {', '.join(DATA_TYPES)} are",
                "move its records into zones.yaml (NS glue) or a list file",
                error=True,
            )
        elif not subzones:
            run.note(lineno, codes.IMPORT_SKIPPED, "this dataset serves no subzone; not imported")
        else:
            _read_specials([m for m in marks if lineno < m[0] < end], specials, run, top=False)
            label = re.sub(r"[^A-Za-z0-9_-]", "_", name) or dtype
            if label in {sec.name for sec in sections}:
                label = f"{label}{len(sections) + 1}"  # names the output file: keep it unique
            sections.append(Section(dtype, label, subzones, lineno + 1, lines[lineno : end - 1]))
    common_end = heads[0][0] if heads else len(lines) + 1
    _read_specials([m for m in marks if m[0] < common_end], specials, run, top=True)
    return sections


Mark = tuple[int, str, str]  # a special line: (line number, the line stripped, the text after `$`)


def _special_lines(lines: list[str], first: int) -> list[Mark]:
    """The special lines; only a line with a `$` can be one."""
    out = []
    for i in [i for i, line in enumerate(lines) if "$" in line]:
        stripped = lines[i].strip()
        body = special_body(stripped)
        if body is not None:
            out.append((first + i, stripped, body))
    return out


_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _seconds(text: str) -> int:
    """rbldnsd time values: `3600`, `1h`, `2h30m`, `1w`."""
    parts = re.findall(r"(\d+)([smhdw]?)", text.lower())
    if not parts or "".join(n + u for n, u in parts) != text.lower():
        raise ValueError(text)
    return sum(int(n) * _UNITS[u] for n, u in parts)


def _read_specials(marks: list[Mark], specials: Specials, run: Notes, *, top: bool) -> None:
    """$SOA/$NS/$TTL for the snippet; $MAXRANGE4 for the model; the rest as notes."""
    for lineno, stripped, body in marks:
        if not body.strip():
            continue
        words = body.split()
        word = words[0].upper()
        if word[:1].isdigit() or word.startswith("="):
            if top:
                specials.variables = (specials.variables or []) + [(lineno, stripped)]
        elif word in ("SOA", "NS", "TTL"):
            try:
                if word == "SOA" and specials.soa is None and top:
                    soa = [words[2], words[3], *(str(_seconds(w)) for w in words[5:9])]
                    if len(soa) != 6:
                        raise ValueError(body)
                    specials.soa = soa  # the serial (words[4]) is ours to assign
                elif word == "NS" and specials.ns is None and top:
                    specials.ns = [w for w in words[2:] if not w.startswith("-")]
                elif word == "TTL" and specials.ttl is None:
                    specials.ttl = _seconds(words[1])
            except (IndexError, ValueError):
                run.note(
                    lineno,
                    codes.IMPORT_SPECIAL,
                    f"`${body.strip()}` is not understood; left out",
                    "set it in zones.yaml",
                )
                continue
            run.note(
                lineno,
                codes.IMPORT_SPECIAL,
                f"`${word}` is not kept in the list file: zones.yaml decides it (see the snippet)",
            )
        elif word == "MAXRANGE4" and len(words) > 1 and re.fullmatch(r"/?\d+", words[1]):
            arg = words[1]
            size = 1 << (32 - min(32, int(arg[1:]))) if arg.startswith("/") else int(arg)  # `/24` or `256`
            specials.maxrange = (specials.maxrange or []) + [(lineno, size)]
        elif word == "TIMESTAMP":
            run.note(
                lineno,
                codes.IMPORT_SPECIAL,
                "`$TIMESTAMP` is not kept: a listing ends with `expires` in a curated file",
            )
        else:
            run.note(lineno, codes.IMPORT_SPECIAL, f"special line `${words[0]}` is not kept")
