#!/usr/bin/env bash
# Baseline against real parts on 127.0.0.1: moto's server as the DynamoDB API (the
# items, DescribeTable, the parallel Scan) and s3s-fs serving exports and archives
# (tests/python/test_baseline.py). The exports are written by the test in DynamoDB's
# documented output layout from the items put into moto.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
ensure_venv
ensure_s3s
cargo build --bin ddb-archiver
W=$(mktemp -d)
trap 'stop_bg; rm -rf "$W"' EXIT

export AWS_ACCESS_KEY_ID=baseline-test AWS_SECRET_ACCESS_KEY=baseline-test-secret
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

log "baseline from exports (s3:// and a directory) and from a Scan, against moto and s3s-fs"
MOTO_PORT="$MOTO_PORT" S3_PORT="$S3_PORT" S3_ROOT="$W/s3" \
  DDB_ARCHIVER_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/ddb-archiver" \
  python -m pytest -q -p no:cacheprovider tests/python/test_baseline.py
