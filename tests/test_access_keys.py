"""Access keys of keyed zones (server/keys.py, keys_file.py): the key file, check(), counters, quotas.

The gate that calls check() per query is another module (server/gate.py); here check() is
called directly, and the server's wiring (the keys reach zoneset.access_keys, reloads, the
file watch, SIGUSR1, metrics, the quota across `--workers`) is tested on real Servers.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT
from publisher.errorcodes import KEY_REFUSED, KEY_UNKNOWN, OVER_QUOTA
from publisher.server import keys, metrics
from publisher.server.app import Server
from publisher.server.figures import Figures, combine
from publisher.server.keys_file import parse
from publisher.server.stats import key_report
from publisher.server.worker import Channel, Serving, _answer_parent
from publisher.server.workers import Supervisor
from publisher.server.zoneset import ZoneSet
from server_fixtures import publish, sample_zones

BL = "bl.example.test"
ACME = "7fq2m4k9x3hbw8c5n6tzr1yv0p"
BETA = "b3tab3tab3tab3tab3ta"
GOOD = f"""\
keys:
  - name: acme-mail
    key: {ACME}
    zones: [{BL}]
    networks: [198.51.100.0/24, "2001:db8:1::/48"]
    daily_quota: 3
    expires: 2027-06-30
  - name: beta
    key: {BETA.upper()}
