"""Shared fixtures: the archiver binary and archives written by it."""
import json
import os
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "public"
EXAMPLE = ROOT / "examples" / "events" / "invoices-stream.json"


def archiver_bin() -> str:
    path = os.environ.get("DDB_ARCHIVER_BIN", str(ROOT / "target" / "debug" / "ddb-archiver"))
    assert Path(path).exists(), f"build the CLI first: {path}"
    return path


def run_archive(dest: Path, fmt: str, *files: Path, extra=()) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVE_")}
    return subprocess.run(
        [archiver_bin(), "archive", "--json", "--dest", str(dest), "--format", fmt, *extra, *map(str, files)],
        capture_output=True, text=True, env=env,
    )


def exact_json(text: str):
    """Parses JSON keeping every number as its exact text."""
    return json.loads(text, parse_float=str, parse_int=str)


def input_records(path: Path) -> dict:
    """The records of an event file, parsed exactly, by event ID."""
    text = path.read_bytes().decode("utf-8-sig")
    doc = exact_json(text)
    return {r["eventID"]: r for r in doc["Records"]}


ARCHIVABLE = [EXAMPLE] + sorted(
    p for p in FIXTURES.glob("*.json") if "malformed" not in p.name and "botocore" not in p.name
)


@pytest.fixture(scope="session")
def archives(tmp_path_factory):
    """Each archivable input, archived on its own in both formats: (input, format) -> dest."""
    out = {}
    for src in ARCHIVABLE:
        for fmt in ("parquet", "jsonl.gz"):
            dest = tmp_path_factory.mktemp(f"{src.stem[:40]}-{fmt.replace('.', '_')}")
            res = run_archive(dest, fmt, src)
            assert res.returncode in (0, 2), res.stderr + res.stdout
            out[(src.name, fmt)] = (dest, json.loads(res.stdout))
    return out
