"""Publishing from git, on temporary repositories: serials, dirty trees, guard rails,
validation errors, rollback, crash safety, the CLI handlers, and the real server."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import LISTS, ROOT, free_port, require_tool, stop_process
from tests.test_vcs import ALICE, BOB, commit_all, git, init_repo, write

from publisher.addresses import parse_v4
from publisher.compile.lookup import parse_query, zone_answer
from publisher.errors import GuardRailError, PublisherError, ValidationFailed
from publisher.publish import artifacts, history
from publisher.publish.manifest import Source, current_generation, load_published, read_manifest
from publisher.publish.release import publish

NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)

ZONES_YAML = """\
zones:
  - name: bl.example.test
    kind: ip
    role: block
    sources: ["bl/*.yaml"]
    code: "127.0.0.2"
    txt: "{reason}"
    soa: {mname: ns1.example.test, rname: hostmaster.example.test}
    ns: [{name: ns1.example.test}]
    protect: [wl.example.test]
  - name: wl.example.test
    kind: ip
    role: allow
    sources: ["wl/*.yaml"]
    code: "127.0.10.1"
    txt: "{reason}"
    soa: {mname: ns1.example.test, rname: hostmaster.example.test}
    ns: [{name: ns1.example.test}]
  - name: dbl.example.test
    kind: domain
    role: block
    sources: ["dbl/*.yaml"]
    code: "127.0.1.2"
    txt: "{domain}: {reason}"
    soa: {mname: ns1.example.test, rname: hostmaster.example.test}
    ns: [{name: ns1.example.test}]
"""

ABUSE = """\
entries:
  - ip: 192.0.2.0/28
    reason: snowshoe spam
  - ip: 198.51.100.7
    reason: dictionary attack
"""

PARTNERS = """\
entries:
  - ip: 203.0.113.25
    reason: partner gateway
    owner: Example Partner
    contact: noc@partner.example
  - ip: 203.0.113.26
    reason: partner backup gateway
    owner: Example Partner
    contact: noc@partner.example
"""

DOMAINS = """\
entries:
  - domain: spam.example
    reason: spam domain
"""

FILES = {"zones.yaml": ZONES_YAML, "bl/abuse.yaml": ABUSE, "wl/partners.yaml": PARTNERS, "dbl/domains.yaml": DOMAINS}


def entries(rows: list[str], key: str = "ip", reason: str = "spam") -> str:
    return "entries:\n" + "".join(f"  - {key}: {r}\n    reason: {reason}\n" for r in rows)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A list repository (lists/ inside it), one commit. Returns the lists folder."""
    return init_repo(tmp_path / "repo", FILES)


@pytest.fixture
def zones(tmp_path: Path) -> Path:
    return tmp_path / "zones"


def answer(zones_dir: Path, zone: str, query: str) -> list[tuple[int, str]]:
    published = load_published(zones_dir)
    return zone_answer(published.zones[zone], parse_query(query))


def serials(zones_dir: Path) -> dict[str, int]:
    manifest = read_manifest(zones_dir)
    assert manifest is not None
    return {n: z.serial for n, z in manifest.zones.items()}


def commit_file(lists: Path, path: str, text: str, message: str, author: tuple[str, str] = ALICE) -> str:
    write(lists, {path: text})
    return commit_all(lists, message, author)


# --- publish ----------------------------------------------------------------------------


def test_publish_after_a_commit_bumps_the_serial_of_that_zone_only(repo: Path, zones: Path) -> None:
    first = publish(repo, zones, now=NOW)
    assert first.written and first.prepared.plan.first_publish
    before = serials(zones)
    assert before["bl.example.test"] == 2026112700
    assert answer(zones, "bl.example.test", "203.0.113.99") == []
    sha = commit_file(
        repo, "bl/abuse.yaml", ABUSE + "  - ip: 203.0.113.99\n    reason: new spam source\n", "list 203.0.113.99", BOB
    )
    later = NOW + dt.timedelta(hours=1)
    outcome = publish(repo, zones, now=later)
    after = serials(zones)
    assert artifacts.serial_gt(after["bl.example.test"], before["bl.example.test"])
    assert (
        after["wl.example.test"] == before["wl.example.test"]
        and after["dbl.example.test"] == before["dbl.example.test"]
    )
    assert answer(zones, "bl.example.test", "203.0.113.99") == [(parse_v4("127.0.0.2"), "new spam source")]
    manifest = read_manifest(zones)
    assert manifest is not None and manifest.source is not None
    bl, wl = manifest.zones["bl.example.test"].meta.origin, manifest.zones["wl.example.test"].meta.origin
    assert bl is not None and wl is not None
    assert (bl.commit, bl.author, bl.published_at) == (sha, BOB[0], later.isoformat(timespec="seconds"))
    assert wl.commit != sha and wl.published_at == NOW.isoformat(timespec="seconds")
    assert manifest.source.commit == sha
    zp = outcome.prepared.plan.zone("bl.example.test")
    assert zp is not None and zp.count("added") == 1 and zp.measure("addresses").added == 1
    # the same commit again: nothing to publish, nothing written
    again = publish(repo, zones, now=later + dt.timedelta(minutes=5))
    assert not again.written and again.prepared.nothing_to_publish and serials(zones) == after
    assert [r.action for r in history.read(zones)] == ["publish", "publish"]


