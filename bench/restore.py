#!/usr/bin/env python3
"""Restore benchmark, side by side with DuckDB: the state at T of a table from an archive
of `--records` changes over `--items` keys (default one million changes over 100,000 keys,
ten per key, over three days, archived as Parquet).

- ddb-archiver: `restore --as-of T --import-format DIR` (the whole state computation,
  then every item written as gzip DynamoDB import lines; no network in the measurement).
- DuckDB: the same state with SQL over `read_parquet(...)`: each key's latest change at
  or before T by `row_number() OVER (PARTITION BY keys ORDER BY approximate_creation_time
  DESC, length(sequence_number) DESC, sequence_number DESC) = 1`, REMOVEs dropped, written
  as gzip JSON lines `{"Item": ...}` (`COPY ... (FORMAT json, COMPRESSION gzip)`).

Each is run as a whole process under GNU time (peak RSS) with wait4 (CPU time),
alternating, `--runs` times each (3 by default; medians). Prints both, the throughput
ratio (changes per second of ddb-archiver over DuckDB's) and both peak RSS, checks that
both wrote every item, and that ddb-archiver's peak RSS stays under the memory bound
stated in docs/restore.md (`--memory-budget` + the constant below).

  bench/restore.py [--bin target/release/ddb-archiver] [--records N --items N] [--runs 3]
                   [--archive DIR] [--json-out FILE] [--smoke]

`--archive DIR` keeps the generated archive there and reuses it on later runs (10 M changes
take minutes to generate). `--smoke` uses a few hundred changes and one run: a check for
CI, not a timing.
"""

import argparse
import glob
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from run import run_process  # noqa: E402

TABLE = "benchrestore"
AS_OF = "2026-03-04T00:00:00Z"
AS_OF_MS = 1_772_582_400_000
MIB = 1 << 20

# The peer: the as-of query DuckDB users would write. Prints the rows written.
DUCK = r"""
import sys, duckdb
archive, as_of_ms, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
con = duckdb.connect()
rows = con.execute(f'''
COPY (
  SELECT json(new_image) AS "Item" FROM (
    SELECT new_image, event_name,
           row_number() OVER (PARTITION BY keys ORDER BY approximate_creation_time DESC,
                              length(sequence_number) DESC, sequence_number DESC) AS rn
    FROM read_parquet('{archive}/**/*.parquet')
    WHERE epoch_ms(approximate_creation_time) <= {as_of_ms}
  ) WHERE rn = 1 AND event_name <> 'REMOVE'
) TO '{out}' (FORMAT json, COMPRESSION gzip)
''').fetchall()
print(rows[0][0])
"""


def memory_bound(budget, largest_file):
    """The bound on restore's peak RSS stated in docs/restore.md: the budget, plus per
    worker (at most 4) and per file fetched ahead (2) one archive file and its decoded
    columns (counted as 4 times the file), plus the import file being built (64 MiB of
    text before it is compressed and named by its digest), plus 64 MiB (program,
    runtime, Parquet reader, buffers)."""
    return budget + 6 * 4 * largest_file + 64 * MIB + 64 * MIB


def make_archive(binary, archive, records, items, work):
    events = os.path.join(work, "events.jsonl")
    subprocess.run([sys.executable, os.path.join(ROOT, "tests", "python", "gen_replay_events.py"),
                    "--records", str(records), "--items", str(items), "--days", "3",
                    "--per-event", "1000", "--pad", "100", "--table", TABLE, "--out", events], check=True)
    # One event file per 100 events, as a stream's batches would come.
    subprocess.run(["split", "-l", "100", events, os.path.join(work, "part-")], check=True)
    os.remove(events)
    parts = sorted(glob.glob(os.path.join(work, "part-*")))
    subprocess.run([binary, "archive", "--dest", archive, "--format", "parquet", *parts],
                   check=True, stdout=subprocess.DEVNULL)
    for p in parts:
        os.remove(p)
    with open(os.path.join(archive, "generated.json"), "w") as f:
        json.dump({"records": records, "items": items}, f)


