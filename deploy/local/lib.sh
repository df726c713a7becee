# shellcheck shell=bash
# Common helpers for the local-process infrastructure scripts (deploy/local/*.sh).
# Sourced, never executed. Applies the shared defaults only to variables that are unset, so a
# test run can bring up a second, independent stack by exporting its own values first.

set -euo pipefail

# Everything these scripts and what they start create (Kafka log segments, PostgreSQL files,
# caught mail, service logs, credentials) holds personal data or secrets: owner-only.
umask 077

FEDELTA_LOCAL_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
FEDELTA_REPO_ROOT="$(cd -- "$FEDELTA_LOCAL_DIR/../.." && pwd -P)"

# --- logging -----------------------------------------------------------------------------------
# One short line per step on stdout; errors on stderr, prefixed by the component name.
FEDELTA_COMPONENT="${FEDELTA_COMPONENT:-infra}"

log() { printf '%s: %s\n' "$FEDELTA_COMPONENT" "$*"; }
warn() { printf '%s: warning: %s\n' "$FEDELTA_COMPONENT" "$*" >&2; }
die() {
    printf '%s: error: %s\n' "$FEDELTA_COMPONENT" "$*" >&2
    exit 1
}

# Print the last lines of a log file to stderr (for failed starts).
show_log_tail() {
    local file="$1" lines="${2:-40}"
    if [[ -r "$file" ]]; then
        printf '%s: ---- last %s lines of %s ----\n' "$FEDELTA_COMPONENT" "$lines" "$file" >&2
        tail -n "$lines" -- "$file" >&2 || true
        printf '%s: ---- end of log ----\n' "$FEDELTA_COMPONENT" >&2
    else
        printf '%s: (no log at %s)\n' "$FEDELTA_COMPONENT" "$file" >&2
    fi
}

# --- paths and defaults -----------------------------------------------------------------------
# Make a path absolute (relative paths are taken from the caller's cwd) without requiring it to
# exist yet.
abspath() {
    case "$1" in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s/%s\n' "$(pwd -P)" "$1" ;;
    esac
}

