"""zones.yaml `acl`, `keys: required` and allow_transfer keys: read into the model, every problem
located, and published: manifest round trip, old manifests, an ACL-only publish, the plan."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from tests.test_publish import FILES, NOW, ZONES_YAML, commit_file
from tests.test_vcs import init_repo

from publisher import codes, errorcodes
from publisher.addresses import parse_v4
from publisher.cli.report import plan_text
from publisher.errors import Location
from publisher.lists.config import load_config
from publisher.lists.load import load_lists
from publisher.lists.tree import DirTree
from publisher.model import AclRule, TransferKey
from publisher.publish.manifest import Manifest, load_published, read_manifest
from publisher.publish.release import publish
from publisher.server.zoneset import ZoneSet

HEAD = """\
zones:
  - name: bl.example.test
    kind: ip
    role: block
    sources: [bl/*.txt]
"""


def _load(tmp_path: Path, text: str, files: dict[str, str] | None = None) -> tuple[object, list[tuple[str, str, str]]]:
    (tmp_path / "bl").mkdir(exist_ok=True)
    (tmp_path / "bl" / "a.txt").write_text("192.0.2.1\n")
    for path, body in (files or {}).items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(body)
    (tmp_path / "zones.yaml").write_text(text)
    config, problems = load_config(DirTree(tmp_path))
    return config, [(p.code, str(p.location), p.message + " | fix: " + (p.fix or "")) for p in problems]


def test_rules_are_read_normalised_one_per_network(tmp_path: Path) -> None:
    text = """\
acl:
  - networks: [192.0.2.0/24, "2001:DB8:0::/32", 203.0.113.9]
    action: refuse
  - file: acl/open-resolvers.txt
    action: answer
    txt: "Queries via open resolvers are refused ({client})"
defaults:
  acl:
    - networks: [198.51.100.0/24]
      action: drop
zones:
  - name: bl.example.test
    kind: ip
    role: block
    sources: [bl/*.txt]
    keys: required
    allow_transfer:
      - 127.0.0.0/8
      - {key: Mirror-Acme.}
      - {key: mirror-beta, networks: [198.51.100.0/24]}
  - name: dbl.example.test
    kind: domain
    role: block
    sources: [bl/*.txt]
    acl:
      - networks: [10.0.0.0/8]
        action: answer
        code: 127.255.255.253
"""
    files = {"acl/open-resolvers.txt": "# resolvers\n\n8.8.8.8   # google\n  2001:4860::/32\n"}
    config, problems = _load(tmp_path, text, files)
    assert problems == []
    from publisher.model import Config

    assert isinstance(config, Config)
    refuse = [
        AclRule(n, "refuse", 0, "", Location("zones.yaml", 2, c))
        for n, c in (("192.0.2.0/24", 16), ("2001:db8::/32", 30), ("203.0.113.9", 49))
    ]
    text_ = "Queries via open resolvers are refused ({client})"
    code = errorcodes.ACL_ANSWER.code
    assert config.acl == (
        *refuse,
        AclRule("8.8.8.8", "answer", code, text_, Location("acl/open-resolvers.txt", 3, 1)),
        AclRule("2001:4860::/32", "answer", code, text_, Location("acl/open-resolvers.txt", 4, 3)),
    )
    assert config.acl_files == ("acl/open-resolvers.txt",)
    bl, dbl = config.zones
    assert bl.keyed and not dbl.keyed
    assert [(r.network, r.action) for r in bl.acl] == [("198.51.100.0/24", "drop")]  # from defaults
    assert dbl.acl == (
        AclRule("10.0.0.0/8", "answer", parse_v4("127.255.255.253"), errorcodes.KEY_REFUSED.txt, dbl.acl[0].location),
    )
    assert bl.allow_transfer == ("127.0.0.0/8",)
    assert [(k.key, k.networks) for k in bl.transfer_keys] == [
        ("mirror-acme", ()),
        ("mirror-beta", ("198.51.100.0/24",)),
    ]
    assert dbl.allow_transfer == ("127.0.0.0/8", "::1/128") and dbl.transfer_keys == ()
    # an ACL file is no list file: no unused-file warning for it
    loaded = load_lists(DirTree(tmp_path), as_of=NOW)
    assert not [p for p in loaded.problems if p.code == codes.UNUSED_FILE and p.location.path.startswith("acl/")]
    # only key entries: nobody unsigned (the loopback default does not come back)
    config, problems = _load(tmp_path, HEAD + "    allow_transfer: [{key: m}]\n")
    assert problems == [] and isinstance(config, Config)
    assert config.zones[0].allow_transfer == () and config.zones[0].transfer_keys == (
        TransferKey("m", (), config.zones[0].transfer_keys[0].location),
    )


ZONE_ACL = HEAD + "    acl:\n"
CASES = [
    (
        "malformed-network",
        ZONE_ACL + "      - {networks: [192.0.2.300/24], action: refuse}\n",
        {},
        (codes.BAD_ADDRESS, "zones.yaml:7:21", "192.0.2.300"),
    ),
    (
        "host-bits-in-zones-yaml",
        "acl:\n  - networks: [10.0.0.1/8]\n    action: drop\n" + HEAD,
        {},
        (codes.HOST_BITS, "zones.yaml:2:16", "'10.0.0.1/8' has host bits set below /8 | fix: write 10.0.0.0/8"),
    ),
    (
        "host-bits-in-the-file",
        ZONE_ACL + "      - {file: acl/x.txt, action: refuse}\n",
        {"acl/x.txt": "# ok\n192.0.2.0/24\n  198.51.100.7/24  # oops\n"},
        (
            codes.HOST_BITS,
            "acl/x.txt:3:3",
            "'198.51.100.7/24' has host bits set below /24 | fix: write 198.51.100.0/24",
        ),
    ),
    (
        "malformed-line-in-the-file",
        ZONE_ACL + "      - {file: acl/x.txt, action: refuse}\n",
        {"acl/x.txt": "192.0.2.0/24 198.51.100.0/24\n"},
        (codes.BAD_ADDRESS, "acl/x.txt:1:1", "is not one network | fix: write one IPv4 or IPv6 network"),
    ),
    (
        "missing-file",
        ZONE_ACL + "      - {file: acl/resolvers.txt, action: refuse}\n",
        {"acl/resolver.txt": "192.0.2.0/24\n"},
        (
            codes.ACL_FILE_MISSING,
            "zones.yaml:7:16",
            "'acl/resolvers.txt' is not in the lists folder | fix: did you mean acl/resolver.txt?",
        ),
    ),
    (
        "file-outside-lists",
        ZONE_ACL + "      - {file: ../secrets.txt, action: refuse}\n",
        {},
        (codes.BAD_ACL, "zones.yaml:7:16", "must stay inside lists/"),
    ),
    (
        "file-is-a-source",
        ZONE_ACL + "      - {file: bl/a.txt, action: refuse}\n",
        {},
        (
            codes.ACL_FILE_IS_SOURCE,
            "zones.yaml:7:16",
            "matched by the sources glob 'bl/*.txt' of bl.example.test: its networks would be published as listings",
        ),
    ),
    (
        "file-is-an-excludes-file",
        "acl:\n  - {file: ex/acl.txt, action: drop}\n" + HEAD + "    excludes: [ex/*.txt]\n",
        {"ex/acl.txt": "192.0.2.0/24\n"},
        (codes.ACL_FILE_IS_SOURCE, "zones.yaml:2:12", "the excludes glob 'ex/*.txt' of bl.example.test"),
    ),
    (
        "neither-networks-nor-file",
        ZONE_ACL + "      - {action: refuse}\n",
        {},
        (codes.BAD_ACL, "zones.yaml:7:9", "names no clients | fix: give either `networks: [...]` or `file: PATH`"),
    ),
    (
        "both-networks-and-file",
        ZONE_ACL + "      - {networks: [192.0.2.0/24], file: acl/x.txt, action: refuse}\n",
        {"acl/x.txt": ""},
        (codes.BAD_ACL, "zones.yaml:7:9", "has both `networks` and `file`"),
    ),
    (
        "code-with-another-action",
        ZONE_ACL + "      - {networks: [192.0.2.0/24], action: refuse, code: 127.255.255.254}\n",
        {},
        (codes.BAD_ACL, "zones.yaml:7:52", "`code` is only for `action: answer`; this rule's action is refuse"),
    ),
    (
        "txt-with-another-action",
        ZONE_ACL + "      - {networks: [192.0.2.0/24], action: empty, txt: go away}\n",
        {},
        (codes.BAD_ACL, "zones.yaml:7:51", "`txt` is only for `action: answer`"),
    ),
    (
        "listing-like-code",
        ZONE_ACL + "      - {networks: [192.0.2.0/24], action: answer, code: 127.0.0.2}\n",
        {},
        (
            codes.BAD_CODE,
            "zones.yaml:7:58",
            "127.0.0.2 is not in 127.255.255.0/24: a mail server reads it as a listing and rejects mail",
        ),
    ),
    (
        "malformed-code",
        ZONE_ACL + "      - {networks: [192.0.2.0/24], action: answer, code: 127.255.255}\n",
        {},
        (codes.BAD_CODE, "zones.yaml:7:58", "acl `code`"),
    ),
    (
        "unknown-placeholder",
        ZONE_ACL + "      - {networks: [192.0.2.0/24], action: answer, txt: 'refused {ip}'}\n",
        {},
        (codes.BAD_TEMPLATE, "zones.yaml:7:57", "unknown placeholder {ip}; an ACL answer knows only {client}"),
    ),
    (
        "txt-too-long",
        ZONE_ACL + "      - {networks: [192.0.2.0/24], action: answer, txt: '" + "{client}" * 40 + "'}\n",
        {},
        (codes.TXT_TOO_LONG, "zones.yaml:7:57", "1560 bytes with the longest client address in each {client}"),
    ),
    (
        "same-network-two-actions",
        ZONE_ACL + "      - {networks: [192.0.2.0/24], action: refuse}\n      - {file: acl/x.txt, action: drop}\n",
        {"acl/x.txt": "192.0.2.0/24\n"},
        (
            codes.ACL_CONFLICT,
            "acl/x.txt:1:1",
            "192.0.2.0/24 is in this ACL twice: action drop here, refuse in the rule first at zones.yaml:7:21",
        ),
    ),
    (
        "v4-mapped",
        ZONE_ACL + "      - {networks: ['::ffff:192.0.2.0/120'], action: refuse}\n",
        {},
        (codes.V4_MAPPED, "zones.yaml:7:21", "the server sees such a client as its IPv4 address"),
    ),
    (
        "transfer-key-name",
        HEAD + "    allow_transfer: [{key: 'mirror acme'}]\n",
        {},
        (codes.BAD_NAME, "zones.yaml:6:28", "TSIG key name 'mirror acme' is not a DNS name"),
    ),
    (
        "transfer-key-twice",
        HEAD + "    allow_transfer: [{key: m1}, {key: M1.}]\n",
        {},
        (codes.DUPLICATE_TRANSFER_KEY, "zones.yaml:6:39", "TSIG key m1 is in allow_transfer twice"),
    ),
    (
        "transfer-key-network",
        HEAD + "    allow_transfer: [{key: m1, networks: [10.0.0.1/8]}]\n",
        {},
        (codes.HOST_BITS, "zones.yaml:6:43", "'10.0.0.1/8' has host bits"),
    ),
    (
        "keys-typo",
        HEAD + "    keys: requried\n",
        {},
        (codes.BAD_VALUE, "zones.yaml:6:11", "'requried' is not a valid `keys`; it is one of: required, none"),
    ),
    (
        "answer-typo",
        ZONE_ACL + "      - {networks: [192.0.2.0/24], action: anwser}\n",
        {},
        (codes.BAD_VALUE, "zones.yaml:7:44", "did you mean `answer`?"),
    ),
]


@pytest.mark.parametrize(("name", "text", "files", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_problem_is_located_with_a_fix(
    tmp_path: Path, name: str, text: str, files: dict[str, str], expected: tuple[str, str, str]
) -> None:
    config, problems = _load(tmp_path, text, files)
    code, where, words = expected
    assert config is None, name
    assert [(c, loc) for c, loc, _ in problems] == [(code, where)], problems
    assert words in problems[0][2]


def test_the_same_network_twice_with_one_action_is_a_warning(tmp_path: Path) -> None:
    text = ZONE_ACL + "      - {networks: [192.0.2.0/24, 192.0.2.0/24], action: refuse}\n"
    config, problems = _load(tmp_path, text)
    assert problems == [
        (
            codes.ACL_DUPLICATE,
            "zones.yaml:7:35",
            "192.0.2.0/24 is in this ACL twice (action refuse both times) | fix: remove one of the two",
        )
    ]
    assert config is not None and len(config.zones[0].acl) == 1  # type: ignore[attr-defined]


def test_too_many_bad_lines_in_an_acl_file_are_counted(tmp_path: Path) -> None:
    lines = "".join(f"not-a-network-{i}\n" for i in range(500))
    _, problems = _load(tmp_path, ZONE_ACL + "      - {file: acl/x.txt, action: refuse}\n", {"acl/x.txt": lines})
    assert len(problems) == 21 and problems[-1][:2] == (codes.TOO_MANY_PROBLEMS, "acl/x.txt")
    assert "480 more bad lines in acl/x.txt" in problems[-1][2]


# --- published -------------------------------------------------------------------------

ACL_YAML = ZONES_YAML.replace(
    "zones:\n",
    "acl:\n  - networks: [192.0.2.0/24]\n    action: refuse\nzones:\n",
).replace(
    '    sources: ["bl/*.yaml"]\n',
    '    sources: ["bl/*.yaml"]\n    keys: required\n    acl:\n'
    "      - {networks: [198.51.100.0/24, 203.0.113.0/24], action: drop}\n"
    "    allow_transfer: [127.0.0.0/8, {key: mirror-acme, networks: [198.51.100.0/24]}]\n",
)


def test_an_acl_only_change_is_a_new_generation_with_the_same_serials(tmp_path: Path) -> None:
    lists = init_repo(tmp_path / "repo", FILES)
    zones = tmp_path / "zones"
    first = publish(lists, zones, now=NOW)
    before = read_manifest(zones)
    assert before is not None and before.acl is None  # no ACL: the manifest is as before
    assert all(e.meta.acl is None and e.meta.keyed is None for e in before.zones.values())
    commit_file(lists, "zones.yaml", ACL_YAML, "who may query")
    second = publish(lists, zones, now=NOW + dt.timedelta(hours=1))
    after = read_manifest(zones)
    assert after is not None and second.written and after.generation != before.generation
    assert {n: e.serial for n, e in after.zones.items()} == {n: e.serial for n, e in before.zones.items()}
    assert not second.prepared.changed
    text = "\n".join(plan_text(second.prepared, 20))
    assert "note: the server-wide acl: 1 network added (refuse)" in text
    assert "note: acl of bl.example.test: 2 networks added (drop)" in text
    assert "note: bl.example.test: keys now required (keys: required)" in text
    assert "note: allow_transfer of bl.example.test: TSIG key mirror-acme added" in text
    # in the manifest, and on to the server's ZoneSet
    data = json.loads((zones / "current" / "manifest.json").read_text())
    assert data["acl"] == [{"network": "192.0.2.0/24", "action": "refuse"}]
    bl = data["zones"]["bl.example.test"]
    assert bl["acl"] == [
        {"network": "198.51.100.0/24", "action": "drop"},
        {"network": "203.0.113.0/24", "action": "drop"},
    ]
    assert bl["keyed"] is True and bl["allow_transfer"] == ["127.0.0.0/8"]
    assert bl["transfer_keys"] == [{"key": "mirror-acme", "networks": ["198.51.100.0/24"]}]
    assert "acl" not in data["zones"]["wl.example.test"] and "keyed" not in data["zones"]["wl.example.test"]
    zs = ZoneSet.from_published(load_published(zones))
    assert [(r.network, r.action) for r in zs.acl] == [("192.0.2.0/24", "refuse")]
    served = zs.zones["bl.example.test"].settings
    assert served.keyed and [r.network for r in served.acl] == ["198.51.100.0/24", "203.0.113.0/24"]
    assert not zs.zones["wl.example.test"].settings.keyed and zs.zones["wl.example.test"].settings.acl == ()
    # the same again: nothing to publish; the parse cache kept every file (no file changed)
    third = publish(lists, zones, now=NOW + dt.timedelta(hours=2))
    assert not third.written and first.written
    # an answer rule's code changes: the plan says so
    commit_file(lists, "zones.yaml", ACL_YAML.replace("action: refuse", "action: answer"), "answer instead")
    fourth = publish(lists, zones, now=NOW + dt.timedelta(hours=3))
    assert fourth.written and "note: the server-wide acl: 1 network changed, now (answer 127.255.255.254)" in "\n".join(
        plan_text(fourth.prepared, 20)
    )


def test_acl_settings_leave_the_parse_cache_key_alone(tmp_path: Path) -> None:
    from publisher.publish.cache import source_key

    config, _ = _load(tmp_path, HEAD)
    keyed, _ = _load(
        tmp_path,
        HEAD + "    keys: required\n    acl: [{networks: [192.0.2.0/24], action: drop}]\n"
        "    allow_transfer: [{key: m}]\n",
    )
    assert config is not None and keyed is not None
    plain_zone, keyed_zone = config.zones[0], keyed.zones[0]  # type: ignore[attr-defined]
    assert keyed_zone.acl and keyed_zone.keyed and keyed_zone.transfer_keys
    assert source_key("bl/a.txt", "blob", plain_zone) == source_key("bl/a.txt", "blob", keyed_zone)


def test_the_manifest_round_trips_and_an_old_one_still_loads(tmp_path: Path) -> None:
    lists = init_repo(tmp_path / "repo", {**FILES, "zones.yaml": ACL_YAML})
    zones = tmp_path / "zones"
    publish(lists, zones, now=NOW)
    path = zones / "current" / "manifest.json"
    text = path.read_text()
    manifest = Manifest.loads(text, path)
    assert manifest.dumps() == text
    bl = manifest.zones["bl.example.test"].meta
    assert bl.keyed and bl.transfer_keys == (TransferKey("mirror-acme", ("198.51.100.0/24",)),)
    assert manifest.acl == (AclRule("192.0.2.0/24", "refuse"),)
    # an older manifest: no acl, keyed or transfer_keys anywhere; it loads, with the defaults
    old = json.loads(text)
    del old["acl"]
    for entry in old["zones"].values():
        for key in ("acl", "keyed", "transfer_keys"):
            entry.pop(key, None)
    path.write_text(json.dumps(old))
    zs = ZoneSet.from_published(load_published(zones))
    assert zs.acl == () and not zs.zones["bl.example.test"].settings.keyed
    assert dict(zs.zones["bl.example.test"].settings.transfer_keys) == {}
    # a malformed field is named
    old["zones"]["bl.example.test"]["acl"] = [{"network": "192.0.2.0/24", "action": "deny"}]
    with pytest.raises(Exception, match=r"acl\[0\]\.action: expected one of pass, refuse, drop, empty, answer"):
        Manifest.from_json(old, path)


def test_the_plan_names_allow_transfer_networks_and_a_first_publish_names_the_acl(tmp_path: Path) -> None:
    """Who may transfer changes with a network as much as with a key; a first publish says what it sets."""
    lists = init_repo(tmp_path / "repo", {**FILES, "zones.yaml": ACL_YAML})
    zones = tmp_path / "zones"
    first = publish(lists, zones, now=NOW)
    text = "\n".join(plan_text(first.prepared, 20))
    assert "note: the server-wide acl: 1 network added (refuse)" in text
    assert "note: bl.example.test: keys now required (keys: required)" in text
    assert "allow_transfer of bl.example.test: TSIG key mirror-acme added" in text
    assert "127.0.0.0/8 added" not in text  # nothing was published before: networks are not news
    commit_file(lists, "zones.yaml", ACL_YAML.replace("[127.0.0.0/8, {key", "[127.0.0.1/32, {key"), "narrower")
    second = publish(lists, zones, now=NOW + dt.timedelta(hours=1))
    text = "\n".join(plan_text(second.prepared, 20))
    assert second.written and "note: allow_transfer of bl.example.test: 127.0.0.1/32 added, 127.0.0.0/8 removed" in text