"""
V4 = 0xC6336407  # 198.51.100.7
NOON = dt.datetime(2027, 6, 30, 12, tzinfo=dt.UTC).timestamp()


def key_file(tmp_path: Path, text: str, name: str = "access-keys.yaml", mode: int = 0o600) -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(mode)
    return path


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def loaded(tmp_path: Path, text: str = GOOD, now: float = NOON) -> tuple[keys.AccessKeys, Clock]:
    clock = Clock(now)
    return keys.load(key_file(tmp_path, text), keys.KeyUsage(clock)), clock


def problems_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(keys.KeyFileError) as info:
        keys.load(key_file(tmp_path, text))
    assert info.value.exit_code == 2
    return str(info.value)


# --- the key file ---------------------------------------------------------------------


def test_a_good_file_loads_every_key_lower_cased(tmp_path: Path) -> None:
    ak, _ = loaded(tmp_path)
    assert sorted(ak.names) == ["acme-mail", "beta"]
    assert ak.check(BETA.encode(), BL, 4, V4) is None  # written in capitals, asked in lower case


ONE = f"keys:\n  - name: a\n    key: {ACME}\n"  # then one more line: line 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("keys:\n  - name: a\n    key: [x\n", ":4:1: not valid YAML"),
        (
            ONE + "    zonse: [bl.example.test]\n",
            ":4:5: unknown field 'zonse' [unknown-key]\n  fix: did you mean `zones`?",
        ),
        ("key:\n  - name: a\n", ":1:1: unknown field 'key' [unknown-key]\n  fix: did you mean `keys`?"),
        ("keys:\n  - name: a\n    key: abc\n", ":3:10: the key ... has 3 characters"),
        ("keys:\n  - name: a\n    key: 7fq2m4k9x3hbw8c5n6tzr1y-v0p\n", ":3:10: the key 7fq2... has a character other"),
        (f"keys:\n  - name: a\n    key: {'a' * 64}\n", ":3:10: the key aaaa... has 64 characters"),
        (ONE + "    networks: [198.51.100.0/33]\n", ":4:16: '198.51.100.0/33' has a bad prefix length"),
        (ONE + "    networks: [198.51.100.1/24]\n", ":4:16: '198.51.100.1/24' has host bits set below /24 [host-bits]"),
        (ONE + "    expires: 2027-02-30\n", ":4:14: expires '2027-02-30' is not a date [bad-date]"),
        (ONE + "    daily_quota: -5\n", ":4:18: daily_quota -5 is negative"),
        (ONE + "    daily_quota: lots\n", ":4:18: daily_quota 'lots' is not a whole number"),
        (f"keys:\n  - key: {ACME}\n", ":2:5: this entry has no `name` [missing-key]"),
        ("keys:\n  - name: a b\n    key: 0123456789abcdef\n", ":2:11: name 'a b' is not"),
        ("keys: acme\n", ":1:7: keys is not a list"),
        ("- a\n", ":1:1: the file is not a mapping with `keys:`"),
    ],
)
def test_each_problem_is_located_with_a_fix(tmp_path: Path, text: str, expected: str) -> None:
    message = problems_of(tmp_path, text)
    assert f"access-keys.yaml{expected}" in message
    assert "fix: " in message


def test_a_duplicate_name_names_both_lines(tmp_path: Path) -> None:
    text = f"keys:\n  - name: acme\n    key: {ACME}\n  - name: acme\n    key: {BETA}\n    expirse: 2027-01-01\n"
    message = problems_of(tmp_path, text)
    assert "access-keys.yaml:4:5: the name 'acme' is given twice (lines 2 and 4) [duplicate]" in message
    assert "access-keys.yaml:6:5: unknown field 'expirse'" in message  # every problem, not the first
    message = problems_of(tmp_path, f"keys:\n  - name: acme\n    key: {ACME}\n  - name: acme\n    key: 1234\n")
    assert "access-keys.yaml:4:5: the name 'acme' is given twice (lines 2 and 4) [duplicate]" in message
    assert "access-keys.yaml:5:10: the key 1... has 4 characters" in message


def test_a_duplicate_key_names_both_keys_and_never_the_key(tmp_path: Path) -> None:
    text = f"keys:\n  - name: acme\n    key: {ACME}\n  - name: beta\n    key: {ACME.upper()}\n"
    message = problems_of(tmp_path, text)
    assert "access-keys.yaml:4:5: keys 'acme' (line 2) and 'beta' have the same key [duplicate]" in message
    assert ACME not in message.lower()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602])
def test_a_file_others_may_read_or_write_is_refused_unread(tmp_path: Path, mode: int) -> None:
    path = key_file(tmp_path, GOOD, mode=mode)
    with pytest.raises(keys.KeyFileError) as info:
        keys.load(path)
    assert f"{path}: the access key file is readable or writable by its group or others (mode {mode:04o})" in str(
        info.value
    )
    assert f"fix: chmod 600 {path}" in str(info.value)


def test_a_file_of_another_user_is_refused(tmp_path: Path) -> None:
    path = key_file(tmp_path, GOOD)
    if os.geteuid() == 0:
        os.chown(path, 12345, -1)
        uid = 0
    else:
        uid = os.geteuid() + 1  # as if served by someone else
    with pytest.raises(keys.KeyFileError) as info:
        keys.load(path, uid=uid)
    assert "belongs to uid" in str(info.value) and f"not to the serving user (uid {uid}) or root" in str(info.value)


def test_keys_new_prints_an_entry_the_server_reads(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "publisher", "keys", "new", "acme-mail", "--zone", BL, "--quota", "100000"]
    cmd += ["--expires", "2027-06-30", "--network", "198.51.100.0/24", "--network", "2001:db8:1::/48"]
    outs = [subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=60) for _ in range(2)]
    assert [o.returncode for o in outs] == [0, 0], outs[0].stderr
    ak = keys.load(key_file(tmp_path, "keys:\n" + outs[0].stdout))
    (key,) = ak.keys
    assert key.name == "acme-mail" and len(key.secret) == 32 and key.daily_quota == 100000
    assert key.zones == {BL} and len(key.networks) == 2
    assert outs[0].stdout != outs[1].stdout  # a fresh key each time
    assert "chmod 600" in outs[0].stderr
    bad = subprocess.run([*cmd[:5], "x", "--network", "10.0.0.1/8"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "host bits set below /8" in bad.stderr and not bad.stdout


# --- check() ---------------------------------------------------------------------------


def test_check_answers_each_refusal_with_its_code(tmp_path: Path) -> None:
    ak, clock = loaded(tmp_path)
    acme = ACME.encode()
    assert ak.check(b"0" * 26, BL, 4, V4) is KEY_UNKNOWN
    assert ak.check(acme[:-1], BL, 4, V4) is KEY_UNKNOWN  # all but the last character right
    assert ak.check(acme, "wl.example.test", 4, V4) is KEY_REFUSED  # a zone it does not cover
    assert ak.check(acme, BL, 4, 0xC0000207) is KEY_REFUSED  # 192.0.2.7: outside its networks
    assert ak.check(acme, BL, 6, 0x20010DB8000100000000000000000001) is None  # 2001:db8:1::1
    assert ak.check(acme, BL, 6, 0x20010DB8000200000000000000000001) is KEY_REFUSED
    clock.now = dt.datetime(2027, 6, 30, 23, 59, 59, tzinfo=dt.UTC).timestamp()
    assert ak.check(acme, BL, 4, V4) is None  # the expiry date is the last day it works
    clock.now += 1
    assert ak.check(acme, BL, 4, V4) is KEY_REFUSED
    _, today, _, unknown_today, _ = ak.usage.snapshot()
    assert unknown_today == 0  # a new UTC day began with the last query
    assert today == {"acme-mail": [0, 1, 0, 0, 0]}


def test_a_date_time_expiry_and_a_mapped_network(tmp_path: Path) -> None:
    text = ONE + "    expires: 2027-06-30T12:00:00Z\n    networks: ['::ffff:198.51.100.0/120']\n"
    ak, clock = loaded(tmp_path, text, now=NOON - 1)
    assert ak.check(ACME.encode(), BL, 4, V4) is None  # an IPv4-mapped network is its IPv4 network
    clock.now = NOON
    assert ak.check(ACME.encode(), BL, 4, V4) is KEY_REFUSED


def test_the_daily_quota_runs_out_and_the_next_utc_day_resets_it(tmp_path: Path) -> None:
    ak, clock = loaded(tmp_path, now=NOON - 86400)
    acme = ACME.encode()
    assert [ak.check(acme, BL, 4, V4) for _ in range(5)] == [None, None, None, OVER_QUOTA, OVER_QUOTA]
    clock.now = NOON - 43200 - 1  # 23:59:59 the same day
    assert ak.check(acme, BL, 4, V4) is OVER_QUOTA
    clock.now += 1  # 00:00:00 UTC
    assert [ak.check(acme, BL, 4, V4) for _ in range(4)] == [None, None, None, OVER_QUOTA]
    _, today, total, _, _ = ak.usage.snapshot()
    assert today["acme-mail"] == [3, 0, 0, 0, 1] and total["acme-mail"] == [6, 0, 0, 0, 4]


def test_a_key_is_confirmed_with_a_constant_time_compare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ak, _ = loaded(tmp_path)
    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(keys, "compare_digest", recording)
    assert ak.check(ACME.encode(), BL, 4, V4) is None
    assert seen == [(ACME.encode(), ACME.encode())]
    # The lookup is a hash table: a guess right in all but its last character never reaches a compare.
    assert ak.check(ACME[:-1].encode() + b"x", BL, 4, V4) is KEY_UNKNOWN
    assert len(seen) == 1


# --- the server: start, reload, the file watch, logs ------------------------------------


def server_with(path: Path, zones_dir: Path | None = None) -> Server:
    """A Server (not started) with the key file `path`, its clock at NOON (no day ends mid-test)."""
    if zones_dir is not None:
        server = Server(zones_dir, ["127.0.0.1:0"], access_keys=path, send_notify=False)
    else:
        zs = ZoneSet.build(sample_zones().values())
        server = Server(None, ["127.0.0.1:0"], zoneset=zs, access_keys=path, send_notify=False)
    server.key_usage.clock = Clock(NOON)
    return server


def test_a_bad_file_at_start_stops_the_server(tmp_path: Path) -> None:
    path = key_file(tmp_path, GOOD, mode=0o644)
    with pytest.raises(keys.KeyFileError):
        server_with(path)
    publish(tmp_path / "zones", sample_zones())
    cmd = [sys.executable, "-m", "publisher.server", "--zones", str(tmp_path / "zones"), "--listen", "127.0.0.1:0"]
    cli = [sys.executable, "-m", "publisher", "--zones", str(tmp_path / "zones"), "serve", "--listen", "127.0.0.1:0"]
    for command in (cmd, [*cmd, "--workers", "2"], cli):
        out = subprocess.run(
            [*command, "--access-keys", str(path)], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 2, out.stderr
        assert f"fix: chmod 600 {path}" in out.stderr
        assert "serving" not in out.stderr and "listening" not in out.stderr


def test_the_keys_reach_the_zone_set_and_the_log_names_no_key(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "publisher.server")
    path = key_file(tmp_path, GOOD.replace(BL, "gone.example.test"))
    server = server_with(path)
    assert isinstance(server.zones.access_keys, keys.AccessKeys)
    assert sorted(server.zones.access_keys.names) == ["acme-mail", "beta"]
    assert f"access keys: 2 keys loaded from {path}" in caplog.text
    assert f"{path}:4:13: key 'acme-mail' names zone gone.example.test, which is not served" in caplog.text
    assert ACME not in caplog.text.lower() and BETA not in caplog.text.lower()


def test_a_bad_edit_keeps_the_keys_in_force_and_a_good_one_takes_effect(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "publisher.server")
    publish(tmp_path / "zones", sample_zones())
    path = key_file(tmp_path, GOOD)
    server = server_with(path, tmp_path / "zones")
    acme = ACME.encode()
    for _ in range(2):
        assert server.zones.access_keys.check(acme, BL, 4, V4) is None
    new_key = "n3wk3yn3wk3yn3wk3yn3"
    path.write_text(GOOD + f"  - name: beta\n    key: {new_key}\n  - name: gamma\n    key: {ACME}x\n")
    caplog.clear()
    assert server.reload()  # the zones reload; the key file is refused and the old keys stay
    assert "access-keys.yaml:10:5: the name 'beta' is given twice" in caplog.text
    assert "keys 'acme-mail' (line 3) and" not in caplog.text  # ACME vs ACME+'x': different keys
    assert "refused; the 2 keys loaded before stay in force" in caplog.text
    assert server.zones.access_keys.check(acme, BL, 4, V4) is None  # the 3rd of today's 3
    assert server.zones.access_keys.check(new_key.encode(), BL, 4, V4) is KEY_UNKNOWN
    for text in (ACME, BETA, new_key):
        assert text not in caplog.text.lower()
    # A good edit, noticed by the file watch with no reload of the zones: the counts stay.
    path.write_text(
        f"keys:\n  - name: acme-mail\n    key: {ACME}\n    daily_quota: 3\n  - name: new\n    key: {new_key}\n"
    )
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # a different mtime even within one clock tick
    caplog.clear()
    generation = server.zones.generation
    server._reload_access_keys_if_changed()
    assert "access keys: 2 keys loaded from" in caplog.text and server.zones.generation == generation
    assert server.zones.access_keys.check(new_key.encode(), BL, 4, V4) is None
    assert server.zones.access_keys.check(BETA.encode(), BL, 4, V4) is KEY_UNKNOWN  # removed
    assert server.zones.access_keys.check(acme, BL, 4, V4) is OVER_QUOTA  # the quota day went on
    _, today, total, unknown, _ = server.key_usage.snapshot()
    assert today == {"acme-mail": [3, 0, 0, 0, 1], "new": [1, 0, 0, 0, 0]} and unknown == 2
    server._reload_access_keys_if_changed()  # unchanged: not read again
    assert caplog.text.count("keys loaded from") == 1


def test_sigusr1_lines_and_metrics_of_the_keys(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = server_with(key_file(tmp_path, GOOD))
    ak = server.zones.access_keys
    for label in (ACME, ACME, BETA, "guess" * 4, "other" * 4):
        ak.check(label.encode(), BL, 4, V4)
    caplog.set_level(logging.INFO, "publisher.server")
    server.log_stats()
    assert "stats keys: 2 in force from" in caplog.text
    assert (
        "stats key acme-mail: today answered 2 refused 0 (expired 0, zone 0, network 0) over_quota 0; "
        "since start answered 2" in caplog.text
    )
    assert "stats keys unknown: today 2; since start 2" in caplog.text
    text = scrape(server.figures())
    assert 'dnsbl_key_queries_total{key="acme-mail",outcome="answered"} 2.0' in text
    assert 'dnsbl_key_queries_total{key="-",outcome="unknown"} 2.0' in text
    assert 'dnsbl_key_refused_total{reason="network"} 0.0' in text


def scrape(fig: Figures) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    class Fixed:
        def figures(self) -> Figures:
            return fig

    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics.ServerCollector(Fixed()))
    return generate_latest(registry).decode()


def test_ten_thousand_keys_give_bounded_series_a_fast_scrape_and_a_short_report(tmp_path: Path) -> None:
    entries = "".join(f"  - name: k{i}\n    key: {i:016d}\n" for i in range(10_000))
    ak, _ = loaded(tmp_path, "keys:\n" + entries)
    for i in range(10_000):
        for _ in range(1 + i % 3):
            ak.check(f"{i:016d}".encode(), BL, 4, V4)
    for i in range(5000):  # attackers' guesses: one series for all of them
        ak.check(f"guess{i:011d}".encode(), BL, 4, V4)
    day, today, total, unknown_today, unknown_total = ak.usage.snapshot()
    fig = Figures(keys_total=total, keys_today=today, keys_day=day, keys_unknown_total=unknown_total)
    start = time.perf_counter()
    text = scrape(fig)
    took = time.perf_counter() - start
    series = [line for line in text.splitlines() if line.startswith("dnsbl_key_queries_total{")]
    assert len(series) == 3 * 10_000 + 1
    print(f"scrape of 10,000 keys: {len(series)} series, {len(text)} bytes, {took * 1000:.0f} ms")
    assert took < 10.0  # generous: measured about 0.2 s on the shared 2-core machine
    lines = key_report(today, total, unknown_today, unknown_total)
    assert len(lines) == keys_report_top() + 2
    assert (
        lines[-2] == "stats keys: 9980 more keys: today answered 19939 refused 0 over_quota 0"
    )  # 19,999 less the top 20 (3 each)


def keys_report_top() -> int:
    from publisher.server.stats import KEY_REPORT_TOP

    return KEY_REPORT_TOP


# --- serve --workers N: the quota across workers -------------------------------------------


def test_the_quota_holds_across_workers_through_the_parents_exchange(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers' Servers, the parent's real Supervisor, the real control protocol over socket pairs."""
    path = key_file(tmp_path, f"keys:\n  - name: acme-mail\n    key: {ACME}\n    daily_quota: 10\n")
    publish(tmp_path / "zones", sample_zones())
    serving = Serving(
        log_queries=False, watch_manifest=False, tcp_idle_timeout=10.0, max_tcp_connections=8, batch=True,
        tsig_keys=None, access_keys=path, rrl=None, ixfr_keep=0,
    )  # fmt: skip
    sup = Supervisor(tmp_path / "zones", None, 2, metrics=None, serving=serving)
    monkeypatch.setattr(Supervisor, "_alive", staticmethod(lambda slot: True))  # no processes: threads
    workers = [server_with(path, tmp_path / "zones") for _ in range(2)]
    for slot, server in zip(sup.slots, workers):
        parent_end, child_end = socket.socketpair()
        slot.chan, slot.ready = Channel(parent_end), True
        threading.Thread(target=_answer_parent, args=(Channel(child_end), server), daemon=True).start()
    a, b = (w.zones.access_keys for w in workers)
    acme = ACME.encode()
    assert all(a.check(acme, BL, 4, V4) is None for _ in range(6))
    assert all(b.check(acme, BL, 4, V4) is None for _ in range(3))

    def exchange() -> None:
        # One collection sends each worker the others' counts; a second one returns only once each
        # worker has taken that message in (one ordered socket), and shares the same counts again.
        sup._refresh()
        sup._refresh()

    exchange()
    assert a.check(acme, BL, 4, V4) is None  # 6 own + 3 the other's + this = 10
    exchange()
    assert b.check(acme, BL, 4, V4) is OVER_QUOTA  # 3 own + 7 the other's
    assert a.check(acme, BL, 4, V4) is OVER_QUOTA
    fig = sup.figures()
    assert fig.keys_today["acme-mail"] == [10, 0, 0, 0, 2]
    for slot in sup.slots:
        assert slot.chan is not None
        slot.chan.close()  # the workers' control threads see the parent go
    for w in workers:
        w.stop()


