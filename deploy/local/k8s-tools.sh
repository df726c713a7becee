#!/usr/bin/env bash
# The tools that check the deployment files without a cluster or a Docker engine:
# kustomize renders deploy/k8s/ (tests/unit/test_k8s_manifests.py), and compose-check loads
# docker-compose.yml with the loader `docker compose` uses (tests/unit/test_compose.py).
#
#   deploy/local/k8s-tools.sh install   build both into .fedelta/tools/bin (once: a second run
#                                       finds them up to date and does nothing)
#   deploy/local/k8s-tools.sh path      print the kustomize binary's path
#
# Both are Go modules from the Go module proxy (no release download is reachable from CI),
# built with the machine's Go toolchain; compose-check's source is deploy/docker/composecheck.
# The Kubernetes JSON schemas come with the pinned kubernetes-validate package of the
# virtualenv's dev extra.

set -euo pipefail
FEDELTA_COMPONENT=k8s-tools
# shellcheck source=deploy/local/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

# v5.8 needs Go 1.27; keep this in step with the Go on the machines (go version).
KUSTOMIZE_VERSION=v5.7.1
TOOLS_BIN="${FEDELTA_TOOLS_DIR:-$FEDELTA_REPO_ROOT/.fedelta/tools}/bin"
KUSTOMIZE="$TOOLS_BIN/kustomize"
COMPOSE_CHECK="$TOOLS_BIN/compose-check"
COMPOSE_CHECK_SRC="$FEDELTA_REPO_ROOT/deploy/docker/composecheck"

installed_version() {
    [[ -x "$KUSTOMIZE" ]] && "$KUSTOMIZE" version 2>/dev/null || true
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

install_kustomize() {
    if [[ "$(installed_version)" == "$KUSTOMIZE_VERSION" ]]; then
        return 0
    fi
    require_go "kustomize $KUSTOMIZE_VERSION"
    mkdir -p -- "$TOOLS_BIN"
    log "building kustomize $KUSTOMIZE_VERSION into $TOOLS_BIN (once; about a minute)"
    # GOFLAGS from the caller could point the build elsewhere (-mod=vendor): not for a tool.
    GOBIN="$TOOLS_BIN" GOFLAGS=-buildvcs=false GOTOOLCHAIN=local \
        go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
    [[ "$(installed_version)" == "$KUSTOMIZE_VERSION" ]] ||
        die "kustomize at $KUSTOMIZE does not report $KUSTOMIZE_VERSION"
    log "kustomize $KUSTOMIZE_VERSION ready"
}

cmd_install() {
    install_kustomize
    install_compose_check
}

command="${1:-}"
case "$command" in
    install) cmd_install ;;
    path) printf '%s\n' "$KUSTOMIZE" ;;
    *) die "usage: $0 install|path" ;;
esac
