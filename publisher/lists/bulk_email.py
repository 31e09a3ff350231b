"""The lines of a bulk file (`*.txt`) of an email zone: one address or one ready hash a line.

The rest of the rbldnsd syntax is bulk.py's, as for a domain zone: `#` comments, blank
lines, `:A:TXT` default lines, a value after an entry (`drop@fraud.example :3:text`), `!`
exclusions. A token with '@' is an address (named by emails.address_name), any other a ready
hash of the zone's algorithm (emails.feed_label); each is stored as a domain row named
`<label>[.<suffix>]` (model.SourceData). A TXT never names the query in an email zone: a `$`
in a text is refused (bulk.py, `_State.finish`). Bad lines are located problems, bounded
like any bulk file's (bulk.MAX_LINE_PROBLEMS).

Speed: a plain lower-case address (email_entries.EmailNamer.quick) or a hex hash of exactly
the zone's length alone on its line is stored without the line parser.
"""

from __future__ import annotations

import re
from typing import Protocol

from publisher.addresses import AddressError
from publisher.emails import ALGORITHMS, LABEL_LENGTH
from publisher.errors import Location
from publisher.lists.email_entries import EmailNamer, looks_like_address
from publisher.model import SourceData, ZoneConfig


class LineState(Protocol):
    """What parse_emails needs of bulk.py's reader state (`bulk._State`)."""

    source: SourceData
    zone: ZoneConfig
    current: int

    def entry(self, line: str, lineno: int) -> tuple[str, int, bool, int, str] | None: ...

    def problem(self, where: Location, code: str, message: str, fix: str | None, warning: bool = False) -> None: ...


__all__ = ["LineState", "parse_emails", "split_email_token"]

#: An entry's token ends at whitespace or ';' (no address or hash holds them unquoted), and at a
#: ':' (a value) or '#' (a comment) after its '@' ('#' is RFC 5322 atext; `mailto:` is refused).
_TOKEN_END = re.compile(r"[\s;]")
_HEX_LINE = re.compile(r"[0-9a-f]+")
#: First characters of a line that are syntax, not an address, though RFC 5322 atext holds them
#: (`!` an exclusion, `#` a comment, `$` a special line); "" (an empty line) is among them too.
_MARKS = "!#$"


def split_email_token(text: str) -> tuple[str, str]:
    """'drop@fraud.example :3:spam' -> ('drop@fraud.example', ':3:spam'); also 'drop@fraud.example:3:spam'."""
    m = _TOKEN_END.search(text)
    token, rest = (text[: m.start()], text[m.start() :]) if m else (text, "")
    at = token.find("@") + 1  # a `mailto:` before the address stays in the token, to be refused
    end = min((i for i in (token.find(":", at), token.find("#", at)) if i >= 0), default=-1)
    if end >= 0:
        token, rest = token[:end], token[end:] + rest
    return token, rest.strip()


def parse_emails(lines: list[str], state: LineState, first: int) -> None:
    """bulk.py's loop for an email zone: `lines` from line `first` on."""
    source = state.source
    settings = state.zone.email
    assert settings is not None  # every email zone has its settings (config.py)
    namer = EmailNamer(settings)
    quick = namer.quick
    hex_size = LABEL_LENGTH[settings.hash] if ALGORITHMS[settings.hash][1] == "hex" else -1
    hex_line = _HEX_LINE.fullmatch
    name_of = settings.name_of
    add_n, add_w = source.dom_name.append, source.dom_wild.append
    add_v, add_l = source.dom_value.append, source.dom_line.append
    for lineno, line in enumerate(lines, first):
        # Fast paths: a plain lower-case address, or a hash of the zone's own form, alone on the line.
        name = None if line[:1] in _MARKS else quick(line)
        if name is None and len(line) == hex_size and hex_line(line):
            name = name_of(line)
        if name is not None:
            add_n(name)
            add_w(0)
            add_v(state.current)
            add_l(lineno)
            continue
        parsed = state.entry(line, lineno)
        if parsed is None:
            continue
        token, col, _excl, value, _txt = parsed
        try:
            name = namer.address(token)[1] if looks_like_address(token) else namer.ready_hash(token)
        except AddressError as exc:
            state.problem(Location(source.path, lineno, col), exc.code, exc.message, exc.fix)  # BAD_EMAIL, BAD_HASH
            continue
        source.add_domain(name, False, value, lineno)
