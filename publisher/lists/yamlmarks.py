"""YAML loading that remembers where every key and value was written.

zones.yaml and the curated list files are read here, once, into plain Python data
plus `Marks`: the 1-based line and column of every mapping key and every value,
keyed by their path (`("entries", 3, "ip")`). schema.py and curated.py turn those
paths back into `path:line:col` for the people who fix the files.

Scalars follow the YAML 1.2 core schema rather than PyYAML's YAML 1.1 default:
`no` stays a string, `2001:0:0:1` is not a base-60 integer and `2027-01-31`
stays the string the user wrote (curated.py parses dates with its own messages).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from publisher import codes
from publisher.errors import Location, Problem

PathKey = str | int
Path = tuple[PathKey, ...]

#: Nesting deeper than this is refused (it also stops recursive aliases).
MAX_DEPTH = 64
#: Values that aliases (`*name`) and merge keys (`<<`) may add beyond one per character of the
#: file. Without aliases a file cannot hold more values than characters, so this only stops
#: alias bombs ("billion laughs"), which are refused before they are expanded.
ALIAS_ALLOWANCE = 100_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


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
    head = data[:64]
    zeros = sorted((head[0::2].count(0), head[1::2].count(0)))
    half = len(head) // 2
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (
        len(head) >= 8 and zeros[1] >= half * 3 // 4 and zeros[0] < half // 4
    ):
        # UTF-16: a byte order mark, or (ASCII text without one) every other byte zero
        return None, Problem(
            Location(path, 1, 1),
            codes.NOT_UTF8,
            "the file is UTF-16 (or UTF-32), not UTF-8",
            "save the file as UTF-8 (iconv -f utf-16 -t utf-8, or 'UTF-8' in the editor's save dialog)",
        )
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        start = exc.start
        line_start = data.rfind(b"\n", 0, start) + 1
        line = data.count(b"\n", 0, start) + 1
        return None, Problem(
            Location(path, line, start - line_start + 1),
            codes.NOT_UTF8,
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
        return YamlResult(None, marks, [_syntax_problem(path, exc, text)])
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, other controls)
        return YamlResult(None, marks, [_reader_problem(path, exc, text)])
    except yaml.YAMLError as exc:
        return YamlResult(None, marks, [Problem(Location(path), codes.YAML_SYNTAX, f"cannot parse YAML: {exc}")])
    finally:
        loader.dispose()
    if node is None:
        return YamlResult(None, marks, [])
    builder = _Builder(loader, marks, budget=len(text) + ALIAS_ALLOWANCE)
    try:
        builder.refuse_alias_bombs(node)
        value = builder.build(node, ())
    except _Refused as exc:
        return YamlResult(None, marks, [exc.problem])
    except yaml.MarkedYAMLError as exc:  # a bad explicit tag, a bad merge key
        return YamlResult(None, marks, [_syntax_problem(path, exc, text)])
    return YamlResult(value, marks, builder.problems)


def _reader_problem(path: str, exc: yaml.reader.ReaderError, text: str) -> Problem:
    pos = exc.position if isinstance(exc.position, int) and 0 <= exc.position <= len(text) else 0
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    char = exc.character if isinstance(exc.character, int) else ord(text[pos]) if pos < len(text) else 0
    return Problem(
        Location(path, line, col),
        codes.YAML_SYNTAX,
        f"the file holds the control character U+{char:04X}, which YAML does not allow",
        "remove it (is this a binary file, or a UTF-16 file?); write \\t or \\n escapes in a quoted string",
    )


def _syntax_problem(path: str, exc: yaml.MarkedYAMLError, text: str = "") -> Problem:
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
    elif "\t" in what or "tab" in what or (mark is not None and text[mark.index : mark.index + 1] == "\t"):
        fix = "indent with spaces; YAML does not allow tabs for indentation"
    elif "expected a single document" in what:
        fix = "keep one document per file (remove the extra '---')"
    return Problem(where, codes.YAML_SYNTAX, f"YAML syntax error: {what}", fix, related)


class _Refused(Exception):
    """The file cannot be turned into values at all (too deep, an alias bomb, a value no type can hold)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class _Builder:
    """Turns composed nodes into dicts/lists/scalars while filling `Marks`."""

    def __init__(self, loader: _Loader, marks: Marks, budget: int) -> None:
        self.loader = loader
        self.marks = marks
        self.problems: list[Problem] = []
        self.budget = budget  # values left to build: aliases must not expand without end
        self.sizes: dict[int, int] = {}  # id(node) -> values that building it makes (aliases expanded)
        self.merge_depths: dict[int, int] = {}  # id(node) -> how deep its `<<` merges chain
        self.nodes: dict[int, Node] = {}  # id(node) -> node, to locate what the two above point at
        self.merged: dict[int, int] = {}  # id(mapping node) -> how many of its pairs came from `<<`

    def _pos(self, node: Node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def _refuse(self, node: Node, message: str, fix: str | None = None) -> _Refused:
        line, col = self._pos(node)
        return _Refused(Problem(Location(self.marks.path, line, col), codes.YAML_SYNTAX, message, fix))

    def build(self, node: Node, where: Path) -> Any:
        if len(where) > MAX_DEPTH:
            raise self._refuse(node, "nesting is too deep (or an alias refers to itself)")
        self.budget -= 1
        if self.budget < 0:
            raise self._alias_bomb(node)
        self.marks.values[where] = self._pos(node)
        if isinstance(node, MappingNode):
            return self._mapping(node, where)
        if isinstance(node, SequenceNode):
            return [self.build(item, (*where, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError:
            raise
        except (ValueError, TypeError, OverflowError) as exc:  # `!!int 0b2`, a 5000-digit number, ...
            shown = node.value if len(node.value) <= 40 else node.value[:37] + "..."
            raise self._refuse(
                node, f"cannot read {shown!r} as {node.tag.rpartition(':')[2]}: {exc}", "quote the value"
            ) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise self._refuse(node, f"{node.value!r} is not a finite number", "write an ordinary number, like 0.5")
        return value

    def _alias_bomb(self, node: Node) -> _Refused:
        return self._refuse(
            node,
            "aliases (*name) or merge keys (<<) make this value expand to more values than the whole file "
            "holds; refused unexpanded",
            "write the values out, or use fewer aliases",
        )

    @staticmethod
    def _children(node: Node) -> list[tuple[Node, bool]]:
        """(child, reached through a merge key) for the values a node's building visits."""
        if isinstance(node, SequenceNode):
            return [(item, False) for item in node.value]
        if not isinstance(node, MappingNode):
            return []
        out: list[tuple[Node, bool]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                out.append((value_node, False))
                continue
            subs = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            out.extend((sub, True) for sub in subs if isinstance(sub, MappingNode))
        return out

    def _measure(self, root: Node) -> None:
        """For every node: how many values building it makes, aliases and merges expanded, and
        how deep its merge keys chain. Counted once per shared node, without expanding anything
        and without recursion (a chain of a thousand aliases must not overflow the stack)."""
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, done = stack.pop()
            key = id(node)
            if not done:
                if key in self.sizes:
                    continue
                self.nodes[key] = node
                self.sizes[key] = 1  # meanwhile: an alias back to it (a cycle) counts one
                self.merge_depths[key] = 0
                stack.append((node, True))
                stack.extend((child, False) for child, _ in self._children(node) if id(child) not in self.sizes)
                continue
            total, depth = 1, 0
            for child, merged in self._children(node):
                # a merged mapping adds its pairs, not itself
                total += self.sizes.get(id(child), 1) - (1 if merged else 0)
                if merged:
                    depth = max(depth, self.merge_depths.get(id(child), 0) + 1)
            self.sizes[key] = total
            self.merge_depths[key] = depth

    def refuse_alias_bombs(self, root: Node) -> None:
        """Refuse, before building anything, a document that aliases would blow up (pointing at
        the smallest value that is already too big on its own), or whose merges chain too deep."""
        self._measure(root)
        deepest = max(self.merge_depths.items(), key=lambda item: item[1], default=(0, 0))
        if deepest[1] > MAX_DEPTH:
            raise self._refuse(
                self.nodes[deepest[0]],
                f"merge keys (<<) chain {deepest[1]} mappings deep here; the limit is {MAX_DEPTH}",
            )
        if self.sizes[id(root)] <= self.budget:
            return
        node, seen = root, {id(root)}
        while True:
            bigger = next(
                (c for c, _ in self._children(node) if self.sizes.get(id(c), 0) > self.budget and id(c) not in seen),
                None,
            )
            if bigger is None:
                raise self._alias_bomb(node)
            node = bigger
            seen.add(id(node))

    def _mapping(self, node: MappingNode, where: Path) -> dict[str, Any]:
        if id(node) not in self.merged:
            own = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE_TAG)
            self.loader.flatten_mapping(node)  # resolves `<<` merge keys in place: merged pairs first
            self.merged[id(node)] = len(node.value) - own
        merged = self.merged[id(node)]
        out: dict[str, Any] = {}
        explicit: set[str] = set()
        for index, (key_node, value_node) in enumerate(node.value):
            if not isinstance(key_node, ScalarNode):
                line, col = self._pos(key_node)
                self.problems.append(
                    Problem(
                        Location(self.marks.path, line, col),
                        codes.BAD_KEY,
                        "a mapping key must be a plain name, not a list or mapping",
                        "write `name: value`",
                    )
                )
                continue
            # The key as written: `1:` and `"1":` are the same key to a person.
            key = str(key_node.value)
            if index >= merged:  # a key written here overrides a merged one: only a repeat is a mistake
                if key in explicit:
                    line, col = self._pos(key_node)
                    first = self.marks.keys[(*where, key)]
                    self.problems.append(
                        Problem(
                            Location(self.marks.path, line, col),
                            codes.DUPLICATE_KEY,
                            f"key '{key}' appears twice in this mapping; YAML would silently keep the last one",
                            "remove one of them",
                            related=(("first at", Location(self.marks.path, first[0], first[1])),),
                        )
                    )
                explicit.add(key)
            self.marks.keys[(*where, key)] = self._pos(key_node)
            out[key] = self.build(value_node, (*where, key))
        return out
