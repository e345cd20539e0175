#!/usr/bin/env bash
# Regenerates schemas/generated/*.glue.json (the Glue TableInput of every schema file and
# of the standard columns, with s3://__BUCKET__/__PREFIX__<table>/ locations) from the
# same generator as `ddb-archiver schema glue`. `cargo test` fails while they are stale.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -f schemas/generated/*.glue.json
DDB_ARCHIVER_REGENERATE=1 cargo test --lib schema::table::tests::committed_generated_files_are_current
git status --short schemas/generated
