#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Build kube-apiserver, kubectl, etcd and helm from the pinned Go modules in
# tools/controlplane/{kube,etcd,helm} into a per-version cache dir outside the
# checkout. A no-op when the cached binaries already report the pinned versions.
#
# Usage: build.sh              build if needed; last stdout line is the bin dir
#        build.sh --print-bin-dir   print the bin dir only (no build, no checks)
#        build.sh --check      exit 0 iff the cached binaries are complete and current
#        build.sh --node [--print-bin-dir | --check]
#                              the same for the node set (kubelet, kube-controller-manager,
#                              kube-scheduler, kube-proxy from the kube/ module, and the
#                              pause binary from the same k8s.io/kubernetes module, static, by
#                              gcc) in a bin dir of its own; the core set is built first.
#
# Env: INVENTORY_SYNC_CACHE_DIR (default ${XDG_CACHE_HOME:-~/.cache}/inventory-sync),
#      CONTROLPLANE_GO_PARALLEL (go build -p, default: number of CPUs).
# Everything except the final bin dir line goes to stderr.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BIN_DIR="$(bin_dir)"
BINARIES=(kube-apiserver kubectl etcd helm)
NODE_BIN_DIR="$(node_bin_dir)"

# binary_version NAME -> the version string the cached binary reports.
binary_version() {
    local exe="${BIN_DIR}/$1"
    case "$1" in
    kube-apiserver) "${exe}" --version 2>/dev/null | sed -n 's/^Kubernetes //p' ;;
    kubelet | kube-controller-manager | kube-scheduler | kube-proxy)
        "${NODE_BIN_DIR}/$1" --version 2>/dev/null | sed -n 's/^Kubernetes //p'
        ;;
    kubectl) "${exe}" version --client 2>/dev/null | sed -n 's/^Client Version: //p' ;;
    etcd) "${exe}" --version 2>/dev/null | sed -n 's/^etcd Version: /v/p' ;;
    helm) "${exe}" version --template '{{.Version}}' 2>/dev/null ;;
    esac
}

expected_version() {
    case "$1" in
    kube-apiserver | kubectl | kubelet | kube-controller-manager | kube-scheduler | kube-proxy)
        echo "${K8S_VERSION}"
        ;;
    etcd) echo "${ETCD_VERSION}" ;;
    helm) echo "${HELM_VERSION}" ;;
    esac
}

# The stamp ties the cached binaries to the exact module graph, so editing a
# go.sum (e.g. a security bump of an indirect dependency) triggers a rebuild.
inputs_stamp() {
    cat "${CP_DIR}/versions.env" "${CP_DIR}"/{kube,etcd,helm}/go.{mod,sum} | sha256sum | cut -d' ' -f1
}

cache_is_current() {
    local b
    [[ -f "${BIN_DIR}/.stamp" && "$(cat "${BIN_DIR}/.stamp")" == "$(inputs_stamp)" ]] || return 1
    for b in "${BINARIES[@]}"; do
        [[ -x "${BIN_DIR}/${b}" && "$(binary_version "${b}")" == "$(expected_version "${b}")" ]] || return 1
    done
}

# Fetch all modules first so a missing proxy gives one clear message instead of
# a wall of compiler errors. Served from GOMODCACHE when already downloaded.
download_modules() {
    local m errlog
    errlog="$(mktemp)"
    for m in "$@"; do
        if ! (cd "${CP_DIR}/${m}" && "${GO}" mod download) >"${errlog}" 2>&1; then
            tail -n 1 "${errlog}" >&2
            rm -f "${errlog}"
            die "cannot download Go modules for ${m}/ (GOPROXY=$("${GO}" env GOPROXY)); is the module proxy reachable?"
        fi
    done
    rm -f "${errlog}"
}

