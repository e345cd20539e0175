"""What the archiver writes, read back by independent readers (pyarrow and DuckDB):
types as documented, JSON columns equal to the input exactly, partitions by event time,
and the DuckDB queries of docs/athena.md run as written."""
import base64
import datetime as dt
import gzip
import re

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import ARCHIVABLE, EXAMPLE, ROOT, exact_json, fixture_params, input_records, run_archive

EXPECTED_SCHEMA = pa.schema([
    pa.field("event_id", pa.string(), nullable=False),
    pa.field("event_name", pa.string(), nullable=False),
    pa.field("table_name", pa.string(), nullable=False),
    pa.field("sequence_number", pa.string(), nullable=False),
    pa.field("approximate_creation_time", pa.timestamp("ms", tz="UTC"), nullable=False),
    pa.field("stream_view_type", pa.string()),
    pa.field("size_bytes", pa.int64()),
    pa.field("ttl_delete", pa.bool_(), nullable=False),
    pa.field("keys", pa.string(), nullable=False),
    pa.field("new_image", pa.string()),
    pa.field("old_image", pa.string()),
    pa.field("record", pa.string(), nullable=False),
])


def original_change(record):
    """The DynamoDB change a stream record carries (Kinesis: its decoded data)."""
    if "kinesis" in record:
        return exact_json(base64.b64decode(record["kinesis"]["data"]).decode())
    return record


def rows_of(dest, fmt):
    rows = []
    for path in sorted(dest.rglob("*")):
        if not path.is_file() or "_rejected" in path.parts:
            continue
        rel = path.relative_to(dest).as_posix()
        if fmt == "parquet":
            table = pq.read_table(path, partitioning=None)
            assert table.schema.remove_metadata() == EXPECTED_SCHEMA, table.schema
            meta = pq.read_metadata(path).metadata
            assert meta[b"ddb_archiver.version"]
            for r in table.to_pylist():
                rows.append((rel, {
                    **r,
                    "approximate_creation_time": r["approximate_creation_time"],
                    "keys": exact_json(r["keys"]),
                    "new_image": exact_json(r["new_image"]) if r["new_image"] else None,
                    "old_image": exact_json(r["old_image"]) if r["old_image"] else None,
                    "record": exact_json(r["record"]),
                }))
        else:
            assert path.name.endswith(".json.gz")
            for line in gzip.decompress(path.read_bytes()).decode().splitlines():
                r = exact_json(line)
                r["approximate_creation_time"] = dt.datetime.strptime(
                    r["approximate_creation_time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)
                rows.append((rel, r))
    return rows


@pytest.mark.parametrize("fmt", ["parquet", "jsonl.gz"])
@pytest.mark.parametrize("src", fixture_params(ARCHIVABLE, ids=lambda p: p.stem[:50]))
def test_json_columns_equal_input(archives, src, fmt):
    dest, summary = archives[(src.name, fmt)]
    rows = rows_of(dest, fmt)
    assert len(rows) == summary["archived"]
    originals = {}
    doc = exact_json(src.read_bytes().decode("utf-8-sig"))
    for rec in doc.get("Records", [doc]):
        change = original_change(rec)
        originals[change["eventID"]] = (rec, change)
    for rel, row in rows:
        rec, change = originals[row["event_id"]]
        assert row["record"] == change
        ddb = change["dynamodb"]
        assert row["keys"] == ddb["Keys"]
        assert row["new_image"] == ddb.get("NewImage")
        assert row["old_image"] == ddb.get("OldImage")
        assert row["event_name"] == change["eventName"]
        day = row["approximate_creation_time"].astimezone(dt.timezone.utc)
        assert rel.startswith(f"{row['table_name']}/year={day:%Y}/month={day:%m}/day={day:%d}/"), rel
        seq = rec["kinesis"]["sequenceNumber"] if "kinesis" in rec else ddb["SequenceNumber"]
        assert row["sequence_number"] == seq


def test_example_values_exact(archives):
    """Spot checks of the hard values in the bundled example, in both formats."""
    for fmt in ("parquet", "jsonl.gz"):
        dest, _ = archives[(EXAMPLE.name, fmt)]
        rows = {r["event_id"]: r for _, r in rows_of(dest, fmt)}
        img = rows["a1b2c3d4e5f60001"]["new_image"]
        assert img["big"] == {"N": "12345678901234567890123456789012345678"}
        assert img["huge"] == {"N": "1E+125"}
        assert img["tiny"] == {"N": "-1E-130"}
        assert img["memo"] == {"S": "nul:\u0000 end"}
        assert img["customer"] == {"S": "Zoë Ünïcode ✓"}
        assert img["sig"] == {"B": "AAEC/w=="}
        assert img["attr.with dots"] == {"M": {}}
        assert rows["a1b2c3d4e5f60004"]["ttl_delete"] is True
        assert rows["a1b2c3d4e5f60003"]["approximate_creation_time"] == dt.datetime(
            2026, 1, 1, 0, 0, 0, 750000, tzinfo=dt.timezone.utc)


def test_duckdb_reads_both_formats(archives):
    pq_dest, _ = archives[(EXAMPLE.name, "parquet")]
    js_dest, _ = archives[(EXAMPLE.name, "jsonl.gz")]
    con = duckdb.connect()
    q = """SELECT table_name, year, month, day, count(*), count(DISTINCT event_id)
           FROM {src} GROUP BY ALL ORDER BY ALL"""
    hive = "hive_partitioning = true, hive_types_autocast = false"
    from_pq = con.sql(q.format(src=f"read_parquet('{pq_dest}/*/*/*/*/*.parquet', {hive})")).fetchall()
    from_js = con.sql(q.format(src=f"read_json('{js_dest}/*/*/*/*/*.json.gz', {hive})")).fetchall()
    assert from_pq == from_js
    assert from_pq == [
        ("customers", "2026", "01", "01", 1, 1),
        ("invoices", "2025", "12", "31", 2, 2),
        ("invoices", "2026", "01", "01", 2, 2),
    ]
    big = con.sql(f"""SELECT CAST(json_extract_string(new_image, '$.big.N') AS DECIMAL(38,0))::VARCHAR
                      FROM read_parquet('{pq_dest}/invoices/*/*/*/*.parquet') WHERE event_id = 'a1b2c3d4e5f60001'""").fetchall()
    assert big == [("12345678901234567890123456789012345678",)]


def docs_sql_blocks():
    text = (ROOT / "docs" / "athena.md").read_text()
    section = text[text.index("## DuckDB"):]
    section = section[: section.find("\n## ", 3)] if "\n## " in section[3:] else section
    return re.findall(r"```sql\n(.*?)```", section, re.S)


@pytest.mark.parametrize("index", range(3))
def test_docs_duckdb_queries_run(archives, tmp_path, index):
    blocks = docs_sql_blocks()
    assert len(blocks) == 3, "docs/athena.md's DuckDB examples changed: update this test"
    # The queries' paths are relative to a directory holding ./archive.
    archive = tmp_path / "archive"
    res = run_archive(archive, "parquet", EXAMPLE)
    assert res.returncode == 0
    res = run_archive(archive, "jsonl.gz", EXAMPLE)
    assert res.returncode == 0
    sql = blocks[index].replace("'archive/", f"'{archive}/")
    rows = duckdb.connect().sql(sql).fetchall()
    assert rows, sql
    if index == 1:
        assert [r[1] for r in rows] == ["INSERT", "MODIFY"]
    if index == 2:
        assert ("a1b2c3d4e5f60001", __import__("decimal").Decimal("1234.56")) in rows
