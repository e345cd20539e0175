#!/usr/bin/env bash
# Verify against s3s-fs on 127.0.0.1: an archive and its compacted layer written through
# the S3 sink pass, and every byte flipped in s3s-fs's files behind S3's back is reported,
# because the SHA-256 checksum stored at upload no longer matches (tests/verify.rs, the
# ignored test); then the `verify` command against s3:// once: exit 0 on a clean tree
# (the compacted layer with --raw), exit 1 naming the object after a flip. Last, every
# footer byte of a raw and a compacted Parquet file flipped one bit at a time: each flip
# that DuckDB or pyarrow refuses or reads differently must be reported
# (tests/python/test_verify_flips.py, with the ignored test verdicts_on_flipped_files).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
ensure_s3s
ensure_venv
cargo build --bin ddb-archiver
cargo test --test verify --no-run --quiet
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/ddb-archiver"
W=$(mktemp -d)
trap 'stop_bg; rm -rf "$W"' EXIT

export AWS_ACCESS_KEY_ID=verify-test AWS_SECRET_ACCESS_KEY=verify-test-secret-0123456789
export AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3

S3_PORT=$(free_port)
mkdir -p "$W/s3/verify-test" "$W/s3/verify-cli"
start_bg s3s-fs --host 127.0.0.1 --port "$S3_PORT" --access-key "$AWS_ACCESS_KEY_ID" \
  --secret-key "$AWS_SECRET_ACCESS_KEY" "$W/s3"
wait_port "$S3_PORT"
S3_URL="http://127.0.0.1:$S3_PORT"
# The CLI reaches s3s-fs through this endpoint.
export AWS_ENDPOINT_URL_S3="$S3_URL"

log "verify on s3s-fs: every flipped byte is reported (tests/verify.rs, ignored test)"
DDB_ARCHIVER_TEST_S3="$S3_URL" DDB_ARCHIVER_TEST_S3_ROOT="$W/s3" \
  cargo test --test verify -- --ignored --nocapture

log "ddb-archiver verify --source s3://: exit 0 when clean, 1 naming a flipped object"
"$BIN" archive --dest s3://verify-cli/raw --format jsonl.gz examples/events/invoices-stream.json > /dev/null
"$BIN" compact --source s3://verify-cli/raw --dest s3://verify-cli/compacted > /dev/null
"$BIN" verify --source s3://verify-cli/raw > "$W/clean.txt"
"$BIN" verify --source s3://verify-cli/compacted --raw s3://verify-cli/raw --json > "$W/clean.json"
grep -q '"bad": \[\]' "$W/clean.json"
grep -q '"sources_not_read": 0' "$W/clean.json"
grep -q "compared with the SHA-256 checksum" "$W/clean.txt"
KEY=$(cd "$W/s3/verify-cli/raw" && find invoices -name '*.json.gz' | sort | head -n 1)
# Byte 4 is in the gzip header's modification time: no reader sees it, S3's checksum does.
python3 - "$W/s3/verify-cli/raw/$KEY" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[4] ^= 0x01
open(p, "wb").write(bytes(b))
PY
if "$BIN" verify --source s3://verify-cli/raw > "$W/bad.txt"; then
  echo "verify passed a flipped object" >&2; cat "$W/bad.txt" >&2; exit 1
fi
grep -F "BAD s3://verify-cli/raw/$KEY" "$W/bad.txt"
grep -F "do not match the SHA-256 checksum stored at upload" "$W/bad.txt"

log "pytest tests/python/test_verify_flips.py (footer flips against DuckDB and pyarrow)"
DDB_ARCHIVER_BIN="$BIN" python -m pytest -q -s -p no:cacheprovider tests/python/test_verify_flips.py
