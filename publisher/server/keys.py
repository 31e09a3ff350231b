"""Access keys of keyed zones: the check per query, per-key counters and the daily quota.

Inside the server: `serve --access-keys FILE` -> app.Server calls `load(path, usage)`
(keys_file.py reads and checks the file) at start and on every reload -> an `AccessKeys`
set on the ZoneSet (`zoneset.access_keys`) -> the gate calls `check()` for each query of a
keyed zone below the apex. The counters (`KeyUsage`) belong to the Server, not to a key
set, so a reload keeps the counts and the quota day of every key that stays.

Constant time: a key is looked up through a dict keyed by the label. Python hashes bytes
with SipHash under a per-process random seed, so which bucket a guess lands in says
nothing an attacker can steer, and an equality compare runs only on a full hash match
(in practice: the right key). The entry found is then confirmed with
`hmac.compare_digest`. No code path compares a guess with a secret character by
character, so the answer time does not tell how many leading characters were right.

Logs show a key's name and at most its first 4 characters (keys_file.shown), never more.

Under `serve --workers N` each worker counts its own queries; the parent collects every
worker's figures each second and sends each worker the others' answered counts of today
(`set_others`), so a key is refused once its own count plus the others' reaches its quota:
at most about a second of queries late.
"""

from __future__ import annotations

import enum
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from hmac import compare_digest
from pathlib import Path
from typing import Final

from publisher.errorcodes import KEY_REFUSED, KEY_UNKNOWN, OVER_QUOTA, ErrorCode
from publisher.errors import ServerError
from publisher.server.keys_file import MAX_PROBLEMS, AccessKey, KeyProblem, read_key_file

#: The counts kept per key and day, in this order: answered, refused (three reasons), over quota.
OUTCOMES = ("answered", "expired", "zone", "network", "over_quota")
ANSWERED, EXPIRED, ZONE, NETWORK, OVER = range(len(OUTCOMES))
DAY_SECONDS = 86400


_N = len(OUTCOMES)
_ZEROS = (0,) * _N


class KeyFileError(ServerError):
    """The access key file is unusable: at start nothing is served (exit 2)."""

    exit_code = 2

    def __init__(self, path: Path, problems: list[KeyProblem]) -> None:
        self.path = path
        self.problems = problems
        lines = [p.format(path) for p in problems[:MAX_PROBLEMS]]
        if len(problems) > MAX_PROBLEMS:
            lines.append(f"... and {len(problems) - MAX_PROBLEMS} more problems")
        super().__init__(f"the access key file {path} is refused:\n" + "\n".join(lines))

    def log_lines(self) -> list[str]:
        """One line per problem, at most MAX_PROBLEMS and a count of the rest."""
        lines = [p.format(self.path, one_line=True) for p in self.problems[:MAX_PROBLEMS]]
        if len(self.problems) > MAX_PROBLEMS:
            lines.append(f"{self.path}: ... and {len(self.problems) - MAX_PROBLEMS} more problems")
        return lines


class NeedsCheck(enum.Enum):
    """`AccessKeys.quick`'s "this key has limits: ask `check` with the zone and the client"."""

    NEEDS_CHECK = "needs-check"


NEEDS_CHECK: Final = NeedsCheck.NEEDS_CHECK


