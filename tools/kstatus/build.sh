#!/usr/bin/env bash
# Build tools/kstatus (the real sigs.k8s.io/cli-utils kstatus, pinned in go.mod)
# into a cache dir outside the checkout, keyed by the cli-utils version. A no-op
# when the cached binary was built from the current go.mod, go.sum and main.go.
#
# Usage: build.sh           build if needed; the last stdout line is the binary
#        build.sh --print   print the binary's path only (no build, no checks)
#        build.sh --check   exit 0 iff the cached binary is current
#
# Env: INVENTORY_SYNC_CACHE_DIR (default ${XDG_CACHE_HOME:-~/.cache}/inventory-sync).
# Everything except the final path goes to stderr.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() {
    echo "kstatus: error: $*" >&2
    exit 1
}

version() {
    sed -n 's#^[[:space:]]*\(require \)\{0,1\}sigs\.k8s\.io/cli-utils \(v[^ ]*\).*#\2#p' "${HERE}/go.mod"
}

CACHE="${INVENTORY_SYNC_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME}/.cache}/inventory-sync}/kstatus"
BIN_DIR="${CACHE}/cli-utils-$(version)"
BIN="${BIN_DIR}/kstatus"

# The stamp ties the binary to its sources, so a go.sum bump rebuilds it.
inputs_stamp() {
    cat "${HERE}"/go.mod "${HERE}"/go.sum "${HERE}"/main.go | sha256sum | cut -d' ' -f1
}

is_current() {
    [[ -x "${BIN}" && -f "${BIN_DIR}/.stamp" && "$(cat "${BIN_DIR}/.stamp")" == "$(inputs_stamp)" ]]
}

main() {
    case "${1:-}" in
    --print)
        echo "${BIN}"
        return
        ;;
    --check)
        is_current
        return
        ;;
    "") ;;
    *) die "unknown argument: $1 (see the header of $0)" ;;
    esac
    mkdir -p "${CACHE}"
    exec 9>"${CACHE}/.build.lock"
    command -v flock >/dev/null && flock 9
    if ! is_current; then
        local go staging
        go="$(command -v go 2>/dev/null || true)"
        [[ -n "${go}" || ! -x /usr/local/go/bin/go ]] || go=/usr/local/go/bin/go
        [[ -n "${go}" ]] || die "Go toolchain not found (on PATH or in /usr/local/go/bin)"
        # Build beside the target and swap it in: an interrupted build leaves nothing
        # that looks valid. GOTOOLCHAIN=local: never download a toolchain.
        staging="$(mktemp -d "${CACHE}/.bin-XXXXXX")"
        trap 'rm -rf "${staging}"' EXIT
        (cd "${HERE}" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly \
            "${go}" build -trimpath -ldflags "-s -w" -o "${staging}/kstatus" .) ||
            die "go build failed (is the Go module proxy reachable?)"
        inputs_stamp >"${staging}/.stamp"
        chmod 755 "${staging}"
        rm -rf "${BIN_DIR}"
        mv "${staging}" "${BIN_DIR}"
        trap - EXIT
        echo "kstatus: built ${BIN} in ${SECONDS}s" >&2
    fi
    echo "${BIN}"
}

main "$@"
