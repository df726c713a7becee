#!/usr/bin/env bash
# The four Fedelta services as local processes, one per service (API + consumer + relay).
#
#   deploy/local/services.sh start    start the ones not running; wait until each is ready
#   deploy/local/services.sh stop     stop them all (SIGTERM, then SIGKILL after a deadline)
#   deploy/local/services.sh status   exit 0 when all four run, 3 otherwise
#
# Reads their configuration from $FEDELTA_STATE_DIR/services.env (written by stack.sh).
# Ports: FEDELTA_INGEST_PORT (8080), FEDELTA_POINTS_PORT (8081), FEDELTA_TIERS_PORT (8082),
# FEDELTA_NOTIFICATIONS_PORT (8083).

set -euo pipefail
FEDELTA_COMPONENT=services
# shellcheck source=deploy/local/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

SERVICES=(ingest points tiers notifications)
SERVICES_ENV="$FEDELTA_STATE_DIR/services.env"
START_TIMEOUT="${FEDELTA_SERVICE_START_TIMEOUT:-60}"

port_of() {
    case "$1" in
        ingest) printf '%s\n' "${FEDELTA_INGEST_PORT:-8080}" ;;
        points) printf '%s\n' "${FEDELTA_POINTS_PORT:-8081}" ;;
        tiers) printf '%s\n' "${FEDELTA_TIERS_PORT:-8082}" ;;
        notifications) printf '%s\n' "${FEDELTA_NOTIFICATIONS_PORT:-8083}" ;;
    esac
}

# The port is on the command line so that two stacks' processes are never mistaken for each other.
match_of() { printf -- '-m services.%s serve --port %s' "$1" "$(port_of "$1")"; }

wait_until_ready() {
    local name="$1" port="$2" pid="$3" deadline
    deadline="$(deadline_in "$START_TIMEOUT")"
    while before_deadline "$deadline"; do
        pid_alive "$pid" || return 1
        if "$FEDELTA_PYTHON" - "$port" <<'PY' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/readyz", timeout=2)
PY
            return 0
        fi
        sleep 0.2
    done
    return 1
}

cmd_start() {
    [[ -f "$SERVICES_ENV" ]] || die "$SERVICES_ENV is missing: run deploy/local/stack.sh up"
    ensure_state_dirs
    require_python
    set -a
    # shellcheck source=/dev/null
    source "$SERVICES_ENV"
    set +a
    local name port pid log started=()
    for name in "${SERVICES[@]}"; do
        port="$(port_of "$name")"
        if pid="$(running_pid "$FEDELTA_RUN_DIR/$name.pid" "$(match_of "$name")")"; then
            log "$name already running on 127.0.0.1:$port (pid $pid)"
            continue
        fi
        require_port_free "$port" "$name"
        log="$FEDELTA_LOG_DIR/$name.log"
        pid="$(cd "$FEDELTA_REPO_ROOT" && start_daemon "$FEDELTA_RUN_DIR/$name.pid" "$log" \
            "$FEDELTA_PYTHON" -m "services.$name" serve --port "$port")"
        started+=("$name:$port:$pid")
    done
    local entry
    for entry in "${started[@]}"; do
        IFS=: read -r name port pid <<<"$entry"
        if ! wait_until_ready "$name" "$port" "$pid"; then
            show_log_tail "$FEDELTA_LOG_DIR/$name.log" 40
            die "$name did not become ready on 127.0.0.1:$port within ${START_TIMEOUT}s"
        fi
        log "$name ready on http://127.0.0.1:$port (pid $pid, log $FEDELTA_LOG_DIR/$name.log)"
    done
}

# group_members PID: the other live processes of PID's process group. A service started with
# several workers is a uvicorn supervisor whose workers are its children: their command lines
# do not name the service, but they stay in the group start_daemon's setsid made.
group_members() {
    local leader="$1" dir pid stat
    for dir in /proc/[0-9]*; do
        pid="${dir#/proc/}"
        [[ "$pid" == "$leader" ]] && continue
        stat="$(cat "$dir/stat" 2>/dev/null)" || continue
        # Field 5 of /proc/PID/stat, counted after the parenthesised command name.
        read -r _ _ pgid _ <<<"${stat##*) }"
        [[ "$pgid" == "$leader" ]] && pid_alive "$pid" && printf '%s\n' "$pid"
    done
    return 0
}

cmd_stop() {
    local name rc pid worker
    for name in "${SERVICES[@]}"; do
        rc=0
        pid="$(running_pid "$FEDELTA_RUN_DIR/$name.pid" "$(match_of "$name")")" || pid=""
        stop_daemon "$FEDELTA_RUN_DIR/$name.pid" "$(match_of "$name")" 20 || rc=$?
        case "$rc" in
            0) log "$name stopped" ;;
            2) warn "$name had to be killed" ;;
        esac
        # The supervisor stops its workers itself; one killed, or one that died, may not have.
        if [[ -n "$pid" ]]; then
            for worker in $(group_members "$pid"); do
                warn "$name worker $worker outlived its supervisor; stopping it"
                stop_pid "$worker" 10 || true
            done
        fi
    done
}

cmd_status() {
    local name pid missing=0
    for name in "${SERVICES[@]}"; do
        if pid="$(running_pid "$FEDELTA_RUN_DIR/$name.pid" "$(match_of "$name")")"; then
            log "$name running on 127.0.0.1:$(port_of "$name") (pid $pid)"
        else
            log "$name stopped"
            missing=1
        fi
    done
    return $((missing * 3))
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) die "usage: $0 start|stop|status" ;;
esac
