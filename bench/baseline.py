#!/usr/bin/env python3
"""Baseline benchmark: a full DynamoDB export in its documented layout
(`AWSDynamoDB/<ExportId>/` with `manifest-summary.json`, `manifest-files.json` and gzip
DYNAMODB_JSON data files), generated with at least `--gb` GB of uncompressed item JSON
over `--files` data files of realistic invoice items, archived by
`ddb-archiver baseline --export DIR --dest DIR` and, in the same run, read by `zcat` of
the same data files (the physical floor: decompressing the export and nothing else).
Reports, for both, MB/s of uncompressed item JSON (wall time) and peak RSS, the ratio
(target: at least a third of zcat's throughput), and checks that the archive holds every
item once (row count through DuckDB, and the coverage record's counts).

  bench/baseline.py [--bin target/release/ddb-archiver] [--gb 2.0] [--files 16] [--smoke]

`--smoke` uses a few thousand items: a check for CI, not a timing.
"""

import argparse
import base64
import gzip
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from run import run_process  # noqa: E402

TABLE = "benchbaseline"
EXPORT_ID = "01767225600000-b3nch000"
ACCOUNT_ARN = "arn:aws:dynamodb:eu-west-1:123456789012"
TABLE_ARN = f"{ACCOUNT_ARN}:table/{TABLE}"
EXPORT_TIME = "2026-01-01T00:00:00.000Z"
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()


def item_line(rng, i):
    """One export line: an invoice item in DynamoDB JSON (strings, numbers with many
    digits, a map, a list, a boolean, a string set), about 700 bytes."""
    lines = [{"M": {"sku": {"S": f"SKU-{rng.randrange(10**6):06d}"},
                    "qty": {"N": str(rng.randrange(1, 50))},
                    "price": {"N": f"{rng.randrange(1, 10**6)}.{rng.randrange(100):02d}"}}}
             for _ in range(rng.randrange(1, 4))]
    item = {
        "pk": {"S": f"INV#{i:012d}"},
        "customer": {"S": f"CUST#{rng.randrange(10**7):07d}"},
        "issued": {"S": f"2025-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T10:00:00Z"},
        "total": {"N": f"{rng.randrange(10**12)}.{rng.randrange(10**6):06d}"},
        "paid": {"BOOL": rng.random() < 0.7},
        "note": {"S": " ".join(rng.choice(WORDS) for _ in range(rng.randrange(8, 30)))},
        "address": {"M": {"street": {"S": f"{rng.randrange(1, 999)} {rng.choice(WORDS).title()} Street"},
                          "city": {"S": rng.choice(WORDS).title()}, "zip": {"S": f"{rng.randrange(10**5):05d}"}}},
        "lines": {"L": lines},
        "tags": {"SS": sorted({rng.choice(WORDS) for _ in range(3)})},
    }
    return json.dumps({"Item": item}, separators=(",", ":")) + "\n"


def make_export(root, target_bytes, files, seed=7):
    """Writes the export under root/AWSDynamoDB/<id>/; returns (folder, data files, items,
    uncompressed bytes)."""
    folder = os.path.join(root, "AWSDynamoDB", EXPORT_ID)
    data = os.path.join(folder, "data")
    os.makedirs(data)
    rng = random.Random(seed)
    per_file = target_bytes // files + 1
    entries, paths, total_items, total_bytes, i = [], [], 0, 0, 0
    for n in range(files):
        name = f"{hashlib.sha1(f'{seed}-{n}'.encode()).hexdigest()[:26]}.json.gz"
        path = os.path.join(data, name)
        count, size = 0, 0
        with open(path, "wb") as raw:
            # Level 1, as fast as DynamoDB's own files are cheap to read; one gzip member.
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz:
                buf = []
                while size < per_file:
                    line = item_line(rng, i)
                    buf.append(line)
                    size += len(line)
                    count += 1
                    i += 1
                    if len(buf) == 4096:
                        gz.write("".join(buf).encode())
                        buf = []
                gz.write("".join(buf).encode())
        md5 = hashlib.md5()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                md5.update(chunk)
        entries.append({"itemCount": count, "md5Checksum": base64.b64encode(md5.digest()).decode(),
                        "etag": md5.hexdigest(), "dataFileS3Key": f"AWSDynamoDB/{EXPORT_ID}/data/{name}"})
        paths.append(path)
        total_items += count
        total_bytes += size
    with open(os.path.join(folder, "manifest-files.json"), "w") as f:
        for e in entries:
            f.write(json.dumps(e) + "\n")
    summary = {
        "version": "2020-06-30", "exportArn": f"{TABLE_ARN}/export/{EXPORT_ID}",
        "startTime": EXPORT_TIME, "endTime": EXPORT_TIME, "tableArn": TABLE_ARN, "tableId": "bench",
        "exportTime": EXPORT_TIME, "s3Bucket": "bench", "s3Prefix": None, "s3SseAlgorithm": "AES256",
        "s3SseKmsKeyId": None, "manifestFilesS3Key": f"AWSDynamoDB/{EXPORT_ID}/manifest-files.json",
        "billedSizeBytes": total_bytes, "itemCount": total_items, "outputFormat": "DYNAMODB_JSON",
        "exportType": "FULL_EXPORT",
    }
    with open(os.path.join(folder, "manifest-summary.json"), "w") as f:
        json.dump(summary, f)
    return folder, paths, total_items, total_bytes


