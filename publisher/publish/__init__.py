"""Publish: a git commit of the lists -> plan -> guard rails -> a new zones/ generation + history.

Entry: `publish(lists, zones_dir, rev=...)` = `prepare` (read, validate, compile, plan;
writes nothing) + `apply` (guard rails, atomic write, history). See docs/design.md.

The entry points load on first use (PEP 562): readers of zones/ such as the DNS server
import `publisher.publish.manifest`, which runs this file, and must not load git,
jsonschema or YAML with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from publisher.publish.release import apply, prepare, publish

__all__ = ["apply", "prepare", "publish"]


def __getattr__(name: str) -> object:
    if name in __all__:
        from publisher.publish import release

        return getattr(release, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
