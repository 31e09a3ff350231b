"""The one exception root, and the located problems that validation collects.

Every error the publisher raises on purpose derives from `PublisherError`; the CLI
catches it once and exits with its `exit_code`. Validation does not raise per
problem: it collects `Problem`s (each with a `Location`, a message and a fix) and
raises one `ValidationFailed` carrying all of them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Location:
    """Where something came from: a path relative to the lists root, 1-based line/col."""

    path: str
    line: int | None = None
    col: int | None = None

    def __str__(self) -> str:
        return self.shown()

    def shown(self, root: str = "") -> str:
        """`path:line:col`, the path under `root` (the lists folder as the user named it)."""
        text = f"{root.rstrip('/')}/{self.path}" if root and root != "." else self.path
        if self.line is not None:
            text += f":{self.line}"
            if self.col is not None:
                text += f":{self.col}"
        return text


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of validation. `code` is a stable rule id (tests and tools key on it)."""

    location: Location
    code: str
    message: str
    fix: str | None = None
    related: tuple[tuple[str, Location], ...] = ()
    severity: Severity = Severity.ERROR

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def format(self, root: str = "") -> str:
        """The problem as printed: `where: what [code]`, related places, then `fix:`."""
        prefix = "" if self.is_error else "warning: "
        lines = [f"{self.location.shown(root)}: {prefix}{self.message} [{self.code}]"]
        for label, where in self.related:
            lines.append(f"  {label}: {where.shown(root)}")
        if self.fix:
            lines.append(f"  fix: {self.fix}")
        return "\n".join(lines)


def sort_problems(problems: list[Problem]) -> list[Problem]:
    """Order problems by file, then line, then column, for stable output."""
    return sorted(
        problems,
        key=lambda p: (p.location.path, p.location.line or 0, p.location.col or 0, p.code),
    )


class PublisherError(Exception):
    """Root of every error the publisher raises on purpose."""

    exit_code = 1


class UsageError(PublisherError):
    """The command line was wrong."""

    exit_code = 2


class ValidationFailed(PublisherError):
    """The lists or the configuration have errors; nothing was compiled or written."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(sort_problems(problems))
        errors = sum(1 for p in self.problems if p.is_error)
        super().__init__(f"{errors} error(s) in the lists; nothing was published")


class ConfigError(PublisherError):
    """zones.yaml or a setting is unusable."""


class SnapshotError(PublisherError):
    """A snapshot file is corrupt, truncated or from an incompatible version."""


class ArtifactError(PublisherError):
    """Writing or reading the zones/ folder failed."""


class VcsError(PublisherError):
    """A git operation failed (bad revision, not a repository, ...)."""


class GuardRailError(PublisherError):
    """A publish was refused by a guard rail; --force overrides where allowed."""

    exit_code = 3


class SpfError(PublisherError):
    """`publisher refresh-spf` cannot run: a bad resolver setting, generated files with
    uncommitted changes, a partner not declared. Per-partner DNS failures are not errors:
    the refresh reports them and keeps what is listed."""


class ServerError(PublisherError):
    """The DNS server could not start (address in use, no zones, ...)."""


class WebError(PublisherError):
    """`publisher web` refuses what a visitor asked, with an HTTP status: the page shows the
    message, the API answers an RFC 9457 problem (`title`, `status`, `detail`, and `field`, the
    form field at fault). `retry_after`: seconds, for 429 and 503."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        field: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.field = field
        self.retry_after = retry_after
