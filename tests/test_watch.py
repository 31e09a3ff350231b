"""watch: new commits and expiries published unattended; failures logged, the loop goes on."""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path

import pytest
from tests.conftest import ROOT
from tests.test_publish import ABUSE, FILES, NOW, answer, commit_file, run_cli, serials
from tests.test_vcs import BOB, commit_all, git, init_repo, write

from publisher.publish import artifacts, history
from publisher.publish.manifest import current_generation, read_manifest
from publisher.publish.watch import Watcher, run, watch


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def test_watch_publishes_new_commits_and_expiries(tmp_path: Path) -> None:
    lists = init_repo(tmp_path / "repo", FILES)
    zones = tmp_path / "zones"
    clock = Clock(NOW)
    watcher = Watcher(lists, zones, clock=clock)
    assert watcher.check() == "published"
    first = serials(zones)["bl.example.test"]
    assert watcher.check() == "up to date"
    temp = "  - ip: 203.0.113.77\n    reason: temporary block\n    expires: 2026-11-27T12:00:00Z\n"
    commit_file(lists, "bl/abuse.yaml", ABUSE + temp, "block 203.0.113.77 for two hours", BOB)
    clock.now = NOW + dt.timedelta(minutes=1)
    assert watcher.check() == "published"
    second = serials(zones)["bl.example.test"]
    assert artifacts.serial_gt(second, first) and answer(zones, "bl.example.test", "203.0.113.77")
    clock.now = dt.datetime(2026, 11, 27, 11, 59, tzinfo=dt.UTC)
    assert watcher.check() == "up to date"
    clock.now = dt.datetime(2026, 11, 27, 12, 0, 1, tzinfo=dt.UTC)
    assert watcher.check() == "published"
    assert answer(zones, "bl.example.test", "203.0.113.77") == []
    assert artifacts.serial_gt(serials(zones)["bl.example.test"], second)
    records = history.read(zones)
    assert [r.action for r in records] == ["watch", "watch", "expiry"]
    zone = records[-1].zones["bl.example.test"]
    assert zone.listings_expired == 1 and zone.measures["ipv4"].removed == 1
    assert watcher.check() == "up to date"


def test_a_refused_commit_is_logged_once_and_leaves_the_last_good_publish(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lists = init_repo(tmp_path / "repo", FILES)
    zones = tmp_path / "zones"
    watcher = Watcher(lists, zones, clock=Clock(NOW))
    watcher.check()
    good = current_generation(zones)
    commit_file(lists, "bl/abuse.yaml", ABUSE + "  - ip: 203.0.113.0/24\n    reason: far too wide\n", "oops")
    with caplog.at_level(logging.ERROR, logger="publisher.watch"):
        assert watcher.check() == "refused"
        assert watcher.check() == "unchanged since the last attempt"
    assert "covers-protected" in caplog.text and caplog.text.count("not published") == 1
    commit_file(lists, "bl/abuse.yaml", ABUSE + "  - ip: 192.0.2.1000\n", "worse")
    assert watcher.check() == "invalid"
    assert current_generation(zones) == good
    commit_file(lists, "bl/abuse.yaml", ABUSE + "  - ip: 203.0.113.99\n    reason: fixed\n", "fixed")
    assert watcher.check() == "published"
    assert answer(zones, "bl.example.test", "203.0.113.99")


def test_watch_pulls_from_the_remote_fast_forward_only(tmp_path: Path) -> None:
    init_repo(tmp_path / "origin", FILES)
    git(tmp_path, "clone", "-q", "--bare", str(tmp_path / "origin"), str(tmp_path / "origin.git"))
    git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), str(tmp_path / "served"))
    git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), str(tmp_path / "work"))
    zones = tmp_path / "zones"
    watcher = Watcher(tmp_path / "served" / "lists", zones, clock=Clock(NOW))
    assert watcher.check() == "published"
    write(tmp_path / "work" / "lists", {"bl/abuse.yaml": ABUSE + "  - ip: 203.0.113.99\n    reason: pushed\n"})
    pushed = commit_all(tmp_path / "work", "pushed upstream", BOB)
    git(tmp_path / "work", "push", "-q", "origin", "main")
    assert watcher.check() == "published"
    manifest = read_manifest(zones)
    assert manifest is not None and manifest.source is not None and manifest.source.commit == pushed
    assert answer(zones, "bl.example.test", "203.0.113.99")


def test_one_failing_job_never_stops_the_loop(tmp_path: Path) -> None:
    calls: list[int] = []

    def job() -> None:
        calls.append(len(calls))
        if len(calls) % 2:
            raise RuntimeError("boom")

    assert run(job, interval=0.01, iterations=4) == 4
    assert calls == [0, 1, 2, 3]
    # the Watcher's own job never raises: a broken lists folder is logged and counted
    watcher = Watcher(tmp_path / "missing", tmp_path / "zones")
    watcher.job()
    watcher.job()
    assert (watcher.runs, watcher.failures) == (2, 2)


