"""Crash-safe publishing: a real publishing process killed with SIGKILL at every write step,
a full disk and a read-only zones/.

After each kill, zones/ must be the old or the new complete publish (manifest sha256 match
the files, no half file referenced), a server started on it must serve that publish, and the
next publish must succeed and clean up what the dead one left. The kill points come from the
publish's step hook: the process (PAUSED_PUBLISH) publishes with a hook that logs "paused at
step" at the wanted step and waits, and the test kills it there, so every point is hit
exactly, without timing guesses.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import hashlib
import io
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dnslib import QTYPE, RCODE, DNSRecord
from tests.conftest import ROOT, stop_process
from tests.test_vcs import commit_all, init_repo, write

from publisher.cli import app as cli
from publisher.errors import ArtifactError
from publisher.publish import artifacts, history
from publisher.publish.manifest import CURRENT, MANIFEST, load_published

TIMEOUT = 60.0
BL, WL, DBL, EXTRA = "bl.example.test", "wl.example.test", "dbl.example.test", "extra.example.test"
MARKER = "203.0.113.99"  # listed by the new commit only

ZONE = """\
  - name: {name}
    kind: {kind}
    role: {role}
    sources: [{sources}]
    code: "{code}"
    txt: "{{reason}}"
    soa: {{mname: ns1.example.test, rname: hostmaster.example.test}}
    ns: [{{name: ns1.example.test}}]
"""
ZONES = [
    ZONE.format(name=BL, kind="ip", role="block", sources='"bl/*.yaml", "bl/*.txt"', code="127.0.0.2"),
    ZONE.format(name=WL, kind="ip", role="allow", sources='"wl/*.yaml"', code="127.0.10.1"),
    ZONE.format(name=DBL, kind="domain", role="block", sources='"dbl/*.yaml"', code="127.0.1.2"),
]
#: The new commit also adds a zone: its stable links appear only if the publish gets that far.
ZONE_EXTRA = ZONE.format(name=EXTRA, kind="domain", role="block", sources='"extra/*.yaml"', code="127.0.2.2")

ABUSE = "entries:\n  - ip: 192.0.2.0/28\n    reason: snowshoe spam\n"
#: A feed big enough that the BIND file of bl outgrows the write buffer (a crash mid-write
#: leaves a half file behind).
FEED = ":127.0.0.3:feed listing\n" + "".join(f"198.18.{i // 250}.{i % 250 + 1}\n" for i in range(3000))
PARTNERS = "entries:\n  - ip: 203.0.113.25\n    reason: partner gateway\n    owner: Example Partner\n"
DOMAINS = "entries:\n  - domain: spam.example\n    reason: spam domain\n"

OLD = {
    "zones.yaml": "zones:\n" + "".join(ZONES),
    "bl/abuse.yaml": ABUSE,
    "bl/feed.txt": FEED,
    "wl/partners.yaml": PARTNERS,
    "dbl/domains.yaml": DOMAINS,
}
NEW = {
    "zones.yaml": "zones:\n" + "".join(ZONES) + ZONE_EXTRA,
    "bl/abuse.yaml": ABUSE + f"  - ip: {MARKER}\n    reason: new listing\n",
    "extra/names.yaml": "entries:\n  - domain: extra.example\n    reason: extra\n",
}

#: Every step of a publish, in order, and whether a kill there leaves the new publish.
STEPS = [
    ("validated", "old"),
    (f"writing {BL}.snap", "old"),
    (f"writing {BL}.zone", "old"),  # mid-write: a half BIND file in the temporary folder
    (f"wrote {BL}", "old"),
    ("writing manifest.json", "old"),
    ("wrote generation", "old"),
    ("renamed generation", "old"),  # a complete generation that is not current
    ("linked current", "old"),  # a stray .current.* link
    ("swapped current", "new"),  # before the stable links and the history line
    ("published", "new"),  # before the history line
]


#: `python -c PAUSED_PUBLISH LISTS ZONES STEP`: `publisher publish` (release.publish, what the
#: command runs) with a step hook that stops the process at STEP until it is killed.
PAUSED_PUBLISH = """
import signal, sys
from pathlib import Path
from publisher.publish.release import publish

