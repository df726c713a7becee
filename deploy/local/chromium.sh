#!/usr/bin/env bash
# Debian's Chromium, the browser the web's tests drive headless (tests/support/browser.py, through
# the Python `playwright` package pointed at this binary: Playwright never downloads a browser).
#
#   deploy/local/chromium.sh install   apt-get install chromium when it is missing (root only;
#                                      otherwise says what to run). Quick when already there.
#   deploy/local/chromium.sh path      print the binary's path
#   deploy/local/chromium.sh version   print its version ("Chromium 1NN.0.NNNN.NN ...")
#
# The package and what it depends on are about 120 MB from Debian's mirror (seconds to a minute,
# once; nothing after: a second run only asks the binary its version); chromium-driver is not needed: Playwright speaks the DevTools
# protocol itself. fonts-dejavu-core comes with it so that pages render text the same way on
# every machine (without a font, screenshots show boxes).
# FEDELTA_CHROMIUM=/path/to/chromium uses a Chromium of your own instead (a machine without apt).

set -euo pipefail
FEDELTA_COMPONENT=chromium
# shellcheck source=deploy/local/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

CHROMIUM="${FEDELTA_CHROMIUM:-/usr/bin/chromium}"
PACKAGES=(chromium fonts-dejavu-core)

chromium_version() { "$CHROMIUM" --version 2>/dev/null; }

install_chromium() {
    if [[ -x "$CHROMIUM" ]] && chromium_version >/dev/null; then
        return 0
    fi
    [[ -z "${FEDELTA_CHROMIUM:-}" ]] || die "FEDELTA_CHROMIUM=$FEDELTA_CHROMIUM does not run"
    command -v apt-get >/dev/null ||
        die "apt-get not found: set FEDELTA_CHROMIUM to a Chromium binary"
    ensure_state_dirs
    local t0
    t0="$(now_s)"
    apt_install "${PACKAGES[@]}"
    chromium_version >/dev/null || die "chromium installed but $CHROMIUM --version fails"
    log "$(chromium_version) ready in $(elapsed_since "$t0") s"
}

case "${1:-}" in
    install) install_chromium ;;
    path) printf '%s\n' "$CHROMIUM" ;;
    version) chromium_version || die "no Chromium at $CHROMIUM: run $0 install" ;;
    *) die "usage: $0 install|path|version" ;;
esac
