"""watch's SPF refresh in a clone that follows a remote: its commits are pushed; when they cannot
be, a pull drops them and the refresh makes them again on top of upstream.

Real git: a bare repository on disk is the remote, `served` the service's clone, `editor` a
clone where lists are edited and pushed.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest
from tests.spf_builders import NOW
from tests.spf_repo import FILES, PARTNERS, ZONE, FakeExpand, NoResolver
from tests.test_publish import answer
from tests.test_vcs import BOB, commit_all, git, init_repo, write
from tests.test_watch_spf import OTHER, PARTNER, Clock

from publisher.errors import VcsError
from publisher.publish.manifest import read_manifest
from publisher.publish.spf_watch import SpfRunner
from publisher.publish.vcs import find_repo, sync
from publisher.publish.watch import Watcher

#: The remote's pre-receive hook for "the service may not push": it refuses refresh commits.
REFUSE_REFRESHES = """\
#!/bin/sh
while read old new ref; do
  if git log --format=%s "$old..$new" | grep -q '^refresh-spf: '; then
    echo "this remote takes no refresh-spf commits" >&2
    exit 1
  fi
done
exit 0
"""
EDITED = PARTNERS + "  - ip: 198.51.100.7\n    reason: added by the editor\n    owner: Someone\n"


@pytest.fixture
def clones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """(the service clone's lists folder, the editor's clone, the bare remote)."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for key in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(key, raising=False)
    init_repo(tmp_path / "origin", FILES)
    bare = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(tmp_path / "origin"), str(bare))
    git(tmp_path, "clone", "-q", str(bare), str(tmp_path / "served"))
    git(tmp_path, "clone", "-q", str(bare), str(tmp_path / "editor"))
    return tmp_path / "served" / "lists", tmp_path / "editor", bare


def refuse_refreshes(bare: Path) -> None:
    hook = bare / "hooks" / "pre-receive"
    hook.write_text(REFUSE_REFRESHES)
    hook.chmod(0o755)


def watcher(served: Path, zones: Path, clock: Clock) -> Watcher:
    fake = FakeExpand({"partner.example": PARTNER, "other.example": OTHER})
    spf = SpfRunner(served, resolver=NoResolver, expand=lambda: fake, uniform=lambda low, high: 1.0)
    return Watcher(served, zones, clock=clock, spf=spf)


def rev(repo: Path, what: str = "HEAD") -> str:
    return git(repo, "rev-parse", what).stdout.strip()


def subject(repo: Path, what: str = "HEAD") -> str:
    return git(repo, "log", "-1", "--format=%s", what).stdout.strip()


def editor_pushes(editor: Path) -> str:
    write(editor / "lists", {"wl/partners.yaml": EDITED})
    pushed = commit_all(editor, "allow 198.51.100.7", author=BOB)
    git(editor, "push", "-q", "origin", "main")
    return pushed


