#!/usr/bin/env python3
"""Compaction benchmark: one UTC day of raw Parquet (at least 1 GiB by default) written by
`ddb-archiver archive` as many small files, some changes archived twice; then

  - `ddb-archiver compact` of that day (external merge sort, bounded memory), and
  - DuckDB doing the same deduplicate-and-sort `COPY` to one Parquet file,

each run as a whole process under GNU time (peak RSS) with wait4 (CPU time), alternating,
`--runs` times each (3 by default; medians). Prints
throughput in MB/s of raw Parquet (wall clock), CPU seconds, peak RSS, and the ratios;
`--json FILE` also writes them. Both outputs must hold the same number of rows, which
must be the number of distinct changes generated.

  bench/compact_day.py [--bin target/release/ddb-archiver] [--raw-bytes 1073741824]
  bench/compact_day.py --smoke      # a few MB, one run: checks, does not time
  bench/compact_day.py --raw DIR    # generate the raw day into DIR once, reuse it after
  bench/compact_day.py --s3         # compact into a local S3 server (s3s-fs on PATH)

Compaction runs with the deployed settings (`--max-file-bytes`, `--memory-budget`: the
CDK app's defaults). Its peak RSS is checked against the memory bound stated in
docs/performance.md, `memory_bound(budget, runs)` below (the smoke run
fails when it is exceeded), and against the targets: under 1,500 MB resident and at most
1.5 bytes of temporary files per byte of raw Parquet.
"""

import argparse
import base64
import socket
import time
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run import run_process  # noqa: E402  (GNU time + wait4, shared with bench/run.py)

TABLE = "invoices"
DAY_START = 1767225600  # 2026-01-01T00:00:00Z
ARN = f"arn:aws:dynamodb:eu-west-1:123456789012:table/{TABLE}/stream/2026-01-01T00:00:00.000"


def record(rng, i):
    """One MODIFY of an invoice-like item, about 2 KB, with an incompressible blob."""
    item = i % 50_000
    secs = DAY_START + rng.randrange(86_400)
    seq = 4_421_584_500_000_000_017_450_439_091 + i * 1000 + rng.randint(0, 999)
    blob = base64.b64encode(rng.randbytes(300)).decode()
    amount = f"{rng.randint(0, 10**12)}.{rng.randint(0, 99):02d}"
    image = (
        f'{{"pk":{{"S":"INV#{item:08d}"}},"amount":{{"N":"{amount}"}},'
        f'"customer":{{"S":"CUST#{rng.randint(0, 99999):05d}"}},"blob":{{"B":"{blob}"}},'
        f'"lines":{{"L":[{{"M":{{"sku":{{"S":"SKU-{rng.randint(0, 9999)}"}},"qty":{{"N":"{rng.randint(1, 50)}"}}}}}}]}},'
        f'"status":{{"S":"{rng.choice(["DRAFT", "ISSUED", "PAID", "VOID"])}"}}}}'
    )
    return (
        f'{{"eventID":"{rng.getrandbits(128):032x}","eventName":"MODIFY","eventVersion":"1.1",'
        f'"eventSource":"aws:dynamodb","awsRegion":"eu-west-1","dynamodb":{{'
        f'"ApproximateCreationDateTime":{secs},"Keys":{{"pk":{{"S":"INV#{item:08d}"}}}},'
        f'"NewImage":{image},"OldImage":{image},"SequenceNumber":"{seq}","SizeBytes":1800,'
        f'"StreamViewType":"NEW_AND_OLD_IMAGES"}},"eventSourceARN":"{ARN}"}}'
    )


def raw_bytes(raw):
    total = 0
    for dirpath, _, files in os.walk(raw):
        total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files if f.endswith(".parquet"))
    return total


