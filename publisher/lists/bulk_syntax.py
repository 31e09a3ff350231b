"""rbldnsd data-file syntax, one token at a time: addresses, values, TXT templates.

Pure functions for bulk.py's reader. The forms follow rbldnsd(8) "DATASET TYPES
AND FORMATS" and its ip4parse.c / ip6addr.c, except that we are stricter where
rbldnsd silently guesses: host bits below a prefix are refused (as rbldnsd does
without -a), a bare number is refused (rbldnsd too). Errors are `AddressError`s
carrying their problem code (bad-address, host-bits, bad-code, bad-value).
"""

from __future__ import annotations

import re
import socket

from publisher import codes
from publisher.addresses import (
    TEST_UNLISTED_V4,
    AddressError,
    Network,
    parse_code,
    parse_range,
    parse_v6,
    prefix_block,
)
from publisher.model import SUBST

#: An entry's first token ends at whitespace or a comment character.
_TOKEN_END = re.compile(r"[\s#;]")
_HEX = frozenset("0123456789abcdefABCDEF")


def split_token(text: str) -> tuple[str, str]:
    """'192.0.2.1 :3:spam' -> ('192.0.2.1', ':3:spam'); also '192.0.2.1:3:spam' (IPv4 only)."""
    m = _TOKEN_END.search(text)
    token, rest = (text[: m.start()], text[m.start() :]) if m else (text, "")
    colon = token.find(":")
    if colon > 0 and "." in token[:colon]:
        # rbldnsd ends an IPv4 address at ':'; IPv6 (even with an embedded IPv4) has ':' earlier.
        token, rest = token[:colon], token[colon:] + rest
    return token, rest.strip()


#: What an IPv4 address or range is written with; a name needs more (a top-level label is never numeric).
_V4_CHARS = frozenset("0123456789.-")


def looks_like_ip(token: str) -> bool:
    """An address, prefix or range (or a mistyped one), not a name: for wrong-family checks.

    Names cannot hold ':' or '/', so those are IPv6 or prefixes. Otherwise only a token
    written with digits, dots and hyphens alone is taken for IPv4 (`192.0.2.7`, `10.1`,
    `127.0.0.1-255`, `1.2.3.4-1.2.3.9`, or a bad one like `10.1.2.300`): no IPv4 form holds a
    letter, so `1-800-flowers.com`, `0-mail.com` and `66-77.cc` are names.
    """
    if ":" in token or "/" in token:
        return True
    return token[:1].isdigit() and _V4_CHARS.issuperset(token)


# --- IPv4 -----------------------------------------------------------------------------


def _v4_octets(text: str, whole: str) -> list[int]:
    parts = text.split(".")
    if len(parts) > 4:
        raise AddressError(f"'{whole}' is not an IPv4 address: it has {len(parts)} parts", "write at most four octets")
    out: list[int] = []
    for part in parts:
        if not part:
            raise AddressError(f"'{whole}' has an empty octet", "remove the doubled or stray dot")
        if not (part.isascii() and part.isdigit()):
            raise AddressError(
                f"'{whole}' is not an IPv4 address: '{part}' is not a number", "write decimal octets, like 192.0.2.7"
            )
        value = int(part) if len(part) <= 3 else 256  # no int() of a thousand digits
        if value > 255:
            raise AddressError(
                f"'{whole}' is not an IPv4 address: octet {part} is out of range 0-255", "octets are 0-255"
            )
        out.append(value)
    return out


def _pad(octets: list[int], fill: int) -> int:
    value = 0
    for i in range(4):
        value = (value << 8) | (octets[i] if i < len(octets) else fill)
    return value


