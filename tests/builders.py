"""Build parsed sources by hand for tests: rows of (text, Value) -> SourceData.

A text is an address, CIDR or range, or a domain (plain, `*.` wildcard, or written
with a `dom:` prefix to make the intent explicit).
"""

from __future__ import annotations

from publisher.addresses import parse_network
from publisher.model import SourceData, Value


def source(path: str, rows: list[tuple[str, Value]]) -> SourceData:
    src = SourceData(path)
    for line, (text, value) in enumerate(rows, start=1):
        vid = src.add_value(value)
        if text.startswith("dom:") or (not text[0].isdigit() and ":" not in text):
            name = text.removeprefix("dom:")
            wild = name.startswith("*.")
            src.add_domain(name[2:] if wild else name, wild, vid, line)
        else:
            net = parse_network(text)
            src.add_network(net.family, net.start, net.end, vid, line)
    return src