def make_raw_day(binary, raw, target, work, batches):
    """Archives batches of 1,000 changes (files of 2,000) until the day's raw Parquet
    reaches `target` bytes; every 20th batch is archived a second time. Returns the
    number of distinct changes."""
    rng = random.Random(20260101)
    distinct = 0
    chunk = 0
    while raw_bytes(raw) < target:
        path = os.path.join(work, f"events-{chunk}.jsonl")
        again = os.path.join(work, f"again-{chunk}.jsonl")
        with open(path, "w") as out, open(again, "w") as dup:
            for b in range(batches):
                batch = [record(rng, distinct + k) for k in range(1000)]
                distinct += 1000
                line = '{"Records":[' + ",".join(batch) + "]}\n"
                out.write(line)
                if b % 20 == 0:
                    dup.write(line)
        for f in (path, again):
            subprocess.run(
                [binary, "archive", "--dest", raw, "--format", "parquet", "--max-file-records", "2000", f],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            os.remove(f)
        chunk += 1
    return distinct


DUCK = """
import duckdb, sys
raw, out = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute(f'''
COPY (
  SELECT * EXCLUDE (copy) FROM (
    SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY sequence_number) AS copy
    FROM read_parquet('{raw}/**/*.parquet')
  ) WHERE copy = 1
  ORDER BY approximate_creation_time, length(sequence_number), sequence_number
) TO '{out}' (FORMAT parquet, COMPRESSION zstd)
''')
print(con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0])
"""


MIB = 1 << 20


ROW_GROUP_BYTES = 128 * MIB  # the compactor's row groups (compact::ROW_GROUP_BYTES)


def memory_bound(budget, spilled_runs):
    """Peak resident memory of `compact`, bytes: the sort budget, two row groups (the one
    being encoded, and its chunks while they are written out), one batch per spilled run
    while merging (about 1 MiB, decompressed), and a fixed part for the program, the
    merged batches ahead of the encoders, the file pieces on their way to storage, the
    reading threads' batches and fetched sources (measured: see performance.md). Files
    are streamed, never held whole, so their size does not count."""
    return budget + 2 * ROW_GROUP_BYTES + spilled_runs * MIB + 640 * MIB


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_s3(work):
    """s3s-fs on a free loopback port with a bucket `bench`; (process, env for the CLI)."""
    root = os.path.join(work, "s3")
    os.makedirs(os.path.join(root, "bench"))
    port = free_port()
    proc = subprocess.Popen(["s3s-fs", "--host", "127.0.0.1", "--port", str(port),
                             "--access-key", "bench", "--secret-key", "bench-secret-0123456789", root],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        with socket.socket() as c:
            if c.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    env = dict(os.environ, AWS_ENDPOINT_URL_S3=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="bench",
               AWS_SECRET_ACCESS_KEY="bench-secret-0123456789", AWS_REGION="us-east-1",
               AWS_EC2_METADATA_DISABLED="true")
    return proc, env, root


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(HERE), "target", "release", "ddb-archiver"))
    ap.add_argument("--raw-bytes", type=int, default=1 << 30)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--runs", type=int, default=3, help="alternating runs of each; medians are reported")
    ap.add_argument("--raw", help="keep the generated raw day here and reuse it on later runs")
    ap.add_argument("--s3", action="store_true", help="compact into a local S3 server (s3s-fs)")
    ap.add_argument("--max-file-bytes", type=int, default=256 * MIB, help="as deployed (compactMaxFileBytes)")
    ap.add_argument("--memory-budget", type=int, default=64 * MIB, help="as deployed")
    args = ap.parse_args()
    target = 2 << 20 if args.smoke else args.raw_bytes
    work = tempfile.mkdtemp(prefix="ddb-compact-bench-")
    s3 = None
    try:
        raw = args.raw or os.path.join(work, "raw")
        count = os.path.join(raw, "distinct-changes.txt")
        if args.raw and os.path.exists(count):
            with open(count) as f:
                distinct = int(f.read())
        else:
            distinct = make_raw_day(args.bin, raw, target, work, 5 if args.smoke else 50)
            with open(count, "w") as f:
                f.write(str(distinct))
        size = raw_bytes(raw)
        files = sum(sum(n.endswith(".parquet") for n in f) for _, _, f in os.walk(raw))
        print(f"raw day: {size / 1e6:.0f} MB of Parquet in {files} files, {distinct} distinct changes")

        env = None
        if args.s3:
            s3, env, s3_root = start_s3(work)

        def ours_once():
            if args.s3:
                out = os.path.join(s3_root, "bench", "compacted")
                dest = "s3://bench/compacted/"
            else:
                out = dest = os.path.join(work, "compacted")
            shutil.rmtree(out, ignore_errors=True)
            summary, wall, cpu, rss = run_process(
                [args.bin, "compact", "--source", raw, "--dest", dest, "--json",
                 "--max-file-bytes", str(args.max_file_bytes), "--memory-budget", str(args.memory_budget)],
                env=env)
            days = json.loads(summary)["days"]
            rows = sum(d["rows"] for d in days)
            if rows != distinct:
                sys.exit(f"compact wrote {rows} rows, expected {distinct}")
            spilled.append(sum(d["spilled_bytes"] for d in days))
            runs_spilled.append(sum(d["spilled_runs"] for d in days))
            compacted.append(sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out)
                                 for f in fs if f.endswith(".parquet")))
            return wall, cpu, rss

        def duck_once():
            duck_out = os.path.join(work, "duck.parquet")
            if os.path.exists(duck_out):
                os.remove(duck_out)
            counted, wall, cpu, rss = run_process([sys.executable, "-c", DUCK, raw, duck_out])
            if int(counted.split()[-1]) != distinct:
                sys.exit(f"DuckDB wrote {counted.split()[-1]} rows, expected {distinct}")
            return wall, cpu, rss

        spilled, compacted, runs_spilled = [], [], []

        # Alternating runs, so both see the same state of the machine; medians.
        runs = {"ours": [], "duck": []}
        for _ in range(1 if args.smoke else args.runs):
            subprocess.run(["sync"], check=False)
            runs["ours"].append(ours_once())
            subprocess.run(["sync"], check=False)
            runs["duck"].append(duck_once())

        def summary_of(samples):
            wall, cpu, rss = (statistics.median(x) for x in zip(*samples))
            return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mib": rss / 2**20, "mb_per_s": size / 1e6 / wall,
                    "walls_s": [s[0] for s in samples]}

        ours, duck = summary_of(runs["ours"]), summary_of(runs["duck"])

        bound = memory_bound(args.memory_budget, max(runs_spilled))
        peak = max(r[2] for r in runs["ours"])
        result = {
            "destination": "s3s-fs" if args.s3 else "directory",
            "max_file_bytes": args.max_file_bytes,
            "memory_budget": args.memory_budget,
            "spilled_runs": max(runs_spilled),
            "memory_bound_mib": bound / MIB,
            "peak_rss_max_mib": peak / MIB,
            "raw_parquet_bytes": size,
            "raw_files": files,
            "distinct_changes": distinct,
            "runs": len(runs["ours"]),
            "spilled_bytes": max(spilled),
            "spilled_per_raw_byte": max(spilled) / size,
            "compacted_bytes": compacted[-1],
            "ddb_archiver": ours,
            "duckdb": duck,
            "throughput_ratio": ours["mb_per_s"] / duck["mb_per_s"],
            "peak_rss_ratio": ours["peak_rss_mib"] / duck["peak_rss_mib"],
        }
        print(f"medians of {result['runs']} alternating runs each")
        print(f"{'':14} {'MB/s':>8} {'wall s':>8} {'CPU s':>8} {'peak RSS MiB':>13}")
        for name, r in [("ddb-archiver", ours), ("DuckDB", duck)]:
            print(f"{name:14} {r['mb_per_s']:8.1f} {r['wall_s']:8.2f} {r['cpu_s']:8.2f} {r['peak_rss_mib']:13.0f}")
        print(f"compacted: {compacted[-1] / 1e6:.0f} MB of Parquet ({compacted[-1] / size:.2f} of the raw day)")
        print(f"temporary files: {max(spilled) / 1e6:.0f} MB ({max(spilled) / size:.2f} bytes per byte of raw Parquet)")
        print(
            f"throughput ddb-archiver/DuckDB: {result['throughput_ratio']:.2f}x; "
            f"peak RSS ddb-archiver/DuckDB: {result['peak_rss_ratio']:.2f}"
        )
        print(f"peak RSS {peak / MIB:.0f} MiB against the bound {bound / MIB:.0f} MiB "
              f"(budget + 2 x row group + {max(runs_spilled)} runs x 1 MiB + 640 MiB); "
              f"targets: under 1,500 MB resident ({'met' if peak < 1500e6 else 'NOT met'}), "
              f"temporary files at most 1.5x raw ({'met' if max(spilled) <= 1.5 * size else 'NOT met'})")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=2)
        if peak > bound:
            sys.exit(f"peak RSS {peak / MIB:.0f} MiB is over the stated bound {bound / MIB:.0f} MiB")
    finally:
        if s3 is not None:
            s3.terminate()
            s3.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
