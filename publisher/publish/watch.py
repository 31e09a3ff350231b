"""Watch mode: keep zones/ in step with the list repository, unattended.

A `schedule` loop on top of release.publish. Every interval one
job fetches and fast-forwards the repository (when it has a remote; when that repository
is the publisher's own checkout, only a fast-forward that changes nothing but the lists
folder: otherwise a push of lists could change the code the service runs), then
publishes when HEAD moved since the last publish, or republishes the published
commit when one of its entries has expired since (the manifest's
`next_expiry`). Guard-rail refusals and validation errors are logged and leave
the last good publish serving; the same refusal is not retried until the
commit or the expiry changes. A job that raises is logged and the loop goes
on: `schedule` itself would stop at the first exception. With an `SpfRunner` (publish/spf_watch.py),
each check first refreshes the SPF partners of the zones that are due, pushes the refresh's commit
to the branch's upstream (when it has one; a refused push is logged and changes nothing), then
publishes the commit. A pull that had to drop refresh commits upstream lacks (`sync`) makes every
SPF zone due at once, so that the same check makes them again on top of upstream.
Every failure is logged once
per distinct message (a diverged upstream is one message until it changes), not at every
interval; the counters (`pull_failures`, `last_pull_ok`) feed `serve --metrics`.

`serve --watch` on a fresh server has nothing to serve yet: `wait_for_publish` runs the
checks in the foreground until zones/ holds a publish.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import schedule

from publisher.errors import GuardRailError, PublisherError, ValidationFailed
from publisher.publish.manifest import Manifest, read_manifest
from publisher.publish.release import publish
from publisher.publish.vcs import commit_info, find_repo, holds_running_code, push_head, sync

if TYPE_CHECKING:
    from publisher.publish.spf_watch import SpfRunner

log = logging.getLogger("publisher.watch")

Clock = Callable[[], dt.datetime]
#: Why a check publishes HEAD when zones/ holds a compile of the work tree (make serve).
NOT_FROM_GIT = "zones/ was not published from git"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _due_expiry(manifest: Manifest, now: dt.datetime) -> str | None:
    """The earliest `next_expiry` of the published zones when it has passed."""
    due: list[str] = []
    for zone in manifest.zones.values():
        text = zone.meta.next_expiry
        if not text:
            continue
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            continue
        if when <= now:
            due.append(text)
    return min(due) if due else None


class Watcher:
    """One check at a time; `job` is the never-raising wrapper the scheduler runs."""

    def __init__(
        self,
        lists: Path,
        zones_dir: Path,
        *,
        clock: Clock = _utcnow,
        pull: bool = True,
        lists_only: bool | None = None,
        spf: SpfRunner | None = None,
    ) -> None:
        self.lists = lists
        self.spf = spf  # refreshes SPF partners on their zones' schedule (publish/spf_watch.py)
        self.zones_dir = zones_dir
        self.clock = clock
        self.pull = pull
        # pull nothing but lists (None: when the lists share the running publisher's checkout)
        self.lists_only = lists_only
        self.pull_error: str | None = None  # the last one logged: a failing pull is logged once
        self.pull_failures = 0  # pulls that failed since start (the metrics' counter)
        self.last_pull_ok: float | None = None  # epoch seconds of the last successful fetch
        self.check_error: str | None = None  # the last failed check logged: logged once, not every interval
        self.push_error: str | None = None  # the last failed push of a refresh commit logged: logged once
        self.last = "no check yet"  # what the last check did, one line (`watch --once` prints it)
        # (commit, why, expiry) attempts that ended for good: published, nothing to do, or refused
        self.settled: set[tuple[str, str, str | None]] = set()
        self.runs = 0
        self.failures = 0

    def candidates(self, *, pull: bool = True) -> list[tuple[str, str, str | None]]:
        """What could be published, best first: (commit, why, expiry). Empty: up to date.

        A new commit comes first; when it is refused, the published commit is
        still republished for its expired entries.
        """
        where = find_repo(self.lists)
        manifest = read_manifest(self.zones_dir)
        if self.pull and pull:
            lists_only = holds_running_code(where) if self.lists_only is None else self.lists_only
            try:
                result = sync(where, lists_only=lists_only)
                self.pull_error = None
                self.last_pull_ok = time.time()
                if result.moved:
                    log.info("pulled: %s", result.message)
                if result.dropped_refreshes and self.spf is not None:
                    self.spf.refresh_now()  # make them again, on top of what was pulled, in this check
            except PublisherError as exc:  # publish what we have; say why it is not newer
                self.pull_failures += 1
                if str(exc) != self.pull_error:
                    log.error("pull failed: %s\n  %s", exc, _serving(manifest, self.zones_dir))
                else:
                    log.debug("pull failed again: %s", exc)
                self.pull_error = str(exc)
        head = commit_info(where).sha
        if manifest is None:
            return [(head, "first publish", None)]
        source = manifest.source
        if source is None or source.kind != "git":
            return [(head, NOT_FROM_GIT, None)]
        out: list[tuple[str, str, str | None]] = []
        if head != (source.head or source.commit):
            out.append((head, "new commit", None))
        expiry = _due_expiry(manifest, self.clock())
        if expiry is not None:
            out.append((str(source.commit), "entries expired", expiry))
        return out

    def push(self) -> None:
        """Push the refresh's commit upstream; a failure is logged (once per message), never raised."""
        try:
            result = push_head(find_repo(self.lists))
        except PublisherError as exc:
            if str(exc) != self.push_error:  # a warning: a service with read-only access is normal
                log.warning("spf: %s", exc)
            else:
                log.debug("spf: push failed again: %s", exc)
            self.push_error = str(exc)
            return
        self.push_error = None
        if result.pushed:
            log.info("spf: pushed %s", result.message)
        else:
            log.info("spf: not pushed: %s", result.message)

    def check(self) -> str:
        """One pass. Returns what happened (`last` says it in a sentence); raises only for
        unexpected failures."""
        todo = self.candidates()
        if self.spf is not None and self.spf.run_due(self.clock()):
            if self.pull:
                self.push()
            todo = self.candidates(pull=False)  # the refresh's commit, on top of what was pulled
        if not todo:
            manifest = read_manifest(self.zones_dir)
            source = manifest.source if manifest is not None else None
            commit = str(source.commit if source is not None else None)[:10]
            head = source.head if source is not None else None
            rolled = f" (HEAD {head[:10]}: a rollback)" if head and head[:10] != commit else ""
            stale = "; the pull failed (see the log)" if self.pull_error else ""
            self.last = f"nothing new: commit {commit} is published{rolled}{stale}"
            return "up to date"
        fresh = [t for t in todo if t not in self.settled]
        if not fresh:
            self.last = f"nothing new: commit {todo[0][0][:10]} ({todo[0][1]}) was tried already; see the log"
            return "unchanged since the last attempt"
        target = fresh[0]
        if len(self.settled) > 1000:  # a watch runs for months; keep the memory bounded
            self.settled.clear()
        commit, why, _ = target
        action = "expiry" if why == "entries expired" else "watch"
        try:
            outcome = publish(self.lists, self.zones_dir, rev=commit, now=self.clock(), action=action, on_wait=log.info)
        except (GuardRailError, ValidationFailed) as exc:
            self.settled.add(target)
            log.error("commit %s (%s) not published: %s", commit[:10], why, exc)
            self.last = f"commit {commit[:10]} ({why}) not published: {str(exc).splitlines()[0]}"
            if isinstance(exc, GuardRailError):
                return "refused"
            for problem in exc.problems[:20]:
                log.error("  %s", problem.format().replace("\n", "\n  "))
            return "invalid"
        self.settled.add(target)
        if not outcome.written:
            log.info("commit %s (%s): nothing to publish", commit[:10], why)
            self.last = f"nothing to publish: commit {commit[:10]} ({why}) answers the same as what is published"
            return "nothing to publish"
        p = outcome.prepared
        serials = ", ".join(f"{n} serial {p.serial(n)}" for n in sorted(p.changed))
        if not serials and why == NOT_FROM_GIT:  # after a compile: the same answers, now from a commit
            kept = ", ".join(f"{n} serial {p.serial(n)}" for n in sorted(p.zones))
            serials = f"same answers as zones/ held, serials kept: {kept}"
        serials = serials or "settings only (same answers, serials kept)"
        log.info("published commit %s (%s): %s", commit[:10], why, serials)
        verb = "republished" if action == "expiry" else "published"
        self.last = f"{verb} commit {commit[:10]} ({why}): {serials}"
        return "published"

    def job(self) -> None:
        """The scheduled job: never raises, so one bad run cannot stop the loop."""
        self.runs += 1
        try:
            status = self.check()
            self.check_error = None
            log.debug("check %d: %s", self.runs, status)
        except PublisherError as exc:
            self.failures += 1
            self.last = f"check failed: {exc}"
            if str(exc) != self.check_error:
                log.error("check %d failed: %s", self.runs, exc)
            else:
                log.debug("check %d failed again: %s", self.runs, exc)
            self.check_error = str(exc)
        except Exception as exc:
            self.failures += 1
            self.last = f"check failed unexpectedly: {exc!r}"
            log.exception("check %d failed unexpectedly", self.runs)

    def published(self) -> bool:
        """Does zones/ hold a publish (anything the server could load)?"""
        try:
            return read_manifest(self.zones_dir) is not None
        except PublisherError:
            return False


