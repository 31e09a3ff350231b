"""Why is this address (or domain) listed, by whom and since when: `publisher explain`.

Reads what is *published* (zones/current: the compiled zones answer "listed or
not", exactly as the server does), then the lists of the commit that was
published (vcs.GitTree, found through the manifest's source) for the entries
behind the answer, and git blame on each entry's line for who added it, in
which commit, and when. An entry of a file `publisher refresh-spf` generated also carries its
`via`: the SPF chain from the partner's domain to the term that passes the address.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path

from publisher.addresses import TEST_LISTED_DOMAIN, TEST_LISTED_V4, AddressError
from publisher.compile.lookup import EMAIL, Hit, Query, covering_entries, email_asked, parse_query, zone_answer
from publisher.emails import EmailSettings
from publisher.errors import PublisherError, UsageError
from publisher.lists.load import load_lists
from publisher.lists.tree import DirTree, Tree
from publisher.model import SourceData
from publisher.publish.manifest import Source, load_published
from publisher.publish.vcs import BlameLine, GitTree, ListsRepo, blame_lines, commit_exists, find_repo


@dataclass(frozen=True, slots=True)
class Because:
    """One entry behind an answer (or the exclusion that makes a hole)."""

    hit: Hit
    blame: BlameLine | None
    expired: bool  # expired since the publish; the next publish drops it
    via: str | None = None  # an entry of a file refresh-spf generated: the SPF chain that passes it


@dataclass(frozen=True, slots=True)
class ZoneExplanation:
    zone: str
    serial: int
    role: str
    answers: list[tuple[int, str]]  # (code, TXT) as the server answers; empty: not listed
    entries: list[Because]  # for each source that lists the query, its deciding entry
    exclusion: Because | None  # not listed: the nearest exclusion covering the query
    test_point: bool
    asked: str = ""  # an email zone: the DNS name it is asked (`<label>[.<suffix>].ZONE`)
    normalised: str = ""  # an email zone asked for an address: the address as it hashes it
    hashed_with: str = ""  # an email zone: its hash (sha1, md5, sha256)


@dataclass(frozen=True, slots=True)
class Explanation:
    query: Query
    source: Source | None  # None: the manifest does not say
    published_at: str
    zones: list[ZoneExplanation]
    notes: list[str]


def line_as_written(tree: Tree, path: str, line: int, cache: dict[str, list[str]]) -> str:
    """A bulk file's line as written, its comment cut off ("" when it cannot be read): the rows
    of an email zone hold the hash, the file the address an operator recognises."""
    if path not in cache:
        try:
            cache[path] = tree.read(path).decode("utf-8", "replace").splitlines()
        except PublisherError:
            cache[path] = []
    found = cache[path]
    return found[line - 1].split("#", 1)[0].strip() if 0 < line <= len(found) else ""


def _tree_for(source: Source | None, lists: Path) -> tuple[Tree, ListsRepo | None, str | None, list[str]]:
    """The lists the published zones were compiled from, and where to blame them."""
    commit = source.commit if source is not None else None
    if source is not None and source.kind == "git" and commit:
        candidates: list[ListsRepo] = []
        try:
            candidates.append(find_repo(lists))
        except PublisherError:
            pass
        if source.repo:
            candidates.append(ListsRepo(Path(source.repo), source.prefix or ""))
        for where in candidates:
            if where.root.is_dir() and commit_exists(where, commit):
                return GitTree(where, commit), where, commit, []
        return (
            DirTree(lists),
            None,
            None,
            [f"commit {commit[:10]} is not in {lists}; entries read from the work tree, no blame"],
        )
    return DirTree(lists), None, None, ["the published zones were compiled from the work tree; no blame"]


def _deciding(
    source: SourceData, query: Query, as_of: dt.datetime, email: EmailSettings | None = None
) -> tuple[Hit | None, list[Hit]]:
    """The entry that decides the source's answer (most specific live one), and the expired hits."""
    hits = covering_entries(source, query, email)
    live = [h for h in hits if h.value.expires is None or h.value.expires > as_of]
    return (live[0] if live else None), [h for h in hits if h not in live]