def test_watch_loop_and_cli_once(tmp_path: Path) -> None:
    lists = init_repo(tmp_path / "repo", FILES)
    zones = tmp_path / "zones"
    watcher = watch(lists, zones, interval=0.01, iterations=3)
    assert (watcher.runs, watcher.failures) == (3, 0)
    assert len(history.read(zones)) == 1
    commit_file(lists, "bl/abuse.yaml", ABUSE + "  - ip: 203.0.113.99\n    reason: cli\n", "cli")
    code, _, _ = run_cli("--lists", str(lists), "--zones", str(zones), "watch", "--once")
    assert code == 0 and answer(zones, "bl.example.test", "203.0.113.99")


def _shared_checkout(tmp_path: Path) -> tuple[Path, Path]:
    """A repository holding code and lists (like a clone of this project), its bare origin, a
    clone the watch serves from, and a clone someone pushes from. Returns (served lists, work)."""
    origin = tmp_path / "origin"
    init_repo(origin, FILES)
    write(origin, {"publisher/serve.py": "print('the real code')\n", "Makefile": "all:\n"})
    commit_all(origin, "the code next to the lists")
    git(tmp_path, "clone", "-q", "--bare", str(origin), str(tmp_path / "origin.git"))
    git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), str(tmp_path / "served"))
    git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), str(tmp_path / "work"))
    return tmp_path / "served" / "lists", tmp_path / "work"


