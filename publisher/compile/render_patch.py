"""Exports in proportion to the change: a zone's new `.zone` / `.rbldnsd` bytes from the
previous generation's file, re-rendering only the changed regions.

Pure: the caller (publish.artifacts) maps the old file, checks its sha256 against the
previous manifest, and writes what this returns: new bytes, and (start, end) spans of the
old file that it copies in the kernel (a 1M-entry `.zone` is 120 MB: never held twice).
Both files list the IPv4 data in address order, one owner (BIND) or range (rbldnsd) per
line, each group inside one interval (render.py, render_names.py); the regions (`changed_regions`) are widened to whole
intervals of both the old and the new zone. So outside them the old bytes are the new
bytes, and a binary search over the owner names of the old file finds where each region
starts and ends. The head differs only by the serial: it is rendered for the old serial
and must match the old file byte for byte, or nothing is patched.

Only IPv4 regions of ip zones are patched (a big feed's bulk); a change to IPv6 data or a
domain zone returns None and the caller renders the file in full.
"""

from __future__ import annotations

import mmap
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import replace

from publisher.compile import render
from publisher.compile.patch import merge_ranges
from publisher.compile.zone import CompiledZone
from publisher.model import Touched

_NOT_V4 = 1 << 40  # the key of any line after the IPv4 data
#: The old file: its bytes, or a read-only map of it (only the probed pages are read).
Buffer = bytes | mmap.mmap
Key = Callable[[Buffer, int], int]
#: A piece of the new file: new bytes, or a (start, end) span of the old file.
Run = bytes | tuple[int, int]


def _dotted(text: bytes) -> int | None:
    parts = text.split(b".")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        return None
    a, b, c, d = (int(p) for p in parts)
    return (a << 24) | (b << 16) | (c << 8) | d


def _bind_key(buf: Buffer, pos: int) -> int:
    """The first address of a BIND owner line: `d.c.b.a` or `*.c.b.a` (fewer octets)."""
    end = buf.find(b"\t", pos)
    labels = buf[pos:end].split(b".")
    wild = labels[0] == b"*"
    octets = labels[1:] if wild else labels
    if len(octets) > 4 or (not wild and len(octets) != 4) or not all(o.isdigit() for o in octets):
        return _NOT_V4
    addr = 0
    for o in reversed(octets):
        addr = (addr << 8) | int(o)
    return addr << (8 * (4 - len(octets)))


def _rbldnsd_key(buf: Buffer, pos: int) -> int:
    """The first address of an ip4set line: `a.b.c.d` or `a.b.c.d-e.f.g.h`."""
    end = buf.find(b" ", pos, buf.find(b"\n", pos))
    if end < 0:
        return _NOT_V4
    addr = _dotted(buf[pos:end].split(b"-")[0])
    return _NOT_V4 if addr is None else addr


def _owner_from(buf: Buffer, pos: int, hi: int) -> int:
    """The first owner line (a line not starting with a tab) starting at or after `pos`."""
    if pos and buf[pos - 1] != 0x0A:
        pos = buf.find(b"\n", pos, hi) + 1 or hi
    while pos < hi and buf[pos] == 0x09:
        pos = buf.find(b"\n", pos, hi) + 1 or hi
    return pos


def _seek(buf: Buffer, lo: int, hi: int, x: int, key: Key) -> int:
    """The first owner line in [lo, hi) whose key is >= x (hi if none); lo is a line start."""
    while lo < hi:
        mid = (lo + hi) // 2
        p = _owner_from(buf, mid, hi)
        if p >= hi:  # no line starts in [mid, hi): walk from lo
            while lo < hi and key(buf, lo) < x:
                lo = _owner_from(buf, lo + 1, hi)
            return lo
        if key(buf, p) >= x:
            hi = p
        else:
            lo = _owner_from(buf, p + 1, hi)
    return lo


def patch_export(
    kind: str, zone: CompiledZone, old: Buffer, old_serial: int, region: Touched | None
) -> list[Run] | None:
    """The new file (`kind` "bind" or "rbldnsd") as runs, or None: render it in full."""
    if region is None or zone.info.kind != "ip" or region.v6 or region.names:
        return None
    before = replace(zone, info=replace(zone.info, serial=old_serial))
    if kind == "bind":
        head_old, head_new, key = render.bind_head(before), render.bind_head(zone), _bind_key
        blocks = render._BindBlocks(zone.answers)

        def body(lo: int, hi: int) -> str:
            return render.bind_v4(zone, blocks, lo, hi)
    else:
        head_old, head_new, key = render.rbldnsd_head(before), render.rbldnsd_head(zone), _rbldnsd_key
        suffixes = render.rbldnsd_suffixes(zone)

        def body(lo: int, hi: int) -> str:
            return render.rbldnsd_v4(zone, suffixes, lo, hi)

    head = head_old.encode("utf-8")
    start = len(head)
    if old[:start] != head:
        return None
    # the IPv4 lines end where the first line of another kind starts
    end = _seek(old, start, len(old), _NOT_V4, key)
    out: list[Run] = [head_new.encode("utf-8")]
    done = start
    starts = zone.v4_start
    for a, b in merge_ranges(region.v4):
        at = _seek(old, done, end, a, key)
        after = _seek(old, at, end, b + 1, key)
        out.append((done, at))
        out.append(body(bisect_left(starts, a), bisect_right(starts, b)).encode("utf-8"))
        done = after
    out.append((done, len(old)))
    return out


def materialise(runs: list[Run], old: Buffer) -> bytes:
    """The runs as one bytes object (tests, and small files)."""
    return b"".join(r if isinstance(r, bytes) else old[r[0] : r[1]] for r in runs)
