#!/usr/bin/env bash
# Local PostgreSQL cluster for the dev/test/CI stack, run from the distribution's server binaries.
#
#   deploy/local/postgres.sh install      apt-get install postgresql when no server binaries exist
#   deploy/local/postgres.sh start        initdb once, start on 127.0.0.1:$FEDELTA_PG_PORT, create
#                                         one role + one database per service (idempotent)
#   deploy/local/postgres.sh stop         fast shutdown
#   deploy/local/postgres.sh status       exit 0 when running, 3 when stopped
#   deploy/local/postgres.sh dsn NAME     print the service's SQLAlchemy/asyncpg DSN (with its password)
#   deploy/local/postgres.sh passwords    make the services' passwords (kept; `start` does it too)
#   deploy/local/postgres.sh psql [ARGS]  psql as the superuser over the cluster's unix socket
#
# When run as root the server runs as the `postgres` OS user (initdb refuses root). Its files then
# live in $FEDELTA_STATE_DIR/postgres when that user can enter the state dir, otherwise in
# /var/tmp/fedelta-pg-<port>-<hash of the state dir>; the chosen place is recorded in
# $FEDELTA_STATE_DIR/postgres/location. $FEDELTA_STATE_DIR/logs/postgres.log links to its log.
#
# Each service's role has a random password, made once per state dir and kept in the owner-only
# $FEDELTA_STATE_DIR/secrets.env (FEDELTA_PG_<NAME>_PASSWORD); every start sets the roles' passwords
# from it, so a cluster made before (when a role's password was its name) gets them too.
#
# Env: FEDELTA_STATE_DIR, FEDELTA_PG_PORT (see lib.sh); FEDELTA_PG_BIN (default: the highest
# /usr/lib/postgresql/*/bin), FEDELTA_PG_START_TIMEOUT (60 s), FEDELTA_PG_STOP_TIMEOUT (60 s).

set -euo pipefail
FEDELTA_COMPONENT=postgres
# shellcheck source=deploy/local/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

# One role (its password random, in secrets.env) and one database fedelta_<name> per service.
PG_SERVICES=(ingest points tiers notifications engagement insights web)
PG_SUPERUSER=postgres
PG_SECRETS_ENV="$FEDELTA_STATE_DIR/secrets.env"

PG_STATE="$FEDELTA_STATE_DIR/postgres"
PG_LOCATION_FILE="$PG_STATE/location"
PG_PIDFILE="$FEDELTA_RUN_DIR/postgres.pid"
PG_LOG_LINK="$FEDELTA_LOG_DIR/postgres.log"
START_TIMEOUT="${FEDELTA_PG_START_TIMEOUT:-60}"
STOP_TIMEOUT="${FEDELTA_PG_STOP_TIMEOUT:-60}"
STATE_HASH="$(printf '%s' "$FEDELTA_STATE_DIR" | sha256sum | cut -c1-10)"

PG_BIN=""
PG_ROOT=""   # directory owned by the server's OS user: data/ and postgres.log
PG_DATA=""
PG_SOCKDIR=""
PG_RUN_AS="" # OS user to run server tools as ("" = the current user)

find_pg_bin() {
    local d
    if [[ -n "${FEDELTA_PG_BIN:-}" ]]; then
        [[ -x "$FEDELTA_PG_BIN/pg_ctl" ]] || die "FEDELTA_PG_BIN=$FEDELTA_PG_BIN has no pg_ctl"
        printf '%s\n' "$FEDELTA_PG_BIN"
        return 0
    fi
    for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
        if [[ -x "$d/pg_ctl" && -x "$d/initdb" && -x "$d/postgres" && -x "$d/psql" ]]; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    return 1
}

cmd_install() {
    ensure_state_dirs
    if PG_BIN="$(find_pg_bin)"; then
        log "server binaries found in $PG_BIN"
        return 0
    fi
    apt_install postgresql
    PG_BIN="$(find_pg_bin)" || die "postgresql installed but no /usr/lib/postgresql/*/bin/pg_ctl found"
    log "installed server binaries in $PG_BIN"
}

# Run a server tool as the cluster's OS user (from /, which that user can always enter).
as_pg() {
    if [[ -n "$PG_RUN_AS" ]]; then
        (cd / && runuser -u "$PG_RUN_AS" -- "$@")
    else
        "$@"
    fi
}

