"""`- spf: DOMAIN` entries: partners declared by their SPF record, as `publisher validate` shows them.

A declaration lists nothing itself; it is read into `SourceData.partners` with the file's
defaults, and refused, located, with a fix, where no refresh could follow it."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from publisher.addresses import parse_code, parse_network
from publisher.cli import app as cli
from publisher.errors import Location
from publisher.lists.curated import read_source
from publisher.model import ZoneConfig
from publisher.partners import Partner, SpfFilter, SpfSettings

WL = ZoneConfig(
    "wl.example.test",
    "ip",
    "allow",
    ("wl/*.yaml", "wl/spf/*.yaml"),
    parse_code("127.0.10.1"),
    "{reason}",
    spf=SpfSettings("wl/spf"),
)

ZONES_YAML = """\
zones:
  - name: bl.example.test
    kind: ip
    role: block
    sources: ["bl/*.yaml"]
    code: "127.0.0.2"
    txt: "{reason}"
    soa: {mname: ns1.example.test, rname: hostmaster.example.test}
    ns: [{name: ns1.example.test}]
  - name: wl.example.test
    kind: ip
    role: allow
    sources: ["wl/*.yaml", "wl/spf/*.yaml"]
    code: "127.0.10.1"
    txt: "{reason}"
    soa: {mname: ns1.example.test, rname: hostmaster.example.test}
    ns: [{name: ns1.example.test}]
    spf: {dir: wl/spf}
  - name: plain.example.test
    kind: ip
    role: allow
    sources: ["plain/*.yaml"]
    code: "127.0.10.1"
    txt: "{reason}"
    soa: {mname: ns1.example.test, rname: hostmaster.example.test}
    ns: [{name: ns1.example.test}]
  - name: dbl.example.test
    kind: domain
    role: block
    sources: ["dbl/*.yaml"]
    code: "127.0.1.2"
    txt: "{reason}"
    soa: {mname: ns1.example.test, rname: hostmaster.example.test}
    ns: [{name: ns1.example.test}]
    excludes: ["dbl/local-excludes.yaml"]
"""

BASE = {
    "zones.yaml": ZONES_YAML,
    "bl/abuse.yaml": "entries:\n  - ip: 192.0.2.1\n",
    "plain/hand.yaml": "entries:\n  - ip: 198.51.100.9\n    owner: Hand\n",
    "dbl/spam.yaml": "entries:\n  - domain: spam.example\n",
    "dbl/local-excludes.yaml": "entries:\n  - domain: ham.spam.example\n",
}


def validate(tmp_path: Path, files: dict[str, str]) -> tuple[int, str]:
    lists = tmp_path / "lists"
    for path, text in {**BASE, **files}.items():
        (lists / path).parent.mkdir(parents=True, exist_ok=True)
        (lists / path).write_text(text)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["--lists", str(lists), "validate"])
    return code, (out.getvalue() + err.getvalue()).replace(f"{lists}/", "")


def test_a_declaration_takes_the_file_defaults_and_lists_nothing() -> None:
    text = """\
defaults: {owner: Example Partner Ltd, code: 127.0.10.2, by: alice, ticket: PARTNER-12, expires: 2027-01-01}
entries:
  - spf: Partner.Example.
    contact: postmaster@partner.example
    reason: partner gateways
    max_prefix: {ipv4: 24, ipv6: 48}
    include: [192.0.2.0/24, _spf.partner.example]
    exclude: [_SPF.Google.com, "2001:db8::/32"]
    added: 2026-11-30
  - ip: 198.51.100.7
