# Helpers for the kubectl tiers of the test suite. Sourced; the current directory is the checkout.
set -u
ROOT=$(pwd)
BIN=${BIN:-$ROOT/target/debug}
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
  sleep 0.3
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; for f in "$TMP"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done; exit 1; }
pass() { echo "  ok: $*"; }

# start_local NAME NODES [extra args...]: starts kruise-local and waits for Ready nodes; sets KC.
start_local() {
  local name=$1 nodes=$2; shift 2
  [ -x "$BIN/kruise-local" ] || fail "$BIN/kruise-local not built"
  mkdir -p "$TMP/$name"
  "$BIN/kruise-local" run --name "$name" --nodes "$nodes" --listen 127.0.0.1:0 \
    --kubeconfig-out "$TMP/$name.kubeconfig" --state-dir "$TMP/$name" "$@" >"$TMP/$name.log" 2>&1 &
  PIDS+=($!)
  KC=$TMP/$name.kubeconfig
  wait_for 20 "[ -s $KC ] && K get nodes --no-headers | grep -q ' Ready'" || fail "kruise-local $name did not come up"
}

K() { kubectl --kubeconfig "$KC" --cache-dir "$TMP/cache" "$@"; }

# wait_for SECONDS 'condition'
wait_for() {
  local secs=$1 cond=$2 i
  for i in $(seq 1 $((secs * 5))); do
    eval "$cond" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

# expect 'description' command...: runs the command and fails with its output unless it succeeds
expect() {
  local what=$1; shift
  if "$@" >"$TMP/out" 2>&1; then pass "$what"; else cat "$TMP/out"; fail "$what"; fi
}
