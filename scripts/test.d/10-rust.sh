#!/usr/bin/env bash
# Formatting, lints, and the fast self-contained tests (plain `cargo test`).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
log "cargo fmt --check"
cargo fmt --all -- --check
log "layers: no import circles, no command imports another"
python3 scripts/check-layers.py
log "cargo clippy"
cargo clippy --all-targets -- -D warnings
log "cargo test"
cargo test
log "docs: links and flags"
cargo build --bin ddb-archiver
python3 scripts/check-docs.py --bin "$ROOT/target/debug/ddb-archiver"
