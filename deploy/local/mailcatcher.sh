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

MC_SCRIPT="$FEDELTA_LOCAL_DIR/mailcatcher.py"
MC_PIDFILE="$FEDELTA_RUN_DIR/mailcatcher.pid"
MC_LOG="$FEDELTA_LOG_DIR/mailcatcher.log"
# Unique to this stack's process (port and mail dir, as passed on its command line below).
MC_MATCH="mailcatcher.py --host 127.0.0.1 --port $FEDELTA_SMTP_PORT --mail-dir $FEDELTA_MAIL_DIR "
START_TIMEOUT="${FEDELTA_SMTP_START_TIMEOUT:-20}"
STOP_TIMEOUT="${FEDELTA_SMTP_STOP_TIMEOUT:-10}"

cmd_start() {
    local pid t0
    ensure_state_dirs
    if pid="$(running_pid "$MC_PIDFILE" "$MC_MATCH")"; then
        log "already running on 127.0.0.1:$FEDELTA_SMTP_PORT (pid $pid, mail in $FEDELTA_MAIL_DIR)"
        return 0
    fi
    require_python
    require_port_free "$FEDELTA_SMTP_PORT" "smtp"
    mkdir -p -- "$FEDELTA_MAIL_DIR"
    chmod 700 -- "$FEDELTA_MAIL_DIR"  # it may live outside the state dir
    t0="$(now_s)"
    pid="$(start_daemon "$MC_PIDFILE" "$MC_LOG" \
        "$FEDELTA_PYTHON" "$MC_SCRIPT" --host 127.0.0.1 --port "$FEDELTA_SMTP_PORT" \
        --mail-dir "$FEDELTA_MAIL_DIR")"
    if ! wait_for_tcp 127.0.0.1 "$FEDELTA_SMTP_PORT" "$START_TIMEOUT" "$pid"; then
        show_log_tail "$MC_LOG" 20
        stop_pid "$pid" 5 || true
        rm -f -- "$MC_PIDFILE"
        die "not listening on 127.0.0.1:$FEDELTA_SMTP_PORT within $START_TIMEOUT s (log: $MC_LOG)"
    fi
    log "started on 127.0.0.1:$FEDELTA_SMTP_PORT (pid $pid, mail in $FEDELTA_MAIL_DIR) in $(elapsed_since "$t0") s"
}

cmd_stop() {
    local rc=0
    stop_daemon "$MC_PIDFILE" "$MC_MATCH" "$STOP_TIMEOUT" || rc=$?
    case "$rc" in
        0) log "stopped" ;;
        1) log "not running" ;;
        2) warn "killed after $STOP_TIMEOUT s without a clean shutdown (log: $MC_LOG)" ;;
    esac
}

cmd_status() {
    local pid
    if pid="$(running_pid "$MC_PIDFILE" "$MC_MATCH")"; then
        log "running on 127.0.0.1:$FEDELTA_SMTP_PORT (pid $pid, mail in $FEDELTA_MAIL_DIR)"
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
