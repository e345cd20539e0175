"""The maintenance function's baseline actions under `cargo lambda watch` (the real
runtime) against an s3s-fs S3 server: an export in the documented layout (several data
files, one of them empty as for an empty partition) is uploaded under BASELINE_EXPORTS,
archived batch by batch as the baseline workflow's Distributed Map does, then completed
with its coverage record; retries write nothing new, and bad events are refused.

Run by scripts/test.d/58-baseline-lambda.sh (it builds the binary).
"""

import base64
import gzip
import hashlib
import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import botocore.config
import pytest

from test_lambda import ACCESS_KEY, SECRET_KEY, free_port, parse, stop, wait_port

ROOT = Path(__file__).resolve().parents[2]
TABLE = "invoices"
TABLE_ARN = f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}"
EXPORT_ID = "01767225600000-abcdef01"
EXPORT_ARN = f"{TABLE_ARN}/export/{EXPORT_ID}"
EXPORT_TIME = "2026-03-01T12:00:00.000Z"
FOLDER = f"exp/AWSDynamoDB/{EXPORT_ID}/"
EXPORT_URL = f"s3://exports/{FOLDER}"


def items():
    """Items of every type, numbers with 38 digits, unicode, binary."""
    out = []
    for i in range(60):
        out.append({
            "pk": {"S": f"INV#{i:04d}"},
            "total": {"N": f"1234567890123456789012345678901234567.{i}"},
            "name": {"S": f"caf\u00e9 \u2603 #{i}"},
            "blob": {"B": base64.b64encode(bytes([i, 0, 255, 7])).decode()},
            "tags": {"SS": ["a", f"t{i}"]},
            "lines": {"L": [{"M": {"qty": {"N": str(i)}, "ok": {"BOOL": i % 2 == 0}}}, {"NULL": True}]},
        })
    return out


def gz(lines):
    return gzip.compress("".join(lines).encode(), mtime=0)


