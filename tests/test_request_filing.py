"""web/filing.py against real git repositories: a request becomes a commit on its own branch,
beside the work tree, under a lock, once per confirmation."""

from __future__ import annotations

import datetime as dt
import fcntl
import shutil
import stat
import subprocess
import threading
from pathlib import Path

import pytest
from tests.conftest import LISTS
from tests.test_vcs import commit_all, git

from publisher.errors import WebError
from publisher.lists.yamlmarks import load_yaml
from publisher.publish import vcs
from publisher.publish.vcs import ListsRepo, find_repo, request_refs
from publisher.web import filing
from publisher.web.filing import RepoFiler, base_branch, file_request, plan_edits, state_dir
from publisher.web.service import Ask

NOW = dt.datetime(2026, 11, 29, 10, 11, 12, tzinfo=dt.UTC)


def make_repo(tmp_path: Path) -> ListsRepo:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    shutil.copytree(LISTS, root / "lists")  # its zones.yaml takes requests: bl/delisted.yaml, wl/requests.yaml
    commit_all(root, "sample lists")
    git(root, "config", "user.name", "Alice Admin")
    git(root, "config", "user.email", "alice@example.test")
    return find_repo(root / "lists")


def ask(kind: str = "delist", target: str = "192.0.2.200", **kw: str) -> Ask:
    zone = "bl.example.test" if kind == "delist" else "wl.example.test"
    fields = {"organisation": "Example Org", "contact": "postmaster@example.org", "reason": "fixed", "token": "t1"}
    fields.update(kw)
    return Ask(kind, target, (zone,), client="192.0.2.10", **fields)  # type: ignore[arg-type]


def state(root: Path) -> tuple[str, str, str, str]:
    return (
        git(root, "status", "--porcelain").stdout,
        git(root, "rev-parse", "HEAD").stdout,
        git(root, "diff", "--cached").stdout,
        git(root, "rev-parse", "main").stdout,
    )


def test_a_request_is_a_branch_and_nothing_else_moves(tmp_path: Path) -> None:
    where = make_repo(tmp_path)
    root = where.root
    (root / "lists" / "bl" / "abuse.yaml").write_text("# half-edited by a maintainer\n")
    (root / "lists" / "bl" / "new.yaml").write_text("entries: []\n")
    git(root, "add", "lists/bl/new.yaml")
    before = state(root)
    filed = file_request(where, "main", ask(), now=NOW)
    assert state(root) == before
    assert (filed.id, filed.branch, filed.already) == ("2026-11-29-0001", "requests/2026-11-29-0001", False)
    assert git(root, "rev-parse", "requests/2026-11-29-0001").stdout.strip() == filed.commit
    assert git(root, "rev-parse", f"{filed.commit}^").stdout == before[3]  # made from the tip of main
    changed = git(root, "diff", "--name-status", "main", filed.commit).stdout
    assert changed == "M\tlists/bl/delisted.yaml\n"
    added = git(root, "show", f"{filed.commit}:lists/bl/delisted.yaml").stdout
    entry = load_yaml("r.yaml", added.encode()).data["entries"][0]
    assert entry == {
        "ip": "192.0.2.200",
        "reason": "delisting request 2026-11-29-0001: fixed",
        "added": "2026-11-29",
        "by": "web-request",
        "ticket": "2026-11-29-0001",
    }
    assert [e.action for e in filed.edits] == ["exclude"]
    author = git(root, "log", "-1", "--format=%an <%ae> %aI", filed.commit).stdout.strip()
    assert author == "publisher web <dnsbl-requests@localhost> 2026-11-29T10:11:12+00:00"


def test_the_message_carries_the_fields_as_trailers(tmp_path: Path) -> None:
    where = make_repo(tmp_path)
    filed = RepoFiler(where, None, email="dnsbl@example.test").file_request(ask(), now=NOW)
    message = git(where.root, "log", "-1", "--format=%B", filed.commit).stdout
    assert message.startswith("Delisting request 2026-11-29-0001: 192.0.2.200\n\nfixed\n\n")
    parsed = subprocess.run(
        ["git", "interpret-trailers", "--parse"], input=message, text=True, capture_output=True, check=True
    ).stdout
    assert parsed == (
        "Request-Id: 2026-11-29-0001\nRequest-Kind: delist\nRequest-Target: 192.0.2.200\n"
        "Request-Zones: bl.example.test\nRequest-Organisation: Example Org\n"
        "Request-Contact: postmaster@example.org\nRequest-Client: 192.0.2.10\n"
        "Request-Confirmed: 2026-11-29T10:11:12Z\nRequest-Token: t1\n"
    )
    assert git(where.root, "log", "-1", "--format=%ae", filed.commit).stdout.strip() == "dnsbl@example.test"


