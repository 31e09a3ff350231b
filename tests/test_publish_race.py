"""Two publishes at once (`serve --watch` and a manual `publish` or `rollback`): the second
waits for the first and plans against what the first published, so the serials differ and
increase, and every history line is what was served. The race is made deterministic with
the publish's step hook: publish A pauses after its plan, publish B starts meanwhile.
"""

from __future__ import annotations

import datetime as dt
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from tests.conftest import ROOT, stop_process
from tests.test_publish import ABUSE, FILES, answer, commit_file, serials
from tests.test_vcs import init_repo

from publisher.errors import ArtifactError
from publisher.publish import artifacts, history
from publisher.publish.lock import writer_lock
from publisher.publish.manifest import current_generation, read_manifest
from publisher.publish.release import apply, prepare, publish

TIMEOUT = 60.0
BL = "bl.example.test"
X, Y = "203.0.113.91", "203.0.113.92"  # listed by commit 2, commits 2 and 3


def _listing(*ips: str) -> str:
    return ABUSE + "".join(f"  - ip: {ip}\n    reason: race {ip}\n" for ip in ips)


class Paused:
    """A step hook that stops its publish at `at` until released."""

    def __init__(self, at: str) -> None:
        self.at = at
        self.reached = threading.Event()
        self.go = threading.Event()

    def __call__(self, step: str) -> None:
        if step == self.at:
            self.reached.set()
            assert self.go.wait(TIMEOUT), "never released"


def _lines(stream: object) -> queue.Queue[str]:
    """The lines of a pipe, read in a thread (a queue.get with a timeout never hangs the test)."""
    out: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
            out.put(line)
        out.put("")  # end of stream

    threading.Thread(target=pump, daemon=True).start()
    return out


def test_a_second_publish_waits_and_gets_a_higher_serial(tmp_path: Path) -> None:
    lists = init_repo(tmp_path / "repo", FILES)
    zones = tmp_path / "zones"
    publish(lists, zones)
    first = serials(zones)[BL]
    c2 = commit_file(lists, "bl/abuse.yaml", _listing(X), "list X")
    c3 = commit_file(lists, "bl/abuse.yaml", _listing(X, Y), "list X and Y")

    paused = Paused("validated")  # A has planned against the first publish, and writes next
    result: list[object] = []
    a = threading.Thread(target=lambda: result.append(publish(lists, zones, rev=c2, step=paused)))
    a.start()
    assert paused.reached.wait(TIMEOUT)
    cmd = [sys.executable, "-m", "publisher", "--lists", str(lists), "--zones", str(zones), "publish", "--commit", c3]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    b = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        err = _lines(b.stderr)
        seen: list[str] = []
        while not seen or (seen[-1] and "waiting for another publish" not in seen[-1]):
            seen.append(err.get(timeout=TIMEOUT))  # B says that it waits, or ends
        paused.go.set()
        a.join(TIMEOUT)
        out, _ = b.communicate(timeout=TIMEOUT)
    finally:
        paused.go.set()
        stop_process(b)
    assert b.returncode == 0, "".join(seen)

    records = history.read(zones)
    assert [r.commit for r in records] == [records[0].commit, c2, c3]
    moved = [r.zones[BL].serial for r in records]
    assert moved[0] == first and artifacts.serial_gt(moved[1], moved[0]) and artifacts.serial_gt(moved[2], moved[1])
    assert [r.zones[BL].previous_serial for r in records[1:]] == moved[:2]  # B planned against A's publish
    # what is served is B's publish, and its history line says so
    manifest = read_manifest(zones)
    assert manifest is not None and manifest.generation == records[-1].generation == current_generation(zones).name
    assert serials(zones)[BL] == moved[2] and answer(zones, BL, Y)
    assert f"bl.example.test serial {moved[2]}: +1 listing" in out
    # and it told the operator why it took a while
    assert f"waiting for another publish (pid {os.getpid()}) to finish" in seen[-1]


def test_a_plan_made_before_another_publish_is_not_applied(tmp_path: Path) -> None:
    """prepare, then another publish, then apply: the stale plan would reuse the serial."""
    lists = init_repo(tmp_path / "repo", FILES)
    zones = tmp_path / "zones"
    publish(lists, zones)
    c2 = commit_file(lists, "bl/abuse.yaml", _listing(X), "list X")
    stale = prepare(lists, zones, rev=c2, now=dt.datetime.now(dt.UTC))
    commit_file(lists, "bl/abuse.yaml", _listing(Y), "list Y")
    publish(lists, zones)
    served = current_generation(zones)
    with pytest.raises(ArtifactError, match=r"changed since this plan was made: .* nothing was written"):
        apply(stale, zones)
    assert current_generation(zones) == served and answer(zones, BL, X) == [] and answer(zones, BL, Y)
    assert len(history.read(zones)) == 2


def test_a_publish_that_cannot_get_the_lock_gives_up_and_writes_nothing(tmp_path: Path) -> None:
    lists = init_repo(tmp_path / "repo", FILES)
    zones = tmp_path / "zones"
    publish(lists, zones)
    commit_file(lists, "bl/abuse.yaml", _listing(X), "list X")
    served = current_generation(zones)
    failed: list[BaseException] = []
    heard: list[str] = []

    def other() -> None:  # another thread is another writer
        try:
            publish(lists, zones, lock_timeout=1.5, on_wait=heard.append)
        except ArtifactError as exc:
            failed.append(exc)

    with writer_lock(zones):
        t = threading.Thread(target=other)
        t.start()
        t.join(TIMEOUT)
    assert len(failed) == 1 and f"locked by another publish (pid {os.getpid()})" in str(failed[0])
    assert "nothing was published" in str(failed[0])
    assert heard and "waiting for another publish" in heard[0]
    assert current_generation(zones) == served and answer(zones, BL, X) == []
