#!/usr/bin/env bash
# The whole local infrastructure: PostgreSQL + Kafka + the SMTP sink + the fake SMS provider,
# as local processes.
#
#   deploy/local/infra.sh up       start them all (already running ones are left as they are)
#   deploy/local/infra.sh down     stop them all; leaves no process of this stack behind
#   deploy/local/infra.sh status   exit 0 when all run, 3 otherwise
#
# Env (see lib.sh): FEDELTA_STATE_DIR, FEDELTA_CACHE_DIR, FEDELTA_PG_PORT, FEDELTA_KAFKA_PORT,
# FEDELTA_KAFKA_CONTROLLER_PORT, FEDELTA_SMTP_PORT, FEDELTA_MAIL_DIR, FEDELTA_SMS_PORT,
# FEDELTA_SMS_DIR, FEDELTA_PYTHON.
# Set other values than the defaults to run a second, independent stack.

set -euo pipefail
FEDELTA_COMPONENT=infra
# shellcheck source=deploy/local/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

COMPONENTS=(postgres kafka mailcatcher smscatcher)

# run_all ACTION: run "<component>.sh ACTION" for all components concurrently; returns the number
# of failures.
run_all() {
    local action="$1" c failed=0
    local -A pids=()
    for c in "${COMPONENTS[@]}"; do
        "$FEDELTA_LOCAL_DIR/$c.sh" "$action" &
        pids[$c]=$!
    done
    for c in "${COMPONENTS[@]}"; do
        if ! wait "${pids[$c]}"; then
            failed=$((failed + 1))
            printf 'infra: %s %s failed\n' "$c" "$action" >&2
        fi
    done
    return "$failed"
}

cmd_up() {
    local t0 failed=0
    t0="$(now_s)"
    ensure_state_dirs
    require_python
    # Installs first, one after the other (apt-get holds a global lock; the Kafka jars may take a
    # while on a fresh machine), then start them all concurrently.
    "$FEDELTA_LOCAL_DIR/postgres.sh" install >/dev/null
    "$FEDELTA_LOCAL_DIR/kafka.sh" install >/dev/null
    run_all start || failed=$?
    ((failed == 0)) || die "$failed component(s) failed to start; logs in $FEDELTA_LOG_DIR (stop the rest with: $0 down)"
    log "up in $(elapsed_since "$t0") s (state $FEDELTA_STATE_DIR)"
}

cmd_down() {
    local failed=0
    run_all stop || failed=$?
    ((failed == 0)) || die "$failed component(s) failed to stop"
    log "down"
}

cmd_status() {
    local c failed=0
    for c in "${COMPONENTS[@]}"; do
        "$FEDELTA_LOCAL_DIR/$c.sh" status || failed=$((failed + 1))
    done
    ((failed == 0)) || return 3
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 up|down|status" >&2
        exit 2
        ;;
esac