def test_a_delisting_is_an_entry_of_the_zones_excludes_file_even_for_an_exact_entry(tmp_path: Path) -> None:
    """198.51.100.77 is an entry of bl/abuse.yaml: the request still adds a zone-wide hole (an
    exclusion in bl/abuse.yaml would only make a hole in that file, and removing the entry would
    leave a wider entry or a feed listing it); the reviewer may remove the entry by hand."""
    where = make_repo(tmp_path)
    filed = file_request(where, "main", ask(target="198.51.100.77"), now=NOW)
    assert [(e.path, e.action) for e in filed.edits] == [("bl/delisted.yaml", "exclude")]
    diff = git(where.root, "diff", "main", filed.commit).stdout
    assert "+  - ip: 198.51.100.77\n" in diff and "\n-  " not in diff


def test_the_same_token_twice_is_one_branch(tmp_path: Path) -> None:
    where = make_repo(tmp_path)
    first = file_request(where, "main", ask(), now=NOW)
    again = file_request(where, "main", ask(), now=NOW + dt.timedelta(hours=1))
    assert (again.id, again.commit, again.already) == (first.id, first.commit, True)
    other = file_request(where, "main", ask(token="t2"), now=NOW)
    assert other.id == "2026-11-29-0002"
    assert [r.id for r in request_refs(where)] == ["2026-11-29-0001", "2026-11-29-0002"]


def test_concurrent_filings_get_distinct_ids(tmp_path: Path) -> None:
    where = make_repo(tmp_path)
    results: list[str] = []
    errors: list[BaseException] = []

    def one(n: int) -> None:
        try:
            results.append(file_request(where, "main", ask(token=f"tok{n}", target=f"192.0.2.{200 + n}"), now=NOW).id)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert sorted(results) == [f"2026-11-29-{n:04d}" for n in range(1, 5)]


def test_a_held_lock_is_a_503_after_a_bounded_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    where = make_repo(tmp_path)
    monkeypatch.setattr(filing, "LOCK_WAIT", 0.2)
    with open(state_dir(where) / "requests.lock", "a+b") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(WebError) as caught:
            file_request(where, "main", ask(), now=NOW)
    assert caught.value.status == 503 and caught.value.retry_after
    assert request_refs(where) == []


def test_state_dir_is_private_and_in_the_git_dir(tmp_path: Path) -> None:
    where = make_repo(tmp_path)
    path = state_dir(where)
    assert path == (where.root / ".git" / "publisher").resolve()
    assert stat.S_IMODE(path.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    ("target", "kind", "words"),
    [
        ("192.0.2.0/0", "allowlist", "host bits"),
        ("10.0.0.0/8", "allowlist", "broader than"),
        ("127.0.0.2", "delist", "RFC 5782 test point"),  # the lists' own check of an exclusion
        ("127.0.0.0/24", "allowlist", "RFC 5782 test point"),
        ("::ffff:127.0.0.2", "allowlist", "IPv4-mapped"),  # web/fields.py reads it as 127.0.0.2 first
        ("::ffff:198.51.100.1", "allowlist", "IPv4-mapped"),
    ],
)
def test_what_the_lists_refuse_is_a_422_and_nothing_is_written(
    tmp_path: Path, target: str, kind: str, words: str
) -> None:
    where = make_repo(tmp_path)
    for call in (
        lambda: plan_edits(where, "main", ask(kind, target), today=NOW.date()),
        lambda: file_request(where, "main", ask(kind, target), now=NOW),
    ):
        with pytest.raises(WebError) as caught:
            call()
        assert (caught.value.status, caught.value.field) == (422, "address")
        assert words in caught.value.detail
    assert request_refs(where) == []


