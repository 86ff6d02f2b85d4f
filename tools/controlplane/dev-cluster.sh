#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Run a local etcd + kube-apiserver in the background for development.
#
# Usage: dev-cluster.sh [start|stop|status|env]     (default: start)
#        env prints `export KUBECONFIG=... OPERATOR_KUBECONFIG=... PATH=...` for eval.
# The binaries are built first if needed (cached; the first build is slow).
# State (certs, tokens, kubeconfigs, logs, etcd data) lives outside the checkout in
# ${DEV_CLUSTER_STATE_DIR:-<cache>/inventory-sync/controlplane/dev-cluster}.
# Env: PYTHON (default python3; needs the `cryptography` package).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STATE_DIR="${DEV_CLUSTER_STATE_DIR:-$(cache_root)/dev-cluster}"
PYTHON="${PYTHON:-python3}"
REPO_ROOT="$(cd "${CP_DIR}/../.." && pwd)"

localcluster() {
    "${PYTHON}" "${CP_DIR}/localcluster.py" "$@"
}

start() {
    "${PYTHON}" -c 'import cryptography' 2>/dev/null ||
        die "${PYTHON} lacks the 'cryptography' package (pip install cryptography, or the [test] extra)"
    local bin_dir crds=()
    bin_dir="$("${CP_DIR}/build.sh" | tail -n 1)"
    if [[ -d "${REPO_ROOT}/crds" ]]; then
        crds=(--crds "${REPO_ROOT}/crds")
    fi
    localcluster start --state-dir "${STATE_DIR}" --bin-dir "${bin_dir}" "${crds[@]}" \
        --stop-command "$(stop_command)"
}

# The stop command to print: it must find this cluster's state again, so a custom
# DEV_CLUSTER_STATE_DIR is part of it.
stop_command() {
    local command="${DEV_CLUSTER_STOP_COMMAND:-${BASH_SOURCE[0]} stop}"
    if [[ -n "${DEV_CLUSTER_STATE_DIR:-}" ]]; then
        command="DEV_CLUSTER_STATE_DIR=$(printf '%q' "${STATE_DIR}") ${command}"
    fi
    echo "${command}"
}

case "${1:-start}" in
start) start ;;
stop) localcluster stop --state-dir "${STATE_DIR}" ;;
status) localcluster status --state-dir "${STATE_DIR}" ;;
env) localcluster env --state-dir "${STATE_DIR}" ;;
*) die "usage: $0 [start|stop|status|env]" ;;
esac
