"""Checks for the replay stage (scripts/test.d/50-replay.sh), reading what went in and
what came out independently of the archiver.

  same-records EVENTS OUT BATCH   OUT holds EVENTS' records once each, in stream order,
                                  in events of at most BATCH records
  selection EVENTS OUT [--from T] [--to T] [--event A,B]
                                  OUT holds exactly the selected records, in order
  summary FILE key=value...       the --json summary has these values (lists: length)
  same-rows DIR1 DIR2             two archives of a table (raw or compacted) hold the same rows
"""

import argparse
import datetime as dt
import glob
import gzip
import json
import os
import sys
from decimal import Decimal

import pyarrow.parquet as pq


def load_records(path):
    out = []
    with open(path) as f:
        for line in f:
            if line.strip():
                out.extend(json.loads(line, parse_float=Decimal)["Records"])
    return out


def load_events(path, batch=None):
    records = []
    with open(path) as f:
        for line in f:
            recs = json.loads(line, parse_float=Decimal)["Records"]
            assert recs, "empty event"
            if batch is not None:
                assert len(recs) <= batch, f"{len(recs)} records in an event, batch {batch}"
            assert len(line.encode()) <= 6 * 1024 * 1024
            records.extend(recs)
    return records


def time_ms(rec):
    return int(Decimal(rec["dynamodb"]["ApproximateCreationDateTime"]) * 1000)


def stream_order(records):
    seen, out = set(), []
    for r in sorted(records, key=lambda r: (time_ms(r), int(r["dynamodb"]["SequenceNumber"]))):
        if r["eventID"] not in seen:
            seen.add(r["eventID"])
            out.append(r)
    return out


def same_records(events, out, batch):
    want = stream_order(load_records(events))
    got = load_events(out, int(batch))
    assert len(got) == len(want), f"{len(got)} records replayed, {len(want)} archived"
    assert got == want, "replayed records differ from the archived ones"
    print(f"ok: {len(got)} records, once each, in stream order")


def selection(argv):
    p = argparse.ArgumentParser()
    p.add_argument("events")
    p.add_argument("out")
    p.add_argument("--from", dest="frm")
    p.add_argument("--to")
    p.add_argument("--event")
    a = p.parse_args(argv)
    ms = lambda s: int(dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000)
    lo = ms(a.frm) if a.frm else None
    hi = ms(a.to) if a.to else None
    names = a.event.split(",") if a.event else None
    want = [
        r for r in stream_order(load_records(a.events))
        if (lo is None or time_ms(r) >= lo) and (hi is None or time_ms(r) < hi)
        and (names is None or r["eventName"] in names)
    ]
    got = load_events(a.out)
    assert want, "the selection is empty"
    assert [r["eventID"] for r in got] == [r["eventID"] for r in want], "selection differs"
    assert got == want
    print(f"ok: {len(got)} selected records")


def summary(path, pairs):
    with open(path) as f:
        s = json.load(f)
    for pair in pairs:
        key, value = pair.split("=", 1)
        have = s[key]
        if isinstance(have, list):
            have = len(have)
        assert str(have) == value, f"{key} is {have}, expected {value}: {s}"
    print(f"ok: {' '.join(pairs)}")


JSON_COLUMNS = ("keys", "new_image", "old_image", "record")


def rows(table_dir):
    out = {}
    files = sorted(glob.glob(os.path.join(table_dir, "year=*/month=*/day=*/*")))
    assert files, f"no files under {table_dir}"
    for path in files:
        if path.endswith(".parquet"):
            t = pq.read_table(path)
            batch = t.to_pylist()
            for r in batch:
                # Compacted files name their version in one more column.
                r.pop("compaction_version", None)
                r["approximate_creation_time"] = int(r["approximate_creation_time"].timestamp() * 1000)
                for c in JSON_COLUMNS:
                    if r[c] is not None:
                        r[c] = json.loads(r[c], parse_float=Decimal)
        elif path.endswith(".json.gz"):
            with gzip.open(path, "rt") as f:
                batch = [json.loads(l, parse_float=Decimal) for l in f if l.strip()]
            for r in batch:
                r["approximate_creation_time"] = ms_iso(r["approximate_creation_time"])
        else:
            raise AssertionError(f"unexpected file {path}")
        for r in batch:
            prev = out.setdefault(r["event_id"], r)
            assert prev == r, f"two copies of {r['event_id']} differ"
    return out


def ms_iso(s):
    return int(dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000)


def same_rows(a, b):
    ra, rb = rows(a), rows(b)
    assert ra.keys() == rb.keys(), f"{len(ra)} rows vs {len(rb)} rows"
    for k in ra:
        assert ra[k] == rb[k], f"row {k} differs:\n{ra[k]}\n{rb[k]}"
    print(f"ok: {len(ra)} rows equal")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "same-records":
        same_records(*args)
    elif cmd == "selection":
        selection(args)
    elif cmd == "summary":
        summary(args[0], args[1:])
    elif cmd == "same-rows":
        same_rows(*args)
    else:
        sys.exit(f"unknown check {cmd}")


if __name__ == "__main__":
    main()
