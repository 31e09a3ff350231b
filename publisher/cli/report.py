"""Text, Markdown and JSON renderings of plans, publishes, history and explanations.

The publish stage computes (plans, history records, explanations), the command modules
(cli/publishing.py, cli/explain.py) print these lines. Pure string building, so the
formats are tested without a terminal. It imports the publish machinery (and through it
GitPython), so the command modules import it inside their handlers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from publisher.addresses import format_v4
from publisher.cli.words import counted
from publisher.compile.lookup import shown_reason
from publisher.errors import Problem
from publisher.publish.explain import Because, Explanation
from publisher.publish.guards import Violation
from publisher.publish.history import HistoryRecord, ZoneRecord, measures_json
from publisher.publish.pidfile import PID_FILE
from publisher.publish.plan import ADDED, CHANGED, EXPIRED, IPV6, REMOVED, Change, ZonePlan, amount, measured
from publisher.publish.release import BlameKey, Prepared, shown
from publisher.publish.rollback import Leftover
from publisher.publish.vcs import BlameLine

_MARK = {ADDED: "+", REMOVED: "-", EXPIRED: "x", CHANGED: "~"}


def _listings(count: int) -> str:
    return counted(count, "listings")


def summary(zp: ZonePlan, serial: int) -> str:
    """`bl.example.test serial 2026112704: +3 listings (+258 addresses), -1 listing`."""
    if not zp.content_changed:
        return f"{zp.name} serial {serial}: unchanged"
    added, removed, expired, changed = (zp.count(k) for k in (ADDED, REMOVED, EXPIRED, CHANGED))
    ms = zp.measures
    parts: list[str] = []
    if not zp.entries_known:
        # the entries behind the change are unknown: the plan's net count, not a made-up "+0"
        moved = [measured(m.added, m.unit, "+") for m in ms if m.added]
        moved += [measured(m.removed, m.unit, "-") for m in ms if m.removed]
        moved += [f"{measured(m.changed, m.unit)} answer differently" for m in ms if m.changed]
        return (
            f"{zp.name} serial {serial}: listings {zp.listings_before} -> {zp.listings_after}"
            + (f" ({', '.join(moved)})" if moved else "")
            + "; the entries behind it are unknown"
        )
    if added or any(m.added for m in ms):
        more = [measured(m.added, m.unit, "+") for m in ms if m.added]
        parts.append(f"+{_listings(added)}" + (f" ({', '.join(more)})" if more else ""))
    if removed or expired or any(m.removed for m in ms):
        notes = ([f"{expired} expired"] if expired else []) + [
            measured(m.removed, m.unit, "-") for m in ms if m.removed
        ]
        parts.append(f"-{_listings(removed + expired)}" + (f" ({', '.join(notes)})" if notes else ""))
    if changed or any(m.changed for m in ms):
        diff = [measured(m.changed, m.unit) for m in ms if m.changed]
        if changed:
            parts.append(f"{changed} changed" + (f" ({', '.join(diff)} answer differently)" if diff else ""))
        else:
            parts.append(f"{', '.join(diff)} answer differently")
    if zp.is_new:
        parts.insert(0, "new zone")
    return f"{zp.name} serial {serial}: " + (", ".join(parts) or "rebuilt, same answers")


def warnings(p: Prepared) -> list[Problem]:
    """The build's warnings, each once (a file read for both sides of a plan says it once)."""
    seen: set[tuple[object, ...]] = set()
    out = []
    for problem in p.build.warnings:
        key = (problem.location.path, problem.location.line, problem.code, problem.message)
        if not problem.is_error and key not in seen:
            seen.add(key)
            out.append(problem)
    return out


def published_line(zones: Path, generation: str, reloaded: int | None) -> str:
    """The last line of a publish: where it went, and who serves it, as far as is known."""
    if reloaded is not None:
        return (
            f"published {zones}/{generation} (current); the server (pid {reloaded}, {zones}/{PID_FILE}) reloads it now"
        )
    return f"published {zones}/{generation} (current); a `publisher serve` on {zones}/ loads it within a second"


