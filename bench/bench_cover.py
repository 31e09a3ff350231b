"""CoverIndex on a million-row source: build time, the memory it adds, time per query
against the linear `covering_entries`.

    .venv/bin/python bench/bench_cover.py [--names 1000000] [--out FILE]

The address feed is bench.common.generate's (1M IPv4 /32, 10k CIDRs, 100k IPv6 prefixes),
read by load_lists like a publish would; the domain source is built in memory (mostly exact
names, 5% wildcards). Memory: the bytes of the index's own arrays and lists (the starts and
names it shares with the source not counted), and tracemalloc's peak during a second build.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import random
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import generate, machine, table
from bench.common import report as write_report

from publisher.compile.cover import CoverIndex
from publisher.compile.lookup import Query, covering_entries
from publisher.lists.load import load_lists
from publisher.lists.tree import DirTree
from publisher.model import SourceData, Value


def held(index: CoverIndex) -> int:
    """Bytes the index's own columns take (the starts and names it shares with the source not counted)."""
    total = 0
    for part in (index.v4, index.v6):
        total += sys.getsizeof(part.rows) + sys.getsizeof(part.starts)
    for names in (index.exact, index.wild):
        total += sys.getsizeof(names.rows) + sys.getsizeof(names.names)
    return total


def timed_build(source: SourceData) -> tuple[CoverIndex, float, str]:
    """The index, its build time, and what it holds and allocates on the way (text)."""
    gc.collect()
    t0 = time.perf_counter()
    index = CoverIndex.build(source)
    took = time.perf_counter() - t0
    gc.collect()
    tracemalloc.start()
    CoverIndex.build(source)  # again, traced: the temporary lists of the sort
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    mib = 1 << 20
    return (
        index,
        took,
        f"{held(index) / mib:.1f} MiB held, {peak / mib:.0f} MiB peak while building",
    )


def per_query(fn: Callable[[Query], object], queries: list[Query]) -> float:
    """Mean seconds per query."""
    t0 = time.perf_counter()
    for q in queries:
        fn(q)
    return (time.perf_counter() - t0) / len(queries)


def domain_source(n: int, rng: random.Random) -> SourceData:
    src = SourceData("dbl/feed.txt")
    vid = src.add_value(Value(0x7F000102, "spam domain"))
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    for line in range(1, n + 1):
        name = f"{''.join(rng.choices(letters, k=rng.randrange(6, 14)))}.{rng.choice(('com', 'net', 'org', 'co.uk'))}"
        src.add_domain(name, rng.random() < 0.05, vid, line)
    return src


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=1_000_000, help="domain rows (0: none)")
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--linear", type=int, default=20, help="queries for the linear scan (slow)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rng = random.Random(5784)
    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory() as tmp:
        shape = generate(Path(tmp))
        t0 = time.perf_counter()
        loaded = load_lists(DirTree(Path(tmp)), as_of=dt.datetime.now(dt.UTC))
        (source,) = next(iter(loaded.sources.values()))
        read_s = time.perf_counter() - t0
    index, build_s, memory = timed_build(source)
    rows.append(("address feed", f"{len(source):,} rows (read in {read_s:.2f} s)", "", ""))
    rows.append(("build", f"{build_s:.2f} s", "memory", memory))
    listed = [Query(4, source.v4_start[rng.randrange(len(source.v4_start))]) for _ in range(args.queries // 2)]
    unlisted = [Query(4, rng.getrandbits(32)) for _ in range(args.queries // 2)]
    v6 = [Query(6, source.v6_start[rng.randrange(len(source.v6_start))] + 5) for _ in range(args.queries // 4)]
    for what, queries in (("IPv4 listed", listed), ("IPv4 random", unlisted), ("IPv6 listed", v6)):
        fast = per_query(index.covering, queries)
        slow = per_query(lambda q: covering_entries(source, q), queries[: args.linear])
        rows.append((what, f"{fast * 1e6:.1f} µs/query", "linear scan", f"{slow * 1e3:.0f} ms/query"))
    del index
    if args.names:
        names = domain_source(args.names, rng)
        index, build_s, memory = timed_build(names)
        rows.append(("domain source", f"{len(names):,} rows", "", ""))
        rows.append(("build", f"{build_s:.2f} s", "memory", memory))
        queries = [Query(0, domain="www." + names.dom_name[rng.randrange(len(names.dom_name))]) for _ in range(5000)]
        fast = per_query(index.covering, queries)
        slow = per_query(lambda q: covering_entries(names, q), queries[: args.linear])
        rows.append(("www.<listed name>", f"{fast * 1e6:.1f} µs/query", "linear scan", f"{slow * 1e3:.0f} ms/query"))
    text = f"# bench-cover\n\nRun {machine()}; feed {shape}.\n\n" + table(rows, ("measure", "CoverIndex", "", "value"))
    write_report(text, args.out)


if __name__ == "__main__":
    main()
