"""Every shipped sample zone transfers whole and loads in BIND (security review, item 2).

The shipped lists (lists/, and the good corpus base tests/data/corpus/base/) are
compiled with `publisher compile`, served by the real server on an ephemeral loopback
port, and each zone is taken with `dig AXFR`: the transfer must complete, begin and end
with the SOA, and hold exactly the zone's records. Each written BIND file must load in
`named-checkzone`. A zone that breaks a transfer midway stops every secondary, so this
runs over everything we ship.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import DATA, LISTS, require_tool
from publisher.cli import app as cli
from publisher.compile.render import iter_records
from publisher.publish.manifest import load_published
from test_server import Served, start_server

TREES = {"lists": LISTS, "corpus-base": DATA / "corpus" / "base"}


@pytest.fixture(scope="module", params=sorted(TREES))
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    require_tool("dig")
    zones = tmp_path_factory.mktemp(request.param) / "zones"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["--lists", str(TREES[request.param]), "--zones", str(zones), "compile"])
    assert code == 0, err.getvalue()
    server = start_server(zones)
    yield server
    server.stop()


def axfr(served: Served, zone: str) -> tuple[str, list[list[str]]]:
    cmd = [require_tool("dig"), "-p", str(served.port), "@127.0.0.1", zone, "AXFR", "+nocmd", "+time=10", "+tries=1"]
    text = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    return text, [line.split(None, 4) for line in text.splitlines() if line.strip() and not line.startswith(";")]


def test_every_zone_transfers_whole(served: Served) -> None:
    published = load_published(served.zones_dir)
    assert len(published.zones) >= 3
    for name, zone in published.zones.items():
        text, records = axfr(served, name)
        assert "Transfer failed" not in text and "communications error" not in text, f"{name}:\n{text[-2000:]}"
        assert records, f"{name}: nothing transferred:\n{text[-2000:]}"
        assert records[0][3] == records[-1][3] == "SOA", name
        assert records[0][4].split()[2] == str(zone.info.serial)
        assert len(records) == sum(1 for _ in iter_records(zone)) + 1, name  # + the closing SOA


def test_every_written_bind_file_loads(served: Served) -> None:
    checkzone = require_tool("named-checkzone")
    zone_files = sorted(Path(served.zones_dir, "current").glob("*.zone"))
    assert len(zone_files) >= 3
    for path in zone_files:
        zone = path.name.removesuffix(".zone")
        # -k warn: `_` is fine in a listed domain; BIND secondaries only warn about it too.
        run = subprocess.run(
            [checkzone, "-i", "local", "-k", "warn", zone, str(path)], capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 0, f"named-checkzone refused {zone}:\n{run.stdout}{run.stderr}"
