"""The table of an email zone: hash names -> answers, a few bytes per entry, O(log n) lookups.

An email zone (`kind: email`) lists addresses as hash labels, `<label>[.<suffix>]` below
its apex (publisher/emails.py). A million of them as dict keys would cost ~120 MB of
strings in the server; `HashTable` keeps the digests themselves, sorted: the first 8 bytes
of each as a big-endian integer in an `array('Q')` (the C `bisect` searches it), the other
digest bytes in one `bytes`, and the answer index of each in an `array('I')`. A sha1 entry
costs 24 bytes. The RFC 5782 test point (`test[.<suffix>]`) lives in a tiny dict beside.

It is a `Mapping[str, int]` over names relative to the zone, as `CompiledZone.dom_exact`
is for domain zones, so render, AXFR and lookups treat both alike. Its order (iteration,
render, AXFR) is: the test point, then the hashes by digest (for md5 and sha1 the same
as by label). Holes never enter it: a name not in it is not listed. Pure, immutable.
"""

from __future__ import annotations

import sys
from array import array
from binascii import Error as BinasciiError
from binascii import unhexlify
from bisect import bisect_left
from collections.abc import ItemsView, Iterable, Iterator, Mapping, Sequence, ValuesView
from typing import TypeVar, overload

from publisher.emails import ALGORITHMS, LABEL_LENGTH, digest_label, label_digest

_T = TypeVar("_T")
#: Bytes of a digest kept in `heads` (the rest go to `tails`).
HEAD = 8


def split_digests(blob: bytes, size: int) -> tuple[array[int], bytes]:
    """Sorted digests of `size` bytes laid end to end -> (heads, tails) as HashTable keeps them."""
    n = len(blob) // size
    heads: array[int] = array("Q")
    heads.frombytes(b"".join([blob[i : i + HEAD] for i in range(0, n * size, size)]))
    if sys.byteorder == "little":
        heads.byteswap()
    tails = b"".join([blob[i + HEAD : i + size] for i in range(0, n * size, size)])
    return heads, tails


