"""One SPF record's text as terms (RFC 7208 sections 4.5, 4.6.1, 5, 6 and 7.1). Pure.

`parse_record` checks the whole record against the grammar before anything is
evaluated, as a receiver does (a syntax error anywhere is a permerror for the
record, RFC 7208 4.6): qualifiers, the mechanisms `all include a mx ptr ip4 ip6
exists`, the modifiers `redirect` and `exp` (at most once each) and unknown
modifiers (ignored), CIDR lengths (`ip4:N/24`, `a/24`, `mx//64`, `a:host/24//64`),
and domain-specs: a literal name must end in a top label that is not all digits,
with labels of 1-63 characters and at most 253 in all; `%{...}` is a macro (the
expansion does not enumerate it), `%%`, `%_` and `%-` are escapes for `%`, a space
and `%20`. An error says where: the column in the record, the term, and what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from publisher.addresses import V4_BITS, V6_BITS, AddressError, Network, parse_v4, parse_v6

#: Mechanisms whose evaluation queries DNS: each counts against the 10-lookup limit.
DNS_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})
MECHANISMS = frozenset({"all", "ip4", "ip6"}) | DNS_MECHANISMS
QUALIFIERS = "+-~?"

_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9_.\-]*)=(.*)", re.DOTALL)
_MACRO = re.compile(r"%\{([slodiphcrtvSLODIPHCRTV])([0-9]*)([rR]?)([.\-+,/_=]*)\}")
_TOPLABEL = re.compile(r"(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]+|[A-Za-z0-9]+-[A-Za-z0-9\-]*[A-Za-z0-9]")
_DUAL_CIDR = re.compile(r"(.*?)(?:/([0-9]+))?(?://([0-9]+))?", re.DOTALL)
_DOMAIN_LETTERS = "slodiphv"  # c, r and t are for `exp` texts only (RFC 7208 7.2)


@dataclass(frozen=True, slots=True)
class Term:
    """A mechanism or a modifier of a record."""

    kind: str  # a mechanism's name (`all`, `include`, `a`, ...) or a modifier's (`redirect`, `exp`, ...), lower case
    text: str  # as shown in chains: as written, names and domain-specs in lower case (macros kept)
    column: int  # 1-based column in the record
    modifier: bool = False
    qualifier: str = "+"  # mechanisms: + - ~ ?
    domain: str | None = None  # the domain-spec, lower case, no trailing dot, escapes applied; None: the current domain
    macro: bool = False  # the domain-spec holds a `%{...}` macro: it cannot be enumerated
    network: Network | None = None  # ip4 / ip6: the block, host bits below the length cleared
    v4_len: int = V4_BITS  # a / mx: the CIDR lengths applied to each address found
    v6_len: int = V6_BITS


@dataclass(frozen=True, slots=True)
class Record:
    text: str
    mechanisms: tuple[Term, ...]
    redirect: Term | None  # applies only when no `all` is in the record (RFC 7208 6.1)
    has_all: bool


@dataclass(frozen=True, slots=True)
class SyntaxProblem:
    column: int
    term: str
    message: str

    def __str__(self) -> str:
        return f"column {self.column} ('{self.term}'): {self.message}"


class _Bad(ValueError):
    """A term does not parse (internal: parse_record returns a SyntaxProblem)."""


def is_spf(text: str) -> bool:
    """A TXT text is an SPF record: `v=spf1` alone or followed by a space (RFC 7208 4.5)."""
    return text[:6].lower() == "v=spf1" and (len(text) == 6 or text[6] == " ")


def parse_record(text: str) -> Record | SyntaxProblem:
    """The record's terms, or the first syntax error in it (a permerror for the whole record)."""
    if not is_spf(text):
        return SyntaxProblem(1, text[:12], "an SPF record starts with 'v=spf1'")
    mechanisms: list[Term] = []
    modifiers: dict[str, Term] = {}
    column = 7  # of text[6], the space after the version
    for raw in text[6:].split(" "):
        if raw:
            try:
                term = _term(raw, column)
            except _Bad as exc:
                return SyntaxProblem(column, raw, str(exc))
            if not term.modifier:
                mechanisms.append(term)
            elif term.kind in ("redirect", "exp"):
                if term.kind in modifiers:
                    return SyntaxProblem(column, raw, f"a second {term.kind}= (at most one is allowed)")
                modifiers[term.kind] = term
        column += len(raw) + 1
    has_all = any(m.kind == "all" for m in mechanisms)
    return Record(text, tuple(mechanisms), modifiers.get("redirect"), has_all)


