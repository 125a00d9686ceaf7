#!/usr/bin/env bash
# kruise-local as a small real cluster, judged by kubectl: nodes, scheduling, events, in-place
# restarts, graceful deletion, cordon, job-like pods, CRI sockets and restarts with the state dir.
. "$(dirname "$0")/lib.sh"
echo "== kruise-local"
start_local c1 3 --zones a,b,c --region r1
K get nodes | head -1 | grep -qE "^NAME +STATUS +ROLES +AGE +VERSION" || fail "nodes Table columns"; pass "nodes Table columns"
[ "$(K get nodes -o jsonpath='{.items[*].metadata.labels.topology\.kubernetes\.io/region}')" = "r1 r1 r1" ] || fail "region labels"
[ "$(K get nodes -o jsonpath='{.items[*].metadata.labels.topology\.kubernetes\.io/zone}' | tr ' ' '\n' | sort -u | tr '\n' ' ')" = "a b c " ] || fail "zone labels"
pass "region and zone labels"
for n in $(K get nodes -o jsonpath='{.items[*].metadata.name}'); do [ -S "$TMP/c1/nodes/$n/cri.sock" ] || fail "no CRI socket for $n"; done
pass "one CRI socket per node"

target=$(K get nodes -o jsonpath='{.items[2].metadata.name}')
K apply -f - >/dev/null <<YAML || fail "apply pods"
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default}
spec:
  nodeSelector: {kubernetes.io/hostname: "$target"}
  containers: [{name: app, image: example.com/app:v1}, {name: side, image: example.com/side:v1}]
---
apiVersion: v1
kind: Pod
metadata: {name: huge, namespace: default}
spec:
  containers: [{name: a, image: example.com/a:v1, resources: {requests: {cpu: "5000"}}}]
---
apiVersion: v1
kind: Pod
metadata:
  name: job
  namespace: default
  annotations: {kruise-local.kruise.io/run-seconds: "1"}
spec:
  restartPolicy: Never
  containers: [{name: a, image: example.com/a:v1}]
YAML
wait_for 20 "K get pod web --no-headers | grep -qE '^web +2/2 +Running +0 '" || { K get pods; fail "web not Running 2/2"; }
pass "pod with nodeSelector Running 2/2"
[ "$(K get pod web -o jsonpath='{.spec.nodeName}')" = "$target" ] || fail "web not on $target"
pass "scheduled on $target"
K describe pod web >"$TMP/describe"
for r in Scheduled Pulling Pulled Created Started; do grep -q "$r" "$TMP/describe" || { cat "$TMP/describe"; fail "describe pod web lacks a $r event"; }; done
pass "describe pod shows Scheduled, Pulling, Pulled, Created, Started"
wait_for 10 "K describe pod huge | grep -q '0/3 nodes are available: 3 Insufficient cpu.'" || { K describe pod huge | tail; fail "FailedScheduling message"; }
[ "$(K get pod huge -o jsonpath='{.status.conditions[?(@.type=="PodScheduled")].reason}')" = Unschedulable ] || fail "huge not Unschedulable"
pass "oversized pod Pending, Unschedulable, FailedScheduling event"
wait_for 20 "K get pod job --no-headers | grep -qE '^job +0/1 +Completed '" || { K get pod job; fail "job-like pod did not complete"; }
pass "job-like pod Completed"

uid=$(K get pod web -o jsonpath='{.metadata.uid}')
K set image pod/web app=example.com/app:v2 >/dev/null || fail "set image"
wait_for 20 "[ \"\$(K get pod web -o jsonpath='{.status.containerStatuses[?(@.name==\"app\")].restartCount}')\" = 1 ]" || fail "app not restarted in place"
[ "$(K get pod web -o jsonpath='{.status.containerStatuses[?(@.name=="side")].restartCount}')" = 0 ] || fail "side restarted too"
[ "$(K get pod web -o jsonpath='{.metadata.uid}')" = "$uid" ] || fail "pod UID changed"
wait_for 10 "K get pod web --no-headers | grep -qE '^web +2/2 +Running +1 '" || { K get pod web; fail "web not back to 2/2 Running"; }
pass "in-place image change restarts only that container"

K cordon "$target" >/dev/null
K apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: pinned, namespace: default}
spec:
  nodeSelector: {kubernetes.io/hostname: "$target"}
  containers: [{name: a, image: example.com/a:v1}]
YAML
wait_for 10 "K describe pod pinned | grep -q 'node(s) were unschedulable'" || { K describe pod pinned | tail; fail "cordoned node still schedulable"; }
K uncordon "$target" >/dev/null
wait_for 20 "K get pod pinned --no-headers | grep -q Running" || fail "pod not scheduled after uncordon"
pass "cordon holds pods back, uncordon releases them"

K annotate node "$target" kruise-local.kruise.io/not-ready=true >/dev/null
wait_for 10 "K get node $target --no-headers | grep -q ' NotReady '" || { K get nodes; fail "node did not become NotReady"; }
wait_for 10 "K get pod pinned --no-headers | grep -qE '^pinned +0/1 '" || { K get pod pinned; fail "pod on a NotReady node still ready"; }
K annotate node "$target" kruise-local.kruise.io/not-ready- >/dev/null
wait_for 10 "K get pod pinned --no-headers | grep -qE '^pinned +1/1 +Running'" || { K get pod pinned; fail "pod not ready again"; }
pass "a NotReady node makes its pods not ready, and recovers"

K delete pod web --wait=true --timeout=30s >/dev/null || fail "graceful delete"
K get pod web >/dev/null 2>&1 && fail "web still there"
pass "graceful deletion finishes"

# A restart keeps the cluster.
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null
"$BIN/kruise-local" run --name c1 --nodes 3 --zones a,b,c --region r1 --listen 127.0.0.1:0 \
  --kubeconfig-out "$KC" --state-dir "$TMP/c1" >>"$TMP/c1.log" 2>&1 &
PIDS[0]=$!
wait_for 20 "K get pod pinned --no-headers | grep -q Running" || fail "pods lost across a restart"
[ "$(K get nodes --no-headers | wc -l)" -eq 3 ] || fail "node count changed across a restart"
pass "restart with the same state dir keeps pods and nodes"
echo "kruise-local: all checks passed"
