"""`restore --engine athena` against moto's server: the calls in order, and the table.

Moto answers Athena's API (a query goes QUEUED, RUNNING, SUCCEEDED as it is polled) but
runs no SQL. So a proxy in front of it stands in for Athena's engine: on
`StartQueryExecution` of an `UNLOAD`, it runs the SELECT inside (the very text restore
sent, translated by sqlglot as the view is) in DuckDB over the view of the archive, and
writes its lines gzip-compressed to the `TO` location in moto's S3, as Athena's text
UNLOAD does; then it forwards the request. Restore must send exactly `schema restore-sql`'s
UNLOAD for its run sub-prefix, poll until the query ends, and call `ImportTable` on the
files; moto then creates the table from them, whose items must be restore's own state at
T (`restore --import-format DIR`), attribute for attribute. A second run of the same
restore finds its sub-prefix taken and stops before any query.
"""

import gzip
import json
import os
import re
import subprocess
import threading
import time
import uuid
from http.server import ThreadingHTTPServer

import boto3
import pytest
import sqlglot

from test_compacted import BIN, archive, duck_view, run
from test_restore import _Handler as ForwardingHandler
from test_restore_sql import FMT, history

MOTO_PORT = int(os.environ.get("MOTO_PORT", "5000"))
MOTO = f"http://127.0.0.1:{MOTO_PORT}"
REGION = os.environ.get("AWS_REGION", "us-east-1")
AS_OF = "2026-03-02T12:00:00Z"


class _Handler(ForwardingHandler):
    """Forwards to moto, as the restore tests' fault proxy does; an UNLOAD is run first."""

    def do_POST(self):
        engine = self.server.proxy
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = self.headers.get("X-Amz-Target", "")
        engine.calls.append(target.rsplit(".", 1)[-1])
        if target.endswith(".StartQueryExecution"):
            engine.unload(json.loads(body)["QueryString"])
        self._reply(*self._forward(body))


class AthenaStandIn:
    """Athena's API from moto, its engine from DuckDB over the archive's view."""

    def __init__(self, raw, compacted, s3):
        self.raw, self.compacted, self.s3 = raw, compacted, s3
        self.calls, self.queries = [], []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.proxy = self
        self.upstream = MOTO_PORT
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def unload(self, sql):
        self.queries.append(sql)
        m = re.fullmatch(r"UNLOAD \(\n(.*)\n\)\nTO '(s3://[^']+)'\n"
                         r"WITH \(format = 'TEXTFILE', compression = 'GZIP'\);\n", sql, re.S)
        assert m, sql
        select, to = m.groups()
        c = duck_view(FMT, self.raw, self.compacted)
        lines = [r[0] for r in c.execute(
            sqlglot.transpile(select, read="athena", write="duckdb")[0]).fetchall()]
        c.close()
        bucket, prefix = to[len("s3://"):].split("/", 1)
        # Athena writes several files in parallel; two here, split unevenly.
        for n, part in enumerate([lines[:3], lines[3:]]):
            if part:
                body = gzip.compress("".join(line + "\n" for line in part).encode())
                self.s3.put_object(Bucket=bucket, Key=f"{prefix}{uuid.uuid4()}_{n}.gz", Body=body)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def normalized(item, moto=False):
    """DynamoDB JSON with set members in order (a set has none). Moto's import parser
    (py_partiql_parser) keeps a string's `\\uXXXX` escapes as text: with `moto`, they
    are decoded as JSON would."""
    def norm(v):
        (t, x), = v.items()
        if t == "S" and moto and "\\u" in x:
            return {t: json.loads(f'"{x}"')}
        if t in ("SS", "NS", "BS"):
            return {t: sorted(x)}
        if t == "M":
            return {t: {k: norm(y) for k, y in x.items()}}
        if t == "L":
            return {t: [norm(y) for y in x]}
        return v
    return {k: norm(v) for k, v in item.items()}


def moto_normalized(item):
    return normalized(item, moto=True)