def parse_v4_token(token: str) -> Network:
    """rbldnsd IPv4 forms: a.b.c.d, a.b.c (/24), a.b (/16), N/len, a.b.c.d/len, A-B ranges."""
    if "-" in token:
        left, right = token.split("-", 1)
        lo = _v4_octets(left, token)
        hi = _v4_octets(right, token)
        if len(hi) == 1 and len(lo) > 1:
            hi = lo[:-1] + hi  # '127.0.0.1-255': the right end replaces the last octet given
        elif len(hi) != len(lo):
            raise AddressError(
                f"'{token}' mixes prefixes of different lengths", "write both ends with the same number of octets"
            )
        start, end = _pad(lo, 0), _pad(hi, 255)
        if end < start:
            raise AddressError(f"'{token}' ends before it starts", "write the lower address first")
        return Network(4, start, end)
    addr_text, slash, len_text = token.partition("/")
    octets = _v4_octets(addr_text, token)
    start = _pad(octets, 0)
    if slash:
        if not (len_text.isascii() and len_text.isdigit()) or len(len_text) > 2 or int(len_text) > 32:
            raise AddressError(f"'{token}' has a bad prefix length '{len_text}'", "use a length between 0 and 32")
        plen = int(len_text)
    elif len(octets) == 1:
        raise AddressError(
            f"'{token}' is a bare number, not an address", f"write {octets[0]}.0.0.0/8 (or {octets[0]}/8)"
        )
    else:
        plen = 8 * len(octets)
    return prefix_block(4, start, plen, token)


# --- IPv6 -----------------------------------------------------------------------------


def parse_v6_token(token: str) -> Network:
    """Full or '::'-compressed IPv6 with an optional /len; or leading groups only ('2001:db8:1' = /48)."""
    if "-" in token:
        net = parse_range(token)
        if net.family != 6:
            raise AddressError(f"'{token}' mixes IPv4 and IPv6", "use two addresses of one family")
        return net
    addr_text, slash, len_text = token.partition("/")
    if "::" in addr_text or addr_text.count(":") == 7 or "." in addr_text:
        addr, implied = parse_v6(addr_text), 128
    else:
        groups = addr_text.split(":")
        if not all(g and len(g) <= 4 and set(g) <= _HEX for g in groups):
            raise AddressError(
                f"'{token}' is not a valid IPv6 address", "write it like 2001:db8::7 (hex groups, at most one '::')"
            )
        addr = int("".join(g.zfill(4) for g in groups), 16) << (16 * (8 - len(groups)))
        implied = 16 * len(groups)
    if slash:
        if not (len_text.isascii() and len_text.isdigit()) or len(len_text) > 3 or int(len_text) > 128:
            raise AddressError(f"'{token}' has a bad prefix length '{len_text}'", "use a length between 0 and 128")
        plen = int(len_text)
    else:
        plen = implied
    return prefix_block(6, addr, plen, token)


def parse_ip_token(token: str) -> Network:
    return parse_v6_token(token) if ":" in token else parse_v4_token(token)


def quick_network(line: str, max_prefix_v4: int, max_prefix_v6: int) -> tuple[int, int, int] | None:
    """(family, start, end) of a line that is exactly `ADDR/LEN` or a bare IPv6 address needing no rule.

    The fast path of bulk.py: None sends the line to the full parser, which also
    explains what is wrong (host bits, a broad prefix, the test points, ::ffff:0:0/96).
    """
    head, slash, len_text = line.partition("/")
    try:
        if ":" in head:
            family, bits, addr = 6, 128, int.from_bytes(socket.inet_pton(socket.AF_INET6, head), "big")
        elif slash:
            family, bits, addr = 4, 32, int.from_bytes(socket.inet_pton(socket.AF_INET, head), "big")
        else:
            return None
    except (OSError, ValueError):
        return None
    if slash:
        if not (len_text.isascii() and len_text.isdigit()) or len(len_text) > 3 or int(len_text) > bits:
            return None
        plen = int(len_text)
    else:
        plen = bits
    size = 1 << (bits - plen)
    end = addr + size - 1
    if addr % size:
        return None
    if family == 4:
        if plen < max_prefix_v4 or addr <= TEST_UNLISTED_V4 <= end:
            return None
    elif plen < max_prefix_v6 or plen < 32 or addr >> 96 == 0:
        return None
    return family, addr, end


