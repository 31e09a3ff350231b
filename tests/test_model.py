"""SourceData's row view (publisher/model.py): the columns read back one entry at a time."""

from __future__ import annotations

from publisher.addresses import parse_network
from publisher.model import Row, SourceData, Value


def _source() -> SourceData:
    src = SourceData("bl/a.txt")
    listed = src.add_value(Value(0x7F000002, "spam"))
    hole = src.add_value(Value(0x7F000002, exclude=True))
    for line, text, value in ((1, "192.0.2.0/24", listed), (2, "2001:db8::/32", listed), (3, "192.0.2.7", hole)):
        net = parse_network(text)
        src.add_network(net.family, net.start, net.end, value, line)
    src.add_domain("spam.example", True, listed, 4)
    src.add_domain("spam.example", False, listed, 5)
    return src


def test_rows_read_the_columns_in_order() -> None:
    src = _source()
    v4, v6, hole = parse_network("192.0.2.0/24"), parse_network("2001:db8::/32"), parse_network("192.0.2.7")
    assert list(src.rows()) == [
        Row(4, v4.start, v4.end, "", False, 0, 1),
        Row(4, hole.start, hole.end, "", False, 1, 3),
        Row(6, v6.start, v6.end, "", False, 0, 2),
        Row(0, 0, 0, "spam.example", True, 0, 4),
        Row(0, 0, 0, "spam.example", False, 0, 5),
    ]
    assert len(list(src.rows())) == len(src)
    assert [r.line for r in src.rows(4)] == [1, 3]
    assert [r.line for r in src.rows(6)] == [2]
    assert [r.line for r in src.rows(0)] == [4, 5]
    assert all(type(r) is Row and type(r.wild) is bool for r in src.rows())
    assert [src.row(k) for k in range(len(src))] == list(src.rows())


def test_row_text_and_subject() -> None:
    rows = list(_source().rows())
    assert [r.text for r in rows] == ["192.0.2.0/24", "192.0.2.7", "2001:db8::/32", "*.spam.example", "spam.example"]
    assert rows[3].subject == (0, 0, 0, "spam.example", True)
    assert rows[3].subject != rows[4].subject
    assert rows[0].subject == Row(4, rows[0].start, rows[0].end, "", False, 9, 99).subject  # value and line aside
