#!/usr/bin/env bash
# Local fake SMS provider (deploy/local/smscatcher.py): every message becomes a .json file.
#
#   deploy/local/smscatcher.sh start    start on 127.0.0.1:$FEDELTA_SMS_PORT, wait until it listens
#   deploy/local/smscatcher.sh stop     SIGTERM, then SIGKILL after a deadline
#   deploy/local/smscatcher.sh status   exit 0 when running, 3 when stopped
#
# Env: FEDELTA_STATE_DIR, FEDELTA_SMS_PORT (default 8026), FEDELTA_SMS_DIR (default
# $FEDELTA_STATE_DIR/sms), FEDELTA_PYTHON (see lib.sh).

set -euo pipefail
FEDELTA_COMPONENT=smscatcher
# shellcheck source=deploy/local/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

: "${FEDELTA_SMS_PORT:=8026}"
: "${FEDELTA_SMS_DIR:=$FEDELTA_STATE_DIR/sms}"
FEDELTA_SMS_DIR="$(abspath "$FEDELTA_SMS_DIR")"
is_port "$FEDELTA_SMS_PORT" || die "FEDELTA_SMS_PORT='$FEDELTA_SMS_PORT' is not a TCP port number"

CATCHER_SCRIPT=smscatcher.py
CATCHER_PORT="$FEDELTA_SMS_PORT"
CATCHER_PORT_NAME=sms
CATCHER_DIR_FLAG=--sms-dir
CATCHER_DIR="$FEDELTA_SMS_DIR"
CATCHER_WHAT=sms
START_TIMEOUT="${FEDELTA_SMS_START_TIMEOUT:-20}"
STOP_TIMEOUT="${FEDELTA_SMS_STOP_TIMEOUT:-10}"
# shellcheck source=deploy/local/catcher.sh
source "$FEDELTA_LOCAL_DIR/catcher.sh"

catcher_main "$@"
