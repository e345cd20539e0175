"""Raw and compacted data together: the view `invoices_all` shows every change once.

Generated changes over three days (some archived twice) are archived by the real binary
in both formats. For each, the raw, compacted and manifests tables and the view are made
from `ddb-archiver schema ddl --layer ...`, in Spark (Hive support) and in DuckDB (over the
same files, the view's SQL translated by sqlglot). The view must give the answers computed
here from the input before compaction, while a day's compacted files are written but not
its manifest, after compaction, after a late arrival and recompaction with the old
version's files kept for the grace period, and after the grace period. Some changes are
delivered twice as Kinesis Data Streams may: another sequence number, a later time. `schema compact-sql` compacts the days in Spark, and its
view gives the same answers.

Spark has neither the OpenX nor the Hive JSON SerDe, so the JSON tables (raw `jsonl.gz`,
manifests) are declared with the generated DDL's columns over Spark's JSON reader.
"""

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import duckdb
import pytest
import sqlglot

from conftest import spark_session
from test_schema import (expected_as_of, expected_history, expected_per_day,
                         spark_json_table)

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("DDB_ARCHIVER_BIN", str(ROOT / "target" / "debug" / "ddb-archiver"))
SCHEMA = ROOT / "schemas" / "invoices.json"
QUERIES = ROOT / "schemas" / "queries"
FORMATS = ["parquet", "jsonl.gz"]
RAW_LOC = "s3://bucket/archive/invoices/"
COMPACTED_LOC = "s3://bucket/compacted/invoices/"
MANIFESTS_LOC = "s3://bucket/compacted/ddb-archiver-manifests/invoices/"
DAYS = ["2026-03-01", "2026-03-02", "2026-03-03"]
AS_OF = ["2026-03-02 18:30:00", "2026-03-04 00:00:00"]
START = int(dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc).timestamp())

os.environ["TZ"] = "UTC"
time.tzset()


def run(*args, check=True):
    return subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, check=check)


