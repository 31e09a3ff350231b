"""Email addresses in hashed lists: their syntax, the normalisation, and the DNS label of each.

A zone of kind `email` (zones.yaml `kind: email`, docs/design.md section 8) lists addresses
as hashes: a client (SpamAssassin's HashBL, rspamd's rbl module) normalises an address it
finds, hashes it and asks for `<hash>[.<suffix>].<zone>`. A zone and its clients must
normalise alike, so the whole rule is here, in one place, and the README's table says it:

1. the domain: lower case, an IDN as its A-label (IDNA 2008), then `aliases` (googlemail.com
   -> gmail.com);
2. the local part: lower case; its dots removed when the domain is in `strip_dots`; then from
   the first `+` on removed when the domain is in `strip_tags` and the `+` is not its first
   character (rspamd's rule; SpamAssassin's `notag` also cuts a leading `+`);
3. `local@domain` hashed: md5 or sha1 as lower-case hex, sha256 as lower-case RFC 4648 base32
   without padding (52 characters, SpamAssassin's form: 64 hex digits do not fit a DNS label).

Pure: no I/O, no clock. Errors are `AddressError`s with a problem code and a fix.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from publisher import codes
from publisher.addresses import AddressError, normalize_domain, parse_network

Algorithm = Literal["md5", "sha1", "sha256"]
#: Every hash a zone may use: digest bytes and the label's encoding.
ALGORITHMS: dict[str, tuple[int, Literal["hex", "base32"]]] = {
    "md5": (16, "hex"),
    "sha1": (20, "hex"),
    "sha256": (32, "base32"),
}
#: Characters of a hash label, by algorithm (md5, sha1: hex; sha256: base32).
LABEL_LENGTH: dict[str, int] = {"md5": 32, "sha1": 40, "sha256": 52}
#: Every domain (strip_tags / strip_dots `all`).
ALL = "*"

#: RFC 5322 atext: what a dot-string local part is made of (RFC 5321 section 4.1.2).
_ATEXT = "A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
_LOCAL = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*\Z")
_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-.")
_HEX = re.compile(r"[0-9a-f]+\Z")
_B32 = re.compile(r"[a-z2-7]+\Z")
#: RFC 5321 section 4.5.3.1: 64 octets of local part; a path of 256 octets, <> included.
MAX_LOCAL = 64
MAX_ADDRESS = 254


@dataclass(frozen=True, slots=True)
class EmailSettings:
    """A zone's zones.yaml `email:`: how its clients hash an address and where the hash goes."""

    hash: Algorithm = "sha1"
    #: Labels between the hash and the zone (Spamhaus HBL: `_email`); "" for none.
    suffix: str = ""
    #: Domains whose `+tag` is cut (ALL: every domain); after `aliases`.
    strip_tags: tuple[str, ...] = (ALL,)
    #: Domains whose local part loses its dots (ALL: every domain); after `aliases`.
    strip_dots: tuple[str, ...] = ("gmail.com",)
    #: Domain -> the domain it is hashed as.
    aliases: tuple[tuple[str, str], ...] = (("googlemail.com", "gmail.com"),)

    def strips_tags(self, domain: str) -> bool:
        return ALL in self.strip_tags or domain in self.strip_tags

    def strips_dots(self, domain: str) -> bool:
        return ALL in self.strip_dots or domain in self.strip_dots

    def alias(self, domain: str) -> str:
        return next((to for frm, to in self.aliases if frm == domain), domain)

    def name_of(self, label: str) -> str:
        """A hash label -> the name relative to the zone (`<label>.<suffix>`)."""
        return f"{label}.{self.suffix}" if self.suffix else label


def split_address(text: str) -> tuple[str, str]:
    """`Drop.Box+x@Fraud.EXAMPLE` -> ('Drop.Box+x', 'fraud.example'): the address checked against
    RFC 5321 (a dot-string local part, a host name domain; an IDN domain becomes its A-label).
    Raises AddressError (codes.BAD_EMAIL) naming what is wrong and how to write it."""
    raw = text.strip()
    if raw.startswith("<") and raw.endswith(">"):
        raw = raw[1:-1].strip()
    if raw.lower().startswith("mailto:"):
        raise AddressError(f"'{text}' is a mailto: link", f"write the address alone: {raw[7:]}", codes.BAD_EMAIL)
    at = raw.rfind("@")
    if at < 0:
        raise AddressError(f"'{text}' is not an email address (no '@')", "write it as local@domain", codes.BAD_EMAIL)
    local, host = raw[:at], raw[at + 1 :]
    if not host:
        raise AddressError(
            f"'{text}' has nothing after '@'", f"write the domain after '@', like {raw}fraud.example", codes.BAD_EMAIL
        )
    if local.startswith('"'):
        raise AddressError(
            f"'{text}' has a quoted local part",
            "list the address as clients extract it: SpamAssassin and rspamd do not query quoted local parts",
            codes.BAD_EMAIL,
        )
    if not local:
        raise AddressError(f"'{text}' has an empty local part", "write the part before '@'", codes.BAD_EMAIL)
    if not local.isascii():
        raise AddressError(
            f"'{text}' has a non-ASCII local part",
            "write an ASCII local part (RFC 5321); internationalised local parts (RFC 6531) are not listed",
            codes.BAD_EMAIL,
        )
    if "@" in local:
        raise AddressError(f"'{text}' has more than one '@'", "write one address per entry", codes.BAD_EMAIL)
    if len(local) > MAX_LOCAL:
        raise AddressError(
            f"'{text}' has a local part of {len(local)} characters; RFC 5321 allows {MAX_LOCAL}",
            "check the address: no mailbox has a longer one",
            codes.BAD_EMAIL,
        )
    if not _LOCAL.match(local):
        bad = sorted(set(local) - _LOCAL_CHARS)
        why = (
            f"characters not allowed in an unquoted local part: {''.join(bad)!r}"
            if bad
            else "a local part that starts or ends with '.' or has '..'"
        )
        fix = (
            "an unquoted local part is letters, digits and !#$%&'*+/=?^_`{|}~- between single dots; "
            "check the address for a typing error or a stray character"
        )
        raise AddressError(f"'{text}' has {why}", fix, codes.BAD_EMAIL)
    if host.startswith("["):
        raise AddressError(
            f"'{text}' has an address literal for its domain",
            "list the sending IP address in an ip zone instead",
            codes.BAD_EMAIL,
        )
    try:
        domain, wild = normalize_domain(host)
    except AddressError as exc:
        raise AddressError(f"'{text}': {exc.message}", exc.fix, codes.BAD_EMAIL) from None
    if wild or "." not in domain:
        raise AddressError(
            f"'{text}' has no full domain after '@'",
            "write the whole domain, like drop@fraud.example (list a domain in a domain zone)",
            codes.BAD_EMAIL,
        )
    if len(local) + 1 + len(domain) > MAX_ADDRESS:
        raise AddressError(
            f"'{text}' is longer than {MAX_ADDRESS} characters (RFC 5321)", "check the address", codes.BAD_EMAIL
        )
    return local, domain