class HashTable(Mapping[str, int]):
    """Hash names of one email zone -> answer indexes (module docstring)."""

    __slots__ = (
        "algorithm",
        "suffix",
        "heads",
        "tails",
        "indexes",
        "extra",
        "_tail",
        "_tail_len",
        "_label_len",
        "_hex",
        "_size",
    )

    def __init__(
        self,
        algorithm: str,
        suffix: str,
        heads: array[int],
        tails: bytes,
        indexes: array[int],
        extra: Mapping[str, int] | None = None,
    ) -> None:
        size = ALGORITHMS[algorithm][0]
        if len(heads) != len(indexes) or len(tails) != len(heads) * (size - HEAD):
            raise ValueError(
                f"hash table of {len(heads)} heads, {len(indexes)} values and {len(tails)} tail bytes"
                f" does not add up for {algorithm}"
            )
        self.algorithm = algorithm
        self.suffix = suffix
        self.heads = heads
        self.tails = tails
        self.indexes = indexes
        self.extra: dict[str, int] = dict(sorted((extra or {}).items()))
        self._tail = size - HEAD
        self._size = size
        self._hex = ALGORITHMS[algorithm][1] == "hex"
        self._label_len = LABEL_LENGTH[algorithm]
        #: What follows the label in a name: "._email", or "".
        self._tail_len = len(suffix) + 1 if suffix else 0

    @classmethod
    def build(
        cls,
        algorithm: str,
        suffix: str,
        digests: Iterable[tuple[bytes, int]],
        extra: Mapping[str, int] | None = None,
    ) -> HashTable:
        """From (digest, answer index) pairs in any order (each digest once)."""
        rows = sorted(digests)
        size = ALGORITHMS[algorithm][0]
        heads, tails = split_digests(b"".join(d for d, _ in rows), size)
        return cls(algorithm, suffix, heads, tails, array("I", [v for _, v in rows]), extra)

    # --- lookups ----------------------------------------------------------------------

    def label_index(self, label: str) -> int:
        """The answer index of a lower-case hash label, or -1 (not listed, or not a label)."""
        digest = label_digest(label, self.algorithm)
        if digest is None:
            return -1
        return self.digest_index(digest)

    def wire_index(self, label: bytes) -> int:
        """label_index for a label as a query carries it (any case, letters and digits only:
        the server's matcher checked that): hex decoded in one C call, case and all."""
        if not self._hex:
            return self.label_index(label.decode("ascii").lower())
        # The head straight from the label's first 16 hex digits: most queries are decided by the
        # bisect alone. int() also reads a `0x` prefix: only a head that matches gets the whole
        # label decoded (unhexlify refuses any non-hex character) and its tail compared.
        try:
            head = int(label[: 2 * HEAD], 16)
        except ValueError:
            return -1
        heads = self.heads
        i = bisect_left(heads, head)
        if i == len(heads) or heads[i] != head:
            return -1
        try:
            digest = unhexlify(label)
        except BinasciiError:
            return -1
        t = self._tail
        if len(digest) != self._size:
            return -1
        if self.tails[i * t : i * t + t] == digest[HEAD:]:  # the common case: one digest per head
            return self.indexes[i]
        return self._tail_index(i + 1, head, digest)

    def digest_index(self, digest: bytes) -> int:
        head = int.from_bytes(digest[:HEAD], "big")
        return self._tail_index(bisect_left(self.heads, head), head, digest)

    def _tail_index(self, i: int, head: int, digest: bytes) -> int:
        """The answer index of `digest` from position `i` of the heads on (its head's first), or -1."""
        heads = self.heads
        n, t = len(heads), self._tail
        rest = digest[HEAD:]
        tails = self.tails
        while i < n and heads[i] == head:
            if tails[i * t : i * t + t] == rest:
                return int(self.indexes[i])
            i += 1
        return -1

    def label_of(self, name: str) -> str | None:
        """The hash label of a name relative to the zone (`<label>[.<suffix>]`), or None."""
        if self._tail_len:
            if len(name) != self._label_len + self._tail_len or not name.endswith(self.suffix):
                return None
            if name[self._label_len] != ".":
                return None
            return name[: self._label_len]
        return name

    def __getitem__(self, name: str) -> int:
        idx = self.find(name)
        if idx < 0:
            raise KeyError(name)
        return idx

    @overload
    def get(self, name: str, /) -> int | None: ...
    @overload
    def get(self, name: str, default: int, /) -> int: ...
    @overload
    def get(self, name: str, default: _T, /) -> int | _T: ...

    def get(self, name: str, default: object = None, /) -> object:
        idx = self.find(name)
        return idx if idx >= 0 else default

    def find(self, name: str) -> int:
        """The answer index of a name relative to the zone, or -1 (not listed)."""
        got = self.extra.get(name)
        if got is not None:
            return got
        label = self.label_of(name)
        return self.label_index(label) if label is not None else -1

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.find(name) >= 0

    # --- iteration: the test points, then the hashes by digest ------------------------

    def __len__(self) -> int:
        return len(self.heads) + len(self.extra)

    def digests(self) -> Iterator[bytes]:
        """Every listed digest, in table order."""
        t, tails = self._tail, self.tails
        for i, head in enumerate(self.heads):
            yield head.to_bytes(HEAD, "big") + tails[i * t : i * t + t]

    def __iter__(self) -> Iterator[str]:
        yield from self.extra
        algorithm = self.algorithm
        tail = "." + self.suffix if self.suffix else ""
        for digest in self.digests():
            yield digest_label(digest, algorithm) + tail

    def items(self) -> ItemsView[str, int]:
        return _Items(self)

    def values(self) -> ValuesView[int]:
        return _Values(self)

    def pairs(self) -> Iterator[tuple[str, int]]:
        """(name, answer index) in table order, without a lookup per name."""
        yield from self.extra.items()
        yield from zip(self._hash_names(), self.indexes)

    def _hash_names(self) -> Iterator[str]:
        tail = "." + self.suffix if self.suffix else ""
        if ALGORITHMS[self.algorithm][1] == "hex":
            # hex of every head and tail at once: one C call per million rather than per name
            width = 2 * HEAD
            t = self._tail
            for i, head in enumerate(self.heads):
                yield f"{head:0{width}x}" + self.tails[i * t : i * t + t].hex() + tail
            return
        for digest in self.digests():
            yield digest_label(digest, self.algorithm) + tail

    def __eq__(self, other: object) -> bool:
        if isinstance(other, HashTable):
            return (
                self.algorithm == other.algorithm
                and self.suffix == other.suffix
                and self.heads == other.heads
                and self.tails == other.tails
                and self.indexes == other.indexes
                and self.extra == other.extra
            )
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def remap(self, new: Sequence[int], extra: Mapping[str, int] | None = None) -> HashTable:
        """The same hashes with every answer index `i` replaced by `new[i]`; `extra` (the test
        point, already in the new numbering) replaces the test names when given."""
        identity = all(new[i] == i for i in range(len(new)))
        values = self.indexes if identity else array("I", map(new.__getitem__, self.indexes))
        if extra is None:
            extra = {n: new[v] for n, v in self.extra.items()}
        return HashTable(self.algorithm, self.suffix, self.heads, self.tails, values, extra)

    @property
    def nbytes(self) -> int:
        """Bytes of the table's arrays (what a million entries cost the server)."""
        return len(self.heads) * 8 + len(self.tails) + len(self.indexes) * 4


class _Items(ItemsView[str, int]):
    """items() in table order without a lookup per name."""

    def __init__(self, table: HashTable) -> None:
        super().__init__(table)
        self._table = table

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return self._table.pairs()


class _Values(ValuesView[int]):
    """values() in table order, straight from the arrays."""

    def __init__(self, table: HashTable) -> None:
        super().__init__(table)
        self._table = table

    def __iter__(self) -> Iterator[int]:
        yield from self._table.extra.values()
        yield from self._table.indexes
