"""rbldnsd data files -> our list files (`publisher import-rbldnsd`, a one-time migration).

Split the file into datasets (one, or the `$DATASET` sections of a `combined`
file), read each as rbldnsd reads it (answers.py: its answers), choose the
zone's code and TXT template, then per dataset either keep the file as it is
("copy": our bulk reader already gives rbldnsd's answers) or write rbldnsd's
answers out as disjoint entries ("converted", write.py). Every output is read
back with our own readers, compiled and compared with rbldnsd's answers before
it is returned. `$SOA`/`$NS`/`$TTL` go to the zones.yaml snippet, not the list
file. What cannot be represented is a Problem with an `import-*` code (error:
answers will differ; warning: nothing is lost). Pure: text in, texts and
problems out.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Iterable
from dataclasses import dataclass, replace
from itertools import compress

from publisher import codes
from publisher.addresses import (
    TEST_LISTED_V4,
    AddressError,
)
from publisher.compile.compiler import compile_zone
from publisher.errors import Problem, Severity, sort_problems
from publisher.importer.answers import (
    DATA_TYPES,
    DatasetModel,
    Ignored,
    build_model,
    is_value_line,
    normalize_lines,
    special_body,
)
from publisher.importer.compare import Checked, clashes, compare, coverage, test_points, zone_answers
from publisher.importer.read import Notes, Section, Specials, guess_type, read_sections
from publisher.importer.write import OutputFile, convert, snippet
from publisher.lists.bulk import read_bulk_source
from publisher.lists.bulk_syntax import parse_value
from publisher.lists.curated import read_source
from publisher.model import SUBST, Kind, Role, SourceData, ZoneConfig

__all__ = ["DATASET_TYPES", "ImportResult", "OutputFile", "ZoneImport", "guess_type", "import_rbldnsd"]

DATASET_TYPES = DATA_TYPES + ("combined",)
_AS_OF = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # imported entries never expire
_DEFAULT_CODE = TEST_LISTED_V4  # rbldnsd's A without any `:A:` line
_SKIPPED = {codes.BAD_ADDRESS, codes.BAD_DOMAIN, codes.HOST_BITS, codes.BAD_VALUE}  # rbldnsd ignores these lines too
_LOST = {  # rbldnsd serves them
    codes.BAD_CODE,
    codes.LISTS_TEST_POINT,
    codes.DELISTS_TEST_POINT,
    codes.V4_MAPPED,
    codes.BROAD_DOMAIN,
    codes.CONFUSABLE_DOMAIN,
    codes.HOSTS_FILE,
}


@dataclass(frozen=True, slots=True)
class ZoneImport:
    """One zone's share of the import: its zones.yaml settings, files and snippet."""

    config: ZoneConfig
    files: tuple[OutputFile, ...]
    snippet: str
    #: The listed addresses and names compared with rbldnsd's answers (alike unless an error says otherwise).
    checked: Checked


@dataclass(frozen=True, slots=True)
class ImportResult:
    zones: tuple[ZoneImport, ...]
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]


def import_rbldnsd(
    text: str, *, zone: str, out: str, dataset: str | None = None, source: str = "input", role: Role = "block"
) -> ImportResult:
    """Convert one rbldnsd data file for `zone` into list files under the lists root.

    `out` is the main output path relative to lists/ (`bl/feed.txt` or `.yaml`);
    more files are named after it when needed (`bl/feed-2.txt`, `bl/feed.NAME.txt`).
    """
    run = Notes(source)
    zone = zone.rstrip(".").lower()
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if dataset is None:
        dataset = guess_type(text)
        run.note(
            None, codes.IMPORT_GUESSED_TYPE, f"read as rbldnsd `{dataset}`", "give --type to choose the dataset type"
        )
    if not out.endswith((".txt", ".yaml", ".yml")):
        run.note(
            None,
            codes.IMPORT_UNSUPPORTED,
            f"cannot write {out}",
            "write a .txt (bulk) or .yaml (curated) file",
            error=True,
        )
        return ImportResult((), tuple(run.problems))
    if dataset not in DATASET_TYPES:
        run.note(
            None,
            codes.IMPORT_UNSUPPORTED,
            f"dataset type `{dataset}` is not supported",
            f"use one of {', '.join(DATASET_TYPES)}",
            error=True,
        )
        return ImportResult((), tuple(run.problems))
    specials = Specials()
    sections = read_sections(dataset, lines, specials, run)
    datasets = [_model(section, zone, role, specials, run) for section in sections]
    targets: dict[str, list[_Dataset]] = {}
    for d in datasets:
        for sub in d.section.subzones:
            targets.setdefault(zone if sub == "@" else f"{sub.lower()}.{zone}", []).append(d)
    made: dict[str, list[OutputFile]] = {}  # a dataset of several subzones is written once
    style = _style(datasets)
    zones = [
        _import_zone(name, ds, style, specials if name == zone else Specials(), out, role, run, made, len(sections) > 1)
        for name, ds in targets.items()
    ]
    problems = sort_problems(list(dict.fromkeys(run.problems)))
    return ImportResult(tuple(z for z in zones if z is not None), tuple(problems))


