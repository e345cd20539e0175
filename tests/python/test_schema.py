"""Typed columns and Athena tables, checked with real readers.

The archiver writes the bundled example events (plus a second batch repeating one change,
and changes whose values do not fit their columns) with `--schemas schemas`, in both
formats. The DDL that `ddb-archiver schema ddl` prints must parse as Athena DDL (sqlglot)
and run in Spark SQL with Hive support over those files (location replaced by the local
archive, partitions added with MSCK REPAIR TABLE since projection is Athena-only); the
ready queries in schemas/queries/ must give the answers computed here from the input
events, in Spark and in DuckDB alike.

Spark has no OpenX JSON SerDe (it is not bundled and cannot be fetched here), so for
`jsonl.gz` the test takes the generated DDL's columns and its `timestamp.formats` and
declares the same table over Spark's own JSON reader, which like the SerDe gives the JSON
text of nested objects for `string` columns.
"""

import base64
import copy
import datetime as dt
import gzip
import json
import os
import re
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import sqlglot
from conftest import spark_session
from sqlglot import exp

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("DDB_ARCHIVER_BIN", str(ROOT / "target" / "debug" / "ddb-archiver"))
EXAMPLE = ROOT / "examples" / "events" / "invoices-stream.json"
SCHEMA = ROOT / "schemas" / "invoices.json"
QUERIES = ROOT / "schemas" / "queries"
LOCATION = "s3://test-bucket/archive/invoices/"
FORMATS = ["parquet", "jsonl.gz"]
AS_OF = ["2026-01-01 00:30:00", "2026-01-01 02:00:00", "2025-12-31 23:59:59", "2026-01-03 00:00:00"]

os.environ["TZ"] = "UTC"
time.tzset()


def run(*args, check=True):
    return subprocess.run([BIN, *args], capture_output=True, text=True, check=check)


def mismatch_events():
    """Changes to new items on 2026-01-02 whose values do not fit their columns."""
    base = json.loads(EXAMPLE.read_text())["Records"][0]
    r = copy.deepcopy(base)
    r["eventID"] = "c0ffee0000000001"
    r["dynamodb"]["ApproximateCreationDateTime"] = 1767312000
    r["dynamodb"]["SequenceNumber"] = "300000000000000000001"
    r["dynamodb"]["Keys"] = {"pk": {"S": "INV#3001"}}
    img = r["dynamodb"]["NewImage"]
    img["pk"] = {"S": "INV#3001"}
    img["amount"] = {"S": "12.50"}  # another DynamoDB type
    img["big"] = {"N": "1" * 39}  # 39 digits: overflow
    img["issued_at"] = {"S": "yesterday"}  # bad timestamp
    img["tags"] = {"L": [{"S": "a"}, {"N": "1"}]}  # a number in array<string>
    img["scores"] = {"NS": ["1.234"]}  # more than 2 fraction digits
    img["paid"] = {"S": "yes"}
    img["sig"] = {"B": "@@@"}  # not base64
    img["expires"] = {"S": "2026-13-45"}
    return {"Records": [r]}, [
        "amount", "big", "issued_at", "tags", "scores", "sig", "paid", "expires"
    ]


def all_records(inputs):
    out = []
    for path in inputs:
        out.extend(json.loads(Path(path).read_text())["Records"])
    return out


def event_ms(record):
    return int(Decimal(str(record["dynamodb"]["ApproximateCreationDateTime"])) * 1000)


def key_text(record):
    return json.dumps(record["dynamodb"]["Keys"], separators=(",", ":"), ensure_ascii=False)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("schema")
    subset = tmp / "again.json"
    example = json.loads(EXAMPLE.read_text())
    # Change 3 arrives again in another batch: a second copy in another file.
    subset.write_text(json.dumps({"Records": [example["Records"][2]]}))
    bad, bad_columns = mismatch_events()
    mismatch = tmp / "mismatch.json"
    mismatch.write_text(json.dumps(bad))
    inputs = [EXAMPLE, subset, mismatch]
    archives = {}
    for fmt in FORMATS:
        dest = tmp / f"archive-{fmt}"
        for path in inputs:
            res = run("archive", "--dest", str(dest), "--format", fmt, "--schemas",
                      str(ROOT / "schemas"), "--json", str(path))
            summary = json.loads(res.stdout)
            assert summary["failed_files"] == [] and summary["rejected"] == 0, res.stdout
        archives[fmt] = dest
    records = [r for r in all_records(inputs)
               if r["eventSourceARN"].split("/")[1] == "invoices"]
    return {"tmp": tmp, "archives": archives, "records": records,
            "bad_columns": bad_columns, "bad_event": bad["Records"][0]}


