"""Git-driven publisher of DNS blocklists and allowlists (DNSBL, DNSWL, RHSBL) with its own DNS server.

See docs/design.md for the stages and the data that passes between them.
"""

__version__ = "0.1.0"