def _style(datasets: list[_Dataset]) -> tuple[int, str]:
    """The zones' code and TXT template: one value for everything goes into the template
    (the list files then need no value lines); else each entry's TXT is its reason."""
    pairs = {p for d in datasets for p in d.model.values}
    kinds = {d.kind for d in datasets}
    if len(pairs) == 1 and len(kinds) == 1:
        code, txt = next(iter(pairs))
        if "{" not in txt and "}" not in txt:
            return code, txt.replace(SUBST, "{ip}" if kinds == {"ip"} else "{domain}")
    return (datasets[0].first_code if datasets else _DEFAULT_CODE), "{reason}"


# --- one zone -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Dataset:
    section: Section
    kind: Kind
    model: DatasetModel
    first_code: int  # what an entry before any `:A:` line answers, or the first `:A:` line's code
    read: list[str]  # the section's lines as rbldnsd reads them, "" if not (answers.normalize_lines)
    dropped: dict[int, str]  # lines rbldnsd ignores, or that cannot be imported: why


def _import_zone(
    name: str,
    datasets: list[_Dataset],
    style: tuple[int, str],
    specials: Specials,
    out: str,
    role: Role,
    run: Notes,
    made: dict[str, list[OutputFile]],
    many: bool,
) -> ZoneImport | None:
    kind = datasets[0].kind
    for d in [d for d in datasets if d.kind != kind]:
        run.note(
            None,
            codes.IMPORT_LOST,
            f"{name} mixes addresses and names; a zone here is one or the other, so the "
            f"{d.section.dtype} `{d.section.name}` is not imported into it",
            "serve it as its own zone: a $DATASET line with another subzone",
            error=True,
        )
    datasets = [d for d in datasets if d.kind == kind]
    if not any(d.model.v4 or d.model.v6 or d.model.exact or d.model.wild for d in datasets):
        run.note(None, codes.IMPORT_EMPTY, f"nothing of {name} is listed; no files written", None, error=True)
        return None
    cfg = ZoneConfig(name, kind, role, (), style[0], style[1], max_prefix_v4=0, max_prefix_v6=0)
    files: list[OutputFile] = []
    checked: dict[str, SourceData] = {}  # copies read, compiled and compared here
    stem, _, suffix = out.rpartition(".")
    for d in datasets:
        if d.section.name not in made:
            base = f"{stem}.{d.section.name}.{suffix}" if many else out
            copied = _copy(d, base, cfg, specials, run) if suffix == "txt" else None
            if copied:
                checked[base] = copied[1]
            made[d.section.name] = [copied[0]] if copied else convert(d.model, base, cfg, run.source, run.problems)
        files.extend(made[d.section.name])
    sources = [checked[f.path] if f.path in checked else _read(f.path, f.text, cfg) for f in files]
    need4, need6 = _broadest(sources, 4), _broadest(sources, 6)
    cfg = replace(cfg, sources=tuple(f.path for f in files), max_prefix_v4=need4, max_prefix_v6=need6)
    if specials.ttl is not None:
        cfg = replace(cfg, ttl=specials.ttl)
    # These reads are what `validate` will read with the zone's settings: those differ
    # only in max_prefix, which refuses listings broader than it, and it was set to
    # accept the broadest listing read here. So the files are not read a second time.
    for src in sources:
        for p in src.problems:
            if p.is_error:
                run.problems.append(
                    replace(p, code=codes.IMPORT_DIFFERS, message=f"the written file does not validate: {p.message}")
                )
    models = [d.model for d in datasets]
    wants = (zone_answers(models, 4), zone_answers(models, 6))
    if len(datasets) == 1 and len(files) == 1 and files[0].path in checked:
        count, found = 0, list[str]()  # _copy compiled these very rows and found them answering as this dataset does
    else:
        count, found = compare(models, compile_zone(cfg, sources, as_of=_AS_OF), wants)
    if count:
        run.note(
            None,
            codes.IMPORT_DIFFERS,
            f"{name} as imported answers differently from rbldnsd in {count} place(s), e.g. " + "; ".join(found),
            "report this: the import should be exact except for the problems above",
            error=True,
        )
    clashes(models, wants, run)
    test_points(name, models, wants[0], cfg, run)
    return ZoneImport(
        cfg,
        tuple(files),
        snippet(cfg, specials.soa, specials.ns, run.source, sorted({d.section.dtype for d in datasets})),
        coverage(models, wants),
    )