def test_watch_refuses_to_pull_code_into_the_checkout_it_runs_from(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lists, work = _shared_checkout(tmp_path)
    served = lists.parent
    zones = tmp_path / "zones"
    # lists_only: what the watcher does when the publisher runs from this checkout
    watcher = Watcher(lists, zones, clock=Clock(NOW), lists_only=True)
    assert watcher.check() == "published"
    good = current_generation(zones)
    head = git(served, "rev-parse", "HEAD").stdout
    # a push that changes lists and code together
    write(work, {"lists/bl/abuse.yaml": ABUSE + "  - ip: 203.0.113.99\n    reason: with code\n"})
    write(work, {"publisher/serve.py": "import os; os.system('id')\n", "publisher/evil.py": "x = 1\n"})
    commit_all(work, "lists and a little code", BOB)
    git(work, "push", "-q", "origin", "main")
    with caplog.at_level(logging.DEBUG, logger="publisher.watch"):
        watcher.job()
        watcher.job()  # keeps watching: logged once, not at every check
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "refused to fast-forward main to origin/main" in errors[0]
    assert "outside the lists folder lists/" in errors[0]
    assert "publisher/evil.py, publisher/serve.py" in errors[0] and "lists/bl" not in errors[0]
    assert "fix: keep the lists in a repository of their own and point --lists at it" in errors[0]
    assert (watcher.runs, watcher.failures) == (2, 0)
    # nothing pulled, nothing published
    assert git(served, "rev-parse", "HEAD").stdout == head
    assert (served / "publisher" / "serve.py").read_text() == "print('the real code')\n"
    assert not (served / "publisher" / "evil.py").exists()
    assert current_generation(zones) == good and answer(zones, "bl.example.test", "203.0.113.99") == []
    # once the code change is gone upstream, the lists come through
    git(work, "revert", "--no-edit", "HEAD", author=BOB)
    write(work, {"lists/bl/abuse.yaml": ABUSE + "  - ip: 203.0.113.99\n    reason: lists only\n"})
    commit_all(work, "lists only", BOB)
    git(work, "push", "-q", "origin", "main")
    assert watcher.check() == "published"
    assert answer(zones, "bl.example.test", "203.0.113.99") and not (served / "publisher" / "evil.py").exists()


def test_a_separate_lists_repository_pulls_everything(tmp_path: Path) -> None:
    """Without the publisher's code in it, the lists' repository may hold other files (a README,
    CI): the watch pulls them. Which case applies is found from where the code runs."""
    from publisher.publish.vcs import find_repo, holds_running_code

    lists, work = _shared_checkout(tmp_path)
    assert not holds_running_code(find_repo(lists))
    if (ROOT / ".git").exists():  # this checkout: the code and the sample lists share it
        assert holds_running_code(find_repo(ROOT / "lists"))
    watcher = Watcher(lists, tmp_path / "zones", clock=Clock(NOW))
    assert watcher.check() == "published"
    write(work, {"lists/bl/abuse.yaml": ABUSE + "  - ip: 203.0.113.99\n    reason: pushed\n", "README.md": "hi\n"})
    commit_all(work, "lists and a readme", BOB)
    git(work, "push", "-q", "origin", "main")
    assert watcher.check() == "published"
    assert (lists.parent / "README.md").exists()


def test_a_force_push_upstream_is_explained_once_with_the_way_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A rewritten upstream cannot be fast-forwarded: the log says what is still served, how far
    the two histories are apart and how to recover, once per divergence, not at every check."""
    init_repo(tmp_path / "origin", FILES)
    git(tmp_path, "clone", "-q", "--bare", str(tmp_path / "origin"), str(tmp_path / "origin.git"))
    git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), str(tmp_path / "served"))
    git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), str(tmp_path / "work"))
    work, served = tmp_path / "work", tmp_path / "served"
    zones = tmp_path / "zones"
    watcher = Watcher(served / "lists", zones, clock=Clock(NOW))
    write(work / "lists", {"bl/abuse.yaml": ABUSE + "  - ip: 203.0.113.99\n    reason: pushed\n"})
    published = commit_all(work, "pushed upstream", BOB)
    git(work, "push", "-q", "origin", "main")
    assert watcher.check() == "published" and watcher.pull_failures == 0 and watcher.last_pull_ok

    # upstream rewrites that commit away and adds two others, by force
    git(work, "reset", "-q", "--hard", "HEAD~1")
    for n in (1, 2):
        write(work / "lists", {"bl/abuse.yaml": ABUSE + f"  - ip: 203.0.113.{n}\n    reason: rewritten {n}\n"})
        rewritten = commit_all(work, f"rewritten {n}", BOB)
    git(work, "push", "-q", "--force", "origin", "main")
    with caplog.at_level(logging.DEBUG, logger="publisher.watch"):
        for _ in range(3):
            watcher.job()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    message = errors[0]
    assert "cannot fast-forward main to origin/main: they have diverged" in message
    assert f"local main {published[:10]} has 1 commit(s) that origin/main lacks" in message
    assert f"origin/main {rewritten[:10]} has 2 that main lacks" in message
    assert f"keeps serving commit {published[:10]}" in message
    root = served.resolve()
    assert f"git -C {root} reset --hard origin/main" in message and "push a revert" in message
    assert (watcher.pull_failures, watcher.failures) == (3, 0)
    assert watcher.last == f"nothing new: commit {published[:10]} is published; the pull failed (see the log)"
    assert answer(zones, "bl.example.test", "203.0.113.99")  # the last good publish still serves

    # the operator follows the log's advice; the next check publishes upstream's history
    git(served, "reset", "-q", "--hard", "origin/main")
    assert watcher.check() == "published"
    manifest = read_manifest(zones)
    assert manifest is not None and manifest.source is not None and manifest.source.commit == rewritten


def test_watch_once_prints_what_it_did(tmp_path: Path) -> None:
    lists = init_repo(tmp_path / "repo", FILES)
    base = ("--lists", str(lists), "--zones", str(tmp_path / "zones"), "watch", "--once")
    head = git(lists, "rev-parse", "HEAD").stdout.strip()[:10]
    code, out, _ = run_cli(*base)
    # one line on stdout (the log is on stderr), the serials of today's date
    assert code == 0 and re.fullmatch(
        rf"published commit {head} \(first publish\): bl\.example\.test serial \d{{10}}, "
        r"dbl\.example\.test serial \d{10}, wl\.example\.test serial \d{10}\n",
        out,
    ), out
    code, out, _ = run_cli(*base)
    assert (code, out) == (0, f"nothing new: commit {head} is published\n")
    bad = commit_file(lists, "bl/abuse.yaml", ABUSE + "  - ip: 203.0.113.0/24\n    reason: far too wide\n", "oops")
    code, out, _ = run_cli(*base)
    assert code == 0 and out.startswith(f"commit {bad[:10]} (new commit) not published: ") and out.count("\n") == 1


def test_watch_once_logs_one_check_not_an_interval(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lists = init_repo(tmp_path / "repo", FILES)
    base = ("--lists", str(lists), "--zones", str(tmp_path / "zones"), "watch")
    with caplog.at_level(logging.INFO, logger="publisher.watch"):
        assert run_cli(*base, "--once", "--no-pull")[0] == 0
    said = [r.getMessage() for r in caplog.records]
    assert f"checking {lists} once, publishing into {tmp_path / 'zones'}" in said, said
    assert not any("every" in line for line in said), said
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="publisher.watch"):
        assert run_cli(*base, "--iterations", "2", "--interval", "0.01", "--no-pull")[0] == 0
    assert f"checking {lists} 2 times, every 0.01s, publishing into {tmp_path / 'zones'}" in caplog.text, caplog.text


def test_watch_once_after_a_compile_says_it_kept_the_serials(tmp_path: Path) -> None:
    lists, zones = init_repo(tmp_path / "repo", FILES), tmp_path / "zones"
    assert run_cli("--lists", str(lists), "--zones", str(zones), "compile")[0] == 0
    code, out, _ = run_cli("--lists", str(lists), "--zones", str(zones), "watch", "--once", "--no-pull")
    assert code == 0 and "settings only" not in out, out
    assert re.fullmatch(
        r"published commit [0-9a-f]{10} \(zones/ was not published from git\): same answers as zones/ held, "
        r"serials kept: bl\.example\.test serial \d{10}, dbl\.example\.test serial \d{10}, "
        r"wl\.example\.test serial \d{10}\n",
        out,
    ), out


@pytest.mark.parametrize(("command", "default"), [("serve", "60"), ("watch", "30")])
def test_interval_shows_its_default_in_help(command: str, default: str) -> None:
    from publisher.cli.app import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    text = sub.choices[command].format_help()  # type: ignore[attr-defined]
    assert re.search(rf"--interval SECONDS\s+.*\(default {default}\)", text), text
