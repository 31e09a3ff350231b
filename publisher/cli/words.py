"""Counts in printed lines: "1 listing", "2 listings", "1 address", never "1 addresses"."""

from __future__ import annotations

#: The singular of each plural the command line counts in.
_SINGULAR = {
    "listings": "listing",
    "addresses": "address",
    "IPv6 addresses": "IPv6 address",
    "names": "name",
    "entries": "entry",
    "zones": "zone",
    "ranges": "range",
    "warnings": "warning",
    "errors": "error",
    "guard rails": "guard rail",
}


def word(count: int, plural: str) -> str:
    """`plural`, or its singular when `count` is 1 (or -1)."""
    return _SINGULAR.get(plural, plural) if abs(count) == 1 else plural


def counted(count: int, plural: str) -> str:
    """`1 listing`, `0 listings`, `16 addresses`."""
    return f"{count} {word(count, plural)}"
