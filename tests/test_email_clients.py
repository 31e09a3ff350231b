"""Email zones asked by real mail filters: Debian's SpamAssassin (HashBL) and rspamd (rbl).

Each client runs the snippets of docs/clients.md ("Email-address lists"), read from the
page, against our DNS server on a loopback port (tests/mailclients.py runs them privately),
and scans messages carrying a listed address in From, in Reply-To and in the body, each in
the forms the zone's normalisation equates (capitals, a `+tag`, gmail.com dots,
googlemail.com), and unlisted ones. The zones: the sample `ebl.example.test` (sha1, suffix
`_email`, Spamhaus HBL's form) and two without suffix, md5 and sha256 (SpamAssassin only:
rspamd cannot ask sha256 zones), made with the documented substitution. A hash or a
normalisation of ours that disagrees with a client's makes these tests fail.

The addresses end in real top-level domains (example.com, gmail.com): SpamAssassin finds
no address under `.example` or `.test`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import LISTS
from tests.test_who_may_query_e2e import cli, serve

from doc_snippets import snippet
from mailclients import Rspamd, SpamAssassin, message


@dataclass(frozen=True)
class Zone:
    name: str
    hash: str
    suffix: str

    @property
    def queried(self) -> str:
        """The list name clients append the hash to."""
        return f"{self.suffix}.{self.name}" if self.suffix else self.name


HBL = Zone("ebl.example.test", "sha1", "_email")
MD5 = Zone("ebl-md5.example.test", "md5", "")
SHA256 = Zone("ebl-sha256.example.test", "sha256", "")
ZONES = (HBL, MD5, SHA256)

#: The listed addresses as the lists write them, and their codes.
SPAM, PHISH = "127.0.2.2", "127.0.2.3"
LISTED = {"drop.box@example.com": SPAM, "john.doe@gmail.com": PHISH}

#: Written form -> the listed address it is (None: not listed).
FORMS: dict[str, str | None] = {
    "drop.box@example.com": "drop.box@example.com",
    "Drop.Box@EXAMPLE.COM": "drop.box@example.com",
    "drop.box+promo@example.com": "drop.box@example.com",
    "johndoe@gmail.com": "john.doe@gmail.com",
    "J.O.H.N.Doe+x@gmail.com": "john.doe@gmail.com",
    "john.doe@googlemail.com": "john.doe@gmail.com",
    "jane.roe@example.com": None,
    "jane.roe@gmail.com": None,
}
#: The forms rspamd's From: selector equates (lower case only, README "what rspamd cannot do").
RSPAMD_FROM = {"drop.box@example.com", "Drop.Box@EXAMPLE.COM", "johndoe@gmail.com"}
POSITIONS = ("from", "reply-to", "body")
SENDER = "News <news@sender.net>"


def mail(position: str, address: str) -> str:
    if position == "from":
        return message(f"Someone <{address}>")
    if position == "reply-to":
        return message(SENDER, reply_to=address)
    return message(SENDER, body=f"Hello,\n\nplease write to {address} to claim it.\n")


CASES = [(p, f) for p in POSITIONS for f in FORMS]


# --- the DNS side -------------------------------------------------------------------------

#: Added to a copy of lists/: the listed addresses in the sample zone's folder (its sources
#: are ebl/*.yaml), and the same entries in an md5 and a sha256 zone without suffix.
CLIENT_ENTRIES = """\
entries:
  - email: drop.box@example.com
    reason: drop box seen in advance-fee fraud
    added: 2026-11-01
  - email: john.doe@gmail.com
    code: 127.0.2.3
    reason: phishing sender
    added: 2026-11-01
