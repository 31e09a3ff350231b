"""`publisher web`'s settings: where it reads, where it mails, and its limits (one frozen object,
made by the command line; the app, the view and the request service read it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class WebSettings:
    zones_dir: Path  # the published generations (zones/current)
    lists: Path  # the lists root; its git repository gets the request branches
    #: Links in mail and pages are built from this, never from the Host header.
    public_url: str = "http://127.0.0.1:8080"
    base: str | None = None  # the branch requests start from (None: the branch checked out in the lists repo)
    smtp: tuple[str, int] | None = None  # the mail relay; None: requests answer 503 "not taken here"
    mail_from: str = "dnsbl-requests@localhost"
    secret: bytes = b""  # HMAC key of the CSRF tokens and the confirmation links ($GIT_DIR/publisher/web.secret)
    site: str = "DNSBL lookup"  # the pages' title
    lookups_per_minute: int = 60  # per client network (/24, /56): pages and API together
    requests_per_hour: int = 5  # submissions per client network
    requests_per_day: int = 3  # submissions per contact address, and per requested address
    confirmations_per_hour: int = 20  # confirmation attempts per client network
    link_hours: int = 48  # how long a confirmation link works
    max_body: int = 16384  # bytes of a request body; more is 413 before it is read
    trusted_proxies: tuple[str, ...] = ()  # networks whose X-Forwarded-For names the client
