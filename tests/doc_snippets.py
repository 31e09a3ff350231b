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

The parsing is publisher.cli.docs's, which also makes the keyed variants from them.
"""

from __future__ import annotations

from pathlib import Path

from publisher.cli.docs import CLIENTS_DOC, parse_snippets

__all__ = ["CLIENTS_DOC", "snippet", "snippets"]


def snippets(doc: Path = CLIENTS_DOC) -> dict[str, str]:
    """Every marked snippet of `doc` by name, each exactly as written (ends with a newline)."""
    return parse_snippets(doc.read_text(), str(doc))


def snippet(name: str, doc: Path = CLIENTS_DOC) -> str:
    try:
        return snippets(doc)[name]
    except KeyError:
        raise KeyError(f"{doc} has no snippet marked {name!r}") from None
