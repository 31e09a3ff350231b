"""deploy/: the files docs/scaling.md tells an operator to copy are ones the real tools accept.

NSD's and BIND's own checkers read the example secondary configurations (with the
placeholders an operator replaces filled in, and paths moved into a tmp dir), and refuse
an unedited copy, naming the secret; `systemd-analyze verify` reads the unit (its paths
moved onto this checkout's virtualenv), and `systemd-analyze security` rates its
sandboxing. The secondaries ask for exactly the sample zones, and the unit runs
`serve --watch` (TSIG only with the drop-in publisher.service.d/tsig.conf), and its ExecStart,
run as written on a tmp two-clone layout, publishes and serves. And the walk-through of
docs/scaling.md on one machine: a real NSD with
deploy/nsd-secondary.conf (filled in) takes the sample zones from our server, AXFR after
NOTIFY, TSIG-signed with `xfr-key`, and answers with the publisher's serial.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from tests.conftest import LISTS, ROOT, free_port, require_tool, stop_process

from publisher.lists.tree import DirTree
from publisher.publish.build import compile_tree, write_build
from publisher.publish.manifest import Source
from test_server_secondary import NSD_CONF

DEPLOY = ROOT / "deploy"
SECRET_PLACEHOLDER = "REPLACE-WITH-THE-XFR-KEY-SECRET"
PUBLISHER = "192.0.2.10"  # the documentation address the examples use for the publisher
SAMPLE_ZONES = re.findall(r"^  - name: (\S+)$", (LISTS / "zones.yaml").read_text(), re.M)
#: `systemd-analyze security` exposure (0 safest .. 10); the unit rates 1.9 "OK" today.
MAX_EXPOSURE = 3.0


def secret() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def filled(name: str, paths: dict[str, str], tmp_path: Path) -> Path:
    """deploy/NAME with the secret set and the system paths moved under tmp_path."""
    text = (DEPLOY / name).read_text().replace(SECRET_PLACEHOLDER, secret())
    for old, new in paths.items():
        text = text.replace(old, new)
    out = tmp_path / name
    out.write_text(text)
    return out


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd="/")


def test_sample_zones_were_found() -> None:
    assert SAMPLE_ZONES == ["bl.example.test", "wl.example.test", "dbl.example.test", "ebl.example.test"]


def test_the_zones_yaml_of_the_scaling_guide_is_valid(tmp_path: Path) -> None:
    """The `listen` / `ns` / `secondaries` block of docs/scaling.md, merged into the sample
    zones.yaml, validates, and every zone gets the two secondaries with their key."""
    from publisher.lists.load import load_lists

    block = re.search(r"```yaml\n(.*?)```", (ROOT / "docs" / "scaling.md").read_text(), re.S)
    assert block is not None
    doc = yaml.safe_load(block[1])
    lists = tmp_path / "lists"
    shutil.copytree(LISTS, lists)
    config = yaml.safe_load((lists / "zones.yaml").read_text())
    config["listen"] = doc["listen"]
    config["defaults"].update(doc["defaults"])
    (lists / "zones.yaml").write_text(yaml.safe_dump(config))
    loaded = load_lists(DirTree(lists), as_of=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    assert not loaded.errors, [p.format() for p in loaded.errors]
    assert loaded.config is not None
    for zone in loaded.config.zones:
        assert [(s.address, s.tsig_key) for s in zone.secondaries] == [
            ("192.0.2.53", "xfr-key"),
            ("198.51.100.53", "xfr-key"),
        ]
        assert [n.name for n in zone.ns] == ["ns1.example.test", "ns2.example.test"]


# --- NSD --------------------------------------------------------------------------------


def test_nsd_checkconf_accepts_the_secondary_example(tmp_path: Path) -> None:
    checkconf = require_tool("nsd-checkconf")
    conf = filled("nsd-secondary.conf", {"/var/lib/nsd": str(tmp_path)}, tmp_path)
    done = run(checkconf, str(conf))
    assert done.returncode == 0, done.stdout + done.stderr
    zones = run(checkconf, "-o", "zones", str(conf)).stdout.split()
    assert sorted(zones) == sorted(SAMPLE_ZONES)
    for zone in SAMPLE_ZONES:
        assert run(checkconf, "-z", zone, "-o", "request-xfr", str(conf)).stdout.strip() == f"{PUBLISHER}@53 xfr-key"
        assert run(checkconf, "-z", zone, "-o", "allow-notify", str(conf)).stdout.strip() == f"{PUBLISHER} xfr-key"
    assert run(checkconf, "-s", "xfr-key", str(conf)).returncode == 0  # the key is defined


def test_nsd_refuses_the_example_until_the_secret_is_set() -> None:
    checkconf = require_tool("nsd-checkconf")
    done = run(checkconf, str(DEPLOY / "nsd-secondary.conf"))
    assert done.returncode != 0 and "xfr-key" in done.stdout + done.stderr


# The test-only server part of an NSD config (ports, no chroot, files in a temp dir).
NSD_SERVER = NSD_CONF


def test_the_nsd_example_takes_the_sample_zones_from_the_publisher_with_tsig(tmp_path: Path) -> None:
    """docs/scaling.md on one machine: zones.yaml names the secondary and its key, the
    server gets the key file, NSD gets deploy/nsd-secondary.conf with the three REPLACE
    spots filled in (and a `server:` clause for a private instance on a free port)."""
    # the server tests' helpers, imported here so that only this test depends on them
    from tests.test_server import dig, start_server
    from tests.test_server_secondary import _wait_transferred

    nsd = require_tool("nsd")
    require_tool("dig")
    key_secret = secret()
    keyfile = tmp_path / "xfr-key.conf"
    keyfile.write_text(f'key "xfr-key" {{\n\talgorithm hmac-sha256;\n\tsecret "{key_secret}";\n}};\n')
    keyfile.chmod(0o600)
    nsd_port = free_port()
    lists = tmp_path / "lists"
    shutil.copytree(LISTS, lists)
    config = yaml.safe_load((lists / "zones.yaml").read_text())
    config["defaults"]["secondaries"] = [
        {"address": "127.0.0.1", "port": nsd_port, "notify": True, "tsig_key": "xfr-key"}
    ]
    (lists / "zones.yaml").write_text(yaml.safe_dump(config))
    now = dt.datetime.now(dt.UTC)
    manifest, _ = write_build(
        tmp_path / "zones", compile_tree(DirTree(lists), as_of=now), source=Source(kind="test"), now=now
    )
    serial = manifest.zones["bl.example.test"].serial

    primary = start_server(tmp_path / "zones", "--tsig-keys", str(keyfile))
    nsd_dir = tmp_path / "nsd"
    nsd_dir.mkdir()
    example = (DEPLOY / "nsd-secondary.conf").read_text()
    example = (
        example.replace(SECRET_PLACEHOLDER, key_secret)
        .replace("/var/lib/nsd", str(nsd_dir))
        .replace(f"{PUBLISHER}@53", f"127.0.0.1@{primary.port}")
        .replace(PUBLISHER, "127.0.0.1")
    )
    (nsd_dir / "nsd.conf").write_text(NSD_SERVER.format(port=nsd_port, dir=nsd_dir) + example)
    proc = subprocess.Popen(
        [nsd, "-d", "-c", str(nsd_dir / "nsd.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for zone in SAMPLE_ZONES:
            primary.wait_for(rf"AXFR of {re.escape(zone)} serial {serial} to 127\.0\.0\.1 \(TSIG xfr-key\)")
        _wait_transferred(nsd_port, serial)
        # what `dig` shows a new user: the secondary's serial is the publisher's
        for zone in SAMPLE_ZONES:
            assert dig(nsd_port, zone, "SOA").answer[0][3].split()[2] == str(serial)
        txt = dig(nsd_port, "2.0.0.127.bl.example.test", "TXT").answer[0][3]
        assert txt == '"Listed by bl.example.test: RFC 5782 test point"', txt
        # the secondary's address alone no longer gets the zone: it has to sign
        digp = require_tool("dig")
        unsigned = run(digp, "-p", str(primary.port), "@127.0.0.1", "bl.example.test", "AXFR")
        assert "Transfer failed" in unsigned.stdout
        signed = run(digp, "-k", str(keyfile), "-p", str(primary.port), "@127.0.0.1", "bl.example.test", "AXFR")
        assert "Transfer failed" not in signed.stdout and signed.stdout.count("\tSOA\t") == 2
    finally:
        stop_process(proc)
        primary.stop()


# --- BIND -------------------------------------------------------------------------------


def test_named_checkconf_accepts_the_secondary_example(tmp_path: Path) -> None:
    checkconf = require_tool("named-checkconf")
    conf = filled("named-secondary.conf", {"/var/cache/bind": str(tmp_path)}, tmp_path)
    done = run(checkconf, str(conf))
    assert done.returncode == 0, done.stdout + done.stderr
    canonical = run(checkconf, "-p", str(conf)).stdout  # the configuration as named reads it
    zones = re.findall(r'^zone "([^"]+)" \{\n\ttype secondary;', canonical, re.M)
    assert zones == SAMPLE_ZONES
    assert re.search(rf'primaries "dnsbl-publisher" \{{\n\t{re.escape(PUBLISHER)} port 53 key "xfr-key";', canonical)
    assert canonical.count('primaries {\n\t\t"dnsbl-publisher";') == len(SAMPLE_ZONES)


def test_named_refuses_the_example_until_the_secret_is_set() -> None:
    checkconf = require_tool("named-checkconf")
    done = run(checkconf, str(DEPLOY / "named-secondary.conf"))
    assert done.returncode != 0 and "secret" in done.stdout + done.stderr


# --- systemd ----------------------------------------------------------------------------

UNIT = DEPLOY / "publisher.service"
TSIG_DROP_IN = DEPLOY / "publisher.service.d" / "tsig.conf"
CODE, LISTS_CLONE = "/srv/dnsbl", "/srv/dnsbl-lists"  # the two clones of docs/scaling.md


def moved(text: str, code: Path, lists: Path) -> str:
    """A unit text with the two clones moved (in one pass: the lists' path starts with the code's)."""
    return re.sub(r"/srv/dnsbl(-lists)?\b", lambda m: str(lists if m[1] else code), text)


def fake_code_clone(code: Path) -> None:
    """/srv/dnsbl stand-in: .venv/bin/publisher runs this checkout's publisher with this Python."""
    bin_dir = code / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "publisher"
    script.write_text(f'#!/bin/sh\nexec {sys.executable} -m publisher "$@"\n')
    script.chmod(0o755)