# go_build DIR OUTPUT LDFLAGS TAGS PKG... (OUTPUT: a file, or a dir ending in /)
go_build() {
    local dir="$1" out="$2" ldflags="$3" tags="$4"
    shift 4
    (cd "${CP_DIR}/${dir}" && "${GO}" build -p "${CONTROLPLANE_GO_PARALLEL:-$(nproc)}" \
        -trimpath -tags "${tags}" -ldflags "${ldflags}" -o "${out}" "$@")
}

# module_time DIR MODULE -> release timestamp from the proxy (deterministic buildDate).
module_time() {
    (cd "${CP_DIR}/$1" && "${GO}" list -m -f '{{if .Time}}{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' "$2")
}

# k8s_ldflags DIR -> version ldflags for binaries of the k8s.io/kubernetes module in DIR/.
k8s_ldflags() {
    local ldflags="-s -w" pkg key
    local -A vars=(
        [gitVersion]="${K8S_VERSION}"
        [gitMajor]="1"
        [gitMinor]="$(k8s_minor)"
        [gitTreeState]="clean"
        [buildDate]="$(module_time "$1" k8s.io/kubernetes)"
    )
    # Same fields on both packages: component-base feeds /version of the
    # server, client-go/pkg/version feeds `kubectl version --client`.
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        for key in "${!vars[@]}"; do
            ldflags+=" -X ${pkg}.${key}=${vars[${key}]}"
        done
    done
    echo "${ldflags}"
}

build_kube() {
    # Release tags of hack/lib/golang.sh (grpcnotrace drops x/net/trace).
    go_build kube "$1/" "$(k8s_ldflags kube)" selinux,notest,grpcnotrace \
        k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
}

build_etcd() {
    # etcd's version is a constant in go.etcd.io/etcd/api/v3/version; nothing to inject.
    go_build etcd "$1/etcd" "-s -w" "" go.etcd.io/etcd/server/v3
}

build_helm() {
    local out="$1" client_go major minor ldflags
    # Helm's Makefile derives its default "cluster" version for template/lint
    # from the k8s.io/client-go it is built with; do the same.
    client_go="$(cd "${CP_DIR}/helm" && "${GO}" list -m -f '{{.Version}}' k8s.io/client-go)"
    client_go="${client_go#v}"
    major=$((${client_go%%.*} + 1))
    minor="$(echo "${client_go}" | cut -d. -f2)"
    ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
    ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
    ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=${major}"
    ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=${minor}"
    ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=${major}"
    ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${minor}"
    go_build helm "${out}/helm" "${ldflags}" "" helm.sh/helm/v3/cmd/helm
}

build_all() {
    local staging b
    staging="$(mktemp -d "$(dirname "${BIN_DIR}")/.bin-XXXXXX")"
    chmod 755 "${staging}"
    # Build into a sibling temp dir and swap it in, so an interrupted build
    # never leaves a half-populated bin dir that looks valid.
    trap 'rm -rf "${staging}"' EXIT
    log "building ${K8S_VERSION} / etcd ${ETCD_VERSION} / helm ${HELM_VERSION} into ${BIN_DIR}"
    build_kube "${staging}"
    log "kube-apiserver + kubectl done (${SECONDS}s)"
    build_etcd "${staging}"
    log "etcd done (${SECONDS}s)"
    build_helm "${staging}"
    log "helm done (${SECONDS}s)"
    inputs_stamp >"${staging}/.stamp"
    rm -rf "${BIN_DIR}"
    mv "${staging}" "${BIN_DIR}"
    trap - EXIT
    for b in "${BINARIES[@]}"; do
        [[ "$(binary_version "${b}")" == "$(expected_version "${b}")" ]] ||
            die "${b} reports '$(binary_version "${b}")', expected '$(expected_version "${b}")'"
    done
}

# -- the node set (build.sh --node)

node_inputs_stamp() {
    cat "${CP_DIR}/versions.env" "${CP_DIR}"/node/go.{mod,sum} | sha256sum | cut -d' ' -f1
}

