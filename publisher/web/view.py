"""What the web face shows: the published generation, read the way the DNS server reads it.

`PublicView` is one immutable snapshot: the compiled zones of zones/current (their answers
are the server's answers), each zone's zones.yaml `web:` as the manifest carries it, and the
lists of the published commit (the entries behind an answer). `Views` holds the current one:
it loads in a background thread, polls zones/current every half second and swaps the whole
view when the generation changes; a failed load is logged and the old view stays. A request
in flight keeps the view it started with.

Only an entry's public fields (the zone's `web: public`) ever leave this module: never the
file or line of a list file, never a ticket or author unless the zone says so.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from publisher.addresses import TEST_LISTED_DOMAIN, TEST_LISTED_V4, AddressError, address_count, format_v4
from publisher.compile.cover import CoverIndex
from publisher.compile.lookup import EMAIL, Hit, Query, email_asked, parse_query, zone_answer
from publisher.compile.zone import CompiledZone
from publisher.emails import EmailSettings
from publisher.errors import PublisherError, WebError
from publisher.lists.load import load_lists
from publisher.lists.tree import DirTree, Tree
from publisher.model import SUBST, Kind, Role, SourceData, ZonePage
from publisher.publish.manifest import Counts, Published, current_generation, load_published
from publisher.publish.vcs import GitTree, commit_exists, find_repo
from publisher.web.service import ZoneFacts

log = logging.getLogger(__name__)

#: What the test point's answer means, in a zone whose `web: codes` does not say.
TEST_MEANING = "test point (RFC 5782)"
#: The longest query looked up (a domain name has at most 253 characters).
MAX_QUERY = 255


@dataclass(frozen=True, slots=True)
class ZoneView:
    """A published zone as the pages show it."""

    name: str
    kind: Kind
    role: Role
    page: ZonePage
    serial: int
    counts: Counts | None  # as the plan counts: the RFC 5782 test point is not an IPv4 listing

    @property
    def v6_amount(self) -> str:
        """The IPv6 addresses for people, as the plan writes them: 2^80 reads better than 25 digits."""
        return address_count(self.counts.v6_addresses if self.counts else 0, 6)


def _without_test_point(counts: Counts | None, zone: CompiledZone) -> Counts | None:
    """The manifest's counts without the listed test point (127.0.0.2, test.ZONE): every zone
    answers it, by RFC 5782, and the plan does not count it either."""
    if counts is None:
        return None
    if zone.info.kind == "ip" and zone.lookup_v4(TEST_LISTED_V4) >= 0:
        return dataclasses.replace(counts, v4_addresses=max(counts.v4_addresses - 1, 0))
    if zone.info.kind == "domain" and zone.dom_exact.get(TEST_LISTED_DOMAIN, -1) >= 0:
        return dataclasses.replace(counts, domains=max(counts.domains - 1, 0))
    return counts


@dataclass(frozen=True, slots=True)
class Answer:
    """One (A, TXT) pair the zone answers: the code as dotted text, what it means, the TXT."""

    code: str
    meaning: str
    txt: str


@dataclass(frozen=True, slots=True)
class PublicEntry:
    """An entry behind an answer: what it covers, and only the zone's public fields of it."""

    entry: str  # the address block or name the entry lists (192.0.2.0/28, *.example.com)
    fields: tuple[tuple[str, str], ...]  # (field, value) in the order of `web: public`

    def get(self, name: str) -> str | None:
        return next((value for key, value in self.fields if key == name), None)


@dataclass(frozen=True, slots=True)
class ZoneLookup:
    """One zone's answer to a lookup."""

    zone: str
    role: Role
    serial: int
    listed: bool  # the zone answers (allow zones: allowlisted)
    answers: tuple[Answer, ...]
    test_point: bool  # an RFC 5782 test point: always listed, by no entry
    entries: tuple[PublicEntry, ...]
    requests: bool  # the zone takes requests (web.requests)
    name: str | None = None  # an email zone: the DNS name it is asked (`<hash>[.<suffix>].ZONE`)

    @property
    def status(self) -> str:
        """ "listed", "not listed", "allowlisted", "not allowlisted"."""
        word = "allowlisted" if self.role == "allow" else "listed"
        return word if self.listed else f"not {word}"


@dataclass(frozen=True, slots=True)
class Lookup:
    query: str  # normalised: an address (IPv4-mapped read as IPv4) or a domain A-label; an email address as given
    kind: Kind
    generation: str
    published_at: str
    zones: tuple[ZoneLookup, ...]  # the zones of the query's kind, by name