def environment(*texts: str, creds: str = "/run/credentials/dnsbl-publisher.service") -> dict[str, str]:
    """The Environment= assignments of a unit and its drop-ins, %d resolved as systemd does."""
    env: dict[str, str] = {}
    for text in texts:
        for value in re.findall(r"^Environment=(.*)$", text, re.M):
            for assignment in shlex.split(value):
                key, _, val = assignment.partition("=")
                env[key] = val.replace("%d", creds)
    return env


def exec_start(text: str, env: dict[str, str], creds: str = "/run/credentials/dnsbl-publisher.service") -> list[str]:
    """The argv systemd runs for the unit's ExecStart=: an unquoted $VAR becomes its words
    (none when unset), %d the credentials directory."""
    line = re.search(r"^ExecStart=(.*)$", text, re.M)
    assert line is not None
    argv: list[str] = []
    for word in shlex.split(line[1]):
        var = re.fullmatch(r"\$(\w+)", word)
        argv += env.get(var[1], "").split() if var else [word.replace("%d", creds)]
    return argv


@pytest.fixture
def unit(tmp_path: Path) -> Path:
    """The unit, its /srv/dnsbl moved to a folder whose .venv/bin/publisher runs this checkout."""
    clone = tmp_path / "srv"
    fake_code_clone(clone)
    path = tmp_path / "dnsbl-publisher.service"
    path.write_text(moved(UNIT.read_text(), clone, tmp_path / "srv-lists"))
    return path


