"""`publisher web`: the face for the people on the other side of a listing.

A separate process that reads the published generation in zones/ (the one the DNS server
serves, reloaded when a publish lands) and shows it: a lookup page and a JSON API (OpenAPI),
a page per zone, and forms for delisting and allowlisting requests that, once the requester's
contact address is confirmed, become commits on their own branch in the lists repository for
maintainers to review (`publisher requests`). It never publishes: no module here reaches
publisher.publish beyond the zones/ reader (manifest) and git (vcs); tests/test_layers.py
checks that. docs/design.md, "The web face".
"""
