#!/usr/bin/env bash
# Replay against real parts: the `replay` command reading a local archive and the same
# archive served by s3s-fs on 127.0.0.1, a corrupt file through the CLI, `--invoke-function`
# against `cargo lambda watch` running the archiver's own function (writing a second
# archive to s3s-fs, whose rows must equal the first's), and the peak memory of a
# million-record replay measured with /usr/bin/time.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
ensure_venv
ensure_s3s
cargo build --bin ddb-archiver --bin ddb-archiver-lambda
BIN="$ROOT/target/debug/ddb-archiver"
W=$(mktemp -d)
trap 'stop_bg; rm -rf "$W"' EXIT
TABLE=replaytest
GEN=(python tests/python/gen_replay_events.py --table "$TABLE")
CHECK=(python tests/python/replay_check.py)

export AWS_ACCESS_KEY_ID=replay-test AWS_SECRET_ACCESS_KEY=replay-test-secret
export AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_ENDPOINT_URL_LAMBDA

log "archive: 4000 changes over 3 days, parquet and jsonl.gz mixed, a part archived twice"
"${GEN[@]}" --records 4000 --items 300 --days 3 --per-event 100 --out "$W/events.jsonl"
head -n 20 "$W/events.jsonl" > "$W/a.jsonl"
tail -n +21 "$W/events.jsonl" > "$W/b.jsonl"
sed -n '18,23p' "$W/events.jsonl" > "$W/again.jsonl"
"$BIN" archive --dest "$W/first" --format parquet --max-file-records 333 "$W/a.jsonl" > /dev/null
"$BIN" archive --dest "$W/first" --format jsonl.gz --max-file-records 333 "$W/b.jsonl" > /dev/null
"$BIN" archive --dest "$W/first" --format jsonl.gz --max-file-records 250 "$W/again.jsonl" > /dev/null

log "replay from the local directory"
"$BIN" replay --source "$W/first" --table "$TABLE" --batch-size 64 --out "$W/local.jsonl" --json > "$W/local.json"
"${CHECK[@]}" same-records "$W/events.jsonl" "$W/local.jsonl" 64
"${CHECK[@]}" summary "$W/local.json" records_emitted=4000 duplicates_dropped=600 partitions=3

log "replay from s3s-fs"
S3_PORT=$(free_port)
mkdir -p "$W/s3/replay-src" "$W/s3/replay-second"
cp -r "$W/first" "$W/s3/replay-src/arch"
start_bg s3s-fs --host 127.0.0.1 --port "$S3_PORT" --access-key "$AWS_ACCESS_KEY_ID" \
  --secret-key "$AWS_SECRET_ACCESS_KEY" "$W/s3"
wait_port "$S3_PORT"
S3_URL="http://127.0.0.1:$S3_PORT"
AWS_ENDPOINT_URL_S3="$S3_URL" "$BIN" replay --source s3://replay-src/arch --table "$TABLE" \
  --batch-size 64 > "$W/s3.jsonl" 2> "$W/s3.summary"
cmp "$W/local.jsonl" "$W/s3.jsonl"
log "schema infer reads the same archive from s3s-fs as from the directory"
"$BIN" schema infer --table "$TABLE" "$W/first" > "$W/infer-local.json"
AWS_ENDPOINT_URL_S3="$S3_URL" "$BIN" schema infer --table "$TABLE" s3://replay-src/arch > "$W/infer-s3.json"
cmp "$W/infer-local.json" "$W/infer-s3.json"
grep -q '"columns"' "$W/infer-s3.json"
for range in "--from 2026-03-02T00:00:00Z" "--to 2026-03-02T12:00:00Z" \
             "--from 2026-03-01T20:00:00.500Z --to 2026-03-03T00:00:00Z"; do
  # shellcheck disable=SC2086
  "$BIN" replay --source "$W/first" --table "$TABLE" $range --event MODIFY > "$W/r-local.jsonl" 2>/dev/null
  # shellcheck disable=SC2086
  AWS_ENDPOINT_URL_S3="$S3_URL" "$BIN" replay --source s3://replay-src/arch --table "$TABLE" \
    $range --event MODIFY > "$W/r-s3.jsonl" 2>/dev/null
  cmp "$W/r-local.jsonl" "$W/r-s3.jsonl"
  # shellcheck disable=SC2086
  "${CHECK[@]}" selection "$W/events.jsonl" "$W/r-s3.jsonl" $range --event MODIFY