class KeyUsage:
    """One process's per-key counters: since start (metrics) and of the current UTC day (quota, SIGUSR1).

    Owned by the Server and kept across reloads. Each key name gets a slot on its first
    load: `today[slot + outcome]` in a flat array (OUTCOMES order), so a query adds 1 to one
    machine word; the day roll adds today's counts into `before` (the counts since start are
    the sum of both). Counting takes no lock: the
    serving threads share the GIL, and the one increment that could be lost when two threads
    count the same key at the same instant moves a daily quota by one query. The day roll,
    the snapshots and the parent's shares go through `_lock`. The slot of a key removed from
    the file is dropped from `slots` (its series leave the metrics) and not reused.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self.day = int(clock() // DAY_SECONDS)
        self.day_end = (self.day + 1) * DAY_SECONDS
        self.slots: dict[str, int] = {}  # name -> offset of its counters in today/before
        self.today: array[int] = array("q")
        self.before: array[int] = array("q")  # the counts of the days before today, since start
        self.unknown_today = 0
        self.unknown_total = 0
        #: Answered today by the other workers of `serve --workers N` (sent by the parent), for `others_day`.
        self.others: dict[str, int] = {}
        self.others_day = -1

    def roll(self, now: float) -> None:
        """Start a new UTC day when `now` is past the current one: today's counts go to 0."""
        with self._lock:
            day = int(now // DAY_SECONDS)
            if day != self.day:
                self.day, self.day_end, self.unknown_today = day, (day + 1) * DAY_SECONDS, 0
                self.before = array("q", map(sum, zip(self.before, self.today)))
                self.today = array("q", bytes(8 * len(self.today)))

    def slot(self, name: str) -> int:
        """The offset of `name`'s counters, made on first use."""
        got = self.slots.get(name)
        if got is None:
            with self._lock:
                got = self.slots[name] = len(self.today)
                self.today.extend(_ZEROS)
                self.before.extend(_ZEROS)
        return got

    def tick(self) -> None:
        """Start the new UTC day if it has come (the server's main loop calls this twice a second)."""
        now = self.clock()
        if now >= self.day_end:
            self.roll(now)

    def others_of(self, name: str) -> int:
        """What the other workers answered today for `name`."""
        return self.others.get(name, 0) if self.others_day == self.day else 0

    def set_others(self, day: int, answered: Mapping[str, int]) -> None:
        """What the other workers answered on UTC `day` per key (workers.py sends it each second)."""
        with self._lock:
            self.others, self.others_day = dict(answered), day

    def keep_only(self, names: Iterable[str]) -> None:
        """Forget the counters of keys no longer in the file (their series leave the metrics)."""
        keep = set(names)
        with self._lock:
            self.slots = {n: at for n, at in self.slots.items() if n in keep}

    def snapshot(self) -> tuple[int, dict[str, list[int]], dict[str, list[int]], int, int]:
        """(day, today, since start, unknown today, unknown since start): copies, keys with counts only."""
        now = self.clock()
        if now >= self.day_end:
            self.roll(now)
        with self._lock:
            today = self.today.tolist()
            total = [a + b for a, b in zip(self.before, today)]
            day_rows = {n: today[at : at + _N] for n, at in self.slots.items()}
            all_rows = {n: total[at : at + _N] for n, at in self.slots.items()}
            return (
                self.day,
                {n: r for n, r in day_rows.items() if any(r)},
                {n: r for n, r in all_rows.items() if any(r)},
                self.unknown_today,
                self.unknown_total,
            )


class AccessKeys:
    """The keys of one read of the key file, with the process's counters."""

    __slots__ = ("by_label", "usage", "source")

    def __init__(self, keys: Iterable[AccessKey], usage: KeyUsage | None = None, source: str = "") -> None:
        self.usage = usage if usage is not None else KeyUsage()
        #: label -> (label, limited?, daily quota, counters' slot, key): what a check reads, in one tuple.
        self.by_label: dict[bytes, tuple[bytes, bool, int | None, int, AccessKey]] = {
            key.secret: (key.secret, key.limited, key.daily_quota, self.usage.slot(key.name), key) for key in keys
        }
        self.source = source

    def __len__(self) -> int:
        return len(self.by_label)

    @property
    def keys(self) -> list[AccessKey]:
        return [entry[4] for entry in self.by_label.values()]

    @property
    def names(self) -> list[str]:
        return [entry[4].name for entry in self.by_label.values()]

    def quick(self, label: bytes) -> ErrorCode | None | NeedsCheck:
        """`check` (of a label in any letter case) for a key with no expiry, zones or networks,
        which needs neither the zone nor the client (most keys: the hot path asks this first);
        `NEEDS_CHECK`, nothing counted, for any other.

        It reads no clock: the day's counts are reset by `KeyUsage.tick`, which the server's main
        loop calls twice a second (and `check`, `snapshot`), so a quota starts afresh within half a
        second of midnight UTC."""
        got = self.by_label.get(label)  # SipHash, per-process seed: see the module docstring
        if got is None and (low := label.lower()) != label:  # 0x20 letter case from the resolver
            label = low
            got = self.by_label.get(label)
        usage = self.usage
        if got is None or not compare_digest(got[0], label):
            usage.unknown_today += 1
            usage.unknown_total += 1
            return KEY_UNKNOWN
        if got[1]:
            return NEEDS_CHECK
        at, quota, today = got[3], got[2], usage.today
        if quota is not None and today[at] + (usage.others_of(got[4].name) if usage.others else 0) >= quota:
            today[at + OVER] += 1
            return OVER_QUOTA
        today[at] += 1
        return None

    def check(self, label: bytes, zone: str, family: int, addr: int) -> ErrorCode | None:
        """None: `label` (the lower-cased key label of the query) is a key that may query
        `zone` (the zone's name) from client (family 4 or 6, address as int; IPv4-mapped
        already turned into 4) now, and the query has been counted against it. Else the
        errorcodes.ErrorCode to answer: KEY_UNKNOWN, KEY_REFUSED (expired / zone not covered /
        client outside its networks) or OVER_QUOTA."""
        got = self.by_label.get(label)  # SipHash, per-process seed: see the module docstring
        if got is None or not compare_digest(got[0], label):
            self.usage.unknown_today += 1
            self.usage.unknown_total += 1
            return KEY_UNKNOWN
        _, limited, quota, at, key = got
        usage = self.usage
        now = usage.clock()
        if now >= usage.day_end:
            usage.roll(now)
        outcome = ANSWERED
        if limited:
            if key.expires is not None and now >= key.expires:
                outcome = EXPIRED
            elif key.zones is not None and zone not in key.zones:
                outcome = ZONE
            elif key.networks and not any(f == family and lo <= addr <= hi for f, lo, hi in key.networks):
                outcome = NETWORK
        today = usage.today
        if outcome == ANSWERED and quota is not None:
            if today[at] + (usage.others_of(key.name) if usage.others else 0) >= quota:
                outcome = OVER
        today[at + outcome] += 1
        return None if outcome == ANSWERED else OVER_QUOTA if outcome == OVER else KEY_REFUSED


Today = tuple[int, Mapping[str, list[int]]]  # (UTC day, name -> count per OUTCOMES) of one process


@dataclass(frozen=True, slots=True)
class Shares:
    """For the parent of `serve --workers N`: what each worker's siblings answered on `day` per key."""

    day: int
    total: dict[str, int]  # every worker, dead ones included
    own: dict[int, Mapping[str, list[int]]]  # slot -> its own counts of `day`

    @classmethod
    def of(cls, reports: Mapping[int, Today], dead: Today) -> Shares:
        """From each live worker's last report (slot -> today) and the dead workers' counts."""
        day = max([dead[0], *(d for d, _ in reports.values())])
        total: dict[str, int] = {}
        for d, today in [dead, *reports.values()]:
            if d == day:
                for name, row in today.items():
                    total[name] = total.get(name, 0) + row[ANSWERED]
        return cls(day, total, {slot: today for slot, (d, today) in reports.items() if d == day})

    def others(self, slot: int) -> dict[str, int]:
        """Answered today by every worker but `slot`, per key (keys with none left out)."""
        mine = self.own.get(slot, {})
        out = {}
        for name, n in self.total.items():
            rest = n - (mine[name][ANSWERED] if name in mine else 0)
            if rest > 0:
                out[name] = rest
        return out


def load(path: Path, usage: KeyUsage | None = None, *, uid: int | None = None) -> AccessKeys:
    """The keys of `path` counted in `usage`; raises KeyFileError with every problem found."""
    keys, problems = read_key_file(path, uid)
    if problems:
        raise KeyFileError(path, problems)
    return AccessKeys(keys, usage, str(path))


def unknown_zones(keys: AccessKeys, served: Mapping[str, bool]) -> list[str]:
    """Warnings for `zones:` naming no served zone, or a served zone without `keys: required`
    (`served`: name -> keyed), one per zone.

    Only warnings: a publish may drop a zone (or its `keys: required`) while keys still name it;
    such a key answers key-refused there (a zone it does not cover) until the zone is back.
    """
    seen: dict[str, str] = {}
    for key in keys.keys:
        for zone, line, col in key.zone_cols:
            if zone in seen or served.get(zone):
                continue
            why = "which is not served" if zone not in served else "which is served without `keys: required`"
            seen[zone] = f"{keys.source}:{line}:{col}: key {key.name!r} names zone {zone}, {why}"
    lines = list(seen.values())
    if len(lines) > MAX_PROBLEMS:
        lines = [*lines[:MAX_PROBLEMS], f"{keys.source}: ... and {len(lines) - MAX_PROBLEMS} more unknown zones"]
    return lines
