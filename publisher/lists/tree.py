"""Where list files are read from: the work tree, or (in publish/vcs/) a git commit.

Both implement `Tree`: paths are POSIX paths relative to the lists root
(`zones.yaml`, `bl/abuse.yaml`). Reading goes through here so that validation
and compilation never care whether the bytes come from disk or from git.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Protocol

from publisher.errors import PublisherError
from publisher.model import glob_matches

#: Files larger than this are refused rather than read (a runaway feed, a wrong file).
MAX_FILE_BYTES = 512 * 1024 * 1024


class TreeError(PublisherError):
    """A file could not be read from the tree."""


class Tree(Protocol):
    """Read-only access to the files under the lists root."""

    def describe(self) -> str:
        """Where this tree comes from, for messages ('work tree lists/', 'commit abc1234')."""
        ...

    def files(self) -> list[str]:
        """Every regular file, as sorted relative POSIX paths."""
        ...

    def read(self, path: str) -> bytes:
        """The bytes of one file; TreeError if missing, unreadable or outside the root."""
        ...


def glob(tree: Tree, pattern: str) -> list[str]:
    """Files matching a glob relative to the root; `*` does not cross '/', `**` does."""
    return [p for p in tree.files() if glob_matches(pattern, p)]


class DirTree:
    """The lists folder on disk (the work tree)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def describe(self) -> str:
        return f"work tree {self.root}"

    def files(self) -> list[str]:
        out: list[str] = []
        if not self.root.is_dir():
            return out
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in filenames:
                if name.startswith("."):
                    continue
                full = Path(dirpath, name)
                out.append(full.relative_to(self.root).as_posix())
        return sorted(out)

    def read(self, path: str) -> bytes:
        full = self.root / path
        try:
            real = full.resolve(strict=True)
            if not real.is_relative_to(self.root.resolve()):
                raise TreeError(f"{path}: is a link that points outside {self.root}")
            info = real.stat()
            if not stat.S_ISREG(info.st_mode):  # a FIFO would block the read for ever
                raise TreeError(f"{path}: is not a regular file")
            if info.st_size > MAX_FILE_BYTES:
                raise TreeError(f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
            return real.read_bytes()
        except OSError as exc:
            raise TreeError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        except RuntimeError as exc:  # Python 3.11's resolve() on a symlink loop
            raise TreeError(f"{path}: is a link that loops ({exc})") from exc
