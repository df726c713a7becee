#!/usr/bin/env bash
# The seven Fedelta services as local processes (API + consumer + relay in each; the web has
# no consumer), one instance per service by default, or several sharing a consumer group (each on its own port).
#
#   deploy/local/services.sh start [SERVICE[:PORT]...]   start the instances not running; wait
#                                                         until each is ready (default: all)
#   deploy/local/services.sh stop [SERVICE[:PORT]...]    SIGTERM, then SIGKILL after a deadline
#   deploy/local/services.sh kill SERVICE:PORT...        SIGKILL at once, no clean shutdown (the
#                                                         chaos suite's crash); no wait for restart
#   deploy/local/services.sh status                      exit 0 when all instances run, 3 otherwise
#
# Reads their configuration from $FEDELTA_STATE_DIR/services.env (written by stack.sh).
# Ports: FEDELTA_INGEST_PORT (8080), FEDELTA_POINTS_PORT (8081), FEDELTA_TIERS_PORT (8082),
# FEDELTA_NOTIFICATIONS_PORT (8083), FEDELTA_ENGAGEMENT_PORT (8084), FEDELTA_INSIGHTS_PORT
# (8085), FEDELTA_WEB_PORT (8086). FEDELTA_<SERVICE>_PORTS, a comma-separated list, runs one instance of that service
# per port instead (the first one's pid file and log keep the
# one-instance names, <service>.pid and <service>.log; the others add -<port>).

set -euo pipefail
FEDELTA_COMPONENT=services
# shellcheck source=deploy/local/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

SERVICES=(ingest points tiers notifications engagement insights web)
SERVICES_ENV="$FEDELTA_STATE_DIR/services.env"
START_TIMEOUT="${FEDELTA_SERVICE_START_TIMEOUT:-60}"

port_of() {
    case "$1" in
        ingest) printf '%s\n' "${FEDELTA_INGEST_PORT:-8080}" ;;
        points) printf '%s\n' "${FEDELTA_POINTS_PORT:-8081}" ;;
        tiers) printf '%s\n' "${FEDELTA_TIERS_PORT:-8082}" ;;
        notifications) printf '%s\n' "${FEDELTA_NOTIFICATIONS_PORT:-8083}" ;;
        engagement) printf '%s\n' "${FEDELTA_ENGAGEMENT_PORT:-8084}" ;;
        insights) printf '%s\n' "${FEDELTA_INSIGHTS_PORT:-8085}" ;;
        web) printf '%s\n' "${FEDELTA_WEB_PORT:-8086}" ;;
        *) die "unknown service '$1' (one of: ${SERVICES[*]})" ;;
    esac
}