def _systemd_analyze() -> str:
    # optional even under CI: a machine without systemd has no use for the unit
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (package systemd): the unit is not checked")
    probe = run(tool, "verify", "--help")
    if probe.returncode != 0:
        pytest.skip(f"this systemd-analyze has no `verify`: {probe.stderr.strip()}")
    return tool


def _verify(tool: str, unit: Path) -> None:
    done = run(tool, "verify", "--man=no", str(unit))
    # verify only warns (exit 0) about a misspelt value: any output is a failure
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done.stdout + done.stderr


def test_systemd_analyze_verify_accepts_the_unit(unit: Path) -> None:
    _verify(_systemd_analyze(), unit)


def test_systemd_analyze_verify_accepts_the_unit_with_the_tsig_drop_in(unit: Path) -> None:
    """The drop-in as docs/scaling.md installs it: dnsbl-publisher.service.d/tsig.conf."""
    tool = _systemd_analyze()
    drop_ins = unit.parent / f"{unit.name}.d"
    drop_ins.mkdir()
    (drop_ins / "tsig.conf").write_text(TSIG_DROP_IN.read_text())
    _verify(tool, unit)
    # verify reads the drop-in folder next to the unit: a misspelt key there is reported
    (drop_ins / "typo.conf").write_text("[Service]\nLoadCredentials=x:/y\n")
    done = run(tool, "verify", "--man=no", str(unit))
    assert "LoadCredentials" in done.stdout + done.stderr