def test_restore_on_athena_then_import(tmp_path):
    s3 = boto3.client("s3", endpoint_url=MOTO, region_name=REGION)
    ddb = boto3.client("dynamodb", endpoint_url=MOTO, region_name=REGION)
    bucket = f"athena-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    raw, compacted = tmp_path / "raw", tmp_path / "compacted"
    (compacted / "invoices").mkdir(parents=True)
    (compacted / "ddb-archiver-manifests" / "invoices").mkdir(parents=True)
    days, kinesis, _ = history()
    archive(raw, FMT, days[0] + days[1], tmp_path, "days")
    archive(raw, FMT, kinesis[:4], tmp_path, "kinesis")

    # The archive has no baseline: the table began empty with the archive.
    base = ["restore", "--source", raw, "--table", "invoices", "--as-of", AS_OF, "--json", "--allow-incomplete"]
    local = json.loads(run(*base, "--to-table", "xyz", "--import-format", tmp_path / "imp").stdout)
    want = []
    for f in sorted((tmp_path / "imp").glob("run-*/*.json.gz")):
        want += gzip.decompress(f.read_bytes()).decode().splitlines()
    assert len(want) == local["items"] > 3, local

    stand_in = AthenaStandIn(raw, compacted, s3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.update(AWS_ENDPOINT_URL_ATHENA=f"http://127.0.0.1:{stand_in.port}",
               AWS_ENDPOINT_URL_S3=MOTO, AWS_ENDPOINT_URL_DYNAMODB=MOTO)
    table = f"restored-{uuid.uuid4().hex[:8]}"
    args = [*base, "--to-table", table, "--engine", "athena",
            "--import-format", f"s3://{bucket}/restores/", "--start-import",
            "--athena-output-location", f"s3://{bucket}/athena-results/"]
    try:
        res = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, env=env)
        assert res.returncode == 0, res.stderr
        summary = json.loads(res.stdout)
        prefix = summary["import_prefix"]
        assert re.fullmatch(rf"s3://{bucket}/restores/run-[0-9a-f]{{16}}/", prefix), summary
        # Exactly schema restore-sql's UNLOAD, then polling, then nothing else of Athena's.
        sql = run("schema", "restore-sql", "--table", "invoices", "--as-of", AS_OF,
                  "--export-location", prefix).stdout
        assert stand_in.queries == [sql]
        assert stand_in.calls[0] == "StartQueryExecution"
        assert set(stand_in.calls[1:]) == {"GetQueryExecution"} and len(stand_in.calls) >= 2
        assert len(summary["import_files"]) == 2 and summary["import_arn"], summary

        # The files are restore's own lines; the imported table holds its items.
        got = []
        for key in summary["import_files"]:
            b, k = key[len("s3://"):].split("/", 1)
            got += gzip.decompress(s3.get_object(Bucket=b, Key=k)["Body"].read()).decode().splitlines()
        assert sorted(got) == sorted(want)
        for _ in range(100):
            status = ddb.describe_import(ImportArn=summary["import_arn"])["ImportTableDescription"]["ImportStatus"]
            if status != "IN_PROGRESS":
                break
            time.sleep(0.1)
        assert status == "COMPLETED", status
        desc = ddb.describe_table(TableName=table)["Table"]
        assert desc["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
        assert desc["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
        items = ddb.scan(TableName=table)["Items"]
        expected = [normalized(json.loads(line)["Item"]) for line in want]
        assert sorted(map(moto_normalized, items), key=lambda i: i["pk"]["S"]) == \
            sorted(expected, key=lambda i: i["pk"]["S"])

        # The same restore again: its sub-prefix holds files, so no query is sent.
        calls = len(stand_in.calls)
        res = subprocess.run([BIN, *map(str, args), "--allow-existing"], capture_output=True,
                             text=True, env=env)
        assert res.returncode == 1 and "this restore did not write" in res.stderr, res.stderr
        assert len(stand_in.calls) == calls
    finally:
        stand_in.close()


@pytest.mark.parametrize("bad, message", [
    (["--import-format", "/tmp/x"], "Athena writes to S3"),
    ([], "--engine athena writes import files"),
])
def test_athena_needs_an_s3_import_location(tmp_path, bad, message):
    res = run("restore", "--source", tmp_path, "--table", "invoices", "--as-of", AS_OF,
              "--to-table", "xyz", "--engine", "athena", *bad, check=False)
    assert res.returncode != 0 and message in res.stderr, res.stderr
