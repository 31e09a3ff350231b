"""Text edits of a curated list file, made the way a person makes them.

A request filed through `publisher web` appends an entry to a list file's `entries:`;
every other byte (comments, order, `defaults:`, blank lines,
CRLF line ends, a missing final newline) stays as it was. Positions come from the YAML
nodes' marks; each edit is read back (the other entries and `defaults` must read as
before, the new entry as given) and `entry_problems` reads the edited file through the
lists' own curated reader, so an edit the lists would refuse is never committed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from publisher import codes
from publisher.errors import Problem, PublisherError
from publisher.lists.checks import validate
from publisher.lists.curated import read_yaml_source
from publisher.lists.excludes import as_excludes
from publisher.lists.yamlmarks import decode_text, load_yaml
from publisher.model import Config, ZoneConfig

#: An entry as written: (key, value) pairs in order; values are text or booleans.
Fields = Sequence[tuple[str, str | bool]]

SCHEMA_LINE = "# yaml-language-server: $schema={up}publisher/lists/schemas/list.schema.json"
HEADER = '# Requests filed through `publisher web` (README, "Delisting and allowlisting requests").'
_BREAKS = re.compile(r"\s*[\r\n\x85\u2028\u2029]+\s*")
_LOADER = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader


class EditError(PublisherError):
    """A list file cannot be edited safely (unreadable, not a list, an edit that would not read back)."""


def one_line(text: str) -> str:
    """Line breaks (and the blanks around them) folded to one space: a YAML value or a trailer."""
    return _BREAKS.sub(" ", text).strip()


def scalar(value: str | bool) -> str:
    """A value as YAML reads it back unchanged, in block and flow context: quoted when YAML would
    misread it (`a: b`, `# x`, `yes`, `2026-11-29`, `[x]`, leading specials, unicode escapes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if _BREAKS.search(value):
        raise EditError(f"a list value must be one line: {value[:40]!r}")
    # PyYAML quotes what YAML 1.1 would misread; the lists read YAML 1.2 (`1e3` is a number
    # there, not in 1.1): when the plain form does not read back, double quotes always do.
    for style in (None, '"'):
        dumped = yaml.safe_dump([value], default_flow_style=True, default_style=style, width=2**31, allow_unicode=True)
        text = dumped.strip()[1:-1]
        if "\n" not in text and load_yaml("value", f"k: {text}\n".encode()).data == {"k": value}:
            return text
    raise EditError(f"{value[:40]!r} would not read back as written")


def date_value(day: dt.date) -> str:
    """`added:` as the sample lists write it (plain YYYY-MM-DD; the lists read it as text)."""
    return day.isoformat()


def render_entry(fields: Fields, *, indent: int = 2, newline: str = "\n") -> str:
    """One block-sequence item: `- k: v` then `  k: v` lines."""
    lines = []
    for i, (key, value) in enumerate(fields):
        text = value if key == "added" and isinstance(value, str) and _is_date(value) else scalar(value)
        lines.append(" " * indent + ("- " if i == 0 else "  ") + f"{key}: {text}{newline}")
    return "".join(lines)


def _flow_entry(fields: Fields) -> str:
    return "{" + ", ".join(f"{k}: {scalar(v)}" for k, v in fields) + "}"


def _is_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where things are in one decoded list file (character offsets into `text`)."""

    bom: str
    text: str
    newline: str
    key: ScalarNode | None  # the `entries` key, None when the file has none
    seq: Node | None  # its value


def _layout(path: str, data: bytes) -> _Layout:
    loaded = load_yaml(path, data)
    if loaded.problems or (loaded.data is not None and not isinstance(loaded.data, dict)):
        first = loaded.problems[0].format() if loaded.problems else f"{path}: not a mapping with `entries:`"
        raise EditError(f"cannot edit {path}: {first}")
    text, _ = decode_text(path, data)
    assert text is not None  # load_yaml decoded it
    bom = "\ufeff" if data.startswith(b"\xef\xbb\xbf") else ""
    newline = "\r\n" if "\r\n" in text else "\n"
    key = seq = None
    root = yaml.compose(text, Loader=_LOADER) if text.strip() else None
    if isinstance(root, MappingNode):
        for k, v in root.value:
            if isinstance(k, ScalarNode) and k.value == "entries":
                key, seq = k, v
    return _Layout(bom, text, newline, key, seq)


def _line_start(text: str, pos: int) -> int:
    return text.rfind("\n", 0, pos) + 1


def _line_end(text: str, pos: int) -> int:
    """Just past the line break of the line holding `pos` (or the end of the text)."""
    end = text.find("\n", pos)
    return len(text) if end < 0 else end + 1


def _content_end(node: Node, text: str) -> int:
    """Where the node's last written character ends (block nodes' marks run on to the next token)."""
    if isinstance(node, ScalarNode):
        end = node.end_mark.index
        if node.style in ("|", ">"):
            while end > node.start_mark.index and text[end - 1] in " \t\r\n":
                end -= 1
        return int(end)
    if getattr(node, "flow_style", False):
        return int(node.end_mark.index)
    children: list[Node] = []
    if isinstance(node, MappingNode):
        children = [n for pair in node.value for n in pair]
    elif isinstance(node, SequenceNode):
        children = list(node.value)
    return max((_content_end(c, text) for c in children), default=int(node.start_mark.index) + 1)


def _dash(text: str, item: Node) -> int:
    """The offset of the `-` that opens a block-sequence item."""
    pos = item.start_mark.index - 1
    while pos >= 0 and text[pos] in " \t\r\n":
        pos -= 1
    if pos < 0 or text[pos] != "-":
        raise EditError("cannot find the `-` of an entry")
    return int(pos)


def _blank(line: str) -> bool:
    return not line.strip()


def _entries_of(path: str, text: str) -> tuple[list[Any], Any]:
    data = load_yaml(path, text.encode()).data
    doc = data if isinstance(data, dict) else {}
    return list(doc.get("entries") or []), doc.get("defaults")


def _finish(path: str, layout: _Layout, text: str, expect: list[Any]) -> bytes:
    """The edited text as bytes, after proving that it reads back to `expect` (and the same defaults)."""
    entries, defaults = _entries_of(path, text)
    _, before = _entries_of(path, layout.text)
    if entries != expect or defaults != before:
        raise EditError(f"editing {path} would change other entries; edit it by hand")
    return (layout.bom + text).encode("utf-8")


def new_file(path: str) -> bytes:
    """A list file with no entries yet: the schema line, a header, `entries: []`."""
    up = "../" * (path.count("/") + 1)
    return f"{SCHEMA_LINE.format(up=up)}\n{HEADER}\nentries: []\n".encode()


def append_entry(path: str, data: bytes | None, fields: Fields) -> tuple[bytes, str]:
    """`data` (None: a new file) with one entry appended to `entries:`: (new bytes, the entry's text)."""
    layout = _layout(path, new_file(path) if data is None else data)
    text, seq = layout.text, layout.seq
    nl = layout.newline
    before, _ = _entries_of(path, text)
    expect = [*before, {k: v for k, v in fields}]
    block = render_entry(fields, newline=nl)
    if isinstance(seq, SequenceNode) and seq.flow_style and seq.value:
        at = _content_end(seq.value[-1], text)
        flow = _flow_entry(fields)
        return _finish(path, layout, f"{text[:at]}, {flow}{text[at:]}", expect), flow
    if isinstance(seq, SequenceNode) and seq.value:
        items = seq.value
        indent = _dash(text, items[0]) - _line_start(text, _dash(text, items[0]))
        block = render_entry(fields, indent=indent, newline=nl)
        at = _line_end(text, _content_end(items[-1], text) - 1)
        head = "" if text[:at].endswith("\n") else nl
        gap = nl if _spaced(text, items) else ""
        return _finish(path, layout, text[:at] + head + gap + block + text[at:], expect), block
    if layout.key is None:  # no `entries:` at all: add it at the end
        head = "" if not text or text.endswith("\n") else nl
        return _finish(path, layout, f"{text}{head}entries:{nl}{block}", expect), block
    if isinstance(seq, MappingNode) or isinstance(seq, ScalarNode) and not seq.tag.endswith(":null"):
        raise EditError(f"cannot edit {path}: `entries:` is not a list")
    # `entries:` with nothing (null), `[]`, `~` or `null`: drop the empty value, items below the key
    if seq is not None and (isinstance(seq, SequenceNode) or seq.value):
        cut_from = seq.start_mark.index
        while cut_from > 0 and text[cut_from - 1] in " \t":
            cut_from -= 1
        text = text[:cut_from] + text[seq.end_mark.index :]
    at = _line_end(text, layout.key.end_mark.index)
    head = "" if text[:at].endswith("\n") else nl
    return _finish(path, layout, text[:at] + head + block + text[at:], expect), block


def _spaced(text: str, items: list[Node]) -> bool:
    """Are the items separated by blank lines? (One multi-line item alone: yes, as the samples are.)"""
    if len(items) < 2:
        first = items[0]
        return "\n" in text[first.start_mark.index : _content_end(first, text)]
    prev_end = _line_end(text, _content_end(items[-2], text) - 1)
    between = text[prev_end : _line_start(text, _dash(text, items[-1]))]
    return any(_blank(line) for line in between.split("\n")[:-1])


def entry_problems(path: str, data: bytes, zone: ZoneConfig) -> list[Problem]:
    """The errors the lists find in the file as edited: its syntax and schema, each entry's own
    checks (test points, host bits, max_prefix, mapped IPv6, owner on allowlists, TXT length), and
    repeats or conflicts within it. Checks that need the zone's other files wait for `publish`."""
    source = read_yaml_source(path, data, zone)
    if zone.read_as_excludes:  # an excludes file (lists/excludes.py): every entry is a hole
        source = as_excludes(source)
    problems = list(source.problems)
    config = Config(zones=(zone,))
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)  # expiry is a warning: the clock does not matter
    problems += [p for p in validate(config, {zone.name: [source]}, as_of=epoch) if p.code != codes.EMPTY_ZONE]
    return [p for p in problems if p.is_error]