def ddl(fmt, *extra):
    return run("schema", "ddl", "--schema", str(SCHEMA), "--location", LOCATION,
               "--format", fmt, *extra).stdout


# ---------------------------------------------------------------- reference answers


def expected_per_day(records):
    seen, out = set(), {}
    for r in records:
        if r["eventID"] in seen:
            continue
        seen.add(r["eventID"])
        day = dt.datetime.fromtimestamp(event_ms(r) / 1000, dt.timezone.utc)
        k = (f"{day.year:04d}", f"{day.month:02d}", f"{day.day:02d}", r["eventName"])
        out[k] = out.get(k, 0) + 1
    return sorted(k + (v,) for k, v in out.items())


def expected_as_of(records, t):
    limit = int(dt.datetime.fromisoformat(t).replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
    latest = {}
    for r in records:
        if event_ms(r) > limit:
            continue
        k = key_text(r)
        order = (event_ms(r), len(r["dynamodb"]["SequenceNumber"]), r["dynamodb"]["SequenceNumber"])
        if k not in latest or order > latest[k][0]:
            latest[k] = (order, r)
    return sorted(
        (k, r["eventID"], r["eventName"])
        for k, (_, r) in latest.items()
        if r["eventName"] != "REMOVE"
    )


def expected_history(records, pk):
    seen, out = set(), []
    for r in records:
        if r["dynamodb"]["Keys"].get("pk", {}).get("S") != pk or r["eventID"] in seen:
            continue
        seen.add(r["eventID"])
        out.append((event_ms(r), r["eventID"], r["eventName"]))
    return [(e, n) for _, e, n in sorted(out)]


def query(name, t=None):
    text = (QUERIES / name).read_text()
    if t is not None:
        text = text.replace("2026-01-01 00:30:00", t)
    return text


# ---------------------------------------------------------------- DDL and files


@pytest.mark.parametrize("fmt", FORMATS)
def test_ddl_parses_as_athena(fmt):
    text = ddl(fmt, "--database", "archive")
    create = sqlglot.parse_one(text, read="athena")
    assert isinstance(create, exp.Create)
    columns = [c.name for c in create.this.expressions]
    assert columns[:12] == ["event_id", "event_name", "table_name", "sequence_number",
                            "approximate_creation_time", "stream_view_type", "size_bytes",
                            "ttl_delete", "keys", "new_image", "old_image", "record"]
    schema_columns = [c["name"] for c in json.loads(SCHEMA.read_text())["columns"]]
    if fmt == "parquet":
        assert columns[12:] == schema_columns + ["type_errors"]
        assert "STORED AS PARQUET" in text
    else:
        assert columns[12:] == []
        assert "org.openx.data.jsonserde.JsonSerDe" in text
    props = dict(re.findall(r"'([a-z.]+)' = '([^']*)'", text))
    assert props["projection.enabled"] == "true"
    assert props["projection.month.digits"] == "2" and props["projection.day.digits"] == "2"
    assert props["storage.location.template"] == LOCATION + "year=${year}/month=${month}/day=${day}/"
    assert "PARTITIONED BY (\n  `year` string,\n  `month` string,\n  `day` string\n)" in text


def test_glue_matches_ddl():
    for fmt in FORMATS:
        glue = json.loads(run("schema", "glue", "--schema", str(SCHEMA), "--location",
                              LOCATION, "--format", fmt).stdout)
        create = sqlglot.parse_one(ddl(fmt), read="athena")
        cols = [(c.name, c.args["kind"].sql("hive").lower().replace(" ", ""))
                for c in create.this.expressions]
        glue_cols = [(c["name"], c["type"].replace(" ", "")) for c in glue["storageDescriptor"]["columns"]]
        assert glue_cols == cols
        assert glue["storageDescriptor"]["location"] == LOCATION
        assert [p["name"] for p in glue["partitionKeys"]] == ["year", "month", "day"]
        committed = json.loads((ROOT / "schemas" / "generated" / f"invoices.{fmt}.glue.json").read_text())
        assert committed["storageDescriptor"]["columns"] == glue["storageDescriptor"]["columns"]


def test_standard_ddl_and_errors(tmp_path):
    text = run("schema", "ddl", "--table", "Orders-2026.v1", "--location", "s3://b/p/",
               "--format", "parquet").stdout
    create = sqlglot.parse_one(text, read="athena")
    assert create.this.this.name == "orders_2026_v1"
    assert len(create.this.expressions) == 12
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"table": "invoices", "columns": [
        {"name": "amount", "attribute": "amount", "type": "decimal(40,2)"}]}))
    res = run("schema", "ddl", "--schema", str(bad), "--location", LOCATION, "--format",
              "parquet", check=False)
    assert res.returncode == 1
    assert str(bad) in res.stderr and '"amount"' in res.stderr and "precision 40" in res.stderr
    res = run("archive", "--schemas", str(tmp_path), "--dest", str(tmp_path / "a"),
              str(EXAMPLE), check=False)
    assert res.returncode == 1
    assert "--schemas" in res.stderr and str(bad) in res.stderr and '"amount"' in res.stderr
    assert not (tmp_path / "a").exists()


