"""The Lambda function against real parts on 127.0.0.1: an s3s-fs S3 server, the
function binary under `cargo lambda watch` (the real runtime), a moto server's DynamoDB
stream, and, for faults, a fault-injecting HTTP proxy in front of s3s-fs.

Fault cases run the function binary against a small Lambda Runtime API served here,
because `cargo lambda watch` sends a fixed deadline in 1970 and the "puts slower than the
remaining deadline" case needs a real one. Everything else in those runs is real: the
function binary with lambda_runtime, the S3 client, s3s-fs.

Run by scripts/test.d/30-s3-lambda.sh (it builds the binary and sets
DDB_ARCHIVER_LAMBDA_BIN).
"""

import base64
import contextlib
import decimal
import gzip
import http.client
import json
import os
import queue
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import botocore.config
import pytest

from conftest import event_fixtures, fixture_params

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("DDB_ARCHIVER_LAMBDA_BIN", ROOT / "target/debug/ddb-archiver-lambda"))
ACCESS_KEY = "archiver-test"
SECRET_KEY = "archiver-test-secret-0123456789"
BUCKET = "archive"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, limit=60.0):
    end = time.time() + limit
    while time.time() < end:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def stop(proc):
    """Stops a process started in its own session, and its children."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def parse(text):
    """JSON with every number kept exact."""
    return json.loads(text, parse_float=decimal.Decimal, parse_int=decimal.Decimal)


# --- S3 ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    root = tmp_path_factory.mktemp("s3")
    port = free_port()
    proc = subprocess.Popen(
        ["s3s-fs", "--host", "127.0.0.1", "--port", str(port),
         "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY, str(root)],
        start_new_session=True,
    )
    try:
        wait_port(port)
        client = boto3.client(
            "s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            config=botocore.config.Config(s3={"addressing_style": "path"}),
        )
        client.create_bucket(Bucket=BUCKET)
        client.port = port
        yield client
    finally:
        stop(proc)


def list_keys(s3, prefix):
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return sorted(keys)


def s3s_keeps_metadata(key):
    """s3s-fs keeps an object's metadata (content type, encoding) in a file named after
    the base64 of bucket and key; past 255 bytes the file system refuses the name and
    s3s-fs stores the object without it (keys of 56-digit Kinesis sequence numbers)."""
    b64 = lambda s: base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")
    return len(f".bucket-{b64(BUCKET)}.object-{b64(key)}.metadata.json") <= 255


def read_rows(s3, prefix):
    """Every line of every `.json.gz` object under `prefix`, parsed, with its key."""
    rows = []
    for key in list_keys(s3, prefix):
        obj = s3.get_object(Bucket=BUCKET, Key=key)
        assert key.endswith(".json.gz"), key
        if s3s_keeps_metadata(key):
            assert obj.get("ContentType") == "application/x-ndjson", key
            assert obj.get("ContentEncoding") == "gzip", key
        for line in gzip.decompress(obj["Body"].read()).decode("utf-8").splitlines():
            row = parse(line)
            row["_key"] = key
            rows.append(row)
    return rows


def clear(s3, prefix):
    for key in list_keys(s3, prefix):
        s3.delete_object(Bucket=BUCKET, Key=key)


def function_env(endpoint, prefix, name):
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": endpoint,
        "ARCHIVE_DEST": f"s3://{BUCKET}/{prefix}",
        "ARCHIVE_FORMAT": "jsonl.gz",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "RUST_LOG": "info",
    }


# --- a fault-injecting proxy in front of s3s-fs ----------------------------------------

SLOWDOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message><RequestId>fault</RequestId></Error>"
)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        with self.server.proxy.lock:
            self.server.proxy.conns.add(self.connection)

    def _handle(self):
        proxy = self.server.proxy
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        rule = proxy.take_rule(self.command, self.path)
        action = rule["action"] if rule else None
        if action == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        if action == "slowdown":
            self.send_response_only(503, "Slow Down")
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(SLOWDOWN)))
            self.end_headers()
            self.wfile.write(SLOWDOWN)
            return
        with proxy.inflight():
            if action == "delay":
                time.sleep(rule["seconds"])
            conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream, timeout=120)
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                conn.putheader(k, v)
            conn.endheaders(body or None)
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
        self.send_response_only(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() in ("transfer-encoding", "connection") or (
                k.lower() == "content-length" and self.command != "HEAD"
            ):
                continue
            self.send_header(k, v)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass


class FaultProxy:
    """Forwards HTTP to s3s-fs; rules inject faults into matching requests."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.port = free_port()
        self.lock = threading.Lock()
        self.rules = []
        self.injected = {}
        self.active = 0
        self.conns = set()
        self.server = None
        self.up()

    def up(self):
        self.server = _QuietServer(("127.0.0.1", self.port), _ProxyHandler)
        self.server.proxy = self
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self):
        """S3 unavailable: nothing listens (connections are refused)."""
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            conns, self.conns = self.conns, set()
        for c in conns:
            with contextlib.suppress(OSError):
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.close()

    def add(self, action, match="", method="PUT", count=None, seconds=0.0):
        with self.lock:
            self.rules.append(dict(action=action, match=match, method=method, count=count, seconds=seconds))

    def clear(self):
        with self.lock:
            self.rules = []
            self.injected = {}

    def take_rule(self, method, path):
        with self.lock:
            for rule in self.rules:
                if rule["method"] not in (None, method) or rule["match"] not in urllib.parse.unquote(path):
                    continue
                if rule["count"] is not None:
                    if rule["count"] == 0:
                        continue
                    rule["count"] -= 1
                self.injected[rule["action"]] = self.injected.get(rule["action"], 0) + 1
                return rule
        return None

    @contextlib.contextmanager
    def inflight(self):
        with self.lock:
            self.active += 1
        try:
            yield
        finally:
            with self.lock:
                self.active -= 1

    def drain(self, limit=60.0):
        """Waits until no forwarded request is in flight."""
        end = time.time() + limit
        while time.time() < end:
            with self.lock:
                if self.active == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError("proxied requests still in flight")