def test_the_watch_pushes_its_refresh_commit_and_the_editors_pull_it(
    clones: tuple[Path, Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    served, editor, bare = clones
    zones = tmp_path / "zones"
    clock = Clock(NOW)
    watch = watcher(served, zones, clock)
    with caplog.at_level(logging.INFO, logger="publisher.watch"):
        assert watch.check() == "published"
    refresh = rev(served)
    assert subject(served) == "refresh-spf: 2 partners changed"
    assert rev(bare, "main") == refresh
    assert f"spf: pushed 1 refresh-spf commit(s) to origin refs/heads/main ({refresh[:10]})" in caplog.text
    git(editor, "pull", "-q", "--ff-only")
    assert rev(editor) == refresh and (editor / "lists" / "wl" / "spf" / "partner.example.yaml").is_file()
    # the editor's next push fast-forwards the service clone as before
    pushed = editor_pushes(editor)
    clock.now = NOW + dt.timedelta(minutes=1)
    assert watch.check() == "published" and rev(served) == pushed
    assert answer(zones, ZONE, "198.51.100.7") and answer(zones, ZONE, "1.2.3.4")


def test_a_refused_push_is_dropped_at_the_next_pull_and_made_again_on_top_of_upstream(
    clones: tuple[Path, Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    served, editor, bare = clones
    refuse_refreshes(bare)
    upstream = rev(bare, "main")
    zones = tmp_path / "zones"
    clock = Clock(NOW)
    watch = watcher(served, zones, clock)
    with caplog.at_level(logging.INFO, logger="publisher.watch"):
        assert watch.check() == "published"
        first = rev(served)
        assert rev(bare, "main") == upstream  # refused: the refresh commit lives in the service clone only
        pushed = editor_pushes(editor)
        clock.now = NOW + dt.timedelta(minutes=1)
        assert watch.check() == "published"
    assert "pulled: dropped 1 refresh-spf commit(s) that origin/main lacks (the SPF refresh makes them again)" in (
        caplog.text
    )
    assert rev(served) != first and rev(served, "HEAD^") == pushed
    assert subject(served) == "refresh-spf: 2 partners changed"
    assert git(served, "status", "--porcelain").stdout == ""
    manifest = read_manifest(zones)
    assert manifest is not None and manifest.source is not None and manifest.source.commit == rev(served)
    assert answer(zones, ZONE, "198.51.100.7") and answer(zones, ZONE, "1.2.3.4")
    # each push was refused with the same message: logged once
    assert caplog.text.count("cannot push the refresh-spf commit(s) to origin refs/heads/main") == 1
    assert "this remote takes no refresh-spf commits" in caplog.text
    assert "pull failed" not in caplog.text


def old_refusal(root: Path, local: str, upstream: str) -> str:
    """The message of a diverged pull as it has always been (a person's commit in the clone)."""
    return (
        f"cannot fast-forward main to origin/main: they have diverged (a force-push upstream?): "
        f"local main {local[:10]} has 1 commit(s) that origin/main lacks, "
        f"origin/main {upstream[:10]} has 1 that main lacks; nothing was pulled\n"
        f"  fix: review `git -C {root} log --oneline --left-right main...origin/main`, then follow "
        f"upstream with `git -C {root} reset --hard origin/main` (the next check publishes it); "
        "upstream, push a revert rather than force-pushing the lists branch"
    )


def test_a_hand_commit_in_the_service_clone_keeps_the_refusal_and_is_named(
    clones: tuple[Path, Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    served, editor, bare = clones
    root = served.parent
    write(served, {"wl/hand.yaml": "entries:\n  - ip: 203.0.113.9\n    reason: by hand\n    owner: Someone\n"})
    # its subject borrows the refresh's, but it adds a curated file: a person's commit all the same
    hand = commit_all(root, "refresh-spf: a hand edit in the service clone")
    pushed = editor_pushes(editor)
    where = find_repo(served)
    with pytest.raises(VcsError) as refused:
        sync(where)
    assert str(refused.value) == old_refusal(where.root, hand, pushed)
    assert rev(root) == hand
    # the watch refreshes on top of the hand commit, does not push a person's commit, publishes
    zones = tmp_path / "zones"
    with caplog.at_level(logging.INFO, logger="publisher.watch"):
        assert watcher(served, zones, Clock(NOW)).check() == "published"
    refresh = rev(root)
    assert rev(root, "HEAD^") == hand and rev(bare, "main") == pushed
    not_pushed = "not pushed to origin/main: main holds commits that are not the watch's refresh-spf commits"
    assert f"{not_pushed} ({hand[:10]} 'refresh-spf: a hand edit in the service clone')" in caplog.text
    # mixed: the refusal stands and says which local commit is not a refresh
    with pytest.raises(VcsError) as mixed:
        sync(where)
    message = str(mixed.value)
    assert message.startswith(
        "cannot fast-forward main to origin/main: they have diverged (1 of the local ones are the watch's own "
        f"refresh-spf commits, 1 not): local main {refresh[:10]} has 2 commit(s) that origin/main lacks"
    )
    named = f"{hand[:10]} 'refresh-spf: a hand edit in the service clone'"
    assert f"not refresh-spf commits (made in this clone by hand?): {named}" in message
    assert "force-push" not in message.splitlines()[0]
    assert rev(root) == refresh and (served / "wl" / "hand.yaml").is_file()


def test_uncommitted_changes_in_the_service_clone_keep_its_refresh_commits_and_lose_nothing(
    clones: tuple[Path, Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    served, editor, bare = clones
    refuse_refreshes(bare)
    root = served.parent
    zones = tmp_path / "zones"
    clock = Clock(NOW)
    watch = watcher(served, zones, clock)
    assert watch.check() == "published"
    refresh = rev(root)
    pushed = editor_pushes(editor)
    local_edit = PARTNERS + "# a note left in the service clone\n"
    (served / "wl" / "partners.yaml").write_text(local_edit)
    clock.now = NOW + dt.timedelta(minutes=1)
    with caplog.at_level(logging.INFO, logger="publisher.watch"):
        watch.check()
    assert rev(root) == refresh and (served / "wl" / "partners.yaml").read_text() == local_edit
    assert not answer(zones, ZONE, "198.51.100.7")
    assert (
        f"pull failed: cannot fast-forward main to origin/main: they have diverged (the local ones are the watch's "
        f"own refresh-spf commits): local main {refresh[:10]} has 1 commit(s) that origin/main lacks, "
        f"origin/main {pushed[:10]} has 1 that main lacks; nothing was pulled" in caplog.text
    )
    assert "git reset --keep refused: error: Entry 'lists/wl/partners.yaml' not uptodate" in caplog.text
    assert "reset --hard" not in caplog.text
    # the local edit discarded, the next check follows upstream and refreshes on top of it
    git(root, "checkout", "--", "lists/wl/partners.yaml")
    clock.now = NOW + dt.timedelta(minutes=2)
    assert watch.check() == "published"
    assert rev(root, "HEAD^") == pushed and subject(root) == "refresh-spf: 2 partners changed"
    assert answer(zones, ZONE, "198.51.100.7") and answer(zones, ZONE, "1.2.3.4")
