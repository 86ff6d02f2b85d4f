#!/usr/bin/env bash
# Build Flux's source-controller and kustomize-controller from the pinned consumer modules
# (versions.env, */go.mod) into a cache dir outside the checkout, keyed by their versions.
# A no-op when the cached binaries were built from the current versions.env, go.mod, go.sum.
#
# Usage: build.sh                 build if needed; the last stdout line is the bin dir
#        build.sh --print-bin-dir print the bin dir only (no build, no checks)
#        build.sh --check         exit 0 iff the cached binaries are current
#        build.sh --crds          print the directories holding each controller's CRDs, read
#                                 from the Go module cache (downloaded if missing)
#
# Env: INVENTORY_SYNC_CACHE_DIR (default ${XDG_CACHE_HOME:-~/.cache}/inventory-sync),
#      FLUX_GO_PARALLEL (go build -p, default: number of CPUs).
# Cold: about 4 CPU-minutes per controller (8 min wall each on 2 busy cores); cached: 0.1 s.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
. "${HERE}/versions.env"
CONTROLLERS=(source-controller kustomize-controller)

die() {
    echo "flux: error: $*" >&2
    exit 1
}

CACHE="${INVENTORY_SYNC_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME}/.cache}/inventory-sync}/flux"
BIN_DIR="${CACHE}/source-controller-${SOURCE_CONTROLLER_VERSION}_kustomize-controller-${KUSTOMIZE_CONTROLLER_VERSION}/bin"

find_go() {
    GO="$(command -v go 2>/dev/null || true)"
    [[ -n "${GO}" || ! -x /usr/local/go/bin/go ]] || GO=/usr/local/go/bin/go
    [[ -n "${GO}" ]] || die "Go toolchain not found (on PATH or in /usr/local/go/bin)"
    export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
}

inputs_stamp() {
    cat "${HERE}/versions.env" "${HERE}"/*/go.mod "${HERE}"/*/go.sum | sha256sum | cut -d' ' -f1
}

is_current() {
    local c
    [[ -f "${BIN_DIR}/.stamp" && "$(cat "${BIN_DIR}/.stamp")" == "$(inputs_stamp)" ]] || return 1
    for c in "${CONTROLLERS[@]}"; do
        [[ -x "${BIN_DIR}/${c}" ]] || return 1
    done
}

# module_dir NAME -> the controller's module in the Go module cache
module_dir() {
    (cd "${HERE}/$1" && "${GO}" mod download "github.com/fluxcd/$1" &&
        "${GO}" list -m -f '{{.Dir}}' "github.com/fluxcd/$1")
}

build() {
    local staging c
    staging="$(mktemp -d "$(dirname "${BIN_DIR}")/.bin-XXXXXX")"
    trap 'rm -rf "${staging}"' EXIT
    for c in "${CONTROLLERS[@]}"; do
        echo "flux: building ${c} (${SECONDS}s)" >&2
        # As upstream's Dockerfile: CGO_ENABLED=0, -trimpath; plus -s -w (no debug info).
        (cd "${HERE}/${c}" && "${GO}" build -p "${FLUX_GO_PARALLEL:-$(nproc)}" -trimpath \
            -ldflags "-s -w" -o "${staging}/${c}" "github.com/fluxcd/${c}") ||
            die "go build of ${c} failed (see above)"
    done
    inputs_stamp >"${staging}/.stamp"
    chmod 755 "${staging}"
    rm -rf "${BIN_DIR}"
    mv "${staging}" "${BIN_DIR}"
    trap - EXIT
    echo "flux: built in ${SECONDS}s" >&2
}

main() {
    case "${1:-}" in
    --print-bin-dir)
        echo "${BIN_DIR}"
        return
        ;;
    --check)
        is_current
        return
        ;;
    --crds)
        find_go
        local c
        for c in "${CONTROLLERS[@]}"; do
            echo "$(module_dir "${c}")/config/crd/bases"
        done
        return
        ;;
    "") ;;
    *) die "unknown argument: $1 (see the header of $0)" ;;
    esac
    mkdir -p "$(dirname "${BIN_DIR}")"
    exec 9>"$(dirname "${BIN_DIR}")/.build.lock"
    command -v flock >/dev/null && flock 9
    if ! is_current; then
        find_go
        build
    fi
    echo "${BIN_DIR}"
}

main "$@"
