"""`ddb-archiver baseline` against real parts on 127.0.0.1: moto's server as the DynamoDB
API, s3s-fs serving exports and archives.

Items are put into a moto table; the test reads them back (Scan, DynamoDB JSON) and
writes exports of them in DynamoDB's documented output layout (manifest-summary.json,
manifest-files.json with base64 MD5s, gzip JSON lines under data/, several data files
and an empty one), full and incremental. The archive is read back with pyarrow (Parquet)
and gzip (JSON lines) and compared byte for byte with the export lines.

Run by scripts/test.d/57-baseline.sh, which starts moto (MOTO_PORT) and s3s-fs
(S3_PORT, serving S3_ROOT) and builds the CLI.
"""

import base64
import gzip
import hashlib
import json
import os
import subprocess
import uuid
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest

from conftest import archiver_bin

MOTO = f"http://127.0.0.1:{os.environ.get('MOTO_PORT', '5000')}"
S3S = f"http://127.0.0.1:{os.environ.get('S3_PORT', '9000')}"
S3_ROOT = Path(os.environ.get("S3_ROOT", "/tmp/s3"))
REGION = os.environ.get("AWS_REGION", "us-east-1")
TABLE = "basetest"
BARE = "basetest-nostream"
N38 = "12345678901234567890123456789012345678"
EXPORT_TIME = "2026-03-01T12:00:00.000Z"
EXPORT_MS = 1_772_366_400_000


def env():
    e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    e.update(AWS_ENDPOINT_URL_DYNAMODB=MOTO, AWS_ENDPOINT_URL_S3=S3S)
    return e


def baseline(*args):
    return subprocess.run([archiver_bin(), "baseline", *args], capture_output=True, text=True, env=env())


def item(i):
    return {
        "pk": {"S": f"INV#{i:03d} ünï 😀"},
        "sk": {"N": str(i % 3)},
        "amount": {"N": f"{N38[:-2]}{i:02d}"},
        "tiny": {"N": "-1.5E-130"},
        "bin": {"B": bytes([0, 255, i % 256, 10])},
        "ss": {"SS": ["ü", f"s{i}"]},
        "m": {"M": {"l": {"L": [{"S": "日本"}, {"NULL": True}, {"BOOL": i % 2 == 0}]}}},
    }


def compact(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def exact(text):
    return json.loads(text, parse_float=str, parse_int=str)


@pytest.fixture(scope="session")
def ddb():
    return boto3.client("dynamodb", endpoint_url=MOTO, region_name=REGION)


@pytest.fixture(scope="session")
def table_items(ddb):
    """The items as moto holds them, read back with a Scan (DynamoDB JSON)."""
    for name, stream in [(TABLE, True), (BARE, False)]:
        spec = {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}} if stream else {}
        ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}],
            BillingMode="PAY_PER_REQUEST",
            **spec,
        )
    for i in range(60):
        ddb.put_item(TableName=TABLE, Item=item(i))
    ddb.put_item(TableName=BARE, Item=item(0))
    items, start = [], None
    while True:
        page = ddb.scan(TableName=TABLE, **({"ExclusiveStartKey": start} if start else {}))
        items += page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    assert len(items) == 60
    return items


def boto_to_json(v):
    """boto3's low-level item (bytes for B/BS) as DynamoDB JSON."""
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if k == "B":
                out[k] = base64.b64encode(x).decode()
            elif k == "BS":
                out[k] = [base64.b64encode(b).decode() for b in x]
            else:
                out[k] = boto_to_json(x)
        return out
    if isinstance(v, list):
        return [boto_to_json(x) for x in v]
    return v


def write_export(root: Path, export_id: str, files, summary_extra=None, table=TABLE):
    """An export folder: `files` is a list of (name, [line text]) (an empty list gives an
    empty file, as for an empty partition)."""
    data = root / "data"
    data.mkdir(parents=True)
    arn = f"arn:aws:dynamodb:{REGION}:123456789012:table/{table}"
    manifest = []
    total = 0
    for name, lines in files:
        body = gzip.compress("".join(l + "\n" for l in lines).encode()) if lines else b""
        (data / name).write_bytes(body)
        manifest.append(compact({
            "itemCount": len(lines),
            "md5Checksum": base64.b64encode(hashlib.md5(body).digest()).decode(),
            "etag": hashlib.md5(body).hexdigest(),
            "dataFileS3Key": f"exports/AWSDynamoDB/{export_id}/data/{name}",
        }))
        total += len(lines)
    (root / "manifest-files.json").write_text("\n".join(manifest) + "\n")
    summary = {
        "version": "2020-06-30",
        "exportArn": f"{arn}/export/{export_id}",
        "startTime": EXPORT_TIME,
        "endTime": "2026-03-01T12:05:00.000Z",
        "tableArn": arn,
        "tableId": str(uuid.uuid4()),
        "exportTime": EXPORT_TIME,
        "s3Bucket": "b",
        "s3Prefix": "exports",
        "s3SseAlgorithm": "AES256",
        "s3SseKmsKeyId": None,
        "manifestFilesS3Key": f"exports/AWSDynamoDB/{export_id}/manifest-files.json",
        "billedSizeBytes": 0,
        "itemCount": total,
        "outputFormat": "DYNAMODB_JSON",
        **(summary_extra or {}),
    }
    (root / "manifest-summary.json").write_text(json.dumps(summary, indent=2))
    (root / "_started").write_bytes(b"")


