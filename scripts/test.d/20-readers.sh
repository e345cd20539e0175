#!/usr/bin/env bash
# What the archiver writes, read back by independent readers: pyarrow and DuckDB.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
ensure_venv
# Same feature set as `cargo test`, so this reuses its build.
cargo test --no-run --quiet
export DDB_ARCHIVER_BIN="$ROOT/target/debug/ddb-archiver"
log "pytest tests/python (readers)"
python -m pytest -q tests/python/test_readers.py
