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

SC_SCRIPT="$FEDELTA_LOCAL_DIR/smscatcher.py"
SC_PIDFILE="$FEDELTA_RUN_DIR/smscatcher.pid"
SC_LOG="$FEDELTA_LOG_DIR/smscatcher.log"
# Unique to this stack's process (port and sms dir, as passed on its command line below).
SC_MATCH="smscatcher.py --host 127.0.0.1 --port $FEDELTA_SMS_PORT --sms-dir $FEDELTA_SMS_DIR "
START_TIMEOUT="${FEDELTA_SMS_START_TIMEOUT:-20}"
STOP_TIMEOUT="${FEDELTA_SMS_STOP_TIMEOUT:-10}"

cmd_start() {
    local pid t0
    ensure_state_dirs
    if pid="$(running_pid "$SC_PIDFILE" "$SC_MATCH")"; then
        log "already running on 127.0.0.1:$FEDELTA_SMS_PORT (pid $pid, sms in $FEDELTA_SMS_DIR)"
        return 0
    fi
    require_python
    require_port_free "$FEDELTA_SMS_PORT" "sms"
    mkdir -p -- "$FEDELTA_SMS_DIR"
    chmod 700 -- "$FEDELTA_SMS_DIR"  # it may live outside the state dir
    t0="$(now_s)"
    pid="$(start_daemon "$SC_PIDFILE" "$SC_LOG" \
        "$FEDELTA_PYTHON" "$SC_SCRIPT" --host 127.0.0.1 --port "$FEDELTA_SMS_PORT" \
        --sms-dir "$FEDELTA_SMS_DIR")"
    if ! wait_for_tcp 127.0.0.1 "$FEDELTA_SMS_PORT" "$START_TIMEOUT" "$pid"; then
        show_log_tail "$SC_LOG" 20
        stop_pid "$pid" 5 || true
        rm -f -- "$SC_PIDFILE"
        die "not listening on 127.0.0.1:$FEDELTA_SMS_PORT within $START_TIMEOUT s (log: $SC_LOG)"
    fi
    log "started on 127.0.0.1:$FEDELTA_SMS_PORT (pid $pid, sms in $FEDELTA_SMS_DIR) in $(elapsed_since "$t0") s"
}

cmd_stop() {
    local rc=0
    stop_daemon "$SC_PIDFILE" "$SC_MATCH" "$STOP_TIMEOUT" || rc=$?
    case "$rc" in
        0) log "stopped" ;;
        1) log "not running" ;;
        2) warn "killed after $STOP_TIMEOUT s without a clean shutdown (log: $SC_LOG)" ;;
    esac
}

cmd_status() {
    local pid
    if pid="$(running_pid "$SC_PIDFILE" "$SC_MATCH")"; then
        log "running on 127.0.0.1:$FEDELTA_SMS_PORT (pid $pid, sms in $FEDELTA_SMS_DIR)"
        return 0
    fi
    log "stopped"
    return 3
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 2
        ;;
esac
