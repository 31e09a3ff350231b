"""Bad input never loses data: a corpus of broken list and config files (issue 5, item 6).

Every case puts one broken file into a copy of tests/data/corpus/base/ (a good lists tree)
and runs `publisher compile` over a zones/ folder that already holds a publish. Each must give
a located error (`path:line[:col]: ... [code]`, as tests/data/corpus/EXPECTED.json says),
exit 1 without a traceback, within seconds, and leave zones/ exactly as it was.

The committed cases are the files in tests/data/corpus/cases/. The ones that cannot or
should not be committed (multi-megabyte lines, binary junk, 0-byte files, UTF-16, CRLF,
symlinks, a FIFO) are made at test time by the MAKERS below; EXPECTED.json names their
maker. All cases run through the CLI in-process (fast; a hang is caught by a watchdog that
dumps the stacks and aborts the run); the most hostile ones also run as a real
`python -m publisher compile`, and a subset through `publish` from a temporary git repository.
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import DATA, ROOT
from tests.test_vcs import commit_all, init_repo

from publisher.cli import app as cli
from publisher.publish.history import HISTORY
from publisher.publish.manifest import CURRENT, MANIFEST, load_published

CORPUS = DATA / "corpus"
BASE = CORPUS / "base"
CASES = CORPUS / "cases"
EXPECTED: dict[str, dict[str, Any]] = {
    k: v for k, v in json.loads((CORPUS / "EXPECTED.json").read_text()).items() if not k.startswith("_")
}
#: A case taking longer than this is a bug (an alias bomb expanded, a regex backtracking, ...).
SECONDS = 10.0
HANG = 60  # the watchdog: dump every stack and abort the run

# --- the cases made at test time ------------------------------------------------------------

Maker = Callable[[Path], None]  # writes the broken file at the given path


def _bytes(data: bytes) -> Maker:
    def make(path: Path) -> None:
        path.write_bytes(data)

    return make


def _random_junk(path: Path) -> None:
    path.write_bytes(random.Random(5).randbytes(64 * 1024))


def _elf_junk(path: Path) -> None:
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 64)


def _symlink_outside(path: Path) -> None:
    outside = path.parents[2] / "outside-secret.txt"  # next to lists/, not inside it
    outside.write_text("192.0.2.99\n")
    path.symlink_to(outside)


def _symlink_loop(path: Path) -> None:
    path.symlink_to(path.name)


def _fifo(path: Path) -> None:
    os.mkfifo(path)  # reading it would block for ever


MAKERS: dict[str, Maker] = {
    "empty": _bytes(b""),
    "utf16-list": _bytes("entries:\n  - ip: 192.0.2.33\n    reason: spam\n".encode("utf-16")),
    "utf16-bulk": _bytes("192.0.2.33\n192.0.2.34\n".encode("utf-16-le")),
    "latin1-list": _bytes("entries:\n  - ip: 192.0.2.33\n    reason: caf\xe9 spam\n".encode("latin-1")),
    "latin1-bulk": _bytes("192.0.2.33 spam from the caf\xe9\n".encode("latin-1")),
    "bom-crlf-list": _bytes(b"\xef\xbb\xbfentries:\r\n  - ip: 192.0.2.33\r\n    reason: ok\r\n  - ip: 192.0.2.300\r\n"),
    "crlf-bulk": _bytes(b"192.0.2.33\r\n192.0.2.34\r\n192.0.2.300\r\n"),
    "cr-bulk": _bytes(b"192.0.2.33\r192.0.2.34\r192.0.2.300\r"),
    "nul-list": _bytes(b"entries:\n  - ip: 192.0.2.33\x00\n"),
    "nul-bulk": _bytes(b"192.0.2.33\n192.0.2.34\x00\n"),
    "random-junk": _random_junk,
    "elf-junk": _elf_junk,
    "huge-line-bulk": _bytes(b"192.0.2.33\n192.0.2.34 " + b"A" * (10 * 1024 * 1024) + b"\n"),
    "huge-line-list": _bytes(b"entries:\n  - ip: 192.0.2.33\n    reason: " + b"A" * (10 * 1024 * 1024) + b"\n"),
    "many-bad-lines": _bytes(b"".join(b"192.0.2.%d\n" % (300 + i % 100) for i in range(200_000))),
    "deep-flow-nesting": _bytes(b"entries:\n  - ip: " + b"[" * 20_000 + b"]" * 20_000 + b"\n"),
    "deep-block-nesting": _bytes(b"entries:\n" + b"".join(b"  " * i + b"- x:\n" for i in range(1, 200))),
    "merge-chain": _bytes(
        ("a0: &a0 {reason: x}\n" + "".join(f"a{i}: &a{i} {{<<: *a{i - 1}}}\n" for i in range(1, 3000))).encode()
    ),
    "symlink-outside": _symlink_outside,
    "symlink-loop": _symlink_loop,
    "fifo": _fifo,
}


def test_the_corpus_table_and_the_files_agree() -> None:
    files = {p.name for p in CASES.iterdir()}
    made = {name for name, case in EXPECTED.items() if "make" in case}
    assert files == set(EXPECTED) - made, "every file in cases/ needs a line in EXPECTED.json, and the reverse"
    assert {case["make"] for case in EXPECTED.values() if "make" in case} <= set(MAKERS)
    assert len(EXPECTED) >= 40


# --- running a case ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def published_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """zones/ with a publish of the base lists, copied by each case."""
    zones = tmp_path_factory.mktemp("base") / "zones"
    code, _, err = run_cli("--lists", str(BASE), "--zones", str(zones), "compile")
    assert code == 0, err
    return zones


def place(name: str, lists: Path) -> Path:
    """Copy the base lists to `lists` and put case `name` where EXPECTED.json says."""
    shutil.copytree(BASE, lists)
    case = EXPECTED[name]
    target = lists / str(case["as"])
    target.unlink(missing_ok=True)
    if "make" in case:
        MAKERS[case["make"]](target)
    else:
        shutil.copyfile(CASES / name, target)
    return target


def snapshot(zones: Path) -> dict[str, Any]:
    """What a reader of zones/ sees: the current link, the manifest, every name in the folder."""
    return {
        "current": os.readlink(zones / CURRENT),
        "manifest": (zones / CURRENT / MANIFEST).read_bytes(),
        "names": sorted(p.name for p in zones.iterdir()),
        "history": (zones / HISTORY).read_bytes() if (zones / HISTORY).exists() else b"",
    }


@contextlib.contextmanager
def watchdog() -> Iterator[None]:
    faulthandler.dump_traceback_later(HANG, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with watchdog(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def located(name: str, stderr: str) -> None:
    """The expected problem is printed, at its place, with its code."""
    case = EXPECTED[name]
    where = re.escape(case["as"])
    if case.get("line") is not None:
        where += f":{case['line']}"
        if case.get("col") is not None:
            where += f":{case['col']}"
    pattern = rf"^(?:.*/)?{where}: (?!warning).*\[{re.escape(case['code'])}\]$"
    assert re.search(pattern, stderr, re.M), f"no `{where}: ... [{case['code']}]` in:\n{stderr[:3000]}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_file_is_located_and_changes_nothing(name: str, published_base: Path, tmp_path: Path) -> None:
    lists, zones = tmp_path / "lists", tmp_path / "zones"
    place(name, lists)
    shutil.copytree(published_base, zones, symlinks=True)
    before = snapshot(zones)
    start = time.monotonic()
    code, out, err = run_cli("--lists", str(lists), "--zones", str(zones), "compile")
    took = time.monotonic() - start
    assert code == 1, f"exit {code}\n{out}\n{err[:3000]}"
    assert err.rstrip().endswith("nothing was published"), err[-2000:]
    located(name, err)
    assert snapshot(zones) == before
    assert took < SECONDS, f"took {took:.1f}s"


# --- a real process: no traceback, no hang, exit 1 ------------------------------------------

HOSTILE = [
    "yaml-alias-bomb.yaml",
    "yaml-merge-bomb.yaml",
    "huge-line.txt",
    "random-junk.yaml",
    "fifo.txt",
    "symlink-loop.yaml",
    "config-glob-star-bomb.yaml",
    "config-huge-port.yaml",
    "nul-bulk.txt",
    "bulk-txt-too-long.txt",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_files_through_the_real_command(name: str, published_base: Path, tmp_path: Path) -> None:
    lists, zones = tmp_path / "lists", tmp_path / "zones"
    place(name, lists)
    shutil.copytree(published_base, zones, symlinks=True)
    before = snapshot(zones)
    cmd = [sys.executable, "-m", "publisher", "--lists", str(lists), "--zones", str(zones), "compile"]
    done = subprocess.run(
        cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=HANG
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[:3000]
    located(name, done.stderr)
    assert snapshot(zones) == before


# --- publish from git: the same refusals, the published zones untouched --------------------

#: Cases that git can hold (a FIFO cannot be committed; a symlink is committed as a link).
FROM_GIT = [
    "yaml-alias-bomb.yaml",
    "bulk-bad-address.txt",
    "config-missing-source.yaml",
    "utf16-list.yaml",
    "bom-crlf-list.yaml",
    "empty-bulk.txt",
    "huge-line.txt",
    "yaml-listed-twice.yaml",
    "bulk-txt-too-long.txt",
]


@pytest.fixture(scope="module")
def git_published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A repository with the base lists, published; each case copies both."""
    root = tmp_path_factory.mktemp("git")
    lists = init_repo(root / "repo", lists_from=BASE)
    zones = root / "zones"
    code, _, err = run_cli("--lists", str(lists), "--zones", str(zones), "publish")
    assert code == 0, err
    return lists, zones