def test_the_unit_is_sandboxed(unit: Path) -> None:
    tool = _systemd_analyze()
    done = run(tool, "security", "--offline=true", "--no-pager", str(unit))
    if done.returncode != 0 and "offline" in done.stderr:
        pytest.skip(f"systemd-analyze security has no --offline here: {done.stderr.strip()}")
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert m, done.stdout + done.stderr
    assert float(m[1]) <= MAX_EXPOSURE, done.stdout


def test_the_unit_runs_serve_watch_with_port_53_rights() -> None:
    text = UNIT.read_text()
    argv = exec_start(text, {})
    assert argv[0] == f"{CODE}/.venv/bin/publisher" and "serve" in argv and "--watch" in argv
    for line in (
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        f"ReadWritePaths={CODE}/zones {LISTS_CLONE}",
        "Restart=on-failure",
    ):
        assert re.search(rf"^{re.escape(line)}$", text, re.M), line


def test_tsig_is_the_drop_in_s_business() -> None:
    """Without the drop-in the unit needs no key file (LoadCredential= of a missing file fails
    the start with 243/CREDENTIALS); with it, the credential and --tsig-keys come together."""
    from publisher.cli.app import build_parser

    text, drop_in = UNIT.read_text(), TSIG_DROP_IN.read_text()
    assert not re.search(r"^LoadCredential", text, re.M) and "tsig" not in " ".join(exec_start(text, {}))
    assert build_parser().parse_args(exec_start(text, environment(text))[1:]).tsig_keys is None
    assert re.findall(r"^LoadCredential=(.*)$", drop_in, re.M) == ["xfr-key.conf:/etc/dnsbl/xfr-key.conf"]
    creds = "/run/credentials/dnsbl-publisher.service"
    args = build_parser().parse_args(exec_start(text, environment(text, drop_in, creds=creds), creds)[1:])
    assert str(args.tsig_keys) == f"{creds}/xfr-key.conf"
    assert args.command == "serve" and args.watch and args.interval == 60


def test_the_unit_watches_a_lists_repository_apart_from_the_code() -> None:
    """Whoever can push lists must not be able to change the code the service runs: the lists
    live in a clone of their own, and the service may write neither the code nor its clone."""
    from publisher.cli.app import build_parser

    text = UNIT.read_text()
    code = Path(re.findall(r"^WorkingDirectory=(\S+)$", text, re.M)[0])
    argv = exec_start(text, {})
    assert Path(argv[0]).is_relative_to(code)  # the code runs from there
    args = build_parser().parse_args(argv[1:])
    assert not args.lists.is_relative_to(code), f"the lists {args.lists} are inside the code checkout {code}"
    writable = [Path(p) for p in re.findall(r"^ReadWritePaths=(.*)$", text, re.M)[0].split()]
    assert args.lists in writable and args.zones in writable
    assert not any(code.is_relative_to(w) for w in writable)  # the code (and its .git) stays read-only