def test_an_expiry_given_without_a_change_of_answers_is_published_for_watch(repo: Path, zones: Path) -> None:
    """The manifest's next_expiry is what `watch` republishes at: an `expires` added to a listed
    entry (or a refresh's kept entries) answers the same today, yet must reach the manifest."""
    publish(repo, zones, now=NOW)
    before = serials(zones)
    commit_file(
        repo, "bl/abuse.yaml", ABUSE.replace("snowshoe spam\n", "snowshoe spam\n    expires: 2026-12-31\n"), "expiry"
    )
    outcome = publish(repo, zones, now=NOW + dt.timedelta(hours=1))
    assert outcome.written and serials(zones) == before
    assert "bl.example.test: next expiry 2027-01-01T00:00:00+00:00 (was none); same answers, same serial" in (
        outcome.prepared.plan.notes
    )
    manifest = read_manifest(zones)
    assert manifest is not None and manifest.zones["bl.example.test"].meta.next_expiry == "2027-01-01T00:00:00+00:00"


def test_republishing_from_another_process_changes_nothing(tmp_path: Path) -> None:
    """Serials must not move when nothing changed, whatever the process's hash seed."""
    repo, zones = init_repo(tmp_path / "repo", lists_from=LISTS), tmp_path / "zones"
    code = (
        f"import datetime as dt; from pathlib import Path; from publisher.publish.release import publish; "
        f"o = publish(Path({str(repo)!r}), Path({str(zones)!r})); print(sorted(o.prepared.changed))"
    )
    outs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        outs.append(done.stdout.strip())
    assert outs[1] == "[]", outs


def test_a_dirty_work_tree_publishes_the_committed_content_only(repo: Path, zones: Path) -> None:
    write(
        repo,
        {
            "bl/abuse.yaml": ABUSE + "  - ip: 203.0.113.50\n    reason: not committed\n",
            "bl/new.yaml": entries(["203.0.113.51"]),
        },
    )
    outcome = publish(repo, zones, now=NOW)
    assert sorted((d.path, d.state) for d in outcome.prepared.dirty) == [
        ("bl/abuse.yaml", "modified"),
        ("bl/new.yaml", "untracked"),
    ]
    assert answer(zones, "bl.example.test", "203.0.113.50") == []
    assert answer(zones, "bl.example.test", "203.0.113.51") == []
    assert answer(zones, "bl.example.test", "198.51.100.7") != []


def test_publishing_over_a_work_tree_compile_records_the_commit(repo: Path, zones: Path) -> None:
    from publisher.lists.tree import DirTree
    from publisher.publish.build import compile_tree, write_build

    write_build(zones, compile_tree(DirTree(repo), as_of=NOW), source=Source(kind="worktree", path=str(repo)), now=NOW)
    before = serials(zones)
    outcome = publish(repo, zones, now=NOW + dt.timedelta(minutes=1))
    assert outcome.written and not outcome.prepared.changed and serials(zones) == before
    assert "not made from git" in outcome.prepared.plan.notes[0]
    assert read_manifest(zones).source.kind == "git"  # type: ignore[union-attr]
    assert not publish(repo, zones, now=NOW + dt.timedelta(minutes=2)).written


def test_publish_an_older_commit_and_a_lists_folder_at_the_repository_root(tmp_path: Path) -> None:
    lists = init_repo(tmp_path / "lists-repo", FILES, subdir="")
    old = git(lists, "rev-parse", "HEAD").stdout.strip()
    commit_file(lists, "bl/abuse.yaml", ABUSE + "  - ip: 203.0.113.99\n", "more")
    publish(lists, tmp_path / "zones", rev=old, now=NOW)
    assert answer(tmp_path / "zones", "bl.example.test", "203.0.113.99") == []
    assert read_manifest(tmp_path / "zones").source.commit == old  # type: ignore[union-attr]


