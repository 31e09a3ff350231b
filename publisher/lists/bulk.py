"""Bulk list files (`*.txt`) in rbldnsd's ip4set / ip6trie / dnset syntax -> `SourceData`.

An rbldnsd data file imports as it is:
- `#` and `;` comments, blank lines; `:A:TXT` alone on a line sets the value of
  the entries below it (`:3:...` means 127.0.0.3, as in rbldnsd);
- entries `ADDR`, `ADDR/LEN`, `A-B`, abbreviated IPv4 (`10.1` = 10.1.0.0/16,
  `10/8`, `127.0.0.1-255`), IPv6 with trailing groups left out (`2001:db8:1` =
  2001:db8:1::/48), domains (`name`; `*.name` = subdomains only; `.name` = the
  name and its subdomains), `!` = exclusion;
- after an entry `:A:TXT`, `:A` (default TXT) or a plain TXT; in a TXT, `$` is
  the queried address or name (stored as model.SUBST), `$$` a dollar sign, `$N`
  a `$N text` substitution and `$=` the base template (bulk_syntax.py);
- in an email zone, an address or a ready hash a line (bulk_email.py), no `$` in a TXT;
- `$SOA`, `$NS`, `$TTL` and other specials are accepted and noted as warnings:
  zones.yaml decides the zone's SOA, NS and TTL.

Each bad line becomes a located `Problem` (its code from `codes`) and is not
stored. Speed matters (feeds of millions of lines): the loop tries `inet_pton`
on the raw line and appends to the arrays; any other line takes the full
parser. Repeats and overlaps are normal in feeds: bulk_repeats.py counts them
and reports one warning per file. Lines of a column file (DShield's
`start<TAB>end<TAB>...`) or a hosts file (`0.0.0.0 name`) are told apart in
bulk_shapes.py.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from dataclasses import dataclass

from publisher import codes
from publisher.addresses import TEST_UNLISTED_V4, AddressError, normalize_domain
from publisher.errors import Location, Problem, Severity
from publisher.lists.breadth import BROAD_DOMAIN_FIX_BULK, first_per_code
from publisher.lists.bulk_email import parse_emails, split_email_token
from publisher.lists.bulk_repeats import Example, Seen, allows_repeats, count_repeats, repeats_problem
from publisher.lists.bulk_shapes import COLUMNS, ShapeCounter, describe, line_shape
from publisher.lists.bulk_syntax import (
    expand_txt,
    looks_like_ip,
    parse_ip_token,
    parse_value,
    quick_network,
    special_problem,
    split_token,
)
from publisher.lists.checks import BROAD_FIX_BULK, check_domain, check_network
from publisher.lists.txt_limit import FIX as TXT_FIX
from publisher.lists.txt_limit import reason_excess
from publisher.lists.yamlmarks import decode_text
from publisher.model import SUBST, SourceData, Value, ZoneConfig, longest_subject

__all__ = ["BulkMarks", "read_bulk", "read_bulk_source", "MAX_LINE_PROBLEMS"]

#: Characters of text split into lines at a time.
_CHUNK = 1 << 20

#: What normalize_domain would return unchanged: lower-case labels of 1-63 characters, a dot.
_PLAIN_NAME = re.compile(r"(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")

#: Past this many bad lines in one file the rest are counted, not listed (a wrong file).
MAX_LINE_PROBLEMS = 1000
#: Longer lines are refused: no entry and TXT needs them, and messages quote the line.
MAX_LINE_CHARS = 4096
#: (message, fix) for a `$` (the queried name) in a text of an email zone.
EMAIL_SUBST = (
    "`$` in a text of an email zone would put the queried hash into the TXT; an email zone's TXT never names the query",
    "write `$$` for a dollar sign, or leave the `$` out",
)
#: Control characters (tab and the line ends aside): the sign of a binary or UTF-16 file.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class BulkMarks:
    """What the reader carried from line to line, for bulk_patch.py to patch a parse.

    `defaults`: (line, value id it made current) of each `:A:TXT` line that parsed;
    `line_problems`: how many of the problems came line by line (the rest came at the
    end: TXT limits, counts of look-alike lines, the repeats summary); `reported`: the
    problems counted against MAX_LINE_PROBLEMS. `whole` is False for a file that was
    not read line by line (empty, not UTF-8): nothing to patch there. `repeats`: what the
    repeats summary counted (repeats, overlaps, example), None when not known.
    """

    defaults: tuple[tuple[int, int], ...] = ()
    line_problems: int = 0
    reported: int = 0
    whole: bool = False
    repeats: tuple[int, int, Example | None] | None = None


def read_bulk_source(path: str, data: bytes, zone: ZoneConfig) -> SourceData:
    """Parse one bulk file for `zone`. Bad lines become problems; good lines become rows."""
    return read_bulk(path, data, zone)[0]


def read_bulk(path: str, data: bytes, zone: ZoneConfig) -> tuple[SourceData, BulkMarks]:
    """`read_bulk_source`, with the marks that bulk_patch.py needs to patch the result later."""
    source = SourceData(path)
    if not data:
        # A feed whose download failed often arrives empty: publishing it would delist everything.
        source.problems.append(
            Problem(
                Location(path, 1),
                codes.EMPTY_FILE,
                "the file is empty (0 bytes); a feed that failed to download?",
                "if the list is meant to be empty, write a comment line (# no entries) in it",
            )
        )
        return source, BulkMarks()
    text, problem = decode_text(path, data)
    if text is None:
        assert problem is not None
        source.problems.append(problem)
        return source, BulkMarks()
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    state = _State(source, zone)
    parse = _parser(zone)
    # In chunks of whole lines: a list of every line of a big feed would cost more than the feed.
    pos, lineno, size = 0, 1, len(text)
    while pos < size:
        cut = text.find("\n", pos + _CHUNK)
        end = size if cut < 0 else cut
        lines = text[pos:end].split("\n")
        parse(lines, state, lineno)
        lineno += len(lines)
        pos = end + 1
    line_problems = len(source.problems)
    state.finish()
    excl_ids = {i for i, (_, _, excl) in enumerate(state.raw) if excl}
    counted = count_repeats(source, state.seen, excl_ids, ip=zone.kind == "ip")
    summary = None if allows_repeats(text) else repeats_problem(path, *counted)
    if summary is not None:
        source.problems.append(summary)
    return source, BulkMarks(tuple(state.defaults), line_problems, state.reported, whole=True, repeats=counted)


def read_bulk_lines(path: str, lines: list[str], first: int, zone: ZoneConfig, current: int) -> tuple[SourceData, bool]:
    """Parse `lines` (the first one is line `first`) as if value `current` were in force.

    For bulk_patch.py: gives the rows and the line problems, and True when the lines
    carried something to the lines after them (a value, a `$` line, a look-alike line),
    which a patch cannot follow."""
    source = SourceData(path)
    state = _State(source, zone)
    state.current = current
    _parser(zone)(lines, state, first)
    stateful = len(state.raw) > 1 or bool(state.defaults or state.variables or state.shapes.counts)
    return source, stateful or state.base is not None or state.suppressed > 0


def _parser(zone: ZoneConfig) -> Callable[[list[str], _State, int], None]:
    return {"ip": _parse_ip, "email": parse_emails}.get(zone.kind, _parse_domains)


class _State:
    """What the reader knows while going down one file: current default, values, specials."""

    def __init__(self, source: SourceData, zone: ZoneConfig) -> None:
        self.source = source
        self.zone = zone
        self.raw: list[tuple[int, str, bool]] = []  # (code, TXT as written, exclude) per value id
        self.where: list[Location | None] = []  # where each value was first written
        self.ids: dict[tuple[int, str, bool], int] = {}
        self.def_code = zone.code  # no `:A:` line: the zone's code and no reason
        self.def_txt = ""
        self.current = self.value(self.def_code, "")
        self.variables: dict[str, str] = {}
        self.base: str | None = None
        self.reported = 0
        self.suppressed = 0
        self.seen = Seen()  # live listings, for the repeats summary
        self.shapes = ShapeCounter(source.path)  # lines of a column or hosts file
        self.defaults: list[tuple[int, int]] = []  # (line, value id) of each `:A:TXT` line
        self.split = split_email_token if zone.kind == "email" else split_token

    def value(self, code: int, txt: str, exclude: bool = False, where: Location | None = None) -> int:
        key = (code, txt, exclude)
        idx = self.ids.get(key)
        if idx is None:
            idx = self.ids[key] = len(self.raw)
            self.raw.append(key)
            self.where.append(where)
        return idx

    def problem(self, where: Location, code: str, message: str, fix: str | None, warning: bool = False) -> None:
        if self.reported >= MAX_LINE_PROBLEMS:
            self.suppressed += 1
            return
        self.reported += 1
        severity = Severity.WARNING if warning else Severity.ERROR
        self.source.problems.append(Problem(where, code, message, fix, severity=severity))

    def special(self, body: str, lineno: int, col: int) -> None:
        if body[:1].isdigit() and body[1:2] in ("", " ", "\t"):
            self.variables.setdefault(body[0], body[2:].strip())  # rbldnsd: the first one counts
        elif body.startswith("="):
            if self.base is None:
                self.base = body[1:].strip()
        else:
            code, message, fix, warning = special_problem(body)
            self.problem(Location(self.source.path, lineno, col), code, message, fix, warning=warning)

    def entry(self, line: str, lineno: int) -> tuple[str, int, bool, int, str] | None:
        """A line -> (token, column, exclusion, value id, plain TXT), or None for anything that is no entry.

        The plain TXT is the rest of the line when it is written without `:A:` (else ""):
        bulk_shapes.py looks at it for lines of a column or hosts file."""
        if len(line) > MAX_LINE_CHARS:
            self.problem(
                Location(self.source.path, lineno, 1),
                codes.LINE_TOO_LONG,
                f"the line is {len(line)} characters long; the limit is {MAX_LINE_CHARS}",
                "is this the right file? an entry and its TXT fit on a short line",
            )
            return None
        bad = _CONTROL.search(line)
        if bad is not None:
            self.problem(
                Location(self.source.path, lineno, bad.start() + 1),
                codes.CONTROL_CHARACTER,
                f"the line holds the control character U+{ord(bad.group()):04X}",
                "remove it (is this a binary file, or a UTF-16 file?)",
            )
            return None
        text = line.strip()
        if not text:
            return None
        col = len(line) - len(line.lstrip()) + 1
        first = text[0]
        if first in "#;:" and text[1:2] == "$":
            self.special(text[2:], lineno, col)
            return None
        if first in "#;":
            return None
        if first == "$":
            self.special(text[1:], lineno, col)
            return None
        if first == ":" and text[1:2] != ":":  # '::1' is an address, not a value line
            parsed = self._value(text, lineno, col)
            if parsed is not None:
                self.def_code, txt = parsed
                self.def_txt = txt or ""
                self.current = self.value(self.def_code, self.def_txt, where=Location(self.source.path, lineno, col))
                self.defaults.append((lineno, self.current))
            return None
        excl = first == "!"
        if excl:
            rest = text[1:].lstrip()
            col += len(text) - len(rest)
            text = rest
        token, rest = self.split(text)
        if not token:
            self.problem(
                Location(self.source.path, lineno, col),
                codes.BAD_ADDRESS,
                "an exclusion without an address",
                "write !ADDR",
            )
            return None
        if excl:
            return token, col, True, self.value(self.zone.code, "", True), ""  # rbldnsd ignores its value
        if not rest or rest[0] in "#;":
            return token, col, False, self.current, ""
        text_col = line.find(rest) + 1
        where = Location(self.source.path, lineno, text_col)
        if rest[0] == ":":
            parsed = self._value(rest, lineno, text_col)
            if parsed is None:
                return None
            code, txt = parsed
            return token, col, False, self.value(code, self.def_txt if txt is None else txt, where=where), ""
        return token, col, False, self.value(self.def_code, rest, where=where), rest

    def shape(self, token: str, txt: str, where: Location) -> bool:
        """Report a line that looks like a column or hosts file's; True when it is not to be listed."""
        zone = self.zone
        shape = line_shape(token, txt, zone.kind)
        if shape is None:
            return False
        found = self.shapes.take(shape, where, lambda: describe(shape, token, txt, zone.name, zone.kind))
        if found is not None:
            self.problem(where, found.code, found.message, found.fix, warning=not found.error)
        return shape != COLUMNS

    def _value(self, text: str, lineno: int, col: int) -> tuple[int, str | None] | None:
        try:
            return parse_value(text)
        except AddressError as exc:
            self.problem(Location(self.source.path, lineno, col), exc.code, exc.message, exc.fix)
            return None

    def ip_line(self, line: str, lineno: int) -> int:
        """The full parser for one line of an ip zone; returns the (maybe new) default value."""
        parsed = self.entry(line, lineno)
        if parsed is None:
            return self.current
        token, col, excl, value, txt = parsed
        where = Location(self.source.path, lineno, col)
        shown = ("!" if excl else "") + token
        if txt and self.shape(token, txt, where):
            return self.current
        if not looks_like_ip(token) and any(c.isalpha() for c in token):
            what, hint = (
                ("an email address", "list email addresses in an email zone's files (kind: email)")
                if "@" in token
                else ("a domain name", "list domains in a domain zone's files")
            )
            self.problem(where, codes.WRONG_FAMILY, f"'{token}' is {what}, but {self.zone.name} is an ip zone", hint)
            return self.current
        try:
            net = parse_ip_token(token)
        except AddressError as exc:
            self.problem(where, exc.code, exc.message, exc.fix)  # BAD_ADDRESS or HOST_BITS
            return self.current
        findings = check_network(self.zone, net, shown, exclude=excl, broad_fix=BROAD_FIX_BULK)
        for code, message, fix in findings:
            self.problem(where, code, message, fix)
        if not findings:
            self.store(net.family, net.start, net.end, value, lineno, excl)
        return self.current

    def store(self, family: int, start: int, end: int, value: int, lineno: int, excl: bool = False) -> None:
        self.source.add_network(family, start, end, value, lineno)
        if excl:
            return
        if start == end:
            self.seen.singles[family].add(start)
            self.seen.single_rows[family] += 1
        else:
            self.seen.ranges[family].append((start, end, lineno))

    def quick(self, line: str, lineno: int) -> bool:
        """`ADDR/LEN` or a bare IPv6 address that needs no rule: store it, else leave it to `ip_line`."""
        net = quick_network(line, self.zone.max_prefix_v4, self.zone.max_prefix_v6)
        if net is None:
            return False
        self.store(*net, self.current, lineno)
        return True

    def finish(self) -> None:
        """Turn the TXT templates into reasons, now that every `$N` and `$=` is known."""
        for (code, txt, excl), where in zip(self.raw, self.where):
            reason = "" if excl else expand_txt(txt, self.variables, self.base)
            self.source.values.append(Value(code, reason, None, excl))
            if SUBST in reason and self.zone.kind == "email":  # the entries stay, as for a long text
                self.problem(where or Location(self.source.path), codes.BAD_TEMPLATE, *EMAIL_SUBST)
                continue
            too_long = None if excl else reason_excess(self.zone, code, reason)
            if too_long:  # the entries stay: the error alone keeps the file from being published
                self.problem(where or Location(self.source.path), codes.TXT_TOO_LONG, f"this text {too_long}", TXT_FIX)
        self.source.problems.extend(self.shapes.summaries())
        if self.suppressed:
            self.source.problems.append(
                Problem(
                    Location(self.source.path),
                    codes.TOO_MANY_PROBLEMS,
                    f"{self.suppressed} more bad lines in {self.source.path} are not shown",
                    "is this the right file for this zone? fix the lines above and validate again",
                )
            )