def test_mismatches_are_nulls_and_type_errors(work):
    files = sorted(work["archives"]["parquet"].glob("invoices/year=2026/month=01/day=02/*.parquet"))
    assert len(files) == 1
    row = pq.read_table(files[0]).to_pylist()[0]
    assert row["type_errors"] == work["bad_columns"]
    for c in work["bad_columns"]:
        assert row[c] is None, c
    img = work["bad_event"]["dynamodb"]["NewImage"]
    assert row["pk"] == img["pk"]["S"] and row["customer"] == img["customer"]["S"]
    assert row["first_sku"] == img["lines"]["L"][0]["M"]["sku"]["S"]
    # The lossless columns keep the values that did not fit.
    assert json.loads(row["new_image"])["big"] == img["big"]


# ---------------------------------------------------------------- Spark


@pytest.fixture(scope="module")
def spark(work):
    session = spark_session(work["tmp"], "ddb-archiver-schema")
    for fmt in FORMATS:
        local = f"file://{work['archives'][fmt]}/invoices/"
        text = ddl(fmt).replace(LOCATION, local)
        db = "parquet_db" if fmt == "parquet" else "json_db"
        session.sql(f"CREATE DATABASE IF NOT EXISTS {db}")
        session.sql(f"USE {db}")
        if fmt == "parquet":
            session.sql(text.rstrip().rstrip(";"))
        else:
            session.sql(spark_json_table(text, local))
        session.sql("MSCK REPAIR TABLE invoices")
    yield session
    session.stop()


def spark_json_table(text, local):
    """The generated jsonl.gz table over Spark's JSON reader: same columns, types and
    timestamp format."""
    create = sqlglot.parse_one(text, read="athena")
    cols = ", ".join(f"`{c.name}` {c.args['kind'].sql('spark')}" for c in create.this.expressions)
    ts_format = re.search(r"'timestamp.formats' = '((?:[^'\\]|\\.)*)'", text).group(1)
    ts_format = ts_format.replace("\\'", "'")
    return (
        f"CREATE TABLE invoices ({cols}, `year` string, `month` string, `day` string) "
        f"USING json OPTIONS (timestampFormat \"{ts_format}\", mode \"FAILFAST\") "
        f"PARTITIONED BY (year, month, day) LOCATION '{local}'"
    )


def spark_rows(spark, db, sql):
    spark.sql(f"USE {db}")
    return [tuple(r) for r in spark.sql(sqlglot.transpile(sql, read="athena", write="spark")[0]).collect()]


