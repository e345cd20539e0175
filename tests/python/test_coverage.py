"""Coverage end to end with the CLI: a table whose items existed before archiving began.

Items are put into a moto table; stream changes after the export are archived with
`ddb-archiver archive`; a full export of the items, in DynamoDB's documented layout, is
archived with `ddb-archiver baseline`. Then, against real parts (moto as restore's
target, pyarrow as the compacted layer's reader):
- `coverage` names the baseline and the first and last stream change;
- `restore` as of times after the baseline gives the true state, items never changed
  after it included; before it (or with no baseline) it is refused and writes nothing;
- `replay` leaves the baseline rows out, and `--include-baseline` sends them as
  synthetic stream records;
- `compact` and `verify` over a day that mixes baseline and stream rows.
"""

import base64
import json
import os
import subprocess
import uuid
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest

from conftest import archiver_bin
from test_baseline import write_export

MOTO = f"http://127.0.0.1:{os.environ.get('MOTO_PORT', '5000')}"
REGION = os.environ.get("AWS_REGION", "us-east-1")
TABLE = "covtest"
EXPORT_TIME = "2026-03-01T12:00:00.000Z"
EXPORT_MS = 1_772_366_400_000
EXPORT_ID = "01772366400000-c0ffee00"
EXPORT_ARN = f"arn:aws:dynamodb:{REGION}:123456789012:table/{TABLE}/export/{EXPORT_ID}"
N38 = "12345678901234567890123456789012345678"
ITEMS = 25


def env():
    e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    e.update(AWS_ENDPOINT_URL_DYNAMODB=MOTO)
    return e


def cli(*args):
    return subprocess.run([archiver_bin(), *map(str, args)], capture_output=True, text=True, env=env(), timeout=300)