def _parse(text: str) -> Query:
    if len(text) > MAX_QUERY:
        raise WebError(400, "Bad query", f"the query is longer than {MAX_QUERY} characters", field="q")
    if not text.strip():
        raise WebError(400, "Bad query", "give an IPv4 or IPv6 address, a domain name or an email address", field="q")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise WebError(400, "Bad query", "the query holds control characters", field="q")
    if "/" in text:
        raise WebError(400, "Bad query", "a block or a path: look up one address or one domain name", field="q")
    try:
        return parse_query(text)
    except AddressError as exc:
        raise WebError(400, "Bad query", f"not an address or a domain name: {exc.message}", field="q") from None
    except (ValueError, UnicodeError):
        raise WebError(400, "Bad query", "not an address or a domain name", field="q") from None


def _date(value: dt.datetime) -> str:
    """As the lists write it: a plain date D counts through D (it stops at D+1 00:00 UTC)."""
    if value.time() == dt.time(0):
        return (value - dt.timedelta(days=1)).date().isoformat()
    return value.isoformat().replace("+00:00", "Z")


class PublicView:
    """One published generation: zones, their pages and the entries behind their answers."""

    def __init__(
        self,
        published: Published,
        sources: Mapping[str, list[SourceData]],
        *,
        as_of: dt.datetime,
        emails: Mapping[str, EmailSettings] | None = None,
    ) -> None:
        manifest = published.manifest
        self.generation = published.generation
        self.published_at = manifest.published_at or ""
        self.as_of = as_of
        self._emails: dict[str, EmailSettings] = dict(emails or {})  # each email zone hashes a query its way
        self._compiled: dict[str, CompiledZone] = dict(published.zones)
        # Each source with its index: the entries covering a query by bisection, not a scan of a
        # million-line feed per lookup (built once per generation, in the loading thread).
        self._sources = {name: [(s, CoverIndex.build(s)) for s in found] for name, found in sources.items()}
        self.zones: dict[str, ZoneView] = {
            name: ZoneView(
                name,
                entry.kind,
                entry.role,
                entry.meta.web or ZonePage(),
                entry.serial,
                _without_test_point(entry.meta.counts, self._compiled[name]),
            )
            for name, entry in sorted(manifest.zones.items())
        }

    # --- service.Published ------------------------------------------------------------

    def zone_facts(self) -> Mapping[str, ZoneFacts]:
        return {name: ZoneFacts(z.name, z.kind, z.role, z.page) for name, z in self.zones.items()}

    def listed_in(self, target: str) -> tuple[str, ...]:
        try:
            query = parse_query(target)
        except (AddressError, ValueError, UnicodeError):
            return ()
        return tuple(
            name for name in sorted(self._compiled) if zone_answer(self._compiled[name], query, self._emails.get(name))
        )

    # --- lookups ------------------------------------------------------------------------

    def zone(self, name: str) -> ZoneView:
        found = self.zones.get(name.lower().rstrip("."))
        if found is None:
            raise WebError(404, "No such zone", f"no zone named {name!r} is published here", field="zone")
        return found

    def lookup(self, text: str) -> Lookup:
        """Every zone of the query's kind: listed or not, its answers, the public fields of the
        entries behind them. WebError 400 (field "q") for anything but an address, a domain or an
        email address. An email address is hashed by each email zone with its settings; it is
        never logged, and an entry shows as the hash the zone lists, not the address as written."""
        query = _parse(text)
        kind: Kind = "email" if query.family == EMAIL else "domain" if query.family == 0 else "ip"
        test_point = (query.family == 4 and query.addr == TEST_LISTED_V4) or (
            query.family == 0 and query.domain == TEST_LISTED_DOMAIN
        )
        found = []
        for name, zone in self.zones.items():
            if zone.kind != kind:
                continue
            email = self._emails.get(name)
            asked = email_asked(email, query).name if email is not None else ""
            if kind == "email" and not asked:
                continue  # a hash of another algorithm, or a zone whose settings are unknown
            # an email zone is asked by the name hashed once here (its rows hold that name too)
            asking = Query(0, domain=asked) if asked else query
            pairs = zone_answer(self._compiled[name], asking)
            said = TEST_MEANING if test_point else ""  # the test point's answer, where no meaning is set
            answers = tuple(Answer(format_v4(code), zone.page.meaning(code) or said, txt) for code, txt in pairs)
            entries = self._entries(zone, asking) if pairs and not test_point else ()
            found.append(
                ZoneLookup(
                    name,
                    zone.role,
                    zone.serial,
                    bool(pairs),
                    answers,
                    test_point and bool(pairs),
                    entries,
                    zone.page.requests is not None and kind != "email",
                    f"{asked}.{name}" if asked else None,
                )
            )
        return Lookup(query.text, kind, self.generation, self.published_at, tuple(found))

    def _entries(self, zone: ZoneView, query: Query) -> tuple[PublicEntry, ...]:
        """Per source, the entry that decides its answer (the most specific one live at the
        publish), when it lists rather than excludes: its public fields only."""
        out: list[PublicEntry] = []
        seen: set[tuple[str, int]] = set()
        for source, index in self._sources.get(zone.name, []):
            live = [h for h in index.covering(query) if h.value.live(self.as_of)]
            if not live or live[0].value.exclude or (source.path, live[0].line) in seen:
                continue
            seen.add((source.path, live[0].line))
            out.append(self._public(zone, source, live[0], query))
        return tuple(out)

    @staticmethod
    def _public(zone: ZoneView, source: SourceData, hit: Hit, query: Query) -> PublicEntry:
        meta = source.entries.get(hit.line)
        value = hit.value
        known: dict[str, str | None] = {
            "reason": value.reason.replace(SUBST, query.text) or None,
            "added": meta.added if meta else None,
            "expires": _date(value.expires) if value.expires else None,
            "code": format_v4(value.code),
            "ticket": meta.ticket if meta else None,
            "by": meta.by if meta else None,
            "owner": meta.owner if meta else None,
            "contact": meta.contact if meta else None,
        }
        fields = tuple((f, v) for f in zone.page.public if (v := known.get(f)) is not None)
        return PublicEntry(hit.text, fields)  # the block or name as the lists normalise it