def _serving(manifest: Manifest | None, zones_dir: Path) -> str:
    """What stays served while the lists cannot be pulled, for the log."""
    if manifest is None:
        return f"{zones_dir} holds no publish yet"
    source = manifest.source
    commit = source.commit if source is not None else None
    what = f"commit {commit[:10]}" if commit else f"generation {manifest.generation}"
    return f"{zones_dir} keeps serving {what} (published {manifest.published_at})"


def wait_for_publish(watcher: Watcher, *, interval: float, stop: threading.Event | None = None) -> bool:
    """Check every `interval` seconds until zones/ holds a publish: `serve --watch` on a fresh server.

    True as soon as something is published (at once when it was already), False when `stop`
    is set first. Why a check publishes nothing (an unreachable upstream, a refused plan,
    invalid lists) is logged by the Watcher once per distinct reason; this adds one line.
    """
    stop = stop or threading.Event()
    said = False
    while not watcher.published():
        watcher.job()
        if watcher.published():
            break
        if not said:
            log.warning(
                "nothing published in %s yet: not serving until a commit of %s publishes (%s); checking every %gs",
                watcher.zones_dir,
                watcher.lists,
                watcher.last,
                interval,
            )
            said = True
        if stop.wait(interval):
            return False
    return True


def run(
    job: Callable[[], None],
    *,
    interval: float,
    iterations: int | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run `job` now and then every `interval` seconds, `iterations` times (None: until `stop`).

    Returns the number of runs. The waits are the loop's own (an Event wait that
    `stop` interrupts), so a caller in another thread can end it at once.
    """
    stop = stop or threading.Event()
    scheduler = schedule.Scheduler()
    runs = 0

    def counted() -> None:
        nonlocal runs
        runs += 1
        try:
            job()
        except Exception:
            log.exception("scheduled job failed")

    # schedule types the interval as int, but builds a timedelta from it: fractions work
    scheduler.every(interval).seconds.do(counted)  # type: ignore[arg-type]
    counted()
    while (iterations is None or runs < iterations) and not stop.is_set():
        idle = scheduler.idle_seconds
        if idle is not None and idle > 0:
            stop.wait(idle)
        if stop.is_set():
            break
        scheduler.run_pending()
    scheduler.clear()
    return runs


def watch(
    lists: Path,
    zones_dir: Path,
    *,
    interval: float = 30.0,
    iterations: int | None = None,
    stop: threading.Event | None = None,
    pull: bool = True,
    watcher: Watcher | None = None,
) -> Watcher:
    """`publisher watch`: the loop over a Watcher (a new one unless given). `serve --watch`
    runs this in a thread."""
    watcher = watcher or Watcher(lists, zones_dir, pull=pull)
    if iterations == 1:  # `watch --once`: no interval to speak of
        log.info("checking %s once, publishing into %s", lists, zones_dir)
    elif iterations is not None:
        log.info("checking %s %d times, every %gs, publishing into %s", lists, iterations, interval, zones_dir)
    else:
        log.info("watching %s every %gs, publishing into %s", lists, interval, zones_dir)
    try:
        where = find_repo(lists)
        if pull and holds_running_code(where):
            log.warning(
                "the lists share the publisher's own checkout %s: only fast-forwards that change nothing "
                "outside %s/ are pulled; keep the lists in a repository of their own (docs/scaling.md)",
                where.root,
                where.prefix,
            )
    except PublisherError:
        pass  # the first check logs it
    run(watcher.job, interval=interval, iterations=iterations, stop=stop)
    return watcher