done

log "compact: s3:// source and destination on s3s-fs give the files compacted from the directory"
mkdir -p "$W/s3/compacted"
"$BIN" compact --source "$W/first" --dest "$W/compacted" > "$W/compact-local.txt"
grep -q "3 table-days: 3 compacted, 0 unchanged, 0 failed" "$W/compact-local.txt"
AWS_ENDPOINT_URL_S3="$S3_URL" "$BIN" compact --source s3://replay-src/arch \
  --dest s3://compacted/cli > "$W/compact-s3.txt"
grep -q "3 table-days: 3 compacted, 0 unchanged, 0 failed" "$W/compact-s3.txt"
COMPACTED=$(cd "$W/compacted" && find "$TABLE" -name '*.parquet' | sort)
[ "$(echo "$COMPACTED" | wc -l)" -eq 3 ]
for f in $COMPACTED; do cmp "$W/compacted/$f" "$W/s3/compacted/cli/$f"; done
AWS_ENDPOINT_URL_S3="$S3_URL" "$BIN" compact --source s3://replay-src/arch \
  --dest s3://compacted/cli | grep -q "0 compacted, 3 unchanged, 0 failed"
"${CHECK[@]}" same-rows "$W/first/$TABLE" "$W/compacted/$TABLE"

log "a corrupt file stops the replay, naming it; --skip-corrupt reports it and goes on"
cp -r "$W/first" "$W/corrupt"
BAD="$W/corrupt/$TABLE/year=2026/month=03/day=02/0-0-0000000000000000.parquet"
echo "not parquet" > "$BAD"
if "$BIN" replay --source "$W/corrupt" --table "$TABLE" --out /dev/null 2> "$W/corrupt.err"; then
  echo "replay of a corrupt archive succeeded" >&2; exit 1
fi
grep -F "$BAD" "$W/corrupt.err"
"$BIN" replay --source "$W/corrupt" --table "$TABLE" --batch-size 64 --out "$W/skip.jsonl" --skip-corrupt --json > "$W/skip.json"
"${CHECK[@]}" summary "$W/skip.json" records_emitted=4000 corrupt_files=1
cmp "$W/local.jsonl" "$W/skip.jsonl"

log "--invoke-function against cargo lambda watch running ddb-archiver-lambda"
LAMBDA_PORT=$(free_port)
start_bg cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_PORT" \
  --bin ddb-archiver-lambda \
  --env-var "ARCHIVE_DEST=s3://replay-second/arch,ARCHIVE_FORMAT=parquet,AWS_ENDPOINT_URL_S3=$S3_URL" \
  --env-var "AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY,AWS_REGION=$AWS_REGION"
wait_port "$LAMBDA_PORT" 120
# The first invocation compiles the function; wait for it with an event of no records.
timeout 900 cargo lambda invoke ddb-archiver-lambda --invoke-address 127.0.0.1 \
  --invoke-port "$LAMBDA_PORT" --data-ascii '{"Records":[]}' || true
export AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:$LAMBDA_PORT"
# With its bucket's folder replaced by a file, every write of the function fails and it
# reports every record as failed: bounded retries, then an error naming the first
# record, and nothing delivered.
rmdir "$W/s3/replay-second" && touch "$W/s3/replay-second"
if "$BIN" replay --source "$W/first" --table "$TABLE" --batch-size 250 \
     --invoke-function ddb-archiver-lambda --checkpoint "$W/invoke.checkpoint" --json \
     > "$W/fail.json" 2> "$W/fail.err"; then
  echo "replay into a failing function succeeded" >&2; exit 1
fi
grep -F "did not process event ev00000000" "$W/fail.err"
"${CHECK[@]}" summary "$W/fail.json" records_emitted=0 invocations=4 retries=3
[ ! -e "$W/invoke.checkpoint" ]
rm "$W/s3/replay-second" && mkdir "$W/s3/replay-second"
"$BIN" replay --source "$W/first" --table "$TABLE" --batch-size 250 \
  --invoke-function ddb-archiver-lambda --checkpoint "$W/invoke.checkpoint" --json > "$W/invoke.json"
