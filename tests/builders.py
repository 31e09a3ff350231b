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
            src.dom_name.append(name[2:] if wild else name)
            src.dom_wild.append(1 if wild else 0)
            src.dom_value.append(vid)
            src.dom_line.append(line)
            continue
        net = parse_network(text)
        if net.family == 4:
            src.v4_start.append(net.start)
            src.v4_end.append(net.end)
            src.v4_value.append(vid)
            src.v4_line.append(line)
        else:
            src.v6_start.append(net.start)
            src.v6_end.append(net.end)
            src.v6_value.append(vid)
            src.v6_line.append(line)
    return src