set_paths() {
    PG_ROOT="$1"
    PG_DATA="$PG_ROOT/data"
    # Unix socket paths are limited to 107 bytes: fall back to a short dir for deep checkouts.
    if ((${#PG_DATA} + ${#FEDELTA_PG_PORT} + 10 <= 100)); then
        PG_SOCKDIR="$PG_DATA"
    else
        PG_SOCKDIR="/tmp/fedelta-pgsock-$FEDELTA_PG_PORT-$STATE_HASH"
    fi
    if is_root; then
        PG_RUN_AS=postgres
    else
        PG_RUN_AS=""
    fi
}

# Load the recorded cluster location; returns 1 when this stack has no cluster yet.
load_location() {
    [[ -s "$PG_LOCATION_FILE" ]] || return 1
    set_paths "$(cat -- "$PG_LOCATION_FILE")"
}

# postmaster pid of a server running on PG_DATA (by its pid file or by its command line).
server_pid() {
    local pid=""
    if [[ -r "$PG_DATA/postmaster.pid" ]]; then
        pid="$(head -n 1 -- "$PG_DATA/postmaster.pid" 2>/dev/null || true)"
        if pid_alive "$pid" && pid_cmdline_has "$pid" "$PG_DATA"; then
            printf '%s\n' "$pid"
            return 0
        fi
    fi
    pid="$(pids_matching "bin/postgres -D $PG_DATA" | head -n 1)"
    [[ -n "$pid" ]] || return 1
    printf '%s\n' "$pid"
}

# Stop whatever server runs on PG_DATA: fast shutdown, then SIGKILL after the deadline.
stop_server() {
    local pid rc=0
    pid="$(server_pid)" || return 1
    if [[ -n "$PG_BIN" && -f "$PG_DATA/postmaster.pid" ]] &&
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t "$STOP_TIMEOUT" -s stop >/dev/null 2>&1; then
        return 0
    fi
    # No usable pid file (or pg_ctl failed): SIGINT is PostgreSQL's "fast shutdown" signal.
    kill -INT "$pid" 2>/dev/null || true
    local deadline
    deadline="$(deadline_in "$STOP_TIMEOUT")"
    while pid_alive "$pid" && before_deadline "$deadline"; do sleep 0.1; done
    if pid_alive "$pid"; then
        warn "postmaster $pid ignored fast shutdown for $STOP_TIMEOUT s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        rc=2
    fi
    return "$rc"
}

# First start of this stack: decide where the cluster lives and record it.
choose_location() {
    mkdir -p -- "$PG_STATE"
    if ! is_root; then
        set_paths "$PG_STATE"
    else
        getent passwd postgres >/dev/null ||
            die "OS user 'postgres' not found (it comes with the postgresql package: $0 install)"
        chown postgres: -- "$PG_STATE"
        chmod 700 -- "$PG_STATE"
        if runuser -u postgres -- test -x "$PG_STATE" -a -w "$PG_STATE" 2>/dev/null; then
            set_paths "$PG_STATE"
        else
            set_paths "/var/tmp/fedelta-pg-$FEDELTA_PG_PORT-$STATE_HASH"
            if [[ -e "$PG_ROOT" ]]; then
                # Left over from a deleted state dir of this same stack: a fresh state dir means
                # a fresh cluster.
                if stop_server; then log "stopped a leftover server on $PG_DATA"; fi
                rm -rf -- "$PG_ROOT"
            fi
            mkdir -m 700 -- "$PG_ROOT"
            chown postgres: -- "$PG_ROOT"
            log "'postgres' cannot enter $FEDELTA_STATE_DIR: cluster placed in $PG_ROOT"
        fi
    fi
    printf '%s\n' "$PG_ROOT" >"$PG_LOCATION_FILE"
}

init_cluster() {
    local version
    version="$("$PG_BIN/postgres" --version | awk '{ split($3, v, "."); print v[1] }')"
    if [[ -f "$PG_DATA/PG_VERSION" ]]; then
        [[ "$(cat -- "$PG_DATA/PG_VERSION")" == "$version" ]] ||
            die "$PG_DATA was created by PostgreSQL $(cat -- "$PG_DATA/PG_VERSION") but $PG_BIN is $version: delete $FEDELTA_STATE_DIR (and $PG_ROOT) to re-create it"
        return 0
    fi
    if [[ ! -d "$PG_ROOT" ]]; then
        mkdir -p -- "$(dirname -- "$PG_ROOT")"
        mkdir -m 700 -- "$PG_ROOT"
        [[ -z "$PG_RUN_AS" ]] || chown "$PG_RUN_AS": -- "$PG_ROOT"
    fi
    rm -rf -- "$PG_DATA" # a half-finished initdb leaves a non-empty dir that initdb refuses
    if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U "$PG_SUPERUSER" -E UTF8 --no-locale \
        --auth-local=trust --auth-host=scram-sha-256 --no-instructions \
        >"$PG_ROOT/initdb.log" 2>&1; then
        show_log_tail "$PG_ROOT/initdb.log"
        die "initdb failed"
    fi
    printf "\ninclude = 'fedelta.conf'\n" >>"$PG_DATA/postgresql.conf"
    log "initialized cluster in $PG_DATA (PostgreSQL $version)"
}

# An eighth of the machine's memory, between the default 128 MB and 1 GB.
shared_buffers() {
    local mb
    mb="$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo 2>/dev/null || true)"
    mb=$(( ${mb:-0} / 8 / 1024 ))
    (( mb < 128 )) && mb=128
    (( mb > 1024 )) && mb=1024
    echo "${mb}MB"
}

# Regenerated on every start so that a changed port or socket dir takes effect.
write_config() {
    cat >"$PG_DATA/fedelta.conf" <<EOF
# Generated by deploy/local/postgres.sh on every start; edits are overwritten.
listen_addresses = '127.0.0.1'
port = $FEDELTA_PG_PORT
unix_socket_directories = '$PG_SOCKDIR'
max_connections = 200
timezone = 'UTC'
log_timezone = 'UTC'
# Dev/test/CI only: this cluster holds throwaway data, so durability is traded for speed (no
# fsync, no waiting for WAL flushes, no full-page images). An OS crash can corrupt it: then delete
# the state dir and start again. Never copy these three settings to a real deployment.
fsync = off
synchronous_commit = off
full_page_writes = off
# Tiny test queries: JIT compilation only adds latency.
jit = off
# One cluster holds every service's database: PostgreSQL's default 128 MB is outgrown by the
# points database alone after a few benchmark runs (its ledger, purchases and inbox indexes).
shared_buffers = $(shared_buffers)
EOF
    cat >"$PG_DATA/pg_hba.conf" <<'EOF'
# Generated by deploy/local/postgres.sh on every start; edits are overwritten.
# TYPE  DATABASE  USER      ADDRESS        METHOD
# Superuser admin tasks, only over the unix socket inside the data dir.
local   all       postgres                 trust
# Services: password (SCRAM) over loopback TCP only.
host    all       all       127.0.0.1/32   scram-sha-256
EOF
    if [[ -n "$PG_RUN_AS" ]]; then
        chown "$PG_RUN_AS": -- "$PG_DATA/fedelta.conf" "$PG_DATA/pg_hba.conf"
    fi
    if [[ "$PG_SOCKDIR" != "$PG_DATA" ]]; then
        mkdir -p -- "$PG_SOCKDIR"
        chmod 700 -- "$PG_SOCKDIR"
        [[ -z "$PG_RUN_AS" ]] || chown "$PG_RUN_AS": -- "$PG_SOCKDIR"
    fi
}

wait_ready() {
    local deadline
    deadline="$(deadline_in "$START_TIMEOUT")"
    while before_deadline "$deadline"; do
        if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$FEDELTA_PG_PORT" -d postgres -t 2; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

admin_psql() {
    as_pg "$PG_BIN/psql" -X -h "$PG_SOCKDIR" -p "$FEDELTA_PG_PORT" -U "$PG_SUPERUSER" "$@"
}

# The services' passwords, made once and kept in secrets.env (appended under the lock the other
# scripts that add credentials to it take: infra starts PostgreSQL and Kafka concurrently).
# URL-safe, so that they go into the DSNs as they are.
ensure_passwords() {
    (
        umask 077
        exec 9>>"$PG_SECRETS_ENV.lock"
        flock -w 60 9 || die "timed out waiting for the lock $PG_SECRETS_ENV.lock"
        touch -- "$PG_SECRETS_ENV"
        chmod 600 -- "$PG_SECRETS_ENV"
        local name variable
        for name in "${PG_SERVICES[@]}"; do
            variable="FEDELTA_PG_${name^^}_PASSWORD"
            grep -q "^$variable=" "$PG_SECRETS_ENV" ||
                printf '%s=%s\n' "$variable" \
                    "$(head -c 32 /dev/urandom | base64 -w 0 | tr '+/' '-_' | tr -d '=')" \
                    >>"$PG_SECRETS_ENV"
        done
    )
}

# pg_password NAME: the service's password from secrets.env (empty when it has none yet).
pg_password() {
    { grep "^FEDELTA_PG_${1^^}_PASSWORD=" "$PG_SECRETS_ENV" 2>/dev/null || true; } |
        tail -n 1 | cut -d= -f2-
}

provision() {
    local name password sql=""
    ensure_passwords
    for name in "${PG_SERVICES[@]}"; do
        password="$(pg_password "$name")"
        [[ "$password" =~ ^[A-Za-z0-9_-]{32,}$ ]] ||
            die "FEDELTA_PG_${name^^}_PASSWORD in $PG_SECRETS_ENV is not a generated password"
        # Through psql's stdin, never its arguments (which `ps` shows to every local user).
        sql+="
SELECT format('CREATE ROLE %I LOGIN', '$name')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$name')\\gexec
ALTER ROLE \"$name\" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '$password';
SELECT format('CREATE DATABASE %I OWNER %I', 'fedelta_$name', '$name')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'fedelta_$name')\\gexec
ALTER DATABASE \"fedelta_$name\" OWNER TO \"$name\";
REVOKE CONNECT, TEMPORARY ON DATABASE \"fedelta_$name\" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE \"fedelta_$name\" TO \"$name\";
"
    done
    local out
    if ! out="$(admin_psql -q -v ON_ERROR_STOP=1 -d postgres 2>&1 <<<"$sql")"; then
        printf '%s\n' "$out" >&2
        die "creating the service roles and databases failed"
    fi
}

cmd_start() {
    local pid t0
    ensure_state_dirs
    cmd_install >/dev/null
    PG_BIN="$(find_pg_bin)"
    load_location || choose_location
    if pid="$(server_pid)"; then
        provision
        printf '%s\n' "$pid" >"$PG_PIDFILE"
        log "already running on 127.0.0.1:$FEDELTA_PG_PORT (pid $pid)"
        return 0
    fi
    require_port_free "$FEDELTA_PG_PORT" "postgres"
    t0="$(now_s)"
    init_cluster
    write_config
    rm -f -- "$PG_DATA/postmaster.pid" # stale after a crash; no server runs on this dir (checked)
    ln -sfn -- "$PG_ROOT/postgres.log" "$PG_LOG_LINK"
    if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_ROOT/postgres.log" -w -t "$START_TIMEOUT" \
        -s start >/dev/null; then
        show_log_tail "$PG_ROOT/postgres.log"
        die "pg_ctl start failed (log: $PG_ROOT/postgres.log)"
    fi
    if ! wait_ready; then
        show_log_tail "$PG_ROOT/postgres.log"
        stop_server || true
        die "not accepting connections on 127.0.0.1:$FEDELTA_PG_PORT within $START_TIMEOUT s"
    fi
    provision
    pid="$(server_pid)" || die "server started but its postmaster pid is unknown"
    printf '%s\n' "$pid" >"$PG_PIDFILE"
    log "started on 127.0.0.1:$FEDELTA_PG_PORT (pid $pid, data $PG_DATA) in $(elapsed_since "$t0") s"
}

cmd_stop() {
    local rc=0 t0
    t0="$(now_s)"
    PG_BIN="$(find_pg_bin || true)"
    if ! load_location; then
        rm -f -- "$PG_PIDFILE"
        log "not running"
        return 0
    fi
    stop_server || rc=$?
    rm -f -- "$PG_PIDFILE"
    case "$rc" in
        0) log "stopped in $(elapsed_since "$t0") s" ;;
        1) log "not running" ;;
        *) warn "killed without a clean shutdown" ;;
    esac
}

