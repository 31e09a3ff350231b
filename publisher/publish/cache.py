"""zones/.cache/: parsed list files kept between publishes, keyed by what they were parsed from.

A publish of a million-line feed after a one-line change reads the parse of the
published version from here instead of parsing it again, and patches it into the
new one (lists/bulk_patch.py). The folder is a cache and nothing more:
- deleting it, or any file in it, at any time only costs the next publish a full parse;
- an entry's key is a sha256 over the codec and package versions, the file's path,
  its git blob id and the zone settings that parsing reads (`source_key`): an entry
  is found only for exactly the bytes and settings it was parsed from;
- every entry is checked whole before use (source_codec.py: magic, version,
  sha256); a corrupt, truncated or foreign one is ignored with a note (the plan
  shows it), removed, and the file is parsed again: a cache entry is never published
  unchecked, and what is published is validated and compiled as always;
- entries are written to a temporary name and renamed into place; the least recently
  used beyond MAX_ENTRIES or MAX_BYTES are removed after each publish;
- the server never reads it, and generation pruning (artifacts.py) never touches it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import publisher
from publisher.errors import Location
from publisher.lists.source_codec import CODEC_VERSION, CodecError, decode_source, encode_source
from publisher.model import Guards, SourceData, ZoneConfig

__all__ = ["CACHE_DIR", "MAX_BYTES", "MAX_ENTRIES", "ParseCache", "source_key"]

CACHE_DIR = ".cache"
#: Entries kept (most recently used first); a publish needs about two per list file.
MAX_ENTRIES = 512
#: Bytes kept: a million-line feed's entry is about 16 MB.
MAX_BYTES = 1 << 30
_SUFFIX = ".src"


def source_key(path: str, blob: str, zone: ZoneConfig) -> str:
    """The cache key of `path` with git blob id `blob` parsed for `zone`.

    Settings that parsing never reads (where the zone is written in zones.yaml, its globs,
    secondaries, transfer ACL and keys, guard rails, who may query) are left out, so changing
    them keeps the cache."""
    settings = dataclasses.replace(
        zone,
        location=Location("zones.yaml"),
        sources=(),
        secondaries=(),
        allow_transfer=(),
        transfer_keys=(),
        guards=Guards(),
        acl=(),
        keyed=False,
    )
    text = json.dumps([CODEC_VERSION, publisher.__version__, path, blob, repr(settings)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ParseCache:
    """The parse cache under one zones/ folder. Never raises: the worst is a miss and a note."""

    def __init__(self, zones_dir: Path, *, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.root = Path(zones_dir) / CACHE_DIR
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.notes: list[str] = []
        self.hits = 0
        self.misses = 0

    def _usable(self) -> bool:
        """A real folder (not a link someone put there), or none yet."""
        try:
            info = os.lstat(self.root)
        except FileNotFoundError:
            return True
        except OSError:
            return False
        if not stat.S_ISDIR(info.st_mode):
            self._note(f"{self.root} is not a folder; the parse cache is not used")
            return False
        return True

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def get(self, key: str, path: str) -> tuple[SourceData, dict[str, Any]] | None:
        """The parse of `path` stored under `key`, checked whole; None when missing or damaged."""
        if not self._usable():
            return None
        file = self.root / (key + _SUFFIX)
        try:
            fd = os.open(file, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            self.misses += 1
            return None
        except OSError as exc:
            self._note(f"parse cache entry {file.name} cannot be read ({exc.strerror}); the file is parsed again")
            self.misses += 1
            return None
        try:
            with os.fdopen(fd, "rb") as handle:
                data = handle.read()
            found = decode_source(data)
            if found[0].path != path:
                raise CodecError(f"it holds {found[0].path!r}, not {path!r}")
        except (OSError, CodecError) as exc:
            self._note(
                f"parse cache entry {file.name} is damaged ({exc}); ignored and removed, the file is parsed again"
            )
            with contextlib.suppress(OSError):
                file.unlink()
            self.misses += 1
            return None
        with contextlib.suppress(OSError):
            os.utime(file)  # most recently used: pruned last
        self.hits += 1
        return found

    def put(self, key: str, source: SourceData, meta: dict[str, Any] | None = None) -> None:
        """Store a parse (best effort: a read-only zones/ only means no cache)."""
        if not self._usable():
            return
        file = self.root / (key + _SUFFIX)
        tmp = self.root / f".tmp-{os.getpid()}-{key[:16]}"
        if not self.root.parent.is_dir():
            return  # no zones/ yet (a plan before any publish): a cache must not create it
        try:
            self.root.mkdir(exist_ok=True)
            with open(tmp, "wb") as handle:
                handle.write(encode_source(source, meta))
            os.replace(tmp, file)
        except OSError as exc:
            self._note(f"the parse cache {self.root} cannot be written ({exc.strerror}); the next publish parses again")
            with contextlib.suppress(OSError):
                tmp.unlink()

    def prune(self) -> None:
        """Remove the least recently used entries beyond the caps, and stale temporary files."""
        if not self._usable():
            return
        entries: list[tuple[float, int, Path]] = []
        try:
            for item in os.scandir(self.root):
                info = item.stat(follow_symlinks=False)
                if item.name.startswith(".tmp-"):
                    if info.st_mtime < time.time() - 3600:  # a writer killed mid-write; a live one is quick
                        with contextlib.suppress(OSError):
                            os.unlink(item.path)
                    continue
                if item.name.endswith(_SUFFIX) and stat.S_ISREG(info.st_mode):
                    entries.append((info.st_mtime, info.st_size, Path(item.path)))
        except OSError:
            return
        entries.sort(reverse=True)
        total = 0
        for k, (_, size, path) in enumerate(entries):
            total += size
            if k >= self.max_entries or total > self.max_bytes:
                with contextlib.suppress(OSError):
                    path.unlink()
