#!/usr/bin/env bash
# A fresh clone passes on its own: the committed tree, cloned into an empty temporary
# directory with no shared/ beside it (so no public sample events), runs the library's
# tests (`cargo test --lib`: the only tests that look for shared/; stage 10 runs the
# integration tests on this checkout). It builds into this checkout's target directory,
# so the dependencies are reused.
# Uncommitted changes are not in the clone.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
tmp=$(mktemp -d)
# The clone's build of this crate replaces this checkout's in the shared target
# directory, and cargo would take it as fresh here although its tests name the clone's
# paths (CARGO_MANIFEST_DIR): remove it, so that the next build here builds its own.
finish() {
  stop_bg
  cargo clean --quiet -p ddb-archiver || true
  rm -rf "$tmp"
}
trap finish EXIT
git clone --quiet "$ROOT" "$tmp/ddb-archiver"
if [ -e "$tmp/shared" ]; then
  echo "$tmp/shared exists: the clone is not alone" >&2
  exit 1
fi
log "cargo test --lib in a fresh clone of $(git rev-parse --short HEAD), with no shared/ beside it"
(cd "$tmp/ddb-archiver" && cargo test --lib)