cmd_status() {
    local pid
    if load_location && pid="$(server_pid)"; then
        log "running on 127.0.0.1:$FEDELTA_PG_PORT (pid $pid, data $PG_DATA)"
        return 0
    fi
    log "stopped"
    return 3
}

cmd_dsn() {
    local name="${1:-}" s password
    for s in "${PG_SERVICES[@]}"; do
        if [[ "$name" == "$s" ]]; then
            password="$(pg_password "$name")"
            [[ -n "$password" ]] ||
                die "no password for $name in $PG_SECRETS_ENV yet: run $0 start (or $0 passwords)"
            printf 'postgresql+asyncpg://%s:%s@127.0.0.1:%s/fedelta_%s\n' \
                "$name" "$password" "$FEDELTA_PG_PORT" "$name"
            return 0
        fi
    done
    die "usage: $0 dsn $(IFS='|' && printf '{%s}' "${PG_SERVICES[*]}")"
}

cmd_psql() {
    PG_BIN="$(find_pg_bin)" || die "no PostgreSQL server binaries: run $0 install"
    load_location || die "no cluster yet: run $0 start"
    admin_psql "$@"
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    dsn) cmd_dsn "${2:-}" ;;
    passwords)
        ensure_state_dirs
        ensure_passwords
        ;;
    psql)
        shift
        cmd_psql "$@"
        ;;
    *)
        echo "usage: $0 install|start|stop|status|dsn NAME|passwords|psql [ARGS]" >&2
        exit 2
        ;;
esac
