"""One worker process of `serve --workers N`: `python -m publisher.server.worker --slot K --control-fd FD`.

Started by workers.Supervisor (the parent), never by hand. It reads its settings as one
JSON line from the control socket (`Spec`), runs an app.Server bound with SO_REUSEPORT on
the ports the parent chose, tells the parent it serves, then answers the parent's
requests for its figures (figures.py) on that socket, and takes in what the other workers
answered today per access key, for the daily quotas (keys.KeyUsage.set_others).
Reloads are its own (the manifest poll, and the SIGHUP the parent forwards). It stops on
SIGTERM from the parent, or when the parent goes away (end of file on the control
socket): no worker outlives its parent.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import TypedDict

from publisher.errors import PublisherError
from publisher.server.app import Server
from publisher.server.rrl import RrlSettings

log = logging.getLogger("publisher.server")

#: A control message longer than this is a bug, not figures (they are a few KiB a zone).
MAX_LINE = 16 << 20


class Serving(TypedDict):
    """The serving options every worker gets (options.ServeOptions less metrics and workers)."""

    log_queries: bool
    watch_manifest: bool
    tcp_idle_timeout: float
    max_tcp_connections: int
    batch: bool
    tsig_keys: Path | None
    access_keys: Path | None
    rrl: RrlSettings | None
    ixfr_keep: int


class Channel:
    """One JSON object per line over a socket between the parent and a worker."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = b""
        self._send_lock = threading.Lock()  # a worker sends from its control thread and its main loop

    def send(self, obj: dict[str, object]) -> None:
        with self._send_lock:
            self.sock.settimeout(10.0)
            self.sock.sendall(json.dumps(obj, separators=(",", ":")).encode() + b"\n")

    def recv(self, timeout: float | None) -> dict[str, object] | None:
        """The next object; None at end of file. Raises TimeoutError, OSError, ValueError."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buf:
            if len(self._buf) > MAX_LINE:
                raise ValueError("control message too long")
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no answer on the control socket")
                self.sock.settimeout(left)
            else:
                self.sock.settimeout(None)
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        obj = json.loads(line)
        if not isinstance(obj, dict):
            raise ValueError("control message is not an object")
        return obj

    def close(self) -> None:
        self.sock.close()


def spec(
    zones_dir: Path,
    listen: list[str],
    serving: Serving,
    *,
    slot: int,
    notify: bool,
    notified: dict[str, int] | None,
    timing: bool,
) -> dict[str, object]:
    """The settings line the parent sends a new worker."""
    root = logging.getLogger()
    fmt = root.handlers[0].formatter._fmt if root.handlers and root.handlers[0].formatter else None
    rrl = serving["rrl"]
    return {
        "zones": str(zones_dir),
        "listen": listen,
        "serving": {
            **serving,
            "tsig_keys": str(serving["tsig_keys"]) if serving["tsig_keys"] is not None else None,
            "access_keys": str(serving["access_keys"]) if serving["access_keys"] is not None else None,
            "rrl": dataclasses.asdict(rrl) if rrl is not None else None,
        },
        "slot": slot,
        "notify": notify,
        "notified": notified,
        "timing": timing,
        "log_format": fmt or "%(asctime)s %(name)s %(levelname)s %(message)s",
        "log_level": logging.getLogger("publisher.server").getEffectiveLevel(),
    }


def _serving(obj: dict[str, object]) -> Serving:
    raw = obj["serving"]
    assert isinstance(raw, dict)
    return Serving(
        log_queries=bool(raw["log_queries"]),
        watch_manifest=bool(raw["watch_manifest"]),
        tcp_idle_timeout=float(raw["tcp_idle_timeout"]),
        max_tcp_connections=int(raw["max_tcp_connections"]),
        batch=bool(raw["batch"]),
        tsig_keys=Path(raw["tsig_keys"]) if raw["tsig_keys"] is not None else None,
        access_keys=Path(raw["access_keys"]) if raw["access_keys"] is not None else None,
        rrl=RrlSettings(**raw["rrl"]) if raw["rrl"] is not None else None,
        ixfr_keep=int(raw["ixfr_keep"]),
    )


class WorkerServer(Server):
    """The Server of one worker: after each reload, worker 0 tells the parent the serials it announced."""

    chan: Channel | None = None

    def reload(self) -> bool:
        ok = super().reload()
        if ok and self.send_notify and self.chan is not None:
            try:
                self.chan.send({"notified": {name: sz.serial for name, sz in self.zones.zones.items()}})
            except OSError:
                pass  # the parent is gone: the control thread stops this worker
        return ok


def _answer_parent(chan: Channel, server: Server) -> None:
    """The control thread: figures on request; the parent gone means stop."""
    try:
        while True:
            msg = chan.recv(None)
            if msg is None:
                break
            shares = msg.get("keys")
            if isinstance(shares, dict):  # what the other workers answered today per access key
                server.key_usage.set_others(int(shares["day"]), {str(k): int(v) for k, v in shares["others"].items()})
            if msg.get("ask") == "figures":
                chan.send({"seq": msg.get("seq"), "figures": server.figures().to_json()})
    except (OSError, ValueError) as exc:
        log.error("control socket failed (%s)", exc)
    # The parent closes its end only after this worker exited, or when it died itself.
    log.warning("the parent process is gone: stopping")
    server.request("stop")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m publisher.server.worker")
    parser.add_argument("--slot", type=int, required=True)
    parser.add_argument("--control-fd", type=int, required=True)
    args = parser.parse_args(argv)
    chan = Channel(socket.socket(fileno=args.control_fd))
    settings = chan.recv(60.0)
    if settings is None:
        return 1
    slot = int(str(settings["slot"]))
    fmt = str(settings["log_format"]).replace("%(message)s", f"worker {slot}: %(message)s")
    logging.basicConfig(level=int(str(settings["log_level"])), stream=sys.stderr, format=fmt)
    notified = settings["notified"]
    listen = settings["listen"]
    assert isinstance(listen, list)
    try:
        server = WorkerServer(
            Path(str(settings["zones"])),
            [str(x) for x in listen],
            **_serving(settings),
            reuse_port=True,
            timing=bool(settings["timing"]),
            send_notify=bool(settings["notify"]),
            notified={str(k): int(v) for k, v in notified.items()} if isinstance(notified, dict) else None,
        )
        server.take_signals()
        server.start()
    except PublisherError as exc:
        log.error("%s", exc)
        return exc.exit_code
    server.chan = chan
    try:
        chan.send({"ready": os.getpid(), "figures": server.figures().to_json()})
        threading.Thread(target=_answer_parent, args=(chan, server), name="control", daemon=True).start()
        server.run_forever()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