node_cache_is_current() {
    local b
    [[ -f "${NODE_BIN_DIR}/.stamp" && "$(cat "${NODE_BIN_DIR}/.stamp")" == "$(node_inputs_stamp)" ]] || return 1
    [[ -x "${NODE_BIN_DIR}/pause" && -f "${NODE_BIN_DIR}/pause.tag" ]] || return 1
    for b in "${NODE_BINARIES[@]}"; do
        [[ -x "${NODE_BIN_DIR}/${b}" && "$(binary_version "${b}")" == "${K8S_VERSION}" ]] || return 1
    done
}

# build_pause OUT_DIR: the sandbox ("pause") binary from the module's build/pause/linux/pause.c,
# compiled as upstream's build/pause/Makefile does (static, -Os), and its image tag in pause.tag.
build_pause() {
    local out="$1" src tag
    command -v gcc >/dev/null || die "gcc not found (apt-get install gcc libc6-dev): needed for the pause binary"
    src="$(cd "${CP_DIR}/node" && "${GO}" list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause"
    [[ -f "${src}/linux/pause.c" ]] || die "${src}/linux/pause.c missing from the k8s.io/kubernetes module"
    tag="$(sed -n 's/^TAG ?= *//p' "${src}/Makefile")"
    [[ -n "${tag}" ]] || die "no TAG in ${src}/Makefile"
    gcc -Os -Wall -Werror -static "-DVERSION=v${tag}-${K8S_VERSION}" -o "${out}/pause" "${src}/linux/pause.c"
    echo "${tag}" >"${out}/pause.tag"
}

build_node() {
    local staging cmd pkgs=()
    staging="$(mktemp -d "$(dirname "${NODE_BIN_DIR}")/.bin-XXXXXX")"
    chmod 755 "${staging}"
    trap 'rm -rf "${staging}"' EXIT
    log "building ${NODE_BINARIES[*]} ${K8S_VERSION} and pause into ${NODE_BIN_DIR}"
    for cmd in "${NODE_BINARIES[@]}"; do
        pkgs+=("k8s.io/kubernetes/cmd/${cmd}")
    done
    go_build node "${staging}/" "$(k8s_ldflags node)" selinux,notest,grpcnotrace "${pkgs[@]}"
    log "node binaries done (${SECONDS}s)"
    build_pause "${staging}"
    node_inputs_stamp >"${staging}/.stamp"
    rm -rf "${NODE_BIN_DIR}"
    mv "${staging}" "${NODE_BIN_DIR}"
    trap - EXIT
    node_cache_is_current || die "the node binaries just built do not report ${K8S_VERSION}"
}

ensure_core() {
    if cache_is_current; then
        log "cached binaries are current"
    else
        find_go
        download_modules kube etcd helm
        build_all
        log "build finished in ${SECONDS}s"
    fi
}

ensure_node() {
    if node_cache_is_current; then
        log "cached node binaries are current"
    else
        find_go
        download_modules node
        build_node
        log "node build finished in ${SECONDS}s"
    fi
}

main() {
    local node=""
    if [[ "${1:-}" == "--node" ]]; then
        node=1
        shift
    fi
    case "${1:-}" in
    --print-bin-dir)
        if [[ -n "${node}" ]]; then echo "${NODE_BIN_DIR}"; else echo "${BIN_DIR}"; fi
        return
        ;;
    --check)
        cache_is_current || return 1
        [[ -z "${node}" ]] || node_cache_is_current
        return
        ;;
    "") ;;
    *) die "unknown argument: $1 (see the header of $0)" ;;
    esac
    mkdir -p "$(dirname "${BIN_DIR}")"
    # Serialise concurrent callers (pytest + dev-cluster.sh) on one lock file.
    exec 9>"$(dirname "${BIN_DIR}")/.build.lock"
    command -v flock >/dev/null && flock 9
    ensure_core
    if [[ -n "${node}" ]]; then
        mkdir -p "$(dirname "${NODE_BIN_DIR}")"
        ensure_node
        echo "${NODE_BIN_DIR}"
    else
        echo "${BIN_DIR}"
    fi
}

main "$@"