def test_combine_sums_the_keys_of_the_latest_day_and_everything_since_start() -> None:
    old = Figures(
        keys_day=5, keys_today={"a": [4, 0, 0, 0, 0]}, keys_total={"a": [4, 0, 0, 0, 0]}, keys_unknown_today=3
    )
    new = Figures(
        keys_day=6, keys_today={"a": [1, 1, 0, 0, 0]}, keys_total={"a": [9, 1, 0, 0, 0]}, keys_unknown_today=1
    )
    out = combine([Figures.from_json(new.to_json())], old)
    assert out.keys_day == 6 and out.keys_today == {"a": [1, 1, 0, 0, 0]} and out.keys_unknown_today == 1
    assert out.keys_total == {"a": [13, 1, 0, 0, 0]}
    shares = keys.Shares.of(
        {0: (6, {"a": [5, 0, 0, 0, 0]}), 1: (6, {"a": [2, 0, 0, 0, 0]})}, (5, {"a": [50, 0, 0, 0, 0]})
    )
    assert shares.others(0) == {"a": 2} and shares.others(1) == {"a": 5}


def test_parse_reads_keys_of_digits_as_text() -> None:
    (key,), problems = parse("keys:\n  - name: n\n    key: 0012345678901234567\n")
    assert not problems and key.secret == b"0012345678901234567"


