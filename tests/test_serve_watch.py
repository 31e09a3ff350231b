"""`serve --watch` on a fresh server: it publishes before it serves, and waits (logging why,
once) while nothing can be published, instead of exiting for want of zones; its pull
counters show in `--metrics`."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from tests.conftest import ROOT, require_tool
from tests.test_metrics import scrape_url
from tests.test_publish import ABUSE, FILES
from tests.test_server import Served, dig
from tests.test_vcs import BOB, commit_all, git, init_repo, write


def start_serve_watch(lists: Path, zones: Path, *extra: str) -> Served:
    cmd = [sys.executable, "-m", "publisher", "--lists", str(lists), "--zones", str(zones), "serve", "--watch"]
    cmd += ["--listen", "127.0.0.1:0", *extra]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    served = Served(proc, zones)
    threading.Thread(target=served._pump, daemon=True).start()
    return served


def test_serve_watch_waits_for_a_publishable_commit_then_serves(tmp_path: Path) -> None:
    require_tool("dig")
    # the lists' repository as the operator finds it: HEAD does not validate
    init_repo(tmp_path / "start", {**FILES, "bl/abuse.yaml": ABUSE + "  - ip: 192.0.2.1000\n"}, subdir="")
    git(tmp_path, "clone", "-q", "--bare", str(tmp_path / "start"), str(tmp_path / "upstream.git"))
    git(tmp_path, "clone", "-q", str(tmp_path / "upstream.git"), str(tmp_path / "lists"))
    git(tmp_path, "clone", "-q", str(tmp_path / "upstream.git"), str(tmp_path / "work"))
    zones = tmp_path / "zones"
    served = start_serve_watch(tmp_path / "lists", zones, "--interval", "0.2", "--metrics", "127.0.0.1:0", "--debug")
    try:
        served.wait_for(r"nothing published in \S+ yet: not serving until a commit of \S+ publishes")
        served.wait_for(r"check 6: unchanged since the last attempt")  # it kept checking, and stayed up
        log = served.log_text()
        refusals = [line for line in log.splitlines() if "ERROR" in line and "not published" in line]
        assert len(refusals) == 1 and log.count("nothing published in") == 1, log
        assert "192.0.2.1000" in log and "listening udp" not in log

        write(tmp_path / "work", {"bl/abuse.yaml": ABUSE + "  - ip: 203.0.113.99\n    reason: fixed\n"})
        fixed = commit_all(tmp_path / "work", "fix the typo", BOB)
        git(tmp_path / "work", "push", "-q", "origin", "main")
        served.wait_for(rf"published commit {fixed[:10]} \(first publish\)")
        port = int(served.wait_for(r"listening udp 127\.0\.0\.1:(\d+)")[1])
        answer = dig(port, "99.113.0.203.bl.example.test", "A")
        assert answer.status == "NOERROR" and answer.answer, served.log_text()

        # the upstream goes away: the pulls fail, the metrics count them
        url = served.wait_for(r"metrics on (http://\S+)")[1]
        before = scrape_url(url)
        assert before[("dnsbl_watch_last_pull_success_timestamp_seconds", frozenset())] > 0
        (tmp_path / "upstream.git").rename(tmp_path / "gone.git")
        mark = served.mark()
        served.wait_for(r"pull failed: .*\n?", start=mark)
        served.wait_for(r"pull failed again", start=mark)
        after = scrape_url(url)
        assert after[("dnsbl_watch_pull_failures_total", frozenset())] >= 2
        assert before[("dnsbl_watch_pull_failures_total", frozenset())] == 0
        assert dig(port, "99.113.0.203.bl.example.test", "A").answer  # still serving
    finally:
        assert served.stop() == 0, served.log_text()


def test_serve_watch_stops_cleanly_while_waiting(tmp_path: Path) -> None:
    """SIGTERM (systemctl stop) while nothing is published yet ends the wait with status 0."""
    init_repo(tmp_path / "lists", {**FILES, "bl/abuse.yaml": ABUSE + "  - ip: 192.0.2.1000\n"}, subdir="")
    served = start_serve_watch(tmp_path / "lists", tmp_path / "zones", "--interval", "30")
    try:
        served.wait_for(r"nothing published in \S+ yet")
    finally:
        assert served.stop() == 0, served.log_text()