def _term(raw: str, column: int) -> Term:
    bad = next((c for c in raw if not "!" <= c <= "~"), None)
    if bad is not None:
        raise _Bad(f"character U+{ord(bad):04X} is not allowed in an SPF record (printable ASCII only)")
    modifier = _MODIFIER.fullmatch(raw)
    if modifier:
        name, value = modifier.group(1).lower(), modifier.group(2)
        if name in ("redirect", "exp"):
            target, in_macro = _domain_spec(value, exp=name == "exp")
            return Term(name, f"{name}={_lower(value)}", column, True, domain=target, macro=in_macro)
        _macro_string(value, exp=True)
        return Term(name, _lower(raw), column, True)
    qualifier = raw[0] if raw[0] in QUALIFIERS else ""
    body = raw[len(qualifier) :]
    cut = min((i for i in (body.find(":"), body.find("/")) if i >= 0), default=len(body))
    name, rest = body[:cut].lower(), body[cut:]
    if name not in MECHANISMS:
        raise _Bad(f"unknown mechanism '{body[:cut]}' (known: all, include, a, mx, ptr, ip4, ip6, exists)")
    text = qualifier + name + _lower(rest)
    qual = qualifier or "+"
    domain: str | None
    if name == "all":
        if rest:
            raise _Bad("`all` takes no argument")
        return Term(name, text, column, qualifier=qual)
    if name in ("include", "exists"):
        if not rest.startswith(":") or len(rest) == 1:
            raise _Bad(f"`{name}` needs a domain: {name}:example.com")
        domain, macro = _domain_spec(rest[1:])
        return Term(name, text, column, qualifier=qual, domain=domain, macro=macro)
    if name == "ptr":
        if not rest:
            return Term(name, text, column, qualifier=qual)
        if not rest.startswith(":") or len(rest) == 1:
            raise _Bad("`ptr` takes no CIDR length; write ptr or ptr:example.com")
        domain, macro = _domain_spec(rest[1:])
        return Term(name, text, column, qualifier=qual, domain=domain, macro=macro)
    if name in ("ip4", "ip6"):
        return Term(name, text, column, qualifier=qual, network=_ip_network(name, rest))
    # a, mx: [":" domain-spec] [ip4-cidr-length] ["/" ip6-cidr-length]
    domain = None
    macro = False
    if rest.startswith(":"):
        found = _DUAL_CIDR.fullmatch(rest[1:])
        assert found is not None  # the pattern matches any text
        spec, v4, v6 = found.group(1), found.group(2), found.group(3)
        if not spec:
            raise _Bad(f"`{name}:` needs a domain after the colon")
        domain, macro = _domain_spec(spec)
    else:
        found = _DUAL_CIDR.fullmatch(rest)
        assert found is not None
        if found.group(1):
            raise _Bad(f"`{name}` takes ':domain' and CIDR lengths like /24 or //64, not '{rest}'")
        v4, v6 = found.group(2), found.group(3)
    return Term(
        name,
        text,
        column,
        qualifier=qual,
        domain=domain,
        macro=macro,
        v4_len=_length(v4, V4_BITS),
        v6_len=_length(v6, V6_BITS),
    )


def _length(text: str | None, bits: int) -> int:
    if text is None:
        return bits
    if (len(text) > 1 and text[0] == "0") or len(text) > 3 or int(text) > bits:
        raise _Bad(f"bad CIDR length /{text}: write 0 to {bits}, without leading zeros")
    return int(text)


def _ip_network(name: str, rest: str) -> Network:
    if not rest.startswith(":") or len(rest) == 1:
        raise _Bad(f"`{name}` needs a network: {name}:{'192.0.2.0/24' if name == 'ip4' else '2001:db8::/32'}")
    addr_text, slash, length = rest[1:].partition("/")
    family, bits = (4, V4_BITS) if name == "ip4" else (6, V6_BITS)
    try:
        addr = parse_v4(addr_text) if family == 4 else parse_v6(addr_text)
    except AddressError as exc:
        raise _Bad(exc.message) from None
    plen = _length(length, bits) if slash else bits
    if slash and not length:
        raise _Bad(f"an empty CIDR length after '/': write {name}:{addr_text}/{bits // 2}")
    size = 1 << (bits - plen)
    start = addr - addr % size  # receivers compare the prefix only: host bits are ignored
    return Network(family, start, start + size - 1)


def _macro_string(text: str, *, exp: bool) -> bool:
    """Check every `%` of a macro-string (RFC 7208 7.1); True when it holds a `%{...}` macro."""
    at = 0
    macro = False
    while (at := text.find("%", at)) >= 0:
        nxt = text[at + 1 : at + 2]
        if nxt in ("%", "_", "-"):
            at += 2
            continue
        found = _MACRO.match(text, at)
        if nxt != "{" or found is None:
            raise _Bad("a '%' must start a macro like %{d} or be written %%, %_ or %-")
        if not exp and found.group(1).lower() not in _DOMAIN_LETTERS:
            raise _Bad(f"macro letter '{found.group(1)}' is only allowed in exp= texts")
        if found.group(2) and int(found.group(2)) == 0:
            raise _Bad("a macro's digit transformer must be 1 or more")
        macro = True
        at = found.end()
    return macro


def _domain_spec(text: str, *, exp: bool = False) -> tuple[str, bool]:
    """(the domain in lower case, escapes applied; holds a macro) of a domain-spec (RFC 7208 7.1)."""
    macro = _macro_string(text, exp=exp)
    if macro and text.endswith("}") and any(m.end() == len(text) for m in _MACRO.finditer(text)):
        return _lower(text), True  # the domain-end is a macro-expand
    name = text[:-1] if text.endswith(".") else text
    top = name.rpartition(".")[2]
    if "." not in name or not _TOPLABEL.fullmatch(top):
        raise _Bad(f"'{text}' is not a domain: it must end in a top label like .com (not all digits)")
    if macro:
        return _lower(text), True
    literal = name.replace("%%", "\x00").replace("%_", " ").replace("%-", "%20").replace("\x00", "%").lower()
    labels = literal.split(".")
    if any(not 0 < len(label) < 64 for label in labels) or len(literal) > 253:
        raise _Bad(f"'{text}' is not a DNS name (labels of 1-63 characters, at most 253 in all)")
    return literal, False


def _lower(text: str) -> str:
    """Lower case outside `%{...}` macros (a macro letter's case means URL-escaping)."""
    out: list[str] = []
    at = 0
    for found in _MACRO.finditer(text):
        out.append(text[at : found.start()].lower())
        out.append(found.group(0))
        at = found.end()
    out.append(text[at:].lower())
    return "".join(out)