def leftover_lines(left: Leftover | None) -> list[str]:
    """After a rollback: HEAD still holds what it took out, and how to keep that out."""
    if left is None:
        return []
    return [
        f"note: HEAD (commit {left.head[:10]}) still holds what this rollback took out ({', '.join(left.paths)}):",
        "  the next `publisher publish` (make publish) brings it back, and so does a running watch at the next "
        "commit (until then it leaves this rollback in place; an expiry republishes the rolled-back commit).",
        f"  To keep it out, revert it in git: git revert --no-edit {left.target[:10]}..HEAD, then publish.",
    ]


def _reason(text: str) -> str:
    return repr(shown_reason(text))


def _value(change: Change) -> str:
    v = change.entry.value
    if v.exclude:
        return "exclude"
    text = f"{format_v4(v.code)} {_reason(v.reason)}" if v.reason else format_v4(v.code)
    if change.kind == CHANGED and change.old is not None:
        o = change.old.value
        was = []
        if o.code != v.code:
            was.append(f"code was {format_v4(o.code)}")
        if o.reason != v.reason:
            was.append(f"reason was {_reason(o.reason)}")
        text += f" ({', '.join(was)})" if was else ""
    if v.expires is not None:
        text += f" {'expired' if change.kind == EXPIRED else 'expires'} {v.expires.isoformat()}"
    return text


def _blame(b: BlameLine | None) -> str:
    if b is None:
        return ""
    if not b.committed:
        return "  [not committed yet]"
    return f"  [{b.short} {b.author} {b.date[:10]}]"


def change_line(change: Change, blame: dict[BlameKey, BlameLine]) -> str:
    e = change.entry
    where = f"{e.path}:{e.line}"
    return (
        f"  {_MARK[change.kind]} {where}  {e.text}  {_value(change)}{_blame(blame.get((change.side, e.path, e.line)))}"
    )


def plan_text(p: Prepared, show: int) -> list[str]:
    c = p.commit
    out = [f"plan: commit {c.short} {c.summary!r} by {c.author}, {c.committed_at}"]
    published = p.previous.manifest
    prev = published.source if published is not None else None
    if published is None:
        out.append("  nothing published yet: everything is new")
    elif prev is not None and prev.commit:
        out.append(f"  published now: commit {prev.commit[:10]} at {published.published_at}")
    out.extend(f"  note: {note}" for note in p.plan.notes)
    for d in p.dirty:
        out.append(f"  not being published: {d.path} ({d.state}; commit it first)")
    for zp in p.plan.zones:
        before = p.previous_serial(zp.name)
        serial = p.serial(zp.name)
        head = (
            f"{zp.name}: serial {before} -> {serial}"
            if before is not None and before != serial
            else f"{zp.name}: serial {serial}"
        )
        if not zp.content_changed:
            out.append(f"{head}, unchanged")
            continue
        out.append(head)
        counts = [f"listings {zp.listings_before} -> {zp.listings_after}"] + [
            f"{m.unit} {amount(m.before, m.unit)} -> {amount(m.after, m.unit)} "
            f"(+{amount(m.added, m.unit)}, -{amount(m.removed, m.unit)}, "
            f"{amount(m.changed, m.unit)} answer differently)"
            for m in zp.measures
            if m.before or m.after or m.unit != IPV6
        ]
        out.append("  " + "; ".join(counts))
        if not zp.entries_known:
            out.append("  entries behind the change: unknown (see note)")
        listed = shown(zp.changes, show)
        out.extend(change_line(ch, p.blame) for ch in listed)
        if zp.changes_total > len(listed):
            out.append(f"  ... and {zp.changes_total - len(listed)} more")
    for name in p.plan.dropped:
        out.append(f"{name}: no longer in zones.yaml; would stop being served")
    out.extend(guard_lines(p.violations))
    return out


def guard_lines(violations: Sequence[Violation]) -> list[str]:
    if not violations:
        return ["guard rails: all clear"]
    return ["guard rails: needs --force:"] + [f"  {v.rule}: {v.message}" for v in violations]


def guard_markdown(violations: Sequence[Violation]) -> list[str]:
    """The guard rails' verdict for a reviewer: all clear, or which refuse, with their numbers.
    Every guard rail can be passed with --force; validation errors never reach a plan."""
    if not violations:
        return ["**Guard rails: all clear.** `make publish` publishes this as it is."]
    rails = counted(len(violations), "guard rails")
    return [
        f"**Guard rails: refused by {rails}.** `make publish` writes nothing; once reviewed, "
        "`make publish FORCE=1` (`publisher publish --force`) passes "
        + ("it" if len(violations) == 1 else "them")
        + ":",
        "",
        *(f"- **{v.rule}**: {v.message}" for v in violations),
    ]