def count_rows(dest, fmt):
    import duckdb
    pattern = os.path.join(dest, TABLE, "**", "*.parquet" if fmt == "parquet" else "*.json.gz")
    con = duckdb.connect()
    if fmt == "parquet":
        return con.execute(f"SELECT count(*), count(DISTINCT event_id) FROM read_parquet('{pattern}')").fetchone()
    return con.execute(f"SELECT count(*), count(DISTINCT event_id) FROM read_json_auto('{pattern}', format='newline_delimited')").fetchone()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "ddb-archiver"))
    ap.add_argument("--gb", type=float, default=2.0, help="uncompressed item JSON, in GB (10^9 bytes)")
    ap.add_argument("--files", type=int, default=16, help="data files of the export")
    ap.add_argument("--format", default="parquet", choices=["parquet", "jsonl.gz"])
    ap.add_argument("--work", help="directory for the export and the archive (default: a temp dir)")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    if args.smoke:
        args.gb, args.files = 0.002, 3
    work = tempfile.mkdtemp(prefix="ddb-archiver-baseline-bench-", dir=args.work)
    try:
        folder, paths, items, raw_bytes = make_export(work, int(args.gb * 1e9), args.files)
        gz_bytes = sum(os.path.getsize(p) for p in paths)
        print(f"export: {len(paths)} data files, {items:,} items, {raw_bytes / 1e6:,.0f} MB item JSON, "
              f"{gz_bytes / 1e6:,.0f} MB gzip", flush=True)
        # The floor: decompress the same files (to /dev/null), nothing else.
        _, zwall, zcpu, zrss = run_process(["zcat", *paths], stdout=subprocess.DEVNULL)
        dest = os.path.join(work, "archive")
        cmd = [args.bin, "baseline", "--export", folder, "--dest", dest, "--table", TABLE,
               "--keys", "pk", "--format", args.format, "--json"]
        out, wall, cpu, rss = run_process(cmd)
        report = json.loads(out)
        if report.get("items_read") != items or report.get("changes") != items or report.get("coverage") != "written":
            sys.exit(f"unexpected report (expected {items} items and changes): {report}")
        rows, distinct = count_rows(dest, args.format)
        if rows != items or distinct != items:
            sys.exit(f"the archive holds {rows} rows ({distinct} distinct event IDs), expected {items}")
        mbps, zmbps = raw_bytes / 1e6 / wall, raw_bytes / 1e6 / zwall
        figures = {
            "items": items, "data_files": len(paths), "item_json_mb": round(raw_bytes / 1e6, 1),
            "gzip_mb": round(gz_bytes / 1e6, 1), "format": args.format,
            "baseline": {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "mb_per_s": round(mbps, 1),
                         "peak_rss_mib": round(rss / 2**20, 1)},
            "zcat": {"wall_s": round(zwall, 2), "cpu_s": round(zcpu, 2), "mb_per_s": round(zmbps, 1),
                     "peak_rss_mib": round(zrss / 2**20, 1)},
            "ratio_to_zcat": round(mbps / zmbps, 3),
            "target_met": mbps / zmbps >= 1 / 3,
        }
        print(f"ddb-archiver baseline: {wall:.1f} s wall, {cpu:.1f} s CPU, {mbps:,.1f} MB/s, "
              f"peak RSS {rss / 2**20:.0f} MiB")
        print(f"zcat:                  {zwall:.1f} s wall, {zcpu:.1f} s CPU, {zmbps:,.1f} MB/s, "
              f"peak RSS {zrss / 2**20:.0f} MiB")
        print(f"ratio {mbps / zmbps:.2f} of zcat's throughput (target >= 0.33: "
              f"{'met' if figures['target_met'] else 'NOT met'}); {rows:,} rows archived, one per item")
        if args.json_out:
            with open(args.json_out, "w") as f:
                json.dump(figures, f, indent=2)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
