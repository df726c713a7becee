#!/usr/bin/env bash
# promtool, which checks the Prometheus alert rules of deploy/observability/ in `make test`
# (tests/unit/test_observability_config.py).
#
#   deploy/local/tools.sh install   build promtool into .fedelta/tools/bin (once: a second run
#                                   finds it at the pinned version and does nothing)
#   deploy/local/tools.sh path      print the promtool binary's path
#
# promtool is a Go module (github.com/prometheus/prometheus, whose v3.x releases are the Go
# module versions v0.3xx.y) from the Go module proxy: no release download is reachable from
# CI. Built with the machine's Go toolchain, without the service discoveries of the cloud
# providers (build tag remove_all_sd: checking rules and static scrape configurations needs
# none of them, and they are most of the build). The first build takes minutes (about 7 CPU
# minutes with them, much less without); later runs find the binary and do nothing.

set -euo pipefail
FEDELTA_COMPONENT=tools
# shellcheck source=deploy/local/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

# Module version v0.316.0 is Prometheus v3.16.0 (v0.3MM.P is v3.MM.P). Keep it in step with the
# Go on the machines: the module's go directive must not be newer than `go version`.
PROMTOOL_MODULE=github.com/prometheus/prometheus/cmd/promtool
PROMTOOL_VERSION=v0.316.0
TOOLS_DIR="${FEDELTA_TOOLS_DIR:-$FEDELTA_REPO_ROOT/.fedelta/tools}"
TOOLS_BIN="$TOOLS_DIR/bin"
PROMTOOL="$TOOLS_BIN/promtool"
PROMTOOL_TAGS=remove_all_sd
# `go install` leaves no version in the binary: the stamp says which one was built, and how.
PROMTOOL_STAMP="$TOOLS_DIR/promtool.version"

promtool_up_to_date() {
    [[ -x "$PROMTOOL" && -r "$PROMTOOL_STAMP" &&
        "$(<"$PROMTOOL_STAMP")" == "$PROMTOOL_VERSION $PROMTOOL_TAGS" ]]
}

install_promtool() {
    promtool_up_to_date && return 0
    command -v go >/dev/null ||
        die "Go is needed to build promtool (the machine's Go, or apt-get install golang)"
    mkdir -p -- "$TOOLS_BIN"
    log "building promtool $PROMTOOL_VERSION into $TOOLS_BIN (once; a few minutes)"
    rm -f -- "$PROMTOOL_STAMP"
    # GOFLAGS from the caller could point the build elsewhere (-mod=vendor): not for a tool.
    GOBIN="$TOOLS_BIN" GOFLAGS=-buildvcs=false GOTOOLCHAIN=local \
        go install -tags "$PROMTOOL_TAGS" "$PROMTOOL_MODULE@$PROMTOOL_VERSION"
    "$PROMTOOL" --version >/dev/null 2>&1 || die "promtool at $PROMTOOL does not run"
    printf '%s\n' "$PROMTOOL_VERSION $PROMTOOL_TAGS" >"$PROMTOOL_STAMP"
    log "promtool $PROMTOOL_VERSION ready"
}

command="${1:-}"
case "$command" in
    install) install_promtool ;;
    path) printf '%s\n' "$PROMTOOL" ;;
    *) die "usage: $0 install|path" ;;
esac
