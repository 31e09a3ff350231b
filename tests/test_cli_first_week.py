"""What an operator meets in the first week (issue 17): a clone owned by another user, a
Python without the dependencies, a typo in a command or option, a run from a subfolder."""

from __future__ import annotations

import os
import pwd
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from tests.test_publish import FILES
from tests.test_publish import run_cli as run
from tests.test_vcs import init_repo

from conftest import LISTS, ROOT
from publisher import cli
from publisher.cli import DEPENDENCIES, main
from publisher.publish.manifest import read_manifest

NOBODY = 65534
SYSTEM_PYTHON = "/usr/bin/python3"


def _name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"#{uid}"


# --- a clone owned by another user --------------------------------------------------------


@pytest.fixture
def foreign_clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A list repository owned by another uid, with no global git config trusting it."""
    if os.geteuid() != 0:
        pytest.skip("needs root to hand a clone to another user")
    lists = init_repo(tmp_path / "repo", FILES)
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(tmp_path / "repo")], check=True)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_CONFIG_GLOBAL", "XDG_CONFIG_HOME", "GIT_DIR", "GIT_WORK_TREE"):
        monkeypatch.delenv(name, raising=False)
    return lists


@pytest.mark.parametrize("command", [["plan"], ["publish"], ["plan", "--commit", "HEAD~0"]])
def test_a_clone_of_another_user_says_why_git_refuses_and_how_out(
    foreign_clone: Path, tmp_path: Path, command: list[str]
) -> None:
    code, out, err = run("--lists", str(foreign_clone), "--zones", str(tmp_path / "zones"), *command)
    repo = foreign_clone.parent
    assert code == 1, err
    assert "is not a commit" not in err
    assert f"detected dubious ownership in repository at '{repo}'" in err
    assert f"sudo -u {_name(NOBODY)} publisher ..." in err
    assert f"git config --global --add safe.directory {repo}" in err
    assert read_manifest(tmp_path / "zones") is None  # nothing published


def test_explain_on_a_clone_of_another_user_says_why_not_no_blame(foreign_clone: Path, tmp_path: Path) -> None:
    repo, zones = foreign_clone.parent, tmp_path / "zones"
    subprocess.run(["chown", "-R", f"{os.geteuid()}:{os.getegid()}", str(repo)], check=True)
    assert run("--lists", str(foreign_clone), "--zones", str(zones), "publish")[0] == 0
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(repo)], check=True)
    code, out, err = run("--lists", str(foreign_clone), "--zones", str(zones), "explain", "192.0.2.3")
    assert (code, out) == (1, ""), out
    assert f"detected dubious ownership in repository at '{repo}'" in err
    assert f"sudo -u {_name(NOBODY)} publisher ..." in err


# --- a Python without the dependencies ----------------------------------------------------

#: Run `python -m publisher ARGV` with the import of some modules failing as if not installed.
WITHOUT = """
import importlib.abc, runpy, sys
BLOCKED = set(sys.argv[1].split(","))
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Missing())
sys.argv = ["publisher", *sys.argv[2:]]
runpy.run_module("publisher", run_name="__main__", alter_sys=True)
"""


def _python_m_publisher(python: str, *argv: str, cwd: Path, blocked: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = str(ROOT)
    cmd = [python, "-c", WITHOUT, blocked, *argv] if blocked else [python, "-m", "publisher", *argv]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def _lacks(python: str, module: str) -> bool:
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode != 0


@pytest.mark.skipif(
    not Path(SYSTEM_PYTHON).exists() or not any(_lacks(SYSTEM_PYTHON, m) for m in DEPENDENCIES),
    reason="the system Python has every dependency installed",
)
def test_the_system_python_without_the_dependencies_says_to_use_the_virtualenv() -> None:
    done = _python_m_publisher(SYSTEM_PYTHON, "validate", cwd=ROOT)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    line = done.stderr.strip()
    assert "\n" not in line
    found = re.fullmatch(r"error: the Python package '(\S+)' \(module (\w+)\) is not installed for (\S+); (.*)", line)
    assert found, line
    package, module, python, hint = found.groups()
    assert (package, python) == (DEPENDENCIES[module], SYSTEM_PYTHON) and _lacks(SYSTEM_PYTHON, module)
    assert (
        hint == "run the command from the project's virtualenv: .venv/bin/publisher validate, or . .venv/bin/activate"
    )


@pytest.mark.parametrize(("argv", "module"), [(["plan"], "git"), (["validate"], "jsonschema")])
def test_a_missing_dependency_names_the_package_not_a_traceback(argv: list[str], module: str, tmp_path: Path) -> None:
    """The handler's late import (GitPython when `plan` runs) and the parser's alike."""
    done = _python_m_publisher(sys.executable, *argv, "--lists", str(LISTS), cwd=tmp_path, blocked=module)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(
        f"error: the Python package {DEPENDENCIES[module]!r} (module {module}) is not installed for {sys.executable}"
    ), done.stderr


def test_the_hint_names_the_virtualenv_and_how_to_make_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = ModuleNotFoundError("No module named 'git'", name="git")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "VENV", tmp_path / ".venv")
    monkeypatch.setattr(sys, "prefix", "/usr")
    monkeypatch.setattr(sys, "executable", "/usr/bin/python3")
    assert cli.missing_dependency(missing, ["plan", "--commit", "a b"]) == (
        "error: the Python package 'GitPython' (module git) is not installed for /usr/bin/python3; "
        "run the command from the project's virtualenv: .venv/bin/publisher plan --commit 'a b' "
        "(make venv creates it), or . .venv/bin/activate"
    )
    (tmp_path / ".venv").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert f"virtualenv: {tmp_path}/.venv/bin/publisher ..., or . {tmp_path}/.venv/bin/activate" in str(
        cli.missing_dependency(missing, [])
    )
    assert cli.missing_dependency(ModuleNotFoundError("x", name="publisher.nothing"), []) is None
    assert cli.missing_dependency(ModuleNotFoundError("x", name="sqlite3"), []) is None


def test_every_declared_dependency_has_its_module_named() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0].lower() for d in declared}
    assert names == {d.lower() for d in DEPENDENCIES.values()}


# --- a typo in a command or an option -----------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["valdate"], "unknown command 'valdate'; did you mean 'validate'?"),
        (["--lists", "L", "pubish"], "unknown command 'pubish'; did you mean 'publish'?"),
        (["plan", "--comit", "X"], "unknown option '--comit' for plan; did you mean '--commit'?"),
        (["plan", "--comit=X"], "unknown option '--comit' for plan; did you mean '--commit'?"),
        (["history", "--jsn"], "unknown option '--jsn' for history; did you mean '--json'?"),
        (["--lsts", "L", "validate"], "unknown option '--lsts'; did you mean '--lists'?"),
        # abbreviations are off: a prefix is a typo to report, not an option to guess
        (["plan", "--com", "X"], "unknown option '--com' for plan; did you mean '--commit'?"),
        (["publish", "--dry"], "unknown option '--dry' for publish; did you mean '--dry-run'?"),
        (["plan", "--xyzzy"], "unknown option '--xyzzy' for plan; `publisher plan --help` lists them"),
    ],
)
def test_a_typo_gets_the_closest_command_or_option(argv: list[str], said: str) -> None:
    assert run(*argv) == (2, "", f"error: {said}\n")


def test_an_unknown_command_far_from_any_lists_the_commands() -> None:
    code, _, err = run("frobnicate")
    assert code == 2
    assert err.startswith("error: unknown command 'frobnicate'; the commands: validate, compile, lookup, expiring,")


def test_a_stray_argument_is_still_argparses_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["history", "extra"])
    assert done.value.code == 2
    assert "unrecognized arguments: extra" in capsys.readouterr().err


# --- run from a subfolder -----------------------------------------------------------------


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A list repository (root/lists, one commit), its root returned."""
    init_repo(tmp_path / "repo", FILES)
    return tmp_path / "repo"


