#!/usr/bin/env bash
# Benchmark smoke run: the generator, the Python peer and bench/run.py on a tiny batch,
# one run each, and bench/restore.py on a few hundred changes. It checks that both
# programs archive every record under the same object names, and that restore gives
# every item; it asserts no timing. The full benchmark is `bench/run.sh`.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
ensure_venv
ensure_gnu_time
cargo build --bin ddb-archiver
log "bench/run.py --smoke"
python bench/run.py --smoke --bin "$ROOT/target/debug/ddb-archiver"
log "bench/restore.py --smoke"
python bench/restore.py --smoke --bin "$ROOT/target/debug/ddb-archiver"
# The baseline benchmark on a tiny export: every item archived once, the coverage record
# written, zcat of the same files run beside it (the full run: bench/baseline.py, 2 GB).
log "bench/baseline.py --smoke"
python bench/baseline.py --smoke --bin "$ROOT/target/debug/ddb-archiver"
# The criterion stage benches, each run once in test mode (a check that they still work,
# not a timing; `cargo bench --bench stages` times them).
log "cargo test --bench stages"
BENCH_PYTHON=python cargo test --bench stages
# The compaction benchmark on a few MB: ddb-archiver compact and DuckDB's COPY must both
# write every distinct change once (the full run is bench/compact_day.py on 3 GiB), into
# s3s-fs, with small files and budget so that runs spill, and its peak RSS must stay
# under the memory bound stated in docs/performance.md.
ensure_s3s
log "bench/compact_day.py --smoke --s3"
python bench/compact_day.py --smoke --s3 --max-file-bytes 1048576 --memory-budget 1048576 \
  --bin "$ROOT/target/debug/ddb-archiver"