# ports_of SERVICE: the ports of its instances, one a line.
ports_of() {
    local var list port
    var="FEDELTA_${1^^}_PORTS"
    list="${!var:-}"
    if [[ -z "$list" ]]; then
        port_of "$1"
        return 0
    fi
    for port in ${list//,/ }; do
        is_port "$port" || die "$var: '$port' is not a TCP port number"
        printf '%s\n' "$port"
    done
}

# instances [SERVICE[:PORT]...]: "service:port" lines, every configured instance by default.
instances() {
    local arg name port
    if (($# == 0)); then
        for name in "${SERVICES[@]}"; do
            for port in $(ports_of "$name"); do printf '%s:%s\n' "$name" "$port"; done
        done
        return 0
    fi
    for arg in "$@"; do
        name="${arg%%:*}"
        port_of "$name" >/dev/null
        if [[ "$arg" == *:* ]]; then
            port="${arg#*:}"
            is_port "$port" || die "'$arg': '$port' is not a TCP port number"
            printf '%s:%s\n' "$name" "$port"
        else
            for port in $(ports_of "$name"); do printf '%s:%s\n' "$name" "$port"; done
        fi
    done
}

# The first instance keeps the names one instance always had.
file_stem() {
    local first
    first="$(ports_of "$1" | head -n 1)"
    if [[ "$2" == "$first" ]]; then printf '%s\n' "$1"; else printf '%s-%s\n' "$1" "$2"; fi
}

# The port is on the command line so that two stacks' processes are never mistaken for each other.
match_of() { printf -- '-m services.%s serve --port %s' "$1" "$2"; }

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
    local list entry name port pid log stem started=()
    list="$(instances "$@")" || exit 1
    for entry in $list; do
        IFS=: read -r name port <<<"$entry"
        stem="$(file_stem "$name" "$port")"
        if pid="$(running_pid "$FEDELTA_RUN_DIR/$stem.pid" "$(match_of "$name" "$port")")"; then
            log "$name already running on 127.0.0.1:$port (pid $pid)"
            continue
        fi
        require_port_free "$port" "$name"
        log="$FEDELTA_LOG_DIR/$stem.log"
        pid="$(cd "$FEDELTA_REPO_ROOT" && start_daemon "$FEDELTA_RUN_DIR/$stem.pid" "$log" \
            "$FEDELTA_PYTHON" -m "services.$name" serve --port "$port")"
        started+=("$name:$port:$pid")
    done
    for entry in "${started[@]}"; do
        IFS=: read -r name port pid <<<"$entry"
        stem="$(file_stem "$name" "$port")"
        if ! wait_until_ready "$name" "$port" "$pid"; then
            show_log_tail "$FEDELTA_LOG_DIR/$stem.log" 40
            die "$name did not become ready on 127.0.0.1:$port within ${START_TIMEOUT}s"
        fi
        log "$name ready on http://127.0.0.1:$port (pid $pid, log $FEDELTA_LOG_DIR/$stem.log)"
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
    local list entry name port stem match rc pid worker
    list="$(instances "$@")" || exit 1
    for entry in $list; do
        IFS=: read -r name port <<<"$entry"
        stem="$(file_stem "$name" "$port")"
        match="$(match_of "$name" "$port")"
        rc=0
        pid="$(running_pid "$FEDELTA_RUN_DIR/$stem.pid" "$match")" || pid=""
        stop_daemon "$FEDELTA_RUN_DIR/$stem.pid" "$match" 20 || rc=$?
        case "$rc" in
            0) log "$name ($port) stopped" ;;
            2) warn "$name ($port) had to be killed" ;;
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

# A crash, not a shutdown: SIGKILL to the instance's whole process group (uvicorn workers too).
cmd_kill() {
    (($# > 0)) || die "usage: $0 kill SERVICE:PORT..."
    local list entry name port stem pid
    list="$(instances "$@")" || exit 1
    for entry in $list; do
        IFS=: read -r name port <<<"$entry"
        stem="$(file_stem "$name" "$port")"
        if pid="$(running_pid "$FEDELTA_RUN_DIR/$stem.pid" "$(match_of "$name" "$port")")"; then
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            rm -f -- "$FEDELTA_RUN_DIR/$stem.pid"
            log "$name ($port) killed (pid $pid)"
        else
            log "$name ($port) not running"
        fi
    done
}

cmd_status() {
    local list entry name port pid missing=0
    list="$(instances)" || exit 1
    for entry in $list; do
        IFS=: read -r name port <<<"$entry"
        if pid="$(running_pid "$FEDELTA_RUN_DIR/$(file_stem "$name" "$port").pid" \
            "$(match_of "$name" "$port")")"; then
            log "$name running on 127.0.0.1:$port (pid $pid)"
        else
            log "$name ($port) stopped"
            missing=1
        fi
    done
    return $((missing * 3))
}

command="${1:-}"
shift || true
case "$command" in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    kill) cmd_kill "$@" ;;
    status) cmd_status ;;
    *) die "usage: $0 start|stop [SERVICE[:PORT]...] | kill SERVICE:PORT... | status" ;;
esac