# --- guard rails ------------------------------------------------------------------------


def _refused(lists: Path, zones_dir: Path, rule: str, *numbers: str) -> None:
    before = current_generation(zones_dir)
    with pytest.raises(GuardRailError) as info:
        publish(lists, zones_dir, now=NOW + dt.timedelta(hours=1))
    assert info.value.exit_code == 3
    text = str(info.value)
    assert f"{rule}:" in text, text
    for number in numbers:
        assert number in text, text
    assert current_generation(zones_dir) == before  # nothing written
    forced = publish(lists, zones_dir, now=NOW + dt.timedelta(hours=1), force=True)
    assert forced.written and rule in {v.rule for v in forced.forced}
    assert history.read(zones_dir)[-1].forced


def test_guard_shrink(repo: Path, zones: Path) -> None:
    hosts = [f"192.0.2.{i}" for i in range(100, 160)]
    commit_file(repo, "bl/abuse.yaml", entries(hosts), "60 hosts")
    publish(repo, zones, now=NOW)
    commit_file(repo, "bl/abuse.yaml", entries(hosts[:40]), "drop 20")
    _refused(repo, zones, "shrink", "lose 20 of its 60 listings (33%")


def test_guard_growth(repo: Path, zones: Path) -> None:
    publish(repo, zones, now=NOW)
    commit_file(repo, "bl/abuse.yaml", ABUSE.replace("192.0.2.0/28", "192.0.2.0/24"), "oops, /24")
    _refused(repo, zones, "growth", "from 17 to 257 addresses (15.1x; the limit is 10x)")


def test_guard_empty_zone(repo: Path, zones: Path) -> None:
    publish(repo, zones, now=NOW)
    commit_file(repo, "dbl/domains.yaml", "entries: []\n", "clear the domains")
    _refused(repo, zones, "empty", "dbl.example.test")
    assert answer(zones, "dbl.example.test", "spam.example") == []


def test_guard_blocklist_covering_a_protected_allowlist_address(repo: Path, zones: Path) -> None:
    publish(repo, zones, now=NOW)
    commit_file(repo, "bl/abuse.yaml", ABUSE + "  - ip: 203.0.113.0/27\n    reason: typo, meant elsewhere\n", "cover")
    _refused(repo, zones, "covers-protected", "bl/abuse.yaml:6", "203.0.113.25")
    # accepted once with --force: an unrelated later change is not refused for it again
    commit_file(repo, "dbl/domains.yaml", DOMAINS + "  - domain: more.example\n    reason: spam\n", "more")
    assert publish(repo, zones, now=NOW + dt.timedelta(hours=2)).written


def test_guard_allowlist_entry_removed(repo: Path, zones: Path) -> None:
    publish(repo, zones, now=NOW)
    commit_file(repo, "wl/partners.yaml", "\n".join(PARTNERS.splitlines()[:5]) + "\n", "drop the backup gateway")
    _refused(repo, zones, "allowlist-removal", "1 allowlist entry removed", "wl/partners.yaml:6 203.0.113.26")


def test_a_validation_error_publishes_nothing_even_with_force(repo: Path, zones: Path) -> None:
    publish(repo, zones, now=NOW)
    before = (current_generation(zones), serials(zones))
    commit_file(repo, "bl/abuse.yaml", ABUSE + "  - ip: 192.0.2.300\n    reason: typo\n", "bad entry")
    for force in (False, True):
        with pytest.raises(ValidationFailed) as info:
            publish(repo, zones, now=NOW + dt.timedelta(hours=1), force=force)
        assert any(p.location.path == "bl/abuse.yaml" and p.location.line == 6 for p in info.value.problems)
    assert (current_generation(zones), serials(zones)) == before


# --- rollback and crashes ---------------------------------------------------------------


def test_rollback_restores_old_answers_under_a_higher_serial(repo: Path, zones: Path) -> None:
    from publisher.publish.release import rollback_target

    publish(repo, zones, now=NOW)
    good = serials(zones)["bl.example.test"]
    commit_file(repo, "bl/abuse.yaml", ABUSE + "  - ip: 203.0.113.99\n    reason: mistake\n", "mistake")
    publish(repo, zones, now=NOW + dt.timedelta(hours=1))
    bad = serials(zones)["bl.example.test"]
    assert answer(zones, "bl.example.test", "203.0.113.99")
    target = rollback_target(repo, zones, str(good))
    assert target.found_as == f"serial {good} of bl.example.test, dbl.example.test, wl.example.test"
    outcome = publish(repo, zones, rev=target.commit, now=NOW + dt.timedelta(hours=2), action="rollback")
    zp = outcome.prepared.plan.zone("bl.example.test")
    assert zp is not None and [c.kind for c in zp.changes] == ["removed"]
    assert answer(zones, "bl.example.test", "203.0.113.99") == []
    now_serial = serials(zones)["bl.example.test"]
    assert artifacts.serial_gt(now_serial, bad) and now_serial not in (good, bad)
    assert history.read(zones)[-1].action == "rollback"
    assert rollback_target(repo, zones, "HEAD~1").commit == target.commit
    with pytest.raises(PublisherError):
        rollback_target(repo, zones, "1999010100")


