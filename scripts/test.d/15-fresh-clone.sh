#!/usr/bin/env bash
# A fresh clone passes on its own: the committed tree, cloned into an empty temporary
# directory with no shared/ beside it (so no public sample events), runs `cargo test`.
# It builds into this checkout's target directory, so the dependencies are reused.
# Uncommitted changes are not in the clone.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
tmp=$(mktemp -d)
trap 'stop_bg; rm -rf "$tmp"' EXIT
git clone --quiet "$ROOT" "$tmp/ddb-archiver"
if [ -e "$tmp/shared" ]; then
  echo "$tmp/shared exists: the clone is not alone" >&2
  exit 1
fi
log "cargo test in a fresh clone of $(git rev-parse --short HEAD), with no shared/ beside it"
(cd "$tmp/ddb-archiver" && CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}" cargo test)
