"""The command line's conventions: one flag set for `serve` and `python -m publisher.server`,
global options before or after the command, and `serve` loading only what serving needs."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests.test_publish import run_cli as run

from conftest import ROOT
from publisher.cli import typos
from publisher.cli.app import build_parser
from publisher.server import options
from publisher.server.__main__ import build_parser as server_parser

#: Every serving flag away from its default, as both entry points take them.
SERVING = [
    "--zones", "/srv/zones",
    "--listen", "127.0.0.1:0", "--listen", "[::1]:53",
    "--log-queries", "--no-watch", "--tcp-idle-timeout", "3.5", "--max-tcp", "7", "--no-batch",
    "--metrics", "127.0.0.1:9153", "--tsig-keys", "/etc/keys.conf",
    "--rrl-qps", "5", "--rrl-burst", "9", "--rrl-answer", "code", "--rrl-code", "127.255.255.254",
]  # fmt: skip


def help_of(parser: argparse.ArgumentParser, *argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        parser.parse_args([*argv, "--help"])
    assert done.value.code == 0
    return out.getvalue()


def flags(help_text: str) -> set[str]:
    """The long options a --help lists, one per option line."""
    return set(re.findall(r"^  (--[\w-]+)", help_text, re.M))


def test_serve_and_the_server_module_take_the_same_flags() -> None:
    server = server_parser().parse_args(SERVING)
    cli = build_parser().parse_args(["serve", *SERVING])
    assert cli.zones == server.zones == Path("/srv/zones")
    assert cli.listen == server.listen == ["127.0.0.1:0", "[::1]:53"]
    assert options.from_args(cli) == options.from_args(server)
    assert options.from_args(cli)["rrl"] is not None
    assert options.from_args(cli)["watch_manifest"] is False


def test_serve_defaults_match_the_server_module() -> None:
    server = server_parser().parse_args([])
    cli = build_parser().parse_args(["serve"])
    assert cli.zones == server.zones == Path("zones")
    assert cli.listen is server.listen is None
    assert options.from_args(cli) == options.from_args(server)


def test_serve_help_lists_every_serving_option() -> None:
    serving = flags(help_of(server_parser()))
    assert {"--zones", "--listen", "--no-watch", "--max-tcp", "--metrics", "--tsig-keys", "--rrl-qps"} <= serving
    listed = flags(help_of(build_parser(), "serve"))
    assert serving <= listed, f"missing from `publisher serve --help`: {sorted(serving - listed)}"
    assert {"--watch", "--interval", "--lists", "--debug"} <= listed


# --- global options before or after the command ------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["--lists", "A", "--zones", "Z", "--debug", "validate"],
        ["validate", "--lists", "A", "--zones", "Z", "--debug"],
        ["--lists", "A", "validate", "--zones", "Z", "--debug"],
        ["--debug", "--zones", "Z", "validate", "--lists", "A"],
    ],
)
def test_global_options_work_before_and_after_the_command(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert (args.lists, args.zones, args.debug) == (Path("A"), Path("Z"), True)


@pytest.mark.parametrize(
    "argv",
    [
        ["requests", "accept", "--lists", "A", "--zones", "Z", "--debug", "2026-11-30-0001"],
        ["requests", "--lists", "A", "list", "--zones", "Z", "--debug"],
        ["keys", "new", "--lists", "A", "--zones", "Z", "--debug", "acme"],
    ],
)
def test_global_options_work_after_a_command_of_a_command(argv: list[str]) -> None:
    args = typos.parse(build_parser(), argv)
    assert (args.lists, args.zones, args.debug) == (Path("A"), Path("Z"), True)


def test_global_options_keep_their_defaults_when_given_nowhere() -> None:
    args = build_parser().parse_args(["compile"])
    assert (args.lists, args.zones, args.debug, args.out) == (Path("lists"), Path("zones"), False, None)


def test_given_before_and_after_the_command_the_later_wins() -> None:
    args = build_parser().parse_args(["--lists", "before", "--zones", "Zb", "lookup", "--lists", "after", "x"])
    assert (args.lists, args.zones, args.query) == (Path("after"), Path("Zb"), "x")


@pytest.mark.parametrize("command", ["validate", "compile", "lookup", "serve", "publish", "explain", "watch"])
def test_every_command_lists_the_global_options(command: str) -> None:
    assert {"--lists", "--zones", "--debug"} <= flags(help_of(build_parser(), command))


def test_serve_takes_zones_and_listen_after_the_command() -> None:
    args = build_parser().parse_args(["serve", "--zones", "/srv/z", "--listen", "127.0.0.1:0", "--watch"])
    assert (args.zones, args.listen, args.watch) == (Path("/srv/z"), ["127.0.0.1:0"], True)


def test_compile_with_lists_after_the_command(lists_dir: Path, tmp_path: Path) -> None:
    before = run("--lists", str(lists_dir), "--zones", str(tmp_path / "a"), "compile")
    after = run("compile", "--lists", str(lists_dir), "--zones", str(tmp_path / "b"))
    assert before[0] == after[0] == 0, before[2] + after[2]
    gen = re.compile(r"\S+/gen-\S+")
    assert gen.sub("GEN", before[1]) == gen.sub("GEN", after[1])
    assert "wrote " in after[1] and str(tmp_path / "b") in after[1]
    assert run("validate", "--lists", str(lists_dir))[:2] == run("--lists", str(lists_dir), "validate")[:2]


# --- serve loads only what serving needs ---------------------------------------------------

#: What serving never needs: git, YAML, JSON schemas, the lists and importer stages and the
#: publish machinery (the zones/ reader, publish.artifacts and its helpers, is allowed).
NOT_FOR_SERVING = """
import sys
publishing = ("build", "release", "plan", "entry_diff", "guards", "vcs", "watch", "hooks", "explain")
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"git", "jsonschema", "yaml", "schedule"})
heavy += sorted(
    m for m in sys.modules
    if m.startswith(("publisher.lists", "publisher.importer", "publisher.cli.report"))
    or m in {f"publisher.publish.{name}" for name in publishing}
)
assert not heavy, f"imported: {heavy}"
"""

SERVE_ONCE = """
from publisher.server.app import Server
Server.run_forever = lambda self: None  # started, zones loaded and bound: stop there
"""


@pytest.mark.parametrize(
    "call",
    [
        "from publisher.cli.app import build_parser; build_parser().parse_args(['serve', '--listen', '127.0.0.1:0'])",
        "from publisher.cli import main; assert main(['serve', '--zones', ZONES, '--listen', '127.0.0.1:0']) == 0",
        "from publisher.server.__main__ import main; assert main(['--zones', ZONES, '--listen', '127.0.0.1:0']) == 0",
    ],
    ids=["parser", "publisher-serve", "python-m-publisher.server"],
)
def test_serve_imports_no_git_yaml_jsonschema_nor_the_lists(call: str, lists_dir: Path, tmp_path: Path) -> None:
    zones = tmp_path / "zones"
    assert run("--lists", str(lists_dir), "--zones", str(zones), "compile")[0] == 0
    code = f"ZONES = {str(zones)!r}\n{SERVE_ONCE}\n{call}\n{NOT_FOR_SERVING}"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]


def test_import_rbldnsd_offers_the_importers_dataset_types() -> None:
    """cli/imports.py writes the --type choices out (so as not to import the importer): the same."""
    from publisher.cli import imports
    from publisher.importer.migrate import DATASET_TYPES

    assert imports.DATASET_TYPES == DATASET_TYPES
