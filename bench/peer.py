#!/usr/bin/env python3
"""Reference peer: the same archiving job done the way a competent Python team would,
with boto3's TypeDeserializer, pyarrow and gzip.

  peer.py --dest DIR --format parquet|jsonl.gz FILE...

It produces the archive's columns and layout (docs/layout.md, "Columns" and "Archive layout"):
each change goes to <dest>/<table>/year=YYYY/month=MM/day=DD/ of its own event time,
one file per partition named <first-seq>-<last-seq>-<digest16>.<ext>, never overwriting.
Images are checked by deserialising them with TypeDeserializer (unknown types and bad
numbers are rejected) and kept as DynamoDB JSON. Rejected records are counted, not
written: the benchmark input has none.
"""

import argparse
import base64
import datetime
import decimal
import gzip
import hashlib
import json
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq
from boto3.dynamodb.types import TypeDeserializer



class StreamDeserializer(TypeDeserializer):
    """Stream events carry binary values as base64 text; the SDK's client hands bytes."""

    def _deserialize_b(self, value):
        return super()._deserialize_b(base64.b64decode(value))

    def _deserialize_bs(self, value):
        return {self._deserialize_b(v) for v in value}


DESER = StreamDeserializer()

SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), False),
        pa.field("event_name", pa.string(), False),
        pa.field("table_name", pa.string(), False),
        pa.field("sequence_number", pa.string(), False),
        pa.field("approximate_creation_time", pa.timestamp("ms", tz="UTC"), False),
        pa.field("stream_view_type", pa.string(), True),
        pa.field("size_bytes", pa.int64(), True),
        pa.field("ttl_delete", pa.bool_(), False),
        pa.field("keys", pa.string(), False),
        pa.field("new_image", pa.string(), True),
        pa.field("old_image", pa.string(), True),
        pa.field("record", pa.string(), False),
    ]
)


def table_from_arn(arn):
    if not arn or ":table/" not in arn:
        return None
    return arn.split(":table/", 1)[1].split("/", 1)[0] or None


def epoch_ms(value, unit):
    d = decimal.Decimal(str(value))
    if unit == "s" and d >= 10**11:
        unit = "ms"
    return int(d * 1000) if unit == "s" else int(d)


def check_image(image):
    # Deserialising every attribute validates types and numbers (DynamoDB's context).
    for v in image.values():
        DESER.deserialize(v)


def decode(rec):
    """One Lambda record -> a row dict with the archive columns."""
    if "kinesis" in rec:
        seq = rec["kinesis"]["sequenceNumber"]
        payload = base64.b64decode(rec["kinesis"]["data"])
        change = json.loads(payload, parse_float=decimal.Decimal)
        ddb = change["dynamodb"]
        table = change.get("tableName") or table_from_arn(change.get("eventSourceARN"))
        unit = "us" if ddb.get("ApproximateCreationDateTimePrecision") == "MICROSECOND" else "ms"
        t = epoch_ms(ddb["ApproximateCreationDateTime"], unit)
        if unit == "us":
            t //= 1000
    else:
        change = rec
        ddb = rec["dynamodb"]
        seq = ddb["SequenceNumber"]
        table = table_from_arn(rec.get("eventSourceARN")) or rec.get("tableName")
        t = epoch_ms(ddb["ApproximateCreationDateTime"], "s")
    if not seq.isdigit() or not table:
        raise ValueError(f"bad record {change.get('eventID')}")
    keys = ddb["Keys"]
    new = ddb.get("NewImage")
    old = ddb.get("OldImage")
    for image in (keys, new, old):
        if image is not None:
            check_image(image)
    name = change["eventName"]
    ttl = name == "REMOVE" and ((change.get("userIdentity") or {}).get("principalId") == "dynamodb.amazonaws.com")
    return {
        "event_id": change["eventID"],
        "event_name": name,
        "table_name": table,
        "sequence_number": seq,
        "approximate_creation_time": t,
        "stream_view_type": ddb.get("StreamViewType"),
        "size_bytes": ddb.get("SizeBytes"),
        "ttl_delete": ttl,
        "keys": keys,
        "new_image": new,
        "old_image": old,
        "record": change,
    }


def partition(row):
    day = datetime.datetime.fromtimestamp(row["approximate_creation_time"] / 1000, tz=datetime.timezone.utc)
    return f"{row['table_name']}/year={day.year:04d}/month={day.month:02d}/day={day.day:02d}/"


def default(o):
    if isinstance(o, decimal.Decimal):
        return float(o) if o != o.to_integral_value() else int(o)
    raise TypeError(type(o))


def dumps(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False, default=default)


def encode_parquet(rows):
    cols = {f.name: [] for f in SCHEMA}
    for r in rows:
        for k in ("event_id", "event_name", "table_name", "sequence_number", "approximate_creation_time",
                  "stream_view_type", "size_bytes", "ttl_delete"):
            cols[k].append(r[k])
        cols["keys"].append(dumps(r["keys"]))
        cols["new_image"].append(None if r["new_image"] is None else dumps(r["new_image"]))
        cols["old_image"].append(None if r["old_image"] is None else dumps(r["old_image"]))
        cols["record"].append(r["recordtext"])
    table = pa.Table.from_pydict(cols, schema=SCHEMA)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", row_group_size=65536)
    return sink.getvalue().to_pybytes()


def encode_jsonl(rows):
    lines = []
    for r in rows:
        t = datetime.datetime.fromtimestamp(r["approximate_creation_time"] / 1000, tz=datetime.timezone.utc)
        out = dict(r)
        del out["recordtext"]
        out["approximate_creation_time"] = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
        lines.append(dumps(out))
    return gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), compresslevel=6, mtime=0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dest", required=True)
    ap.add_argument("--format", choices=["parquet", "jsonl.gz"], default="parquet")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    parts = {}
    rejected = 0
    total = 0
    for path in args.files:
        with open(path, "rb") as f:
            event = json.loads(f.read(), parse_float=decimal.Decimal)
        for rec in event["Records"]:
            total += 1
            try:
                row = decode(rec)
            except (KeyError, ValueError, TypeError, decimal.DecimalException):
                rejected += 1
                continue
            row["recordtext"] = dumps(row["record"])
            parts.setdefault(partition(row), []).append(row)
    ext = "parquet" if args.format == "parquet" else "json.gz"
    files = 0
    for part in sorted(parts):
        rows = parts[part]
        h = hashlib.sha256()
        for r in rows:
            for p in (r["event_id"], r["sequence_number"], r["recordtext"]):
                b = p.encode("utf-8")
                h.update(len(b).to_bytes(8, "little"))
                h.update(b)
        body = encode_parquet(rows) if args.format == "parquet" else encode_jsonl(rows)
        name = f"{rows[0]['sequence_number']}-{rows[-1]['sequence_number']}-{h.hexdigest()[:16]}.{ext}"
        os.makedirs(os.path.join(args.dest, part), exist_ok=True)
        try:
            with open(os.path.join(args.dest, part, name), "xb") as f:
                f.write(body)
            files += 1
        except FileExistsError:
            pass
    print(json.dumps({"records": total, "archived": total - rejected, "rejected": rejected, "files": files}))
    return 2 if rejected else 0


if __name__ == "__main__":
    sys.exit(main())
