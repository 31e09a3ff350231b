"""Who may query (issue 12), end to end through the real commands.

A temporary git copy of the sample lists gets a server-wide and a zone ACL (inline and from
files under lists/acl/) or keyed zones in zones.yaml; `publisher publish` writes the
generation, `publisher serve` (a real process, ephemeral ports) serves it, and real `dig -b
127.0.0.N` (and over ::1) shows what each client gets, as docs/design.md section 4 "Who may
query" says. The access key file is made with `publisher keys new`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.query
from tests.conftest import LISTS, ROOT, require_tool
from tests.test_metrics import scrape_url
from tests.test_server import HAVE_V6, Served
from tests.test_vcs import commit_all, init_repo, write

from publisher import errorcodes
from publisher.addresses import format_v4
from publisher.publish.manifest import read_manifest

BL, DBL = "bl.example.test", "dbl.example.test"
LISTED = "33.2.0.192"  # 192.0.2.33: bl/feeds.txt lists it with 127.0.0.2
LISTED_TXT = "Listed by bl.example.test: Spam source, see https://www.example.com/lookup?ip=192.0.2.33"
LISTED_DOMAIN = "cheap-pills.example"
LISTED_DOMAIN_TXT = "cheap-pills.example is listed by dbl.example.test: Domain cheap-pills.example seen in spam"
OPEN_TXT = "Queries via open resolvers are refused ({client})"


def _code(err: errorcodes.ErrorCode) -> str:
    return format_v4(err.code)


# --- the commands ------------------------------------------------------------------------


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "publisher", *argv]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def publish(lists: Path, zones: Path) -> subprocess.CompletedProcess[str]:
    return cli("--lists", str(lists), "--zones", str(zones), "publish")


def serve(zones: Path, *flags: str) -> Served:
    """`publisher serve` on ephemeral ports of 127.0.0.1 (and ::1); waits until it serves."""
    listen = ["--listen", "127.0.0.1:0"] + (["--listen", "[::1]:0"] if HAVE_V6 else [])
    cmd = [sys.executable, "-m", "publisher", "--zones", str(zones), "serve", *listen, *flags]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    served = Served(proc, zones)
    threading.Thread(target=served._pump, daemon=True).start()
    served.wait_for(r"serving \d+ zones on")
    served.port = int(served.wait_for(r"listening udp 127\.0\.0\.1:(\d+)")[1])
    if HAVE_V6:
        served.port6 = int(served.wait_for(r"listening udp \[::1\]:(\d+)")[1])
    return served


@dataclass
class Reply:
    status: str
    flags: set[str]
    answer: list[tuple[int, str, str]]  # (ttl, type, rdata)

    def rdata(self, rtype: str) -> list[str]:
        return sorted(r for _, t, r in self.answer if t == rtype)


def ask(port: int, name: str, qtype: str = "A", client: str = "127.0.0.1", server: str = "127.0.0.1") -> Reply | None:
    """Real dig from source address `client`; None when no reply came (dropped)."""
    cmd = [require_tool("dig"), "-p", str(port), f"@{server}", "-b", client, name, qtype, "+norec"]
    out = subprocess.run(cmd + ["+time=1", "+tries=1"], capture_output=True, text=True, timeout=30).stdout
    head = re.search(r"->>HEADER<<- opcode: \w+, status: (\w+)", out)
    if head is None:
        assert "timed out" in out or "no servers could be reached" in out, out
        return None
    flags = re.search(r";; flags:([^;]*);", out)
    answer = []
    if ";; ANSWER SECTION:" in out:
        for line in out.split(";; ANSWER SECTION:\n", 1)[1].split("\n\n", 1)[0].splitlines():
            _owner, ttl, _cls, rtype, rdata = line.split(None, 4)
            answer.append((int(ttl), rtype, rdata))
    return Reply(head[1], set(flags[1].split()) if flags else set(), answer)


def a_and_txt(port: int, name: str, client: str = "127.0.0.1", server: str = "127.0.0.1") -> tuple[list[str], str]:
    """The A records and the (joined) TXT one client gets for `name`."""
    a, txt = ask(port, name, "A", client, server), ask(port, name, "TXT", client, server)
    assert a is not None and txt is not None
    texts = ["".join(re.findall(r'"((?:[^"\\]|\\.)*)"', r)) for r in txt.rdata("TXT")]
    return a.rdata("A"), " | ".join(texts)


def serials(port: int) -> dict[str, str]:
    out = {}
    for zone in (BL, DBL, "wl.example.test"):
        reply = ask(port, zone, "SOA")
        assert reply is not None and reply.status == "NOERROR", reply
        out[zone] = reply.rdata("SOA")[0].split()[2]
    return out


# --- client ACLs -------------------------------------------------------------------------

ACL_TOP = """\
acl:
  - networks: [127.0.0.20/30]
    action: refuse
  - file: acl/open-resolvers.txt
    action: answer
    txt: "Queries via open resolvers are refused ({client})"
