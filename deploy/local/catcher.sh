# shellcheck shell=bash
# What the mail catcher and the fake SMS provider share: a local sink is one Python process on
# 127.0.0.1:$CATCHER_PORT that writes what it receives into $CATCHER_DIR. Sourced after lib.sh
# by mailcatcher.sh and smscatcher.sh, which set first:
#   CATCHER_SCRIPT (its .py beside this file), CATCHER_PORT, CATCHER_PORT_NAME (for errors),
#   CATCHER_DIR_FLAG (--mail-dir, --sms-dir), CATCHER_DIR, CATCHER_WHAT (mail, sms),
#   START_TIMEOUT and STOP_TIMEOUT (seconds).

CATCHER_PIDFILE="$FEDELTA_RUN_DIR/$FEDELTA_COMPONENT.pid"
CATCHER_LOG="$FEDELTA_LOG_DIR/$FEDELTA_COMPONENT.log"
# Unique to this stack's process (port and directory, as passed on its command line below).
CATCHER_MATCH="$CATCHER_SCRIPT --host 127.0.0.1 --port $CATCHER_PORT $CATCHER_DIR_FLAG $CATCHER_DIR "

catcher_where() { printf '127.0.0.1:%s (pid %s, %s in %s)' "$CATCHER_PORT" "$1" "$CATCHER_WHAT" "$CATCHER_DIR"; }

catcher_start() {
    local pid t0
    ensure_state_dirs
    if pid="$(running_pid "$CATCHER_PIDFILE" "$CATCHER_MATCH")"; then
        log "already running on $(catcher_where "$pid")"
        return 0
    fi
    require_python
    require_port_free "$CATCHER_PORT" "$CATCHER_PORT_NAME"
    mkdir -p -- "$CATCHER_DIR"
    chmod 700 -- "$CATCHER_DIR"  # it may live outside the state dir
    t0="$(now_s)"
    pid="$(start_daemon "$CATCHER_PIDFILE" "$CATCHER_LOG" \
        "$FEDELTA_PYTHON" "$FEDELTA_LOCAL_DIR/$CATCHER_SCRIPT" --host 127.0.0.1 \
        --port "$CATCHER_PORT" "$CATCHER_DIR_FLAG" "$CATCHER_DIR")"
    if ! wait_for_tcp 127.0.0.1 "$CATCHER_PORT" "$START_TIMEOUT" "$pid"; then
        show_log_tail "$CATCHER_LOG" 20
        stop_pid "$pid" 5 || true
        rm -f -- "$CATCHER_PIDFILE"
        die "not listening on 127.0.0.1:$CATCHER_PORT within $START_TIMEOUT s (log: $CATCHER_LOG)"
    fi
    log "started on $(catcher_where "$pid") in $(elapsed_since "$t0") s"
}

catcher_stop() {
    local rc=0
    stop_daemon "$CATCHER_PIDFILE" "$CATCHER_MATCH" "$STOP_TIMEOUT" || rc=$?
    case "$rc" in
        0) log "stopped" ;;
        1) log "not running" ;;
        2) warn "killed after $STOP_TIMEOUT s without a clean shutdown (log: $CATCHER_LOG)" ;;
    esac
}

catcher_status() {
    local pid
    if pid="$(running_pid "$CATCHER_PIDFILE" "$CATCHER_MATCH")"; then
        log "running on $(catcher_where "$pid")"
        return 0
    fi
    log "stopped"
    return 3
}

catcher_main() {
    case "${1:-}" in
        start) catcher_start ;;
        stop) catcher_stop ;;
        status) catcher_status ;;
        *)
            echo "usage: $0 start|stop|status" >&2
            exit 2
            ;;
    esac
}