def s3_export(export_id, files, **kw):
    """An export placed in s3s-fs; returns its s3:// folder."""
    bucket = f"exp-{uuid.uuid4().hex[:8]}"
    write_export(S3_ROOT / bucket / "exports" / "AWSDynamoDB" / export_id, export_id, files, **kw)
    return f"s3://{bucket}/exports/AWSDynamoDB/{export_id}/"


def new_s3_dest():
    bucket = f"arch-{uuid.uuid4().hex[:8]}"
    (S3_ROOT / bucket).mkdir(parents=True)
    return f"s3://{bucket}/archive", S3_ROOT / bucket / "archive"


def archived_rows(root: Path):
    """Every row under the table's folder, read by pyarrow or gzip + json."""
    rows = []
    for p in sorted((root / TABLE).rglob("*")):
        if p.name.endswith(".parquet"):
            rows += pq.read_table(p).to_pylist()
        elif p.name.endswith(".json.gz"):
            rows += [json.loads(l) for l in gzip.decompress(p.read_bytes()).decode().splitlines()]
    return rows


def coverage_records(root: Path, table=TABLE):
    d = root / "ddb-archiver-coverage" / table
    return sorted(d.glob("*.json")) if d.is_dir() else []


def full_lines(table_items):
    return [compact({"Item": boto_to_json(i)}) for i in table_items]


def test_full_export_from_s3_survives_byte_exact_and_a_rerun_writes_nothing(table_items, tmp_path):
    lines = full_lines(table_items)
    export_id = "01772366400000-aaaa1111"
    src = s3_export(export_id, [("p1.json.gz", lines[:25]), ("p2.json.gz", []), ("p3.json.gz", lines[25:])])
    dest, dest_root = new_s3_dest()
    res = baseline("--dest", dest, "--export", src, "--table", TABLE, "--json")
    assert res.returncode == 0, res.stderr + res.stdout
    report = json.loads(res.stdout)
    assert report["items_read"] == 60 and report["changes"] == 60
    assert report["coverage"] == "written"
    assert report["complete_from"] == EXPORT_TIME
    rows = archived_rows(dest_root)
    assert sorted(r["record"] for r in rows) == sorted(lines)
    by_record = {l: exact(l)["Item"] for l in lines}
    for r in rows:
        assert r["sequence_number"] == "0"
        assert r["event_id"].startswith("baseline-") and len(r["event_id"]) == 41
        assert r["event_name"] == "INSERT"
        assert exact(r["new_image"]) == by_record[r["record"]]
        assert r["new_image"] in r["record"]
        assert exact(r["keys"]) == {k: by_record[r["record"]][k] for k in ("pk", "sk")}
    assert any(N38[:-2] in r["new_image"] for r in rows)
    cov = coverage_records(dest_root)
    assert [p.name for p in cov] == [f"baseline-{export_id}.json"]
    record = json.loads(cov[0].read_text())
    assert record["complete_from"] == EXPORT_TIME and record["change_count"] == 60
    for key in record["objects"]:
        assert (dest_root / key).is_file()

    again = baseline("--dest", dest, "--export", src, "--json")
    assert again.returncode == 0, again.stderr
    rerun = json.loads(again.stdout)
    assert rerun["objects_written"] == 0
    assert rerun["objects_already_present"] == report["objects_written"]
    assert rerun["coverage"] == "already_present"
    assert len(archived_rows(dest_root)) == 60


def test_full_export_from_a_directory_into_a_directory(table_items, tmp_path):
    lines = full_lines(table_items)
    export_id = "01772366400000-bbbb2222"
    export = tmp_path / "AWSDynamoDB" / export_id
    write_export(export, export_id, [("a.json.gz", lines[:10]), ("b.json.gz", lines[10:40]), ("c.json.gz", []), ("d.json.gz", lines[40:])])
    dest = tmp_path / "archive"
    res = baseline("--dest", str(dest), "--export", str(export), "--keys", "pk,sk", "--format", "jsonl.gz")
    assert res.returncode == 0, res.stderr + res.stdout
    assert "complete from 2026-03-01T12:00:00.000Z" in res.stdout
    rows = archived_rows(dest)
    # JSON lines embed the record as JSON: compared with every number as its text.
    assert sorted(compact(exact(compact(r["record"]))) for r in rows) == sorted(compact(exact(l)) for l in lines)
    raw = "".join(gzip.decompress(p.read_bytes()).decode() for p in (dest / TABLE).rglob("*.json.gz"))
    assert all(l[len('{"Item":'):-1] in raw for l in lines)
    assert all(r["approximate_creation_time"] == EXPORT_TIME for r in rows)


