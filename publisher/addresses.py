"""Addresses, prefixes, domains and return codes: parsing, formatting, DNS names.

Pure functions over plain ints: an IPv4 address is an int below 2**32, an IPv6
address an int below 2**128. Parsing errors raise `AddressError` whose message
says what is wrong, whose `fix` says what to do and whose `code` is the problem
code to report; callers attach the location.
"""

from __future__ import annotations

import math
import socket
import unicodedata
from dataclasses import dataclass

import idna

from publisher import codes

V4_BITS = 32
V6_BITS = 128
V4_MAX = (1 << 32) - 1
V6_MAX = (1 << 128) - 1
#: ::ffff:0:0/96, IPv4-mapped IPv6 addresses; their nibble names answer from IPv4 data.
V4_MAPPED_START = 0xFFFF << 32
V4_MAPPED_END = V4_MAPPED_START + V4_MAX

#: RFC 5782 test points.
TEST_LISTED_V4 = 0x7F000002  # 127.0.0.2
TEST_UNLISTED_V4 = 0x7F000001  # 127.0.0.1
TEST_LISTED_V6 = V4_MAPPED_START + TEST_LISTED_V4  # ::ffff:127.0.0.2
TEST_UNLISTED_V6 = V4_MAPPED_START + TEST_UNLISTED_V4
TEST_LISTED_DOMAIN = "test"
TEST_UNLISTED_DOMAIN = "invalid"

#: Return codes live in 127.0.0.0/8; 127.255.255.0/24 is kept for error signals.
CODE_NET_START = 0x7F000000
CODE_NET_END = 0x7FFFFFFF
CODE_RESERVED_START = 0x7FFFFF00


class AddressError(ValueError):
    """A malformed address, prefix, domain or code. `fix` tells how to correct it;
    `code` is the problem code (codes.BAD_ADDRESS, HOST_BITS, BAD_DOMAIN, BAD_CODE)."""

    def __init__(self, message: str, fix: str | None = None, code: str = codes.BAD_ADDRESS) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.code = code


@dataclass(frozen=True, slots=True)
class Network:
    """A contiguous block of addresses of one family (an inclusive interval)."""

    family: int  # 4 or 6
    start: int
    end: int

    @property
    def bits(self) -> int:
        return V4_BITS if self.family == 4 else V6_BITS

    @property
    def size(self) -> int:
        return self.end - self.start + 1

    @property
    def prefixlen(self) -> int | None:
        """The prefix length if this block is exactly one CIDR, else None."""
        size = self.size
        if size & (size - 1) or self.start % size:
            return None
        return self.bits - (size.bit_length() - 1)

    def __str__(self) -> str:
        fmt = format_v4 if self.family == 4 else format_v6
        plen = self.prefixlen
        if plen == self.bits:
            return fmt(self.start)
        if plen is not None:
            return f"{fmt(self.start)}/{plen}"
        return f"{fmt(self.start)}-{fmt(self.end)}"


def format_v4(addr: int) -> str:
    return socket.inet_ntop(socket.AF_INET, addr.to_bytes(4, "big"))


def format_v6(addr: int) -> str:
    return socket.inet_ntop(socket.AF_INET6, addr.to_bytes(16, "big"))


def format_addr(family: int, addr: int) -> str:
    return format_v4(addr) if family == 4 else format_v6(addr)


def _v4_detail(text: str) -> str:
    parts = text.split(".")
    if len(parts) != 4:
        return f"'{text}' is not an IPv4 address: it has {len(parts)} parts, not 4"
    for part in parts:
        if not (part.isascii() and part.isdigit()):
            return f"'{text}' is not an IPv4 address: '{part}' is not a number"
        if len(part) > 3 or int(part) > 255:
            return f"'{text}' is not an IPv4 address: octet {part} is out of range 0-255"
        if len(part) > 1 and part[0] == "0":
            return f"'{text}' is not an IPv4 address: octet '{part}' has a leading zero"
    return f"'{text}' is not an IPv4 address"


def parse_v4(text: str) -> int:
    """A dotted-quad IPv4 address, strictly (no leading zeros, four octets)."""
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except OSError:
        raise AddressError(_v4_detail(text), "write four decimal octets 0-255, like 192.0.2.7") from None


def parse_v6(text: str) -> int:
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
    except OSError:
        raise AddressError(
            f"'{text}' is not a valid IPv6 address",
            "write it like 2001:db8::7 (hex groups, at most one '::')",
        ) from None


def unmapped(family: int, addr: int) -> tuple[int, int]:
    """An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it stands for; others as they are."""
    if family == 6 and V4_MAPPED_START <= addr <= V4_MAPPED_END:
        return 4, addr - V4_MAPPED_START
    return family, addr


