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

from collections.abc import Callable
from dataclasses import dataclass, field

from publisher import codes
from publisher.addresses import AddressError, Network, parse_addr, parse_range
from publisher.errors import Location, Problem, Severity
from publisher.lists.bulk_syntax import looks_like_ip

__all__ = ["HOSTS_FIX", "MAX_SHAPE_REPORTS", "Shape", "ShapeCounter", "describe", "line_shape"]

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


#: What an address, a range or a prefix can start with (a cheap test before parsing).
_ADDRESS_START = frozenset("0123456789abcdefABCDEF:")

HOSTS, HEADER, COLUMNS = "hosts", "header", "columns"


def _address(word: str) -> Network | None:
    if word[:1] not in _ADDRESS_START or ("." not in word and ":" not in word):
        return None
    try:
        return parse_range(word)
    except AddressError:
        return None


def _is_hosts(token: str, name: str, kind: str) -> bool:
    if kind == "ip":
        return token in _HOSTS_ADDRESSES and not looks_like_ip(name) and any(c.isalpha() for c in name)
    if not looks_like_ip(token):
        return False
    try:
        parse_addr(token.split("%", 1)[0])  # fe80::1%lo0 localhost
    except AddressError:
        return False
    return True


def line_shape(token: str, txt: str, kind: str) -> str | None:
    """HOSTS, HEADER, COLUMNS or None: what `token txt` (an entry and its plain TXT) looks like.

    Cheap, since it runs on every line with a plain TXT; `describe` says the rest."""
    if not txt:
        return None
    second = txt.split(None, 1)[0]
    if _is_hosts(token, second, kind):
        return HOSTS
    if "\t" not in txt and (kind != "ip" or _address(second) is None):
        return None
    if "." not in token and not looks_like_ip(token):  # `Start<TAB>End<TAB>Netblock`: no entry of a feed
        return HEADER
    if kind == "ip" and not looks_like_ip(token):
        return None  # a name in an ip zone: wrong-family says so
    return COLUMNS


def describe(shape: str, token: str, txt: str, zone: str, kind: str) -> Shape:
    """The problem to report for a line `line_shape` found to be `shape`."""
    if shape == HOSTS:
        if kind == "domain":
            where = f"{zone} is a domain zone, whose files list names alone"
            fix = HOSTS_FIX
        else:
            where = f"it would list {token} with the name as its TXT"
            fix = HOSTS_FIX + ", then list them in a domain zone's files"
        message = f"'{_shown(token + ' ' + txt)}' looks like a line of a hosts file (an address, then a name); {where}"
        return Shape(codes.HOSTS_FILE, message, fix, error=True, file_fix=fix)
    if shape == HEADER:
        return Shape(
            codes.COLUMN_FILE,
            f"'{_shown(token + chr(9) + txt)}' looks like the header line of a tab-separated column file",
            "comment it out with `#`, and see the lines below: rbldnsd syntax is one entry a line",
            error=True,
            file_fix="comment the header lines out with `#`",
        )
    message = f"this line looks like a column file: '{token}' is listed alone, with '{_shown(txt)}' as its TXT"
    second = txt.split(None, 1)[0]
    start, end = _address(token), _address(second) if kind == "ip" else None
    if end is not None and start is not None and start.family == end.family and end.end > start.end:
        whole = Network(start.family, start.start, end.end)
        cidr = f" ({whole})" if whole.prefixlen is not None else ""
        file_fix = f"to list the ranges: {_RANGES}"
        fix = f"to list the range write `{token}-{second}`{cidr}, or for the whole file: {_RANGES}; {_KEEP_TXT}"
    else:
        file_fix = "to list the first column alone: cut -f1 FILE > first.txt"
        fix = f"{file_fix}; {_KEEP_TXT}"
    return Shape(codes.COLUMN_FILE, message, fix, error=False, file_fix=file_fix)


@dataclass(slots=True)
class _Count:
    first: Location
    shape: Shape
    lines: int = 1


@dataclass(slots=True)
class ShapeCounter:
    """Look-alike lines of one file: the first few are reported where they are, the rest counted."""

    path: str
    counts: dict[str, _Count] = field(default_factory=dict)  # HOSTS, HEADER, COLUMNS -> lines

    def take(self, shape: str, where: Location, make: Callable[[], Shape]) -> Shape | None:
        """Count one more line of this shape; its problem while lines are still reported on their own."""
        count = self.counts.get(shape)
        if count is None:
            first = make()
            self.counts[shape] = _Count(where, first)
            return first
        count.lines += 1
        return make() if count.lines <= MAX_SHAPE_REPORTS else None

    def summaries(self) -> list[Problem]:
        out: list[Problem] = []
        for shape, count in self.counts.items():
            more = count.lines - MAX_SHAPE_REPORTS
            if more <= 0:
                continue
            what = "a hosts file" if shape == HOSTS else "a column file"
            out.append(
                Problem(
                    Location(self.path),
                    count.shape.code,
                    f"{more:,} more lines look like {what}, as line {count.first.line} does",
                    count.shape.file_fix,
                    severity=Severity.ERROR if count.shape.error else Severity.WARNING,
                )
            )
        return out