def test_incremental_export_is_a_repair_with_inserts_modifies_and_removes(table_items, tmp_path):
    lines = []
    for n, (old, new) in enumerate([(None, 1), (2, 3), (4, None)]):
        i = table_items[n]
        rec = {"Metadata": {"WriteTimeMicros": {"N": str((EXPORT_MS + n * 86_400_000) * 1000 + 123)}},
               "Keys": {"pk": i["pk"], "sk": i["sk"]}}
        if new is not None:
            rec["NewImage"] = boto_to_json(table_items[new]) | {"pk": i["pk"], "sk": i["sk"]}
        if old is not None:
            rec["OldImage"] = boto_to_json(table_items[old]) | {"pk": i["pk"], "sk": i["sk"]}
        lines.append(compact(rec))
    export_id = "01772366400000-cccc3333"
    src = s3_export(export_id, [("i1.json.gz", lines[:2]), ("i2.json.gz", lines[2:]), ("i3.json.gz", [])], summary_extra={
        "exportType": "INCREMENTAL_EXPORT", "exportFromTime": EXPORT_TIME,
        "exportToTime": "2026-03-04T00:00:00.000Z", "outputView": "NEW_AND_OLD_IMAGES"})
    dest = tmp_path / "archive"
    res = baseline("--dest", str(dest), "--export", src, "--json")
    assert res.returncode == 0, res.stderr + res.stdout
    report = json.loads(res.stdout)
    assert report["export_type"] == "INCREMENTAL_EXPORT"
    assert report["window"] == [EXPORT_TIME, "2026-03-04T00:00:00.000Z"]
    rows = sorted(archived_rows(dest), key=lambda r: r["approximate_creation_time"])
    assert [r["event_name"] for r in rows] == ["INSERT", "MODIFY", "REMOVE"]
    assert [r["record"] for r in rows] == lines
    assert all(r["event_id"].startswith("export-") and r["sequence_number"] == "0" for r in rows)
    assert rows[2]["new_image"] is None and rows[2]["old_image"] is not None
    assert [p.name for p in coverage_records(dest)] == [f"repair-{export_id}.json"]
    # Three UTC days: three partitions.
    assert len(list((dest / TABLE).glob("year=*/month=*/day=*"))) == 3


def test_bad_exports_are_refused_and_leave_no_coverage(table_items, tmp_path):
    lines = full_lines(table_items)[:5]
    dest = tmp_path / "archive"
    cases = []
    ion = s3_export("01772366400000-dddd4444", [("a.json.gz", lines)], summary_extra={"outputFormat": "ION"})
    cases.append((ion, [], "Ion"))
    other = s3_export("01772366400000-eeee5555", [("a.json.gz", lines)])
    cases.append((other, ["--table", "orders"], 'not "orders"'))
    bad_md5 = s3_export("01772366400000-ffff6666", [("a.json.gz", lines)])
    path = S3_ROOT / bad_md5[len("s3://"):] / "data" / "a.json.gz"
    path.write_bytes(gzip.compress(("\n".join(full_lines(table_items)[5:10]) + "\n").encode()))
    cases.append((bad_md5, [], "MD5"))
    for src, extra, expect in cases:
        res = baseline("--dest", str(dest), "--export", src, "--keys", "pk,sk", *extra)
        assert res.returncode == 1, res.stdout
        assert expect in res.stderr, res.stderr
        assert coverage_records(dest) == []


def test_scan_archives_every_item_byte_exact(ddb, table_items, tmp_path):
    dest = tmp_path / "archive"
    res = baseline("--dest", str(dest), "--scan", TABLE, "--segments", "3", "--max-read-units", "500", "--json")
    assert res.returncode == 0, res.stderr + res.stdout
    report = json.loads(res.stdout)
    assert report["export_type"] == "SCAN" and report["items_read"] == 60
    rows = archived_rows(dest)
    assert len(rows) == 60
    want = {compact(boto_to_json({k: i[k] for k in ("pk", "sk")})): boto_to_json(i) for i in table_items}
    for r in rows:
        assert r["sequence_number"] == "0" and r["event_id"].startswith("baseline-")
        image = exact(r["new_image"])
        assert image == want[compact({"pk": image["pk"], "sk": image["sk"]})]
        assert r["record"] == '{"Item":' + r["new_image"] + "}"
    assert N38[:-2] + "07" in "".join(r["new_image"] for r in rows)
    cov = coverage_records(dest)
    assert len(cov) == 1 and cov[0].name.startswith("baseline-scan-")
    assert json.loads(cov[0].read_text())["source"] == "scan"


def test_scan_of_a_table_without_a_stream_is_refused(table_items, tmp_path):
    dest = tmp_path / "archive"
    res = baseline("--dest", str(dest), "--scan", BARE)
    assert res.returncode == 1
    assert "no stream enabled" in res.stderr and "changes made while the Scan runs" in res.stderr
    assert not (dest / BARE).exists() and coverage_records(dest, BARE) == []
