#!/usr/bin/env bash
# Restore against real parts on 127.0.0.1: moto's server as the DynamoDB API (and, for
# the ImportTable case, its S3), s3s-fs serving the archive for the s3:// source, and a
# fault-injecting proxy in front of moto (tests/python/test_restore.py). Archives come
# from `ddb-archiver archive` on generated histories; the restored tables are compared
# item by item with the state at T computed independently in the test. Restore on Athena
# runs against moto's Athena API, DuckDB running the SQL it sends (test_restore_athena.py).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
ensure_venv
ensure_s3s
cargo build --bin ddb-archiver
W=$(mktemp -d)
trap 'stop_bg; rm -rf "$W"' EXIT

export AWS_ACCESS_KEY_ID=restore-test AWS_SECRET_ACCESS_KEY=restore-test-secret
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_ENDPOINT_URL_DYNAMODB

MOTO_PORT=$(free_port)
S3_PORT=$(free_port)
mkdir -p "$W/s3"
start_bg moto_server -H 127.0.0.1 -p "$MOTO_PORT" > "$W/moto.log" 2>&1
start_bg s3s-fs --host 127.0.0.1 --port "$S3_PORT" --access-key "$AWS_ACCESS_KEY_ID" \
  --secret-key "$AWS_SECRET_ACCESS_KEY" "$W/s3"
wait_port "$MOTO_PORT"
wait_port "$S3_PORT"

log "restore against moto (local and s3:// archives, faults, import format)"
MOTO_PORT="$MOTO_PORT" S3_PORT="$S3_PORT" S3_ROOT="$W/s3" \
  DDB_ARCHIVER_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/ddb-archiver" \
  python -m pytest -q -p no:cacheprovider tests/python/test_restore.py

log "restore --engine athena against moto (Athena's API; DuckDB as its engine), then ImportTable"
MOTO_PORT="$MOTO_PORT" DDB_ARCHIVER_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/ddb-archiver" \
  python -m pytest -q -p no:cacheprovider tests/python/test_restore_athena.py
