"""The git pre-commit hook: validate the staged lists, refuse the commit on errors.

`install_hook` writes a small
shell script into the repository's hooks folder that runs
`python -m publisher --lists <folder> validate-staged` with the interpreter
(and package) that installed it, from the top of the work tree. The hook
reads the index (vcs.StagedTree), not the work tree, so it judges exactly
what is being committed.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import publisher
from publisher.errors import UsageError
from publisher.publish.vcs import ListsRepo, find_repo, hooks_dir

MARK = "# installed by `publisher install-hook`"
HOOK = "pre-commit"


def hook_script(where: ListsRepo, python: str) -> str:
    package_root = Path(publisher.__file__).resolve().parent.parent
    lists = where.prefix or "."
    return "\n".join(
        [
            "#!/bin/sh",
            MARK,
            "# Validates the staged list files; a commit with errors is refused.",
            "# Skip once with `git commit --no-verify`; reinstall with `python -m publisher install-hook`.",
            'cd "$(git rev-parse --show-toplevel)" || exit 1',
            f"PYTHONPATH={shlex.quote(str(package_root))}${{PYTHONPATH:+:$PYTHONPATH}}",
            "export PYTHONPATH",
            f"exec {shlex.quote(python)} -m publisher --lists {shlex.quote(lists)} validate-staged",
            "",
        ]
    )


def install_hook(lists: Path, *, python: str | None = None, force: bool = False) -> Path:
    """Write the pre-commit hook; an existing foreign hook is kept unless `force` (then backed up)."""
    where = find_repo(lists)
    folder = hooks_dir(where)
    path = folder / HOOK
    if path.exists() and MARK not in path.read_text(errors="replace"):
        if not force:
            raise UsageError(
                f"{path} exists and was not installed by publisher; "
                "add `python -m publisher validate-staged` to it, or rerun with --force to replace it "
                f"(the old hook is kept as {HOOK}.orig)"
            )
        path.replace(folder / f"{HOOK}.orig")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{HOOK}.tmp"
    tmp.write_text(hook_script(where, python or sys.executable))
    tmp.chmod(0o755)
    os.replace(tmp, path)
    return path
