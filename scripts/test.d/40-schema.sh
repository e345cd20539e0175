#!/usr/bin/env bash
# Typed columns and Athena tables: the generated DDL parsed by sqlglot (Athena dialect) and
# run in Spark SQL with Hive support over files the archiver wrote (both formats), the
# ready queries in Spark and DuckDB, type mismatches and invalid schema files; the view over
# raw and compacted data before, during and after compaction, compaction on Athena SQL, and
# restore on Athena SQL against restore's own import lines.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
ensure_venv
cargo build --bin ddb-archiver
export DDB_ARCHIVER_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/ddb-archiver"
export SPARK_LOCAL_IP=127.0.0.1
if ! command -v java >/dev/null 2>&1; then
  log "installing a Java runtime for Spark"
  apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless
fi
log "pytest tests/python/test_schema.py"
python -m pytest -q tests/python/test_schema.py
log "pytest tests/python/test_compacted.py"
python -m pytest -q tests/python/test_compacted.py
log "pytest tests/python/test_restore_sql.py"
python -m pytest -q tests/python/test_restore_sql.py