def change(i, t, state):
    """Change number `i` at second `t` after 2026-03-01: to one of 12 items, in turn
    inserted, modified and removed."""
    pk = f"INV#{1001 + i % 12}"
    old = state.get(pk)
    name = "INSERT" if old is None else ("REMOVE" if i % 7 == 0 else "MODIFY")
    new = None if name == "REMOVE" else {"pk": {"S": pk}, "amount": {"N": f"{i}.25"},
                                         "status": {"S": f"S{i}"}}
    state[pk] = new
    d = {"ApproximateCreationDateTime": START + t, "Keys": {"pk": {"S": pk}},
         "SequenceNumber": str(10**20 + i * 10), "SizeBytes": 60,
         "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if new:
        d["NewImage"] = new
    if old:
        d["OldImage"] = old
    return {"eventID": f"e{i:06d}", "eventName": name, "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "eu-west-1", "dynamodb": d,
            "eventSourceARN": "arn:aws:dynamodb:eu-west-1:1:table/invoices/stream/x"}


@pytest.fixture(scope="module")
def data():
    state, records = {}, []
    for i in range(270):  # 90 a day; the last 30 arrive late (day 2)
        day = i // 90 if i < 240 else 1
        t = day * 86400 + (i % 90) * 900 + (i >= 240) * 450
        records.append(change(i, t, state))
    on_time, late = records[:240], records[240:]
    # Day 2's late changes keep each item's order: none of them precedes a later change.
    # Kinesis Data Streams may deliver a change twice under another sequence number: the
    # copies come later, with a longer sequence number and a later time, other changes
    # between them; the view keeps the earliest copy.
    kinesis = []
    for r in on_time[10:20] + on_time[100:110]:
        c = json.loads(json.dumps(r))
        c["dynamodb"]["SequenceNumber"] = str(10**21 + int(r["dynamodb"]["SequenceNumber"]))
        c["dynamodb"]["ApproximateCreationDateTime"] += 60
        kinesis.append(c)
    return {"on_time": on_time, "late": late, "twice": on_time[60:130], "kinesis": kinesis}


def archive(dest, fmt, records, tmp, name):
    path = tmp / f"{name}.json"
    batches = [records[i:i + 25] for i in range(0, len(records), 25)]
    for n, batch in enumerate(batches):
        path.write_text(json.dumps({"Records": batch}))
        res = run("archive", "--dest", dest, "--format", fmt, "--schemas", ROOT / "schemas",
                  "--json", path)
        assert json.loads(res.stdout)["rejected"] == 0, res.stdout


def compact(raw, dest):
    res = run("compact", "--source", raw, "--dest", dest, "--table", "invoices",
              "--schemas", ROOT / "schemas", "--json")
    return json.loads(res.stdout)


def ddl(fmt, layer, location=None, *extra):
    args = ["schema", "ddl", "--schema", SCHEMA, "--format", fmt, "--layer", layer, *extra]
    if location:
        args += ["--location", location]
    return run(*args).stdout


def ready_queries(view):
    out = {}
    for f in sorted(QUERIES.glob("*.sql")):
        text = f.read_text().replace("FROM invoices", f"FROM {view}")
        if f.name == "as-of.sql":
            for t in AS_OF:
                out[(f.name, t)] = text.replace("2026-01-01 00:30:00", t)
        else:
            out[(f.name, None)] = text.replace("INV#1001", "INV#1003")
    return out


def expected(records):
    ids = {r["eventID"] for r in records}
    out = {"counts": (len(records), len(ids))}
    for (name, t) in ready_queries("v"):
        if name == "as-of.sql":
            out[(name, t)] = expected_as_of(records, t)
        elif name == "changes-per-day.sql":
            out[(name, t)] = expected_per_day(records)
        else:
            out[(name, t)] = expected_history(records, "INV#1003")
    return out


def answers(rows_of, view):
    """The view's answers, shaped like `expected`."""
    out = {"counts": tuple(rows_of(f"SELECT count(*), count(DISTINCT event_id) FROM {view}")[0])}
    for (name, t), sql in ready_queries(view).items():
        rows = rows_of(sql)
        if name == "as-of.sql":
            out[(name, t)] = sorted((k, e, n) for k, _, n, e, _ in rows)
        elif name == "changes-per-day.sql":
            out[(name, t)] = rows
        else:
            out[(name, t)] = [(e, n) for _, n, e, *_ in rows]
    return out


def distinct(records):
    seen, out = set(), []
    for r in records:
        if r["eventID"] not in seen:
            seen.add(r["eventID"])
            out.append(r)
    return out


# ---------------------------------------------------------------- Spark and DuckDB


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    session = spark_session(tmp_path_factory.mktemp("spark"), "ddb-archiver-compacted", **{
        "spark.sql.shuffle.partitions": "1",
        "spark.hadoop.hive.exec.dynamic.partition.mode": "nonstrict",
    })
    yield session
    session.stop()


def spark_sql(spark, sql):
    return spark.sql(sqlglot.transpile(sql, read="athena", write="spark")[0])


def spark_tables(spark, db, fmt, raw, compacted, extra=()):
    """The three tables and the view in Spark database `db`, from the generated DDL."""
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {db}")
    spark.sql(f"USE {db}")
    raw_url, c_url = f"file://{raw}/invoices/", f"file://{compacted}/invoices/"
    m_url = f"file://{compacted}/ddb-archiver-manifests/invoices/"
    text = ddl(fmt, "raw", RAW_LOC, *extra).replace(RAW_LOC, raw_url)
    spark.sql(text.rstrip().rstrip(";") if fmt == "parquet" else spark_json_table(text, raw_url))
    text = ddl(fmt, "compacted", COMPACTED_LOC, *extra).replace(COMPACTED_LOC, c_url)
    spark.sql(text.rstrip().rstrip(";"))
    text = ddl(fmt, "manifests", MANIFESTS_LOC, *extra)
    assert "org.apache.hive.hcatalog.data.JsonSerDe" in text
    create = sqlglot.parse_one(text, read="athena")
    cols = ", ".join(f"`{c.name}` {c.args['kind'].sql('spark')}" for c in create.this.expressions)
    spark.sql(f"CREATE TABLE {create.this.this.name} ({cols}, `year` string, `month` string, "
              f"`day` string) USING json PARTITIONED BY (year, month, day) LOCATION '{m_url}'")
    spark_sql(spark, ddl(fmt, "view", None, *extra))


def spark_refresh(spark, db):
    spark.sql(f"USE {db}")
    for t in ["invoices", "invoices_compacted", "invoices_manifests"]:
        spark.sql(f"MSCK REPAIR TABLE {t} SYNC PARTITIONS")
        spark.sql(f"REFRESH TABLE {t}")


def spark_rows(spark, db):
    def rows_of(sql):
        spark.sql(f"USE {db}")
        return [tuple(r) for r in spark_sql(spark, sql).collect()]
    return rows_of


HIVE = "hive_partitioning = true, hive_types = {'year': VARCHAR, 'month': VARCHAR, 'day': VARCHAR}"
DUCK_TYPES = {"string": "VARCHAR", "timestamp": "TIMESTAMP", "bigint": "BIGINT", "boolean": "BOOLEAN"}


def duck_json(glob, text):
    create = sqlglot.parse_one(text, read="athena")
    cols = ", ".join(f"'{c.name}': '{DUCK_TYPES[c.args['kind'].sql('hive').lower()]}'"
                     for c in create.this.expressions)
    return f"read_json('{glob}', format = 'newline_delimited', columns = {{{cols}}}, {HIVE})"


def duck_parquet(glob):
    return (f"SELECT * REPLACE (approximate_creation_time::TIMESTAMP AS approximate_creation_time) "
            f"FROM read_parquet('{glob}', {HIVE}, union_by_name = true)")


def duck_view(fmt, raw, compacted):
    """A DuckDB connection with the same three tables (over the files) and the view."""
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")
    if fmt == "parquet":
        c.execute(f"CREATE VIEW invoices AS {duck_parquet(f'{raw}/invoices/*/*/*/*.parquet')}")
    else:
        c.execute("CREATE VIEW invoices AS SELECT * FROM "
                  + duck_json(f"{raw}/invoices/*/*/*/*.json.gz", ddl(fmt, "raw", RAW_LOC)))
    files = list(compacted.glob("invoices/*/*/*/*.parquet"))
    if files:
        c.execute(f"CREATE VIEW invoices_compacted AS {duck_parquet(f'{compacted}/invoices/*/*/*/*.parquet')}")
    else:
        c.execute("CREATE VIEW invoices_compacted AS SELECT *, NULL::VARCHAR AS compaction_version "
                  "FROM invoices WHERE false")
    text = ddl(fmt, "manifests", MANIFESTS_LOC)
    if list(compacted.glob("ddb-archiver-manifests/invoices/*/*/*/manifest.json")):
        glob = f"{compacted}/ddb-archiver-manifests/invoices/*/*/*/manifest.json"
        c.execute(f"CREATE VIEW invoices_manifests AS SELECT * FROM {duck_json(glob, text)}")
    else:
        c.execute("CREATE TABLE invoices_manifests (version VARCHAR, \"rows\" BIGINT, "
                  "duplicates_dropped BIGINT, event_id_digest VARCHAR, year VARCHAR, "
                  "month VARCHAR, day VARCHAR)")
    c.execute(sqlglot.transpile(ddl(fmt, "view"), read="athena", write="duckdb")[0])
    return c


def duck_rows(c):
    return lambda sql: [tuple(r) for r in
                        c.execute(sqlglot.transpile(sql, read="athena", write="duckdb")[0]).fetchall()]


# ---------------------------------------------------------------- the view over time


def manifest_path(compacted, day):
    y, m, d = day.split("-")
    return compacted / "ddb-archiver-manifests" / "invoices" / f"year={y}" / f"month={m}" / f"day={d}" / "manifest.json"


@pytest.mark.parametrize("fmt", FORMATS)
def test_view_shows_every_change_once_at_any_moment(spark, data, tmp_path, fmt):
    raw, compacted = tmp_path / "raw", tmp_path / "compacted"
    (compacted / "invoices").mkdir(parents=True)
    (compacted / "ddb-archiver-manifests" / "invoices").mkdir(parents=True)
    archive(raw, fmt, data["on_time"], tmp_path, "on-time")
    archive(raw, fmt, data["twice"], tmp_path, "twice")
    archive(raw, fmt, data["kinesis"], tmp_path, "kinesis")
    db = "pq" if fmt == "parquet" else "js"
    spark_tables(spark, db, fmt, raw, compacted)

    def check(moment, records, in_spark=False):
        # DuckDB at every moment; Spark (slow to query) at the moments that matter most.
        want = expected(distinct(records))
        assert want["counts"][0] == want["counts"][1]
        c = duck_view(fmt, raw, compacted)
        assert answers(duck_rows(c), "invoices_all") == want, (moment, "duckdb")
        engines = [duck_rows(c)]
        if in_spark:
            spark_refresh(spark, db)
            assert answers(spark_rows(spark, db), "invoices_all") == want, (moment, "spark")
            engines.append(spark_rows(spark, db))
        # Partition pruning: one day's rows only.
        for rows_of in engines:
            got = rows_of("SELECT year, month, day, count(*) FROM invoices_all "
                          "WHERE year = '2026' AND month = '03' AND day = '02' "
                          "GROUP BY year, month, day")
            day2 = [r for r in distinct(records)
                    if dt.datetime.fromtimestamp(r["dynamodb"]["ApproximateCreationDateTime"],
                                                 dt.timezone.utc).day == 2]
            assert got == [("2026", "03", "02", len(day2))], moment
        c.close()

    records = data["on_time"]
    check("before compaction", records)
    spark_refresh(spark, db)
    raw_rows = spark_rows(spark, db)("SELECT count(*) FROM invoices")[0][0]
    assert raw_rows == len(records) + len(data["twice"]) + len(data["kinesis"])

    # During: day 2's compacted files are written, its manifest not yet.
    summary = compact(raw, compacted)
    assert [d["status"] for d in summary["days"]] == ["compacted"] * 3
    aside = tmp_path / "manifest-aside.json"
    shutil.move(manifest_path(compacted, DAYS[1]), aside)
    check("during compaction", records, in_spark=True)
    shutil.move(aside, manifest_path(compacted, DAYS[1]))
    check("after compaction", records)
    # Spark prunes the partitions of both scans.
    spark.sql(f"USE {db}")
    plan = "\n".join(r[0] for r in spark.sql(
        "EXPLAIN SELECT count(*) FROM invoices_all "
        "WHERE year = '2026' AND month = '03' AND day = '02'").collect())
    assert plan.count("PartitionFilters: [isnotnull(year") >= 2 or plan.count("PartitionFilters") >= 2, plan
    assert "day#" in plan and "= 02)" in plan, plan

    # A late arrival for day 2, then recompaction; the old version's files stay in place.
    old = {p: p.read_bytes() for p in compacted.glob("invoices/year=2026/month=03/day=02/*.parquet")}
    archive(raw, fmt, data["late"], tmp_path, "late")
    check("late arrival, before recompaction", records)  # the manifest's version still
    summary = compact(raw, compacted)
    statuses = {d["date"]: d["status"] for d in summary["days"]}
    assert statuses == {DAYS[0]: "unchanged", DAYS[1]: "compacted", DAYS[2]: "unchanged"}
    # The old version's files stay for the grace period, beside the new ones.
    for p, b in old.items():
        assert p.read_bytes() == b, p
    check("after recompaction, in the grace period", records + data["late"], in_spark=True)
    # After it, a run deletes them, and only them.
    res = run("compact", "--source", raw, "--dest", compacted, "--table", "invoices",
              "--schemas", ROOT / "schemas", "--grace-period-hours", "0", "--json")
    summary = json.loads(res.stdout)
    assert {d["date"]: d["superseded_deleted"] for d in summary["days"]} == \
        {DAYS[0]: 0, DAYS[1]: len(old), DAYS[2]: 0}, summary
    for p in old:
        assert not p.exists(), p
    check("after the grace period", records + data["late"], in_spark=True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_compaction_on_athena_sql_path(spark, data, tmp_path, fmt):
    raw, compacted = tmp_path / "raw", tmp_path / "compacted"
    (compacted / "invoices").mkdir(parents=True)
    (compacted / "ddb-archiver-manifests" / "invoices").mkdir(parents=True)
    records = data["on_time"] + data["late"]
    archive(raw, fmt, records, tmp_path, "all")
    archive(raw, fmt, data["twice"], tmp_path, "twice")
    db = "sql_pq" if fmt == "parquet" else "sql_js"
    spark_tables(spark, db, fmt, raw, compacted)
    spark_refresh(spark, db)
    rows_of = spark_rows(spark, db)
    for day in DAYS:
        text = run("schema", "compact-sql", "--schema", SCHEMA, "--day", day, "--format", fmt).stdout
        statements = sqlglot.parse(text, read="athena")
        assert len(statements) == 2
        for s in statements:
            spark.sql(s.sql("spark"))
        spark_refresh(spark, db)
        version = re.search(r"version ([0-9a-f]{16})\.", text).group(1)
        y, m, d = day.split("-")
        manifest = rows_of(f"SELECT version, \"rows\", duplicates_dropped FROM invoices_manifests "
                           f"WHERE year = '{y}' AND month = '{m}' AND day = '{d}'")
        day_records = [r for r in distinct(records) if dt.datetime.fromtimestamp(
            r["dynamodb"]["ApproximateCreationDateTime"], dt.timezone.utc).day == int(d)]
        raw_count = rows_of(f"SELECT count(*) FROM invoices WHERE year = '{y}' AND month = '{m}' "
                            f"AND day = '{d}'")[0][0]
        assert manifest == [(version, len(day_records), raw_count - len(day_records))]
    compacted_rows = rows_of("SELECT count(*), count(DISTINCT compaction_version) FROM invoices_compacted")
    assert compacted_rows == [(len(distinct(records)), 3)]
    assert answers(rows_of, "invoices_all") == expected(distinct(records))
