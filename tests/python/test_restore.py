"""`ddb-archiver restore` against a real DynamoDB API: moto's server on 127.0.0.1, the
archive in a local directory and served by s3s-fs, and a fault-injecting proxy in front
of moto for throttling and unprocessed items.

The archives are written by `ddb-archiver archive` from generated histories (INSERT,
MODIFY, REMOVE over several UTC days, both formats, a part archived twice). The state at
T is computed here independently and compared item by item with the restored table.

Run by scripts/test.d/55-restore.sh, which starts moto (MOTO_PORT) and s3s-fs (S3_PORT,
serving S3_ROOT) and builds the CLI.
"""

import base64
import contextlib
import gzip
import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
import zlib
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest

from conftest import archiver_bin

MOTO = f"http://127.0.0.1:{os.environ.get('MOTO_PORT', '5000')}"
S3S = f"http://127.0.0.1:{os.environ.get('S3_PORT', '9000')}"
S3_ROOT = Path(os.environ.get("S3_ROOT", "/tmp/s3"))
TABLE = "restoretest"
START_MS = 1_772_366_400_000  # 2026-03-01T12:00:00Z
DAY_MS = 86_400_000
N38 = "12345678901234567890123456789012345678"


def iso(ms):
    dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


# --- generated history ------------------------------------------------------------------


def key_of(item):
    return {"pk": {"S": f"ITEM#{item:03d} é"}, "sk": {"N": str(item % 4)}}


def image_of(item, step):
    return {
        **key_of(item),
        "v": {"N": f"{N38[:-3]}{step:03d}"},
        "f": {"N": "-0.5"},
        "bin": {"B": base64.b64encode(bytes([0, 255, item % 256, step % 256])).decode()},
        "bs": {"BS": [base64.b64encode(b"\x00\x01").decode(), base64.b64encode(bytes([step % 256, 7])).decode()]},
        "ns": {"NS": [N38, str(step + 1)]},
        "ss": {"SS": ["ü", f"s{step}"]},
        "m": {"M": {"nested": {"L": [{"S": "日本"}, {"NULL": True}, {"BOOL": step % 2 == 0}, {"M": {"x": {"N": "1"}}}]}}},
    }


def generate(n=320, items=40, days=3, view="NEW_AND_OLD_IMAGES"):
    """Records in stream order: each change steps ~days/n; some share a millisecond."""
    records = []
    alive = {}
    rng = 12345
    for i in range(n):
        rng = (rng * 1103515245 + 12345) % (1 << 31)
        item = rng % items
        step = alive.get(item, (False, 0))[1] + 1
        if not alive.get(item, (False, 0))[0]:
            name = "INSERT"
        elif (rng >> 8) % 5 == 0:
            name = "REMOVE"
        else:
            name = "MODIFY"
        ms = START_MS + (i - (i % 5 == 1)) * (days * DAY_MS // n)
        dyn = {
            "ApproximateCreationDateTime": f"@@{ms // 1000}.{ms % 1000:03d}@@",
            "Keys": key_of(item),
            "SequenceNumber": str(9 * 10**20 + i * 7),
            "SizeBytes": 300,
            "StreamViewType": view,
        }
        if name != "REMOVE" and view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
            dyn["NewImage"] = image_of(item, step)
        alive[item] = (name != "REMOVE", step)
        rec = {
            "eventID": f"ev{i:06d}",
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": dyn,
            "eventSourceARN": f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}/stream/2026-03-01T00:00:00.000",
        }
        text = json.dumps(rec, separators=(",", ":"), ensure_ascii=False).replace('"@@', "").replace('@@"', "")
        records.append(dict(id=rec["eventID"], name=name, ms=ms, seq=int(dyn["SequenceNumber"]), key=key_of(item), image=dyn.get("NewImage"), text=text))
    return records


def canonical(key):
    return json.dumps(key, sort_keys=True, ensure_ascii=False)


def state_at(records, t_ms):
    """The state at T, the plain way: every change at or before T in stream order."""
    state, seen = {}, set()
    for r in sorted(records, key=lambda r: (r["ms"], r["seq"], r["id"])):
        if r["ms"] > t_ms or r["id"] in seen:
            continue
        seen.add(r["id"])
        if r["name"] == "REMOVE":
            state.pop(canonical(r["key"]), None)
        else:
            state[canonical(r["key"])] = r["image"]
    return state


