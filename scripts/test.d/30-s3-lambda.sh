#!/usr/bin/env bash
# The S3 sink and the Lambda function against real parts on 127.0.0.1: s3s-fs, the
# function under `cargo lambda watch`, a moto DynamoDB stream, and a fault-injecting
# proxy in front of s3s-fs (tests/python/test_lambda.py), plus the S3 sink's own tests
# against s3s-fs (multipart uploads, conditional writes, checksums).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
ensure_venv
ensure_s3s
cargo build --bin ddb-archiver-lambda --bin ddb-archiver
export DDB_ARCHIVER_LAMBDA_BIN="$ROOT/target/debug/ddb-archiver-lambda"

log "S3 sink against s3s-fs"
S3_ROOT=$(mktemp -d)
S3_PORT=$(free_port)
start_bg s3s-fs --host 127.0.0.1 --port "$S3_PORT" --access-key sink-test \
  --secret-key sink-test-secret-0123456789 "$S3_ROOT"
wait_port "$S3_PORT"
mkdir -p "$S3_ROOT/sink-test"
DDB_ARCHIVER_TEST_S3="http://127.0.0.1:$S3_PORT" AWS_ACCESS_KEY_ID=sink-test \
  AWS_SECRET_ACCESS_KEY=sink-test-secret-0123456789 AWS_REGION=us-east-1 \
  AWS_EC2_METADATA_DISABLED=true \
  cargo test --lib -- --ignored sink::s3::server_tests
log "two compactions racing on one day through s3s-fs (ETag preconditions)"
DDB_ARCHIVER_TEST_S3="http://127.0.0.1:$S3_PORT" AWS_ACCESS_KEY_ID=sink-test \
  AWS_SECRET_ACCESS_KEY=sink-test-secret-0123456789 AWS_REGION=us-east-1 \
  AWS_EC2_METADATA_DISABLED=true \
  cargo test --test compact_safety -- --ignored
stop_bg
BG_PIDS=()
rm -rf "$S3_ROOT"

log "pytest tests/python/test_lambda.py (Lambda function, S3 faults, DynamoDB stream)"
python -m pytest -q tests/python/test_lambda.py