def _parse_ip(lines: list[str], state: _State, first: int) -> None:
    source = state.source
    add_s, add_e = source.v4_start.append, source.v4_end.append
    add_v, add_l = source.v4_value.append, source.v4_line.append
    pton, af_inet, from_bytes = socket.inet_pton, socket.AF_INET, int.from_bytes
    seen = state.seen.singles[4].add
    slow, quick = state.ip_line, state.quick
    cur = state.current
    lineno = first - 1
    fast = 0
    for line in lines:
        lineno += 1
        # Fast path: the line is exactly one dotted quad (most lines of any feed).
        try:
            addr = from_bytes(pton(af_inet, line), "big")
        except (OSError, ValueError):
            if not quick(line, lineno):
                cur = slow(line, lineno)
            continue
        if addr == TEST_UNLISTED_V4:
            cur = slow(line, lineno)  # the full path reports it
            continue
        add_s(addr)
        add_e(addr)
        add_v(cur)
        add_l(lineno)
        seen(addr)
        fast += 1
    state.seen.single_rows[4] += fast


def _parse_domains(lines: list[str], state: _State, first: int) -> None:
    source = state.source
    plain = _PLAIN_NAME.fullmatch
    add_n, add_w = source.dom_name.append, source.dom_wild.append
    add_v, add_l = source.dom_value.append, source.dom_line.append
    room = longest_subject(state.zone.kind, state.zone.name)
    for lineno, line in enumerate(lines, first):
        # Fast path: a lower-case name with a dot and nothing else on the line (no rule applies).
        if len(line) <= room and plain(line) and not line[0].isdigit():
            add_n(line)
            add_w(0)
            add_v(state.current)
            add_l(lineno)
            continue
        parsed = state.entry(line, lineno)
        if parsed is None:
            continue
        token, col, excl, value, txt = parsed
        where = Location(source.path, lineno, col)
        if txt and state.shape(token, txt, where):
            continue
        if looks_like_ip(token):
            state.problem(
                where,
                codes.WRONG_FAMILY,
                f"'{token}' is an IP address, but {state.zone.name} is a domain zone",
                "list addresses in an ip zone's files",
            )
            continue
        try:
            name, wild = normalize_domain(token)
        except AddressError as exc:
            state.problem(where, exc.code, exc.message, exc.fix)
            continue
        rows = [(name, False), (name, True)] if token.startswith(".") else [(name, wild)]
        shown = ("!" if excl else "") + token
        findings = first_per_code(
            [
                f
                for n, w in reversed(rows)
                for f in check_domain(state.zone, n, w, shown, exclude=excl, broad_fix=BROAD_DOMAIN_FIX_BULK)
            ]
        )
        for code, message, fix in findings:
            state.problem(where, code, message, fix)
        if findings:
            continue
        for n, w in rows:
            source.add_domain(n, w, value, lineno)
