"""CompiledZone <-> snapshot bytes: what the server loads (artifacts write it, serve reads it).

Loading must be an array read, not a parse: a million intervals load in a few
tens of milliseconds. Layout (all integers of the fixed part little-endian):

    magic  b"PUBSNAP\\0"       8 bytes
    version                   u16
    reserved                  u16 (0)
    header length             u32
    header CRC-32             u32
    header                    JSON, UTF-8: zone info with serial, answers table,
                              byte order of the arrays, CRC-32 of the body, and the
                              sections (name, typecode, item size, count)
    padding to 8 bytes
    body                      each section's raw bytes, each padded to 8 bytes

Array sections are `array.tobytes()` in the writer's byte order (byteswapped on
load when the reader's differs). Domain names are newline-joined UTF-8 blobs,
sorted, so that the same zone always gives the same bytes (artifacts hash them).

An email zone (kind `email`) adds three sections, its HashTable as it is in memory:
`email_heads` (Q, the digests' first 8 bytes as big-endian integers, sorted),
`email_tails` (blob, the other digest bytes), `email_values` (I, answer indexes), and
`email: {hash, suffix}` in the header; its `dom_exact` sections hold
the test point only. Version 1 still: an ip or domain zone's bytes are unchanged, and a
reader that predates email zones refuses one by its kind ("unknown zone kind").
Anything short, long or inconsistent raises `SnapshotError`, never a bare error.
"""

from __future__ import annotations

import json
import struct
import sys
import zlib
from array import array
from pathlib import Path
from typing import Any

from publisher.compile.hashes import HashTable
from publisher.compile.zone import Answer, CompiledZone, ZoneInfo
from publisher.emails import ALGORITHMS
from publisher.errors import SnapshotError
from publisher.model import NameServer, Soa

MAGIC = b"PUBSNAP\x00"
VERSION = 1
_FIXED = struct.Struct("<8sHHII")
_ALIGN = 8
_BLOB = "blob"

# (section name, CompiledZone attribute, array typecode); order = order in the body.
_ARRAYS = (
    ("v4_start", "I"),
    ("v4_end", "I"),
    ("v4_value", "I"),
    ("v6_start_hi", "Q"),
    ("v6_start_lo", "Q"),
    ("v6_end_hi", "Q"),
    ("v6_end_lo", "Q"),
    ("v6_value", "I"),
)


def _pad(n: int) -> int:
    return -n % _ALIGN


def _info_json(info: ZoneInfo) -> dict[str, Any]:
    soa = info.soa
    return {
        "name": info.name,
        "kind": info.kind,
        "role": info.role,
        "ttl": info.ttl,
        "serial": info.serial,
        "soa": {
            "mname": soa.mname,
            "rname": soa.rname,
            "refresh": soa.refresh,
            "retry": soa.retry,
            "expire": soa.expire,
            "minimum": soa.minimum,
        },
        "ns": [{"name": ns.name, "addresses": list(ns.addresses)} for ns in info.ns],
    }