"${CHECK[@]}" summary "$W/invoke.json" records_emitted=4000 retries=0 last_event_id=ev00003999
grep -qx ev00003999 "$W/invoke.checkpoint"
unset AWS_ENDPOINT_URL_LAMBDA
"${CHECK[@]}" same-rows "$W/first/$TABLE" "$W/s3/replay-second/arch/$TABLE"
"$BIN" replay --source "$W/s3/replay-second/arch" --table "$TABLE" --batch-size 64 > "$W/second.jsonl"
cmp "$W/local.jsonl" "$W/second.jsonl"

log "the maintenance role under cargo lambda watch compacts the closed days into s3s-fs"
# The raw archive uploaded through the S3 API with SHA-256 checksums, as the sink stores
# it (the replay source above was copied into s3s-fs's folder, so it has none).
mkdir -p "$W/s3/raw-up"
python - "$W/first" "$S3_URL" <<'PY'
import os, sys, boto3
root, url = sys.argv[1:3]
s3 = boto3.client("s3", endpoint_url=url)
for d, _, files in os.walk(root):
    for f in files:
        path = os.path.join(d, f)
        key = "arch/" + os.path.relpath(path, root)
        with open(path, "rb") as body:
            s3.put_object(Bucket="raw-up", Key=key, Body=body, ChecksumAlgorithm="SHA256")
PY
MAINT_PORT=$(free_port)
start_bg cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$MAINT_PORT" \
  --bin ddb-archiver-lambda \
  --env-var "ARCHIVE_ROLE=maintenance,ARCHIVE_SOURCE=s3://raw-up/arch,COMPACT_DEST=s3://compacted/fn,COMPACT_LOOKBACK_DAYS=3650,VERIFY_DAYS=3650,AWS_ENDPOINT_URL_S3=$S3_URL" \
  --env-var "AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY,AWS_REGION=$AWS_REGION"
wait_port "$MAINT_PORT" 120
for run in first second; do
  timeout 900 cargo lambda invoke ddb-archiver-lambda --invoke-address 127.0.0.1 \
    --invoke-port "$MAINT_PORT" --data-ascii '{"action":"compact"}' > "$W/maint-$run.json"
done
cargo lambda invoke ddb-archiver-lambda --invoke-address 127.0.0.1 \
  --invoke-port "$MAINT_PORT" --data-ascii '{"action":"verify"}' > "$W/maint-verify.json"
python - "$W/maint-first.json" "$W/maint-second.json" "$W/maint-verify.json" <<'PY'
import json, sys
first, second, verify = (json.load(open(p)) for p in sys.argv[1:4])
first, second, verify = first["compact"], second["compact"], verify["verify"]
assert [d["status"] for d in first["summary"]["days"]] == ["compacted"] * 3, first
assert [d["status"] for d in second["summary"]["days"]] == ["unchanged"] * 3, second
assert first["failed_days"] == 0 and first["uncompacted_past_threshold"] == 0
assert verify["raw"]["bad"] == [] and verify["compacted"]["bad"] == [], verify
assert verify["compacted"]["checked"]["compacted"] == 3, verify
assert verify["raw"]["checksums_compared"] > 0, verify
PY
for f in $COMPACTED; do cmp "$W/compacted/$f" "$W/s3/compacted/fn/$f"; done

log "memory: a million changes in one day"
"${GEN[@]}" --records 1000000 --items 50000 --days 1 --pad 100 --per-event 1000 --out "$W/million.jsonl"
split -l 100 "$W/million.jsonl" "$W/million-part-"
rm "$W/million.jsonl"
"$BIN" archive --dest "$W/big" --format parquet "$W"/million-part-* > /dev/null
rm "$W"/million-part-*
/usr/bin/time -v "$BIN" replay --source "$W/big" --table "$TABLE" --batch-size 10000 \
  --out /dev/null --json > "$W/big.json" 2> "$W/big.time"
"${CHECK[@]}" summary "$W/big.json" records_emitted=1000000
RSS_KB=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$W/big.time")
echo "peak RSS replaying 1,000,000 changes: $((RSS_KB / 1024)) MiB"
# A generous bound: the day's changes alone are ~600 MB of record text.
[ "$RSS_KB" -lt $((400 * 1024)) ] || { echo "peak RSS ${RSS_KB} kB is over 400 MiB" >&2; exit 1; }