DBS = {"parquet": "parquet_db", "jsonl.gz": "json_db"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_spark_counts_and_queries(spark, work, fmt):
    db, records = DBS[fmt], work["records"]
    total = spark_rows(spark, db, "SELECT count(*), count(DISTINCT event_id) FROM invoices")[0]
    assert total == (len(records), len({r["eventID"] for r in records}))
    assert spark_rows(spark, db, query("changes-per-day.sql")) == expected_per_day(records)
    for t in AS_OF:
        got = sorted((k, e, n) for k, _, n, e, _ in spark_rows(spark, db, query("as-of.sql", t)))
        assert got == expected_as_of(records, t), t
    history = spark_rows(spark, db, query("item-history.sql"))
    assert [(e, n) for _, n, e, *_ in history] == expected_history(records, "INV#1001")
    # Nested JSON columns come back as JSON text that parses to what arrived.
    by_id = {r["eventID"]: r for r in records}
    for ts, _, event_id, _, new_image, _ in history:
        assert json.loads(new_image) == by_id[event_id]["dynamodb"].get("NewImage")
        assert int(ts.replace(tzinfo=dt.timezone.utc).timestamp() * 1000) == event_ms(by_id[event_id])


def test_spark_typed_columns(spark, work):
    first = work["records"][0]
    img = first["dynamodb"]["NewImage"]
    spark.sql("USE parquet_db")
    row = spark.sql(
        "SELECT big, amount, issued_at, tags, scores, first_sku, sig, expires, type_errors "
        f"FROM invoices WHERE event_id = '{first['eventID']}'").collect()[0]
    assert row["big"] == Decimal(img["big"]["N"]) and len(img["big"]["N"]) == 38
    assert row["amount"] == Decimal(img["amount"]["N"])
    assert row["issued_at"] == dt.datetime.fromisoformat(img["issued_at"]["S"].replace("Z", "+00:00")).replace(tzinfo=None)
    assert row["tags"] == img["tags"]["SS"]
    assert row["scores"] == [Decimal(s) for s in img["scores"]["NS"]]
    assert row["first_sku"] == img["lines"]["L"][0]["M"]["sku"]["S"]
    assert bytes(row["sig"]) == base64.b64decode(img["sig"]["B"])
    assert row["type_errors"] == []
    bad = spark.sql(
        "SELECT type_errors, amount, big FROM invoices "
        f"WHERE event_id = '{work['bad_event']['eventID']}'").collect()[0]
    assert bad["type_errors"] == work["bad_columns"] and bad["amount"] is None and bad["big"] is None
    # The sum over typed decimals is exact.
    total = spark.sql("SELECT sum(amount) FROM invoices WHERE event_name <> 'REMOVE'").collect()[0][0]
    want = sum(Decimal(r["dynamodb"]["NewImage"]["amount"]["N"]) for r in work["records"]
               if r["eventName"] != "REMOVE" and "N" in r["dynamodb"]["NewImage"]["amount"])
    assert total == want


# ---------------------------------------------------------------- DuckDB


DUCK_TYPES = {"string": "VARCHAR", "timestamp": "TIMESTAMP", "bigint": "BIGINT", "boolean": "BOOLEAN"}


@pytest.fixture(scope="module")
def duck(work):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    hive = "hive_partitioning = true, hive_types = {'year': VARCHAR, 'month': VARCHAR, 'day': VARCHAR}"
    cons = {}
    for fmt in FORMATS:
        c = con.cursor()
        schema = "pq" if fmt == "parquet" else "js"
        c.execute(f"CREATE SCHEMA {schema}")
        c.execute(f"USE {schema}")
        root = work["archives"][fmt] / "invoices"
        if fmt == "parquet":
            c.execute(
                f"CREATE VIEW invoices AS SELECT * REPLACE ("
                f"approximate_creation_time::TIMESTAMP AS approximate_creation_time) "
                f"FROM read_parquet('{root}/*/*/*/*.parquet', {hive})")
        else:
            create = sqlglot.parse_one(ddl(fmt), read="athena")
            cols = ", ".join(f"'{col.name}': '{DUCK_TYPES[col.args['kind'].sql('hive').lower()]}'"
                             for col in create.this.expressions)
            c.execute(
                f"CREATE VIEW invoices AS SELECT * FROM read_json('{root}/*/*/*/*.json.gz', "
                f"format = 'newline_delimited', columns = {{{cols}}}, {hive})")
        cons[fmt] = c
    yield cons
    con.close()


def duck_rows(c, sql):
    return [tuple(r) for r in c.execute(sqlglot.transpile(sql, read="athena", write="duckdb")[0]).fetchall()]


@pytest.mark.parametrize("fmt", FORMATS)
def test_duckdb_gives_the_same_answers(duck, spark, work, fmt):
    c, records = duck[fmt], work["records"]
    assert duck_rows(c, query("changes-per-day.sql")) == expected_per_day(records)
    for t in AS_OF:
        got = duck_rows(c, query("as-of.sql", t))
        assert sorted((k, e, n) for k, _, n, e, _ in got) == expected_as_of(records, t), t
        spark_got = spark_rows(spark, DBS[fmt], query("as-of.sql", t))
        norm = lambda rows: sorted((k, str(ts), n, e, json.loads(i)) for k, ts, n, e, i in rows)
        assert norm(got) == norm(spark_got), t
    history = duck_rows(c, query("item-history.sql"))
    assert [(e, n) for _, n, e, *_ in history] == expected_history(records, "INV#1001")
    if fmt == "parquet":
        first = records[0]
        big, tags, ts = c.execute(
            "SELECT big, tags, issued_at::TIMESTAMP FROM invoices WHERE event_id = ?",
            [first["eventID"]]).fetchone()
        img = first["dynamodb"]["NewImage"]
        assert big == Decimal(img["big"]["N"]) and tags == img["tags"]["SS"]
        assert ts == dt.datetime.fromisoformat(img["issued_at"]["S"].replace("Z", "+00:00")).replace(tzinfo=None)
        errors = c.execute("SELECT type_errors FROM invoices WHERE event_id = ?",
                           [work["bad_event"]["eventID"]]).fetchone()[0]
        assert errors == work["bad_columns"]


# ---------------------------------------------------------------- schema infer


def test_infer_proposes_a_schema_that_fits(work, tmp_path):
    records = [r for r in work["records"] if r["eventID"] != work["bad_event"]["eventID"]]
    proposals = []
    for fmt in FORMATS:
        # Only the files of the example events (not the mismatches of 2026-01-02).
        files = [str(p) for p in sorted((work["archives"][fmt] / "invoices").rglob("*"))
                 if p.is_file() and "day=02" not in str(p)]
        res = run("schema", "infer", "--table", "invoices", *files)
        proposals.append(json.loads(res.stdout))
    assert proposals[0] == proposals[1]
    proposal = proposals[0]
    assert proposal["table"] == "invoices"
    attributes = []
    for r in records:
        for image in (r["dynamodb"].get("NewImage"), r["dynamodb"].get("OldImage")):
            for name in image or {}:
                if name not in attributes:
                    attributes.append(name)
    assert [c["attribute"] for c in proposal["columns"]] == attributes
    types = {c["attribute"]: c["type"] for c in proposal["columns"]}
    assert types["big"] == "decimal(38,0)" and types["tags"] == "array<string>"
    assert types["issued_at"] == "timestamp" and types["lines"] == "json"
    # The proposal is a valid schema file, and every value it was made from fits it.
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "invoices.json").write_text(json.dumps(proposal))
    text = run("schema", "ddl", "--schema", str(schemas / "invoices.json"), "--location",
               LOCATION, "--format", "parquet").stdout
    sqlglot.parse_one(text, read="athena")
    dest = tmp_path / "archive"
    run("archive", "--dest", str(dest), "--schemas", str(schemas), str(EXAMPLE))
    rows = [row for f in sorted(dest.glob("invoices/*/*/*/*.parquet"))
            for row in pq.read_table(f).to_pylist()]
    assert len(rows) == len({r["eventID"] for r in records})
    assert all(row["type_errors"] == [] for row in rows)
    assert run("schema", "infer", str(dest), check=False).returncode == 1


def test_json_schema_of_the_format(tmp_path):
    # jsonschema comes with cfn-lint (tests/python/requirements.txt).
    import jsonschema

    meta = json.loads((ROOT / "schemas" / "schema.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(meta)
    validator = jsonschema.Draft202012Validator(meta)
    for path in sorted((ROOT / "schemas").glob("*.json")):
        if not path.name.endswith(".schema.json"):
            assert list(validator.iter_errors(json.loads(path.read_text()))) == [], path
    for column in [
        {"name": "Keys", "attribute": "a", "type": "string"},
        {"name": "keys", "attribute": "a", "type": "string"},
        {"name": "x", "path": [0], "type": "string"},
        {"name": "x", "attribute": "a", "path": ["a"], "type": "string"},
        {"name": "x", "attribute": "a", "type": "float"},
        {"name": "x", "type": "string"},
    ]:
        doc = {"table": "invoices", "columns": [column]}
        assert list(validator.iter_errors(doc)), column
        # The archiver refuses the same file.
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(doc))
        res = run("schema", "ddl", "--schema", str(path), "--location", LOCATION,
                  "--format", "parquet", check=False)
        assert res.returncode == 1 and str(path) in res.stderr, column

