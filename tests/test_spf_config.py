"""zones.yaml `spf:` (partners declared by SPF): read into `SpfSettings` with its defaults, and
every setting that cannot work refused, located, with its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher.addresses import parse_v4
from publisher.lists.config import load_config
from publisher.lists.tree import DirTree
from publisher.partners import DAY, SharedPools, SpfSchedule, SpfSettings

ALLOW = """\
zones:
  - name: wl.example.test
    kind: ip
    role: allow
    sources: [wl/*.yaml, wl/spf/*.yaml]
    excludes: [wl/holes/*.yaml]
"""
BLOCK = """\
zones:
  - name: bl.example.test
    kind: ip
    role: block
    sources: [bl/*.yaml]
"""


def _load(tmp_path: Path, head: str, spf: str) -> tuple[SpfSettings | None, list[str]]:
    (tmp_path / "zones.yaml").write_text(head + spf)
    config, problems = load_config(DirTree(tmp_path))
    shown = [f"{p.location.line}:{p.location.col}: {p.message} [{p.code}] fix: {p.fix}" for p in problems]
    return (config.zones[0].spf if config else None), shown


def test_the_settings_and_their_defaults(tmp_path: Path) -> None:
    spf, problems = _load(tmp_path, ALLOW, "    spf: {dir: wl/spf}\n")
    assert problems == []
    assert spf == SpfSettings("wl/spf", SpfSchedule(6 * 3600, 0.1, 500), 14 * DAY, 0.5, SharedPools((), 65536, 65536))
    full = """\
    spf:
      dir: wl/spf
      schedule: {every: 90m, jitter: 0.2, budget: 50}
      grace: 3d
      max_removed_share: 0.3
      shared:
        providers: [_SPF.Google.com., spf.protection.outlook.com]
        max_ipv4: 4096
        max_ipv6_64s: 16
        code: 127.0.15.0
"""
    spf, problems = _load(tmp_path, ALLOW, full)
    assert problems == []
    assert spf == SpfSettings(
        "wl/spf",
        SpfSchedule(5400, 0.2, 50),
        3 * DAY,
        0.3,
        SharedPools(("_spf.google.com", "spf.protection.outlook.com"), 4096, 16, parse_v4("127.0.15.0")),
    )
    assert spf.generated_path("partner.example") == "wl/spf/partner.example.yaml"
    assert spf.partner_of("wl/spf/partner.example.yaml") == "partner.example"
    assert spf.partner_of("wl/partners.yaml") is None and spf.partner_of("wl/spf/x/y.yaml") is None


@pytest.mark.parametrize(
    ("head", "spf", "expected"),
    [
        (
            BLOCK,
            "    spf: {dir: bl/spf}\n",
            "6:10: `spf:` is for allow zones of kind ip (this is a block zone of kind ip) [bad-spf-settings] "
            "fix: move `spf:` and the partners' `- spf:` entries to an allowlist of addresses",
        ),
        (
            ALLOW,
            "    spf: {dir: partners/spf}\n",
            "7:16: the zone's sources (wl/*.yaml, wl/spf/*.yaml) do not read the generated files in partners/spf/ "
            "[bad-spf-settings] fix: add `partners/spf/*.yaml` to the zone's sources",
        ),
        (
            ALLOW,
            "    spf: {dir: wl/../bl}\n",
            "7:16: spf dir 'wl/../bl' must stay inside lists/ [bad-spf-settings] fix: write it relative to lists/, "
            "like wl/spf",
        ),
        (
            ALLOW.replace("sources: [wl/*.yaml, wl/spf/*.yaml]", "sources: [wl/*.yaml, wl/holes/*.yaml]"),
            "    spf: {dir: wl/holes}\n",
            "7:16: the generated files in wl/holes/ would be read as excludes [bad-spf-settings] fix: keep excludes "
            "elsewhere",
        ),
        (
            ALLOW,
            "    spf: {dir: wl/spf, schedule: {every: 30s}}\n",
            "7:42: refreshing every 30 s is too often [bad-spf-settings] fix: write 1m or more, like 6h",
        ),
        (
            ALLOW,
            "    spf: {dir: wl/spf, shared: {providers: ['*.google.com']}}\n",
            "7:45: provider '*.google.com' cannot be a wildcard [bad-spf-settings] fix: write the name alone",
        ),
        (
            ALLOW,
            "    spf: {dir: wl/spf, shared: {code: 127.0.0.1}}\n",
            "7:39: return code 127.0.0.1 is forbidden (it is what resolvers see for localhost) [bad-code]",
        ),
    ],
)
def test_settings_that_cannot_work_are_refused_located(tmp_path: Path, head: str, spf: str, expected: str) -> None:
    (tmp_path / "wl").mkdir(exist_ok=True)
    settings, problems = _load(tmp_path, head, spf)
    assert settings is None
    assert len(problems) == 1, problems  # one problem each: a block zone's dir is not judged too
    assert problems[0].startswith(expected), problems


def test_a_misspelt_key_is_named_with_the_right_one(tmp_path: Path) -> None:
    settings, problems = _load(tmp_path, ALLOW, "    spf: {dir: wl/spf, grcae: 3d}\n")
    assert settings is None and len(problems) == 1
    assert "grcae" in problems[0] and "grace" in problems[0] and "[unknown-key]" in problems[0]
    settings, problems = _load(tmp_path, ALLOW, "    spf: {dir: wl/spf, grace: 2 weeks}\n")
    assert problems == [
        "7:31: `grace` is not a duration [bad-value] fix: write a number of seconds, or a number with s, m, h or d, "
        "like 6h"
    ]
    settings, problems = _load(tmp_path, ALLOW, "    spf: {dir: /wl/spf/}\n")
    assert problems == [
        "7:16: `dir` is not a folder under lists/ (letters, digits, '_', '.', '-' and '/' between names, no leading "
        "or trailing '/') [bad-value] fix: write a folder under lists/ without a leading or trailing slash, like wl/spf"
    ]