def unmapped_network(net: Network) -> Network:
    """A block inside ::ffff:0:0/96 as the IPv4 block it stands for; others as they are."""
    if net.family == 6 and V4_MAPPED_START <= net.start and net.end <= V4_MAPPED_END:
        return Network(4, net.start - V4_MAPPED_START, net.end - V4_MAPPED_START)
    return net


def parse_addr(text: str) -> tuple[int, int]:
    """(family, address) of a single address of either family."""
    if ":" in text:
        return 6, parse_v6(text)
    return 4, parse_v4(text)


def parse_network(text: str) -> Network:
    """`ADDR` or `ADDR/LEN` (either family), refusing host bits set below the prefix."""
    text = text.strip()
    addr_text, slash, len_text = text.partition("/")
    family, addr = parse_addr(addr_text)
    bits = V4_BITS if family == 4 else V6_BITS
    if not slash:
        return Network(family, addr, addr)
    if not (len_text.isascii() and len_text.isdigit()) or len(len_text) > 3 or int(len_text) > bits:
        raise AddressError(
            f"'{text}' has a bad prefix length '{len_text}'",
            f"use a length between 0 and {bits}",
        )
    return prefix_block(family, addr, int(len_text), text)


def prefix_block(family: int, addr: int, plen: int, text: str) -> Network:
    """The block `addr/plen`, refusing host bits set below the prefix (`text` as written)."""
    size = 1 << ((V4_BITS if family == 4 else V6_BITS) - plen)
    if addr % size:
        base = addr - addr % size
        raise AddressError(
            f"'{text}' has host bits set below /{plen}",
            f"write {format_addr(family, base)}/{plen}, or the single address without /{plen}",
            codes.HOST_BITS,
        )
    return Network(family, addr, addr + size - 1)


def parse_range(text: str) -> Network:
    """`A-B` (both ends inclusive, same family), or anything `parse_network` takes."""
    if "-" not in text:
        return parse_network(text)
    left, _, right = text.partition("-")
    lfam, start = parse_addr(left.strip())
    rfam, end = parse_addr(right.strip())
    if lfam != rfam:
        raise AddressError(f"'{text}' mixes IPv4 and IPv6", "use two addresses of one family")
    if end < start:
        raise AddressError(f"'{text}' ends before it starts", "write the lower address first")
    return Network(lfam, start, end)


def range_to_cidrs(start: int, end: int, bits: int) -> list[tuple[int, int]]:
    """The fewest CIDR blocks (start, prefixlen) that exactly cover [start, end]."""
    out: list[tuple[int, int]] = []
    while start <= end:
        size = start & -start if start else 1 << bits
        while size > end - start + 1:
            size >>= 1
        out.append((start, bits - (size.bit_length() - 1)))
        start += size
    return out


def range_networks(family: int, start: int, end: int) -> list[Network]:
    """`range_to_cidrs` as Networks: the fewest CIDR blocks that exactly cover [start, end]."""
    bits = V4_BITS if family == 4 else V6_BITS
    return [Network(family, base, base + (1 << (bits - plen)) - 1) for base, plen in range_to_cidrs(start, end, bits)]


# --- DNS names of addresses (RFC 5782 section 2.1 and 2.4) -----------------


def v4_name(addr: int) -> str:
    """192.0.2.7 -> '7.2.0.192' (the part of the query name before the zone)."""
    b = addr.to_bytes(4, "big")
    return f"{b[3]}.{b[2]}.{b[1]}.{b[0]}"


def v6_name(addr: int) -> str:
    """32 reversed nibbles, dot separated."""
    return ".".join(reversed(f"{addr:032x}"))


_DEC = {str(i): i for i in range(256)}
_HEX = {c: int(c, 16) for c in "0123456789abcdef"}


def labels_to_v4(labels: list[str]) -> int | None:
    """Labels left to right (`['7','2','0','192']`) -> address, None if not a canonical name."""
    if len(labels) != 4:
        return None
    try:
        d, c, b, a = (_DEC[x] for x in labels)
    except KeyError:
        return None
    return (a << 24) | (b << 16) | (c << 8) | d


def labels_to_v6(labels: list[str]) -> int | None:
    """32 lower-case nibble labels, least significant first -> address."""
    if len(labels) != 32:
        return None
    try:
        return int("".join(reversed(labels)), 16) if all(x in _HEX for x in labels) else None
    except ValueError:
        return None


