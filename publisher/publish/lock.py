"""The writer lock of zones/: one writer at a time, from reading what is published to the swap.

A publish reads the current generation (its serials), plans, and writes the next one;
two publishes that read the same generation would give the same serial to different
content, and secondaries that have the first would never take the second. So a writer
holds `zones/.lock` (flock(2), released by the kernel even on kill -9) across the whole
read-plan-write, and a second writer waits: after LOCK_NOTICE seconds it says so (naming
the holder's pid, which the holder writes into the lock file), after its timeout it gives up
with an error that says nothing was published.

The lock is re-entrant per thread: a writer holding it calls `write_generation`, which takes
it again, without deadlocking on its own flock. Another thread (a test, `serve --watch` next
to nothing else) is another writer and waits like another process.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from publisher.errors import ArtifactError

LOCK = ".lock"
#: Seconds a writer waits for another before it gives up.
LOCK_TIMEOUT = 600.0
#: Seconds of waiting before the waiter says that it waits (a short wait stays silent).
LOCK_NOTICE = 1.0
_POLL = 0.05

#: Called once with a message when a writer has to wait for another.
WaitHook = Callable[[str], None]

_held = threading.local()


def no_wait(message: str) -> None:
    """The default wait hook: says nothing."""


def _held_dirs() -> set[str]:
    dirs: set[str] | None = getattr(_held, "dirs", None)
    if dirs is None:
        dirs = _held.dirs = set()
    return dirs


def holds(zones_dir: Path) -> bool:
    """Does this thread hold the writer lock of `zones_dir`?"""
    return str(zones_dir.resolve()) in _held_dirs()


def _open(zones_dir: Path) -> tuple[int, bool]:
    """The lock file, read-write when possible (to record our pid). (fd, writable)"""
    path = zones_dir / LOCK
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644), True
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EROFS, errno.EPERM):
            raise
    # a read-only zones/ (or lock file): flock works on a read-only descriptor too
    return os.open(path, os.O_RDONLY), False


def holder(zones_dir: Path) -> int | None:
    """The pid the holder wrote into the lock file (None when unknown)."""
    try:
        text = (zones_dir / LOCK).read_text().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def _waiting_message(zones_dir: Path) -> str:
    pid = holder(zones_dir)
    who = f"pid {pid}" if pid is not None else "pid unknown"
    return f"waiting for another publish ({who}) to finish: {zones_dir / LOCK} is locked"


def _acquire(fd: int, zones_dir: Path, timeout: float, on_wait: WaitHook) -> None:
    start = time.monotonic()
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        waited = time.monotonic() - start
        if not told and waited >= LOCK_NOTICE:
            on_wait(_waiting_message(zones_dir))
            told = True
        if waited >= timeout:
            pid = holder(zones_dir)
            raise ArtifactError(
                f"{zones_dir} is locked by another publish (pid {pid if pid is not None else 'unknown'}) "
                f"for {timeout:g} s; nothing was published. Let it finish (or stop it), then run again"
            )
        time.sleep(_POLL)


@contextlib.contextmanager
def writer_lock(zones_dir: Path, *, timeout: float = LOCK_TIMEOUT, on_wait: WaitHook = no_wait) -> Iterator[None]:
    """Hold `zones_dir/.lock` for the block (creating zones_dir); wait for another holder.

    Raises ArtifactError when zones/ cannot be created or locked, or after `timeout`
    seconds of waiting; then nothing was written.
    """
    if holds(zones_dir):
        yield
        return
    try:
        zones_dir.mkdir(parents=True, exist_ok=True)
        key = str(zones_dir.resolve())
        fd, writable = _open(zones_dir)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise ArtifactError(
            f"cannot write {zones_dir}: {exc.strerror or exc}{where}; nothing was published, "
            "the previous publish stays current"
        ) from exc
    try:
        _acquire(fd, zones_dir, timeout, on_wait)
        if writable:
            with contextlib.suppress(OSError):  # the pid is a courtesy for the waiters
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _held_dirs().add(key)
        try:
            yield
        finally:
            _held_dirs().discard(key)
    finally:
        os.close(fd)


@contextlib.contextmanager
def try_lock(zones_dir: Path) -> Iterator[bool]:
    """The lock if it is free now (or held by this thread): yields whether it is held."""
    if holds(zones_dir):
        yield True
        return
    try:
        fd, _ = _open(zones_dir)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
