#!/usr/bin/env bash
# The official contract libraries, from npm at the exact versions of
# deploy/contracts/package-lock.json: the AsyncAPI parser (@asyncapi/parser, the library the
# AsyncAPI CLI validates with: deploy/contracts/validate-asyncapi.mjs checks
# docs/events/asyncapi.yaml with it) and the CloudEvents SDK for JavaScript
# (deploy/contracts/parse-kafka-records.mjs: the contract tests parse real Kafka records with it).
# About 180 packages, 60 MB, seconds to install (the whole CLI was 1,500 packages, 1.5 GB).
#
#   deploy/local/node-tools.sh install    npm ci into deploy/contracts/node_modules (when the lock changed)
#   deploy/local/node-tools.sh validate [FILE]   validate docs/events/asyncapi.yaml (or FILE)
#                                                 with the AsyncAPI parser; warnings fail too
#
# Needs node >= 20 and npm. Install scripts are not run (--ignore-scripts): nothing we use needs
# them.

set -euo pipefail
FEDELTA_COMPONENT=node-tools
# shellcheck source=deploy/local/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

CONTRACTS_DIR="$FEDELTA_REPO_ROOT/deploy/contracts"
NODE_MODULES="$CONTRACTS_DIR/node_modules"
VALIDATE_ASYNCAPI="$CONTRACTS_DIR/validate-asyncapi.mjs"
LOCK="$CONTRACTS_DIR/package-lock.json"
MARKER="$NODE_MODULES/.installed-$(sha1sum "$LOCK" | cut -c1-12)"
ASYNCAPI_DOCUMENT="$FEDELTA_REPO_ROOT/docs/events/asyncapi.yaml"

require_node() {
    command -v node >/dev/null || die "node is not installed (node 20 or newer is needed)"
    command -v npm >/dev/null || die "npm is not installed"
    local major
    major="$(node -p 'process.versions.node.split(".")[0]')"
    ((major >= 20)) || die "node $major is too old: node 20 or newer is needed"
}

install() {
    if [[ -e "$MARKER" ]]; then
        return 0
    fi
    require_node
    log "installing the contract libraries from npm (deploy/contracts/package-lock.json)"
    # umask 077 (lib.sh) is for state with personal data; these are public packages.
    (umask 022 && npm ci --prefix "$CONTRACTS_DIR" --ignore-scripts --no-audit --no-fund \
        --loglevel=error)
    rm -f "$NODE_MODULES"/.installed-*
    touch "$MARKER"
}

validate() {
    install
    node "$VALIDATE_ASYNCAPI" "${1:-$ASYNCAPI_DOCUMENT}"
}

case "${1:-}" in
    install) install ;;
    validate) validate "${2:-}" ;;
    *)
        echo "usage: $0 install|validate [FILE]" >&2
        exit 2
        ;;
esac