def test_zones_without_requests_and_missing_bases(tmp_path: Path) -> None:
    where = make_repo(tmp_path)
    zones = where.lists / "zones.yaml"
    zones.write_text(zones.read_text().replace("      requests: dbl/delisted.yaml\n", ""))
    commit_all(where.root, "dbl takes no requests")
    wrong = Ask("allowlist", "192.0.2.77", ("bl.example.test",), "Org", "a@b.example", "r", token="y")
    with pytest.raises(WebError) as role:
        file_request(where, "main", wrong, now=NOW)
    assert role.value.status == 409 and "takes no allowlist requests" in role.value.detail
    dbl = Ask("delist", "spam.example", ("dbl.example.test",), "Org", "a@b.example", "r", token="x")
    with pytest.raises(WebError) as caught:
        file_request(where, "main", dbl, now=NOW)
    assert caught.value.status == 409
    assert base_branch(where, None) == "main"
    with pytest.raises(WebError) as missing:
        base_branch(where, "nope")
    assert missing.value.status == 503
    git(where.root, "checkout", "-q", "--detach")
    with pytest.raises(WebError) as detached:
        RepoFiler(where, None).file_request(ask(), now=NOW)
    assert detached.value.status == 503 and "detached" in detached.value.detail


def test_plan_edits_writes_nothing(tmp_path: Path) -> None:
    where = make_repo(tmp_path)
    before = git(where.root, "for-each-ref").stdout
    edits = plan_edits(where, "main", ask("allowlist", "192.0.2.128/26"), today=NOW.date())
    assert [(e.zone, e.path, e.action) for e in edits] == [("wl.example.test", "wl/requests.yaml", "add")]
    assert "ticket: 2026-11-29-NNNN" in edits[0].text
    assert git(where.root, "for-each-ref").stdout == before


def test_hostile_fields_are_inert_text_in_the_file_and_the_message(tmp_path: Path) -> None:
    where = make_repo(tmp_path)
    org = "Evil Corp\nRequest-Kind: delist\n$(rm -rf ~) `id` <script>alert(1)</script> *md* # x: y"
    reason = "line one\n---\nRequest-Target: 0.0.0.0/0\n\nowner: attacker\n- ip: 0.0.0.0/0"
    filed = file_request(where, "main", ask("allowlist", "192.0.2.128/26", organisation=org, reason=reason), now=NOW)
    text = git(where.root, "show", f"{filed.commit}:lists/wl/requests.yaml").stdout
    doc = load_yaml("r.yaml", text.encode()).data
    assert len(doc["entries"]) == 1
    entry = doc["entries"][0]
    assert entry["ip"] == "192.0.2.128/26"
    assert entry["owner"] == "Evil Corp Request-Kind: delist $(rm -rf ~) `id` <script>alert(1)</script> *md* # x: y"
    assert entry["reason"] == "line one --- Request-Target: 0.0.0.0/0 owner: attacker - ip: 0.0.0.0/0"
    message = git(where.root, "log", "-1", "--format=%B", filed.commit).stdout
    parsed = subprocess.run(
        ["git", "interpret-trailers", "--parse"], input=message, text=True, capture_output=True, check=True
    ).stdout.splitlines()
    keys = [line.split(":")[0] for line in parsed]
    assert keys == [
        "Request-Id", "Request-Kind", "Request-Target", "Request-Zones", "Request-Organisation",
        "Request-Contact", "Request-Client", "Request-Confirmed", "Request-Token",
    ]  # fmt: skip
    assert "Request-Kind: allowlist" in parsed and "Request-Target: 192.0.2.128/26" in parsed
    (found,) = request_refs(where)
    assert found.trailer("Request-Organisation") == entry["owner"]


def test_only_yaml_sources_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    where = make_repo(tmp_path)
    (where.lists / "bl" / "feeds.txt").write_text("not ! an @ address\n" * 1000)
    commit_all(where.root, "a broken feed")
    read: list[str] = []
    real = vcs._BlobTree.read

    def spy(self: vcs._BlobTree, path: str) -> bytes:
        read.append(path)
        return real(self, path)

    monkeypatch.setattr(vcs._BlobTree, "read", spy)
    file_request(where, "main", ask(target="198.51.100.77"), now=NOW)
    assert read and not [p for p in read if p.endswith(".txt")]