def test_serve_workers_load_the_keys_in_every_worker_and_exchange_counts(tmp_path: Path) -> None:
    """A real `serve --workers 2`: each worker reads the key file; the parent's per-second share of
    today's counts reaches them without upsetting the control socket; SIGUSR1 sums keys over workers."""
    from test_workers import WAIT, start

    publish(tmp_path / "zones", sample_zones())
    path = key_file(tmp_path, GOOD)
    served, _ = start(tmp_path / "zones", "--access-keys", str(path))
    try:
        for slot in (0, 1):
            served.wait_for(rf"worker {slot}: access keys: 2 keys loaded from {path}", WAIT)
        mark = served.mark()
        path.write_text(GOOD.replace("acme-mail", "acme-renamed"))
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
        for slot in (0, 1):
            served.wait_for(rf"worker {slot}: access keys: 2 keys loaded from", WAIT, start=mark)
        for _ in range(2):  # each collection ends with the share; the second one asks the workers after it
            mark = served.mark()
            served.proc.send_signal(signal.SIGUSR1)
            served.wait_for(r"stats workers 2 of 2 serving", WAIT, start=mark)
        log = "\n".join(served.lines)
        assert "control socket failed" not in log and "did not report its counters" not in log
        assert ACME not in log.lower() and BETA not in log.lower()
    finally:
        served.stop()


