"""`verify` is as strict as DuckDB and pyarrow about Parquet footers.

One small raw Parquet file is written by the real binary (`archive`) and compacted
(`compact`). For each of the two files, one bit of every footer byte is flipped in turn
(bit i % 8 of byte i, from the start of the footer's metadata to the closing magic), and
each flipped file is read by DuckDB and by pyarrow: a flip that either refuses, or reads
as other rows (full row tuples compared), must make `verify` report the object bad.

Verifying thousands of one-object archives one process at a time is slow on two cores,
so the flipped files are handed to the ignored Rust test `verdicts_on_flipped_files` in
tests/verify.rs, which verifies each in process (the compacted layer with its raw
archive), while the readers read, and writes its verdicts back. The counts are printed.
"""

import io
import json
import os
import struct
import subprocess

import duckdb
import pyarrow.parquet as pq

from conftest import ROOT, archiver_bin

TABLE = "flips"


def change_document() -> dict:
    """Three DynamoDB Streams changes of one table on one UTC day."""
    records = []
    for i in range(3):
        records.append({
            "eventID": f"flip-{i}", "eventName": "INSERT", "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "eu-west-1",
            "dynamodb": {
                "ApproximateCreationDateTime": 1767261600 + i * 60,
                "Keys": {"pk": {"S": f"k{i}"}},
                "NewImage": {"pk": {"S": f"k{i}"}, "n": {"N": f"{i}.5"}, "s": {"S": "x" * i}},
                "SequenceNumber": str(1000 + i), "SizeBytes": 20 + i,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            },
            "eventSourceARN": f"arn:aws:dynamodb:eu-west-1:123456789012:table/{TABLE}/stream/2026-01-01T00:00:00.000",
        })
    return {"Records": records}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([archiver_bin(), *args], capture_output=True, text=True)


def footer_offsets(data: bytes) -> range:
    """The footer: its metadata, its length and the closing magic."""
    (length,) = struct.unpack("<I", data[-8:-4])
    return range(len(data) - 8 - length, len(data))


def flip(data: bytes, i: int) -> bytes:
    out = bytearray(data)
    out[i] ^= 1 << (i % 8)
    return bytes(out)


class Readers:
    """DuckDB and pyarrow, each reading a file's full rows."""

    def __init__(self, scratch):
        self.scratch = scratch
        self.connect()
        self.count = 0

    def connect(self):
        self.duckdb = duckdb.connect()
        self.duckdb.execute("SET threads = 1")

    def pyarrow_rows(self, data: bytes):
        table = pq.read_table(io.BytesIO(data))
        return [tuple(row.values()) for row in table.to_pylist()]

    def duckdb_rows(self, data: bytes):
        # A new path each time: nothing can come from a cache.
        self.count += 1
        path = self.scratch / f"read-{self.count}.parquet"
        path.write_bytes(data)
        try:
            return self.duckdb.execute(
                "SELECT * FROM read_parquet(?, hive_partitioning = false)", [str(path)]
            ).fetchall()
        except Exception:
            # Some refusals are fatal to the database: every later query would fail too.
            self.duckdb.close()
            self.connect()
            raise
        finally:
            path.unlink()

    def reading(self, data: bytes):
        """What each reader reads: its rows, or that it refused."""
        out = []
        for read in (self.pyarrow_rows, self.duckdb_rows):
            try:
                out.append(("rows", read(data)))
            except Exception as e:  # noqa: BLE001 - any refusal counts
                out.append(("refused", type(e).__name__))
        return out


def start_verdicts(flips_dir) -> subprocess.Popen:
    """Starts the Rust test that verifies the flipped files listed in `flips_dir`."""
    return subprocess.Popen(
        ["cargo", "test", "--quiet", "--test", "verify", "--", "--ignored", "--exact",
         "verdicts_on_flipped_files"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "DDB_ARCHIVER_FLIPS": str(flips_dir)},
    )


def verdicts(flips_dir, running: subprocess.Popen) -> dict:
    """What the Rust test found: for each flipped file, whether verify reported it."""
    output, _ = running.communicate()
    assert running.returncode == 0, output
    listed = json.loads((flips_dir / "verdicts.json").read_text())
    return {v["file"]: v["reported"] for v in listed}


def test_every_footer_flip_that_readers_notice_is_reported(tmp_path):
    doc = tmp_path / "changes.json"
    doc.write_text(json.dumps(change_document()))
    flips_dir = tmp_path / "flips"
    archive = flips_dir / "archive"
    res = run("archive", "--dest", str(archive / "raw"), "--format", "parquet", str(doc))
    assert res.returncode == 0, res.stderr + res.stdout
    res = run("compact", "--source", str(archive / "raw"), "--dest", str(archive / "comp"))
    assert res.returncode == 0, res.stderr + res.stdout
    res = run("verify", "--source", str(archive / "comp"), "--raw", str(archive / "raw"))
    assert res.returncode == 0, res.stdout + res.stderr

    def one_parquet(tree: str) -> str:
        root = archive / tree
        files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.parquet"))
        assert len(files) == 1, files
        return files[0]

    listed, flipped = [], {}
    for label, tree in (("raw", "raw"), ("compacted", "comp")):
        key = one_parquet(tree)
        data = (archive / tree / key).read_bytes()
        flipped[label] = (data, {})
        for i in footer_offsets(data):
            file = f"{tree}-{i}.parquet"
            flipped[label][1][i] = flip(data, i)
            (flips_dir / file).write_bytes(flipped[label][1][i])
            listed.append({"tree": tree, "key": key, "file": file, "label": label, "offset": i})
    (flips_dir / "flips.json").write_text(json.dumps(listed))

    # verify runs while the readers read.
    running = start_verdicts(flips_dir)
    try:
        readers = Readers(tmp_path)
        noticed = {}
        for label, (data, flips) in flipped.items():
            want = readers.reading(data)
            noticed[label] = {i for i, b in flips.items() if readers.reading(b) != want}
    except BaseException:
        running.kill()
        running.wait()
        raise
    reported = verdicts(flips_dir, running)

    missed = {}
    for label in noticed:
        offsets = {f["offset"] for f in listed if f["label"] == label}
        caught = {f["offset"] for f in listed if f["label"] == label and reported[f["file"]]}
        print(f"{label} Parquet file: {len(offsets)} footer flips; DuckDB or pyarrow refused or "
              f"read other rows for {len(noticed[label])}; verify reported {len(caught)} "
              f"({len(noticed[label] & caught)} of the readers' {len(noticed[label])})")
        assert len(noticed[label]) > len(offsets) // 4, f"{label}: the readers notice few flips"
        if noticed[label] - caught:
            missed[label] = sorted(noticed[label] - caught)
    assert not missed, f"flips that DuckDB or pyarrow notice, passed by verify: {missed}"
