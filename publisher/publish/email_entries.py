"""An email zone's plan entries as the operator wrote them, not as the zone holds them.

The rows of an email zone are hash names (`<label>[.<suffix>]`), which say nothing to the
person reviewing a plan; the plan shows the address (or hash) as the curated entry writes it
(`EntryMeta.text`), and for a line of a bulk file the line itself, read from the commit's
tree (only the lines a plan shows: a few dozen). The plan's file:line stays as it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from publisher.lists.tree import Tree
from publisher.model import SourceData
from publisher.publish.entry_diff import Change, Entry
from publisher.publish.explain import line_as_written
from publisher.publish.plan import ZonePlan


def as_written(
    zp: ZonePlan,
    new_sources: Sequence[SourceData],
    old_sources: Sequence[SourceData] | None,
    new_tree: Tree,
    old_tree: Tree | None,
) -> ZonePlan:
    """`zp` (an email zone's plan) with each shown entry's text as written in its commit."""
    if zp.kind != "email" or not zp.changes:
        return zp
    sides: dict[str, tuple[dict[str, SourceData], Tree | None, dict[str, list[str]]]] = {
        "new": ({s.path: s for s in new_sources}, new_tree, {}),
        "old": ({s.path: s for s in old_sources or ()}, old_tree, {}),
    }

    def written(entry: Entry, side: str) -> Entry:
        by_path, tree, cache = sides[side]
        src = by_path.get(entry.path)
        meta = src.entries.get(entry.line) if src is not None else None
        if meta is not None:
            return dataclasses.replace(entry, text=meta.text)
        line = line_as_written(tree, entry.path, entry.line, cache) if tree is not None else ""
        return dataclasses.replace(entry, text=line) if line else entry

    changes = tuple(
        Change(c.kind, written(c.entry, c.side), written(c.old, "old") if c.old is not None else None)
        for c in zp.changes
    )
    return dataclasses.replace(zp, changes=changes)