def _broadest(sources: list[SourceData], family: int) -> int:
    """The zone's max_prefix: our default (/16, /32), or what accepts the broadest listing."""
    bits = 32 if family == 4 else 128
    limit = 16 if family == 4 else 32
    for src in sources:
        starts, ends, values = (
            (src.v4_start, src.v4_end, src.v4_value) if family == 4 else (src.v6_start, src.v6_end, src.v6_value)
        )
        sizes: Iterable[int] = map(operator.sub, ends, starts)
        excluded = [v.exclude for v in src.values]
        if any(excluded):
            sizes = compress(sizes, [not excluded[v] for v in values])
        widest = max(sizes, default=None)
        if widest is not None:
            limit = min(limit, bits - widest.bit_length())
    return limit


def _permissive(name: str, kind: Kind, role: Role) -> ZoneConfig:
    return ZoneConfig(name, kind, role, (), _DEFAULT_CODE, "{reason}", max_prefix_v4=0, max_prefix_v6=0)


def _read(path: str, text: str, cfg: ZoneConfig) -> SourceData:
    return read_source(path, text.encode("utf-8"), cfg)


def _section_text(section: Section, specials: Specials, keep: list[str]) -> str:
    """The section's kept lines at their own line numbers (blank elsewhere), global `$N` lines first."""
    head = [""] * (section.first - 1)
    for lineno, text in specials.variables or []:
        if lineno < section.first:
            head[lineno - 1] = text
    rows = head + keep
    while rows and not rows[-1]:
        rows.pop()
    return "\n".join(rows) + "\n" if rows else ""