# --- a Lambda Runtime API with real deadlines ------------------------------------------


class _RuntimeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        api = self.server.api
        if not self.path.endswith("/runtime/invocation/next"):
            return self._reply(404)
        ev = api.events.get()
        self._reply(200, ev["body"], [
            ("Content-Type", "application/json"),
            ("Lambda-Runtime-Aws-Request-Id", ev["id"]),
            ("Lambda-Runtime-Deadline-Ms", str(ev["deadline_ms"])),
            ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:faults"),
            ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
        ])

    def do_POST(self):
        api = self.server.api
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = self.path.strip("/").split("/")
        if self.path.endswith("/response"):
            api.results.put(("response", parts[-2], body))
        elif self.path.endswith("/error"):
            api.results.put(("error", parts[-2] if "invocation" in parts else None, body))
        self._reply(202, b"{}")


class RuntimeApi:
    def __init__(self):
        self.events = queue.Queue()
        self.results = queue.Queue()
        self.port = free_port()
        self.server = _QuietServer(("127.0.0.1", self.port), _RuntimeHandler)
        self.server.api = self
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def invoke(self, body, timeout):
        rid = str(uuid.uuid4())
        self.events.put({"id": rid, "body": body, "deadline_ms": int((time.time() + timeout) * 1000)})
        kind, got, payload = self.results.get(timeout=timeout + 60)
        assert got == rid, (kind, got, payload)
        return kind, json.loads(payload)