@pytest.mark.parametrize("step", ["wrote bl.example.test", "wrote generation", "renamed generation"])
def test_a_crash_between_write_steps_leaves_the_last_good_publish(repo: Path, zones: Path, step: str) -> None:
    publish(repo, zones, now=NOW)
    good = (current_generation(zones), serials(zones), len(history.read(zones)))
    commit_file(repo, "bl/abuse.yaml", ABUSE + "  - ip: 203.0.113.99\n    reason: new\n", "new")

    class Crash(Exception):
        pass

    def crash(name: str) -> None:
        if name == step:
            raise Crash(f"simulated crash at {name}")

    with pytest.raises(Crash):
        publish(repo, zones, now=NOW + dt.timedelta(hours=1), step=crash)
    assert (current_generation(zones), serials(zones), len(history.read(zones))) == good
    assert answer(zones, "bl.example.test", "203.0.113.99") == []
    publish(repo, zones, now=NOW + dt.timedelta(hours=2))  # the next publish goes through
    assert answer(zones, "bl.example.test", "203.0.113.99")


# --- the CLI handlers -------------------------------------------------------------------


def published_sample(tmp_path: Path) -> tuple[Path, Path]:
    """The sample lists in a git repository, published into zones/ through the CLI: (lists, zones)."""
    lists = init_repo(tmp_path / "repo", lists_from=LISTS)
    zones = tmp_path / "zones"
    code, _, err = run_cli("--lists", str(lists), "--zones", str(zones), "publish")
    assert code == 0, err
    return lists, zones


def run_cli(*argv: str) -> tuple[int, str, str]:
    """The commands through cli.main, stdout and stderr captured."""
    from publisher.cli import app as cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_cli_publish_plan_history_and_rollback(repo: Path, zones: Path) -> None:
    base = ("--lists", str(repo), "--zones", str(zones))
    code, out, _ = run_cli(*base, "publish")
    assert code == 0 and re.search(
        r"^bl\.example\.test serial \d{10}: new zone, \+2 listings \(\+17 addresses\)$", out, re.M
    ), out
    first = serials(zones)["bl.example.test"]
    sha = commit_file(
        repo,
        "bl/abuse.yaml",
        ABUSE + "  - ip: 198.51.100.128/25\n    reason: snowshoe\n  - ip: 203.0.113.200\n    reason: x\n",
        "more spam",
        BOB,
    )
    code, out, _ = run_cli(*base, "plan")
    assert code == 0
    assert re.search(
        rf"\+ bl/abuse.yaml:6  198.51.100.128/25  127.0.0.2 'snowshoe'  \[{sha[:10]} {BOB[0]} \d{{4}}-", out
    ), out
    code, out, _ = run_cli(*base, "plan", "--json")
    doc = json.loads(out)
    assert doc["zones"]["bl.example.test"]["changes"][0]["blame"]["commit"] == sha
    code, out, _ = run_cli(*base, "plan", "--markdown")
    assert "| bl.example.test |" in out
    code, out, err = run_cli(*base, "publish", "--dry-run")
    assert code == 0 and "dry run: nothing was written" in out and serials(zones)["bl.example.test"] == first, out + err
    code, out, _ = run_cli(*base, "publish")
    assert code == 0 and re.search(r"^bl\.example\.test serial \d{10}: \+2 listings \(\+129 addresses\)$", out, re.M), (
        out
    )
    assert "wl.example.test serial" in out and ": unchanged" in out
    code, out, _ = run_cli(*base, "publish")
    assert code == 0 and "nothing to publish" in out
    code, out, _ = run_cli(*base, "history")
    assert code == 0 and out.count("publish ") == 2 and BOB[0] in out
    code, out, err = run_cli(*base, "rollback", str(first), "--dry-run")
    assert code == 0 and "dry run" in out and serials(zones)["bl.example.test"] != first
    code, out, err = run_cli(*base, "rollback", str(first))
    assert code == 0 and "rollback: republishing commit" in out, out + err
    assert (
        re.search(r"^  - bl/abuse.yaml:6  198.51.100.128/25 ", out, re.M) and "-2 listings (-129 addresses)" in out
    ), out
    assert answer(zones, "bl.example.test", "203.0.113.200") == []
    code, out, _ = run_cli(*base, "history", "--json")
    assert [r["action"] for r in json.loads(out)] == ["publish", "publish", "rollback"]