def md5_b64(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def build_export(s3):
    """Uploads the export; returns (manifest lines, export lines by pk)."""
    lines = [json.dumps({"Item": it}, ensure_ascii=False, separators=(",", ":")) + "\n" for it in items()]
    files = [("aaaaaaaaaaaaaaaaaaaaaaaaaa.json.gz", lines[:25]),
             ("bbbbbbbbbbbbbbbbbbbbbbbbbb.json.gz", []),  # an empty partition
             ("cccccccccccccccccccccccccc.json.gz", lines[25:])]
    manifest = []
    for name, part in files:
        body = gz(part) if part else b""
        key = f"{FOLDER}data/{name}"
        s3.put_object(Bucket="exports", Key=key, Body=body)
        manifest.append({"itemCount": len(part), "md5Checksum": md5_b64(body), "etag": hashlib.md5(body).hexdigest(),
                         "dataFileS3Key": key})
    s3.put_object(Bucket="exports", Key=f"{FOLDER}manifest-files.json",
                  Body="".join(json.dumps(m) + "\n" for m in manifest).encode())
    summary = {"version": "2020-06-30", "exportArn": EXPORT_ARN, "startTime": EXPORT_TIME, "endTime": EXPORT_TIME,
               "tableArn": TABLE_ARN, "tableId": "t", "exportTime": EXPORT_TIME, "s3Bucket": "exports",
               "s3Prefix": "exp", "s3SseAlgorithm": "AES256", "s3SseKmsKeyId": None,
               "manifestFilesS3Key": f"{FOLDER}manifest-files.json", "billedSizeBytes": 1000,
               "itemCount": len(lines), "outputFormat": "DYNAMODB_JSON", "exportType": "FULL_EXPORT"}
    s3.put_object(Bucket="exports", Key=f"{FOLDER}manifest-summary.json", Body=json.dumps(summary).encode())
    return manifest, {json.loads(line)["Item"]["pk"]["S"]: line.rstrip("\n") for line in lines}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("s3")
    s3_port, fn_port = free_port(), free_port()
    s3s = subprocess.Popen(["s3s-fs", "--host", "127.0.0.1", "--port", str(s3_port), "--access-key", ACCESS_KEY,
                            "--secret-key", SECRET_KEY, str(root)], start_new_session=True)
    watch = None
    try:
        wait_port(s3_port)
        endpoint = f"http://127.0.0.1:{s3_port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                          aws_secret_access_key=SECRET_KEY,
                          config=botocore.config.Config(s3={"addressing_style": "path"}))
        for b in ("exports", "archive"):
            s3.create_bucket(Bucket=b)
        manifest, lines = build_export(s3)
        fn_env = dict(os.environ)
        fn_env.update({
            "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": endpoint,
            "ARCHIVE_ROLE": "maintenance", "ARCHIVE_SOURCE": "s3://archive/raw/",
            "COMPACT_DEST": "s3://archive/compacted/", "BASELINE_EXPORTS": "s3://exports/exp/",
            "ARCHIVE_FORMAT": "jsonl.gz", "RUST_LOG": "info",
        })
        log = tmp_path_factory.mktemp("watch") / "watch.log"
        with open(log, "wb") as f:
            watch = subprocess.Popen(
                ["cargo", "lambda", "watch", "--ignore-changes", "--invoke-address", "127.0.0.1",
                 "--invoke-port", str(fn_port), "--bin", "ddb-archiver-lambda"],
                cwd=ROOT, env=fn_env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        wait_port(fn_port, 300)
        yield {"s3": s3, "port": fn_port, "manifest": manifest, "lines": lines, "root": root, "log": log}
    finally:
        if watch is not None:
            stop(watch)
        stop(s3s)


def invoke(env, event):
    """(ok, payload): the function's answer, or its error message (`cargo lambda watch`
    answers a function error with HTTP 500 and the runtime's error document)."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{env['port']}/2015-03-31/functions/ddb-archiver-lambda/invocations",
        data=json.dumps(event).encode(), method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=900) as r:
            return True, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        body = e.read().decode(errors="replace")
        if e.code != 500:
            raise AssertionError(f"invoking {event}: HTTP {e.code} {body}") from e
        try:
            return False, json.loads(body)["errorMessage"]
        except (ValueError, KeyError) as bad:
            raise AssertionError(f"invoking {event}: HTTP 500 without an error document: {body}") from bad


def archive_keys(s3, prefix="raw/"):
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="archive", Prefix=prefix):
        out += [o["Key"] for o in page.get("Contents", [])]
    return sorted(out)


def test_baseline_batches_then_coverage(env):
    s3, manifest = env["s3"], env["manifest"]

    # Before any batch: nothing is recorded, and the missing data file is named.
    ok, err = invoke(env, {"action": "baseline-complete", "export": EXPORT_URL})
    assert not ok and "has not been archived" in err and "data/aaaa" in err, err
    assert archive_keys(s3, "raw/ddb-archiver-coverage/") == []

    # Two batches, as the Distributed Map sends them: manifest lines, or bare keys.
    ok, first = invoke(env, {"action": "baseline", "export": EXPORT_URL, "files": manifest[:2], "keys": "pk"})
    assert ok, first
    first = first["baseline"]
    assert (first["files"], first["item_count"], first["change_count"]) == (2, 25, 25), first
    assert first["objects_written"] >= 1 and first["objects_already_present"] == 0, first
    ok, second = invoke(env, {"action": "baseline", "export": EXPORT_URL,
                              "files": [manifest[2]["dataFileS3Key"]], "keys": "pk"})
    assert ok, second
    assert second["baseline"]["item_count"] == 35, second

    ok, done = invoke(env, {"action": "baseline-complete", "export": EXPORT_URL})
    assert ok, done
    done = done["baseline_complete"]
    key = f"ddb-archiver-coverage/{TABLE}/baseline-{EXPORT_ID}.json"
    assert done["coverage"] == key and done["outcome"] == "written", done
    assert (done["files"], done["item_count"], done["change_count"]) == (3, 60, 60), done
    record = json.loads(s3.get_object(Bucket="archive", Key=f"raw/{key}")["Body"].read())
    assert record["kind"] == "baseline" and record["export_arn"] == EXPORT_ARN, record
    assert record["export_type"] == "FULL_EXPORT" and record["item_count"] == 60, record
    data_keys = [k for k in archive_keys(s3) if k.startswith(f"raw/{TABLE}/")]
    assert sorted(record["objects"]) == sorted(k[len("raw/"):] for k in data_keys), record

    # Every item once, as a baseline row at the export time, its line kept as the record.
    rows = []
    for k in data_keys:
        body = gzip.decompress(s3.get_object(Bucket="archive", Key=k)["Body"].read()).decode()
        rows += [parse(line) for line in body.splitlines() if line]
    assert len(rows) == 60
    by_pk = {r["new_image"]["pk"]["S"]: r for r in rows}
    assert len(by_pk) == 60
    for pk, line in env["lines"].items():
        r = by_pk[pk]
        assert r["sequence_number"] == "0" and r["event_name"] == "INSERT", r
        assert r["event_id"].startswith("baseline-") and len(r["event_id"]) == len("baseline-") + 32
        assert r["new_image"] == parse(line)["Item"]
        assert r["new_image"]["total"]["N"] == parse(line)["Item"]["total"]["N"]
    assert all(k.split("/")[-1].startswith("0-0-") for k in data_keys)
    assert all("/year=2026/month=03/day=01/" in k for k in data_keys)

    # Retries write nothing new; the record is found present.
    before = archive_keys(s3)
    ok, again = invoke(env, {"action": "baseline", "export": EXPORT_URL, "files": manifest, "keys": "pk"})
    assert ok and again["baseline"]["objects_written"] == 0, again
    ok, done2 = invoke(env, {"action": "baseline-complete", "export": EXPORT_URL})
    assert ok and done2["baseline_complete"]["outcome"] == "already_present", done2
    assert archive_keys(s3) == before


def test_bad_events_are_refused(env):
    manifest = env["manifest"]
    cases = [
        ({"action": "baseline", "export": "s3://archive/raw/", "files": manifest[:1]}, "BASELINE_EXPORTS"),
        ({"action": "baseline", "export": "s3://exports/exp/../x/AWSDynamoDB/1/", "files": manifest[:1]}, ".."),
        ({"action": "baseline", "export": EXPORT_URL, "files": ["exp/AWSDynamoDB/other/data/x.json.gz"]},
         "is not a data file of export"),
        ({"action": "baseline", "export": EXPORT_URL, "files": []}, "names no data files"),
        ({"action": "baseline", "export": EXPORT_URL, "files": manifest[:1], "table": "orders"},
         'not "orders"'),
        ({"action": "baseline", "files": manifest[:1]}, 'has no "export"'),
    ]
    for event, expected in cases:
        ok, err = invoke(env, event)
        assert not ok and expected in err, (event, err)


def test_a_changed_data_file_is_refused(env):
    s3, manifest = env["s3"], env["manifest"]
    key = manifest[0]["dataFileS3Key"]
    original = s3.get_object(Bucket="exports", Key=key)["Body"].read()
    s3.put_object(Bucket="exports", Key=key, Body=original[:-8])  # truncated
    try:
        ok, err = invoke(env, {"action": "baseline", "export": EXPORT_URL, "files": manifest[:1], "keys": "pk"})
        assert not ok and "MD5" in err and "aaaa" in err, err
    finally:
        s3.put_object(Bucket="exports", Key=key, Body=original)

