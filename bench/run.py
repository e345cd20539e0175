#!/usr/bin/env python3
"""Side-by-side benchmark: `ddb-archiver archive` against the Python peer (bench/peer.py),
both run as whole processes, alternating, several times; prints medians and ratios.

  bench/run.py [--runs 7] [--bin target/release/ddb-archiver] [--smoke]

For each input (a maximum 6 MB Lambda batch of DynamoDB Streams changes, and the Kinesis
variant) and each format (parquet, jsonl.gz) it reports records/s and MB/s of input per
core (divided by the CPU time, user + system, of the process and all its threads), wall
time per batch, peak RSS; then cold start (wall time of a whole process archiving a
1-record event: start, load, decode, encode, write, exit), binary size, and jsonl.gz
against `gzip -6` of the same input bytes (CPU time and output size). Needs GNU time
(`/usr/bin/time`, Debian package `time`) for the peak RSS.

Every run must archive every record, and both programs must write the same object names
(same partitions, same first/last sequence numbers, same digests): otherwise it fails.
`--smoke` uses a tiny batch and one run, for CI; it checks, it does not time.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FORMATS = ["parquet", "jsonl.gz"]


TIME = "/usr/bin/time"  # GNU time (Debian package `time`), for the peak RSS


def run_process(cmd, stdout=subprocess.PIPE, env=None):
    """Runs cmd (in `env`, or this process's environment); returns (stdout bytes, wall s,
    cpu s, peak RSS bytes).

    The CPU time (user + system, all threads) comes from wait4. The peak RSS comes from
    GNU time, which forks while small: a child forked from this Python process would
    report the parent's pages as its own peak."""
    with tempfile.NamedTemporaryFile("r") as rss_file:
        start = time.perf_counter()
        proc = subprocess.Popen([TIME, "-f", "%M", "-o", rss_file.name] + cmd, stdout=stdout,
                                stderr=subprocess.PIPE, env=env)
        out = proc.stdout.read() if stdout == subprocess.PIPE else b""
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            sys.exit(f"{' '.join(cmd)} exited with {code}:\n{err.decode(errors='replace')}")
        rss_kib = int(rss_file.read().split()[-1])
    return out, wall, usage.ru_utime + usage.ru_stime, rss_kib * 1024


def files_under(root):
    names = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            names.append(os.path.relpath(os.path.join(dirpath, f), root))
    return sorted(names)


def dir_bytes(root):
    return sum(os.path.getsize(os.path.join(root, f)) for f in files_under(root))


class Runner:
    def __init__(self, args, work):
        self.args = args
        self.work = work

    def ours(self, fmt, path, dest):
        cmd = [self.args.bin, "archive", "--dest", dest, "--format", fmt, "--json", path]
        out, wall, cpu, rss = run_process(cmd)
        return json.loads(out)["archived"], wall, cpu, rss

    def peer(self, fmt, path, dest):
        cmd = [self.args.python, os.path.join(HERE, "peer.py"), "--dest", dest, "--format", fmt, path]
        out, wall, cpu, rss = run_process(cmd)
        return json.loads(out)["archived"], wall, cpu, rss

    def compare(self, fmt, path, records, runs):
        """Alternates ours and the peer; returns {who: [(wall, cpu, rss)]} and sizes."""
        results = {"ours": [], "peer": []}
        sizes = {}
        for i in range(runs):
            for who in ("ours", "peer") if i % 2 == 0 else ("peer", "ours"):
                dest = os.path.join(self.work, f"out-{who}")
                shutil.rmtree(dest, ignore_errors=True)
                archived, wall, cpu, rss = getattr(self, who)(fmt, path, dest)
                if archived != records:
                    sys.exit(f"{who} archived {archived} of {records} records ({fmt}, {path})")
                results[who].append((wall, cpu, rss))
                sizes[who] = dir_bytes(dest)
            ours_names = files_under(os.path.join(self.work, "out-ours"))
            peer_names = files_under(os.path.join(self.work, "out-peer"))
            if ours_names != peer_names:
                sys.exit(f"object names differ ({fmt}, {path}):\nours {ours_names}\npeer {peer_names}")
        return results, sizes


def gen(kind, out, max_bytes=None, records=None):
    cmd = [sys.executable, os.path.join(HERE, "gen.py"), "--kind", kind, "--out", out]
    if records:
        cmd += ["--records", str(records)]
    if max_bytes:
        cmd += ["--bytes", str(max_bytes)]
    subprocess.run(cmd, check=True)
    with open(out, "rb") as f:
        body = f.read()
    return len(body), len(json.loads(body)["Records"])


def med(values):
    return statistics.median(values)


def fmt_ratio(x):
    return f"{x:.1f}×" if x >= 10 else f"{x:.2f}×"