def write_events(path, records, per_event=40):
    with open(path, "w", encoding="utf-8") as f:
        for i in range(0, len(records), per_event):
            f.write('{"Records":[' + ",".join(r["text"] for r in records[i : i + per_event]) + "]}\n")


def archive(dest, fmt, records, tmp):
    events = tmp / f"events-{uuid.uuid4().hex}.jsonl"
    write_events(events, records)
    res = subprocess.run(
        [archiver_bin(), "archive", "--dest", str(dest), "--format", fmt, "--max-file-records", "37", str(events)],
        capture_output=True, text=True,
    )
    assert res.returncode == 0, res.stderr + res.stdout


@pytest.fixture(scope="session")
def history(tmp_path_factory):
    """The generated history archived into a local directory and into s3s-fs."""
    tmp = tmp_path_factory.mktemp("restore")
    records = generate()
    dest = tmp / "archive"
    archive(dest, "parquet", records[:160], tmp)
    archive(dest, "jsonl.gz", records[160:], tmp)
    archive(dest, "jsonl.gz", records[100:140], tmp)  # archived twice: duplicates
    bucket = f"restore-{uuid.uuid4().hex[:8]}"
    shutil.copytree(dest, S3_ROOT / bucket / "arch")
    return dict(records=records, local=str(dest), s3=f"s3://{bucket}/arch", tmp=tmp)


# --- DynamoDB -----------------------------------------------------------------------------


def env(dynamodb=MOTO, **extra):
    e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    e.update(AWS_ENDPOINT_URL_DYNAMODB=dynamodb, AWS_ENDPOINT_URL_S3=S3S, **extra)
    return e


@pytest.fixture(scope="session")
def ddb():
    return boto3.client("dynamodb", endpoint_url=MOTO, region_name=os.environ.get("AWS_REGION", "us-east-1"))


