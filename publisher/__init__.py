"""Git-driven publisher of DNS blocklists and allowlists (DNSBL, DNSWL, RHSBL).

Flow: sources -> schema/validate -> compiler -> render/snapshot -> artifacts -> server.
"""

__version__ = "0.1.0"
