#!/usr/bin/env bash
# kruise-daemon against a real runtime: containerd (CRI plugin) under a temp dir, a local registry
# holding a tiny busybox image, kruise-local for the API, kruise-agent for the controllers. An
# ImagePullJob must end SUCCEED 1 with the image pulled by containerd through CRI.
# Optional tier: prints SKIP and exits 0 when the tools or privileges are missing.
. "$(dirname "$0")/lib.sh"
echo "== kruise-daemon on containerd"
skip() { echo "SKIP: $*"; exit 0; }
[ "$(id -u)" = 0 ] || skip "containerd needs root"
missing=""
for t in containerd runc umoci skopeo; do command -v "$t" >/dev/null || missing="$missing $t"; done
REGISTRY=$(command -v docker-registry || ls /usr/bin/docker-registry 2>/dev/null || true)
[ -n "$REGISTRY" ] || missing="$missing docker-registry"
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] || missing="$missing busybox-static"
[ -z "$missing" ] || skip "missing tools:$missing (Debian: apt-get install containerd runc docker-registry umoci skopeo busybox-static)"
for b in kruise-local kruise-agent kruise-daemon; do [ -x "$BIN/$b" ] || fail "$BIN/$b not built"; done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# 1. registry on a free port
PORT=$(free_port)
cat >"$TMP/registry.yml" <<EOF
version: 0.1
storage: {filesystem: {rootdirectory: $TMP/registry}}
http: {addr: 127.0.0.1:$PORT}
EOF
"$REGISTRY" serve "$TMP/registry.yml" >"$TMP/registry.log" 2>&1 &
PIDS+=($!)
wait_for 10 "curl -sf http://127.0.0.1:$PORT/v2/" || fail "registry did not start"
pass "registry on 127.0.0.1:$PORT"

# 2. a one-file busybox image, pushed
IMAGE=127.0.0.1:$PORT/kruise-test/busybox:1.0
( cd "$TMP" && umoci init --layout oci && umoci new --image oci:1.0 \
  && umoci unpack --image oci:1.0 bundle && mkdir -p bundle/rootfs/bin && cp "$BUSYBOX" bundle/rootfs/bin/busybox \
  && umoci repack --image oci:1.0 bundle && umoci config --image oci:1.0 --config.cmd /bin/busybox ) >"$TMP/umoci.log" 2>&1 \
  || fail "building the image with umoci"
skopeo copy --dest-tls-verify=false "oci:$TMP/oci:1.0" "docker://$IMAGE" >"$TMP/skopeo.log" 2>&1 || fail "pushing with skopeo"
pass "pushed $IMAGE"

# 3. containerd with the CRI plugin, plain-http access to the registry
CD=$TMP/containerd
mkdir -p "$CD/certs.d/127.0.0.1:$PORT"
cat >"$CD/certs.d/127.0.0.1:$PORT/hosts.toml" <<EOF
server = "http://127.0.0.1:$PORT"
[host."http://127.0.0.1:$PORT"]
  capabilities = ["pull", "resolve"]
EOF
cat >"$CD/config.toml" <<EOF
version = 2
root = "$CD/root"
state = "$CD/state"
[grpc]
  address = "$CD/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$CD/certs.d"
EOF
containerd --config "$CD/config.toml" >"$TMP/containerd.log" 2>&1 &
PIDS+=($!)
wait_for 20 "[ -S $CD/containerd.sock ] && grep -q 'containerd successfully booted' $TMP/containerd.log" \
  || fail "containerd did not start"
pass "containerd running"

# 4. API, controllers, and a daemon for the one node on the real runtime
start_local c1 1
K apply -f charts/kruise-agent/crds/ >/dev/null 2>&1 || true
KUBECONFIG=$KC "$BIN/kruise-agent" --metrics-addr 127.0.0.1:0 >"$TMP/agent.log" 2>&1 &
PIDS+=($!)
node=$(K get nodes -o jsonpath='{.items[0].metadata.name}')
KUBECONFIG=$KC "$BIN/kruise-daemon" --node-name "$node" --runtime-endpoint "unix://$CD/containerd.sock" >"$TMP/daemon.log" 2>&1 &
PIDS+=($!)
wait_for 30 "K get nodeimage $node" || fail "no NodeImage for $node"
K apply -f - >/dev/null <<YAML || fail "apply ImagePullJob"
apiVersion: apps.kruise.io/v1alpha1
kind: ImagePullJob
metadata: {name: real, namespace: default}
spec:
  image: $IMAGE
  pullPolicy: {timeoutSeconds: 60, backoffLimit: 1}
  completionPolicy: {type: Always}
YAML
wait_for 90 "[ \"\$(K get imagepulljob real -o jsonpath='{.status.succeeded}')\" = 1 ]" \
  || { K get nodeimage "$node" -o yaml | tail -20; fail "ImagePullJob did not succeed on containerd"; }
pass "ImagePullJob SUCCEED 1"
ctr --address "$CD/containerd.sock" -n k8s.io images ls -q | grep -qx "$IMAGE" || fail "containerd does not list $IMAGE"
id=$(K get nodeimage "$node" -o jsonpath='{.status.imageStatuses.*.tags[0].imageID}')
case "$id" in *sha256:*) pass "containerd holds $IMAGE ($id)";; *) fail "no imageID reported: '$id'";; esac
echo "containerd tier passed"