def gz_lines(files):
    return sum(len(gzip.decompress(open(f, "rb").read()).splitlines()) for f in files)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "ddb-archiver"))
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--memory-budget", type=int, default=64 * MIB, help="as deployed (the default)")
    ap.add_argument("--runs", type=int, default=3, help="alternating runs of each; medians are reported")
    ap.add_argument("--archive", help="keep the generated archive here and reuse it on later runs")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    if args.smoke:
        args.records, args.items, args.runs = 400, 40, 1
    work = tempfile.mkdtemp(prefix="ddb-archiver-restore-bench-")
    try:
        archive = args.archive or os.path.join(work, "archive")
        made = os.path.join(archive, "generated.json")
        want = {"records": args.records, "items": args.items}
        if not (os.path.exists(made) and json.load(open(made)) == want):
            shutil.rmtree(archive, ignore_errors=True)
            make_archive(args.bin, archive, args.records, args.items, work)
        data = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(archive, TABLE)) for f in fs
                if f.endswith(".parquet")]
        size, largest = sum(map(os.path.getsize, data)), max(map(os.path.getsize, data))
        print(f"archive: {args.records:,} changes over {args.items:,} keys, {size / 1e6:.0f} MB of Parquet "
              f"in {len(data)} files (largest {largest / 1e6:.1f} MB)")

        spilled = []

        def ours_once():
            out = os.path.join(work, "import")
            shutil.rmtree(out, ignore_errors=True)
            cmd = [args.bin, "restore", "--source", archive, "--table", TABLE, "--as-of", AS_OF,
                   "--to-table", "unused", "--import-format", out,
                   "--memory-budget", str(args.memory_budget), "--json",
                   # The generated table began empty with its archive: no baseline to name.
                   "--allow-incomplete"]
            stdout, wall, cpu, rss = run_process(cmd)
            summary = json.loads(stdout)
            if summary["items"] != args.items or summary["changes_read"] != args.records:
                sys.exit(f"unexpected summary: {summary}")
            lines = gz_lines(summary["import_files"])
            if lines != args.items:
                sys.exit(f"ddb-archiver wrote {lines} import lines, expected {args.items}")
            spilled.append(summary["spilled_runs"])
            return wall, cpu, rss

        def duck_once():
            out = os.path.join(work, "duck.json.gz")
            if os.path.exists(out):
                os.remove(out)
            stdout, wall, cpu, rss = run_process([sys.executable, "-c", DUCK, archive, str(AS_OF_MS), out])
            if int(stdout.split()[-1]) != args.items or gz_lines([out]) != args.items:
                sys.exit(f"DuckDB wrote {stdout.split()[-1]} items, expected {args.items}")
            return wall, cpu, rss

        # Alternating runs, so both see the same state of the machine; medians.
        runs = {"ours": [], "duck": []}
        for _ in range(args.runs):
            runs["ours"].append(ours_once())
            runs["duck"].append(duck_once())

        def summary_of(samples):
            wall, cpu, rss = (statistics.median(x) for x in zip(*samples))
            return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "peak_rss_mib": round(rss / MIB, 1),
                    "changes_per_s": round(args.records / wall), "walls_s": [round(s[0], 3) for s in samples]}

        ours, duck = summary_of(runs["ours"]), summary_of(runs["duck"])
        peak = max(r[2] for r in runs["ours"])
        bound = memory_bound(args.memory_budget, largest)
        result = {
            "changes": args.records,
            "keys": args.items,
            "parquet_bytes": size,
            "files": len(data),
            "memory_budget": args.memory_budget,
            "spilled_runs": max(spilled),
            "runs": args.runs,
            "ddb_archiver": ours,
            "duckdb": duck,
            "throughput_ratio": round(duck["wall_s"] / ours["wall_s"], 3),
            "peak_rss_ratio": round(ours["peak_rss_mib"] / duck["peak_rss_mib"], 3),
            "peak_rss_max_mib": round(peak / MIB, 1),
            "memory_bound_mib": round(bound / MIB, 1),
        }
        print(f"medians of {args.runs} alternating runs each")
        print(f"{'':14} {'changes/s':>11} {'wall s':>8} {'CPU s':>8} {'peak RSS MiB':>13}")
        for name, r in [("ddb-archiver", ours), ("DuckDB", duck)]:
            print(f"{name:14} {r['changes_per_s']:11,} {r['wall_s']:8.2f} {r['cpu_s']:8.2f} "
                  f"{r['peak_rss_mib']:13.0f}")
        print(f"throughput ddb-archiver/DuckDB: {result['throughput_ratio']:.2f}x; "
              f"peak RSS ddb-archiver/DuckDB: {result['peak_rss_ratio']:.2f}; "
              f"{max(spilled)} sorted runs spilled")
        print(f"peak RSS {peak / MIB:.0f} MiB against the bound {bound / MIB:.0f} MiB "
              f"(budget {args.memory_budget / MIB:.0f} MiB + 24 x largest file + 64 MiB import file + 64 MiB)")
        if args.json_out:
            with open(args.json_out, "w") as f:
                json.dump(result, f, indent=2)
        if peak > bound:
            sys.exit(f"peak RSS {peak / MIB:.0f} MiB is over the stated bound {bound / MIB:.0f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