def compact_json(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def item(i, v=0):
    return {
        "pk": {"S": f"INV#{i:03d} ü"},
        "v": {"N": str(v)},
        "amount": {"N": N38},
        "bin": {"B": base64.b64encode(bytes([0, 255, i])).decode()},
    }


def key(i):
    return {"pk": {"S": f"INV#{i:03d} ü"}}


def iso(ms):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def stream_changes():
    """(name, item, time ms, v) after the export: modifies (one at the export time
    exactly), a remove, inserts of new items, and a modify the next day."""
    out = [("MODIFY", 0, EXPORT_MS, 1)]
    out += [("MODIFY", i, EXPORT_MS + i * 60_000, 1) for i in range(1, 4)]
    out += [("REMOVE", 4, EXPORT_MS + 3_600_000, 0)]
    out += [("INSERT", i, EXPORT_MS + 7_200_000 + i * 1000, 1) for i in range(ITEMS, ITEMS + 3)]
    out += [("MODIFY", 1, EXPORT_MS + 86_400_000, 2)]
    return out


def stream_record(n, name, i, ms, v):
    images = {
        "INSERT": {"NewImage": item(i, v)},
        "MODIFY": {"NewImage": item(i, v), "OldImage": item(i, v - 1)},
        "REMOVE": {"OldImage": item(i, 0)},
    }[name]
    return compact_json({
        "eventID": f"ev-{n}", "eventName": name, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "dynamodb": {"ApproximateCreationDateTime": ms // 1000, "Keys": key(i), **images,
                     "SequenceNumber": str(1000 + n), "SizeBytes": 60, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        "eventSourceARN": f"arn:aws:dynamodb:{REGION}:123456789012:table/{TABLE}/stream/2026-03-01T00:00:00.000",
    })


def state_at(ms):
    state = {}
    if ms >= EXPORT_MS:
        state = {json.dumps(key(i), sort_keys=True): item(i) for i in range(ITEMS)}
    for name, i, t, v in stream_changes():
        if t <= ms:
            k = json.dumps(key(i), sort_keys=True)
            if name == "REMOVE":
                state.pop(k, None)
            else:
                state[k] = item(i, v)
    return state


@pytest.fixture(scope="module")
def ddb():
    return boto3.client("dynamodb", endpoint_url=MOTO, region_name=REGION)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Stream changes (gzip JSON lines) and the baseline (Parquet) in one directory."""
    tmp = tmp_path_factory.mktemp("coverage")
    dest = tmp / "archive"
    events = tmp / "events.jsonl"
    records = [stream_record(n, *c) for n, c in enumerate(stream_changes(), start=1)]
    events.write_text('{"Records":[' + ",".join(records) + "]}\n")
    res = cli("archive", "--dest", dest, "--format", "jsonl.gz", events)
    assert res.returncode == 0, res.stderr
    # Before the baseline: a table with no coverage record.
    res = cli("coverage", "--source", dest, "--table", TABLE, "--json")
    assert res.returncode == 0, res.stderr
    before = json.loads(res.stdout)["tables"][0]
    lines = [compact_json({"Item": item(i)}) for i in range(ITEMS)]
    export = tmp / "AWSDynamoDB" / EXPORT_ID
    write_export(export, EXPORT_ID, [("a.json.gz", lines[:12]), ("b.json.gz", lines[12:]), ("c.json.gz", [])],
                 summary_extra={"exportArn": EXPORT_ARN}, table=TABLE)
    res = cli("baseline", "--dest", dest, "--export", export, "--table", TABLE, "--keys", "pk", "--format", "parquet")
    assert res.returncode == 0, res.stderr + res.stdout
    return dict(dest=dest, tmp=tmp, before=before)


def test_coverage_names_the_baseline_and_the_stream_changes(archive):
    assert archive["before"]["baseline"] is None
    res = cli("coverage", "--source", archive["dest"], "--table", TABLE)
    assert res.returncode == 0, res.stderr
    assert "NOT COMPLETE" not in res.stdout
    assert f"complete from {EXPORT_TIME}" in res.stdout and EXPORT_ARN in res.stdout
    assert "NOT COMPLETE" in cli("coverage", "--source", archive["tmp"] / "nothing", "--table", TABLE).stdout
    t = json.loads(cli("coverage", "--source", archive["dest"], "--json").stdout)["tables"]
    assert [x["table"] for x in t] == [TABLE]
    t = t[0]
    assert t["complete_from"] == EXPORT_TIME
    assert t["baseline"]["export_arn"] == EXPORT_ARN
    assert t["baseline"]["export_type"] == "FULL_EXPORT"
    assert t["baseline"]["change_count"] == ITEMS
    assert t["repairs"] == []
    assert t["first_stream_change"] == {"time": EXPORT_TIME, "sequence_number": "1001", "event_id": "ev-1"}
    n = len(stream_changes())
    assert t["last_stream_change"]["event_id"] == f"ev-{n}"
    assert t["last_stream_change"]["time"] == iso(EXPORT_MS + 86_400_000)


def new_table(ddb):
    name = f"cov-{uuid.uuid4().hex[:10]}"
    ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    return name


def table_state(ddb, name):
    items, kw = [], {}
    while True:
        page = ddb.scan(TableName=name, **kw)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        kw = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
    out = {}
    for it in items:
        it = {k: ({"B": base64.b64encode(v["B"]).decode()} if "B" in v else v) for k, v in it.items()}
        out[json.dumps({"pk": it["pk"]}, sort_keys=True)] = it
    return out


def restore(archive, as_of, target, *extra):
    return cli("restore", "--source", archive["dest"], "--table", TABLE, "--as-of", as_of, "--to-table", target,
               "--json", *extra)


@pytest.mark.parametrize("as_of_ms", [EXPORT_MS, EXPORT_MS + 120_000, EXPORT_MS + 10_000_000, EXPORT_MS + 90_000_000])
def test_restore_after_the_baseline_is_the_true_state(archive, ddb, as_of_ms):
    target = new_table(ddb)
    res = restore(archive, iso(as_of_ms), target)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["baseline"]["export_arn"] == EXPORT_ARN
    assert summary["baseline"]["complete_from"] == EXPORT_TIME
    assert summary["incomplete"] is False
    want = state_at(as_of_ms)
    got = table_state(ddb, target)
    assert got == want
    # Items never changed after the baseline are there.
    assert json.dumps(key(ITEMS - 1), sort_keys=True) in got


def test_restore_before_the_baseline_is_refused_and_writes_nothing(archive, ddb):
    target = new_table(ddb)
    res = restore(archive, iso(EXPORT_MS - 1), target)
    assert res.returncode == 1
    assert "is before 2026-03-01T12:00:00.000Z" in res.stderr and "--allow-incomplete" in res.stderr, res.stderr
    assert EXPORT_ARN in res.stderr
    assert table_state(ddb, target) == {}
    res = restore(archive, iso(EXPORT_MS - 1), target, "--allow-incomplete")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["incomplete"] is True


def test_restore_without_a_baseline_is_refused(archive, ddb, tmp_path):
    plain = tmp_path / "plain"
    events = tmp_path / "e.jsonl"
    events.write_text('{"Records":[' + stream_record(1, "INSERT", 1, EXPORT_MS, 1) + "]}\n")
    assert cli("archive", "--dest", plain, events).returncode == 0
    target = new_table(ddb)
    res = cli("restore", "--source", plain, "--table", TABLE, "--as-of", iso(EXPORT_MS + 1000), "--to-table", target)
    assert res.returncode == 1
    assert "no baseline was archived" in res.stderr, res.stderr
    assert table_state(ddb, target) == {}


def replayed(archive, *extra):
    res = cli("replay", "--source", archive["dest"], "--table", TABLE, "--json", *extra)
    assert res.returncode == 0, res.stderr
    records = [r for line in res.stdout.splitlines() for r in json.loads(line)["Records"]]
    return records, json.loads(res.stderr[res.stderr.index("{"):])


def test_replay_with_and_without_the_baseline(archive):
    records, summary = replayed(archive)
    assert [r["eventID"] for r in records] == [f"ev-{n}" for n in range(1, len(stream_changes()) + 1)]
    assert summary["baseline_left_out"] == ITEMS
    records, summary = replayed(archive, "--include-baseline")
    assert summary["baseline_included"] == ITEMS
    assert len(records) == ITEMS + len(stream_changes())
    synthetic = records[:ITEMS]
    for r in synthetic:
        assert r["eventID"].startswith("baseline-")
        assert r["eventName"] == "INSERT" and r["eventSource"] == "aws:dynamodb" and r["tableName"] == TABLE
        assert r["dynamodb"]["SequenceNumber"] == "0"
        assert r["dynamodb"]["ApproximateCreationDateTime"] == EXPORT_MS / 1000
    assert sorted(json.dumps(r["dynamodb"]["NewImage"], sort_keys=True) for r in synthetic) == sorted(
        json.dumps(item(i), sort_keys=True) for i in range(ITEMS))
    # The stream change at the export time comes after the baseline rows.
    assert records[ITEMS]["eventID"] == "ev-1"


def test_compact_and_verify_over_a_day_mixing_baseline_and_stream_rows(archive, tmp_path):
    res = cli("verify", "--source", archive["dest"], "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    summary = json.loads(res.stdout)
    assert summary["checked"]["coverage"] == 1
    assert summary["rows"] == ITEMS + len(stream_changes())
    out = tmp_path / "compacted"
    res = cli("compact", "--source", archive["dest"], "--dest", out, "--json")
    assert res.returncode == 0, res.stderr
    res = cli("verify", "--source", out, "--raw", archive["dest"], "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    day = out / TABLE / "year=2026" / "month=03" / "day=01"
    rows = []
    for p in sorted(day.glob("*.parquet")):
        rows += pq.read_table(p).to_pylist()
    day_changes = [c for c in stream_changes() if c[2] < EXPORT_MS + 43_200_000]
    assert len(rows) == ITEMS + len(day_changes)
    assert all(r["sequence_number"] == "0" for r in rows[:ITEMS])
    assert rows[ITEMS]["event_id"] == "ev-1"
    # Every item of the export survives byte-exact in the compacted layer.
    assert sorted(r["record"] for r in rows[:ITEMS]) == sorted(compact_json({"Item": item(i)}) for i in range(ITEMS))
    # A coverage record claiming more than its objects hold is reported.
    record = next((archive["dest"] / "ddb-archiver-coverage" / TABLE).glob("baseline-*.json"))
    saved = record.read_text()
    try:
        v = json.loads(saved)
        v["change_count"] += 1
        record.write_text(json.dumps(v, indent=2))
        res = cli("verify", "--source", archive["dest"], "--json")
        assert res.returncode == 1
        bad = json.loads(res.stdout)["bad"]
        assert [b["kind"] for b in bad] == ["coverage"]
        assert "not archived in full" in bad[0]["reasons"][0]
    finally:
        record.write_text(saved)
