"""Shared fixtures: the archiver binary and archives written by it."""
import json
import os
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OWN_FIXTURES = ROOT / "tests" / "fixtures" / "events"
# Public sample events from other projects' test suites, beside the repository when it
# has them (CI does): an extra check on top of the project's own fixtures.
PUBLIC_FIXTURES = ROOT.parent / "shared" / "fixtures" / "public"
EXAMPLE = ROOT / "examples" / "events" / "invoices-stream.json"


def event_fixtures() -> list:
    """The project's own event fixtures, then the public ones when they are there."""
    files = sorted(OWN_FIXTURES.glob("*.json"))
    if PUBLIC_FIXTURES.is_dir():
        files += sorted(PUBLIC_FIXTURES.glob("*.json"))
    return files


def fixture_params(files, ids):
    """`files` as test parameters named by `ids`; when the public fixtures are not there,
    one more parameter, skipped with the reason, so that the run says so."""
    params = [pytest.param(f, id=ids(f)) for f in files]
    if not PUBLIC_FIXTURES.is_dir():
        reason = (f"public fixtures skipped: {PUBLIC_FIXTURES} is not there "
                  "(the project's own fixtures ran)")
        params.append(pytest.param(None, id="public-fixtures", marks=pytest.mark.skip(reason=reason)))
    return params


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


# Fixtures that are not event documents on purpose (the archiver reports an input error,
# or some records are not change records at all).
NOT_ARCHIVABLE = ("malformed", "not-an-event", "botocore")
ARCHIVABLE = [EXAMPLE] + [p for p in event_fixtures() if not any(w in p.name for w in NOT_ARCHIVABLE)]


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


def spark_session(tmp: Path, app: str, **conf):
    """A local Spark session with Hive support (Derby metastore and warehouse under `tmp`),
    in UTC; `conf` adds settings."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master("local[1]")
        .appName(app)
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", str(tmp / "warehouse"))
        .config("spark.hadoop.javax.jdo.option.ConnectionURL",
                f"jdbc:derby:;databaseName={tmp / 'metastore_db'};create=true")
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={tmp} -Duser.timezone=UTC")
    )
    for k, v in conf.items():
        builder = builder.config(k, v)
    session = builder.enableHiveSupport().getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
