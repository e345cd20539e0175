#!/usr/bin/env python3
"""Restore benchmark: the state at T of a table from an archive of `--records` changes
over `--items` keys (default one million changes over 100,000 keys, ten per key, over
three days), as `ddb-archiver restore --import-format DIR` (the whole state computation,
sorted by key within the memory budget, then every item written as gzip import lines:
no network in the measurement). Reports peak RSS, changes read per second and items
per second (wall time), and checks the item count.

  bench/restore.py [--bin target/release/ddb-archiver] [--records N --items N] [--smoke]

`--smoke` uses a few hundred changes: a check for CI, not a timing.
"""

import argparse
import glob
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from run import run_process  # noqa: E402

TABLE = "benchrestore"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "ddb-archiver"))
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--memory-budget", type=int, default=64 * 1024 * 1024)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    if args.smoke:
        args.records, args.items = 400, 40
    work = tempfile.mkdtemp(prefix="ddb-archiver-restore-bench-")
    try:
        events = os.path.join(work, "events.jsonl")
        subprocess.run([sys.executable, os.path.join(ROOT, "tests", "python", "gen_replay_events.py"),
                        "--records", str(args.records), "--items", str(args.items), "--days", "3",
                        "--per-event", "1000", "--pad", "100", "--table", TABLE, "--out", events], check=True)
        # One event file per 100 events, as a stream's batches would come.
        subprocess.run(["split", "-l", "100", events, os.path.join(work, "part-")], check=True)
        os.remove(events)
        archive = os.path.join(work, "archive")
        parts = sorted(glob.glob(os.path.join(work, "part-*")))
        subprocess.run([args.bin, "archive", "--dest", archive, "--format", "parquet", *parts],
                       check=True, stdout=subprocess.DEVNULL)
        for p in parts:
            os.remove(p)
        out = os.path.join(work, "import")
        cmd = [args.bin, "restore", "--source", archive, "--table", TABLE, "--as-of", "2026-03-04T00:00:00Z",
               "--to-table", "unused", "--import-format", out, "--memory-budget", str(args.memory_budget), "--json"]
        stdout, wall, cpu, rss = run_process(cmd)
        summary = json.loads(stdout)
        if summary["items"] != args.items or summary["changes_read"] != args.records:
            sys.exit(f"unexpected summary: {summary}")
        lines = sum(len(gzip.decompress(open(f, "rb").read()).splitlines()) for f in summary["import_files"])
        if lines != args.items:
            sys.exit(f"{lines} import lines, expected {args.items}")
        figures = {
            "changes": args.records,
            "keys": args.items,
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "peak_rss_mib": round(rss / 2**20, 1),
            "changes_per_s": round(args.records / wall),
            "items_per_s": round(args.items / wall),
            "spilled_runs": summary["spilled_runs"],
            "memory_budget": args.memory_budget,
        }
        print(f"restore of {args.records:,} changes over {args.items:,} keys: {wall:.1f} s wall, "
              f"{cpu:.1f} s CPU, peak RSS {rss / 2**20:.0f} MiB, {args.records / wall:,.0f} changes/s, "
              f"{args.items / wall:,.0f} items/s, {summary['spilled_runs']} sorted runs spilled")
        if args.json_out:
            with open(args.json_out, "w") as f:
                json.dump(figures, f, indent=2)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
