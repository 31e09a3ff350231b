"""The command line, the only package that prints: one module per command group.

`main` is the console entry point (`publisher`, `python -m publisher`); it imports
cli/app.py when called, so that importing a command module never runs this package's
parser machinery (no import cycle between the command modules and app.py).

`python3 -m publisher` run by a Python without the project's dependencies (the system
one, outside .venv) prints which package is missing and how to reach the virtualenv,
instead of a ModuleNotFoundError traceback; a reader that closes the pipe early
(`| head`) ends the command quietly, not with a BrokenPipeError traceback.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

#: Import name -> the distribution that provides it: pyproject.toml's `dependencies`.
DEPENDENCIES = {
    "dnslib": "dnslib",
    "git": "GitPython",
    "jsonschema": "jsonschema",
    "schedule": "schedule",
    "yaml": "PyYAML",
    "dns": "dnspython",
    "prometheus_client": "prometheus-client",
    "idna": "idna",
    "publicsuffixlist": "publicsuffixlist",
    "fastapi": "fastapi",
    "uvicorn": "uvicorn",
    "jinja2": "jinja2",
    "multipart": "python-multipart",
}

#: Where `make venv` creates the virtualenv: next to the package, in the project folder.
VENV = Path(__file__).resolve().parents[2] / ".venv"


def _shown(path: Path) -> str:
    """`path` relative to the working folder when inside it (as a user would type it)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def missing_dependency(exc: ModuleNotFoundError, argv: Sequence[str]) -> str | None:
    """The one-line hint for a third-party module this Python lacks; None for anything else
    (one of ours, or the standard library's), which stays a traceback."""
    top = (exc.name or "").partition(".")[0]
    if not top or top == "publisher" or top in sys.stdlib_module_names:
        return None
    what = f"the Python package {DEPENDENCIES[top]!r} (module {top})" if top in DEPENDENCIES else f"the module {top!r}"
    where = f"{what} is not installed for {sys.executable}"
    if Path(sys.prefix).resolve() == VENV.resolve():
        return f"error: {where}, the project's virtualenv: reinstall it with `make venv` (pip install -e .)"
    command = shlex.join(["publisher", *argv]) if argv else "publisher ..."
    venv = _shown(VENV)
    made = "" if VENV.is_dir() else " (make venv creates it)"
    return (
        f"error: {where}; run the command from the project's virtualenv: {venv}/bin/{command}{made}, "
        f"or . {venv}/bin/activate"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on `argv` (default: sys.argv[1:]); returns the exit status."""
    try:
        from publisher.cli.app import main as run

        status = run(argv)
        sys.stdout.flush()  # here, where a closed pipe can still be told apart (below)
        return status
    except BrokenPipeError:
        # The reader went away (`publisher search x | head`): stop quietly, as cat does,
        # with the status of a process that SIGPIPE ended; nothing more goes to stdout.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except ModuleNotFoundError as exc:
        hint = missing_dependency(exc, sys.argv[1:] if argv is None else argv)
        if hint is None:
            raise
        print(hint, file=sys.stderr)
        return 2


__all__ = ["main"]