def pause(step):
    if step == sys.argv[3]:
        print(f"paused at step {step!r}; waiting for a signal", file=sys.stderr, flush=True)
        while True:
            signal.pause()

publish(Path(sys.argv[1]), Path(sys.argv[2]), step=pause)
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def run_publish(lists: Path, zones: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "publisher", "--lists", str(lists), "--zones", str(zones), "publish"]
    return subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=TIMEOUT)


def publish_here(lists: Path, zones: Path) -> tuple[int, str, str]:
    """`publisher publish` through cli.main in this process: the run after a kill, quicker."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["--lists", str(lists), "--zones", str(zones), "publish"])
    return code, out.getvalue(), err.getvalue()


def kill_publish_at(lists: Path, zones: Path, step: str, before_kill: Any = None) -> None:
    """Start a publish that pauses at `step`, then SIGKILL it there."""
    cmd = [sys.executable, "-c", PAUSED_PUBLISH, str(lists), str(zones), step]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(TIMEOUT, proc.kill)  # a publish that never pauses must not hang the suite
    watchdog.start()
    seen: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line)
            if f"paused at step {step!r}" in line:
                break
        else:
            pytest.fail(f"the publish ended without reaching step {step!r}:\n{''.join(seen)}")
        if before_kill is not None:
            before_kill()
    finally:
        watchdog.cancel()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


@dataclass(frozen=True)
class State:
    generation: str
    serials: dict[str, int]
    marker_listed: bool


def check_consistent(zones: Path) -> State:
    """zones/ holds one complete publish: every file the manifest names matches its sha256."""
    published = load_published(zones)  # checks every snapshot's sha256 and serial
    gen = published.directory
    assert gen.name == published.manifest.generation and gen.is_dir()
    for entry in published.manifest.zones.values():
        for file, want in entry.sha256.items():
            data = (gen / file).read_bytes()
            assert hashlib.sha256(data).hexdigest() == want, f"{gen.name}/{file} does not match the manifest"
    # every stable link that exists leads into the current generation, to a listed file
    listed = {f for entry in published.manifest.zones.values() for f in entry.files.names()} | {MANIFEST}
    for link in zones.iterdir():
        if link.is_symlink() and link.name != CURRENT and not link.name.startswith("."):
            assert link.name in listed, f"stale link {link.name}"
            assert os.readlink(link) == f"{CURRENT}/{link.name}"
    bl = published.zones[BL]
    marker = int.from_bytes(bytes(int(x) for x in MARKER.split(".")), "big")
    return State(gen.name, {n: z.info.serial for n, z in published.zones.items()}, bl.lookup_v4(marker) >= 0)


# --- a real server on what the kill left ------------------------------------------------


@contextlib.contextmanager
def serving(zones: Path) -> Iterator[int]:
    cmd = [sys.executable, "-m", "publisher.server", "--zones", str(zones), "--listen", "127.0.0.1:0", "--no-watch"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(TIMEOUT, proc.kill)
    watchdog.start()
    port = 0
    log: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            log.append(line)
            found = re.search(r"listening udp 127\.0\.0\.1:(\d+)", line)
            if found:
                port = int(found.group(1))
            if port and "serving" in line:
                break
        else:
            pytest.fail("the server did not start:\n" + "".join(log))
        watchdog.cancel()
        # keep draining its log so that it never blocks on a full pipe
        threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
        yield port
    finally:
        watchdog.cancel()
        stop_process(proc, timeout=15)


def ask(port: int, name: str, qtype: str) -> DNSRecord:
    query = DNSRecord.question(name, qtype)
    data = query.send("127.0.0.1", port, tcp=False, timeout=5)
    return DNSRecord.parse(data)


def check_served(zones: Path, state: State) -> None:
    with serving(zones) as port:
        for zone, serial in state.serials.items():
            reply = ask(port, zone, "SOA")
            assert RCODE[reply.header.rcode] == "NOERROR"
            assert reply.rr[0].rdata.times[0] == serial, f"{zone} served with another serial"
        reply = ask(port, ".".join(reversed(MARKER.split("."))) + "." + BL, "A")
        if state.marker_listed:
            assert [str(r.rdata) for r in reply.rr if r.rtype == QTYPE.A] == ["127.0.0.2"]
        else:
            assert RCODE[reply.header.rcode] == "NXDOMAIN"


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, State]:
    """Made once: a repository whose first commit is published, and a second commit waiting."""
    root = tmp_path_factory.mktemp("template")
    lists = init_repo(root / "repo", OLD)
    done = run_publish(lists, root / "zones")
    assert done.returncode == 0, done.stderr
    old = check_consistent(root / "zones")
    assert not old.marker_listed and EXTRA not in old.serials
    write(lists, NEW)
    commit_all(lists, "list 203.0.113.99, add extra.example.test")
    return root, old


@pytest.fixture
def published(template: tuple[Path, State], tmp_path: Path) -> tuple[Path, Path, State]:
    """A copy of the template for one test: (lists, zones, the state of the first publish)."""
    subprocess.run(["cp", "-a", f"{template[0]}/.", str(tmp_path)], check=True)  # keeps the links
    return tmp_path / "repo" / "lists", tmp_path / "zones", template[1]


def leftovers(zones: Path) -> list[str]:
    return sorted(p.name for p in zones.iterdir() if p.name.startswith((".tmp-", f".{CURRENT}.")))


# --- kill -9 at every step ----------------------------------------------------------------


@pytest.mark.parametrize(("step", "expect"), STEPS, ids=[s for s, _ in STEPS])
def test_kill_at_each_step_leaves_old_or_new_and_the_next_publish_repairs(
    published: tuple[Path, Path, State], step: str, expect: str
) -> None:
    lists, zones, old = published
    half: dict[str, int] = {}

    def look_at_the_half_file() -> None:
        (tmp,) = zones.glob(".tmp-gen-*")
        half["size"] = (tmp / f"{BL}.zone").stat().st_size

    kill_publish_at(lists, zones, step, look_at_the_half_file if step == f"writing {BL}.zone" else None)

    state = check_consistent(zones)
    if expect == "old":
        assert state == old
    else:
        assert state.marker_listed and EXTRA in state.serials and state.generation != old.generation
    check_served(zones, state)

    code, out, err = publish_here(lists, zones)
    assert code == 0, err
    after = check_consistent(zones)
    assert after.marker_listed and EXTRA in after.serials
    assert leftovers(zones) == []
    for name in (f"{EXTRA}.zone", f"{EXTRA}.snap", MANIFEST):
        assert (zones / name).is_symlink() and (zones / name).resolve().is_file()
    records = history.read(zones)
    assert records[-1].generation == after.generation
    assert len([r for r in records if r.generation == after.generation]) == 1
    if expect == "new":  # the killed publish itself went through: the next one only finished its work
        assert after.generation == state.generation and "nothing to publish" in out
        assert records[-1].recovered is True and records[-1].commit == records[-1].head
    if half:
        final = (zones / CURRENT / f"{BL}.zone").stat().st_size
        assert 0 < half["size"] < final, "the kill was not mid-write"


def test_a_left_over_complete_generation_is_pruned_in_time(published: tuple[Path, Path, State]) -> None:
    """Kills after the rename leave whole generations behind; they count against the kept ones."""
    lists, zones, _ = published
    for _ in range(3):
        kill_publish_at(lists, zones, "renamed generation")
    assert len(list(zones.glob("gen-*"))) == 4
    assert publish_here(lists, zones)[0] == 0
    assert len(list(zones.glob("gen-*"))) == artifacts.KEEP_GENERATIONS
    assert check_consistent(zones).marker_listed


# --- disk full, read-only zones/ -------------------------------------------------------------


def _assert_refused_cleanly(done: subprocess.CompletedProcess[str], zones: Path, old: State, words: str) -> None:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert re.search(rf"^error: cannot write .*{words}.*; nothing was published", done.stderr, re.M), done.stderr
    assert check_consistent(zones) == old
    assert leftovers(zones) == []


@contextlib.contextmanager
def mounted(*args: str) -> Iterator[None]:
    """`mount ARGS...` for the block; skip when this sandbox may not mount (not root, no CAP_SYS_ADMIN)."""
    target = args[-1]
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs or a read-only bind needs root")
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", target], check=False)


def _copy_zones(src: Path, dst: Path) -> None:
    """Copy a zones/ folder keeping its links (shutil.copytree would follow `current`)."""
    subprocess.run(["cp", "-a", f"{src}/.", str(dst)], check=True)


def test_a_full_disk_is_a_clear_error_and_keeps_the_old_publish(
    published: tuple[Path, Path, State], tmp_path: Path
) -> None:
    lists, zones, old = published
    small = tmp_path / "small"
    small.mkdir()
    # room for the first publish (about 0.3 MB) but not for a second generation next to it
    with mounted("-t", "tmpfs", "-o", "size=600k", "tmpfs", str(small)):
        _copy_zones(zones, small)
        filler = small / "filler"
        free = os.statvfs(small).f_bavail * os.statvfs(small).f_frsize
        filler.write_bytes(b"\0" * max(0, free - 64_000))  # less than one bl.example.test.zone
        done = run_publish(lists, small)
        _assert_refused_cleanly(done, small, old, "No space left on device")
        filler.unlink()  # room again: the next publish goes through
        assert run_publish(lists, small).returncode == 0
        assert check_consistent(small).marker_listed


def test_a_read_only_zones_folder_is_a_clear_error(published: tuple[Path, Path, State]) -> None:
    lists, zones, old = published
    if os.geteuid() != 0:
        zones.chmod(0o555)
        try:
            _assert_refused_cleanly(run_publish(lists, zones), zones, old, "Permission denied")
        finally:
            zones.chmod(0o755)
        return
    with mounted("--bind", str(zones), str(zones)):
        remount = subprocess.run(["mount", "-o", "remount,bind,ro", str(zones)], capture_output=True, text=True)
        if remount.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {remount.stderr.strip()}")
        _assert_refused_cleanly(run_publish(lists, zones), zones, old, "Read-only file system")
    assert run_publish(lists, zones).returncode == 0


# The same two failures in-process, for sandboxes that may not mount: the errors raised by
# the system calls are simulated, everything else is real.


class _FullFile(io.RawIOBase):
    """A writable file on a full disk: the first write that reaches the disk fails."""

    def __init__(self, path: str) -> None:
        self.path = path

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path)


def test_writes_failing_in_process(published: tuple[Path, Path, State], monkeypatch: pytest.MonkeyPatch) -> None:
    from publisher.publish.release import publish

    lists, zones, old = published
    real_open = builtins.open

    def full_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "w" in mode and str(file).startswith(str(zones)):
            raw = _FullFile(str(file))
            real_open(file, mode, *args, **kwargs).close()  # the file exists, like on a real disk
            return (
                io.TextIOWrapper(io.BufferedWriter(raw), encoding="utf-8")
                if "b" not in mode
                else io.BufferedWriter(raw)
            )
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", full_open)
    with pytest.raises(ArtifactError, match=r"cannot write .*No space left on device.*nothing was published"):
        publish(lists, zones)
    monkeypatch.undo()
    assert check_consistent(zones) == old and leftovers(zones) == []


def test_read_only_in_process(published: tuple[Path, Path, State], monkeypatch: pytest.MonkeyPatch) -> None:
    from publisher.publish.release import publish

    lists, zones, old = published
    real_mkdir = os.mkdir

    def read_only(path: Any, *args: Any, **kwargs: Any) -> None:
        if str(path).startswith(str(zones)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", read_only)
    with pytest.raises(ArtifactError, match=r"cannot write .*Read-only file system.*nothing was published"):
        publish(lists, zones)
    monkeypatch.undo()
    assert check_consistent(zones) == old and leftovers(zones) == []
