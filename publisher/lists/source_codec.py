"""A parsed list file (`SourceData`) <-> bytes, for the parse cache of publish (publish/cache.py). Pure.

The layout is a fixed head, a JSON header and a payload:

    MAGIC (8 bytes) | version (u32 LE) | header length (u32 LE) | sha256 (32 bytes) | header | payload

The sha256 covers the header and the payload, so a flipped byte anywhere past the
head, a truncated file or a stray tail is caught before anything is trusted. The
row arrays travel as their raw bytes (`array.tobytes`, in this machine's byte order,
which the header records), IPv6 bounds as 16 bytes each, domain names as one
newline-separated UTF-8 text; values, entries (with their SPF `via`), problems, partners
declared by SPF and a generated file's header as JSON. No pickle:
decoding only ever builds plain values. Anything wrong raises `CodecError`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import struct
import sys
from array import array
from collections.abc import Mapping, Sized
from typing import Any

from publisher.addresses import Network
from publisher.errors import Location, Problem, PublisherError, Severity
from publisher.model import EntryMeta, SourceData, Value
from publisher.partners import Generated, Partner, SpfFilter

__all__ = ["CODEC_VERSION", "CodecError", "decode_source", "encode_source"]

MAGIC = b"PUBSRC\r\n"
#: Bump whenever the layout or the meaning of a field changes: older entries are then refused.
CODEC_VERSION = 2
_HEAD = struct.Struct("<8sII32s")

#: (name, typecode) of the array columns, in payload order.
_ARRAYS = (
    ("v4_start", "I"),
    ("v4_end", "I"),
    ("v4_value", "i"),
    ("v4_line", "I"),
    ("v6_value", "i"),
    ("v6_line", "I"),
    ("dom_value", "i"),
    ("dom_line", "I"),
)


class CodecError(PublisherError):
    """Bytes that are not a whole, intact encoding of this version."""


def encode_source(source: SourceData, meta: Mapping[str, Any] | None = None) -> bytes:
    """`source` (and `meta`, any JSON-able mapping the caller wants back) as bytes."""
    parts: list[tuple[str, bytes]] = []
    for name, _ in _ARRAYS:
        parts.append((name, getattr(source, name).tobytes()))
    parts.append(("v6_start", b"".join(x.to_bytes(16, "big") for x in source.v6_start)))
    parts.append(("v6_end", b"".join(x.to_bytes(16, "big") for x in source.v6_end)))
    parts.append(("dom_name", "\n".join(source.dom_name).encode("utf-8")))
    parts.append(("dom_wild", bytes(source.dom_wild)))
    header = {
        "path": source.path,
        "byteorder": sys.byteorder,
        "itemsize": {code: array(code).itemsize for _, code in _ARRAYS},
        "counts": [len(source.v4_start), len(source.v6_start), len(source.dom_name)],
        "sections": [[name, len(data)] for name, data in parts],
        "values": [_value_out(v) for v in source.values],
        "entries": [_entry_out(e) for e in source.entries.values()],
        "problems": [_problem_out(p) for p in source.problems],
        "partners": [_partner_out(p) for p in source.partners],
        "generated": _generated_out(source.generated) if source.generated is not None else None,
        "meta": dict(meta or {}),
    }
    head_bytes = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    digest = hashlib.sha256(head_bytes)
    for _, data in parts:
        digest.update(data)
    return b"".join(
        [_HEAD.pack(MAGIC, CODEC_VERSION, len(head_bytes), digest.digest()), head_bytes] + [d for _, d in parts]
    )


def decode_source(data: bytes) -> tuple[SourceData, dict[str, Any]]:
    """Bytes from `encode_source` -> (the SourceData, its meta); CodecError for anything else."""
    if len(data) < _HEAD.size:
        raise CodecError(f"truncated: {len(data)} bytes, shorter than the {_HEAD.size}-byte head")
    magic, version, head_len, digest = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise CodecError("not a cached parse (wrong magic)")
    if version != CODEC_VERSION:
        raise CodecError(f"written by codec version {version}, this is version {CODEC_VERSION}")
    view = memoryview(data)[_HEAD.size :]
    if hashlib.sha256(view).digest() != digest:
        raise CodecError("checksum mismatch (truncated or corrupt)")
    try:
        header = json.loads(bytes(view[:head_len]).decode("ascii"))
        return _build(header, view[head_len:]), dict(header["meta"])
    except CodecError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, OverflowError) as exc:
        raise CodecError(f"malformed header: {exc}") from exc


def _build(header: dict[str, Any], payload: memoryview) -> SourceData:
    if header["byteorder"] != sys.byteorder:
        raise CodecError(f"written on a {header['byteorder']}-endian machine")
    sections: dict[str, memoryview] = {}
    pos = 0
    for name, length in header["sections"]:
        sections[str(name)] = payload[pos : pos + int(length)]
        pos += int(length)
    if pos != len(payload):
        raise CodecError(f"payload is {len(payload)} bytes, the header says {pos}")
    n4, n6, nd = (int(n) for n in header["counts"])
    src = SourceData(str(header["path"]))
    for name, code in _ARRAYS:
        column: array[int] = array(code)
        if column.itemsize != header["itemsize"][code]:
            raise CodecError(f"array item size of '{code}' differs on this machine")
        column.frombytes(sections[name])
        setattr(src, name, column)
    v6s, v6e = sections["v6_start"], sections["v6_end"]
    src.v6_start = [int.from_bytes(v6s[i : i + 16], "big") for i in range(0, len(v6s), 16)]
    src.v6_end = [int.from_bytes(v6e[i : i + 16], "big") for i in range(0, len(v6e), 16)]
    names = bytes(sections["dom_name"]).decode("utf-8")
    src.dom_name = names.split("\n") if nd else []
    src.dom_wild = bytearray(sections["dom_wild"])
    lengths: dict[int, tuple[Sized, ...]] = {
        4: (src.v4_start, src.v4_end, src.v4_value, src.v4_line),
        6: (src.v6_start, src.v6_end, src.v6_value, src.v6_line),
        0: (src.dom_name, src.dom_wild, src.dom_value, src.dom_line),
    }
    for family, want in ((4, n4), (6, n6), (0, nd)):
        if any(len(column) != want for column in lengths[family]):
            raise CodecError(f"the columns of family {family} do not hold {want} rows each")
    src.values = [_value_in(v) for v in header["values"]]
    for item in header["entries"]:
        entry = _entry_in(item)
        src.entries[entry.line] = entry
    src.problems = [_problem_in(p) for p in header["problems"]]
    src.partners = [_partner_in(p) for p in header["partners"]]
    src.generated = _generated_in(header["generated"]) if header["generated"] is not None else None
    return src


def _value_out(v: Value) -> list[Any]:
    return [v.code, v.reason, v.expires.isoformat() if v.expires is not None else None, v.exclude]


def _value_in(item: list[Any]) -> Value:
    code, reason, expires, exclude = item
    when = dt.datetime.fromisoformat(expires) if expires is not None else None
    return Value(int(code), str(reason), when, bool(exclude))


_ENTRY_FIELDS = ("line", "col", "text", "value", "added", "by", "ticket", "owner", "contact", "allow_broad", "via")


def _entry_out(e: EntryMeta) -> list[Any]:
    return [getattr(e, name) for name in _ENTRY_FIELDS]


def _entry_in(item: list[Any]) -> EntryMeta:
    if len(item) != len(_ENTRY_FIELDS):
        raise CodecError("an entry record has the wrong number of fields")
    return EntryMeta(**dict(zip(_ENTRY_FIELDS, item)))


def _where_out(loc: Location) -> list[Any]:
    return [loc.path, loc.line, loc.col]


def _where_in(item: list[Any]) -> Location:
    path, line, col = item
    return Location(str(path), line if line is None else int(line), col if col is None else int(col))


def _problem_out(p: Problem) -> list[Any]:
    related = [[label, *_where_out(where)] for label, where in p.related]
    return [_where_out(p.location), p.code, p.message, p.fix, related, p.severity.value]


def _problem_in(item: list[Any]) -> Problem:
    where, code, message, fix, related, severity = item
    return Problem(
        _where_in(where),
        str(code),
        str(message),
        fix if fix is None else str(fix),
        tuple((str(r[0]), _where_in(r[1:])) for r in related),
        Severity(severity),
    )


#: Partner fields in record order; `location` and the filters travel in their own forms.
_PARTNER_FIELDS = ("domain", "owner", "code", "reason", "contact", "ticket", "by", "added")
_PARTNER_LIMITS = ("max_prefix_v4", "max_prefix_v6")


def _filter_out(f: SpfFilter) -> list[Any]:
    net = [f.network.family, str(f.network.start), str(f.network.end)] if f.network is not None else None
    return [f.text, net, f.domain]


def _filter_in(item: list[Any]) -> SpfFilter:
    text, net, domain = item
    network = Network(int(net[0]), int(net[1]), int(net[2])) if net is not None else None
    return SpfFilter(str(text), network, domain if domain is None else str(domain))


def _partner_out(p: Partner) -> list[Any]:
    return [
        [getattr(p, name) for name in _PARTNER_FIELDS],
        _where_out(p.location),
        [getattr(p, name) for name in _PARTNER_LIMITS],
        [_filter_out(f) for f in p.include],
        [_filter_out(f) for f in p.exclude],
    ]


def _partner_in(item: list[Any]) -> Partner:
    fields, where, limits, include, exclude = item
    if len(fields) != len(_PARTNER_FIELDS) or len(limits) != len(_PARTNER_LIMITS):
        raise CodecError("a partner record has the wrong number of fields")
    return Partner(
        location=_where_in(where),
        include=tuple(_filter_in(f) for f in include),
        exclude=tuple(_filter_in(f) for f in exclude),
        **dict(zip(_PARTNER_FIELDS, fields)),
        **dict(zip(_PARTNER_LIMITS, limits)),
    )


_GENERATED_FIELDS = ("partner", "declared", "refreshed", "record", "status", "why", "since", "digest", "edited", "line")


def _generated_out(g: Generated) -> list[Any]:
    return [[getattr(g, name) for name in _GENERATED_FIELDS], list(g.not_listed)]


def _generated_in(item: list[Any]) -> Generated:
    fields, not_listed = item
    if len(fields) != len(_GENERATED_FIELDS):
        raise CodecError("a generated header record has the wrong number of fields")
    return Generated(not_listed=tuple(str(x) for x in not_listed), **dict(zip(_GENERATED_FIELDS, fields)))