def partial_v4(labels: list[str]) -> tuple[int, int] | None:
    """A name with 1-3 octet labels is the block it prefixes: inclusive (start, end)."""
    n = len(labels)
    if not 1 <= n <= 3:
        return None
    value = 0
    for label in reversed(labels):
        octet = _DEC.get(label)
        if octet is None:
            return None
        value = (value << 8) | octet
    shift = 8 * (4 - n)
    return value << shift, (value << shift) | ((1 << shift) - 1)


def partial_v6(labels: list[str]) -> tuple[int, int] | None:
    """A name with 1-31 nibble labels is the block it prefixes: inclusive (start, end)."""
    n = len(labels)
    if not 1 <= n <= 31 or not all(x in _HEX for x in labels):
        return None
    shift = 4 * (32 - n)
    value = int("".join(reversed(labels)), 16)
    return value << shift, (value << shift) | ((1 << shift) - 1)


# --- domains ----------------------------------------------------------------

_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")

#: The fix of a confusable-domain problem: {name} is the name the entry would list.
CONFUSABLE_FIX = (
    "write {name} if that is the name meant; if the written form is deliberate, give it a curated entry "
    "with `allow_confusable: true` and a reason (it then lists {name})"
)


def _idna(text: str, raw: str, star: str, allow_confusable: bool) -> str:
    """A name with non-ASCII characters -> its A-label form (IDNA 2008, UTS 46 non-transitional)."""
    try:
        mapped = idna.uts46_remap(raw, std3_rules=False, transitional=False)
        name = ".".join(label if label.isascii() else idna.alabel(label).decode("ascii") for label in mapped.split("."))
    except (idna.IDNAError, UnicodeError) as exc:
        raise AddressError(
            f"'{text}' is not a valid internationalised domain name (IDNA 2008): {exc}",
            "check the name's characters; write its A-label form (xn--...) if you have it",
            codes.BAD_DOMAIN,
        ) from None
    if not allow_confusable and mapped != unicodedata.normalize("NFC", raw).lower():
        shown = star + mapped if mapped == name else f"{star}{mapped} ({star}{name})"
        changed = [c for c in dict.fromkeys(raw) if not c.isascii() and _remap(c) != c.lower()]
        what = ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, '?')}" for c in changed[:3])
        what += ", ..." if len(changed) > 3 else ""
        raise AddressError(
            f"'{text}' becomes {shown}: it changes by more than letter case ({what})",
            CONFUSABLE_FIX.format(name=star + mapped),
            codes.CONFUSABLE_DOMAIN,
        )
    return name


def _remap(char: str) -> str:
    try:
        return idna.uts46_remap(char, std3_rules=False, transitional=False)
    except idna.IDNAError:
        return char


def normalize_domain(text: str, *, allow_confusable: bool = False) -> tuple[str, bool]:
    """'*.Example.COM.' -> ('example.com', True). Raises AddressError when malformed.

    A leading `*.` (or rbldnsd's leading `.`) means "every subdomain"; the
    wildcard flag is returned and the suffix is the name stored. Pure-ASCII names
    are only lower-cased; others go through IDNA 2008 (UTS 46, non-transitional:
    `faß.de` -> `xn--fa-hia.de`, the name mail software queries). A name whose
    mapping changes more than letter case (fullwidth letters, `。`, a soft hyphen)
    raises AddressError with codes.CONFUSABLE_DOMAIN unless `allow_confusable`.
    """
    raw = text.strip()
    star = raw[:2] if raw.startswith("*.") else raw[:1] if raw.startswith(".") else ""
    wildcard, raw = bool(star), raw[len(star) :]
    raw = raw.rstrip(".") if raw.endswith(".") and not raw.endswith("..") else raw
    if not raw:
        raise AddressError(f"'{text}' is not a domain name", "write a name like spam.example", codes.BAD_DOMAIN)
    name = raw.lower() if raw.isascii() else _idna(text, raw, star, allow_confusable)
    if len(name) > 253:
        raise AddressError(f"'{text}' is longer than 253 characters", "shorten the name", codes.BAD_DOMAIN)
    for label in name.split("."):
        if not label:
            raise AddressError(f"'{text}' has an empty label", "remove the doubled or stray dot", codes.BAD_DOMAIN)
        if len(label) > 63:
            raise AddressError(f"'{text}' has a label longer than 63 characters", None, codes.BAD_DOMAIN)
        bad = set(label) - _LABEL_CHARS
        if "*" in bad:
            raise AddressError(
                f"'{text}' has a '*' that is not the leading label",
                "use '*.domain' to list every subdomain of domain",
                codes.BAD_DOMAIN,
            )
        if bad:
            shown = "".join(sorted(bad))
            raise AddressError(f"'{text}' has characters not allowed in a host name: {shown!r}", None, codes.BAD_DOMAIN)
        if label.startswith("-") or label.endswith("-"):
            raise AddressError(f"'{text}' has a label that starts or ends with '-'", None, codes.BAD_DOMAIN)
    return name, wildcard