"""
ACL_BL = """\
    acl:
      - networks: [127.0.0.30/31]
        action: drop
      - file: acl/bl-empty.txt
        action: empty
      - networks: [127.0.0.32/28]
        action: refuse
      - networks: [127.0.0.36/30]   # inside the /28 above: the most specific wins
        action: pass
      - networks: [127.0.0.60]
        action: answer
        code: 127.255.255.250
        txt: "bl.example.test is not for {client}"
"""
ACL_CHANGE = """\
      - networks: [127.0.0.90]
        action: refuse
"""
OPEN_RESOLVERS = "# open resolvers\n127.0.0.64/29\n127.0.0.45\n::1\n"


def zones_yaml(top: str = "", bl: str = "", dbl: str = "") -> str:
    """The sample zones.yaml with `top` before `zones:`, `bl` and `dbl` added to those zones."""
    text = (LISTS / "zones.yaml").read_text()
    text = text.replace("\nzones:\n", f"\n{top}zones:\n", 1)
    text = text.replace("    max_prefix: {ipv4: 16, ipv6: 32}\n", "    max_prefix: {ipv4: 16, ipv6: 32}\n" + bl, 1)
    text = text.replace("    code: 127.0.1.2\n", "    code: 127.0.1.2\n" + dbl, 1)
    assert text.count(top) and text.count(bl) and text.count(dbl)
    return text


def acl_repo(tmp_path: Path) -> Path:
    files = {
        "zones.yaml": zones_yaml(ACL_TOP, ACL_BL),
        "acl/open-resolvers.txt": OPEN_RESOLVERS,
        "acl/bl-empty.txt": "127.0.0.50/31  # a partner that must never be rejected on our word\n",
    }
    lists = init_repo(tmp_path / "repo", lists_from=LISTS)
    write(lists, files)
    commit_all(lists.parent, "who may query: ACLs")
    return lists


def test_acls_from_zones_yaml_each_action_then_an_acl_only_publish_then_a_bad_acl(tmp_path: Path) -> None:
    lists, zones = acl_repo(tmp_path), tmp_path / "zones"
    first = publish(lists, zones)
    assert first.returncode == 0, first.stdout + first.stderr
    served = serve(zones)
    try:
        port = served.port
        name, domain = f"{LISTED}.{BL}", f"{LISTED_DOMAIN}.{DBL}"
        # pass: no rule names 127.0.0.1; and 127.0.0.37, inside the zone's refused /28, by its /30
        for client in ("127.0.0.1", "127.0.0.37"):
            assert a_and_txt(port, name, client) == (["127.0.0.2"], LISTED_TXT), client
        # refuse, server-wide (inline): every zone, REFUSED without AA
        for qname in (name, domain):
            reply = ask(port, qname, client="127.0.0.21")
            assert reply is not None and reply.status == "REFUSED" and "aa" not in reply.flags, reply
        # refuse, the zone's /28: this zone only
        reply = ask(port, name, client="127.0.0.33")
        assert reply is not None and reply.status == "REFUSED", reply
        assert a_and_txt(port, domain, "127.0.0.33") == (["127.0.1.2"], LISTED_DOMAIN_TXT)
        # drop, the zone's (inline): no reply at all for this zone; the other zones answer
        assert ask(port, name, client="127.0.0.31") is None
        assert ask(port, BL, "SOA", client="127.0.0.31") is None
        assert a_and_txt(port, domain, "127.0.0.31") == (["127.0.1.2"], LISTED_DOMAIN_TXT)
        # empty, the zone's (a file): "not listed"; SOA as usual
        reply = ask(port, name, client="127.0.0.51")
        assert reply is not None and reply.status == "NXDOMAIN" and not reply.answer, reply
        soa = ask(port, BL, "SOA", client="127.0.0.51")
        assert soa is not None and soa.status == "NOERROR" and soa.rdata("SOA"), soa
        # answer, server-wide (a file): the code and {client} filled in, TTL 60, every zone;
        # SOA as usual
        open_code = _code(errorcodes.ACL_ANSWER)
        for client in ("127.0.0.65", "127.0.0.70"):
            assert a_and_txt(port, name, client) == ([open_code], OPEN_TXT.format(client=client))
            assert a_and_txt(port, domain, client) == ([open_code], OPEN_TXT.format(client=client))
        reply = ask(port, name, client="127.0.0.65")
        assert reply is not None and reply.answer[0][0] == 60, reply
        soa = ask(port, BL, "SOA", client="127.0.0.65")
        assert soa is not None and soa.status == "NOERROR" and soa.rdata("SOA"), soa
        # both ACLs name 127.0.0.45: in bl the zone's refuse is more severe than the answer
        reply = ask(port, name, client="127.0.0.45")
        assert reply is not None and reply.status == "REFUSED", reply
        assert a_and_txt(port, domain, "127.0.0.45") == ([open_code], OPEN_TXT.format(client="127.0.0.45"))
        # answer, the zone's, with its own code
        assert a_and_txt(port, name, "127.0.0.60") == (["127.255.255.250"], "bl.example.test is not for 127.0.0.60")
        # an IPv6 client (::1 in the server-wide file)
        if HAVE_V6:
            got = a_and_txt(served.port6, name, "::1", "::1")
            assert got == ([open_code], OPEN_TXT.format(client="::1"))
        # not yet named: 127.0.0.90
        assert a_and_txt(port, name, "127.0.0.90") == (["127.0.0.2"], LISTED_TXT)

        # --- a commit that changes only the ACL: the plan says so, the serials stay, the
        # running server takes the new generation without a restart
        before = serials(port)
        generation = read_manifest(zones)
        write(lists, {"zones.yaml": zones_yaml(ACL_TOP, ACL_BL + ACL_CHANGE)})
        commit_all(lists.parent, "refuse 127.0.0.90")
        mark = served.mark()
        second = publish(lists, zones)
        out = second.stdout + second.stderr
        assert second.returncode == 0, out
        assert "note: acl of bl.example.test: 1 network added (refuse)" in out, out
        assert f"bl.example.test: serial {before[BL]}, unchanged" in out, out
        served.wait_for(
            r"reloaded generation \S+: 4 zones, 0 changed; who may query or transfer changed: bl.example.test$",
            start=mark,
        )
        reply = ask(port, name, client="127.0.0.90")
        assert reply is not None and reply.status == "REFUSED", reply
        assert serials(port) == before
        assert served.proc.poll() is None  # the same process: no restart
        assert read_manifest(zones) != generation

        # --- a malformed network in an ACL file: refused, located, nothing published
        published, mark = (zones / "current").resolve(), served.mark()
        write(lists, {"acl/open-resolvers.txt": OPEN_RESOLVERS + "127.0.0.300\n"})
        commit_all(lists.parent, "a typo in the open resolvers")
        third = publish(lists, zones)
        out = third.stdout + third.stderr
        assert third.returncode == 1, out
        assert re.search(
            r"lists/acl/open-resolvers\.txt:5:1: '127\.0\.0\.300' is not an IPv4 address.*\[bad-address\]", out
        ), out
        assert "nothing was published" in out
        assert (zones / "current").resolve() == published
        time.sleep(1.2)  # the server polls twice a second: it would have seen a new generation
        assert "reload" not in "\n".join(served.lines[mark:]), served.log_text()
        reply = ask(port, name, client="127.0.0.90")
        assert reply is not None and reply.status == "REFUSED", reply
        assert a_and_txt(port, name, "127.0.0.65") == ([open_code], OPEN_TXT.format(client="127.0.0.65"))
        assert a_and_txt(port, name, "127.0.0.1") == (["127.0.0.2"], LISTED_TXT)
    finally:
        assert served.stop() == 0, served.log_text()


# --- keyed zones -------------------------------------------------------------------------

KEYED = "    keys: required\n"


def keyed_repo(tmp_path: Path) -> Path:
    lists = init_repo(tmp_path / "repo", lists_from=LISTS)
    write(lists, {"zones.yaml": zones_yaml(bl=KEYED, dbl=KEYED)})
    commit_all(lists.parent, "bl and dbl for subscribers only")
    return lists


def new_key(name: str, *options: str) -> tuple[str, str]:
    """`publisher keys new NAME OPTIONS`: (the entry's YAML, the key)."""
    done = cli("keys", "new", name, *options)
    assert done.returncode == 0, done.stderr
    key = re.search(r"^    key: ([a-z0-9]+)$", done.stdout, re.M)
    assert key, done.stdout
    return done.stdout, key[1]


def key_file(path: Path, entries: list[str], mode: int = 0o600) -> Path:
    """The key file written whole under a new inode (the server never reads half of it)."""
    tmp = path.with_suffix(".new")
    tmp.write_text("keys:\n" + "".join(entries))
    tmp.chmod(mode)
    os.replace(tmp, path)
    return path


def stats_line(served: Served, key: str) -> str:
    mark = served.mark()
    served.proc.send_signal(signal.SIGUSR1)
    return served.wait_for(rf"stats key {re.escape(key)}: .*", start=mark)[0]


def test_keyed_zone_through_the_real_commands(tmp_path: Path) -> None:
    lists, zones = keyed_repo(tmp_path), tmp_path / "zones"
    done = publish(lists, zones)
    assert done.returncode == 0, done.stdout + done.stderr
    acme, acme_key = new_key("acme", "--network", "127.0.0.0/24", "--network", "::1/128")
    # `keys new` refuses a day already past: the key expired since it was made
    old, old_key = new_key("old", "--expires", "2099-06-30")
    old = old.replace("2099-06-30", "2020-06-30")
    far, far_key = new_key("far", "--network", "192.0.2.0/24")
    dbl_only, dbl_key = new_key("dbl-only", "--zone", DBL)
    small, small_key = new_key("small", "--quota", "3")
    late, late_key = new_key("late")
    extra, extra_key = new_key("extra")
    unknown_key = "zz" + acme_key[2:]  # one a subscriber mistyped
    keys = key_file(tmp_path / "access-keys.yaml", [acme, old, far, dbl_only, small])
    assert keys.stat().st_mode & 0o777 == 0o600

    # a bad key file stops serve before it serves anything: exit 2, the problem located
    bad = key_file(tmp_path / "bad-keys.yaml", [acme, acme.replace("name: acme", "name: acme2")])
    refused = cli("--zones", str(zones), "serve", "--listen", "127.0.0.1:0", "--access-keys", str(bad))
    assert refused.returncode == 2, refused.stderr
    assert re.search(rf"{re.escape(str(bad))}:\d+:\d+: .*\[duplicate\]", refused.stderr), refused.stderr
    assert "listening" not in refused.stderr and acme_key not in refused.stderr

    served = serve(zones, "--access-keys", str(keys), "--log-queries", "--metrics", "127.0.0.1:0")
    try:
        port = served.port
        url = served.wait_for(r"metrics on (http://\S+)")[1]

        def get(key: str, zone: str = BL, client: str = "127.0.0.1", server: str = "127.0.0.1") -> tuple:
            value = LISTED if zone == BL else LISTED_DOMAIN
            return a_and_txt(port if server == "127.0.0.1" else served.port6, f"{value}.{key}.{zone}", client, server)

        def error(err: errorcodes.ErrorCode) -> tuple[list[str], str]:
            return [_code(err)], err.txt

        # a good key: the listing, A and TXT, as `d.c.b.a.ZONE` without keys would answer
        assert get(acme_key) == (["127.0.0.2"], LISTED_TXT)
        assert get(acme_key.upper(), DBL) == (["127.0.1.2"], LISTED_DOMAIN_TXT)  # case-insensitive
        if HAVE_V6:
            assert get(acme_key, client="::1", server="::1") == (["127.0.0.2"], LISTED_TXT)
        # unknown and missing keys
        assert get(unknown_key) == error(errorcodes.KEY_UNKNOWN)
        assert a_and_txt(port, f"{LISTED}.{BL}") == error(errorcodes.KEY_UNKNOWN)
        reply = ask(port, f"{LISTED}.{BL}")
        assert reply is not None and reply.status == "NOERROR" and reply.answer[0][0] == 60, reply
        # expired, from outside its networks, for another zone: refused
        assert get(old_key) == error(errorcodes.KEY_REFUSED)
        assert get(far_key) == error(errorcodes.KEY_REFUSED)
        assert get(acme_key, client="127.0.1.1") == error(errorcodes.KEY_REFUSED)
        assert get(dbl_key) == error(errorcodes.KEY_REFUSED)
        assert get(dbl_key, DBL) == (["127.0.1.2"], LISTED_DOMAIN_TXT)
        # a daily quota of 3: the A and the TXT count, the fourth query is over
        assert get(small_key) == (["127.0.0.2"], LISTED_TXT)
        reply = ask(port, f"{LISTED}.{small_key}.{BL}")
        assert reply is not None and reply.rdata("A") == ["127.0.0.2"], reply
        assert get(small_key) == error(errorcodes.OVER_QUOTA)
        # the apex without a key
        soa = ask(port, BL, "SOA")
        assert soa is not None and soa.status == "NOERROR" and soa.rdata("SOA"), soa

        # a key added to the file: in force without a restart
        assert get(late_key) == error(errorcodes.KEY_UNKNOWN)
        mark = served.mark()
        key_file(keys, [acme, old, far, dbl_only, small, late])
        served.wait_for(r"access keys: 6 keys loaded from ", start=mark)
        assert get(late_key) == (["127.0.0.2"], LISTED_TXT)
        assert get(small_key) == error(errorcodes.OVER_QUOTA)  # its count survives the reload

        # the file made group-readable (with one more key): refused, the 6 keys stay in force
        mark = served.mark()
        key_file(keys, [acme, old, far, dbl_only, small, late, extra], mode=0o640)
        served.wait_for(r"access keys: \S+ refused; the 6 keys loaded before stay in force", start=mark)
        assert get(extra_key) == error(errorcodes.KEY_UNKNOWN)
        assert get(late_key) == (["127.0.0.2"], LISTED_TXT)
        assert served.proc.poll() is None

        # counters: SIGUSR1 and the metrics
        line = stats_line(served, "acme")
        answered = 6 if HAVE_V6 else 4  # A and TXT each time
        assert f"today answered {answered} refused 2 (expired 0, zone 0, network 2) over_quota 0" in line, line
        line = stats_line(served, "small")
        assert "today answered 3 refused 0 (expired 0, zone 0, network 0) over_quota 4" in line, line
        samples = scrape_url(url)

        def metric(key: str, outcome: str) -> float:
            return samples[("dnsbl_key_queries_total", frozenset({("key", key), ("outcome", outcome)}))]

        assert metric("small", "answered") == 3 and metric("small", "over_quota") == 4
        assert metric("late", "answered") == 4 and metric("old", "refused") == 2
        assert metric("acme", "answered") == answered and metric("acme", "refused") == 2
        # mistyped 2, `late` before it was added 2, `extra` 2, and the 3 queries without a key
        assert metric("-", "unknown") == 9
    finally:
        assert served.stop() == 0, served.log_text()
    log = served.log_text()
    # --log-queries shows the key's first 4 characters only
    assert f"query 127.0.0.1 udp {LISTED}.{acme_key[:4]}....{BL} A -> NOERROR an=1" in log, log
    for key in (acme_key, old_key, far_key, dbl_key, small_key, late_key, extra_key, unknown_key):
        assert key not in log.lower(), f"a full key in the log: {key}"


def test_a_daily_quota_holds_across_workers(tmp_path: Path) -> None:
    """`serve --workers 2`: queries from many source ports reach both workers; the quota of 20
    is one count (each worker learns the others' every second), so about 20 are answered."""
    lists, zones = keyed_repo(tmp_path), tmp_path / "zones"
    done = publish(lists, zones)
    assert done.returncode == 0, done.stdout + done.stderr
    entry, key = new_key("metered", "--quota", "20")
    keys = key_file(tmp_path / "access-keys.yaml", [entry])
    served = serve(zones, "--workers", "2", "--access-keys", str(keys))
    try:
        served.wait_for(r"2 workers")
        name = f"{LISTED}.{key}.{BL}"
        got: list[str] = []
        for _ in range(60):  # each from a new socket: a new source port, spread over the workers
            reply = dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=served.port, timeout=5)
            got += [rd.to_text() for rrset in reply.answer for rd in rrset]
            time.sleep(0.1)  # 6 s in all: the workers share their counts every second
        answered, over = got.count("127.0.0.2"), got.count(_code(errorcodes.OVER_QUOTA))
        assert answered + over == 60, got
        assert 20 <= answered <= 30, got
    finally:
        assert served.stop() == 0, served.log_text()
