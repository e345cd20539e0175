#!/usr/bin/env bash
# Coverage end to end with the CLI (tests/python/test_coverage.py): stream changes
# archived with `archive`, a full export (documented layout, written by the test) archived
# with `baseline`; then `coverage`, `restore` into moto's DynamoDB (true state after the
# baseline, refused before it or without one), `replay` with and without
# --include-baseline, and `compact` + `verify` over a day mixing baseline and stream rows.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
ensure_venv
cargo build --bin ddb-archiver
W=$(mktemp -d)
trap 'stop_bg; rm -rf "$W"' EXIT

export AWS_ACCESS_KEY_ID=coverage-test AWS_SECRET_ACCESS_KEY=coverage-test-secret
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_ENDPOINT_URL_DYNAMODB

MOTO_PORT=$(free_port)
start_bg moto_server -H 127.0.0.1 -p "$MOTO_PORT" > "$W/moto.log" 2>&1
wait_port "$MOTO_PORT"

log "coverage, restore, replay, compact and verify over a baseline and stream changes (moto)"
MOTO_PORT="$MOTO_PORT" DDB_ARCHIVER_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/ddb-archiver" \
  python -m pytest -q -p no:cacheprovider tests/python/test_coverage.py