def test_validate_in_a_subfolder_reads_the_repository_lists(clone: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(clone)
    at_root = run("validate")
    monkeypatch.chdir(clone / "lists" / "bl")
    in_sub = run("validate")
    assert in_sub[0] == 0, in_sub[2]
    assert in_sub == at_root
    assert "zones.yaml" not in in_sub[2]
    assert not (clone / "lists" / "bl" / "lists").exists()


def test_publish_history_explain_in_a_subfolder_use_the_repository_zones(
    clone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(clone / "lists" / "wl")
    code, out, err = run("publish")
    assert code == 0, err
    assert "published ../../zones/gen-" in out
    assert read_manifest(clone / "zones") is not None
    assert not (clone / "lists" / "wl" / "zones").exists()
    code, out, _ = run("history")
    assert code == 0 and "no publishes recorded" not in out
    assert re.search(r"^\S+  publish   [0-9a-f]{10}  Alice Admin", out, re.M), out
    code, out, _ = run("explain", "192.0.2.3")
    assert code == 0
    assert "bl.example.test (serial" in out and "listed" in out and "by bl/abuse.yaml:" in out, out


def test_a_bad_entry_found_from_a_subfolder_is_located_from_there(clone: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clone / "lists" / "bl" / "abuse.yaml").write_text("entries:\n  - ip: 192.0.2.300\n    reason: x\n")
    monkeypatch.chdir(clone / "lists" / "bl")
    code, _, err = run("validate")
    assert code == 1
    assert re.search(r"^\.\./bl/abuse\.yaml:2:\d+: ", err, re.M), err  # the lists folder is ..


def test_outside_any_repository_says_where_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    for argv in (["validate"], ["history"], ["explain", "192.0.2.3"], ["plan"]):
        assert run(*argv) == (2, "", "error: no lists/ here: run from the repository root or pass --lists/--zones\n")
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_given_options_are_taken_as_given(clone: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(clone / "lists")
    code, out, err = run("--lists", ".", "--zones", "../z", "publish")
    assert code == 0, err
    assert "published ../z/gen-" in out and read_manifest(clone / "z") is not None


@pytest.mark.parametrize("argv", [["history"], ["explain", "192.0.2.3"], ["rollback", "2026112701"]])
def test_a_missing_zones_folder_is_an_error_not_an_empty_history(
    argv: list[str], clone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(clone)
    missing = tmp_path / "no-such-zones"
    code, out, err = run(*argv, "--zones", str(missing))
    assert (code, out) == (2, ""), err
    assert err.startswith(f"error: {missing}: no such folder, so nothing was published there\n  fix: pass --zones")
    assert not missing.exists()


# --- a reader that closes the pipe early ----------------------------------------------------


def test_a_closed_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    """`publisher ... | head`: the reader goes away before the output is written."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "publisher", "--lists", str(LISTS), "validate"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the command writes a line
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141, err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


# --- a stray lists/ inside the lists folder, a lists-only clone (issue 17) -----------------


def test_a_stray_lists_folder_inside_lists_does_not_make_it_the_root(
    clone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: lists/lists/ (an import written one level too deep) made lists/ the root, and
    every command there said lists/zones.yaml was missing."""
    monkeypatch.chdir(clone)
    at_root = run("validate")
    (clone / "lists" / "lists" / "peer").mkdir(parents=True)
    (clone / "lists" / "lists" / "peer" / "feed.txt").write_text("192.0.2.1\n")
    monkeypatch.chdir(clone / "lists")
    code, out, err = run("validate")
    assert code == 0, err
    assert out == at_root[1].replace("0 warnings", "1 warning")
    assert err.startswith("lists/peer/feed.txt: warning: lists/peer/feed.txt is not among the sources of any zone")


def test_a_fresh_folder_with_an_empty_lists_says_to_create_zones_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "fresh" / "lists").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "fresh")
    assert run("validate") == (
        2,
        "",
        "error: lists/ here has no zones.yaml: create lists/zones.yaml, or pass --lists/--zones\n",
    )


@pytest.mark.parametrize("git", [True, False])
def test_a_lists_only_clone_says_to_pass_lists_and_zones(
    git: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/scaling.md's lists clone: zones.yaml at its top. Before: `create lists/zones.yaml`."""
    if git:
        top = init_repo(tmp_path / "dnsbl-lists", FILES, subdir="")
    else:
        top = tmp_path / "dnsbl-lists"
        for name, text in FILES.items():
            (top / name).parent.mkdir(parents=True, exist_ok=True)
            (top / name).write_text(text)
    fix = "(the folder holding zones.yaml) and --zones DIR (the published zones, outside the clone)\n"
    monkeypatch.chdir(top)
    for argv in (["validate"], ["publish"], ["history"]):
        assert run(*argv) == (
            2,
            "",
            f"error: zones.yaml here but no lists/zones.yaml: in a lists-only clone, pass --lists . {fix}",
        )
    monkeypatch.chdir(top / "bl")
    assert run("validate") == (
        2,
        "",
        f"error: ../zones.yaml but no lists/zones.yaml: in a lists-only clone, pass --lists .. {fix}",
    )
    assert not (top / "zones").exists() and not (top / "bl" / "zones").exists()
    monkeypatch.chdir(top)
    code, out, err = run("--lists", ".", "--zones", str(tmp_path / "zones"), "validate")
    assert code == 0, err
    assert out.startswith("ok: 3 zones")
