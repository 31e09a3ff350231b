"""The types the web face's parts share: a request as the visitor fills it in, as the lists
see it, what filing it changes, and the two protocols between the HTTP routes (app, pages,
api), the request service (requests) and the published view (view).

A request goes: `RequestForm` (what was typed) -> `RequestService.submit` (checked, limited,
a confirmation link mailed; nothing written) -> `pending` (the link's page) -> `confirm`
(a `Filer`: an `Ask` becomes `Edit`s committed on a branch, `Filed`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from publisher.model import Kind, Role, ZonePage

RequestKind = Literal["delist", "allowlist"]
REQUEST_KINDS: tuple[RequestKind, ...] = ("delist", "allowlist")


@dataclass(frozen=True, slots=True)
class RequestForm:
    """A request as the visitor filled it in (page form or API body), not yet checked."""

    kind: RequestKind
    address: str  # delist: an address or a domain; allowlist: an address or a CIDR block
    organisation: str
    contact: str  # the mail address the confirmation link goes to
    reason: str
    zone: str | None = None  # allowlist: which allow zone (None: the only one taking requests)


@dataclass(frozen=True, slots=True)
class Ask:
    """A checked request as the lists see it: what filing turns into edits."""

    kind: RequestKind
    target: str  # normalised: an address (IPv4-mapped read as IPv4), a CIDR block, or a domain A-label
    zones: tuple[str, ...]  # the zones to edit (delist: the block zones listing it; allowlist: one allow zone)
    organisation: str
    contact: str
    reason: str
    client: str = ""  # the requester's address
    token: str = ""  # the confirmation's nonce: a second confirmation of one link finds the first filing


@dataclass(frozen=True, slots=True)
class Edit:
    """One change filing makes to a list file: an exclusion or an entry added, or an entry removed."""

    zone: str
    path: str  # lists-relative
    action: Literal["exclude", "remove", "add"]
    text: str  # the entry's YAML as written (exclude, add) or as it stood (remove)


@dataclass(frozen=True, slots=True)
class Filed:
    """A request committed on its own branch."""

    id: str  # YYYY-MM-DD-NNNN
    branch: str  # requests/<id> while open; the ref that keeps it once accepted or rejected
    commit: str
    edits: tuple[Edit, ...]
    already: bool  # the link was confirmed before: this is that filing
    state: Literal["open", "accepted", "rejected"] = "open"


@dataclass(frozen=True, slots=True)
class Submitted:
    """A request that passed the checks and the limits: its confirmation link is mailed."""

    kind: RequestKind
    target: str
    zones: tuple[str, ...]
    contact: str
    expires: dt.datetime  # when the link stops working (aware UTC)


@dataclass(frozen=True, slots=True)
class Pending:
    """What a confirmation link would file (shown before the visitor confirms)."""

    form: RequestForm
    target: str
    zones: tuple[str, ...]
    edits: tuple[Edit, ...]
    expires: dt.datetime


@dataclass(frozen=True, slots=True)
class Confirmed:
    """A confirmed request: its branch exists."""

    id: str
    branch: str
    zones: tuple[str, ...]
    already: bool


@dataclass(frozen=True, slots=True)
class ZoneFacts:
    """A published zone as the request service needs it."""

    name: str
    kind: Kind
    role: Role
    page: ZonePage


class Published(Protocol):
    """What the request service needs of the published view (view.PublicView provides it)."""

    def zone_facts(self) -> Mapping[str, ZoneFacts]:
        """Every published zone by name."""
        ...

    def listed_in(self, target: str) -> tuple[str, ...]:
        """The zones (block and allow) whose answer for `target` (an address or a domain, as
        normalised by the lists' rules) is not empty, in name order."""
        ...


class Filer(Protocol):
    """What the request service needs to turn an Ask into a branch (filing.RepoFiler provides it:
    the lists repository and its base branch). Every refusal is a WebError."""

    def plan_edits(self, ask: Ask, *, today: dt.date) -> tuple[Edit, ...]:
        """The edits filing would make, written nowhere (422 when the lists would refuse them)."""
        ...

    def file_request(self, ask: Ask, *, now: dt.datetime) -> Filed:
        """Commit the edits on a new branch requests/<id> (under the lock; idempotent by ask.token)."""
        ...

    def filed(self, token: str) -> Filed | None:
        """The filing of a confirmation (by its nonce), open or archived; None when not confirmed yet."""
        ...


class RequestService(Protocol):
    """What the routes call (requests.Requests provides it). Every refusal is a WebError."""

    def submit(self, form: RequestForm, client: str) -> Submitted: ...

    def pending(self, token: str) -> Pending: ...

    def confirm(self, token: str, client: str) -> Confirmed: ...
