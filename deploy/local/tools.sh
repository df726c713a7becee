#!/usr/bin/env bash
# promtool, which checks the Prometheus alert rules and scrape configuration of
# deploy/observability/ in `make test` (tests/contract/test_observability_config.py).
#
#   deploy/local/tools.sh install   put promtool into .fedelta/tools/bin (once: a second run finds
#                                   it and does nothing)
#   deploy/local/tools.sh path      print the promtool binary's path
#
# promtool is the release binary of Debian's `prometheus` package: `apt-get download` fetches the
# package (about 20 MB, seconds) and only usr/bin/promtool is taken out of it. Nothing is
# installed into the system, so no Prometheus server is set up or started, and no root is
# needed, except to refresh Debian's package lists when they are missing or stale (as root,
# `apt-get update`; otherwise the script says what to run). FEDELTA_PROMTOOL=/path/to/promtool
# uses a promtool of your own instead (a machine without apt).
#
# Debian 12 ships Prometheus 2.42: `promtool check rules`, `test rules` and `check config` of our
# files pass with it, and the same files run on the Prometheus 3 of docker-compose.yml. A rule
# using what only Prometheus 3 knows would be refused here: then build promtool v3 from the Go
# module proxy (`go install -tags remove_all_sd github.com/prometheus/prometheus/cmd/promtool@
# v0.3MM.P`, a few CPU-minutes) and point FEDELTA_PROMTOOL at it.

set -euo pipefail
FEDELTA_COMPONENT=tools
# shellcheck source=deploy/local/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

PROMTOOL_PACKAGE=prometheus
TOOLS_DIR="${FEDELTA_TOOLS_DIR:-$FEDELTA_REPO_ROOT/.fedelta/tools}"
TOOLS_BIN="$TOOLS_DIR/bin"
PROMTOOL="${FEDELTA_PROMTOOL:-$TOOLS_BIN/promtool}"
# The Debian package version the binary came from.
PROMTOOL_STAMP="$TOOLS_DIR/promtool.version"

promtool_runs() { "$PROMTOOL" --version >/dev/null 2>&1; }

candidate_version() {
    apt-cache policy "$PROMTOOL_PACKAGE" 2>/dev/null | awk '/Candidate:/ { print $2 }'
}

refresh_package_lists() {
    is_root || die "Debian's package lists do not offer $PROMTOOL_PACKAGE (missing or stale): run 'sudo apt-get update', then this again"
    log "refreshing Debian's package lists (apt-get update)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null ||
        die "apt-get update failed"
}

# download_package DIR VERSION: the .deb of that version into DIR (apt's sandbox user must be
# able to write there).
download_package() {
    local dir="$1" version="$2"
    chmod 755 -- "$dir"
    if is_root && id _apt >/dev/null 2>&1; then
        chown _apt -- "$dir"
    fi
    (cd -- "$dir" && apt-get download -qq "$PROMTOOL_PACKAGE=$version" >/dev/null)
}

fetch_promtool() {
    local version work
    command -v apt-get >/dev/null ||
        die "apt-get not found: set FEDELTA_PROMTOOL to a promtool binary (Prometheus 2.42 or newer)"
    version="$(candidate_version)"
    if [[ -z "$version" || "$version" == "(none)" ]]; then
        refresh_package_lists
        version="$(candidate_version)"
    fi
    [[ -n "$version" && "$version" != "(none)" ]] ||
        die "no $PROMTOOL_PACKAGE package in Debian's package lists"
    work="$(mktemp -d)"
    # shellcheck disable=SC2064 # expand now: work is local
    trap "rm -rf -- '$work'" EXIT
    log "taking promtool out of Debian's $PROMTOOL_PACKAGE $version"
    if ! download_package "$work" "$version"; then
        # Lists older than the mirror name a version it no longer has.
        refresh_package_lists
        version="$(candidate_version)"
        download_package "$work" "$version" || die "apt-get download $PROMTOOL_PACKAGE failed"
    fi
    dpkg-deb --fsys-tarfile "$work"/"$PROMTOOL_PACKAGE"_*.deb |
        tar -xO ./usr/bin/promtool >"$work/promtool" ||
        die "no usr/bin/promtool in $PROMTOOL_PACKAGE $version"
    mkdir -p -- "$TOOLS_BIN"
    install -m 755 -- "$work/promtool" "$TOOLS_BIN/promtool"
    printf '%s\n' "$version" >"$PROMTOOL_STAMP"
}

install_promtool() {
    promtool_runs && return 0
    [[ -z "${FEDELTA_PROMTOOL:-}" ]] || die "FEDELTA_PROMTOOL=$FEDELTA_PROMTOOL does not run"
    fetch_promtool
    promtool_runs || die "promtool at $PROMTOOL does not run"
    log "promtool ready ($PROMTOOL_PACKAGE $(<"$PROMTOOL_STAMP"))"
}

command="${1:-}"
case "$command" in
    install) install_promtool ;;
    path) printf '%s\n' "$PROMTOOL" ;;
    *) die "usage: $0 install|path" ;;
esac