def test_quick_answers_a_key_without_limits_and_leaves_the_others_to_check(tmp_path: Path) -> None:
    """The gate's hot path asks `quick` (no zone, no client); a key with limits is not counted there."""
    plain = "p1a1np1a1np1a1np1a1n"
    text = f"keys:\n  - name: plain\n    key: {plain}\n    daily_quota: 2\n" + GOOD.removeprefix("keys:\n")
    ak, clock = loaded(tmp_path, text, now=NOON - 86400)
    beta = plain.encode()
    assert [ak.quick(beta) for _ in range(3)] == [None, None, OVER_QUOTA]
    assert ak.quick(ACME.encode()) is keys.NEEDS_CHECK
    assert ak.quick(b"x" * 26) is KEY_UNKNOWN
    clock.now = NOON  # the next UTC day: quick reads no clock, the server's loop ticks twice a second
    assert ak.quick(beta) is OVER_QUOTA
    ak.usage.tick()
    assert ak.quick(beta) is None
    _, today, total, unknown_today, _ = ak.usage.snapshot()
    assert today == {"plain": [1, 0, 0, 0, 0]} and total == {"plain": [3, 0, 0, 0, 2]} and unknown_today == 0


def test_the_servers_loop_starts_the_new_utc_day_for_quick(tmp_path: Path) -> None:
    """quick() reads no clock: the main loop's tick, twice a second, resets the day's quotas."""
    plain = "p1a1np1a1np1a1np1a1n"
    server = server_with(key_file(tmp_path, f"keys:\n  - name: plain\n    key: {plain}\n    daily_quota: 1\n"))
    clock = Clock(NOON - 86400)
    server.key_usage.clock = clock
    server.key_usage.roll(clock.now)
    ak = server.zones.access_keys
    assert [ak.quick(plain.encode()) for _ in range(2)] == [None, OVER_QUOTA]
    clock.now = NOON
    loop = threading.Thread(target=server.run_forever, daemon=True)
    loop.start()
    try:
        deadline = time.monotonic() + 10
        while ak.quick(plain.encode()) is OVER_QUOTA and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.key_usage.day == int(NOON // 86400)
    finally:
        server.request("stop")
        loop.join(10)
    assert not loop.is_alive()


def test_keys_new_refuses_a_quota_of_0_and_a_day_already_past() -> None:
    from publisher.cli.keys import entry
    from publisher.errors import UsageError

    with pytest.raises(UsageError, match="daily_quota 0 lets no query through"):
        entry("acme", ACME, quota="0")
    with pytest.raises(UsageError, match="--expires 2020-06-30 is already past"):
        entry("acme", ACME, expires="2020-06-30")
    assert "expires: 2099-06-30" in entry("acme", ACME, expires="2099-06-30")


def test_a_key_naming_a_served_zone_without_keys_is_warned_about(tmp_path: Path) -> None:
    ak, _ = loaded(tmp_path, GOOD.replace(BL, "wl.example.test"))
    lines = keys.unknown_zones(ak, {BL: True, "wl.example.test": False})
    assert lines == [
        f"{tmp_path / 'access-keys.yaml'}:4:13: key 'acme-mail' names zone wl.example.test, "
        "which is served without `keys: required`"
    ]
