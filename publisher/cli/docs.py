"""The generated parts of the docs: the error-code table and the keyed client snippets.

`python -m publisher.cli.docs` (`make docs`) rewrites them in README.md and
docs/clients.md; `--check` only says which differ (tests/test_docs_clients.py fails the
same way). A generated part sits between two HTML comments, invisible on rendered pages:

    <!-- generated: error-codes -->
    ...
    <!-- /generated -->

error-codes   publisher.errorcodes.TABLE as a Markdown table, and the answers without a code
keyed-*       docs/clients.md's client snippets with the key label right below each zone's
              apex (`KEY.bl.example.test`), made from the plain snippets on the same page
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

from publisher import errorcodes
from publisher.addresses import format_v4

ROOT = Path(__file__).resolve().parent.parent.parent
README = ROOT / "README.md"
CLIENTS_DOC = ROOT / "docs" / "clients.md"

#: The zones of the sample lists/zones.yaml, which every snippet asks.
SAMPLE_ZONES = ("bl.example.test", "wl.example.test", "dbl.example.test")
#: What the keyed snippets show in place of a subscriber's key.
KEY = "KEY"

_SNIPPET = re.compile(r"<!-- snippet: (?P<name>[\w.-]+) -->\n```[^\n]*\n(?P<body>.*?)```\n<!-- /snippet -->", re.S)
_GENERATED = re.compile(r"(<!-- generated: (?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /generated -->)", re.S)
_ZONE = re.compile(r"(?<![\w-])(" + "|".join(re.escape(z) for z in SAMPLE_ZONES) + r")(?![\w-])")
#: Lines that name a zone for people (a rule's description, a reply text, a comment): never keyed.
_PROSE = re.compile(r"^\s*(describe|message|#)")


def parse_snippets(text: str, where: str = "page") -> dict[str, str]:
    """Every `<!-- snippet: NAME -->` code block of a page by name, each exactly as written."""
    found: dict[str, str] = {}
    for match in _SNIPPET.finditer(text):
        name = match["name"]
        if name in found:
            raise ValueError(f"{where}: snippet {name!r} is marked twice")
        found[name] = match["body"]
    return found


def generated_parts(text: str) -> dict[str, str]:
    """The body of every generated part of a page, by name."""
    return {m["name"]: m["body"] for m in _GENERATED.finditer(text)}


# --- the error-code table ---------------------------------------------------------------


def error_table() -> str:
    """Every error answer of publisher.errorcodes, and what is answered without a code."""
    rows = [
        "| code | name | TXT answered with it | when |",
        "|---|---|---|---|",
        *(f"| `{format_v4(e.code)}` | {e.name} | {e.txt} | {e.when} |" for e in errorcodes.TABLE),
    ]
    low, high = format_v4(errorcodes.ERROR_NET_START), format_v4(errorcodes.ERROR_NET_END)
    notes = (
        "Without a code, and so nothing for a client to misread: an ACL's `refuse` answers REFUSED "
        "and its `drop` nothing at all; its `empty` answers NXDOMAIN (not listed); a client network "
        "over `serve --rrl-qps` is dropped (`--rrl-answer drop`, the default) or sent an empty reply "
        f"with TC (`slip`), unless `--rrl-answer code` answers `{format_v4(errorcodes.OVER_QUOTA.code)}` "
        f"(or the `--rrl-code` chosen, any address from `{low}` to `{high}`). Every error answer carries "
        f"TTL {errorcodes.TTL}, so a resolver asks again within a minute."
    )
    return "\n".join(rows) + "\n\n" + textwrap.fill(notes, width=90, break_on_hyphens=False) + "\n"


# --- the keyed snippets -------------------------------------------------------------------


def keyed(text: str, key: str = KEY) -> str:
    """`text` with the key label right below each sample zone's apex in every lookup.

    Descriptions, reply texts and comments keep the plain name: they reach the log, the
    message headers or the sending client, and the key must not.
    """
    return "".join(
        line if _PROSE.match(line) else _ZONE.sub(lambda m: f"{key}.{m[1]}", line)
        for line in text.splitlines(keepends=True)
    )


def changed_lines(text: str, key: str = KEY) -> str:
    """Only the lines of `text` that the key changes, keyed, each stripped of its indent."""
    return "".join(k.lstrip() for p, k in zip(text.splitlines(True), keyed(text, key).splitlines(True)) if p != k)


#: main.cf lines that keep the key out of what Postfix tells the sending client.
POSTFIX_HIDE_KEY = """\
# the reply names the list by our TXT ("Listed by bl.example.test: ..."), not by the
# looked-up name, which holds the key
default_rbl_reply = $rbl_code Service unavailable; $rbl_class [$rbl_what] blocked${rbl_reason?; $rbl_reason}
postscreen_dnsbl_reply_map = texthash:/etc/postfix/dnsbl_reply_map
"""


def postscreen_reply_map(key: str = KEY) -> str:
    """/etc/postfix/dnsbl_reply_map: each keyed name to the name postscreen's 550 shows."""
    return "".join(f"{key}.{zone}    {zone}\n" for zone in SAMPLE_ZONES)


def _block(body: str) -> str:
    return "```\n" + body + "```\n"


#: Generated part name -> how it is made from the plain snippets of docs/clients.md.
KEYED: dict[str, Callable[[dict[str, str]], str]] = {
    "keyed-postfix": lambda s: _block(keyed(s["postfix-smtpd"]) + keyed(s["postfix-postscreen"]) + POSTFIX_HIDE_KEY),
    "keyed-postfix-reply-map": lambda s: _block(postscreen_reply_map()),
    "keyed-exim": lambda s: _block(keyed(s["exim"])),
    "keyed-spamassassin": lambda s: _block(changed_lines(s["spamassassin"])),
    "keyed-rspamd": lambda s: _block(changed_lines(s["rspamd"])),
}


# --- rewriting the pages --------------------------------------------------------------------


def expected_parts(text: str) -> dict[str, str]:
    """What each generated part of a page should hold (the error table on every page)."""
    parts = {"error-codes": error_table()}
    if "<!-- generated: keyed-" in text:
        snippets = parse_snippets(text)
        parts.update({name: make(snippets) for name, make in KEYED.items()})
    return parts


def render(text: str) -> str:
    """`text` with every generated part rewritten; an unknown part name is an error."""
    want = expected_parts(text)

    def fill(m: re.Match[str]) -> str:
        name = m["name"]
        if name not in want:
            raise ValueError(f"unknown generated part {name!r} (known: {', '.join(sorted(want))})")
        return m[1] + want[name] + m[4]

    return _GENERATED.sub(fill, text)


def stale(pages: Sequence[Path] = (README, CLIENTS_DOC)) -> list[Path]:
    """The pages whose generated parts differ from what render() makes."""
    return [page for page in pages if render(text := page.read_text()) != text]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m publisher.cli.docs", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report the pages that are out of date (exit 1)")
    args = parser.parse_args(argv)
    pages = stale()
    for page in pages:
        if args.check:
            print(f"{page.relative_to(ROOT)}: generated parts out of date; run `make docs`", file=sys.stderr)
        else:
            page.write_text(render(page.read_text()))
            print(f"rewrote {page.relative_to(ROOT)}")
    if not pages:
        print("docs up to date")
    return 1 if args.check and pages else 0


if __name__ == "__main__":
    sys.exit(main())
