"""Restore on Athena: `schema restore-sql` gives restore's own state, item by item.

Changes over four days (INSERT, MODIFY, REMOVE, TTL deletes, a REMOVE then a re-insert,
two changes of an item in one millisecond whose sequence numbers sort otherwise as text,
38-digit numbers, unicode, a key with a quote and a backslash) are archived by the real
binary, some twice (exact copies in other objects, and Kinesis-style copies under a later
sequence number and time, one of them on the next day with another change of the item
between the copies). Three days are compacted, the fourth stays raw. At several T, with
and without `--key`, `restore --import-format DIR` writes its import lines; the SELECT
that `schema restore-sql --select-only` prints (the same text its UNLOAD wraps) runs over
the view `invoices_all` in DuckDB and in Spark, translated by sqlglot as the view is, and
must give the same lines, byte for byte.
"""

import datetime as dt
import gzip
import json
import os
import time

import duckdb  # noqa: F401  (the view's connection comes from test_compacted)
import pytest
import sqlglot

from conftest import spark_session
from test_compacted import (archive, compact, duck_view, spark_refresh, spark_tables, run)

START = int(dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc).timestamp())
FMT = "parquet"
TTL = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
ODD_KEY = "INV#'q\\\"é"
KEYS = [f"INV#{n}" for n in range(1001, 1010)] + [ODD_KEY]

os.environ["TZ"] = "UTC"
time.tzset()


