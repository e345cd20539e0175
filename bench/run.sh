#!/usr/bin/env bash
# The benchmark behind docs/performance.md: builds the release binary, makes the Python
# venv (pyarrow, boto3), and runs bench/run.py (ddb-archiver vs the Python peer, both as
# whole processes, alternating), then bench/restore.py (restore of a million changes over
# 100,000 keys). Arguments go to bench/run.py (e.g. --runs 9).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
ensure_venv
ensure_gnu_time
cargo build --release --bin ddb-archiver
python bench/run.py "$@"
python bench/restore.py
