#!/usr/bin/env bash
# Local SMTP sink (deploy/local/mailcatcher.py): every message becomes an .eml file.
#
#   deploy/local/mailcatcher.sh start    start on 127.0.0.1:$FEDELTA_SMTP_PORT, wait until it listens
#   deploy/local/mailcatcher.sh stop     SIGTERM, then SIGKILL after a deadline
#   deploy/local/mailcatcher.sh status   exit 0 when running, 3 when stopped
#
# Env: FEDELTA_STATE_DIR, FEDELTA_SMTP_PORT, FEDELTA_MAIL_DIR, FEDELTA_PYTHON (see lib.sh).

set -euo pipefail
FEDELTA_COMPONENT=mailcatcher
# shellcheck source=deploy/local/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

CATCHER_SCRIPT=mailcatcher.py
CATCHER_PORT="$FEDELTA_SMTP_PORT"
CATCHER_PORT_NAME=smtp
CATCHER_DIR_FLAG=--mail-dir
CATCHER_DIR="$FEDELTA_MAIL_DIR"
CATCHER_WHAT=mail
START_TIMEOUT="${FEDELTA_SMTP_START_TIMEOUT:-20}"
STOP_TIMEOUT="${FEDELTA_SMTP_STOP_TIMEOUT:-10}"
# shellcheck source=deploy/local/catcher.sh
source "$FEDELTA_LOCAL_DIR/catcher.sh"

catcher_main "$@"
