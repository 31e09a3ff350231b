"""The access key file of keyed zones (`serve --access-keys FILE`): read, check, locate problems.

Inside the server: keys.load() -> `read_key_file(path)` -> `AccessKey`s, or every problem
found, each with its line and column (`path:line:col: message [code]` and a fix). The file
lives outside git like the TSIG key file and holds secrets, so it is refused unless only its
owner may read it (mode & 0o077 == 0) and that owner is the serving user or root. The YAML is
walked as composed nodes (never constructed): a key of digits stays text, and every value
keeps its place in the file. Problems never quote a key in full: `shown()` gives its first
4 characters. `publisher keys new` (cli) checks its arguments with the same functions.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from publisher import codes
from publisher.addresses import AddressError, parse_network, unmapped_network

#: The fields of one key entry, in the order `publisher keys new` writes them.
FIELDS = ("name", "key", "zones", "networks", "daily_quota", "expires")
KEY_RE = re.compile(r"[a-z0-9]{16,63}")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
#: A key file larger than this is a mistake (10,000 keys take about 1.5 MB).
MAX_BYTES = 64 << 20
#: Problems reported per load; past it the rest are counted.
MAX_PROBLEMS = 20
FORMAT = (
    "keys: [{name: acme-mail, key: <16-63 of a-z0-9>, zones: [...], networks: [...], daily_quota: N, expires: DATE}]"
)


@dataclass(frozen=True, slots=True)
class KeyProblem:
    """One thing wrong in the key file, at 1-based `line`/`col` (0: the whole file)."""

    line: int
    col: int
    message: str
    fix: str
    code: str

    def format(self, path: Path | str, *, one_line: bool = False) -> str:
        where = f"{path}:{self.line}:{self.col}" if self.line else str(path)
        sep = " (fix: " if one_line else "\n  fix: "
        return f"{where}: {self.message} [{self.code}]{sep}{self.fix}{')' if one_line else ''}"


@dataclass(frozen=True, slots=True)
class AccessKey:
    """One subscriber's key. `secret` is the key label, lower-case ASCII bytes."""

    name: str
    secret: bytes
    zones: frozenset[str] | None = None  # None: every keyed zone
    networks: tuple[tuple[int, int, int], ...] = ()  # (family, first, last); empty: any client
    daily_quota: int | None = None  # queries per UTC day; None: no quota
    expires: float | None = None  # seconds since the epoch at which it stops working
    line: int = 0
    col: int = 0
    zone_cols: tuple[tuple[str, int, int], ...] = ()  # (zone, line, col) as written, for warnings
    #: Has the key an expiry, a zone list or client networks to check per query? (set from those)
    limited: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "limited", self.expires is not None or self.zones is not None or bool(self.networks))

    @property
    def shown(self) -> str:
        return f"{self.name} ({shown(self.secret.decode())})"


def shown(key: str) -> str:
    """What logs and errors may show of a key: its first 4 characters (fewer of a short one)."""
    return f"{key[: min(4, len(key) // 4)]}..."


class BadValue(ValueError):
    """Raised by the value checks below; the caller adds the location."""

    def __init__(self, message: str, fix: str, code: str = codes.BAD_VALUE) -> None:
        super().__init__(message)
        self.message, self.fix, self.code = message, fix, code


def check_name(text: str) -> str:
    if not NAME_RE.fullmatch(text):
        raise BadValue(
            f"name {text!r} is not 1 to 63 letters, digits, '.', '_' and '-' (starting with a letter or digit)",
            "name the subscriber plainly, e.g. acme-mail: the name is what logs and metrics show",
            codes.BAD_NAME,
        )
    return text


def check_key(text: str) -> bytes:
    low = text.lower()
    if not KEY_RE.fullmatch(low):
        what = f"{len(text)} characters" if not 16 <= len(text) <= 63 else "a character other than a-z and 0-9"
        raise BadValue(
            f"the key {shown(text)} has {what}; a key is 16 to 63 characters of a-z and 0-9",
            "make a new key with `publisher keys new NAME`",
        )
    return low.encode("ascii")


def check_zone(text: str) -> str:
    zone = text.strip().lower().rstrip(".")
    if not zone or " " in zone or ".." in zone:
        raise BadValue(f"{text!r} is not a zone name", "write the zone's name as in zones.yaml, e.g. bl.example.test")
    return zone


def check_network(text: str) -> tuple[int, int, int]:
    try:
        net = parse_network(text)
    except AddressError as exc:
        raise BadValue(exc.message, exc.fix or "write ADDRESS or ADDRESS/LENGTH", exc.code) from exc
    net = unmapped_network(net)  # the gate passes mapped clients as IPv4
    return net.family, net.start, net.end


