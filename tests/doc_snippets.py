"""Configuration snippets kept once, in the docs, and read from there by the tests.

Not a test module of its own: test_e2e_postfix.py builds Postfix's main.cf with the
snippet that docs/clients.md shows, and test_docs_clients.py checks the doc. A snippet
is the body of the fenced code block between two HTML comments that stay invisible on
rendered pages:

    <!-- snippet: postfix-smtpd -->
    ```
    smtpd_client_restrictions = ...
    ```
    <!-- /snippet -->
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENTS_DOC = ROOT / "docs" / "clients.md"

_BLOCK = re.compile(r"<!-- snippet: (?P<name>[\w.-]+) -->\n```[^\n]*\n(?P<body>.*?)```\n<!-- /snippet -->", re.S)


def snippets(doc: Path = CLIENTS_DOC) -> dict[str, str]:
    """Every marked snippet of `doc` by name, each exactly as written (ends with a newline)."""
    found: dict[str, str] = {}
    for match in _BLOCK.finditer(doc.read_text()):
        name = match["name"]
        if name in found:
            raise ValueError(f"{doc}: snippet {name!r} is marked twice")
        found[name] = match["body"]
    return found


def snippet(name: str, doc: Path = CLIENTS_DOC) -> str:
    try:
        return snippets(doc)[name]
    except KeyError:
        raise KeyError(f"{doc} has no snippet marked {name!r}") from None