@pytest.fixture(scope="module")
def faults(s3, tmp_path_factory):
    """The function binary on the runtime API above, writing through the fault proxy."""
    proxy = FaultProxy(s3.port)
    api = RuntimeApi()
    out = tmp_path_factory.mktemp("faults") / "stdout.log"
    env = function_env(f"http://127.0.0.1:{proxy.port}", "faults", "archiver-faults")
    env.update({
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.port}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "faults",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/archiver-faults",
    })
    with open(out, "wb") as stdout:
        proc = subprocess.Popen([str(BIN)], env=env, stdout=stdout, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        api.proc = proc
        yield proxy, api, out
    finally:
        stop(proc)
        proxy.down()
        api.server.shutdown()


# --- events --------------------------------------------------------------------------

DAY0 = 1767225600  # 2026-01-01T00:00:00Z


def make_records(table, n, days=3, base=300000000000000000000):
    """`n` changes of `table`, spread round-robin over `days` days (one file per day)."""
    records = []
    for i in range(n):
        name = ("INSERT", "MODIFY", "REMOVE")[i % 3]
        image = {"pk": {"S": f"item#{i % 4}"}, "amount": {"N": "12345678901234567890123456789012345678"},
                 "tiny": {"N": "1E-130"}, "note": {"S": f"change {i} \u00e9\u6f22"}}
        ddb = {
            "ApproximateCreationDateTime": DAY0 + (i % days) * 86400 + i,
            "Keys": {"pk": {"S": f"item#{i % 4}"}},
            "SequenceNumber": str(base + i),
            "SizeBytes": 120 + i,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        if name != "REMOVE":
            ddb["NewImage"] = image
        if name != "INSERT":
            ddb["OldImage"] = image
        records.append({
            "eventID": f"{table}-{i:04d}",
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": ddb,
            "eventSourceARN": f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2026-01-01T00:00:00.000",
        })
    return records


def event_bytes(records):
    return json.dumps({"Records": records}).encode()


def day_of(record):
    return (record["dynamodb"]["ApproximateCreationDateTime"] - DAY0) // 86400


def archived_ids(s3, prefix, table):
    return [r["event_id"] for r in read_rows(s3, f"{prefix}/{table}/")]


def failed_index(records, response):
    """The index the response names (len(records) when it names none)."""
    failures = response["batchItemFailures"]
    if not failures:
        return len(records)
    assert len(failures) == 1, failures
    seqs = [r["dynamodb"]["SequenceNumber"] for r in records]
    return seqs.index(failures[0]["itemIdentifier"])


def check_reported(s3, prefix, table, records, response):
    """Nothing reported done is missing, and the response names exactly the earliest record
    not durably written. Returns the index it names."""
    idx = failed_index(records, response)
    present = set(archived_ids(s3, prefix, table))
    done = [r["eventID"] for r in records[:idx]]
    assert [e for e in done if e not in present] == [], "records reported done are missing"
    missing = [i for i, r in enumerate(records) if r["eventID"] not in present]
    assert (missing[0] if missing else len(records)) == idx, (missing, idx)
    return idx


def check_complete_once(s3, prefix, table, records):
    rows = read_rows(s3, f"{prefix}/{table}/")
    ids = [r["event_id"] for r in rows]
    assert sorted(ids) == sorted(r["eventID"] for r in records), "archive incomplete or duplicated"
    by_id = {r["eventID"]: r for r in records}
    for row in rows:
        assert row["record"] == parse(json.dumps(by_id[row["event_id"]]))


def last_emf(out):
    lines = [parse(line) for line in Path(out).read_text().splitlines() if line.startswith("{") and '"_aws"' in line]
    assert lines, "no EMF line"
    return lines[-1]


# --- fault cases ------------------------------------------------------------------------


def test_s3_unavailable_then_redelivered(s3, faults):
    proxy, api, out = faults
    table, records = "unavailable", make_records("unavailable", 12)
    proxy.clear()
    proxy.down()
    try:
        kind, resp = api.invoke(event_bytes(records), timeout=5)
    finally:
        proxy.up()
    assert kind == "response", resp
    assert check_reported(s3, "faults", table, records, resp) == 0
    emf = last_emf(out)
    assert emf["RecordsFailed"] == 12 and emf["RecordsArchived"] == 0
    kind, resp = api.invoke(event_bytes(records), timeout=30)
    assert (kind, resp) == ("response", {"batchItemFailures": []})
    check_complete_once(s3, "faults", table, records)


def test_slowdown_burst_is_retried(s3, faults):
    proxy, api, out = faults
    table, records = "slowdown", make_records("slowdown", 12)
    proxy.clear()
    proxy.add("slowdown", match=f"/{table}/", count=4)
    kind, resp = api.invoke(event_bytes(records), timeout=30)
    assert (kind, resp) == ("response", {"batchItemFailures": []})
    assert proxy.injected.get("slowdown") == 4
    check_complete_once(s3, "faults", table, records)
    assert last_emf(out)["RecordsArchived"] == 12


def test_persistent_slowdown_on_one_partition(s3, faults):
    proxy, api, out = faults
    table, records = "slowpart", make_records("slowpart", 12)
    proxy.clear()
    proxy.add("slowdown", match=f"/{table}/year=2026/month=01/day=02/")
    kind, resp = api.invoke(event_bytes(records), timeout=4)
    assert kind == "response", resp
    idx = check_reported(s3, "faults", table, records, resp)
    assert idx == min(i for i, r in enumerate(records) if day_of(r) == 1)
    assert last_emf(out)["RecordsFailed"] == sum(1 for r in records if day_of(r) == 1)
    proxy.clear()
    kind, resp = api.invoke(event_bytes(records), timeout=30)
    assert (kind, resp) == ("response", {"batchItemFailures": []})
    check_complete_once(s3, "faults", table, records)


def test_connection_resets(s3, faults):
    proxy, api, out = faults
    table, records = "resets", make_records("resets", 12)
    proxy.clear()
    proxy.add("reset", match=f"/{table}/", count=3)
    kind, resp = api.invoke(event_bytes(records), timeout=30)
    assert (kind, resp) == ("response", {"batchItemFailures": []})
    assert proxy.injected.get("reset") == 3
    check_complete_once(s3, "faults", table, records)

    # Resets that never stop on one partition: that file fails, the others land.
    table, records = "resetpart", make_records("resetpart", 9)
    proxy.clear()
    proxy.add("reset", match=f"/{table}/year=2026/month=01/day=01/")
    kind, resp = api.invoke(event_bytes(records), timeout=4)
    assert check_reported(s3, "faults", table, records, resp) == 0
    assert len(archived_ids(s3, "faults", table)) == 6
    proxy.clear()
    kind, resp = api.invoke(event_bytes(records), timeout=30)
    assert (kind, resp) == ("response", {"batchItemFailures": []})
    check_complete_once(s3, "faults", table, records)


def test_puts_slower_than_the_deadline(s3, faults):
    proxy, api, out = faults
    table, records = "slowputs", make_records("slowputs", 12)
    proxy.clear()
    proxy.add("delay", match=f"/{table}/year=2026/month=01/day=03/", count=1, seconds=6)
    started = time.time()
    kind, resp = api.invoke(event_bytes(records), timeout=3)
    took = time.time() - started
    assert kind == "response", resp
    assert took < 3, f"the function answered after its deadline ({took:.1f}s)"
    idx = check_reported(s3, "faults", table, records, resp)
    assert idx == min(i for i, r in enumerate(records) if day_of(r) == 2)
    # The abandoned put still lands later; the redelivery finds it already there.
    proxy.drain()
    proxy.clear()
    kind, resp = api.invoke(event_bytes(records), timeout=30)
    assert (kind, resp) == ("response", {"batchItemFailures": []})
    check_complete_once(s3, "faults", table, records)


def test_partial_retry_from_the_reported_record(s3, faults):
    """What Lambda does: redeliver from the reported record on. The archive is complete;
    records after the failure point that were in files that landed may be there twice,
    which readers remove by event_id."""
    proxy, api, out = faults
    table, records = "partial", make_records("partial", 12)
    proxy.clear()
    proxy.add("slowdown", match=f"/{table}/year=2026/month=01/day=02/")
    kind, resp = api.invoke(event_bytes(records), timeout=4)
    idx = check_reported(s3, "faults", table, records, resp)
    assert 0 < idx < len(records)
    proxy.clear()
    kind, resp = api.invoke(event_bytes(records[idx:]), timeout=30)
    assert (kind, resp) == ("response", {"batchItemFailures": []})
    ids = archived_ids(s3, "faults", table)
    assert set(ids) == {r["eventID"] for r in records}
    twice = {e for e in ids if ids.count(e) > 1}
    assert all(int(e.rsplit("-", 1)[1]) > idx for e in twice), twice


def test_duplicate_delivery_is_a_noop(s3, faults):
    proxy, api, out = faults
    table, records = "dupes", make_records("dupes", 7)
    proxy.clear()
    assert api.invoke(event_bytes(records), timeout=30) == ("response", {"batchItemFailures": []})
    keys = list_keys(s3, f"faults/{table}/")
    assert last_emf(out)["FilesWritten"] == 3
    assert api.invoke(event_bytes(records), timeout=30) == ("response", {"batchItemFailures": []})
    assert list_keys(s3, f"faults/{table}/") == keys
    emf = last_emf(out)
    assert emf["FilesWritten"] == 0 and emf["RecordsArchived"] == 7 and emf["BytesWritten"] == 0
    check_complete_once(s3, "faults", table, records)


def test_logs_one_summary_line_per_invocation(s3, faults):
    proxy, api, out = faults
    proxy.clear()
    before = len(Path(out).read_text().splitlines())
    records = make_records("logs", 5)
    assert api.invoke(event_bytes(records), timeout=30) == ("response", {"batchItemFailures": []})
    time.sleep(0.2)
    lines = [json.loads(line) for line in Path(out).read_text().splitlines()[before:] if line.startswith("{")]
    summaries = [l for l in lines if l.get("message") == "invocation summary"]
    assert len(summaries) == 1
    s = summaries[0]
    assert (s["records"], s["archived"], s["rejected"], s["failed"], s["files_written"]) == (5, 5, 0, 0, 3)
    assert s["stream_lag_ms"] > 0 and s["bytes_written"] > 0 and "duration_ms" in s
    emf = last_emf(out)
    cw = emf["_aws"]["CloudWatchMetrics"][0]
    assert cw["Namespace"] == "DdbArchiver" and cw["Dimensions"] == [["FunctionName"]]
    assert [m["Name"] for m in cw["Metrics"]] == [
        "RecordsArchived", "RecordsRejected", "RecordsFailed", "FilesWritten",
        "BytesWritten", "StreamLagMs", "DurationMs"]
    assert emf["FunctionName"] == "archiver-faults"
    info = [l for l in lines if l.get("level") == "INFO" and l.get("message") != "invocation summary"]
    assert info == [], "no per-record info lines"


def test_a_maximum_batch_fits_in_128_mb(s3, faults):
    """10,000 records, about 6 MB of event: archived, and the process's peak resident
    memory stays under 128 MB."""
    proxy, api, out = faults
    proxy.clear()
    records = make_records("maxbatch", 10000, days=5)
    body = json.dumps({"Records": records}, separators=(",", ":")).encode()
    assert 5_500_000 < len(body) <= 6_291_456, len(body)
    assert api.invoke(body, timeout=120) == ("response", {"batchItemFailures": []})
    status = Path(f"/proc/{api.proc.pid}/status").read_text()
    peak_kb = int(next(l for l in status.splitlines() if l.startswith("VmHWM:")).split()[1])
    assert peak_kb < 128 * 1024, f"peak RSS {peak_kb} kB"
    assert len(archived_ids(s3, "faults", "maxbatch")) == 10000


def test_cli_archives_to_s3_with_the_same_sink(s3, tmp_path):
    cli = BIN.parent / "ddb-archiver"
    env = function_env(f"http://127.0.0.1:{s3.port}", "cli", "unused")
    event = ROOT / "examples/events/invoices-stream.json"
    args = [str(cli), "archive", "--dest", f"s3://{BUCKET}/cli", "--format", "jsonl.gz", "--json", str(event)]
    res = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert all(f["location"].startswith(f"s3://{BUCKET}/cli/") for f in summary["files"])
    assert {f["outcome"] for f in summary["files"]} == {"written"}
    rows = read_rows(s3, "cli/")
    want = parse(event.read_text())["Records"]
    assert sorted(r["event_id"] for r in rows) == sorted(r["eventID"] for r in want)
    for row in rows:
        assert row["record"] == next(r for r in want if r["eventID"] == row["event_id"])
    res = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert {f["outcome"] for f in json.loads(res.stdout)["files"]} == {"already_present"}


# --- the real runtime: cargo lambda watch -----------------------------------------------


@pytest.fixture(scope="module")
def watch(s3, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("watch") / "watch.log"
    env = dict(os.environ)
    env.update(function_env(f"http://127.0.0.1:{s3.port}", "watch", "ddb-archiver-lambda"))
    env.pop("AWS_LAMBDA_FUNCTION_NAME")
    with open(log, "wb") as f:
        proc = subprocess.Popen(
            ["cargo", "lambda", "watch", "--ignore-changes", "--invoke-address", "127.0.0.1",
             "--invoke-port", str(port)],
            cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_port(port, 120)
        yield port, log
    finally:
        stop(proc)


def invoke_watch(port, data_file):
    res = subprocess.run(
        ["cargo", "lambda", "invoke", "ddb-archiver-lambda", "--invoke-address", "127.0.0.1",
         "--invoke-port", str(port), "--output-format", "json", "--data-file", str(data_file)],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def lambda_event_fixtures():
    files = event_fixtures() + [ROOT / "examples/events/invoices-stream.json"]
    out = []
    for f in files:
        try:
            doc = json.loads(f.read_bytes().decode("utf-8-sig"))
        except ValueError:
            continue
        recs = doc.get("Records") if isinstance(doc, dict) else None
        if isinstance(recs, list) and recs and all(isinstance(r, dict) and "eventSource" in r for r in recs):
            out.append(f)
    return out


def expected_record(raw):
    if "kinesis" in raw:
        return parse(base64.b64decode(raw["kinesis"]["data"]))
    return raw


@pytest.mark.parametrize("fixture", fixture_params(lambda_event_fixtures(), ids=lambda p: p.name))
def test_fixture_events_under_cargo_lambda_watch(s3, watch, fixture, tmp_path):
    port, _ = watch
    clear(s3, "watch/")
    raw_bytes = fixture.read_bytes()
    if raw_bytes.startswith(b"\xef\xbb\xbf"):
        # Lambda delivers JSON, never a byte-order mark; some fixture files carry one.
        fixture = tmp_path / fixture.name
        fixture.write_bytes(raw_bytes[3:])
    resp = invoke_watch(port, fixture)
    assert resp == {"batchItemFailures": []}
    raw_records = parse(fixture.read_bytes().decode("utf-8-sig"))["Records"]
    rows = read_rows(s3, "watch/")
    data = [r for r in rows if not r["_key"].startswith("watch/_rejected/")]
    rejected = [r for r in rows if r["_key"].startswith("watch/_rejected/")]
    assert len(data) + len(rejected) == len(raw_records)
    unmatched = list(data)
    for i, raw in enumerate(raw_records):
        want = expected_record(raw)
        hit = next((r for r in unmatched if r["record"] == want), None)
        if hit is not None:
            unmatched.remove(hit)
            assert hit["keys"] == want["dynamodb"]["Keys"]
            assert hit.get("new_image") == want["dynamodb"].get("NewImage")
            assert hit.get("old_image") == want["dynamodb"].get("OldImage")
            continue
        rej = [r for r in rejected if r["index"] == i]
        assert len(rej) == 1 and rej[0]["record"] == raw, f"record {i} of {fixture.name} is not archived"
    # Delivered again: a no-op reporting success.
    keys = list_keys(s3, "watch/")
    assert invoke_watch(port, fixture) == {"batchItemFailures": []}
    assert [k for k in list_keys(s3, "watch/") if not k.startswith("watch/_rejected/")] == \
        [k for k in keys if not k.startswith("watch/_rejected/")]


# --- end to end from a DynamoDB stream (moto server) ------------------------------------


@pytest.fixture(scope="module")
def moto():
    port = free_port()
    proc = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def test_end_to_end_from_a_dynamodb_stream(s3, watch, moto, tmp_path):
    port, _ = watch
    kw = dict(region_name="us-east-1", endpoint_url=moto, aws_access_key_id="x", aws_secret_access_key="y")
    ddb = boto3.client("dynamodb", **kw)
    streams = boto3.client("dynamodbstreams", **kw)
    table = f"orders-{uuid.uuid4().hex[:8]}"
    ddb.create_table(
        TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    expected = {}
    for n in range(4):
        pk = f"order#{n}"
        ddb.put_item(TableName=table, Item={"pk": {"S": pk}, "amount": {"N": "12345678901234567890123456789012345678"},
                                            "blob": {"B": b"\x00\xff"}})
        ddb.update_item(TableName=table, Key={"pk": {"S": pk}}, UpdateExpression="SET amount = :t",
                        ExpressionAttributeValues={":t": {"N": f"1E+12{n}"}})
        changes = ["INSERT", "MODIFY"]
        if n % 2 == 0:
            ddb.delete_item(TableName=table, Key={"pk": {"S": pk}})
            changes.append("REMOVE")
        expected[pk] = changes
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    raw_pages = []
    streams.meta.events.register("after-call.dynamodbstreams.GetRecords",
                                 lambda http_response, **_: raw_pages.append(http_response.content))
    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            page = streams.get_records(ShardIterator=it)
            if not page["Records"]:
                break
            it = page.get("NextShardIterator")
    for content in raw_pages:
        for rec in json.loads(content)["Records"]:
            # The event source mapping adds the stream ARN to each record it delivers.
            rec.setdefault("eventSourceARN", arn)
            records.append(rec)
    assert len(records) == sum(len(v) for v in expected.values())
    for start in range(0, len(records), 4):
        batch = tmp_path / f"batch{start}.json"
        batch.write_text(json.dumps({"Records": records[start:start + 4]}))
        assert invoke_watch(port, batch) == {"batchItemFailures": []}
    rows = read_rows(s3, f"watch/{table}/")
    assert sorted(r["event_id"] for r in rows) == sorted(r["eventID"] for r in records)
    history = {}
    for row in sorted(rows, key=lambda r: (r["approximate_creation_time"], int(r["sequence_number"]))):
        history.setdefault(row["keys"]["pk"]["S"], []).append(row["event_name"])
        raw = next(r for r in records if r["eventID"] == row["event_id"])
        assert row["record"] == parse(json.dumps(raw))
    assert history == expected