"""
MORE_ZONES = """\
  - name: {name}
    kind: email
    role: block
    sources: [{folder}/*.yaml]
    code: 127.0.2.2
    txt: "Address listed by {{zone}}: {{reason}}"
    email:
      hash: {hash}
"""


def lists_for_clients(root: Path) -> Path:
    """A copy of lists/ with the clients' addresses in ebl.example.test and two more zones."""
    lists = root / "lists"
    shutil.copytree(LISTS, lists)
    (lists / "ebl" / "clients.yaml").write_text(CLIENT_ENTRIES)
    zones_yaml = lists / "zones.yaml"
    text = zones_yaml.read_text()
    for zone in (MD5, SHA256):
        folder = zone.name.split(".")[0]
        (lists / folder).mkdir()
        (lists / folder / "clients.yaml").write_text(CLIENT_ENTRIES)
        text += MORE_ZONES.format(name=zone.name, folder=folder, hash=zone.hash)
    zones_yaml.write_text(text)
    return lists


@pytest.fixture(scope="module")
def dns_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """`publisher compile` of the lists above, answered by `publisher serve` on loopback."""
    root = tmp_path_factory.mktemp("published")
    lists, zones = lists_for_clients(root), root / "zones"
    done = cli("--lists", str(lists), "--zones", str(zones), "compile")
    assert done.returncode == 0, done.stdout + done.stderr
    served = serve(zones)
    try:
        yield served.port
    finally:
        served.stop()


# --- the clients ----------------------------------------------------------------------------


def for_zone(text: str, zone: Zone) -> str:
    """A snippet for another zone, as the page says: the hash and the list name replaced."""
    return text.replace("sha1", zone.hash).replace(HBL.queried, zone.queried)


def one_rbls_block(*texts: str) -> str:
    """local.d/rbl.conf holding the rules of several `rbls { ... }` snippets, as the page says."""
    inner = []
    for text in texts:
        lines = text.rstrip("\n").splitlines()
        assert lines[0] == "rbls {" and lines[-1] == "}", text
        inner += lines[1:-1]
    return "rbls {\n" + "\n".join(inner) + "\n}\n"


def with_port(text: str, port: int) -> str:
    assert "127.0.0.1:5353" in text
    return text.replace("127.0.0.1:5353", f"127.0.0.1:{port}")


@pytest.fixture(scope="module")
def sa_hits(dns_port: int, tmp_path_factory: pytest.TempPathFactory) -> dict[Zone, dict[tuple[str, str], set[str]]]:
    """The rules SpamAssassin hits for every case, per zone (one spamassassin run per zone)."""
    results = {}
    for zone in ZONES:
        rules = with_port(snippet("spamassassin-email-dns"), dns_port) + for_zone(snippet("spamassassin-email"), zone)
        sa = SpamAssassin(tmp_path_factory.mktemp(f"sa-{zone.hash}"), dns_port, rules)
        hits = sa.scan([mail(p, f) for p, f in CASES])
        results[zone] = dict(zip(CASES, hits, strict=True))
    return results


@pytest.fixture(scope="module")
def rspamd(dns_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[Zone], Rspamd]]:
    """rspamd running the page's rules for a zone, started on first use, stopped at the end."""
    started: dict[Zone, Rspamd] = {}

    def get(zone: Zone) -> Rspamd:
        if zone not in started:
            folder = tmp_path_factory.mktemp(f"rspamd-{zone.hash}")
            rules = one_rbls_block(snippet("rspamd"), for_zone(snippet("rspamd-email"), zone))
            client = Rspamd(folder, dns_port, rules)
            (folder / "local.d" / "options.inc").write_text(with_port(snippet("rspamd-email-dns"), dns_port))
            started[zone] = client
            client.start()
        return started[zone]

    try:
        yield get
    finally:
        for client in started.values():
            client.stop()


def rspamd_symbol(listed: str | None) -> set[str]:
    if listed is None:
        return set()
    return {"EBL_EXAMPLE_SPAM" if LISTED[listed] == SPAM else "EBL_EXAMPLE_PHISH"}


def ebl_symbols(symbols: set[str]) -> set[str]:
    return {s for s in symbols if s.startswith("EBL_EXAMPLE")}


# --- SpamAssassin ---------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ZONES, ids=lambda z: z.hash)
@pytest.mark.parametrize(("position", "form"), CASES, ids=[f"{p}-{f}" for p, f in CASES])
def test_spamassassin_scores_a_listed_address_in_each_form_and_nothing_else(
    sa_hits: dict[Zone, dict[tuple[str, str], set[str]]], zone: Zone, position: str, form: str
) -> None:
    hits = sa_hits[zone][(position, form)]
    if FORMS[form] is None:
        assert "EXAMPLE_EBL" not in hits, f"{form} is not listed, yet {position} scored {hits}"
    else:
        assert "EXAMPLE_EBL" in hits, f"{form} ({FORMS[form]} listed) in {position}: hits {hits}"


def test_the_spamassassin_snippets_pass_lint(dns_port: int, tmp_path: Path) -> None:
    rules = with_port(snippet("spamassassin-email-dns"), dns_port) + snippet("spamassassin-email")
    assert SpamAssassin(tmp_path, dns_port, rules).lint() == ""


# --- rspamd ---------------------------------------------------------------------------------


@pytest.mark.parametrize("zone", [HBL, MD5], ids=lambda z: z.hash)
@pytest.mark.parametrize(("position", "form"), CASES, ids=[f"{p}-{f}" for p, f in CASES])
def test_rspamd_raises_the_code_symbol_of_a_listed_address_and_nothing_else(
    rspamd: Callable[[Zone], Rspamd], zone: Zone, position: str, form: str
) -> None:
    listed = FORMS[form]
    if position == "from" and form not in RSPAMD_FROM:
        listed = None  # the selector lower-cases only: tags, dots and aliases stay
    got = ebl_symbols(rspamd(zone).symbols(mail(position, form)))
    assert got == rspamd_symbol(listed), f"{form} in {position}"


def test_rspamd_misses_a_gmail_reply_to_whose_domain_has_capitals(rspamd: Callable[[Zone], Rspamd]) -> None:
    """docs/clients.md, "What rspamd cannot do": its built-in rule compares the domain
    before lower-casing it, so `J.O.H.N.Doe@GMail.com` keeps its dots and is not johndoe@gmail.com
    (while the same address in the body, whose domain the URL parser lower-cases, matches)."""
    client = rspamd(HBL)
    assert ebl_symbols(client.symbols(mail("reply-to", "J.O.H.N.Doe@GMail.com"))) == set()
    assert ebl_symbols(client.symbols(mail("body", "J.O.H.N.Doe@GMail.com"))) == {"EBL_EXAMPLE_PHISH"}


def test_rspamd_takes_every_rule_of_the_page_beside_the_email_rule(rspamd: Callable[[Zone], Rspamd]) -> None:
    """The IP and domain rules of the rspamd section share local.d/rbl.conf with the email rule."""
    log = rspamd(HBL).log.read_text()
    for symbol in ("RBL_EXAMPLE_BL", "RWL_EXAMPLE_WL", "DBL_EXAMPLE", "EBL_EXAMPLE"):
        assert f"added rbl rule {symbol}:" in log, symbol
    assert "RBL is DISABLED" not in log and "invalid" not in log.lower()


def test_the_spamassassin_ip_and_domain_rules_pass_lint(dns_port: int, tmp_path: Path) -> None:
    """The SpamAssassin section's rules for the IP and domain zones (check_rbl, askdns,
    urirhssub) load without a complaint beside the email rules."""
    rules = snippet("spamassassin") + snippet("spamassassin-email")
    assert SpamAssassin(tmp_path, dns_port, rules).lint() == ""
