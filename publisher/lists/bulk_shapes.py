"""Bulk lines that read as rbldnsd syntax by accident: column files and hosts files.

rbldnsd reads `ADDR text` as the address with the rest of the line as its TXT, so
a DShield `block.txt` line (`61.174.51.0<TAB>61.174.51.255<TAB>24<TAB>...`)
lists its start address alone, and a hosts file (`0.0.0.0 ads.example`) lists
0.0.0.0. bulk.py keeps rbldnsd's reading (an imported rbldnsd file must answer
as rbldnsd answers it) and asks `line_shape` whether a line looks like one of
these: a column line stays listed, with a warning that shows the range form; a
hosts line is refused, with the command that converts the file. `ShapeCounter`
keeps a million-line file to a few located problems and one count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from publisher import codes
from publisher.addresses import AddressError, Network, parse_addr, parse_range
from publisher.errors import Location, Problem, Severity
from publisher.lists.bulk_syntax import looks_like_ip

__all__ = ["HOSTS_FIX", "MAX_SHAPE_REPORTS", "Shape", "ShapeCounter", "line_shape"]

#: Located problems per kind of look-alike line and file; the rest are counted in one problem.
MAX_SHAPE_REPORTS = 3

#: A hosts file's null and loopback addresses: what comes after them is a name, not a TXT.
_HOSTS_ADDRESSES = frozenset({"0.0.0.0", "127.0.0.1", "::", "::1"})

HOSTS_FIX = (
    "a hosts file lists names: keep the names alone, one a line, without localhost, e.g. "
    'awk \'($1 == "0.0.0.0" || $1 == "127.0.0.1") && $2 !~ /^(localhost|0\\.0\\.0\\.0)/ {print $2}\' '
    "FILE > names.txt"
)
_RANGES = "awk -F'\\t' '/^[0-9]/ {print $1 \"-\" $2}' FILE > ranges.txt"
_KEEP_TXT = "if the text is meant as the TXT, write it after a value: `ADDR :2:text`"


@dataclass(frozen=True, slots=True)
class Shape:
    """What a look-alike line is: its problem code, message and fix; `error` lines are not listed.

    `file_fix` is what to do about the whole file, for the count of the lines not shown."""

    code: str
    message: str
    fix: str
    error: bool
    file_fix: str = ""


def _shown(text: str, limit: int = 36) -> str:
    cut = text if len(text) <= limit else text[:limit] + "..."
    return cut.replace("\t", "\\t")


def _address(word: str) -> Network | None:
    try:
        return parse_range(word)
    except AddressError:
        return None


def _hosts(token: str, txt: str, zone: str, kind: str) -> Shape | None:
    name = txt.split(None, 1)[0]
    if kind == "domain":
        try:
            parse_addr(token.split("%", 1)[0])  # fe80::1%lo0 localhost
        except AddressError:
            return None
        where = f"{zone} is a domain zone, whose files list names alone"
    elif token in _HOSTS_ADDRESSES and not looks_like_ip(name) and any(c.isalpha() for c in name):
        where = f"it would list {token} with the name as its TXT"
    else:
        return None
    fix = HOSTS_FIX if kind == "domain" else HOSTS_FIX + ", then list them in a domain zone's files"
    return Shape(
        codes.HOSTS_FILE,
        f"'{_shown(token + ' ' + txt)}' looks like a line of a hosts file (an address, then a name); {where}",
        fix,
        error=True,
        file_fix=fix,
    )


def _columns(token: str, txt: str, kind: str) -> Shape | None:
    second = txt.split(None, 1)[0]
    end = _address(second) if kind == "ip" else None
    if "\t" not in txt and end is None:
        return None
    if "." not in token and not looks_like_ip(token):  # `Start<TAB>End<TAB>Netblock`: no entry of a feed
        return Shape(
            codes.COLUMN_FILE,
            f"'{_shown(token + chr(9) + txt)}' looks like the header line of a tab-separated column file",
            "comment it out with `#`, and see the lines below: rbldnsd syntax is one entry a line",
            error=True,
            file_fix="comment the header lines out with `#`",
        )
    if kind == "ip" and not looks_like_ip(token):
        return None  # a name in an ip zone: wrong-family says so
    message = f"this line looks like a column file: '{token}' is listed alone, with '{_shown(txt)}' as its TXT"
    start = _address(token)
    if end is not None and start is not None and start.family == end.family and end.end > start.end:
        whole = Network(start.family, start.start, end.end)
        cidr = f" ({whole})" if whole.prefixlen is not None else ""
        file_fix = f"to list the ranges: {_RANGES}"
        fix = f"to list the range write `{token}-{second}`{cidr}, or for the whole file: {_RANGES}; {_KEEP_TXT}"
    else:
        file_fix = "to list the first column alone: cut -f1 FILE > first.txt"
        fix = f"{file_fix}; {_KEEP_TXT}"
    return Shape(codes.COLUMN_FILE, message, fix, error=False, file_fix=file_fix)


def line_shape(token: str, txt: str, zone: str, kind: str) -> Shape | None:
    """Does `token txt` (an entry and its plain TXT, no `:A:`) look like a hosts or column file's line?"""
    if not txt:
        return None
    return _hosts(token, txt, zone, kind) or _columns(token, txt, kind)


@dataclass(slots=True)
class _Count:
    first: Location
    fix: str
    lines: int = 0


@dataclass(slots=True)
class ShapeCounter:
    """Look-alike lines of one file: the first few are reported where they are, the rest counted."""

    path: str
    counts: dict[tuple[str, bool], _Count] = field(default_factory=dict)  # (code, error) -> lines

    def take(self, shape: Shape, where: Location) -> bool:
        """Count one more line of this shape; True while it is still reported on its own."""
        count = self.counts.setdefault((shape.code, shape.error), _Count(where, shape.file_fix))
        count.lines += 1
        return count.lines <= MAX_SHAPE_REPORTS

    def summaries(self) -> list[Problem]:
        out: list[Problem] = []
        for (code, error), count in self.counts.items():
            more = count.lines - MAX_SHAPE_REPORTS
            if more <= 0:
                continue
            what = "a hosts file" if code == codes.HOSTS_FILE else "a column file"
            out.append(
                Problem(
                    Location(self.path),
                    code,
                    f"{more:,} more lines look like {what}, as line {count.first.line} does",
                    count.fix,
                    severity=Severity.ERROR if error else Severity.WARNING,
                )
            )
        return out