def test_cli_guard_refusal_exits_3_with_the_plan_shown(repo: Path, zones: Path) -> None:
    base = ("--lists", str(repo), "--zones", str(zones))
    run_cli(*base, "publish")
    commit_file(repo, "wl/partners.yaml", "\n".join(PARTNERS.splitlines()[:5]) + "\n", "drop one")
    code, out, err = run_cli(*base, "publish")
    assert code == 3
    assert "- wl/partners.yaml:6  203.0.113.26" in out and "guard rails: needs --force" in out
    assert "allowlist-removal" in err and "nothing was written" in err


# --- end to end: the real server answers the new entry without a restart ---------------


@contextlib.contextmanager
def running_server(zones_dir: Path) -> Iterator[tuple[int, Iterator[str]]]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "publisher.server", "--zones", str(zones_dir), "--listen", f"127.0.0.1:{port}"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    lines = iter(proc.stderr.readline, "")
    try:
        for line in lines:
            if "listening udp" in line:
                break
        else:
            pytest.fail("the server did not start")
        yield port, lines
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def dig(port: int, name: str, rtype: str = "A") -> str:
    tool = require_tool("dig")
    out = subprocess.run(
        [tool, "+short", "+time=2", "+tries=1", "-p", str(port), "@127.0.0.1", name, rtype],
        capture_output=True,
        text=True,
        timeout=20,
    )
    return out.stdout.strip()


def test_end_to_end_a_running_server_answers_the_new_entry(tmp_path: Path) -> None:
    require_tool("dig")
    lists = (
        init_repo(tmp_path / "repo", lists_from=LISTS)
        if (LISTS / "zones.yaml").exists()
        else init_repo(tmp_path / "repo", FILES)
    )
    zones = tmp_path / "zones"
    publish(lists, zones)
    with running_server(zones) as (port, log):
        name = "9.100.51.198.bl.example.test"
        assert dig(port, name) == ""
        write(lists, {"bl/e2e.yaml": entries(["198.51.100.9"], reason="end to end")})
        commit_all(lists, "e2e entry")
        publish(lists, zones)
        serial = serials(zones)["bl.example.test"]
        for line in log:  # the server's own reload message is the synchronisation
            if f"zone bl.example.test now serial {serial}" in line:
                break
        assert dig(port, name) == "127.0.0.2"
        assert "end to end" in dig(port, name, "TXT")
        # a bad commit publishes nothing: the server keeps its serial
        write(lists, {"bl/e2e.yaml": entries(["198.51.100.300"])})
        commit_all(lists, "broken")
        with pytest.raises(ValidationFailed):
            publish(lists, zones)
        assert dig(port, "bl.example.test", "SOA").split()[2] == str(serial)


def test_serve_watch_publishes_a_new_commit_and_serves_it_in_one_process(tmp_path: Path) -> None:
    """`publisher serve --watch`: nobody runs publish; the watch thread does, the server reloads."""
    require_tool("dig")
    lists = (
        init_repo(tmp_path / "repo", lists_from=LISTS)
        if (LISTS / "zones.yaml").exists()
        else init_repo(tmp_path / "repo", FILES)
    )
    zones = tmp_path / "zones"
    publish(lists, zones)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "publisher",
            "--lists",
            str(lists),
            "--zones",
            str(zones),
            "serve",
            "--watch",
            "--interval",
            "0.5",
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    lines = iter(proc.stderr.readline, "")
    watchdog = threading.Timer(60, proc.kill)  # bounds the log reads below: a kill ends them
    watchdog.start()
    try:
        for line in lines:
            if "serving" in line:
                break
        else:
            pytest.fail("the server did not start")
        name = "10.100.51.198.bl.example.test"
        assert dig(port, name) == ""
        write(lists, {"bl/watch.yaml": entries(["198.51.100.10"], reason="seen by watch")})
        commit_all(lists, "watch entry")
        for line in lines:  # the watch thread publishes, then the server reloads that serial
            if "zone bl.example.test now serial" in line:
                break
        else:
            pytest.fail("the new commit was never served")
        assert dig(port, name) == "127.0.0.2"
        assert "seen by watch" in dig(port, name, "TXT")
    finally:
        watchdog.cancel()
        stop_process(proc)
