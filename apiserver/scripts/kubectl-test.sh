#!/usr/bin/env bash
# Exercises a running kruise-local with the real kubectl and checks every command's output.
# Usage: kubectl-test.sh PATH/TO/kruise-local [CRD_DIR]
#   CRD_DIR (e.g. charts/kruise-agent/crds) enables the CloneSet/StatefulSet checks.
set -u
BIN=${1:?usage: kubectl-test.sh PATH/TO/kruise-local [CRD_DIR]}
CRDS=${2:-}
command -v kubectl >/dev/null || { echo "FAIL: kubectl not installed"; exit 1; }
TMP=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$TMP/out" ] && tail -20 "$TMP/out"; exit 1; }
passed=0
K() { kubectl --kubeconfig "$TMP/kubeconfig" --cache-dir "$TMP/cache" "$@"; }
# expect DESCRIPTION REGEX COMMAND...: the command succeeds and its output matches REGEX (grep -E).
expect() {
  local what=$1 pattern=$2; shift 2
  "$@" >"$TMP/out" 2>&1 || fail "$what (exit status)"
  grep -Eq -- "$pattern" "$TMP/out" || fail "$what (output does not match /$pattern/)"
  passed=$((passed + 1))
}
# refuse DESCRIPTION REGEX COMMAND...: the command fails and its output matches REGEX.
refuse() {
  local what=$1 pattern=$2; shift 2
  if "$@" >"$TMP/out" 2>&1; then fail "$what (unexpectedly succeeded)"; fi
  grep -Eq -- "$pattern" "$TMP/out" || fail "$what (error does not match /$pattern/)"
  passed=$((passed + 1))
}

extra=()
[ -n "$CRDS" ] && extra=(--crds-dir "$CRDS")
"$BIN" run --name kt --nodes 3 --zones a,b,c --listen 127.0.0.1:0 --kubeconfig-out "$TMP/kubeconfig" \
  --state-dir "$TMP/state" "${extra[@]}" >"$TMP/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do [ -s "$TMP/kubeconfig" ] && K get --raw /readyz >/dev/null 2>&1 && break; sleep 0.1; done
K get --raw /readyz >/dev/null 2>&1 || { cat "$TMP/server.log"; fail "kruise-local did not start"; }

expect "version reports 1.31" 'Server Version: v1\.31\.9' K version
expect "nodes table" '^NAME +STATUS +ROLES +AGE +VERSION' K get nodes
expect "three Ready nodes" 'kt-worker-3 +Ready +<none>' K get nodes
expect "node zone labels" '^a b c$' K get nodes -o jsonpath='{.items[*].metadata.labels.topology\.kubernetes\.io/zone}'
expect "namespaces" 'kube-system +Active' K get ns
expect "auth can-i" '^yes$' K auth can-i create deployments
expect "auth whoami" 'kubernetes-admin' K auth whoami
expect "default service account" '^default ' K -n kube-system get sa --no-headers
expect "api-resources lists deployments" 'deployments +deploy +apps/v1 +true +Deployment' K api-resources

cat >"$TMP/objects.yaml" <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: kt}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: kt, labels: {tier: one}}
data: {mode: fast}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: kt}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        env: [{name: A, value: "1"}]
---
apiVersion: v1
kind: Pod
metadata: {name: solo, namespace: kt, labels: {app: solo}}
spec:
  containers:
  - {name: main, image: example.com/main:v1}
  - {name: side, image: example.com/side:v1}
YAML
expect "apply -f with validation" 'deployment.apps/web created' K apply -f "$TMP/objects.yaml"
expect "re-apply is unchanged" 'configmap/settings unchanged' K apply -f "$TMP/objects.yaml"
cat >"$TMP/bad.yaml" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata: {name: bad, namespace: kt}
data: {a: b}
bogus: field
YAML
refuse "strict validation rejects unknown fields" 'unknown field "bogus"' K apply -f "$TMP/bad.yaml"
expect "get -o yaml" 'mode: fast' K -n kt get cm settings -o yaml
expect "get -o json" '"mode": "fast"' K -n kt get cm settings -o json
expect "configmap table" '^NAME +DATA +AGE' K -n kt get cm
expect "deployment table" '^web +0/2 +0 +0 ' K -n kt get deploy
expect "pod table" '^solo +[0-2]/2 +(Pending|ContainerCreating|Running) +0 ' K -n kt get pods
expect "pod wide table" 'IP +NODE +NOMINATED NODE +READINESS GATES' K -n kt get pods -o wide
expect "label" 'labeled' K -n kt label cm settings extra=yes
expect "label selector" '^configmap/settings$' K -n kt get cm -l 'extra in (yes,maybe)' -o name
expect "field selector" '^configmap/settings$' K -n kt get cm --field-selector metadata.name=settings -o name
refuse "unknown field selector" 'field label not supported' K -n kt get cm --field-selector spec.foo=bar
expect "annotate" 'annotated' K -n kt annotate cm settings note=hello
expect "annotation stored" '^hello$' K -n kt get cm settings -o jsonpath='{.metadata.annotations.note}'
expect "merge patch" 'patched' K -n kt patch cm settings --type merge -p '{"data":{"m":"1"}}'
expect "json patch" 'patched' K -n kt patch cm settings --type json -p '[{"op":"add","path":"/data/j","value":"2"}]'
expect "patched data" '^fast 1 2$' K -n kt get cm settings -o jsonpath='{.data.mode} {.data.m} {.data.j}'
expect "strategic merge patch" 'patched' K -n kt patch pod solo -p '{"spec":{"containers":[{"name":"main","image":"example.com/main:v2"}]}}'
expect "strategic merge kept the other container" '^main=example.com/main:v2 side=example.com/side:v1 $' \
  K -n kt get pod solo -o jsonpath='{range .spec.containers[*]}{.name}={.image} {end}'