def test_the_unit_s_command_serves_a_fresh_two_clone_layout(tmp_path: Path) -> None:
    """The ExecStart= of the unit, run as it stands (paths moved to a tmp two-clone layout,
    PUBLISHER_OPTS as /etc/default/dnsbl-publisher would set it): on an empty zones/ it
    publishes HEAD of the lists, serves it, and then publishes and serves a pushed commit."""
    from tests.test_server import Served, dig
    from tests.test_vcs import commit_all, git, init_repo

    require_tool("dig")
    code, lists = tmp_path / "srv" / "dnsbl", tmp_path / "srv" / "dnsbl-lists"
    fake_code_clone(code)
    (code / "zones").mkdir()  # install -d -o dnsbl /srv/dnsbl/zones: empty
    init_repo(tmp_path / "start", lists_from=LISTS, subdir="")  # zones.yaml at the top
    git(tmp_path, "clone", "-q", "--bare", str(tmp_path / "start"), str(tmp_path / "upstream.git"))
    git(tmp_path, "clone", "-q", str(tmp_path / "upstream.git"), str(lists))
    git(tmp_path, "clone", "-q", str(tmp_path / "upstream.git"), str(tmp_path / "work"))

    text = moved(UNIT.read_text(), code, lists)
    env = {**environment(text), "PUBLISHER_OPTS": "--listen 127.0.0.1:0 --interval 0.5"}
    argv = exec_start(text, env)
    workdir = re.findall(r"^WorkingDirectory=(\S+)$", text, re.M)[0]
    proc = subprocess.Popen(
        argv, cwd=workdir, env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    served = Served(proc, code / "zones")
    threading.Thread(target=served._pump, daemon=True).start()
    try:
        published = served.wait_for(r"published commit (\w+) \(first publish\)")
        port = int(served.wait_for(r"listening udp 127\.0\.0\.1:(\d+)")[1])
        served.wait_for(r"serving 4 zones on")
        first = dig(port, "bl.example.test", "SOA").answer[0][3].split()[2]
        assert dig(port, "2.0.0.127.bl.example.test", "TXT").status == "NOERROR"
        assert dig(port, "99.2.0.192.bl.example.test", "A").status == "NXDOMAIN"
        assert git(lists, "rev-parse", "HEAD").stdout.startswith(published[1])

        feeds = tmp_path / "work" / "bl" / "feeds.txt"
        feeds.write_text(feeds.read_text() + "192.0.2.99\n")
        pushed = commit_all(tmp_path / "work", "block 192.0.2.99")
        git(tmp_path / "work", "push", "-q", "origin", "main")
        mark = served.mark()
        served.wait_for(rf"published commit {pushed[:10]} \(new commit\)", timeout=60, start=mark)
        served.wait_for(r"reloaded generation", timeout=60, start=mark)
        answer = dig(port, "99.2.0.192.bl.example.test", "A")
        assert answer.status == "NOERROR" and answer.answer[0][3].startswith("127.0.0."), served.log_text()
        assert int(dig(port, "bl.example.test", "SOA").answer[0][3].split()[2]) > int(first)
    finally:
        assert served.stop() == 0, served.log_text()


def test_the_scaling_guide_names_the_files_and_paths_the_unit_uses() -> None:
    """docs/scaling.md's commands: every deploy/ file it names exists, its first publish runs
    the unit's command on the unit's two clones, and it installs the TSIG drop-in where
    systemd looks for drop-ins of dnsbl-publisher.service."""
    doc = (ROOT / "docs" / "scaling.md").read_text()
    named = set(re.findall(r"deploy/[\w.\-/]+[\w]", doc))
    assert {"deploy/publisher.service", "deploy/publisher.service.d/tsig.conf"} <= named
    assert all((ROOT / path).is_file() for path in named), named
    argv = exec_start(UNIT.read_text(), {})
    command = " ".join(argv[: argv.index("serve")])  # the publisher and its --lists/--zones
    assert f"sudo -u dnsbl {command} publish" in doc
    assert "/etc/systemd/system/dnsbl-publisher.service.d/tsig.conf" in doc
    assert "Debian 12 or later" in doc and "Never force-push the lists branch" in doc
    assert "reset --hard origin/main" in doc and "dnsbl_watch_pull_failures_total" in doc