def normalise(local: str, domain: str, settings: EmailSettings) -> str:
    """The text a client hashes for the address (module docstring, steps 1-2): `domain` as
    split_address gives it (lower case, A-label)."""
    domain = settings.alias(domain)
    local = local.lower()
    if settings.strips_dots(domain):
        local = local.replace(".", "")
    if settings.strips_tags(domain):
        plus = local.find("+")
        if plus > 0:
            local = local[:plus]
    return f"{local}@{domain}"


def hash_label(normalised: str, algorithm: str) -> str:
    """The DNS label of a normalised address (step 3)."""
    data = normalised.encode("utf-8")
    if algorithm == "sha256":
        return base64.b32encode(hashlib.sha256(data).digest()).decode("ascii").rstrip("=").lower()
    return hashlib.new(algorithm, data, usedforsecurity=False).hexdigest()


def address_name(text: str, settings: EmailSettings) -> tuple[str, str]:
    """An address as written -> (its normalised form, its name relative to the zone)."""
    normalised = normalise(*split_address(text), settings)
    return normalised, settings.name_of(hash_label(normalised, settings.hash))


def label_digest(label: str, algorithm: str) -> bytes | None:
    """A hash label (lower case) -> the digest it encodes; None for anything that is not one
    label of exactly this algorithm's form (the server answers NXDOMAIN then)."""
    size, encoding = ALGORITHMS[algorithm]
    if encoding == "hex":
        if len(label) != 2 * size or not _HEX.match(label):
            return None
        return bytes.fromhex(label)
    if len(label) != LABEL_LENGTH[algorithm] or not _B32.match(label):
        return None
    digest = base64.b32decode(label.upper() + "=" * (-len(label) % 8))
    # the last character carries 4 unused bits: only the encoding with them zero is the label
    return digest if digest_label(digest, algorithm) == label else None


def digest_label(digest: bytes, algorithm: str) -> str:
    """A digest -> its DNS label (the inverse of label_digest)."""
    if ALGORITHMS[algorithm][1] == "hex":
        return digest.hex()
    return base64.b32encode(digest).decode("ascii").rstrip("=").lower()


def _looks_like(text: str) -> str | None:
    """What hash a hex or base32 text of this length would be ("a sha1"), or None."""
    if _HEX.match(text):
        return {32: "an md5", 40: "a sha1", 64: "a sha256 in hex"}.get(len(text))
    if _B32.match(text) and len(text) == LABEL_LENGTH["sha256"]:
        return "a sha256 (base32)"
    return None


def feed_label(text: str, algorithm: str) -> str:
    """A ready hash as a feed shares it -> the zone's label. A sha256 zone also takes the
    64 hex digits most feeds write and turns them into its base32 label. Raises AddressError
    (codes.BAD_HASH) for a hash of another algorithm or length, saying which it looks like."""
    raw = text.strip().lower()
    if label_digest(raw, algorithm) is not None:
        return raw
    if algorithm == "sha256" and len(raw) == 64 and _HEX.match(raw):
        return digest_label(bytes.fromhex(raw), "sha256")
    want = (
        f"{LABEL_LENGTH[algorithm]} hex digits"
        if ALGORITHMS[algorithm][1] == "hex"
        else "52 base32 characters or 64 hex digits"
    )
    looks = _looks_like(raw)
    if looks is None:
        try:
            parse_network(raw)
        except AddressError:
            pass
        else:
            raise AddressError(
                f"'{text.strip()}' is an IP address, not an email address or a hash",
                "list addresses and networks in an ip zone's files",
                codes.BAD_HASH,
            )
        raise AddressError(
            f"'{text.strip()}' is neither an email address (it has no '@') nor a {algorithm} hash ({want})",
            "write the whole address, like drop@fraud.example, or the hash a feed gives",
            codes.BAD_HASH,
        )
    raise AddressError(
        f"'{text.strip()}' looks like {looks}, but this zone hashes with {algorithm} ({want})",
        f"list {algorithm} hashes here, or the addresses themselves (the zone hashes them)",
        codes.BAD_HASH,
    )
