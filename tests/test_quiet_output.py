"""Output an operator sees on every command: the bulk-repeats warning once and silenceable,
and the publish's last line naming a server only when one is known (issue 17, item 16)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import stop_process
from tests.test_publish import run_cli
from tests.test_vcs import commit_all, init_repo, write

from publisher.lists.bulk_repeats import ALLOW_REPEATS, allows_repeats

FEED = "192.0.2.1\n192.0.2.2\n192.0.2.1\n"
ZONES_YAML = """\
zones:
  - name: bl.example.test
    kind: ip
    role: block
    sources: ["bl/*.txt"]
    code: "127.0.0.2"
    soa: {mname: ns1.example.test, rname: hostmaster.example.test}
    ns: [{name: ns1.example.test}]
"""


def _repo(tmp_path: Path, feed: str) -> tuple[Path, tuple[str, ...]]:
    lists = init_repo(tmp_path / "repo", {"zones.yaml": ZONES_YAML, "bl/feed.txt": feed})
    return lists, ("--lists", str(lists), "--zones", str(tmp_path / "zones"))


def test_the_repeats_warning_is_given_once_per_command(tmp_path: Path) -> None:
    _, base = _repo(tmp_path, FEED)
    for command in (("validate",), ("plan",), ("publish",)):
        code, out, err = run_cli(*base, *command)
        assert code == 0 and (out + err).count("[bulk-repeats]") == 1, (command, out, err)


def test_a_feed_that_says_allow_repeats_is_quiet(tmp_path: Path) -> None:
    lists, base = _repo(tmp_path, f"# feed from upstream\n{ALLOW_REPEATS}\n{FEED}")
    for command in (("validate",), ("plan",), ("publish",)):
        code, out, err = run_cli(*base, *command)
        assert code == 0 and "bulk-repeats" not in out + err, (command, out, err)
    # a one-line change is read by patching the published parse: still quiet
    write(lists, {"bl/feed.txt": f"# feed from upstream\n{ALLOW_REPEATS}\n{FEED}192.0.2.9\n192.0.2.9\n"})
    commit_all(lists, "one more")
    code, out, err = run_cli(*base, "publish")
    assert code == 0 and "bulk-repeats" not in out + err and "+2 listings (+1 address)" in out, out + err


def test_the_setting_counts_only_in_the_comments_that_open_the_file() -> None:
    assert allows_repeats(f"{ALLOW_REPEATS}\n192.0.2.1\n")
    assert allows_repeats(b"\n# x\n#publisher:  allow-repeats\n192.0.2.1\n")
    assert not allows_repeats(f"192.0.2.1\n{ALLOW_REPEATS}\n")
    assert not allows_repeats("# publisher: allow-repeats-not\n")


def test_the_publish_names_a_server_only_when_one_is_known(tmp_path: Path) -> None:
    lists, base = _repo(tmp_path, "192.0.2.1\n")
    code, out, _ = run_cli(*base, "publish")
    assert code == 0 and "reloads by itself" not in out
    assert f"a `publisher serve` on {tmp_path / 'zones'}/ loads it within a second" in out, out
    # a live publisher process named in zones/server.pid is told to reload (SIGHUP ends this stand-in)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "publisher", "serve"])
    try:
        (tmp_path / "zones" / "server.pid").write_text(f"{proc.pid}\n")
        write(lists, {"bl/feed.txt": "192.0.2.1\n192.0.2.2\n"})
        commit_all(lists, "one more")
        code, out, _ = run_cli(*base, "publish")
        assert code == 0 and f"the server (pid {proc.pid}, " in out and "reloads it now" in out, out
    finally:
        stop_process(proc)
