# Shared helpers for build.sh / gen-modules.sh / dev-cluster.sh. Source, do not run.
# shellcheck shell=bash source-path=SCRIPTDIR

CP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
. "${CP_DIR}/versions.env"

# Built by `build.sh --node` from the kube/ module (k8s.io/kubernetes/cmd/<name>), next to the
# pause binary: what a real single-node cluster needs besides kube-apiserver and etcd.
# shellcheck disable=SC2034 # used by the sourcing scripts
NODE_BINARIES=(kubelet kube-controller-manager kube-scheduler kube-proxy)

die() {
    echo "controlplane: error: $*" >&2
    exit 1
}

log() {
    echo "controlplane: $*" >&2
}

# Locate a Go toolchain (PATH first, then the conventional install dir) and pin
# it: GOTOOLCHAIN=local makes a too-new `go` line fail instead of downloading.
find_go() {
    local go_bin
    go_bin="$(command -v go 2>/dev/null || true)"
    if [[ -z "${go_bin}" && -x /usr/local/go/bin/go ]]; then
        go_bin=/usr/local/go/bin/go
    fi
    [[ -n "${go_bin}" ]] || die "Go toolchain not found (need go >= 1.25 on PATH or in /usr/local/go/bin)"
    export GOTOOLCHAIN=local
    export CGO_ENABLED=0
    # shellcheck disable=SC2034 # used by the sourcing scripts
    GO="${go_bin}"
}

# Versions without the leading "v", and the Kubernetes minor number.
k8s_minor() {
    local rest="${K8S_VERSION#v1.}"
    echo "${rest%%.*}"
}

staging_version() {
    echo "v0.${K8S_VERSION#v1.}"
}

cache_root() {
    echo "${INVENTORY_SYNC_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME}/.cache}/inventory-sync}/controlplane"
}

bin_dir() {
    echo "$(cache_root)/k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}/bin"
}

# The node set depends only on the Kubernetes version (and the kube/ module graph).
node_bin_dir() {
    echo "$(cache_root)/node-k8s-${K8S_VERSION}/bin"
}
