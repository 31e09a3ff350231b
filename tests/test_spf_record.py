"""SPF record texts as terms (publisher/spf/record.py): RFC 7208's grammar, errors located."""

from __future__ import annotations

import pytest

from publisher.spf.record import Record, SyntaxProblem, is_spf, parse_record


def record(text: str) -> Record:
    parsed = parse_record(text)
    assert isinstance(parsed, Record), parsed
    return parsed


def problem(text: str) -> str:
    parsed = parse_record(text)
    assert isinstance(parsed, SyntaxProblem), parsed
    return str(parsed)


def test_terms_qualifiers_and_lengths() -> None:
    rec = record("v=spf1 -ip4:192.0.2.7/24 ~a ?MX:Mail.Example.COM/28//64 +include:_SPF.example.com a//48 -all")
    kinds = [(t.qualifier, t.kind, t.domain, t.v4_len, t.v6_len) for t in rec.mechanisms]
    assert kinds == [
        ("-", "ip4", None, 32, 128),
        ("~", "a", None, 32, 128),
        ("?", "mx", "mail.example.com", 28, 64),
        ("+", "include", "_spf.example.com", 32, 128),
        ("+", "a", None, 32, 48),
        ("-", "all", None, 32, 128),
    ]
    net = rec.mechanisms[0].network
    assert net is not None and str(net) == "192.0.2.0/24"  # host bits ignored, as receivers compare prefixes
    assert [t.text for t in rec.mechanisms] == [
        "-ip4:192.0.2.7/24",
        "~a",
        "?mx:mail.example.com/28//64",
        "+include:_spf.example.com",
        "a//48",
        "-all",
    ]
    assert rec.has_all and rec.redirect is None
    assert [t.column for t in rec.mechanisms] == [8, 26, 29, 57, 83, 89]


def test_modifiers_redirect_exp_and_unknown() -> None:
    rec = record("v=spf1  ip6:2001:DB8::/32 redirect=_SPF.Example.com exp=explain.%{d} x-custom=anything")
    assert rec.redirect is not None and rec.redirect.domain == "_spf.example.com"
    assert rec.redirect.text == "redirect=_spf.example.com"
    assert not rec.has_all
    net = rec.mechanisms[0].network
    assert net is not None and str(net) == "2001:db8::/32"
    assert record("v=spf1").mechanisms == ()


def test_macros_are_detected_escapes_are_not() -> None:
    rec = record("v=spf1 exists:%{i}._spf.%{d} a:%{l1r-}.example.com include:a%%b.example.com a:x%_y%-z.example.com")
    assert [(t.macro, t.domain) for t in rec.mechanisms] == [
        (True, "%{i}._spf.%{d}"),
        (True, "%{l1r-}.example.com"),
        (False, "a%b.example.com"),
        (False, "x y%20z.example.com"),
    ]
    assert rec.mechanisms[1].text == "a:%{l1r-}.example.com"  # the macro letter's case kept


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("v=spf1 ip4:192.0.2.0/33", "column 8 ('ip4:192.0.2.0/33'): bad CIDR length /33: write 0 to 32"),
        ("v=spf1 a/024", "column 8 ('a/024'): bad CIDR length /024"),
        ("v=spf1 mx//129", "bad CIDR length /129: write 0 to 128"),
        ("v=spf1 a:localhost", "'localhost' is not a domain: it must end in a top label"),
        ("v=spf1 a:192.0.2.1", "'192.0.2.1' is not a domain"),
        ("v=spf1 ip4:192.0.2.1 foo:bar", "column 22 ('foo:bar'): unknown mechanism 'foo'"),
        ("v=spf1 include", "`include` needs a domain"),
        ("v=spf1 all:x", "`all` takes no argument"),
        ("v=spf1 ip4:300.1.1.1", "octet 300 is out of range"),
        ("v=spf1 ip6:2001:db8::g", "not a valid IPv6 address"),
        ("v=spf1 exists:%{z}.example.com", "a '%' must start a macro"),
        ("v=spf1 exists:%{c}.example.com", "macro letter 'c' is only allowed in exp= texts"),
        ("v=spf1 a:50%.example.com", "a '%' must start a macro"),
        ("v=spf1 redirect=a.example redirect=b.example", "a second redirect="),
        ("v=spf1 a:" + "x" * 64 + ".example.com", "is not a DNS name"),
        ("v=spf1 ip4:192.0.2.1\tip4:192.0.2.2", "character U+0009 is not allowed"),
        ("v=spf1 a:caf\u00e9.example", "character U+00E9 is not allowed"),
        ("v=spf10 a", "an SPF record starts with 'v=spf1'"),
    ],
)
def test_syntax_errors_are_located(text: str, message: str) -> None:
    assert message in problem(text)


def test_is_spf() -> None:
    assert is_spf("v=spf1") and is_spf("V=SPF1 -all")
    assert not is_spf("v=spf10") and not is_spf("v=spf2.0/pra") and not is_spf("google-site-verification=x")