"""
    source = read_source("wl/partners.yaml", text.encode(), WL)
    assert [p for p in source.problems if p.is_error] == []
    assert len(source) == 1  # only the ip entry is a row; the declaration lists nothing itself
    assert source.partners == [
        Partner(
            domain="partner.example",
            location=Location("wl/partners.yaml", 3, 5),
            owner="Example Partner Ltd",
            code=parse_code("127.0.10.2"),
            reason="partner gateways",
            contact="postmaster@partner.example",
            ticket="PARTNER-12",
            by="alice",
            added="2026-11-30",
            max_prefix_v4=24,
            max_prefix_v6=48,
            include=(
                SpfFilter("192.0.2.0/24", network=parse_network("192.0.2.0/24")),
                SpfFilter("_spf.partner.example", domain="_spf.partner.example"),
            ),
            exclude=(
                SpfFilter("_SPF.Google.com", domain="_spf.google.com"),
                SpfFilter("2001:db8::/32", network=parse_network("2001:db8::/32")),
            ),
        )
    ]
    # the zone's code when neither the entry nor the defaults say
    bare = read_source("wl/p.yaml", b"entries:\n  - spf: other.example\n    owner: Other\n", WL)
    assert bare.partners[0].code == WL.code and bare.partners[0].reason == ""


def test_a_declared_partner_without_a_generated_file_is_a_warning(tmp_path: Path) -> None:
    code, out = validate(
        tmp_path, {"wl/partners.yaml": "entries:\n  - spf: partner.example\n    owner: Example Partner Ltd\n"}
    )
    assert code == 0, out
    assert (
        "wl/partners.yaml:2:5: warning: partner.example has no generated file yet (wl/spf/partner.example.yaml): "
        "nothing of its SPF record is listed [spf-not-refreshed]\n"
        "  fix: run `publisher refresh-spf partner.example`, review and publish the commit"
    ) in out
    # an allowlist of declared partners only is no empty-zone error, and the empty spf folder's glob no warning
    assert "empty-zone" not in out and "glob-no-match" not in out


@pytest.mark.parametrize(
    ("files", "where", "message", "fix"),
    [
        (
            {"bl/abuse.yaml": "entries:\n  - ip: 192.0.2.1\n  - spf: partner.example\n    owner: X\n"},
            "bl/abuse.yaml:3:10",
            "partners are declared in allowlists; bl.example.test is a blocklist",
            "move the `- spf:` entry to a source file of an allowlist of addresses with `spf:` in zones.yaml",
        ),
        (
            {"dbl/spam.yaml": "entries:\n  - domain: spam.example\n  - spf: partner.example\n    owner: X\n"},
            "dbl/spam.yaml:3:10",
            "partners are declared in allowlists; dbl.example.test is a blocklist",
            None,
        ),
        (
            {"plain/hand.yaml": "entries:\n  - spf: partner.example\n    owner: X\n"},
            "plain/hand.yaml:2:10",
            "plain.example.test has no `spf:` settings in zones.yaml, so nothing would refresh this partner",
            "add `spf: {dir: DIR}` to plain.example.test in zones.yaml (with `DIR/*.yaml` in its sources), or move",
        ),
        (
            {"dbl/local-excludes.yaml": "entries:\n  - spf: partner.example\n"},
            "dbl/local-excludes.yaml:2:10",
            "a partner cannot be declared in an excludes file of dbl.example.test",
            None,
        ),
        (
            {"wl/p.yaml": "entries:\n  - spf: 192.0.2.7\n    owner: X\n"},
            "wl/p.yaml:2:10",
            "'192.0.2.7' is an address; `spf:` takes the mail domain whose SPF record lists the partner's gateways",
            "write the partner's domain (partner.example), or list the address itself with `- ip:`",
        ),
        (
            {"wl/p.yaml": "entries:\n  - spf: https://partner.example/\n    owner: X\n"},
            "wl/p.yaml:2:10",
            "'https://partner.example/' is a URL or a mail address; `spf:` takes the domain whose SPF record",
            "write the domain alone: `spf: partner.example`",
        ),
        (
            {"wl/p.yaml": 'entries:\n  - spf: "*.partner.example"\n    owner: X\n'},
            "wl/p.yaml:2:10",
            "'*.partner.example' is a wildcard; an SPF record belongs to one name",
            "write the name alone: partner.example",
        ),
        (
            {"wl/p.yaml": "entries:\n  - spf: partner..example\n    owner: X\n"},
            "wl/p.yaml:2:10",
            "`spf`: 'partner..example' has an empty label",
            "remove the doubled or stray dot",
        ),
        (
            {"wl/p.yaml": "entries:\n  - spf: partner.example\n    owner: X\n    exclude: true\n"},
            "wl/p.yaml:4:14",
            "`exclude: true` makes a hole in a listing, and a declaration lists nothing itself",
            "to leave some of the partner's addresses out, give `exclude:` a list of networks or SPF names",
        ),
        (
            {"wl/p.yaml": "entries:\n  - spf: partner.example\n    owner: X\n    allow_broad: true\n    reason: r\n"},
            "wl/p.yaml:4:18",
            "`allow_broad` does not apply to an `spf:` entry",
            "what a partner's record passes is held to the zone's max_prefix",
        ),
        (
            {"wl/p.yaml": "entries:\n  - spf: partner.example\n    owner: X\n    expires: 2027-01-01\n"},
            "wl/p.yaml:4:14",
            "`expires` does not apply to an `spf:` entry",
            "remove `expires`; when the partnership ends remove the declaration",
        ),
        (
            {"wl/p.yaml": "entries:\n  - spf: partner.example\n    ip: 192.0.2.7\n    owner: X\n"},
            "wl/p.yaml:2:5",
            "an entry declares a partner (`spf:`) or lists an entry (`ip:`), not both",
            "split it in two entries: `- spf: DOMAIN` declares the partner, `- ip: ...` lists by hand",
        ),
        (
            {"wl/p.yaml": "entries:\n  - spf: partner.example\n    owner: X\n    include: [192.0.2.0/24, 10.0.0.300]"},
            "wl/p.yaml:4:29",
            "`include[1]`: '10.0.0.300' is not an IPv4 address: octet 300 is out of range 0-255",
            "write four decimal octets 0-255",
        ),
        (
            {"wl/p.yaml": "entries:\n  - spf: partner.example\n    owner: X\n    exclude: [192.0.2.1/24]\n"},
            "wl/p.yaml:4:15",
            "`exclude[0]`: '192.0.2.1/24' has host bits set",
            None,
        ),
        (
            {"wl/p.yaml": 'entries:\n  - spf: partner.example\n    owner: X\n    exclude: ["*.google.com"]\n'},
            "wl/p.yaml:4:15",
            "`exclude[0]` '*.google.com' is a wildcard; a name filter already covers the names below it",
            "write the name alone: google.com",
        ),
    ],
)
def test_a_declaration_where_it_cannot_work_is_refused(
    tmp_path: Path, files: dict[str, str], where: str, message: str, fix: str | None
) -> None:
    code, out = validate(tmp_path, files)
    assert code == 1, out
    line = next((ln for ln in out.splitlines() if ln.startswith(where + ": ")), None)
    assert line is not None, out
    assert message in line and line.endswith("[bad-partner]"), line
    if fix is not None:
        assert f"  fix: {fix}" in out, out
    assert "nothing was published" in out


def test_a_declaration_needs_an_owner_like_any_allowlist_entry(tmp_path: Path) -> None:
    code, out = validate(tmp_path, {"wl/p.yaml": "entries:\n  - spf: partner.example\n    contact: pm@partner.example"})
    assert code == 1
    assert "wl/p.yaml:2:5: allowlist entries need an `owner` (wl.example.test is an allowlist)" in out
    assert "[missing-owner]\n  fix: add `owner: <the partner>` to the entry, or to the file's `defaults`" in out
    # from the defaults it is enough
    code, out = validate(
        tmp_path, {"wl/p.yaml": "defaults: {owner: Example Partner Ltd}\nentries:\n  - spf: partner.example\n"}
    )
    assert code == 0, out


def test_a_max_prefix_broader_than_the_zones_is_a_warning_naming_the_one_that_applies(tmp_path: Path) -> None:
    decl = "entries:\n  - spf: partner.example\n    owner: X\n    max_prefix: {ipv4: 8, ipv6: 48}\n"
    code, out = validate(tmp_path, {"wl/p.yaml": decl})
    assert code == 0, out
    assert (
        "wl/p.yaml:4:24: warning: max_prefix /8 is broader than wl.example.test's /16 for IPv4: the zone's "
        "applies, nothing broader than /16 is listed from the record [bad-partner]"
    ) in out
    assert "/48" not in out  # stricter than the zone's /32: it applies, nothing to say


def test_the_same_partner_declared_twice_in_a_zone_names_both_places(tmp_path: Path) -> None:
    code, out = validate(
        tmp_path,
        {
            "wl/a.yaml": "defaults: {owner: P}\nentries:\n  - spf: partner.example\n",
            "wl/b.yaml": "defaults: {owner: P}\nentries:\n  - ip: 198.51.100.1\n  - spf: PARTNER.example\n",
        },
    )
    assert code == 1
    assert (
        "wl/b.yaml:4:5: partner.example is declared twice in the zone; which declaration's owner, code and "
        "filters would its generated file follow? [duplicate-partner]\n"
        "  first at: wl/a.yaml:3:5\n"
        "  fix: keep one of the two declarations (merge their include / exclude filters into it)"
    ) in out


def test_declaration_keys_on_an_ip_entry_are_refused(tmp_path: Path) -> None:
    code, out = validate(
        tmp_path,
        {
            "wl/p.yaml": "defaults: {owner: P}\nentries:\n"
            "  - ip: 198.51.100.1\n    exclude: [_spf.google.com]\n"
            "  - ip: 198.51.100.2\n    include: [198.51.100.0/24]\n"
            "  - ip: 198.51.100.3\n    max_prefix: {ipv4: 24}\n"
        },
    )
    assert code == 1
    assert (
        'wl/p.yaml:4:14: `exclude` must be true or false, not a list (["_spf.google.com"]); a list of filters '
        "is for `- spf:` entries [wrong-type]\n"
        "  fix: write `exclude: true` to make the entry a hole in a wider listing of this file, or remove it"
    ) in out
    assert (
        "wl/p.yaml:6:14: `include` is for `- spf:` entries (partners declared by SPF), not for an `ip:` entry "
        "[bad-value]"
    ) in out
    assert "wl/p.yaml:8:17: `max_prefix` is for `- spf:` entries" in out
    # and `exclude: true` stays what it was on an ip entry
    hole = "defaults: {owner: P}\nentries:\n  - ip: 198.51.100.0/24\n  - ip: 198.51.100.8\n    exclude: true\n"
    code, out = validate(tmp_path, {"wl/p.yaml": hole})
    assert code == 0, out
