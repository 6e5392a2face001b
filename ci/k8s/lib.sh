# Shared settings of the test cluster scripts (sourced by ci/k8s/*, never run).
# Versions, paths and address ranges live here and nowhere else.

K8S_VERSION=v1.37.2          # k8s.io/kubernetes; its staging modules are published as v0.37.2
ETCD_VERSION=v3.6.16         # go.etcd.io/etcd/server/v3
CONTAINERD_VERSION=v2.2.9    # github.com/containerd/containerd/v2 (the 2.2 line still runs cgroup v1)
CRICTL_VERSION=v1.37.0       # sigs.k8s.io/cri-tools
HELM_VERSION=v3.22.0         # helm.sh/helm/v3: renders deploy/helm in the tests (not part of the cluster)

# Binaries are built once per machine and reused; never committed (they total ~650 MiB).
RETAP_K8S_CACHE=${RETAP_K8S_CACHE:-/var/cache/retap/k8s}
K8S_BIN=$RETAP_K8S_CACHE/k8s-${K8S_VERSION#v}_etcd-${ETCD_VERSION#v}_containerd-${CONTAINERD_VERSION#v}_crictl-${CRICTL_VERSION#v}/bin
# helm is cached beside them, in a folder of its own (changing its version rebuilds only helm).
HELM_BIN=$RETAP_K8S_CACHE/helm-${HELM_VERSION#v}/bin
# The Go caches of the build are ours too (module cache ~1.6 GB, build cache ~5 GB).
K8S_GOPATH_CACHE=$RETAP_K8S_CACHE/go

# Everything a running cluster owns is under this one directory; `down` removes it.
RETAP_K8S_STATE=${RETAP_K8S_STATE:-/var/lib/retap-k8s}
K8S_RUN=/run/retap-k8s                 # sockets and pid files (tmpfs: gone after a reboot)
KUBECONFIG_ADMIN=$RETAP_K8S_STATE/admin.kubeconfig

# Address ranges nobody routes (RFC 2544 benchmarking space): pods and services cannot be
# mistaken for a real network, and nothing in them leaves the machine.
POD_CIDR=198.18.0.0/16
POD_GATEWAY=198.18.0.1
SERVICE_CIDR=198.19.0.0/16
KUBERNETES_SVC_IP=198.19.0.1
POD_BRIDGE=retapk8s0        # pods' veths are enslaved here (CNI bridge plugin)
SVC_BRIDGE=retapk8ssvc0     # empty: holds the service-range route so it never takes the default route
NODE_NAME=retap-node
APISERVER_PORT=6443
ETCD_CLIENT_PORT=23790      # loopback only; off the default 2379 so a system etcd cannot clash
ETCD_PEER_PORT=23800

# Local images (no registry): the sandbox image containerd is pinned to, and test peers.
PAUSE_IMAGE=retap.local/pause:1

k8s_log() { printf '\033[1m[k8s] %s\033[0m\n' "$*" >&2; }
k8s_die() {
  printf 'ci/k8s: %s\n' "$1" >&2
  if [ -n "${2:-}" ]; then printf '  → %s\n' "$2" >&2; fi
  exit 1
}
k8s_need_root() { [ "$(id -u)" = 0 ] || k8s_die "must run as root (it starts kubelet and containerd)" "run it with sudo"; }

# Milliseconds since the epoch (for the timings each script prints).
k8s_now_ms() { date +%s%3N; }
k8s_since() { local t0=$1; local ms=$(( $(k8s_now_ms) - t0 )); printf '%d.%01ds' $((ms / 1000)) $(((ms % 1000) / 100)); }

# Pid of a kubelet or kube-proxy that is not ours (another cluster on this machine), if any: then
# the kubepods cgroups and kube-proxy's nft tables are theirs, and we must not touch them.
k8s_foreign_node() {
  local p exe
  for p in /proc/[0-9]*; do
    exe=$(readlink "$p/exe" 2>/dev/null) || continue
    case "${exe##*/}" in
      kubelet|kube-proxy) [ "${exe%/*}" = "$K8S_BIN" ] || { echo "${p#/proc/} $exe"; return 0; } ;;
    esac
  done
  return 1
}