@pytest.mark.parametrize("name", FROM_GIT)
def test_publish_refuses_a_broken_commit(name: str, git_published: tuple[Path, Path], tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(git_published[0].parent, repo, symlinks=True)
    zones = tmp_path / "zones"
    shutil.copytree(git_published[1], zones, symlinks=True)
    lists = repo / "lists"
    shutil.rmtree(lists)
    place(name, lists)
    commit_all(repo, f"break the lists: {name}")
    before = snapshot(zones)
    code, out, err = run_cli("--lists", str(lists), "--zones", str(zones), "publish")
    assert code == 1, f"exit {code}\n{out}\n{err[:3000]}"
    located(name, err)
    assert snapshot(zones) == before


def test_a_damaged_parse_cache_is_noted_and_never_published(git_published: tuple[Path, Path], tmp_path: Path) -> None:
    """zones/.cache holds parses between publishes; a damaged entry is said, ignored and parsed again."""
    repo = tmp_path / "repo"
    shutil.copytree(git_published[0].parent, repo, symlinks=True)
    zones = tmp_path / "zones"
    shutil.copytree(git_published[1], zones, symlinks=True)
    entries = sorted((zones / ".cache").glob("*.src"))
    assert entries
    for entry in entries:
        entry.write_bytes(entry.read_bytes()[:-7] + b"garbage")
    before = snapshot(zones)
    code, out, err = run_cli("--lists", str(repo / "lists"), "--zones", str(zones), "plan")
    assert code == 0, err
    assert re.search(r"note: parse cache entry \w+\.src is damaged \(checksum mismatch", out), out
    assert snapshot(zones)["manifest"] == before["manifest"]
    code, out, err = run_cli("--lists", str(repo / "lists"), "--zones", str(zones), "plan")
    assert code == 0 and "parse cache" not in out  # parsed again and stored whole


def test_a_symlink_committed_to_git_is_not_followed(git_published: tuple[Path, Path], tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(git_published[0].parent, repo, symlinks=True)
    zones = tmp_path / "zones"
    shutil.copytree(git_published[1], zones, symlinks=True)
    (repo / "lists" / "bl" / "passwd.txt").symlink_to("/etc/passwd")
    commit_all(repo, "a link out of the repository")
    before = snapshot(zones)
    code, _, err = run_cli("--lists", str(repo / "lists"), "--zones", str(zones), "publish")
    assert code == 1
    assert re.search(r"bl/passwd\.txt: is a symbolic link in git; links are not followed \[read-error\]", err), err
    assert snapshot(zones) == before


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from publisher.lists import tree

    monkeypatch.setattr(tree, "MAX_FILE_BYTES", 1 << 20)  # the real limit is 512 MiB
    lists = tmp_path / "lists"
    shutil.copytree(BASE, lists)
    (lists / "bl" / "big.txt").write_bytes(b"192.0.2.33\n" * 100_000)
    code, _, err = run_cli("--lists", str(lists), "--zones", str(tmp_path / "zones"), "compile")
    assert code == 1 and re.search(r"bl/big\.txt: larger than 1 MiB \[read-error\]", err), err
    assert not (tmp_path / "zones").exists()


# --- unusual but good input still compiles (the checks above must not overreach) --------------

GOOD_BUT_UNUSUAL: dict[str, bytes] = {
    "bl/bom-crlf.yaml": b"\xef\xbb\xbfentries:\r\n  - ip: 192.0.2.41\r\n    reason: written on Windows\r\n",
    "bl/cr.txt": b"192.0.2.42\r192.0.2.43\r",
    "bl/tabs.txt": b"192.0.2.44\t:127.0.0.4:tab separated\n\t192.0.2.45\n",
    "bl/comments-only.txt": b"# this feed has no entries today\n",
    "bl/merge.yaml": b"defaults: &d {reason: merged reason, code: 127.0.0.5}\n"
    b"entries:\n  - <<: *d\n    ip: 192.0.2.46\n    code: 127.0.0.6\n",
    "bl/folded.yaml": b"entries:\n  - ip: 192.0.2.47\n    reason: >\n      a long reason\n      folded over lines\n",
}


def test_unusual_but_good_files_still_compile(tmp_path: Path) -> None:
    from publisher.compile.lookup import parse_query, zone_answer

    lists = tmp_path / "lists"
    shutil.copytree(BASE, lists)
    for rel, data in GOOD_BUT_UNUSUAL.items():
        (lists / rel).write_bytes(data)
    code, _, err = run_cli("--lists", str(lists), "--zones", str(tmp_path / "zones"), "compile")
    assert code == 0, err
    bl = load_published(tmp_path / "zones").zones["bl.example.test"]

    def codes(address: str) -> list[str]:
        return [".".join(str(b) for b in c.to_bytes(4, "big")) for c, _ in zone_answer(bl, parse_query(address))]

    assert codes("192.0.2.41") == ["127.0.0.2"] and codes("192.0.2.43") == ["127.0.0.2"]
    assert codes("192.0.2.44") == ["127.0.0.4"] and codes("192.0.2.45") == ["127.0.0.2"]
    assert codes("192.0.2.46") == ["127.0.0.6"]  # the entry's own code overrides the merged one
    assert codes("192.0.2.47") == ["127.0.0.2"]