def du(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "ddb-archiver"))
    ap.add_argument("--python", default=sys.executable, help="Python with pyarrow and boto3")
    ap.add_argument("--smoke", action="store_true", help="tiny batch, one run: a check, not a timing")
    ap.add_argument("--json-out", help="also write the figures as JSON here")
    args = ap.parse_args()
    runs = 1 if args.smoke else args.runs
    work = tempfile.mkdtemp(prefix="ddb-archiver-bench-")
    try:
        return bench(args, runs, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench(args, runs, work):
    r = Runner(args, work)
    rows = []
    figures = {}
    inputs = {}
    for kind in ("stream", "kinesis"):
        path = os.path.join(work, f"{kind}.json")
        size, records = gen(kind, path, records=20 if args.smoke else None)
        inputs[kind] = (path, size, records)
        print(f"input {kind}: {records} records, {size} bytes", file=sys.stderr)

    def row(label, ours, peer, unit, better="higher", digits=1):
        ratio = ours / peer if better == "higher" else peer / ours
        rows.append((label, f"{ours:,.{digits}f} {unit}", f"{peer:,.{digits}f} {unit}", fmt_ratio(ratio)))

    for kind in ("stream", "kinesis"):
        path, size, records = inputs[kind]
        for fmt in FORMATS:
            res, sizes = r.compare(fmt, path, records, runs)
            o = {k: [x[i] for x in res["ours"]] for i, k in enumerate(("wall", "cpu", "rss"))}
            p = {k: [x[i] for x in res["peer"]] for i, k in enumerate(("wall", "cpu", "rss"))}
            key = f"{kind} {fmt}"
            figures[key] = {"records": records, "input_bytes": size, "ours": o, "peer": p, "output_bytes": sizes}
            row(f"{key}: records/s per core", records / med(o["cpu"]), records / med(p["cpu"]), "rec/s", digits=0)
            row(f"{key}: input MB/s per core", size / 1e6 / med(o["cpu"]), size / 1e6 / med(p["cpu"]), "MB/s")
            row(f"{key}: wall time per batch", med(o["wall"]) * 1000, med(p["wall"]) * 1000, "ms", better="lower")
            row(f"{key}: peak RSS", med(o["rss"]) / 2**20, med(p["rss"]) / 2**20, "MiB", better="lower")
            row(f"{key}: output size", sizes["ours"] / 1e6, sizes["peer"] / 1e6, "MB", better="lower", digits=2)
            print(f"done {key}", file=sys.stderr)

    # Cold start: a whole process archiving a 1-record event.
    one = os.path.join(work, "one.json")
    gen("stream", one, records=1)
    for fmt in FORMATS:
        res, _ = r.compare(fmt, one, 1, runs if args.smoke else max(runs, 7))
        o = [x[0] for x in res["ours"]]
        p = [x[0] for x in res["peer"]]
        figures[f"cold start {fmt}"] = {"ours": o, "peer": p}
        row(f"cold start, 1-record event ({fmt})", med(o) * 1000, med(p) * 1000, "ms", better="lower")

    # Binary size: the Lambda bootstrap if built (cargo lambda build --release --arm64),
    # and the CLI release binary; the peer needs pyarrow (boto3 ships with the runtime).
    import pyarrow  # noqa: E402  (the peer's own dependency, for its size)

    peer_pkg = du(os.path.dirname(pyarrow.__file__))
    bootstrap = os.path.join(ROOT, "target", "lambda", "ddb-archiver-lambda", "bootstrap")
    if os.path.exists(bootstrap):
        row("Lambda binary (arm64) vs pyarrow package", os.path.getsize(bootstrap) / 2**20, peer_pkg / 2**20, "MiB", better="lower")
    row("CLI binary (this machine) vs pyarrow package", os.path.getsize(args.bin) / 2**20, peer_pkg / 2**20, "MiB", better="lower")

    # jsonl.gz against gzip -6 of the same input bytes: the floor for gzip output.
    floor = []
    for kind in ("stream", "kinesis"):
        path, size, records = inputs[kind]
        cpus = []
        for _ in range(runs):
            gz = os.path.join(work, "floor.gz")
            with open(gz, "wb") as f:
                _, wall, cpu, _ = run_process(["gzip", "-6", "-c", path], stdout=f)
            cpus.append(cpu)
        gz_size = os.path.getsize(gz)
        ours = figures[f"{kind} jsonl.gz"]
        ours_cpu = med(ours["ours"]["cpu"])
        floor.append((f"{kind} jsonl.gz vs gzip -6: CPU time", f"{ours_cpu * 1000:,.0f} ms", f"{med(cpus) * 1000:,.0f} ms",
                      fmt_ratio(ours_cpu / med(cpus))))
        floor.append((f"{kind} jsonl.gz vs gzip -6: output size", f"{ours['output_bytes']['ours'] / 1e6:,.2f} MB",
                      f"{gz_size / 1e6:,.2f} MB", fmt_ratio(ours["output_bytes"]["ours"] / gz_size)))
        figures[f"gzip -6 {kind}"] = {"cpu": cpus, "bytes": gz_size}

    print(f"\n{runs} runs each, medians; ratio = how many times better ddb-archiver is.\n")
    print("| measure | ddb-archiver | Python peer | ratio |")
    print("|---|---:|---:|---:|")
    for label, a, b, ratio in rows:
        print(f"| {label} | {a} | {b} | {ratio} |")
    print("\n| floor | ddb-archiver | `gzip -6` of the input | ratio (ddb-archiver / gzip) |")
    print("|---|---:|---:|---:|")
    for label, a, b, ratio in floor:
        print(f"| {label} | {a} | {b} | {ratio} |")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(figures, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
