"""SPF records (RFC 7208) as allowlist sources: `publisher refresh-spf`.

`result` holds what an expansion gives (`Expansion`, `Found`, `Unlisted`) and the
`Resolver` protocol it asks DNS through; the expansion walks a partner's record
with RFC 7208's limits, the refresh turns it into a generated list file under the
zone's rules (docs/design.md, "Partners from SPF").
"""