def record(i, pk, t_ms, seq, name, new, old, ttl=False):
    d = {"ApproximateCreationDateTime": t_ms / 1000, "Keys": {"pk": {"S": pk}},
         "SequenceNumber": seq, "SizeBytes": 60, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if new:
        d["NewImage"] = new
    if old:
        d["OldImage"] = old
    r = {"eventID": f"e{i:06d}", "eventName": name, "eventVersion": "1.1",
         "eventSource": "aws:dynamodb", "awsRegion": "eu-west-1", "dynamodb": d,
         "eventSourceARN": "arn:aws:dynamodb:eu-west-1:1:table/invoices/stream/x"}
    if ttl:
        r["userIdentity"] = TTL
    return r


def image(pk, i):
    return {"pk": {"S": pk}, "amount": {"N": f"{i}.25"}, "status": {"S": f"S{i} ünï"},
            "big": {"N": "1234567890123456789012345678901234567" + str(i % 10)},
            "tags": {"SS": ["a", f"t{i}"]}}


def history():
    """Records by day (0..3), the Kinesis copies, and the records archived twice."""
    state, days, i = {}, [[], [], [], []], 0
    for day in range(4):
        for n in range(40):
            pk = KEYS[(n + day) % len(KEYS)]
            old = state.get(pk)
            ttl = old is not None and n % 11 == 3
            name = "INSERT" if old is None else ("REMOVE" if (n % 6 == 0 or ttl) else "MODIFY")
            new = None if name == "REMOVE" else image(pk, i)
            state[pk] = new
            t_ms = (START + day * 86400 + n * 2000 + 600) * 1000 + (i % 7) * 111
            days[day].append(record(i, pk, t_ms, str(10**20 + i * 10), name, new, old, ttl))
            i += 1
    # Two changes of one item in one millisecond: 999999999 sorts after 1000000000 as
    # text, before it as a number.
    t_ms = (START + 86400 + 70_000) * 1000 + 5
    a = image("INV#1009", 900)
    b = image("INV#1009", 901)
    days[1] += [record(900, "INV#1009", t_ms, "999999999", "MODIFY", a, None),
                record(901, "INV#1009", t_ms, "1000000000", "MODIFY", b, a)]
    # Kinesis copies: later sequence number and time; one of a day-0 change near the end
    # of the day lands on day 1, after another change of its item.
    kinesis = []
    for r in days[0][5:9] + days[2][10:14]:
        c = json.loads(json.dumps(r))
        c["dynamodb"]["SequenceNumber"] = str(10**21 + int(r["dynamodb"]["SequenceNumber"]))
        c["dynamodb"]["ApproximateCreationDateTime"] = round(
            r["dynamodb"]["ApproximateCreationDateTime"] + 60, 3)
        kinesis.append(c)
    last = days[0][-1]
    pk = last["dynamodb"]["Keys"]["pk"]["S"]
    nxt = record(950, pk, (START + 86400 + 100) * 1000, str(10**22), "MODIFY", image(pk, 950), None)
    late_copy = json.loads(json.dumps(last))
    late_copy["dynamodb"]["SequenceNumber"] = str(10**23)
    late_copy["dynamodb"]["ApproximateCreationDateTime"] = START + 86400 + 200
    days[1] += [nxt]
    kinesis.append(late_copy)
    return days, kinesis, days[0][20:30] + days[2][:10]


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("restore-sql")
    raw, compacted = tmp / "raw", tmp / "compacted"
    (compacted / "invoices").mkdir(parents=True)
    (compacted / "ddb-archiver-manifests" / "invoices").mkdir(parents=True)
    days, kinesis, twice = history()
    archive(raw, FMT, days[0] + days[1] + days[2], tmp, "first")
    archive(raw, FMT, kinesis, tmp, "kinesis")
    archive(raw, FMT, twice, tmp, "twice")
    summary = compact(raw, compacted)
    assert [d["status"] for d in summary["days"]] == ["compacted"] * 3, summary
    archive(raw, FMT, days[3], tmp, "raw-day")
    return {"tmp": tmp, "raw": raw, "compacted": compacted, "days": days}


CASES = [
    ("2026-03-01T00:05:00Z", None),
    ("2026-03-02T00:05:00Z", None),  # after the late copy, which must not count
    ("2026-03-02T19:26:40.005Z", None),  # the millisecond of the two changes
    ("2026-03-03T23:59:59.999Z", None),
    ("2026-03-05T00:00:00Z", None),
    ("2026-03-04T15:00:00Z", {"pk": {"S": ODD_KEY}}),  # on the raw day
    ("2026-03-03T12:00:00Z", {"pk": {"S": "INV#1003"}}),  # re-inserted after a REMOVE
    ("2026-03-04T01:00:00Z", {"pk": {"S": "INV#1004"}}),  # removed
]


def restore_lines(archives, n, as_of, key):
    dest = archives["tmp"] / f"import-{n}"
    # The archive has no baseline: the table began empty with the archive.
    args = ["restore", "--source", archives["raw"], "--table", "invoices", "--as-of", as_of,
            "--to-table", "restored", "--import-format", dest, "--json", "--allow-incomplete"]
    if key:
        args += ["--key", json.dumps(key)]
    summary = json.loads(run(*args).stdout)
    lines = []
    for f in sorted(dest.glob("run-*/*.json.gz")):
        lines += gzip.decompress(f.read_bytes()).decode("utf-8").splitlines()
    assert len(lines) == summary["items"], summary
    return sorted(lines), summary


def restore_select(as_of, key):
    args = ["schema", "restore-sql", "--schema", "schemas/invoices.json", "--format", FMT,
            "--as-of", as_of]
    if key:
        args += ["--key", json.dumps(key)]
    select = run(*args, "--select-only").stdout
    unload = run(*args, "--export-location", "s3://bucket/restores/x/").stdout
    # The UNLOAD wraps exactly this SELECT.
    assert unload == f"UNLOAD (\n{select.rstrip().rstrip(';')}\n)\nTO 's3://bucket/restores/x/'\n" \
                     "WITH (format = 'TEXTFILE', compression = 'GZIP');\n", unload
    return select


@pytest.fixture(scope="module")
def expected(archives):
    out = []
    for n, (as_of, key) in enumerate(CASES):
        lines, summary = restore_lines(archives, n, as_of, key)
        out.append((as_of, key, lines, summary))
    # The cases hold what they claim: absent items (REMOVE, TTL), present ones, a key
    # re-inserted after a REMOVE.
    full = out[4][3]
    assert full["absent_deleted"] > 0 and full["items"] > 3 and full["duplicates_dropped"] > 0, full
    assert [len(case[2]) for case in out[5:]] == [1, 1, 0], out[5:]
    return out


def test_duckdb_gives_restores_lines(archives, expected):
    c = duck_view(FMT, archives["raw"], archives["compacted"])
    for as_of, key, want, _ in expected:
        sql = sqlglot.transpile(restore_select(as_of, key), read="athena", write="duckdb")[0]
        got = sorted(r[0] for r in c.execute(sql).fetchall())
        assert got == want, (as_of, key)
    c.close()


def test_spark_gives_restores_lines(archives, expected, tmp_path):
    spark = spark_session(tmp_path / "spark", "ddb-archiver-restore-sql",
                          **{"spark.sql.shuffle.partitions": "1"})
    try:
        spark_tables(spark, "rs", FMT, archives["raw"], archives["compacted"])
        spark_refresh(spark, "rs")
        for as_of, key, want, _ in expected:
            sql = sqlglot.transpile(restore_select(as_of, key), read="athena", write="spark")[0]
            got = sorted(r[0] for r in spark.sql(sql).collect())
            assert got == want, (as_of, key)
    finally:
        spark.stop()
