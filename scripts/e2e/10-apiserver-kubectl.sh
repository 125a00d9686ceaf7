#!/usr/bin/env bash
# The API server judged by the real kubectl: apply/get/describe/label/annotate/patch/scale/delete/
# wait/explain against kruise-local, with the member CRDs installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
echo "== apiserver through kubectl"
bash apiserver/scripts/kubectl-test.sh "${BIN:-target/debug}/kruise-local" charts/kruise-agent/crds
