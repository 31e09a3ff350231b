"""A lists repository with an allowlist that declares partners by SPF, and a fake expansion."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tests.test_vcs import init_repo

from publisher.spf.result import Answer, Expansion, Resolver

ZONES_YAML = """\
zones:
  - name: wl.example.test
    kind: ip
    role: allow
    sources: ["wl/*.yaml", "wl/spf/*.yaml"]
    code: "127.0.10.1"
    txt: "{reason}"
    soa: {mname: ns1.example.test, rname: hostmaster.example.test}
    ns: [{name: ns1.example.test}]
    spf:
      dir: wl/spf
      schedule: {every: 1h, jitter: 0.2, budget: 10}
"""

PARTNERS = """\
entries:
  - ip: 9.9.9.9
    reason: a curated entry
    owner: Someone
  - spf: partner.example
    owner: Example Partner Ltd
    contact: postmaster@partner.example
  - spf: other.example
    owner: Other Ltd
    contact: postmaster@other.example
"""

FILES = {"zones.yaml": ZONES_YAML, "wl/partners.yaml": PARTNERS}
ZONE = "wl.example.test"


class FakeExpand:
    """`expand` answering from a table of canned expansions; records the calls."""

    def __init__(self, table: dict[str, Expansion]) -> None:
        self.table = table
        self.calls: list[tuple[str, int | None]] = []

    def __call__(self, domain: str, resolver: Resolver, *, max_queries: int | None = None) -> Expansion:
        self.calls.append((domain, max_queries))
        return self.table[domain]


class NoResolver:
    def query(self, name: str, rdtype: str) -> Answer:
        raise AssertionError("the fake expansion asks no DNS")


@pytest.fixture
def spf_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The lists folder of a fresh repository (git's identity only from the environment)."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for key in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(key, raising=False)
    return init_repo(tmp_path / "repo", FILES)


Factory = Callable[[], Resolver]
