"""Migration: an rbldnsd data file -> list files and a zones.yaml snippet, checked against rbldnsd's answers.

Entry: `import_rbldnsd(text, zone=..., out=...)` -> `ImportResult`. Pure: text in,
texts and problems out. See docs/design.md.
"""

from publisher.importer.migrate import ImportResult, import_rbldnsd

__all__ = ["ImportResult", "import_rbldnsd"]