# --- loading ------------------------------------------------------------------------------


def _tree(lists: Path, published: Published) -> Tree:
    """The lists the generation was compiled from: its commit when it came from git and the
    lists' repository has it, else the lists folder as it is."""
    source = published.manifest.source
    if source is not None and source.kind == "git" and source.commit:
        try:
            where = find_repo(lists)
            if commit_exists(where, source.commit):
                return GitTree(where, source.commit)
            log.warning("commit %s is not in %s: entries read from the work tree", source.commit[:10], lists)
        except PublisherError as exc:
            log.warning("cannot read the published commit (%s): entries read from the work tree", exc)
    return DirTree(lists)


def load_view(zones_dir: Path, lists: Path) -> PublicView:
    """Load the current generation and the lists behind it (ArtifactError when none)."""
    published = load_published(zones_dir)
    try:
        as_of = dt.datetime.fromisoformat(published.manifest.published_at or "")
    except ValueError:
        as_of = dt.datetime.now(dt.UTC)
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=dt.UTC)
    loaded = load_lists(_tree(lists, published), as_of=as_of)
    zones = loaded.config.zones if loaded.config is not None else ()
    emails = {z.name: z.email for z in zones if z.email is not None}
    return PublicView(published, loaded.sources, as_of=as_of, emails=emails)


class Views:
    """The current PublicView, reloaded in a background thread when zones/current changes."""

    def __init__(
        self,
        zones_dir: Path,
        lists: Path,
        *,
        interval: float = 0.5,
        loader: Callable[[Path, Path], PublicView] = load_view,
    ) -> None:
        self.zones_dir = zones_dir
        self.lists = lists
        self.interval = interval
        self._loader = loader
        self._view: PublicView | None = None
        self._seen: str | None = None  # the generation link last tried (loaded or failed)
        self._public = "nothing is published yet; try later"  # what a visitor reads while there is no view
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def latest(self) -> PublicView | None:
        """The view in place, None while nothing is loaded (pages that can show without one)."""
        return self._view

    def current(self) -> PublicView:
        """The view requests use; WebError 503 while nothing is loaded."""
        view = self._view
        if view is None:  # the reason (a path, a fix) is in the log, not for the public
            raise WebError(503, "Nothing published", self._public, retry_after=5)
        return view

    def refresh(self) -> bool:
        """Load the generation zones/current points to when it is not the one tried last;
        True when a new view is in place. A failure is logged; the old view stays."""
        try:
            gen = current_generation(self.zones_dir)
        except PublisherError as exc:
            gen, why = None, str(exc)
        else:
            why = f"{self.zones_dir}: nothing published yet (run `make publish` or `make compile`)"
        if gen is None:
            if self._view is None and self._seen != why:  # logged once per state change
                self._seen = why
                self._public = "nothing is published yet; try later"
                log.warning("%s", why)
            return False
        key = gen.name
        if key == self._seen:
            return False
        self._seen = key
        try:
            view = self._loader(self.zones_dir, self.lists)
        except Exception as exc:  # noqa: BLE001 - a broken generation must not stop the page: keep the old view
            self._public = "nothing can be shown at the moment; try later"
            log.error("cannot load %s: %s (still showing %s)", gen.name, exc, self._view and self._view.generation)
            return False
        with self._changed:
            self._view = view
            self._changed.notify_all()
        log.info("showing generation %s", view.generation)
        return True

    def wait_for(self, check: Callable[[PublicView], bool], timeout: float) -> PublicView | None:
        """Block until the current view passes `check` (None after `timeout` seconds)."""
        with self._changed:
            self._changed.wait_for(lambda: self._view is not None and check(self._view), timeout)
            view = self._view
        return view if view is not None and check(view) else None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="web-views", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception:  # pragma: no cover - refresh logs its own failures
                log.exception("view reload failed")
            self._stop.wait(self.interval)