def plan_markdown(p: Prepared, show: int) -> str:
    c = p.commit
    out = [
        f"### Publish plan for `{c.short}` ({c.summary})",
        "",
        "| zone | serial | listings | counted | before → after | added | removed | answer differently |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for zp in p.plan.zones:
        for m in zp.measures:
            if m.unit == IPV6 and not (m.before or m.after):
                continue
            out.append(
                f"| {zp.name} | {p.serial(zp.name)} | {zp.listings_before} → {zp.listings_after} | {m.unit} | "
                f"{amount(m.before, m.unit)} → {amount(m.after, m.unit)} | {amount(m.added, m.unit)} | "
                f"{amount(m.removed, m.unit)} | {amount(m.changed, m.unit)} |"
            )
    if p.plan.notes:  # what the reviewer must know beyond the counts (an SPF partner's record failing, ...)
        out += ["", *(f"- note: {note}" for note in p.plan.notes)]
    for zp in p.plan.zones:
        listed = shown(zp.changes, show)
        if listed:
            out += ["", f"**{zp.name}**", ""]
            out += [
                f"- `{ch.kind}` `{ch.entry.path}:{ch.entry.line}` `{ch.entry.text}` {_value(ch)}"
                f"{_blame(p.blame.get((ch.side, ch.entry.path, ch.entry.line)))}"
                for ch in listed
            ]
            if zp.changes_total > len(listed):
                out.append(f"- ... and {zp.changes_total - len(listed)} more")
    out += ["", *guard_markdown(p.violations)]
    if p.dirty:
        out += ["", "Not being published: " + ", ".join(f"`{d.path}` ({d.state})" for d in p.dirty)]
    return "\n".join(out).rstrip() + "\n"


def _change_json(ch: Change, blame: dict[BlameKey, BlameLine]) -> dict[str, Any]:
    v = ch.entry.value
    b = blame.get((ch.side, ch.entry.path, ch.entry.line))
    out: dict[str, Any] = {
        "kind": ch.kind,
        "path": ch.entry.path,
        "line": ch.entry.line,
        "entry": ch.entry.text,
        "code": format_v4(v.code),
        "reason": shown_reason(v.reason),
        "exclude": v.exclude,
        "expires": v.expires.isoformat() if v.expires else None,
    }
    if ch.old is not None:
        out["was"] = {
            "path": ch.old.path,
            "line": ch.old.line,
            "code": format_v4(ch.old.value.code),
            "reason": shown_reason(ch.old.value.reason),
        }
    if b is not None:
        out["blame"] = {"commit": b.sha, "author": b.author, "email": b.email, "date": b.date, "summary": b.summary}
    return out


def plan_json(p: Prepared, show: int) -> str:
    zones = {}
    for zp in p.plan.zones:
        listed = shown(zp.changes, show)
        zones[zp.name] = {
            "serial_before": p.previous_serial(zp.name),
            "serial": p.serial(zp.name),
            "changed": zp.content_changed,
            "new": zp.is_new,
            "listings": {
                "before": zp.listings_before,
                "after": zp.listings_after,
                **{k: zp.count(k) for k in (ADDED, REMOVED, EXPIRED, CHANGED)},
            },
            **measures_json(zp),
            "entries_known": zp.entries_known,
            "changes": [_change_json(ch, p.blame) for ch in listed],
            "changes_total": zp.changes_total,
        }
    doc = {
        "commit": p.commit.sha,
        "author": p.commit.author,
        "committed_at": p.commit.committed_at,
        "published_commit": p.previous.manifest.source.commit
        if p.previous.manifest is not None and p.previous.manifest.source is not None
        else None,
        "zones": zones,
        "dropped": list(p.plan.dropped),
        "notes": list(p.plan.notes),
        "guard_rails": [{"zone": v.zone, "rule": v.rule, "message": v.message} for v in p.violations],
        "not_published": [{"path": d.path, "state": d.state} for d in p.dirty],
        "nothing_to_publish": p.nothing_to_publish,
    }
    return json.dumps(doc, indent=2)


def _moves(z: ZoneRecord) -> str:
    """`+1/-0`, as the publish summary counted them; `14 -> 15 listings, entries unknown` when
    the entries behind a publish were not known; `15 listings` for a recovered record."""
    if z.listings_added is not None:
        return f"+{z.listings_added}/-{(z.listings_removed or 0) + (z.listings_expired or 0)}"
    if z.listings_before is not None and z.listings is not None:
        return f"{z.listings_before} -> {z.listings} listings, entries unknown"
    return counted(z.listings, "listings") if z.listings is not None else "counts unknown"


def history_lines(records: Sequence[HistoryRecord], *, from_start: bool = True) -> list[str]:
    """Two lines per publish: who and what, then the zones it moved. `from_start`: records[0]
    is the first line of history.jsonl (not cut by --limit)."""
    out = []
    for i, rec in enumerate(records):
        moved = [f"{n} {z.serial} ({_moves(z)})" for n, z in sorted(rec.zones.items()) if z.changed]
        # as publish says it: a rule broken on two measures (listings and addresses) is named once
        rules = ", ".join(sorted(set(rec.forced)))
        forced = f" forced past {counted(len(rec.forced), 'guard rails')}: {rules}" if rec.forced else ""
        out.append(f"{rec.published_at}  {rec.action:8}  {str(rec.commit)[:10]}  {rec.author}  {rec.summary!r}{forced}")
        if moved:
            what = "; ".join(moved)
        elif from_start and i == 0 and rec.zones and all(z.previous_serial is not None for z in rec.zones.values()):
            # before the first publish zones/ held serials no publish gave: a compile (make serve)
            kept = [
                f"{n} {z.serial} ({counted(z.listings, 'listings') if z.listings is not None else 'counts unknown'})"
                for n, z in sorted(rec.zones.items())
            ]
            what = "first publish from git, same answers as the compile zones/ held: " + "; ".join(kept)
        else:
            what = "" if rec.dropped else "settings only (same answers, serials kept)"
        dropped = f"no longer published: {', '.join(rec.dropped)}" if rec.dropped else ""
        out.append("    " + "; ".join(part for part in (what, dropped) if part))
    return out


def _because(b: Because, prefix: str) -> str:
    v = b.hit.value
    what = "exclude (a hole)" if v.exclude else f"{format_v4(v.code)} {_reason(v.reason)}"
    exp = ""
    if v.expires is not None:
        exp = f", {'expired' if b.expired else 'expires'} {v.expires.isoformat()}"
    line = f"{prefix}{b.hit.path}:{b.hit.line}: {b.hit.text} -> {what}{exp}"
    if b.via:
        line += f"\n    SPF: {b.via}"
    if b.blame is not None:
        bl = b.blame
        line += (
            f"\n    added by {bl.author} <{bl.email}> in {bl.short} {bl.summary!r} on {bl.date}"
            if bl.committed
            else "\n    (not committed)"
        )
    return line


def explain_lines(e: Explanation) -> list[str]:
    commit = e.source.commit if e.source is not None else None
    origin = f"commit {commit[:10]}" if commit else "the work tree"
    out = [f"{e.query.text}: in what is published now ({origin}, {e.published_at})"]
    if not e.zones:
        out.append("  no published zone of that kind")
    for z in e.zones:
        asked = [f"  normalised: {z.normalised}, hashed with {z.hashed_with}"] if z.normalised else []
        asked += [f"  DNS name: {z.asked}"] if z.asked else []
        if z.answers:
            out.append(f"{z.zone} (serial {z.serial}): listed")
            out.extend(asked)
            out.extend(f"  A {format_v4(code)}  " + (f"TXT {txt!r}" if txt else "no TXT") for code, txt in z.answers)
            if z.test_point and not z.entries:
                out.append("  RFC 5782 test point: always listed")
            out.extend(_because(b, "  by ") for b in z.entries)
        else:
            out.append(f"{z.zone} (serial {z.serial}): not listed")
            out.extend(asked)
            if z.exclusion is not None:
                out.append(_because(z.exclusion, "  nearest covering exclusion: "))
    out.extend(f"note: {n}" for n in e.notes)
    return out
