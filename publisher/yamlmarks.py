"""YAML loading that remembers where every key and value was written (load step).

zones.yaml and the curated list files are read here, once, into plain Python data
plus `Marks`: the 1-based line and column of every mapping key and every value,
keyed by their path (`("entries", 3, "ip")`). schema.py and sources.py turn those
paths back into `path:line:col` for the people who fix the files.

Scalars follow the YAML 1.2 core schema rather than PyYAML's YAML 1.1 default:
`no` stays a string, `2001:0:0:1` is not a base-60 integer and `2027-01-31`
stays the string the user wrote (sources.py parses dates with its own messages).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from publisher.errors import Location, Problem

PathKey = str | int
Path = tuple[PathKey, ...]

#: Nesting deeper than this is refused (it also stops recursive aliases).
MAX_DEPTH = 64


class _Resolver(yaml.resolver.BaseResolver):  # type: ignore[misc, unused-ignore]
    """Implicit tags of the YAML 1.2 core schema (no yes/no booleans, no sexagesimals, no dates)."""


_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_Resolver.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])
_Resolver.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])

if yaml.__with_libyaml__:
    from yaml._yaml import CParser as _Parser
else:  # pragma: no cover - libyaml is present on Debian and in wheels
    from yaml.composer import Composer
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser, Composer):  # type: ignore[no-redef, misc, unused-ignore]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)


class _Loader(_Parser, yaml.constructor.SafeConstructor, _Resolver):  # type: ignore[misc, valid-type, unused-ignore]
    def __init__(self, stream: str) -> None:
        _Parser.__init__(self, stream)
        yaml.constructor.SafeConstructor.__init__(self)
        _Resolver.__init__(self)


@dataclass(slots=True)
class Marks:
    """1-based (line, col) of keys and values by path, for one file."""

    path: str
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def location(self, where: Path, *, key: bool = False) -> Location:
        """The closest known place: the key (or value) itself, else its nearest parent."""
        table = self.keys if key else self.values
        pos = table.get(where)
        probe = where
        while pos is None and probe:
            probe = probe[:-1]
            pos = self.values.get(probe)
        if pos is None:
            return Location(self.path)
        return Location(self.path, pos[0], pos[1])


@dataclass(slots=True)
class YamlResult:
    """What one YAML file said. `data` is None when the file could not be read at all."""

    data: Any
    marks: Marks
    problems: list[Problem]


def format_path(where: Path) -> str:
    """('zones', 0, 'soa') -> 'zones[0].soa', for messages."""
    out = ""
    for part in where:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the top level"


def decode_text(path: str, data: bytes) -> tuple[str | None, Problem | None]:
    """UTF-8 text (a BOM is allowed), or the problem naming the first bad byte's place."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        start = exc.start
        line_start = data.rfind(b"\n", 0, start) + 1
        line = data.count(b"\n", 0, start) + 1
        return None, Problem(
            Location(path, line, start - line_start + 1),
            "not-utf8",
            f"the file is not UTF-8: byte 0x{data[start]:02x} cannot be decoded",
            "save the file as UTF-8 (iconv -f latin1 -t utf-8 is the usual fix)",
        )


def load_yaml(path: str, data: bytes) -> YamlResult:
    """Parse one YAML document, keeping marks. Never raises for bad content."""
    marks = Marks(path)
    text, problem = decode_text(path, data)
    if text is None:
        assert problem is not None
        return YamlResult(None, marks, [problem])
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        return YamlResult(None, marks, [_syntax_problem(path, exc)])
    except yaml.YAMLError as exc:
        return YamlResult(None, marks, [Problem(Location(path), "yaml-syntax", f"cannot parse YAML: {exc}")])
    finally:
        loader.dispose()
    if node is None:
        return YamlResult(None, marks, [])
    builder = _Builder(loader, marks)
    try:
        value = builder.build(node, ())
    except _TooDeep as exc:
        return YamlResult(None, marks, [exc.problem])
    except yaml.MarkedYAMLError as exc:  # a bad explicit tag, a bad merge key
        return YamlResult(None, marks, [_syntax_problem(path, exc)])
    return YamlResult(value, marks, builder.problems)


def _syntax_problem(path: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    where = Location(path, mark.line + 1, mark.column + 1) if mark else Location(path)
    what = exc.problem or "syntax error"
    if exc.context:
        what = f"{exc.context}, {what}"
    related: tuple[tuple[str, Location], ...] = ()
    ctx = exc.context_mark
    if ctx is not None and mark is not None and (ctx.line, ctx.column) != (mark.line, mark.column):
        related = (("started at", Location(path, ctx.line + 1, ctx.column + 1)),)
    fix = "check the indentation and quoting on this line and the one before it"
    if "quoted scalar" in what and related:
        fix = f"close the quote opened at line {related[0][1].line}"
    elif "\t" in what or "tab" in what:
        fix = "indent with spaces; YAML does not allow tabs for indentation"
    elif "expected a single document" in what:
        fix = "keep one document per file (remove the extra '---')"
    return Problem(where, "yaml-syntax", f"YAML syntax error: {what}", fix, related)


class _TooDeep(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class _Builder:
    """Turns composed nodes into dicts/lists/scalars while filling `Marks`."""

    def __init__(self, loader: _Loader, marks: Marks) -> None:
        self.loader = loader
        self.marks = marks
        self.problems: list[Problem] = []

    def _pos(self, node: Node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def build(self, node: Node, where: Path) -> Any:
        if len(where) > MAX_DEPTH:
            line, col = self._pos(node)
            raise _TooDeep(
                Problem(Location(self.marks.path, line, col), "yaml-syntax", "nesting is too deep (or an alias refers to itself)")
            )
        self.marks.values[where] = self._pos(node)
        if isinstance(node, MappingNode):
            return self._mapping(node, where)
        if isinstance(node, SequenceNode):
            return [self.build(item, (*where, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return self.loader.construct_object(node, deep=True)

    def _mapping(self, node: MappingNode, where: Path) -> dict[str, Any]:
        self.loader.flatten_mapping(node)  # resolves `<<` merge keys in place
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                line, col = self._pos(key_node)
                self.problems.append(
                    Problem(
                        Location(self.marks.path, line, col),
                        "bad-key",
                        "a mapping key must be a plain name, not a list or mapping",
                        "write `name: value`",
                    )
                )
                continue
            # The key as written: `1:` and `"1":` are the same key to a person.
            key = str(key_node.value)
            if key in out:
                line, col = self._pos(key_node)
                first = self.marks.keys[(*where, key)]
                self.problems.append(
                    Problem(
                        Location(self.marks.path, line, col),
                        "duplicate-key",
                        f"key '{key}' appears twice in this mapping; YAML would silently keep the last one",
                        "remove one of them",
                        related=(("first at", Location(self.marks.path, first[0], first[1])),),
                    )
                )
            self.marks.keys[(*where, key)] = self._pos(key_node)
            out[key] = self.build(value_node, (*where, key))
        return out