def new_table(ddb, key_types=(("pk", "S", "HASH"), ("sk", "N", "RANGE"))):
    name = f"t-{uuid.uuid4().hex[:12]}"
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": n, "KeyType": k} for n, _, k in key_types],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t, _ in key_types],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def scan(ddb, table):
    items, kwargs = [], {}
    while True:
        page = ddb.scan(TableName=table, **kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def normalize(av):
    """DynamoDB JSON (base64 binaries) and boto3's low-level values (bytes) alike."""
    (t, v), = av.items()
    if t == "B":
        return ("B", v if isinstance(v, bytes) else base64.b64decode(v))
    if t == "BS":
        return ("BS", sorted(x if isinstance(x, bytes) else base64.b64decode(x) for x in v))
    if t in ("SS", "NS"):
        return (t, sorted(v))
    if t == "M":
        return ("M", {k: normalize(x) for k, x in sorted(v.items())})
    if t == "L":
        return ("L", [normalize(x) for x in v])
    return (t, v)


def normalize_item(item):
    return {k: normalize(v) for k, v in item.items()}


def assert_table_is(ddb, table, state):
    got = {}
    for item in scan(ddb, table):
        got[canonical({"pk": item["pk"], "sk": item["sk"]})] = normalize_item(item)
    want = {k: normalize_item(v) for k, v in state.items()}
    assert sorted(got) == sorted(want)
    for k in want:
        assert got[k] == want[k], k


def restore(source, as_of, to_table, *extra, environ=None):
    # These archives hold stream changes only, no baseline: test_coverage.py tests the
    # refusal that --allow-incomplete lifts.
    args = [archiver_bin(), "restore", "--source", source, "--table", TABLE, "--as-of", as_of, "--to-table", to_table,
            "--json", "--allow-incomplete", *extra]
    res = subprocess.run(args, capture_output=True, text=True, env=environ or env(), timeout=300)
    summary = json.loads(res.stdout) if res.stdout.strip().startswith("{") else None
    return res, summary


# --- the state at T -------------------------------------------------------------------------


def times(records):
    first, last = records[0]["ms"], records[-1]["ms"]
    midnight = (START_MS // DAY_MS + 1) * DAY_MS
    at_change = records[77]["ms"]
    return {
        "before-first": first - 1,
        "at-a-change": at_change,
        "before-midnight": midnight - 1,
        "at-midnight": midnight,
        "after-last": last + 1,
    }


@pytest.mark.parametrize("when", ["before-first", "at-a-change", "before-midnight", "at-midnight", "after-last"])
def test_restore_local_matches_the_state(history, ddb, when):
    records = history["records"]
    t = times(records)[when]
    table = new_table(ddb)
    res, summary = restore(history["local"], iso(t), table)
    assert res.returncode == 0, res.stderr
    state = state_at(records, t)
    assert_table_is(ddb, table, state)
    assert summary["items_written"] == summary["items"] == len(state)
    if when == "at-a-change":
        # The change at exactly T counts: the state differs from one millisecond before.
        assert state != state_at(records, t - 1)
    if when == "after-last":
        assert summary["duplicates_dropped"] == 40
        assert summary["absent_deleted"] > 0


@pytest.mark.parametrize("when", ["at-a-change", "after-last"])
def test_restore_from_s3(history, ddb, when):
    records = history["records"]
    t = times(records)[when]
    table = new_table(ddb)
    res, summary = restore(history["s3"], iso(t), table)
    assert res.returncode == 0, res.stderr
    assert_table_is(ddb, table, state_at(records, t))


def test_dry_run_writes_nothing(history, ddb):
    records = history["records"]
    t = records[-1]["ms"]
    table = new_table(ddb)
    res, summary = restore(history["local"], iso(t), table, "--dry-run")
    assert res.returncode == 0, res.stderr
    assert summary["items"] == len(state_at(records, t)) and summary["items_written"] == 0
    assert summary["target_checked"] is True
    assert scan(ddb, table) == []
    # Without a target table, a dry run still computes the state.
    res, summary = restore(history["local"], iso(t), "no-such-target", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert summary["target_checked"] is False


def test_one_key_and_rerun_converges(history, ddb):
    records = history["records"]
    t = records[-1]["ms"]
    state = state_at(records, t)
    table = new_table(ddb)
    key = json.loads(next(iter(state)))
    res, summary = restore(history["local"], iso(t), table, "--key", json.dumps({"sk": key["sk"], "pk": key["pk"]}))
    assert res.returncode == 0, res.stderr
    assert summary["items_written"] == 1
    assert_table_is(ddb, table, {canonical(key): state[canonical(key)]})
    # A partly filled target is refused without --allow-existing, and left as it was.
    res, _ = restore(history["local"], iso(t), table)
    assert res.returncode == 1 and "--allow-existing" in res.stderr
    assert len(scan(ddb, table)) == 1
    for _ in range(2):
        res, summary = restore(history["local"], iso(t), table, "--allow-existing")
        assert res.returncode == 0, res.stderr
        assert_table_is(ddb, table, state)


# --- faults ----------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _reply(self, status, body, headers):
        self.send_response_only(status)
        for k, v in headers:
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "x-amz-crc32"):
                self.send_header(k, v)
        self.send_header("x-amz-crc32", str(zlib.crc32(body)))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _forward(self, body):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.proxy.upstream, timeout=60)
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for k, v in self.headers.items():
            if k.lower() != "content-length":
                conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, data, resp.getheaders()

    def do_POST(self):
        proxy = self.server.proxy
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = self.headers.get("X-Amz-Target", "")
        action = proxy.next_fault() if target.endswith(".BatchWriteItem") else None
        if action == "throttle":
            err = json.dumps({
                "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "message": "The level of configured provisioned throughput for the table was exceeded.",
            }).encode()
            return self._reply(400, err, [("Content-Type", "application/x-amz-json-1.0")])
        if action == "unprocessed":
            req = json.loads(body)
            (table, writes), = req["RequestItems"].items()
            keep, left = writes[: len(writes) // 2], writes[len(writes) // 2 :]
            if not keep:
                keep, left = writes, []
            status, data, headers = self._forward(json.dumps({**req, "RequestItems": {table: keep}}).encode())
            out = json.loads(data)
            if status == 200 and left:
                out["UnprocessedItems"] = {table: left}
            return self._reply(status, json.dumps(out).encode(), headers)
        status, data, headers = self._forward(body)
        self._reply(status, data, headers)


class FaultProxy:
    """Forwards to moto; the scripted faults hit BatchWriteItem requests in turn."""

    def __init__(self, upstream, script):
        self.upstream = upstream
        self.lock = threading.Lock()
        self.script = list(script)
        self.injected = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.proxy = self
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next_fault(self):
        with self.lock:
            action = self.script.pop(0) if self.script else None
            if action:
                self.injected[action] = self.injected.get(action, 0) + 1
            return action

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_throttling_and_unprocessed_items_lose_nothing(history, ddb):
    records = history["records"]
    t = records[-1]["ms"]
    table = new_table(ddb)
    script = ["throttle", "unprocessed", "throttle", "throttle", None, "unprocessed", "unprocessed", None] * 3
    proxy = FaultProxy(int(MOTO.rsplit(":", 1)[1]), script)
    try:
        res, summary = restore(history["local"], iso(t), table, "--concurrency", "4",
                               environ=env(dynamodb=f"http://127.0.0.1:{proxy.port}"))
    finally:
        proxy.close()
    assert res.returncode == 0, res.stderr
    assert_table_is(ddb, table, state_at(records, t))
    assert summary["throttles"] == proxy.injected["throttle"] > 0
    assert summary["unprocessed_retries"] == proxy.injected["unprocessed"] > 0


# --- what is refused ---------------------------------------------------------------------------


def refused(ddb, table, res, *words):
    assert res.returncode == 1, res.stdout + res.stderr
    for w in words:
        assert w in res.stderr, res.stderr
    assert scan(ddb, table) == [], "something was written"


def test_bad_input_is_refused_and_writes_nothing(history, ddb):
    records = history["records"]
    t = iso(records[-1]["ms"])
    local = history["local"]
    table = new_table(ddb)
    args = [archiver_bin(), "restore", "--source", local, "--table", "nosuchtable", "--as-of", t, "--to-table", table,
            "--allow-incomplete"]
    res = subprocess.run(args, capture_output=True, text=True, env=env())
    refused(ddb, table, res, "no archived partitions of table nosuchtable")
    res, _ = restore(local, "2999-01-01T00:00:00Z", table)
    refused(ddb, table, res, "invalid --as-of", "future")
    res, _ = restore(local, "yesterday", table)
    refused(ddb, table, res, "--as-of", "RFC 3339")
    res, _ = restore(local, t, table, "--key", '{"pk":"x"}')
    refused(ddb, table, res, "invalid --key")
    res, _ = restore(local, t, "missing-target")
    refused(ddb, table, res, "missing-target does not exist")
    other = new_table(ddb, (("id", "S", "HASH"),))
    res, _ = restore(local, t, other)
    refused(ddb, other, res, "has key id (S), the archive has pk (S), sk (N)")
    typed = new_table(ddb, (("pk", "S", "HASH"), ("sk", "S", "RANGE")))
    res, _ = restore(local, t, typed)
    refused(ddb, typed, res, "has key pk (S), sk (S)")


@pytest.mark.parametrize("view", ["KEYS_ONLY", "OLD_IMAGE"])
def test_archives_without_new_images_are_refused(history, ddb, view):
    tmp = history["tmp"]
    dest = tmp / f"view-{view}"
    records = generate(n=60, items=10, view=view)
    archive(dest, "parquet", records, tmp)
    table = new_table(ddb)
    res, _ = restore(str(dest), iso(records[-1]["ms"]), table)
    refused(ddb, table, res, view, "no new images", "nothing was written")


# --- import format -------------------------------------------------------------------------------


def import_state(prefix):
    """The items of the import files directly under `prefix`, by key; checks each line."""
    got = {}
    for f in sorted(Path(prefix).iterdir()):
        assert f.name.startswith("part-") and f.name.endswith(".json.gz")
        text = gzip.decompress(f.read_bytes()).decode("utf-8")
        assert text.endswith("\n")
        for line in text.splitlines():
            doc = json.loads(line)
            assert list(doc) == ["Item"]
            got[canonical({"pk": doc["Item"]["pk"], "sk": doc["Item"]["sk"]})] = doc["Item"]
    return got


def test_import_format_files(history, ddb):
    records = history["records"]
    t = times(records)["at-midnight"]
    out = history["tmp"] / "import"
    res, summary = restore(history["local"], iso(t), "unused", "--import-format", str(out))
    assert res.returncode == 0, res.stderr
    # The files are under the run's own sub-prefix, and only there.
    prefix = Path(summary["import_prefix"])
    assert prefix.parent == out and prefix.name.startswith("run-"), prefix
    assert [p.name for p in out.iterdir()] == [prefix.name]
    assert sorted(str(f) for f in prefix.iterdir()) == sorted(summary["import_files"])
    assert import_state(prefix) == state_at(records, t)
    # The same restore again writes the same names; another T writes beside them, and
    # neither run's sub-prefix holds the other's files.
    res, again = restore(history["local"], iso(t), "unused", "--import-format", str(out), "--allow-existing")
    assert res.returncode == 0, res.stderr
    assert (again["import_prefix"], again["import_files"]) == (summary["import_prefix"], summary["import_files"])
    assert again["import_files_already_present"] == len(summary["import_files"])
    earlier = times(records)["at-a-change"]
    res, other = restore(history["local"], iso(earlier), "unused", "--import-format", str(out), "--allow-existing")
    assert res.returncode == 0, res.stderr
    assert other["import_prefix"] != summary["import_prefix"]
    assert import_state(other["import_prefix"]) == state_at(records, earlier)
    assert import_state(prefix) == state_at(records, t)


def test_import_table_against_moto(history, ddb):
    """moto serves S3 too and implements ImportTable from its own S3: files written to
    moto's S3, then the import creates the table."""
    records = history["records"]
    t = records[-1]["ms"]
    s3 = boto3.client("s3", endpoint_url=MOTO, region_name="us-east-1")
    bucket = f"import-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    name = f"imported-{uuid.uuid4().hex[:8]}"
    environ = env(AWS_ENDPOINT_URL=MOTO)
    environ["AWS_ENDPOINT_URL_S3"] = MOTO
    # An earlier restore's files under the same location: the import must not take them.
    earlier = times(records)["at-a-change"]
    res, first = restore(history["local"], iso(earlier), name, "--import-format", f"s3://{bucket}/state", environ=environ)
    assert res.returncode == 0, res.stderr
    res, summary = restore(history["local"], iso(t), name, "--import-format", f"s3://{bucket}/state",
                           "--start-import", "--partition-key", "pk", "--allow-existing", environ=environ)
    assert res.returncode == 0, res.stderr
    assert summary["import_prefix"].startswith(f"s3://{bucket}/state/run-")
    assert summary["import_prefix"] != first["import_prefix"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="state/")["Contents"]
    assert len(listed) == len(first["import_files"]) + len(summary["import_files"])
    arn = summary["import_arn"]
    for _ in range(100):
        desc = ddb.describe_import(ImportArn=arn)["ImportTableDescription"]
        if desc["ImportStatus"] != "IN_PROGRESS":
            break
        time.sleep(0.1)
    assert desc["ImportStatus"] == "COMPLETED", desc
    keys = ddb.describe_table(TableName=name)["Table"]["KeySchema"]
    assert keys == [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert_table_is(ddb, name, state_at(records, t))
    # Without --partition-key a two-attribute key is ambiguous: a clear error.
    res, _ = restore(history["local"], iso(t), name + "x", "--import-format", f"s3://{bucket}/other",
                     "--start-import", environ=environ)
    assert res.returncode == 1 and "name the partition key" in res.stderr


# --- rejected records ----------------------------------------------------------------------------


def test_rejected_records_are_refused_unless_allowed(history, ddb):
    """A REMOVE of the table that the archiver rejected (its key has an unknown type) is
    not in the archive: restore names it and stops, unless --allow-rejected."""
    tmp = history["tmp"]
    records = history["records"]
    dest = tmp / "with-rejected"
    archive(dest, "jsonl.gz", records, tmp)
    bad = json.loads(records[50]["text"])
    bad["eventID"] = "rejected-remove"
    bad["eventName"] = "REMOVE"
    bad["dynamodb"]["Keys"] = {"pk": {"Q": "x"}}
    bad["dynamodb"].pop("NewImage", None)
    other = dict(bad, eventID="rejected-other-table",
                 eventSourceARN="arn:aws:dynamodb:us-east-1:123456789012:table/other/stream/x")
    events = tmp / "rejected-events.json"
    events.write_text(json.dumps({"Records": [bad, other]}))
    res = subprocess.run([archiver_bin(), "archive", "--dest", str(dest), str(events)], capture_output=True, text=True)
    assert res.returncode == 2, res.stderr + res.stdout
    t = records[-1]["ms"]
    table = new_table(ddb)
    res, _ = restore(str(dest), iso(t), table)
    refused(ddb, table, res, "1 rejected records", "rejected-remove", "_rejected/year=", "--allow-rejected",
            "nothing was written")
    assert "rejected-other-table" not in res.stderr
    # Before the rejected change, it does not count.
    res, summary = restore(str(dest), iso(records[50]["ms"] - 1), table, "--dry-run")
    assert res.returncode == 0, res.stderr
    assert summary["rejected"]["count"] == 0
    res, summary = restore(str(dest), iso(t), table, "--allow-rejected")
    assert res.returncode == 0, res.stderr
    assert summary["rejected"]["count"] == 1
    assert summary["rejected"]["named"][0]["event_id"] == "rejected-remove"
    assert_table_is(ddb, table, state_at(records, t))