_IGNORED_SPECIALS = {
    "SOA": "zones.yaml decides the zone's SOA",
    "NS": "zones.yaml decides the zone's name servers",
    "TTL": "zones.yaml decides the zone's TTL",
    "TIMESTAMP": "listings end with `expires` in a curated file",
    "MAXRANGE4": "the zone's max_prefix limits how broad an entry may be",
}


def special_problem(body: str) -> tuple[str, str, str, bool]:
    """What to say of a `$` line other than `$N text` and `$=`: (code, message, fix, is a warning)."""
    word = body.split(None, 1)[0] if body.strip() else ""
    if word.upper() in _IGNORED_SPECIALS:
        fix = "nothing to do (the line may stay for rbldnsd), or remove it"
        return codes.BULK_SPECIAL, f"`${word}` is ignored: {_IGNORED_SPECIALS[word.upper()]}", fix, True
    if word.upper() == "DATASET":
        fix = "split the file: one file per zone, listed in that zone's sources"
        return codes.BULK_UNSUPPORTED, "combined datasets (`$DATASET`) are not supported", fix, False
    return codes.BULK_SPECIAL, f"unrecognised special line `${body[:20]}`, ignored", "remove it", True


# --- values and TXT templates ---------------------------------------------------------


def parse_code_token(text: str) -> int:
    """rbldnsd's A value: 'N' means 127.0.0.N; otherwise a full dotted quad."""
    text = text.strip()
    if text.isascii() and text.isdigit() and len(text) <= 3:
        if int(text) > 255:
            raise AddressError(
                f"return code '{text}' is out of range", "use 2-254 (meaning 127.0.0.N) or 127.0.0.N", codes.BAD_CODE
            )
        text = f"127.0.0.{int(text)}"
    elif text.count(".") != 3:
        raise AddressError(
            f"return code '{text}' is neither an address like 127.0.0.2 nor a number N (127.0.0.N)",
            "write :127.0.0.2:text or :2:text",
            codes.BAD_CODE,
        )
    return parse_code(text)


def parse_value(text: str) -> tuple[int, str | None]:
    """':A:TXT' -> (code, TXT); ':A' -> (code, None) meaning 'the default TXT'.

    ':A:' gives an empty TXT (rbldnsd: no TXT at all for that entry).
    """
    assert text.startswith(":")
    body = text[1:]
    code_text, sep, txt = body.partition(":")
    if not sep:
        # Without a second colon only a comment may follow the code.
        code_text = re.split(r"[#;]", code_text, maxsplit=1)[0]
    if not code_text.strip():
        raise AddressError(f"'{text}' gives no return code", "write :127.0.0.2:text or :2:text", codes.BAD_VALUE)
    if " " in code_text.strip() or "\t" in code_text.strip():
        raise AddressError(f"'{text}' is not a value", "write :CODE:TXT, e.g. :2:listed for spam", codes.BAD_VALUE)
    return parse_code_token(code_text), (txt.strip() if sep else None)


def expand_txt(raw: str, variables: dict[str, str], base: str | None) -> str:
    """rbldnsd TXT template -> our reason text: `$` becomes SUBST, `$$` a '$', `$N` a variable."""
    if base is not None:
        if raw.startswith("="):
            raw = raw[1:]  # '=' opts one entry out of the base template
        else:
            raw = base.replace("$=", raw or "$")
    if "$" not in raw:
        return raw.replace(SUBST, "")
    out: list[str] = []
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c != "$":
            if c != SUBST:
                out.append(c)
            i += 1
            continue
        nxt = raw[i + 1] if i + 1 < n else ""
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt.isdigit():
            out.append(variables.get(nxt, "").replace(SUBST, ""))
            i += 2
        else:
            out.append(SUBST)
            i += 1
    return "".join(out)
