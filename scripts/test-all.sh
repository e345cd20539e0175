#!/usr/bin/env bash
# Runs every test: formatting, lints, unit and in-process tests, then the real parts
# (S3 server, Lambda runtime, DynamoDB Streams, Parquet/JSON readers, infra checks and
# the benchmark smoke run). Each stage in scripts/test.d/ installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
failed=()
passed=0
for stage in scripts/test.d/*.sh; do
  printf '\n##### %s\n' "$stage"
  if bash "$stage"; then
    passed=$((passed+1))
  else
    failed+=("$stage")
  fi
done
printf '\nstages: %s passed, %s failed\n' "$passed" "${#failed[@]}"
for f in "${failed[@]:-}"; do [ -n "$f" ] && echo "failed stage: $f"; done
[ "${#failed[@]}" -eq 0 ]