is_port() { [[ "$1" =~ ^[0-9]+$ ]] && ((10#$1 >= 1 && 10#$1 <= 65535)); }

: "${FEDELTA_STATE_DIR:=$FEDELTA_REPO_ROOT/.fedelta}"
FEDELTA_STATE_DIR="$(abspath "$FEDELTA_STATE_DIR")"
: "${FEDELTA_CACHE_DIR:=${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/fedelta}"
FEDELTA_CACHE_DIR="$(abspath "$FEDELTA_CACHE_DIR")"
: "${FEDELTA_PG_PORT:=15432}"
: "${FEDELTA_KAFKA_PORT:=19092}"
: "${FEDELTA_KAFKA_CONTROLLER_PORT:=19093}"
: "${FEDELTA_SMTP_PORT:=10025}"
: "${FEDELTA_MAIL_DIR:=$FEDELTA_STATE_DIR/mail}"
FEDELTA_MAIL_DIR="$(abspath "$FEDELTA_MAIL_DIR")"
: "${FEDELTA_PYTHON:=$FEDELTA_REPO_ROOT/.venv/bin/python}"
export FEDELTA_STATE_DIR FEDELTA_CACHE_DIR FEDELTA_PG_PORT FEDELTA_KAFKA_PORT \
    FEDELTA_KAFKA_CONTROLLER_PORT FEDELTA_SMTP_PORT FEDELTA_MAIL_DIR FEDELTA_PYTHON

for _var in FEDELTA_PG_PORT FEDELTA_KAFKA_PORT FEDELTA_KAFKA_CONTROLLER_PORT FEDELTA_SMTP_PORT; do
    is_port "${!_var}" || die "$_var='${!_var}' is not a TCP port number"
done
unset _var

FEDELTA_RUN_DIR="$FEDELTA_STATE_DIR/run"
FEDELTA_LOG_DIR="$FEDELTA_STATE_DIR/logs"

ensure_state_dirs() {
    mkdir -p -- "$FEDELTA_RUN_DIR" "$FEDELTA_LOG_DIR" ||
        die "cannot create state dirs under $FEDELTA_STATE_DIR"
    # Also closes a state dir left world-readable by an older version. Others may pass
    # through the state dir but not list it: PostgreSQL's OS user must reach its own (0700)
    # cluster directory below it. Everything else lives in owner-only directories, so files
    # an older version made world-readable cannot be reached either.
    chmod 711 -- "$FEDELTA_STATE_DIR" &&
        chmod 700 -- "$FEDELTA_RUN_DIR" "$FEDELTA_LOG_DIR" ||
        die "cannot make $FEDELTA_STATE_DIR owner-only"
}

# Kafka's principals (deploy/local/kafka.sh, shared/messaging/acls.py): the admin super user,
# one per service, and the broker's own login to its controller listener. Their passwords are
# made once per state dir, kept in the owner-only secrets.env beside the other credentials, and
# added to a secrets.env made before them (under a lock: infra starts its parts concurrently).
KAFKA_PRINCIPALS=(admin ingest points tiers notifications engagement insights web controller)
FEDELTA_SECRETS_ENV="$FEDELTA_STATE_DIR/secrets.env"

ensure_kafka_secrets() {
    (
        umask 077
        exec 8>>"$FEDELTA_SECRETS_ENV.lock"
        flock -w 60 8 || die "timed out waiting for the lock $FEDELTA_SECRETS_ENV.lock"
        touch -- "$FEDELTA_SECRETS_ENV"
        local name variable
        for name in "${KAFKA_PRINCIPALS[@]}"; do
            variable="FEDELTA_KAFKA_${name^^}_PASSWORD"
            grep -q "^$variable=" "$FEDELTA_SECRETS_ENV" ||
                printf '%s=%s\n' "$variable" \
                    "$("$FEDELTA_PYTHON" -c 'import secrets; print(secrets.token_urlsafe(32))')" \
                    >>"$FEDELTA_SECRETS_ENV"
        done
    )
}

# kafka_password NAME: a Kafka principal's password from secrets.env (empty when it has none).
kafka_password() {
    { grep "^FEDELTA_KAFKA_${1^^}_PASSWORD=" "$FEDELTA_SECRETS_ENV" 2>/dev/null || true; } |
        tail -n 1 | cut -d= -f2-
}

# Whether this stack's broker requires SASL: its rendered properties (from the last start) say so.
# A broker started before SASL keeps running in PLAINTEXT; its clients get no principal.
kafka_is_sasl() {
    grep -q '^listeners=SASL_PLAINTEXT://' "$FEDELTA_STATE_DIR/kafka/server.properties" 2>/dev/null
}

# kafka_client_env PREFIX NAME: the client settings of Kafka principal NAME, as PREFIX-named
# variables (KafkaConnection's: SECURITY_PROTOCOL, SASL_MECHANISM, USERNAME, PASSWORD); nothing
# when the broker is PLAINTEXT.
kafka_client_env() {
    kafka_is_sasl || return 0
    printf '%sSECURITY_PROTOCOL=SASL_PLAINTEXT\n%sSASL_MECHANISM=SCRAM-SHA-512\n' "$1" "$1"
    printf '%sUSERNAME=%s\n%sPASSWORD=%s\n' "$1" "$2" "$1" "$(kafka_password "$2")"
}

require_python() {
    [[ -x "$FEDELTA_PYTHON" ]] ||
        die "python not found at FEDELTA_PYTHON=$FEDELTA_PYTHON (create the venv: python3 -m venv .venv && .venv/bin/pip install -e '.[dev]')"
}

is_root() { [[ "$(id -u)" == 0 ]]; }

# Install Debian packages (only possible as root); used when a tool is missing on a fresh machine.
apt_install() {
    is_root || die "missing packages ($*): install them with 'sudo apt-get install -y $*'"
    log "installing Debian packages: $*"
    if ! {
        DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
    } >"$FEDELTA_LOG_DIR/apt-install.log" 2>&1; then
        show_log_tail "$FEDELTA_LOG_DIR/apt-install.log"
        die "apt-get install $* failed"
    fi
}

# Seconds since the epoch, with fractions, for deadlines and timings.
now_s() { date +%s.%N; }
# elapsed_since START -> "1.2"
elapsed_since() { awk -v s="$1" -v e="$(now_s)" 'BEGIN { printf "%.1f", e - s }'; }
# before_deadline DEADLINE -> true while now < DEADLINE
before_deadline() { awk -v d="$1" -v n="$(now_s)" 'BEGIN { exit !(n < d) }'; }
deadline_in() { awk -v s="$1" -v n="$(now_s)" 'BEGIN { printf "%.3f", n + s }'; }

# --- TCP ----------------------------------------------------------------------------------------
# tcp_open HOST PORT: true when something accepts connections there right now.
tcp_open() {
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# wait_for_tcp HOST PORT DEADLINE_SECONDS [PID]: wait until the port accepts connections. With PID,
# give up early when that process has died. Returns 1 on timeout or death.
wait_for_tcp() {
    local host="$1" port="$2" deadline pid="${4:-}"
    deadline="$(deadline_in "$3")"
    while before_deadline "$deadline"; do
        if tcp_open "$host" "$port"; then
            return 0
        fi
        if [[ -n "$pid" ]] && ! pid_alive "$pid"; then
            return 1
        fi
        sleep 0.2
    done
    return 1
}

# Fail when a port we are about to listen on is already taken by someone else.
require_port_free() {
    local port="$1" what="$2"
    if tcp_open 127.0.0.1 "$port"; then
        die "port 127.0.0.1:$port ($what) is already in use by another process; stop it or choose another port"
    fi
}

# --- processes and pid files -----------------------------------------------------------------
# pid_alive PID: the process exists and is not a zombie.
pid_alive() {
    local pid="$1" state
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || [[ -e "/proc/$pid" ]] || return 1
    if [[ -r "/proc/$pid/stat" ]]; then
        state="$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null || true)"
        [[ "$state" != Z && "$state" != X ]] || return 1
    fi
    return 0
}

# pid_cmdline_has PID STRING: the process's command line contains STRING (guards against a
# stale pid file whose pid has been reused by an unrelated process).
pid_cmdline_has() {
    local pid="$1" needle="$2" cmd
    cmd="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" || return 1
    [[ "$cmd" == *"$needle"* ]]
}

# pids_matching STRING: pids of live processes whose command line contains STRING.
pids_matching() {
    local needle="$1" dir pid
    for dir in /proc/[0-9]*; do
        pid="${dir#/proc/}"
        [[ "$pid" == "$$" || "$pid" == "$BASHPID" ]] && continue
        if pid_cmdline_has "$pid" "$needle" && pid_alive "$pid"; then
            printf '%s\n' "$pid"
        fi
    done
}

# running_pid PIDFILE MATCH: print the pid of the running daemon and return 0, else return 1.
# MATCH is a string unique to this stack's daemon command line. A stale pid file is removed; a
# daemon found by MATCH without a pid file gets its pid file back.
running_pid() {
    local pidfile="$1" match="$2" pid=""
    if [[ -f "$pidfile" ]]; then
        pid="$(head -n 1 -- "$pidfile" 2>/dev/null || true)"
        if pid_alive "$pid" && pid_cmdline_has "$pid" "$match"; then
            printf '%s\n' "$pid"
            return 0
        fi
        rm -f -- "$pidfile"
    fi
    pid="$(pids_matching "$match" | head -n 1)"
    if [[ -n "$pid" ]]; then
        mkdir -p -- "$(dirname -- "$pidfile")"
        printf '%s\n' "$pid" >"$pidfile"
        printf '%s\n' "$pid"
        return 0
    fi
    return 1
}

# start_daemon PIDFILE LOGFILE CMD...: start CMD detached (own session, no controlling terminal,
# stdin from /dev/null, stdout+stderr appended to LOGFILE) and write its pid. Prints the pid.
start_daemon() {
    local pidfile="$1" logfile="$2" pid
    shift 2
    mkdir -p -- "$(dirname -- "$pidfile")" "$(dirname -- "$logfile")"
    # setsid and nohup exec in place (this subshell is not a group leader), so $! is CMD's pid.
    setsid nohup "$@" >>"$logfile" 2>&1 </dev/null &
    pid=$!
    printf '%s\n' "$pid" >"$pidfile"
    printf '%s\n' "$pid"
}

# stop_pid PID TIMEOUT_SECONDS: SIGTERM, wait up to TIMEOUT, then SIGKILL. Returns 0 when the
# process is gone, 2 if it had to be killed.
stop_pid() {
    local pid="$1" deadline
    deadline="$(deadline_in "$2")"
    kill -TERM "$pid" 2>/dev/null || true
    while pid_alive "$pid"; do
        if ! before_deadline "$deadline"; then
            warn "pid $pid did not exit within $2 s after SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            local _
            for _ in $(seq 50); do
                pid_alive "$pid" || return 2
                sleep 0.1
            done
            die "pid $pid survived SIGKILL"
        fi
        sleep 0.1
    done
    return 0
}

# stop_daemon PIDFILE MATCH TIMEOUT_SECONDS: stop the daemon if running; remove the pid file.
# Prints nothing; returns 0 if it was running and stopped cleanly, 1 if it was not running,
# 2 if it had to be killed.
stop_daemon() {
    local pidfile="$1" match="$2" timeout="$3" pid rc=0
    if ! pid="$(running_pid "$pidfile" "$match")"; then
        rm -f -- "$pidfile"
        return 1
    fi
    stop_pid "$pid" "$timeout" || rc=$?
    rm -f -- "$pidfile"
    return "$rc"
}