def explain(text: str, lists: Path, zones_dir: Path, *, now: dt.datetime) -> Explanation:
    try:
        query = parse_query(text)
    except AddressError as exc:
        said = exc.message if text.strip() in exc.message else f"{text!r}: {exc.message}"
        raise UsageError(said + (f"; {exc.fix}" if exc.fix else "")) from exc
    published = load_published(zones_dir)
    manifest = published.manifest
    source = manifest.source
    published_at = manifest.published_at or ""
    try:
        as_of = dt.datetime.fromisoformat(published_at)
    except ValueError:
        as_of = now
    tree, where, commit, notes = _tree_for(source, lists)
    loaded = load_lists(tree, as_of=as_of)
    wanted: dict[str, set[int]] = {}
    vias: dict[tuple[str, int], str] = {}  # entries of generated files: their SPF chain
    found: list[tuple[str, list[tuple[Hit, bool]], Hit | None]] = []
    settings: dict[str, EmailSettings] = {}
    for name, zone in sorted(published.zones.items()):
        cfg = loaded.config.zone(name) if loaded.config is not None else None
        email = cfg.email if cfg is not None and zone.info.kind == "email" else None
        if zone.info.kind == "email":
            asked = email_asked(email, query) if email is not None else None
            if email is None or asked is None or not asked.name:
                if query.family == EMAIL:
                    notes.append(f"{name}: not asked: {asked.why if asked else 'its email settings are unknown'}")
                continue
            settings[name] = email
        elif (query.family == 0) != (zone.info.kind == "domain") or query.family == EMAIL:
            continue
        listing: list[tuple[Hit, bool]] = []
        exclusions: list[Hit] = []
        bulk_lines: dict[str, list[str]] = {}
        for src in loaded.sources.get(name, []):
            hit, _ = _deciding(src, query, as_of, email)
            if hit is None:
                continue
            if email is not None and hit.line not in src.entries:  # a bulk line: as written, not its hash
                hit = replace(hit, text=line_as_written(tree, src.path, hit.line, bulk_lines) or hit.text)
            meta = src.entries.get(hit.line)
            if meta is not None and meta.via:
                vias[(hit.path, hit.line)] = meta.via
            if hit.value.exclude:
                exclusions.append(hit)
            else:
                expired = hit.value.expires is not None and hit.value.expires <= now
                listing.append((hit, expired))
        nearest = min(exclusions, key=lambda h: h.size) if exclusions else None
        for hit in [h for h, _ in listing] + ([nearest] if nearest else []):
            wanted.setdefault(hit.path, set()).add(hit.line)
        found.append((name, listing, nearest))
    blame: dict[tuple[str, int], BlameLine] = {}
    if where is not None and commit is not None:
        for path, lines in wanted.items():
            try:
                blame.update(((path, n), b) for n, b in blame_lines(where, commit, path, lines).items())
            except PublisherError as exc:
                notes.append(f"no blame for {path}: {exc}")
    zones: list[ZoneExplanation] = []
    for name, listing, nearest in found:
        zone = published.zones[name]
        email = settings.get(name)
        answers = zone_answer(zone, query, email)
        test_point = (query.family == 4 and query.addr == TEST_LISTED_V4) or (
            query.family == 0 and query.domain == TEST_LISTED_DOMAIN
        )
        entries = [Because(h, blame.get((h.path, h.line)), exp, vias.get((h.path, h.line))) for h, exp in listing]
        excl = Because(nearest, blame.get((nearest.path, nearest.line)), False) if nearest and not answers else None
        explained = ZoneExplanation(name, zone.info.serial, zone.info.role, answers, entries, excl, test_point)
        if email is not None:
            asked = email_asked(email, query)
            explained = replace(
                explained, asked=f"{asked.name}.{name}", normalised=asked.normalised, hashed_with=email.hash
            )
        zones.append(explained)
    return Explanation(query, source, published_at, zones, notes)