def dump_snapshot(zone: CompiledZone) -> bytes:
    """The zone as snapshot bytes; the same zone always gives the same bytes."""
    sections: list[list[Any]] = []
    chunks: list[bytes] = []

    def add(name: str, typecode: str, itemsize: int, count: int, raw: bytes) -> None:
        sections.append([name, typecode, itemsize, count])
        chunks.append(raw)
        chunks.append(b"\x00" * _pad(len(raw)))

    for name, typecode in _ARRAYS:
        arr = getattr(zone, name)
        if arr.typecode != typecode:  # the zone was built with other types: normalise
            arr = array(typecode, arr)
        add(name, typecode, arr.itemsize, len(arr), arr.tobytes())
    exact = zone.dom_exact.extra if isinstance(zone.dom_exact, HashTable) else zone.dom_exact
    for name, mapping in (("dom_exact", exact), ("dom_wild", zone.dom_wild)):
        keys = sorted(mapping)
        blob = "\n".join(keys).encode("utf-8")
        add(f"{name}_names", _BLOB, 1, len(blob), blob)
        values = array("i", [mapping[k] for k in keys])
        add(f"{name}_values", "i", values.itemsize, len(values), values.tobytes())
    ents = "\n".join(sorted(zone.dom_ents)).encode("utf-8")
    add("dom_ents_names", _BLOB, 1, len(ents), ents)
    table = zone.dom_exact
    extra: dict[str, Any] = {}
    if isinstance(table, HashTable):
        heads = table.heads if table.heads.typecode == "Q" else array("Q", table.heads)
        add("email_heads", "Q", heads.itemsize, len(heads), heads.tobytes())
        add("email_tails", _BLOB, 1, len(table.tails), table.tails)
        values = table.indexes if table.indexes.typecode == "I" else array("I", table.indexes)
        add("email_values", "I", values.itemsize, len(values), values.tobytes())
        extra["email"] = {"hash": table.algorithm, "suffix": table.suffix}

    body = b"".join(chunks)
    header = json.dumps(
        {
            **extra,
            "byteorder": sys.byteorder,
            "info": _info_json(zone.info),
            "answers": [[list(a.codes), list(a.txts)] for a in zone.answers],
            "sections": sections,
            "counts": {
                "dom_exact": len(exact),
                "dom_wild": len(zone.dom_wild),
                "dom_ents": len(zone.dom_ents),
            },
            "body_length": len(body),
            "body_crc32": zlib.crc32(body),
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
    fixed = _FIXED.pack(MAGIC, VERSION, 0, len(header), zlib.crc32(header))
    return fixed + header + b"\x00" * _pad(len(fixed) + len(header)) + body


# --- loading ----------------------------------------------------------------------


def _bad(message: str) -> SnapshotError:
    return SnapshotError(f"snapshot is unusable: {message}")


def _info_from(raw: Any) -> ZoneInfo:
    try:
        soa = raw["soa"]
        info = ZoneInfo(
            name=str(raw["name"]),
            kind=raw["kind"],
            role=raw["role"],
            ttl=int(raw["ttl"]),
            soa=Soa(
                str(soa["mname"]),
                str(soa["rname"]),
                int(soa["refresh"]),
                int(soa["retry"]),
                int(soa["expire"]),
                int(soa["minimum"]),
            ),
            ns=tuple(NameServer(str(ns["name"]), tuple(str(a) for a in ns["addresses"])) for ns in raw["ns"]),
            serial=int(raw["serial"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(f"the zone information in the header is incomplete ({exc!r})") from None
    if info.kind not in ("ip", "domain", "email") or info.role not in ("block", "allow"):
        raise _bad(f"unknown zone kind/role {info.kind!r}/{info.role!r}")
    return info


def _answers_from(raw: Any) -> tuple[Answer, ...]:
    try:
        answers = tuple(Answer(tuple(int(c) for c in codes), tuple(str(t) for t in txts)) for codes, txts in raw)
    except (TypeError, ValueError) as exc:
        raise _bad(f"the answers table in the header is malformed ({exc!r})") from None
    for i, a in enumerate(answers):
        if len(a.codes) != len(a.txts):
            raise _bad(f"answer {i} has {len(a.codes)} codes but {len(a.txts)} TXT strings")
    return answers


def _split_names(blob: memoryview, count: int, what: str) -> list[str]:
    if count == 0:
        if len(blob):
            raise _bad(f"{what}: names present but the header counts none")
        return []
    try:
        names = bytes(blob).decode("utf-8").split("\n")
    except UnicodeDecodeError:
        raise _bad(f"{what}: names are not valid UTF-8") from None
    if len(names) != count:
        raise _bad(f"{what}: {len(names)} names, the header says {count}")
    return names


def load_snapshot(data: bytes) -> CompiledZone:
    """Rebuild the CompiledZone from snapshot bytes (raises SnapshotError when unusable)."""
    try:
        return _load(memoryview(data))
    except SnapshotError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        # The checks in _load name the usual damage; this catches what they cannot foresee.
        raise _bad(f"its content is malformed ({exc!r})") from None


def _load(view: memoryview) -> CompiledZone:
    if len(view) < _FIXED.size:
        raise _bad(f"{len(view)} bytes is shorter than the {_FIXED.size}-byte fixed header (truncated?)")
    magic, version, _, header_len, header_crc = _FIXED.unpack_from(view)
    if magic != MAGIC:
        raise _bad("it does not start with the snapshot magic (not a publisher snapshot)")
    if version != VERSION:
        raise _bad(f"format version {version}, this publisher reads version {VERSION}; recompile the zones")
    body_at = _FIXED.size + header_len
    body_at += _pad(body_at)
    if body_at > len(view):
        raise _bad(f"the header claims {header_len} bytes but the file ends first (truncated)")
    raw_header = view[_FIXED.size : _FIXED.size + header_len]
    if zlib.crc32(raw_header) != header_crc:
        raise _bad("the header's CRC-32 does not match (file corrupted)")
    try:
        header = json.loads(bytes(raw_header).decode("utf-8"))
        sections = [(str(n), str(t), int(s), int(c)) for n, t, s, c in header["sections"]]
        body_length = int(header["body_length"])
        crc = int(header["body_crc32"])
        byteorder = header["byteorder"]
        counts = {k: int(v) for k, v in header["counts"].items()}
        raw_info, raw_answers = header["info"], header["answers"]
        email = header.get("email")
    except (ValueError, KeyError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError too
        raise _bad(f"the header is not valid ({exc!r})") from None
    if byteorder not in ("little", "big"):
        raise _bad(f"unknown byte order {byteorder!r}")
    body = view[body_at:]
    if len(body) != body_length:
        state = "truncated" if len(body) < body_length else "has trailing bytes"
        raise _bad(f"the body is {len(body)} bytes, the header says {body_length} (file {state})")
    if zlib.crc32(body) != crc:
        raise _bad("the body's CRC-32 does not match the header (file corrupted)")

    info = _info_from(raw_info)
    answers = _answers_from(raw_answers)
    parts: dict[str, memoryview | array[int]] = {}
    offset = 0
    for name, typecode, itemsize, count in sections:
        if count < 0:
            raise _bad(f"section {name} has a negative length")
        if typecode == _BLOB:
            nbytes = count
        else:
            try:
                probe = array(typecode)
            except (ValueError, TypeError):
                raise _bad(f"section {name} has an unknown array type {typecode!r}") from None
            if probe.itemsize != itemsize:
                raise _bad(f"section {name}: items of {itemsize} bytes, this machine uses {probe.itemsize}")
            nbytes = count * itemsize
        if offset + nbytes > len(body):
            raise _bad(f"section {name} runs past the end of the body")
        raw = body[offset : offset + nbytes]
        offset += nbytes + _pad(nbytes)
        if typecode == _BLOB:
            parts[name] = raw
        else:
            arr = array(typecode)
            arr.frombytes(raw)
            if byteorder != sys.byteorder:
                arr.byteswap()
            parts[name] = arr
    if offset != len(body):
        raise _bad("the sections do not add up to the body length")
    zone = _assemble(info, answers, parts, counts)
    if info.kind == "email":
        return _email(zone, email, parts)
    return zone


def _array(parts: dict[str, memoryview | array[int]], name: str, typecode: str) -> array[int]:
    arr = parts.get(name)
    if not isinstance(arr, array) or arr.typecode != typecode:
        raise _bad(f"section {name} is missing or has the wrong type")
    return arr


def _assemble(
    info: ZoneInfo,
    answers: tuple[Answer, ...],
    parts: dict[str, memoryview | array[int]],
    counts: dict[str, int],
) -> CompiledZone:
    arrays = {name: _array(parts, name, typecode) for name, typecode in _ARRAYS}
    families = (("v4", ("start", "end", "value")), ("v6", ("start_hi", "start_lo", "end_hi", "end_lo", "value")))
    for family, names in families:
        lengths = {len(arrays[f"{family}_{n}"]) for n in names}
        if len(lengths) != 1:
            raise _bad(f"the {family} arrays have different lengths {sorted(lengths)}")
        values = arrays[f"{family}_value"]
        if len(values) and max(values) >= len(answers):  # an index the server would fail on
            raise _bad(f"a {family} interval points at answer {max(values)}, there are {len(answers)}")
    dicts: dict[str, dict[str, int]] = {}
    for name in ("dom_exact", "dom_wild"):
        blob = parts.get(f"{name}_names")
        if not isinstance(blob, memoryview):
            raise _bad(f"section {name}_names is missing")
        values = _array(parts, f"{name}_values", "i")
        keys = _split_names(blob, len(values), name)
        if len(keys) != counts.get(name, -1):
            raise _bad(f"{name}: {len(keys)} names, the header counts {counts.get(name)}")
        if len(values) and (min(values) < -1 or max(values) >= len(answers)):
            raise _bad(f"{name} points outside the answers table")
        dicts[name] = dict(zip(keys, values))
    ents_blob = parts.get("dom_ents_names")
    if not isinstance(ents_blob, memoryview):
        raise _bad("section dom_ents_names is missing")
    ents = frozenset(_split_names(ents_blob, counts.get("dom_ents", 0), "dom_ents"))
    return CompiledZone(
        info,
        answers,
        dom_exact=dicts["dom_exact"],
        dom_wild=dicts["dom_wild"],
        dom_ents=ents,
        **arrays,
    )


def _email(zone: CompiledZone, email: Any, parts: dict[str, memoryview | array[int]]) -> CompiledZone:
    """An email zone's HashTable from its sections (the test point is in `dom_exact`)."""
    if not isinstance(email, dict) or email.get("hash") not in ALGORITHMS or not isinstance(email.get("suffix"), str):
        raise _bad(f"an email zone without its hash and suffix in the header ({email!r})")
    heads = _array(parts, "email_heads", "Q")
    values = _array(parts, "email_values", "I")
    tails = parts.get("email_tails")
    if not isinstance(tails, memoryview):
        raise _bad("section email_tails is missing")
    if len(values) and max(values) >= len(zone.answers):
        raise _bad(f"a hash points at answer {max(values)}, there are {len(zone.answers)}")
    try:
        table = HashTable(email["hash"], email["suffix"], heads, bytes(tails), values, zone.dom_exact)
    except ValueError as exc:
        raise _bad(str(exc)) from None
    return CompiledZone(zone.info, zone.answers, dom_exact=table, dom_ents=zone.dom_ents)


def read_snapshot(path: str | Path) -> CompiledZone:
    """Read and load a snapshot file; unreadable or unusable files raise SnapshotError."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read snapshot: {exc.strerror or exc}") from exc
    try:
        return load_snapshot(data)
    except SnapshotError as exc:
        raise SnapshotError(f"{path}: {exc}") from None
