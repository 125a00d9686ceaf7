#!/usr/bin/env bash
# Installs what the build and the test suite need on a fresh Debian machine:
# etcd (hub storage and the apiserver's etcd backend tests). protoc comes from the
# protoc-bin-vendored crate (tools/protoc), kubectl is expected on PATH.
set -euo pipefail

need=()
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)

if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${need[*]}"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  updated=1
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The real-containerd tier of the node daemon (scripts/e2e/80-containerd.sh); optional: the tier
# skips with a reason when these cannot be installed.
optional=()
for tool in containerd:containerd runc:runc registry:docker-registry umoci:umoci skopeo:skopeo busybox:busybox-static; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || [ -x "/usr/bin/docker-registry" -a "${tool%%:*}" = registry ] || optional+=("${tool#*:}")
done
if [ ${#optional[@]} -gt 0 ] && [ "$(id -u)" -eq 0 ]; then
  echo "==> installing Debian packages for the containerd tier: ${optional[*]}"
  [ -n "${updated:-}" ] || apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${optional[@]}" >/dev/null \
    || echo "warning: could not install ${optional[*]}; the containerd tier will be skipped" >&2
fi

command -v kubectl >/dev/null 2>&1 || echo "warning: kubectl not on PATH; the kubectl tiers of the test suite will fail" >&2
if ! command -v cargo-nextest >/dev/null 2>&1 && ! cargo nextest --version >/dev/null 2>&1; then
  echo "==> installing cargo-nextest"
  cargo install --locked cargo-nextest
fi
echo "==> dependencies ready: etcd $(etcd --version 2>/dev/null | head -n1 | awk '{print $3}'), $(kubectl version --client 2>/dev/null | head -n1 || echo 'kubectl missing')"
