#!/usr/bin/env bash
# The CDK app in infra/: type checks and assertion tests (with cdk-nag AwsSolutionsChecks),
# then the real arm64 function build, `cdk synth` of the default app offline with no AWS
# credentials, and cfn-lint on the synthesized template.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
ensure_venv   # cargo-lambda, ziglang, cfn-lint

# Nothing here may reach AWS: no credentials, no instance metadata, no CLI telemetry.
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_EC2_METADATA_DISABLED=true CDK_DISABLE_CLI_TELEMETRY=true

log "infra: npm ci"
(cd infra && npm ci --no-audit --no-fund)

log "infra: npm test (tsc + assertion tests + cdk-nag)"
(cd infra && npm test)

log "infra: cargo lambda build --release --arm64"
# The aarch64 standard library (a no-op when rustup already has it).
rustup target add aarch64-unknown-linux-gnu
cargo lambda build --release --arm64 --bin ddb-archiver-lambda
test -x target/lambda/ddb-archiver-lambda/bootstrap

log "infra: cdk synth (default context, no credentials)"
out="$ROOT/infra/cdk.out"
rm -rf "$out"
(cd infra && npx cdk synth --quiet --no-notices --lookups=false --output "$out")
template="$out/DdbArchiver.template.json"
test -s "$template"

log "infra: cfn-lint $template"
# W3005 (a DependsOn also implied by a reference) is emitted by CDK's own Lambda construct
# for the function's role; it is redundant, not wrong. Any other warning or error fails.
cfn-lint --ignore-checks W3005 -- "$template"
echo "infra: cfn-lint clean"

log "infra: cdk synth and cfn-lint with the baseline workflow (baselineWorkflow=true)"
out_baseline="$(mktemp -d)"
(cd infra && npx cdk synth --quiet --no-notices --lookups=false -c baselineWorkflow=true --output "$out_baseline")
grep -q '"AWS::StepFunctions::StateMachine"' "$out_baseline/DdbArchiver.template.json"
cfn-lint --ignore-checks W3005 -- "$out_baseline/DdbArchiver.template.json"
rm -rf "$out_baseline"
echo "infra: cfn-lint clean (baseline workflow)"
