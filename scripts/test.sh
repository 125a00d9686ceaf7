#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs dependencies, builds the workspace once in
# debug, runs every unit, integration and conformance test in parallel, then the kubectl tiers
# against the real binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "==> cargo fetch (unpacks the vendored protoc)"
cargo fetch --locked

echo "==> cargo build --workspace --all-targets (debug)"
cargo build --workspace --all-targets --locked

echo "==> cargo nextest run --workspace"
cargo nextest run --workspace --locked --no-fail-fast --no-tests=pass

echo "==> kubectl tiers"
for t in scripts/e2e/[0-9]*.sh; do
  [ -e "$t" ] || continue
  echo "--> $t"
  bash "$t"
done
echo "==> all tests passed"
