"""`make bench-import`: `publisher import-rbldnsd` of 1M-line rbldnsd data files.

Generates an ip4set (1M /32 + 10k CIDRs, like bench.common.generate's IPv4 part),
an ip4trie of the same entries, a dnset of 1M names and a combined file (half of
each, the names in a subzone), runs `python -m publisher import-rbldnsd` on each
as a child process and reports its wall time and peak RSS.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import DATA, ROOT, machine, table, v4_lines
from bench.common import report as write_report

IMPORT = DATA / "import"
_TLDS = ("com", "net", "org", "info", "ru", "cn", "de", "xyz", "top", "co.uk")


def name_lines(n: int, seed: int = 5783) -> list[str]:
    """Random names: mostly exact, 2% `*.name`, 2% `.name`, 0.5% exclusions, 2% starting with a digit."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    rest = letters + "0123456789"
    lines = [":127.0.0.2:Listed: see https://dbl.example.test/$"]
    for _ in range(n):
        first = rng.choice("0123456789") if rng.random() < 0.02 else rng.choice(letters)
        name = f"{first}{''.join(rng.choices(rest, k=rng.randrange(5, 13)))}a.{rng.choice(_TLDS)}"
        if rng.random() < 0.3:
            name = "".join(rng.choices(letters, k=5)) + "." + name
        r = rng.random()
        lines.append(("*." if r < 0.02 else "." if r < 0.04 else "!" if r < 0.045 else "") + name)
    return lines


def write_inputs(folder: Path, lines: int, ncidr: int) -> dict[str, Path]:
    """The four data files (ip4set, ip4trie, dnset, combined) of about `lines` lines each."""
    folder.mkdir(parents=True, exist_ok=True)
    v4 = v4_lines(random.Random(5782), lines, ncidr)  # bench.common.generate's seed
    names = name_lines(lines)
    texts = {
        "ip4set": "\n".join(v4),
        "ip4trie": "\n".join(v4),
        "dnset": "\n".join(names),
        "combined": "\n".join(
            ["$SOA 3600 ns.example.test. hostmaster.example.test. 0 600 300 86400 300", "$DATASET ip4set:bl @"]
            + v4[: lines // 2]
            + ["$DATASET dnset:dbl dbl"]
            + names[: lines // 2]
        ),
    }
    out = {}
    for kind, text in texts.items():
        path = folder / f"{kind}.data"
        path.write_text(text + "\n")
        out[kind] = path
    return out


def run_import(path: Path, kind: str, lists: Path) -> tuple[float, float, int, int]:
    """Wall and CPU seconds, peak RSS (KiB) and exit code of one import into a fresh lists folder."""
    lists.mkdir(parents=True, exist_ok=True)
    out = lists / "imported" / f"{kind}.txt"
    args = [sys.executable, "-m", "publisher", "--lists", str(lists), "import-rbldnsd", str(path)]
    args += ["--zone", "bl.example.test", "--type", kind, "--out", str(out), "--force"]
    t0 = time.monotonic()
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"import of {path} failed ({code}):\n{err.decode()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, code


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--cidrs", type=int, default=10_000)
    ap.add_argument("--kinds", default="ip4set,ip4trie,dnset,combined")
    ap.add_argument("--out", type=Path, default=None, help="write the table here (markdown)")
    ap.add_argument("--generate-only", action="store_true", help="write the data files under bench/data/import")
    args = ap.parse_args()
    inputs = write_inputs(IMPORT, args.lines, args.cidrs)
    if args.generate_only:
        print("\n".join(str(p) for p in inputs.values()))
        return
    rows: list[tuple[str, ...]] = []
    for kind in args.kinds.split(","):
        path = inputs[kind]
        nlines = path.read_bytes().count(b"\n")
        with tempfile.TemporaryDirectory(dir=DATA) as tmp:
            wall, cpu, rss, code = run_import(path, kind, Path(tmp) / "lists")
        verdict = "exact" if code == 0 else "differs (exit 1)"
        rows.append((kind, f"{nlines:,}", f"{wall:.1f} s", f"{cpu:.1f} s", f"{rss / 1024:.0f} MiB", verdict))
        print(f"{kind}: {nlines} lines, {wall:.1f} s ({cpu:.1f} s CPU), {rss / 1024:.0f} MiB, {verdict}", flush=True)
    text = (
        "# `make bench-import`: `publisher import-rbldnsd` of 1M-line rbldnsd files\n\n"
        f"Machine: {machine()}\n\n"
        "Each import: one `python -m publisher import-rbldnsd FILE --type KIND --out ...` child,\n"
        "wall time from start to exit, its CPU time (user + sys: what the load of other processes\n"
        "on the machine does not inflate) and its peak RSS. ip4set/ip4trie: 1M random /32s + 10k CIDRs\n"
        "under one `:127.0.0.2:text` line; dnset: 1M names (2% `*.name`, 2% `.name`, 0.5% `!name`,\n"
        "2% starting with a digit);\n"
        "combined: half of each, the names in a `dbl` subzone.\n\n"
        + f"Load average at the start: {os.getloadavg()[0]:.1f}\n\n"
        + table(rows, ("dataset", "lines", "wall", "CPU", "peak RSS", "verdict"))
        + "\n"
    )
    write_report(text, args.out)


if __name__ == "__main__":
    main()