# --- return codes -----------------------------------------------------------


def parse_code(text: str) -> int:
    """A return code '127.0.0.X' -> int, refusing what RFC 5782 and practice forbid."""
    try:
        value = parse_v4(text)
    except AddressError as exc:
        raise AddressError(exc.message, exc.fix, codes.BAD_CODE) from None
    if not CODE_NET_START <= value <= CODE_NET_END:
        raise AddressError(
            f"return code {text} is outside 127.0.0.0/8", "use an address like 127.0.0.2", codes.BAD_CODE
        )
    if value == TEST_UNLISTED_V4:
        raise AddressError(
            "return code 127.0.0.1 is forbidden (it is what resolvers see for localhost)",
            "use 127.0.0.2 or higher",
            codes.BAD_CODE,
        )
    if value >= CODE_RESERVED_START:
        raise AddressError(
            f"return code {text} is inside 127.255.255.0/24, reserved for error signals",
            "use a code below 127.255.255.0",
            codes.BAD_CODE,
        )
    return value


def split_listen(text: str, *, default_port: int | None = None) -> tuple[str, int]:
    """A listen address `ADDRESS:PORT` or `[IPv6]:PORT` as (host, port).

    `default_port`: the port of an address written alone (`127.0.0.1`, `[::1]`); None
    refuses it. An IPv6 address must be in brackets: `::1:5361` is an IPv6 address of its
    own, and reading it as `::1` port 5361 (or as port 53) would be a guess either way.
    """
    raw = text.strip()
    example = "write ADDRESS:PORT, e.g. 127.0.0.1:5353 or [::1]:5353 (IPv6 in brackets)"
    if raw.isascii() and raw.isdigit():
        raise AddressError(
            f"'{raw}' is a port alone",
            f"write ADDRESS:PORT, e.g. 127.0.0.1:{raw} or [::1]:{raw}",
            codes.BAD_LISTEN,
        )
    if raw.startswith("["):
        host, closed, rest = raw[1:].partition("]")
        if not closed or ":" not in host or (rest and not rest.startswith(":")):
            raise AddressError(f"listen address '{text}' is not [IPv6]:PORT", example, codes.BAD_LISTEN)
        port_text = rest[1:] if rest else None
    elif raw.count(":") > 1:
        raise AddressError(
            f"listen address '{text}': an IPv6 address needs brackets", _bracket_fix(raw), codes.BAD_LISTEN
        )
    else:
        host, colon, port_text_or = raw.partition(":")
        port_text = port_text_or if colon else None
    if port_text is None:
        if default_port is None:
            raise AddressError(f"listen address '{text}' is not ADDRESS:PORT", example, codes.BAD_LISTEN)
        port = default_port
    elif port_text.isascii() and port_text.isdigit() and len(port_text) <= 5 and int(port_text) <= 65535:
        port = int(port_text)
    else:
        raise AddressError(
            f"listen address '{text}' has a bad port '{port_text}'", "a port is 0 to 65535", codes.BAD_LISTEN
        )
    try:
        parse_addr(host)
    except AddressError:
        raise AddressError(
            f"listen address '{text}': '{host}' is not an IP address", example, codes.BAD_LISTEN
        ) from None
    return host, port


def _bracket_fix(raw: str) -> str:
    """How to write an unbracketed IPv6 listen address: both readings when its last group could be a port."""
    head, _, tail = raw.rpartition(":")
    try:
        parse_v6(head)
        is_port = tail.isascii() and tail.isdigit() and int(tail) <= 65535
    except AddressError:
        is_port = False
    if is_port:
        return f"write [{head}]:{tail} for port {tail} on {head}, or [{raw}]:53 for that address on port 53"
    return f"write [{raw}]:PORT, e.g. [{raw}]:5353"


def address_count(count: int, family: int) -> str:
    """A number of addresses for people: IPv6 sizes of 2^20 and more as powers of two (2^80
    reads better than 25 digits), written alike by the plan and the lookup page."""
    if family != 6 or count < 1 << 20:
        return str(count)
    exp = count.bit_length() - 1
    if count == 1 << exp:
        return f"2^{exp}"
    log = math.log2(count)
    return f"~2^{round(log)}" if abs(log - round(log)) < 0.05 else f"~2^{log:.1f}"