def _model(section: Section, name: str, role: Role, specials: Specials, run: Notes) -> _Dataset:
    kind: Kind = "domain" if section.dtype == "dnset" else "ip"
    ignored = Ignored()
    keep = normalize_lines(section.dtype, section.first, section.lines, ignored)
    source = read_bulk_source(
        run.source, _section_text(section, specials, keep).encode("utf-8"), _permissive(name, kind, role)
    )
    dropped: dict[int, str] = {}  # line -> why it is commented out in a cleaned copy
    for p in source.problems:
        refused = p.code == codes.WRONG_FAMILY or p.code == codes.COLUMN_FILE and p.is_error  # a column header
        lost = p.code in _LOST or (refused and kind == "domain")
        if p.code in _SKIPPED or refused and not lost:
            run.problems.append(
                replace(
                    p,
                    code=codes.IMPORT_SKIPPED,
                    message=f"{p.message}; rbldnsd ignores the line too",
                    severity=Severity.WARNING,
                )
            )
        elif lost:
            run.problems.append(
                replace(
                    p,
                    code=codes.IMPORT_LOST,
                    message=f"{p.message}; rbldnsd serves the line, the import leaves it out",
                    severity=Severity.ERROR,
                )
            )
        elif p.code != codes.BULK_REPEATS:
            run.problems.append(p)
        if (lost or p.code in _SKIPPED or refused) and p.location.line:
            dropped[p.location.line] = "cannot be imported" if lost else "ignored by rbldnsd"
    model = build_model(section.dtype, source, sorted(specials.maxrange or []), ignored)
    for reason, at in ignored.lines.items():
        run.note(at[0], codes.IMPORT_SKIPPED, f"{reason}: {len(at)} line(s), not imported (first here)")
        dropped.update((line, "ignored by rbldnsd") for line in at if line in ignored.dropped)
    for line in dropped:
        if 0 <= line - section.first < len(keep):
            keep[line - section.first] = ""
    with_subst = [model.first_line[v] for p in model.wild.values() for v in p if SUBST in model.values[v][1]]
    if with_subst:
        run.note(
            min(with_subst),
            codes.IMPORT_WILDCARD_TXT,
            "for a name under a wildcard, rbldnsd puts the wildcard's own name where the TXT says `$` "
            "(spam.example for a.spam.example); the publisher puts the queried name",
        )
    first_code = _DEFAULT_CODE
    for text in filter(None, keep):
        if is_value_line(text):
            try:
                first_code = parse_value(text)[0]
            except AddressError:
                pass
            break
        if special_body(text) is None:
            break  # an entry before any value line answers 127.0.0.2
    return _Dataset(section, kind, model, first_code, keep, dropped)


def _copy_text(d: _Dataset, specials: Specials, *, cleaned: bool) -> str:
    """The dataset's own lines, specials commented out (zones.yaml holds them).

    `cleaned`: the lines rbldnsd ignores are commented out too and the values the
    tset types ignore are dropped (answers.normalize_lines).
    """
    sec = d.section
    lines = sec.lines
    rows = list(lines)
    for i in [i for i, line in enumerate(lines) if "$" in line]:
        stripped = lines[i].strip()
        body = special_body(stripped)
        if body is not None and not (body[:1].isdigit() or body.startswith("=")):
            rows[i] = "# " + stripped + "  (zones.yaml decides this)"
    if cleaned:  # only where what rbldnsd reads is not the line as written
        for i in [i for i, (r, line) in enumerate(zip(d.read, lines)) if r != line]:
            stripped = lines[i].strip()
            body = special_body(stripped)
            if body is not None and not (body[:1].isdigit() or body.startswith("=")):
                continue
            if not stripped or d.read[i] or stripped[0] in "#;" and body is None:
                rows[i] = d.read[i] or lines[i]
            else:
                rows[i] = f"# {d.dropped.get(sec.first + i, 'ignored by rbldnsd')}: {stripped}"
    outside = [(n, t) for n, t in specials.variables or [] if n < sec.first]  # global `$N` of a combined file
    if outside:
        start = min(n for n, _ in outside)
        head = [""] * (sec.first - start)
        for n, t in outside:
            head[n - start] = t if not cleaned else f"# {d.dropped.get(n, 'ignored by rbldnsd')}: {t}"
        rows = head + rows
    return "\n".join(rows).rstrip("\n") + "\n"


def _copy(
    d: _Dataset, path: str, cfg: ZoneConfig, specials: Specials, run: Notes
) -> tuple[OutputFile, SourceData] | None:
    """The dataset as it was (or cleaned), if our reader answers from it exactly as rbldnsd does;
    with the file as read for `cfg`."""
    raw = _copy_text(d, specials, cleaned=False)
    cleaned = _copy_text(d, specials, cleaned=True)
    tries = [("copy", "kept as it was", raw)]
    if cleaned != raw:
        tries.append(("cleaned copy", "kept as it was, except what rbldnsd ignores", cleaned))
    for how, what, text in tries:
        text = (
            f"# Imported from {run.source} (rbldnsd {d.section.dtype}) by `publisher import-rbldnsd`: {what}.\n" + text
        )
        source = _read(path, text, cfg)
        if any(p.is_error for p in source.problems):
            continue
        zone = compile_zone(cfg, [source], as_of=_AS_OF)
        count, _ = compare([d.model], zone)
        if not count:
            return OutputFile(path, text, how), source
    return None