def check_quota(text: str) -> int:
    raw = text.strip().replace("_", "")
    if raw.startswith("-") and raw[1:].isdigit():
        raise BadValue(f"daily_quota {text} is negative", "give the queries allowed per UTC day, 1 or more")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 15:
        raise BadValue(
            f"daily_quota {text!r} is not a whole number", "give the queries allowed per UTC day, e.g. 100000"
        )
    if int(raw) == 0:
        raise BadValue(
            "daily_quota 0 lets no query through", "give 1 or more; to stop a key, remove it or let it expire"
        )
    return int(raw)


def check_expires(text: str) -> float:
    """A date (valid to the end of that UTC day) or an ISO 8601 date-time (naive: UTC)."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            day = dt.date.fromisoformat(raw)
            return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC).timestamp()
        when = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise BadValue(
            f"expires {text!r} is not a date",
            "write YYYY-MM-DD (valid through that UTC day) or YYYY-MM-DDTHH:MM:SSZ",
            codes.BAD_DATE,
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()


def _open(path: Path, uid: int) -> tuple[str, list[KeyProblem]]:
    """The file's text if it is private to `uid` (or root); else the problems."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        return "", [
            KeyProblem(0, 0, f"cannot read the access key file: {exc.strerror}", "check the path", codes.READ_ERROR)
        ]
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)  # of what is read: no window between the check and the read
        if not stat.S_ISREG(st.st_mode):
            return "", [KeyProblem(0, 0, "not a regular file", "give the key file itself", codes.READ_ERROR)]
        problems = []
        if st.st_mode & 0o077:
            problems.append(KeyProblem(
                0, 0,
                f"the access key file is readable or writable by its group or others "
                f"(mode {stat.S_IMODE(st.st_mode):04o})",
                f"chmod 600 {path}", codes.READ_ERROR,
            ))  # fmt: skip
        if st.st_uid not in (uid, 0):
            problems.append(KeyProblem(
                0, 0, f"the access key file belongs to uid {st.st_uid}, not to the serving user (uid {uid}) or root",
                f"chown {uid} {path}", codes.READ_ERROR,
            ))  # fmt: skip
        if st.st_size > MAX_BYTES:
            problems.append(KeyProblem(0, 0, f"larger than {MAX_BYTES >> 20} MiB", "split it", codes.READ_ERROR))
        if problems:
            return "", problems  # not even parsed: its content is not trusted
        data = fh.read(MAX_BYTES + 1)
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        return "", [KeyProblem(0, 0, f"not UTF-8 (byte {exc.start})", "save it as UTF-8", codes.NOT_UTF8)]


def _at(node: Any) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _scalars(node: Any, what: str, out: list[KeyProblem]) -> list[Any]:
    """The scalar nodes of a list (or one scalar taken as a list of one)."""
    import yaml

    if isinstance(node, yaml.ScalarNode):
        return [node]
    if isinstance(node, yaml.SequenceNode):
        items = []
        for item in node.value:
            if isinstance(item, yaml.ScalarNode):
                items.append(item)
            else:
                out.append(
                    KeyProblem(
                        *_at(item),
                        f"an item of {what} is not a single value",
                        f"write {what}: [A, B]",
                        codes.WRONG_TYPE,
                    )
                )
        return items
    out.append(KeyProblem(*_at(node), f"{what} is not a list", f"write {what}: [A, B]", codes.WRONG_TYPE))
    return []


def _entry(node: Any, out: list[KeyProblem]) -> AccessKey | None:
    """The entry at `node` (None without a usable name and key); its problems go to `out`."""
    import yaml

    line, col = _at(node)
    if not isinstance(node, yaml.MappingNode):
        out.append(
            KeyProblem(line, col, "a key entry is not a mapping", f"write each entry as {FORMAT}", codes.NOT_A_MAPPING)
        )
        return None
    values: dict[str, Any] = {}
    for knode, vnode in node.value:
        field = str(knode.value) if isinstance(knode, yaml.ScalarNode) else "?"
        if field not in FIELDS:
            near = difflib.get_close_matches(field, FIELDS, n=1)
            fix = f"did you mean `{near[0]}`?" if near else f"the fields are {', '.join(FIELDS)}"
            out.append(KeyProblem(*_at(knode), f"unknown field {field!r}", fix, codes.UNKNOWN_KEY))
        elif field in values:
            out.append(
                KeyProblem(*_at(knode), f"{field} is given twice in this entry", "keep one", codes.DUPLICATE_KEY)
            )
        else:
            values[field] = vnode
    for field in ("name", "key"):
        if field not in values:
            out.append(
                KeyProblem(
                    line, col, f"this entry has no `{field}`", f"write each entry as {FORMAT}", codes.MISSING_KEY
                )
            )
    fields: dict[str, Any] = {"line": line, "col": col}
    zone_cols: list[tuple[str, int, int]] = []
    for field, vnode in values.items():
        try:
            if field in ("zones", "networks"):
                items: list[Any] = []
                for item in _scalars(vnode, field, out):
                    try:
                        if field == "zones":
                            zone = check_zone(item.value)
                            items.append(zone)
                            zone_cols.append((zone, *_at(item)))
                        else:
                            items.append(check_network(item.value))
                    except BadValue as exc:
                        out.append(KeyProblem(*_at(item), exc.message, exc.fix, exc.code))
                fields[field] = frozenset(items) if field == "zones" else tuple(items)
                continue
            if not isinstance(vnode, yaml.ScalarNode):
                raise BadValue(f"{field} is not a single value", f"write {field}: VALUE", codes.WRONG_TYPE)
            text = str(vnode.value)
            if field == "name":
                fields["name"] = check_name(text)
            elif field == "key":
                fields["secret"] = check_key(text)
            elif field == "daily_quota":
                fields["daily_quota"] = check_quota(text)
            else:
                fields["expires"] = check_expires(text)
        except BadValue as exc:
            out.append(KeyProblem(*_at(vnode), exc.message, exc.fix, exc.code))
    if "name" not in fields:
        return None
    # With a problem elsewhere in it (b"": a bad key), the entry still takes part in the duplicate checks.
    fields.setdefault("secret", b"")
    return AccessKey(**fields, zone_cols=tuple(zone_cols))