expect "set image (setElementOrder directives)" 'image updated' K -n kt set image deploy/web nginx=nginx:1.26
expect "env survived set image" '^A=1 nginx:1.26$' K -n kt get deploy web -o jsonpath='{.spec.template.spec.containers[0].env[0].name}={.spec.template.spec.containers[0].env[0].value} {.spec.template.spec.containers[0].image}'
expect "scale (merge patch to /scale)" 'scaled' K -n kt scale deploy web --replicas=3
expect "scale --current-replicas (PUT /scale)" 'scaled' K -n kt scale deploy web --current-replicas=3 --replicas=4
refuse "scale with a wrong precondition" 'Expected replicas to be 9, was 4' K -n kt scale deploy web --current-replicas=9 --replicas=1
expect "replicas after scale" '^4 4$' K -n kt get deploy web -o jsonpath='{.spec.replicas} {.metadata.generation}'
expect "describe deployment" 'StrategyType: +RollingUpdate' K -n kt describe deploy web
expect "describe pod" 'Image: +example.com/main:v2' K -n kt describe pod solo
expect "explain" 'image' K explain pods.spec.containers
expect "explain deployment field" 'replicas' K explain deployment.spec
expect "get all" 'deployment.apps/web' K -n kt get all

# status conditions drive kubectl wait
K -n kt patch deploy web --subresource=status --type merge \
  -p '{"status":{"observedGeneration":4,"conditions":[{"type":"Available","status":"True","reason":"Test","message":"ok"}]}}' >"$TMP/out" 2>&1 || fail "status patch"
expect "wait --for=condition" 'condition met' K -n kt wait --for=condition=Available deploy/web --timeout=10s

# watch sees events as a Table
( timeout 4 kubectl --kubeconfig "$TMP/kubeconfig" --cache-dir "$TMP/cache" -n kt get cm settings -w --output-watch-events >"$TMP/watch" 2>&1 & )
sleep 1.5
K -n kt annotate cm settings again=yes >/dev/null
sleep 2
grep -Eq '^MODIFIED +settings +3 ' "$TMP/watch" || { cat "$TMP/watch"; fail "watch did not show a MODIFIED row"; }
passed=$((passed + 1))

# stale replace conflicts
K -n kt get cm settings -o json >"$TMP/old.json"
K -n kt patch cm settings --type merge -p '{"data":{"x":"3"}}' >/dev/null
refuse "stale replace" 'the object has been modified' K replace -f "$TMP/old.json"

# deletion with finalizers
expect "add a finalizer" 'patched' K -n kt patch cm settings --type merge -p '{"metadata":{"finalizers":["example.com/hold"]}}'
expect "delete is accepted" 'deleted' K -n kt delete cm settings --wait=false
expect "finalizer keeps it with a deletionTimestamp" '^.+Z$' K -n kt get cm settings -o jsonpath='{.metadata.deletionTimestamp}'
expect "removing the finalizer" 'patched' K -n kt patch cm settings --type json -p '[{"op":"remove","path":"/metadata/finalizers"}]'
refuse "object gone after finalizers emptied" 'NotFound|not found' K -n kt get cm settings
expect "delete unscheduled pod" 'deleted' K -n kt delete pod solo
refuse "protected namespace" 'may not be deleted' K delete ns default --wait=false
expect "delete namespace" 'deleted' K delete ns kt --timeout=20s
refuse "namespace contents removed" 'NotFound|not found' K -n kt get deploy web

if [ -n "$CRDS" ]; then
  cat >"$TMP/clone.yaml" <<'YAML'
apiVersion: apps.kruise.io/v1alpha1
kind: CloneSet
metadata:
  name: demo-clone
spec:
  replicas: 5
  selector:
    matchLabels:
      app: guestbook
  template:
    metadata:
      labels:
        app: guestbook
    spec:
      containers:
      - name: guestbook
        image: registry.cn-hangzhou.aliyuncs.com/kruise-test/guestbook:v1
        env:
        - name: test
          value: foo
  updateStrategy:
    type: InPlaceIfPossible
    maxUnavailable: 20%
    inPlaceUpdateStrategy:
      gracePeriodSeconds: 3
YAML
  expect "apply seed CloneSet" 'cloneset.apps.kruise.io/demo-clone created' K apply -f "$TMP/clone.yaml"
  expect "get clone columns" '^NAME +DESIRED +UPDATED +UPDATED_READY +READY +TOTAL +AGE' K get clone
  expect "get clone row" '^demo-clone +5 ' K get clone
  expect "scale clone" 'scaled' K scale clone demo-clone --replicas=3
  expect "explain clone" 'partition' K explain clone.spec.updateStrategy
  sed 's/InPlaceIfPossible/Sideways/; s/demo-clone/bad-clone/' "$TMP/clone.yaml" >"$TMP/bad-clone.yaml"
  refuse "enum validation" 'spec.updateStrategy.type: Unsupported value: "Sideways"' K apply -f "$TMP/bad-clone.yaml"
  refuse "strategic merge patch on a custom resource" 'UnsupportedMediaType|unknown format|not supported' \
    K patch clone demo-clone --type strategic -p '{"spec":{"replicas":2}}'
  expect "delete clone" 'deleted' K delete clone demo-clone
fi
echo "kubectl-test: $passed checks pass"
