#!/usr/bin/env bash
# The maintenance function's baseline actions (the baseline workflow's batches and its
# final coverage step) under `cargo lambda watch`, against an export in s3s-fs
# (tests/python/test_baseline_lambda.py).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
ensure_venv
ensure_s3s
cargo build --bin ddb-archiver-lambda
log "pytest tests/python/test_baseline_lambda.py (baseline actions under cargo lambda watch)"
python -m pytest -q tests/python/test_baseline_lambda.py