def parse(text: str) -> tuple[list[AccessKey], list[KeyProblem]]:
    """The keys of a key file's text, and every problem (no keys are usable when there is one)."""
    import yaml

    out: list[KeyProblem] = []
    try:
        # libyaml's parser when PyYAML has it: 10,000 keys load in a tenth of the time (marks alike).
        doc = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        what = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        return [], [KeyProblem(line, col, f"not valid YAML: {what}", f"the file holds {FORMAT}", codes.YAML_SYNTAX)]
    except yaml.YAMLError as exc:
        return [], [KeyProblem(0, 0, f"not valid YAML: {exc}", f"the file holds {FORMAT}", codes.YAML_SYNTAX)]
    if doc is None or not isinstance(doc, yaml.MappingNode):
        line, col = _at(doc) if doc is not None else (0, 0)
        return [], [
            KeyProblem(
                line,
                col,
                "the file is not a mapping with `keys:`",
                f"start the file with a line `keys:` and the entries under it: {FORMAT}",
                codes.NOT_A_MAPPING,
            )
        ]
    items: Any = None
    for knode, vnode in doc.value:
        field = str(knode.value) if isinstance(knode, yaml.ScalarNode) else "?"
        if field != "keys":
            near = difflib.get_close_matches(field, ["keys"], n=1)
            fix = "did you mean `keys`?" if near else "the file has one field, `keys:`, a list of key entries"
            out.append(KeyProblem(*_at(knode), f"unknown field {field!r}", fix, codes.UNKNOWN_KEY))
        elif items is not None:
            out.append(KeyProblem(*_at(knode), "keys is given twice", "keep one `keys:` list", codes.DUPLICATE_KEY))
        else:
            items = vnode
    if items is None:
        if not out:
            out.append(KeyProblem(*_at(doc), "no `keys:`", f"the file holds {FORMAT}", codes.MISSING_KEY))
        return [], out
    if isinstance(items, yaml.ScalarNode) and items.tag.endswith(":null"):
        return [], out  # `keys:` with nothing: no key may query (every keyed query answers key-unknown)
    if not isinstance(items, yaml.SequenceNode):
        return [], [*out, KeyProblem(*_at(items), "keys is not a list", f"write {FORMAT}", codes.WRONG_TYPE)]
    keys = [key for node in items.value if (key := _entry(node, out)) is not None]
    _duplicates(keys, out)
    return ([] if out else keys), out


def _duplicates(keys: list[AccessKey], out: list[KeyProblem]) -> None:
    names: dict[str, AccessKey] = {}
    secrets: dict[bytes, AccessKey] = {}
    for key in keys:
        if (first := names.get(key.name)) is not None:
            out.append(KeyProblem(
                key.line, key.col, f"the name {key.name!r} is given twice (lines {first.line} and {key.line})",
                "give each subscriber a name of its own", codes.DUPLICATE,
            ))  # fmt: skip
        names.setdefault(key.name, key)
        if key.secret and (same := secrets.get(key.secret)) is not None:
            out.append(KeyProblem(
                key.line, key.col, f"keys {same.name!r} (line {same.line}) and {key.name!r} have the same key",
                f"give {key.name!r} a key of its own: `publisher keys new {key.name}`", codes.DUPLICATE,
            ))  # fmt: skip
        secrets.setdefault(key.secret, key)
    out.sort(key=lambda p: (p.line, p.col))


def read_key_file(path: Path, uid: int | None = None) -> tuple[list[AccessKey], list[KeyProblem]]:
    """The keys of `path` and every problem; keys are only usable when there is no problem."""
    text, problems = _open(path, os.geteuid() if uid is None else uid)
    if problems:
        return [], problems
    return parse(text)
