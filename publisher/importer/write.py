"""rbldnsd's answers -> our list files and a zones.yaml snippet.

A converted file says what rbldnsd answered, not how its file said it: disjoint
address ranges (or domain keys), one value each, grouped under `:CODE:TXT` lines
(none when the zone's template carries the one value of the file). Where
rbldnsd answers several codes for one name, value k goes to the k-th file
(`feed.txt`, `feed-2.txt`, ...): the compiler returns every code of every
source. In domain files a wildcard of file k would also catch names that
rbldnsd answers from a more specific key with fewer values, so such keys get an
exclusion there. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from publisher import codes
from publisher.addresses import Network, format_v4, parse_addr, range_to_cidrs
from publisher.errors import Location, Problem, Severity
from publisher.importer.answers import DatasetModel, Pair, Payload
from publisher.model import SUBST, ZoneConfig

__all__ = ["OutputFile", "convert", "describe", "snippet"]


@dataclass(frozen=True, slots=True)
class OutputFile:
    """One list file to write: its path relative to lists/, its text, and how it was made."""

    path: str
    text: str
    how: str  # "copy" (the dataset as it was) or "converted" (rbldnsd's answers written out)


def describe(family: int, start: int, end: int) -> str:
    return str(Network(family, start, end))


def _ordered(model: DatasetModel, payload: Payload) -> list[Pair]:
    """One pair per code (the earliest line's TXT where rbldnsd has several), codes ascending."""
    by_code: dict[int, tuple[int, Pair]] = {}
    for v in payload:
        pair = model.values[v]
        line = model.first_line[v]
        if pair[0] not in by_code or line < by_code[pair[0]][0]:
            by_code[pair[0]] = (line, pair)
    return [by_code[c][1] for c in sorted(by_code)]


def _rbl_txt(txt: str) -> str:
    """A TXT as our bulk syntax writes it: '$' doubled, the queried-name mark as '$'."""
    txt = txt.replace("$", "$$").replace(SUBST, "$")
    return "".join(c if c >= " " else " " for c in txt)


# An entry of an output file: (sort key, text as written, value or None for an exclusion)
Row = tuple[tuple[object, ...], str, Pair | None]


def _ip_rows(model: DatasetModel) -> list[list[Row]]:
    spans: list[list[tuple[int, int, int, Pair]]] = []  # per file: (family, start, end, value)
    ordered = [_ordered(model, payload) for payload in model.payloads]
    for family, segs in ((4, model.v4), (6, model.v6)):
        for s, e, key in zip(segs.start, segs.end, segs.key):
            for k, pair in enumerate(ordered[key]):
                while len(spans) <= k:
                    spans.append([])
                last = spans[k][-1] if spans[k] else None
                if last and last[0] == family and last[2] == s - 1 and last[3] == pair:
                    spans[k][-1] = (family, last[1], e, pair)  # neighbours that differ only in other files
                else:
                    spans[k].append((family, s, e, pair))
    return [[((f, s), describe(f, s, e), pair) for f, s, e, pair in file] for file in spans]


def _parent(name: str) -> str:
    return name.split(".", 1)[1] if "." in name else ""


def _covered(wild: dict[str, Pair | None], name: str) -> bool:
    """Does a listed wildcard of this file answer `name` (a strict subdomain of it)?"""
    name = _parent(name)
    while name:
        if name in wild:
            return wild[name] is not None
        name = _parent(name)
    return False


def _domain_rows(model: DatasetModel) -> list[list[Row]]:
    exact = {n: _ordered(model, p) for n, p in model.exact.items()}
    wild = {n: _ordered(model, p) for n, p in model.wild.items()}
    depth = max([len(v) for v in exact.values()] + [len(v) for v in wild.values()] + [1])
    files: list[list[Row]] = []
    for k in range(depth):
        w_k: dict[str, Pair | None] = {}
        for name in sorted(wild, key=lambda n: n.count(".")):  # parents first: holes depend on them
            if len(wild[name]) > k:
                w_k[name] = wild[name][k]
            elif _covered(w_k, name):
                w_k[name] = None
        e_k: dict[str, Pair | None] = {}
        for name, pairs in exact.items():
            if len(pairs) > k:
                e_k[name] = pairs[k]
            elif _covered(w_k, name):
                e_k[name] = None
        rows: list[Row] = []
        for name in sorted(set(e_k) | set(w_k), key=lambda n: n.split(".")[::-1]):
            key = (name.split(".")[::-1],)
            if name in e_k and name in w_k and e_k[name] == w_k[name]:
                rows.append((key, ("!." if e_k[name] is None else ".") + name, e_k[name]))
                continue
            if name in e_k:
                rows.append((key, ("!" if e_k[name] is None else "") + name, e_k[name]))
            if name in w_k:
                rows.append((key, ("!*." if w_k[name] is None else "*.") + name, w_k[name]))
        files.append(rows)
    return files


def _path(base: str, k: int) -> str:
    if k == 0:
        return base
    stem, _, suffix = base.rpartition(".")
    return f"{stem}-{k + 1}.{suffix}"


def convert(model: DatasetModel, base: str, cfg: ZoneConfig, source: str, problems: list[Problem]) -> list[OutputFile]:
    """rbldnsd's answers of one dataset as one or more list files (.txt or .yaml by `base`)."""
    files = _domain_rows(model) if cfg.kind == "domain" else _ip_rows(model)
    template = "{reason}" not in cfg.txt  # one value for the whole zone: no value lines needed
    yaml = base.endswith((".yaml", ".yml"))
    if yaml and len(files) > 1:
        problems.append(
            Problem(
                Location(source),
                codes.IMPORT_LOST,
                f"rbldnsd answers up to {len(files)} codes for one name; a curated file lists each entry once, "
                "so only the first code of each is written",
                "import into a .txt file instead",
                severity=Severity.ERROR,
            )
        )
        files = files[:1]
    out: list[OutputFile] = []
    for k, rows in enumerate(files):
        head = (
            f"# Imported from {source} (rbldnsd {model.dtype}) by `publisher import-rbldnsd`: rbldnsd's answers,\n"
            "# written as disjoint entries" + (f" (the code #{k + 1} of names with several codes)" if k else "") + ".\n"
        )
        if yaml:
            text = head + _yaml(rows, cfg, template, source, problems)
        else:
            text = head + _txt(rows, template)
        out.append(OutputFile(_path(base, k), text, "converted"))
    return out


def _txt(rows: list[Row], template: bool) -> str:
    listed = [r for r in rows if r[2] is not None]
    holes = [r for r in rows if r[2] is None]
    groups: dict[Pair, list[Row]] = {}
    for row in listed:
        groups.setdefault(row[2], []).append(row)  # type: ignore[arg-type]
    chunks: list[str] = []
    for pair, members in groups.items():
        if not template:
            chunks.append(f":{format_v4(pair[0])}:{_rbl_txt(pair[1])}\n")
        chunks.extend(f"{text}\n" for _, text, _ in sorted(members, key=lambda r: r[0]))
    if holes:
        chunks.append("# names that a wildcard above would otherwise answer\n")
        chunks.extend(f"{text}\n" for _, text, _ in holes)
    return "".join(chunks)


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def _yaml(rows: list[Row], cfg: ZoneConfig, template: bool, source: str, problems: list[Problem]) -> str:
    lines: list[str] = []
    if cfg.role == "allow":
        lines += ["defaults:", f"  owner: {_q('unknown (imported from ' + source + ')')}"]
        problems.append(
            Problem(
                Location(source),
                codes.IMPORT_OWNER,
                "allowlist entries need an owner; the file says `unknown`",
                "set `owner` (and `contact`) in the written file's defaults",
                severity=Severity.WARNING,
            )
        )
    lines.append("entries:")
    subst = False
    for _, text, pair in sorted(rows, key=lambda r: r[0]):
        for item in _yaml_items(text, cfg.kind):
            key = "domain" if cfg.kind == "domain" else "ip"
            lines.append(f"  - {key}: {_q(item.lstrip('!'))}")
            if pair is None:
                lines.append("    exclude: true")
                continue
            if not template:
                lines.append(f"    code: {_q(format_v4(pair[0]))}")
                if pair[1]:
                    subst = subst or SUBST in pair[1]
                    lines.append(f"    reason: {_q(pair[1].replace(SUBST, item))}")
    if subst:
        problems.append(
            Problem(
                Location(source),
                codes.IMPORT_LOST,
                "a curated reason cannot hold the queried address (`$`): "
                "the entry's own address or name is written there",
                "import into a .txt file to keep `$`",
                severity=Severity.ERROR,
            )
        )
    return "\n".join(lines) + "\n"


def _yaml_items(text: str, kind: str) -> Iterable[str]:
    """A txt entry -> curated entries: ranges become CIDRs; `.name` stays (both name and subdomains)."""
    if kind == "domain" or "-" not in text:
        yield text
        return
    left, right = text.split("-", 1)
    family = 6 if ":" in left else 4
    start, end = parse_addr(left)[1], parse_addr(right)[1]
    for s, plen in range_to_cidrs(start, end, 32 if family == 4 else 128):
        yield describe(family, s, s + (1 << ((32 if family == 4 else 128) - plen)) - 1)


def snippet(cfg: ZoneConfig, soa: list[str] | None, ns: list[str] | None, source: str, dtypes: list[str]) -> str:
    """The zones.yaml entry for the zone, indented to go under `zones:`."""
    out = [
        f"  # {cfg.name}: imported from {source} (rbldnsd {', '.join(dtypes)})",
        f"  - name: {cfg.name}",
        f"    kind: {cfg.kind}",
        f"    role: {cfg.role}",
        f"    sources: [{', '.join(_q(p) for p in cfg.sources)}]",
        f"    code: {_q(format_v4(cfg.code))}",
        f"    txt: {_q(cfg.txt)}"
        + ("  # each entry's TXT is its reason: the `:CODE:TXT` lines of the file" if cfg.txt == "{reason}" else ""),
    ]
    if cfg.ttl != ZoneConfig.__dataclass_fields__["ttl"].default:
        out.append(f"    ttl: {cfg.ttl}")
    if soa:
        mname, rname, refresh, retry, expire, minimum = soa
        out.append(
            f"    soa: {{mname: {_q(mname.rstrip('.'))}, rname: {_q(rname.rstrip('.'))}, "
            f"refresh: {refresh}, retry: {retry}, expire: {expire}, minimum: {minimum}}}"
        )
    if ns:
        out.append("    ns:")
        out.extend(f"      - name: {_q(n.rstrip('.'))}" for n in ns)
    limits = [f"ipv4: {cfg.max_prefix_v4}"] if cfg.max_prefix_v4 < 16 else []
    limits += [f"ipv6: {cfg.max_prefix_v6}"] if cfg.max_prefix_v6 < 32 else []
    if limits and cfg.kind == "ip":
        out.append(f"    max_prefix: {{{', '.join(limits)}}}  # the broadest imported entry")
    return "\n".join(out) + "\n"
