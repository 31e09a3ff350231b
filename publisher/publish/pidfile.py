"""zones/server.pid: which `publisher serve` serves this zones/ folder.

`serve` writes its pid there once it answers (the parent's under `--workers`, which
forwards SIGHUP to every worker) and removes the file when it stops, so that `publish`
can SIGHUP it for an immediate reload and say which server took the publish. The server
also notices a publish by itself within a second; the file only makes it immediate.

A pid file can outlive its process (kill -9, a reboot) and the pid be reused, so a pid
counts only while its process's command line names the publisher. A second server on the
same folder leaves a live first one's file alone.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

PID_FILE = "server.pid"


def _running_publisher(pid: int) -> bool:
    try:
        return b"publisher" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False  # no such process (any more)


def server_pid(zones_dir: Path) -> int | None:
    """The pid in zones/server.pid when it names a running publisher process, else None."""
    try:
        pid = int((zones_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid > 0 and _running_publisher(pid) else None


def claim(zones_dir: Path) -> str:
    """Write this process's pid to zones/server.pid unless another live server's is there.

    Returns what happened, for the log. Never raises: a server that cannot write the file
    (a read-only zones/) serves all the same, and publish then waits for its poll."""
    other = server_pid(zones_dir)
    if other is not None and other != os.getpid():
        return f"{zones_dir / PID_FILE} names another running server (pid {other}); left as it is"
    path = zones_dir / PID_FILE
    tmp = zones_dir / f".{PID_FILE}.{os.getpid()}"
    try:
        tmp.write_text(f"{os.getpid()}\n")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        return f"cannot write {path}: {exc.strerror or exc}; publish will not signal this server (it polls)"
    return f"pid {os.getpid()} in {path}: publish signals this server to reload"


def release(zones_dir: Path) -> None:
    """Remove zones/server.pid if it still holds this process's pid."""
    path = zones_dir / PID_FILE
    try:
        if int(path.read_text().strip()) == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def notify_server(zones_dir: Path) -> bool:
    """SIGHUP the server whose pid is in zones/server.pid, if it is ours and running."""
    pid = server_pid(zones_dir)
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError):
        return False
    return True
