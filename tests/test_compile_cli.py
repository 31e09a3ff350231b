"""`compile` is for trying the work tree out: it never replaces what `publish` made (no plan,
no guard rails, no history line), `make serve` serves the publish when there is one, and a
change of serving settings alone still reaches the manifest."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.conftest import LISTS, ROOT
from tests.test_cli import run
from tests.test_publish import published_sample

from publisher.publish import history
from publisher.publish.manifest import current_generation, read_manifest

BL = "bl.example.test"


def _gut(lists: Path) -> None:
    """Uncommitted: bl loses all but its first entry (93% of it, past every guard rail)."""
    path = lists / "bl" / "abuse.yaml"
    text = path.read_text()
    entries = [m.start() for m in re.finditer(r"^  - ", text, re.M)]
    path.write_text(text[: entries[1]])
    for feed in (lists / "bl").glob("*.txt"):
        feed.write_text("# emptied\n")


def test_compile_does_not_replace_a_publish(tmp_path: Path) -> None:
    lists, zones = published_sample(tmp_path)
    served = current_generation(zones)
    manifest = read_manifest(zones)
    assert manifest is not None
    listings = manifest.zones[BL].meta.counts.listings  # type: ignore[union-attr]
    _gut(lists)
    code, out, err = run("--lists", str(lists), "--zones", str(zones), "compile")
    assert code == 2, out + err
    assert f"error: {zones} holds a publish (commit " in err and "nothing was written" in err
    assert "fix: commit and `publisher publish`" in err and "--out DIR" in err
    assert current_generation(zones) == served and len(history.read(zones)) == 1
    # elsewhere it compiles, the work tree as it is
    code, out, err = run("--lists", str(lists), "--zones", str(zones), "compile", "--out", str(tmp_path / "try"))
    assert code == 0, err
    tried = read_manifest(tmp_path / "try")
    assert tried is not None and tried.zones[BL].meta.counts.listings < listings / 10  # type: ignore[union-attr]
    assert current_generation(zones) == served


def test_make_serve_compiles_only_when_nothing_is_published(tmp_path: Path) -> None:
    lists, zones = published_sample(tmp_path)
    served = current_generation(zones)
    _gut(lists)
    code, out, err = run("--lists", str(lists), "--zones", str(zones), "compile", "--unless-published")
    assert code == 0, err
    assert out.startswith(f"{zones} holds a publish of commit ") and "left as it is" in out
    assert current_generation(zones) == served
    # a fresh clone: nothing published, the work tree compiled as before
    fresh = tmp_path / "fresh"
    code, out, err = run("--lists", str(LISTS), "--zones", str(fresh), "compile", "--unless-published")
    assert code == 0 and f"wrote {fresh}/gen-" in out, err
    # and a work-tree compile is no publish: compile may replace it
    assert run("--lists", str(LISTS), "--zones", str(fresh), "compile")[0] == 0
    # the Makefile's serve target runs exactly that before serving
    dry = subprocess.run(["make", "-n", "serve", "PY=python"], cwd=ROOT, capture_output=True, text=True, check=True)
    steps = [line.strip() for line in dry.stdout.splitlines() if line.startswith("python -m publisher")]
    assert steps == ["python -m publisher compile --unless-published", "python -m publisher serve"]
    # the key files, outside git, are passed when given
    keyed = ["make", "-n", "serve", "PY=python", "ACCESS_KEYS=/etc/k.yaml", "TSIG_KEYS=/etc/t.key"]
    dry = subprocess.run(keyed, cwd=ROOT, capture_output=True, text=True, check=True)
    assert "python -m publisher serve --access-keys /etc/k.yaml --tsig-keys /etc/t.key" in dry.stdout


def test_compile_writes_a_settings_only_change(tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    shutil.copytree(LISTS, lists)
    zones = tmp_path / "zones"
    assert run("--lists", str(lists), "--zones", str(zones), "compile")[0] == 0
    before = read_manifest(zones)
    assert before is not None
    config = lists / "zones.yaml"
    config.write_text(
        config.read_text().replace('allow_transfer: [127.0.0.0/8, "::1/128"]', "allow_transfer: [192.0.2.0/24]")
    )
    code, out, err = run("--lists", str(lists), "--zones", str(zones), "compile")
    assert code == 0, err
    after = read_manifest(zones)
    assert after is not None and after.generation != before.generation
    assert [str(n) for n in after.zones[BL].meta.allow_transfer] == ["192.0.2.0/24"]
    assert {n: z.serial for n, z in after.zones.items()} == {n: z.serial for n, z in before.zones.items()}
    assert "(unchanged)" in out
