#!/usr/bin/env bash
# The official contract libraries, from npm at the exact versions of
# deploy/contracts/package-lock.json: the AsyncAPI parser (@asyncapi/parser, the library the
# AsyncAPI CLI validates with: deploy/contracts/validate-asyncapi.mjs checks
# docs/events/asyncapi.yaml with it) and the CloudEvents SDK for JavaScript
# (deploy/contracts/parse-kafka-records.mjs: the contract tests parse real Kafka records with it).
# About 180 packages, 60 MB, seconds to install (the whole CLI was 1,500 packages, 1.5 GB).
# Beside them axe-core, the accessibility engine the browser tests inject into pages
# (tests/support/browser.py): one file, axe.min.js, out of the npm package at a pinned version
# whose tarball must match a pinned checksum, kept in the tools cache (no CDN at test time).
#
#   deploy/local/node-tools.sh install    npm ci into deploy/contracts/node_modules (when the lock
#                                         changed), and axe-core into .fedelta/tools (once)
#   deploy/local/node-tools.sh axe-path   print where axe.min.js is (after install)
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
# axe-core's version and the npm registry's sha512 of its tarball (`npm view axe-core@VERSION
# dist.integrity`): raise both together.
AXE_VERSION=4.14.1
AXE_INTEGRITY=sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==
AXE_DIR="${FEDELTA_TOOLS_DIR:-$FEDELTA_REPO_ROOT/.fedelta/tools}/axe-core-$AXE_VERSION"
AXE_JS="$AXE_DIR/axe.min.js"

require_node() {
    command -v node >/dev/null || die "node is not installed (node 20 or newer is needed)"
    command -v npm >/dev/null || die "npm is not installed"
    local major
    major="$(node -p 'process.versions.node.split(".")[0]')"
    ((major >= 20)) || die "node $major is too old: node 20 or newer is needed"
}

install() {
    install_contract_libraries
    install_axe
}

install_contract_libraries() {
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

# npm pack fetches the tarball alone (no package.json, no node_modules for one file); its sha512
# is checked here against the pin, whatever npm's cache holds.
install_axe() {
    [[ -s "$AXE_JS" ]] && return 0
    require_node
    log "fetching axe-core $AXE_VERSION from npm (the browser tests' accessibility engine)"
    local work integrity
    work="$(mktemp -d)"
    # shellcheck disable=SC2064 # expand now: work is local
    trap "rm -rf -- '$work'" EXIT
    (cd -- "$work" && npm pack "axe-core@$AXE_VERSION" --silent --loglevel=error >/dev/null) ||
        die "npm pack axe-core@$AXE_VERSION failed"
    integrity="sha512-$(openssl dgst -sha512 -binary "$work/axe-core-$AXE_VERSION.tgz" | base64 -w 0)"
    [[ "$integrity" == "$AXE_INTEGRITY" ]] ||
        die "axe-core-$AXE_VERSION.tgz has $integrity, not the pinned $AXE_INTEGRITY"
    tar -xzf "$work/axe-core-$AXE_VERSION.tgz" -C "$work" package/axe.min.js package/LICENSE ||
        die "no axe.min.js in axe-core $AXE_VERSION"
    # The file last and renamed into place: a half-copied axe.min.js never counts as installed.
    (umask 022 && mkdir -p -- "$AXE_DIR" && cp -- "$work/package/LICENSE" "$AXE_DIR/" &&
        cp -- "$work/package/axe.min.js" "$AXE_JS.part" && mv -- "$AXE_JS.part" "$AXE_JS")
}

validate() {
    install_contract_libraries
    node "$VALIDATE_ASYNCAPI" "${1:-$ASYNCAPI_DOCUMENT}"
}

case "${1:-}" in
    install) install ;;
    validate) validate "${2:-}" ;;
    axe-path) printf '%s\n' "$AXE_JS" ;;
    *)
        echo "usage: $0 install|validate [FILE]|axe-path" >&2
        exit 2
        ;;
esac
