#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, broker+controller) from Maven Central jars, no Docker.
#
#   deploy/local/kafka.sh install   resolve the jars into $FEDELTA_CACHE_DIR/kafka-<version>/libs
#   deploy/local/kafka.sh start     install if needed, format the data dir once, start, wait ready
#   deploy/local/kafka.sh stop      clean shutdown (SIGTERM, then SIGKILL after a deadline)
#   deploy/local/kafka.sh status    exit 0 when running, 3 when stopped
#
# The broker requires SASL/SCRAM-SHA-512 on loopback (SASL_PLAINTEXT; production adds TLS) and
# refuses what the ACLs of shared/messaging/acls.py do not allow. On every start, the principals'
# passwords are made if missing (secrets.env, owner-only), the SCRAM users made or updated through
# deploy/kafka/FedeltaPrincipals.java as the broker's own PLAIN login, and the ACLs applied by
# `python -m shared.messaging.acls apply` as admin (SECURITY.md, *The broker*); a restart with
# the same passwords and table skips the last two (the broker keeps them).
#
# Env: FEDELTA_STATE_DIR, FEDELTA_CACHE_DIR, FEDELTA_KAFKA_PORT, FEDELTA_KAFKA_CONTROLLER_PORT,
# FEDELTA_PYTHON (see lib.sh); FEDELTA_KAFKA_START_TIMEOUT (90 s), FEDELTA_KAFKA_STOP_TIMEOUT (60 s),
# FEDELTA_KAFKA_HEAP_OPTS (-Xms256m -Xmx512m).

set -euo pipefail
FEDELTA_COMPONENT=kafka
# shellcheck source=deploy/local/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

# Keep in sync with <kafka.version> in deploy/kafka/pom.xml (checked below).
KAFKA_VERSION=4.1.1

KAFKA_DEPLOY_DIR="$FEDELTA_REPO_ROOT/deploy/kafka"
KAFKA_POM="$KAFKA_DEPLOY_DIR/pom.xml"
KAFKA_TEMPLATE="$KAFKA_DEPLOY_DIR/server.properties.template"
KAFKA_PRINCIPALS_TOOL="$KAFKA_DEPLOY_DIR/FedeltaPrincipals.java"
KAFKA_LOG4J="$KAFKA_DEPLOY_DIR/log4j2.properties"
KAFKA_HOME="$FEDELTA_CACHE_DIR/kafka-$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_HOME/libs"
KAFKA_MARKER="$KAFKA_HOME/.installed"

KAFKA_STATE="$FEDELTA_STATE_DIR/kafka"
KAFKA_DATA="$KAFKA_STATE/data"
KAFKA_PROPS="$KAFKA_STATE/server.properties"
# The broker's own login for the principals tool (owner-only: it holds a password).
KAFKA_CONTROLLER_CLIENT="$KAFKA_STATE/controller-client.properties"
KAFKA_CLUSTER_ID_FILE="$KAFKA_STATE/cluster.id"
KAFKA_PIDFILE="$FEDELTA_RUN_DIR/kafka.pid"
KAFKA_LOG="$FEDELTA_LOG_DIR/kafka.log"
KAFKA_BOOTSTRAP="127.0.0.1:$FEDELTA_KAFKA_PORT"
# Unique to this stack's broker: its rendered properties path is on the java command line.
KAFKA_MATCH="kafka.Kafka $KAFKA_PROPS"

START_TIMEOUT="${FEDELTA_KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${FEDELTA_KAFKA_STOP_TIMEOUT:-60}"
read -r -a HEAP_OPTS <<<"${FEDELTA_KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
JVM_OPTS=(
    "${HEAP_OPTS[@]}"
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -XX:+ExplicitGCInvokesConcurrent
    -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$KAFKA_LOG4J"
    "-Dkafka.logs.dir=$FEDELTA_LOG_DIR"
)

# The pom's fingerprint: the jar cache is complete when the marker holds it.
pom_fingerprint() { sha256sum -- "$KAFKA_POM" | cut -d' ' -f1; }

installed() {
    [[ -f "$KAFKA_MARKER" && -d "$KAFKA_LIBS" ]] &&
        [[ "$(cat -- "$KAFKA_MARKER")" == "$(pom_fingerprint)" ]] &&
        compgen -G "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null
}

ensure_java_maven() {
    local missing=()
    command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
    if ! installed; then
        command -v mvn >/dev/null 2>&1 || missing+=(maven)
    fi
    ((${#missing[@]} == 0)) || apt_install "${missing[@]}"
}

cmd_install() {
    grep -q "<kafka.version>$KAFKA_VERSION</kafka.version>" "$KAFKA_POM" ||
        die "KAFKA_VERSION=$KAFKA_VERSION in kafka.sh does not match <kafka.version> in $KAFKA_POM"
    ensure_state_dirs
    if installed; then
        log "jars for Kafka $KAFKA_VERSION already cached in $KAFKA_LIBS"
        return 0
    fi
    ensure_java_maven
    mkdir -p -- "$FEDELTA_CACHE_DIR"
    # The cache is shared by all stacks: serialize installs, then re-check under the lock.
    exec 9>"$KAFKA_HOME.lock"
    flock -w 600 9 || die "timed out waiting for the install lock $KAFKA_HOME.lock"
    if installed; then
        exec 9>&-
        log "jars for Kafka $KAFKA_VERSION already cached in $KAFKA_LIBS"
        return 0
    fi
    local t0 tmp mvn_log="$FEDELTA_LOG_DIR/kafka-install.log"
    t0="$(now_s)"
    log "resolving Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS"
    mkdir -p -- "$KAFKA_HOME"
    tmp="$(mktemp -d "$KAFKA_HOME/libs.tmp.XXXXXX")"
    if ! mvn -q -B -Dstyle.color=never -f "$KAFKA_POM" dependency:copy-dependencies \
        "-DoutputDirectory=$tmp" -DincludeScope=runtime >"$mvn_log" 2>&1; then
        rm -rf -- "$tmp"
        show_log_tail "$mvn_log"
        die "mvn dependency:copy-dependencies failed (full output: $mvn_log)"
    fi
    compgen -G "$tmp/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null ||
        die "mvn finished but kafka_2.13-$KAFKA_VERSION.jar is missing from $tmp"
    rm -rf -- "$KAFKA_LIBS" "$KAFKA_MARKER"
    mv -- "$tmp" "$KAFKA_LIBS"
    pom_fingerprint >"$KAFKA_MARKER"
    exec 9>&-
    log "installed $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars in $(elapsed_since "$t0") s"
}

# Substitute @NAME@ placeholders; values are escaped for sed (the passwords are URL-safe
# base64). The rendered files hold passwords: owner-only.
render_properties() {
    local esc_data controller
    esc_data="$(printf '%s' "$KAFKA_DATA" | sed -e 's/[\\|&]/\\&/g')"
    controller="$(kafka_password controller)"
    [[ -n "$controller" ]] || die "no Kafka passwords in $FEDELTA_SECRETS_ENV"
    (
        umask 077
        sed -e "s|@KAFKA_PORT@|$FEDELTA_KAFKA_PORT|g" \
            -e "s|@KAFKA_CONTROLLER_PORT@|$FEDELTA_KAFKA_CONTROLLER_PORT|g" \
            -e "s|@KAFKA_DATA_DIR@|$esc_data|g" \
            -e "s|@KAFKA_CONTROLLER_PASSWORD@|$controller|g" \
            "$KAFKA_TEMPLATE" >"$KAFKA_PROPS.tmp"
        mv -- "$KAFKA_PROPS.tmp" "$KAFKA_PROPS"
        cat >"$KAFKA_CONTROLLER_CLIENT" <<EOF
bootstrap.servers=$KAFKA_BOOTSTRAP
security.protocol=SASL_PLAINTEXT
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="controller" password="$controller";
default.api.timeout.ms=$((START_TIMEOUT * 1000))
EOF
    )
}

# The SCRAM users (one per service, and admin), made or updated as the broker's own PLAIN login
# (so a data dir formatted before SASL gets them too). The passwords go through stdin, never a
# command line.
apply_principals() {
    local name
    for name in "${KAFKA_PRINCIPALS[@]}"; do
        [[ "$name" == controller ]] || printf '%s %s\n' "$name" "$(kafka_password "$name")"
    done | java "-Dlog4j2.configurationFile=$KAFKA_LOG4J" -cp "$KAFKA_LIBS/*" \
        "$KAFKA_PRINCIPALS_TOOL" "$KAFKA_CONTROLLER_CLIENT" >>"$KAFKA_LOG" 2>&1
}

# What the users and ACLs were last applied from (passwords, table, tool), kept in the data dir:
# the broker keeps both in its metadata, so a restart with the same ones skips applying them
# (a restart stays as quick as before SASL; a wiped data dir applies them again).
KAFKA_PRINCIPALS_APPLIED="$KAFKA_DATA/fedelta-principals.sha256"
principals_fingerprint() {
    {
        grep -E '^FEDELTA_KAFKA_[A-Z]+_PASSWORD=' "$FEDELTA_SECRETS_ENV"
        (cd "$FEDELTA_REPO_ROOT" && "$FEDELTA_PYTHON" -m shared.messaging.acls lines)
        cat -- "$KAFKA_PRINCIPALS_TOOL"
    } | sha256sum | cut -d' ' -f1
}

# The ACLs of shared/messaging/acls.py, as the admin user: the missing ones created, our
# principals' stale ones removed.
apply_acls() {
    (
        set -a
        # shellcheck source=/dev/null
        source <(kafka_client_env KAFKA_ admin)
        set +a
        cd "$FEDELTA_REPO_ROOT"
        "$FEDELTA_PYTHON" -m shared.messaging.acls apply --bootstrap-servers "$KAFKA_BOOTSTRAP"
    ) >>"$KAFKA_LOG" 2>&1
}

# A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, not starting with '-'
# (the same shape as `kafka-storage.sh random-uuid`, without paying for a JVM start).
new_cluster_id() {
    "$FEDELTA_PYTHON" -c '
import base64, uuid
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not s.startswith("-"):
        print(s)
        break
'
}

format_storage() {
    if [[ -f "$KAFKA_DATA/meta.properties" ]]; then
        return 0
    fi
    local cluster_id
    if [[ -s "$KAFKA_CLUSTER_ID_FILE" ]]; then
        cluster_id="$(cat -- "$KAFKA_CLUSTER_ID_FILE")"
    else
        cluster_id="$(new_cluster_id)"
        printf '%s\n' "$cluster_id" >"$KAFKA_CLUSTER_ID_FILE"
    fi
    mkdir -p -- "$KAFKA_DATA"
    if ! java "-Dlog4j2.configurationFile=$KAFKA_LOG4J" -cp "$KAFKA_LIBS/*" \
        kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_PROPS" >>"$KAFKA_LOG" 2>&1; then
        show_log_tail "$KAFKA_LOG" 20
        die "formatting $KAFKA_DATA failed"
    fi
    log "formatted $KAFKA_DATA (cluster id $cluster_id)"
}

# Wait until the broker answers a real metadata request (not just a TCP accept), giving up when
# the process dies. Exit codes: 0 ready, 1 timeout, 2 process died.
wait_ready() {
    local pid="$1"
    KAFKA_PASSWORD="$(kafka_password admin)" \
        "$FEDELTA_PYTHON" - "$KAFKA_BOOTSTRAP" "$pid" "$START_TIMEOUT" <<'PY'
import asyncio
import logging
import os
import sys
import time

logging.disable(logging.CRITICAL)  # aiokafka logs every refused connection while we poll
from aiokafka.admin import AIOKafkaAdminClient  # noqa: E402

bootstrap, pid, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + timeout


def alive() -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


async def probe() -> bool:
    client = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=5000,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username="admin",
        sasl_plain_password=os.environ["KAFKA_PASSWORD"],
    )
    try:
        await asyncio.wait_for(client.start(), 10)
        await asyncio.wait_for(client.list_topics(), 10)
        cluster = await asyncio.wait_for(client.describe_cluster(), 10)
        return bool(cluster.get("brokers"))
    except Exception:
        return False
    finally:
        try:
            await client.close()
        except Exception:
            pass


async def main() -> int:
    while time.monotonic() < deadline:
        if not alive():
            return 2
        if await probe():
            return 0
        await asyncio.sleep(0.5)
    return 1


sys.exit(asyncio.run(main()))
PY
}

cmd_start() {
    local pid t0 rc=0
    ensure_state_dirs
    if pid="$(running_pid "$KAFKA_PIDFILE" "$KAFKA_MATCH")"; then
        log "already running on $KAFKA_BOOTSTRAP (pid $pid)"
        return 0
    fi
    require_python
    installed || cmd_install
    command -v java >/dev/null 2>&1 || ensure_java_maven
    require_port_free "$FEDELTA_KAFKA_PORT" "kafka"
    require_port_free "$FEDELTA_KAFKA_CONTROLLER_PORT" "kafka controller"
    mkdir -p -- "$KAFKA_STATE"
    chmod 700 -- "$KAFKA_STATE"  # log segments hold personal data (the customers topic)
    ensure_kafka_secrets
    render_properties
    format_storage
    t0="$(now_s)"
    printf '\n===== %s starting Kafka %s =====\n' "$(date -u +%FT%TZ)" "$KAFKA_VERSION" >>"$KAFKA_LOG"
    pid="$(start_daemon "$KAFKA_PIDFILE" "$KAFKA_LOG" \
        java "${JVM_OPTS[@]}" -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_PROPS")"
    local fingerprint applied=""
    fingerprint="$(principals_fingerprint)"
    [[ -f "$KAFKA_PRINCIPALS_APPLIED" ]] && applied="$(cat -- "$KAFKA_PRINCIPALS_APPLIED")"
    if [[ "$applied" != "$fingerprint" ]] && ! apply_principals; then
        show_log_tail "$KAFKA_LOG"
        stop_pid "$pid" 15 || true
        rm -f -- "$KAFKA_PIDFILE"
        die "could not create the Kafka users (log: $KAFKA_LOG)"
    fi
    wait_ready "$pid" || rc=$?
    if ((rc == 0)) && [[ "$applied" != "$fingerprint" ]]; then
        if ! apply_acls; then
            show_log_tail "$KAFKA_LOG"
            stop_pid "$pid" 15 || true
            rm -f -- "$KAFKA_PIDFILE"
            die "could not apply the ACLs of shared/messaging/acls.py (log: $KAFKA_LOG)"
        fi
        printf '%s\n' "$fingerprint" >"$KAFKA_PRINCIPALS_APPLIED"
    fi
    case "$rc" in
        0)
            log "started on $KAFKA_BOOTSTRAP (pid $pid) in $(elapsed_since "$t0") s"
            ;;
        2)
            rm -f -- "$KAFKA_PIDFILE"
            show_log_tail "$KAFKA_LOG"
            die "broker process $pid exited during startup (log: $KAFKA_LOG)"
            ;;
        *)
            show_log_tail "$KAFKA_LOG"
            stop_pid "$pid" 15 || true
            rm -f -- "$KAFKA_PIDFILE"
            die "broker did not answer metadata requests on $KAFKA_BOOTSTRAP within $START_TIMEOUT s (log: $KAFKA_LOG)"
            ;;
    esac
}

cmd_stop() {
    local rc=0 t0
    t0="$(now_s)"
    stop_daemon "$KAFKA_PIDFILE" "$KAFKA_MATCH" "$STOP_TIMEOUT" || rc=$?
    case "$rc" in
        0) log "stopped in $(elapsed_since "$t0") s" ;;
        1) log "not running" ;;
        2) warn "killed after $STOP_TIMEOUT s without a clean shutdown (log: $KAFKA_LOG)" ;;
    esac
}

cmd_status() {
    local pid
    if pid="$(running_pid "$KAFKA_PIDFILE" "$KAFKA_MATCH")"; then
        log "running on $KAFKA_BOOTSTRAP (pid $pid)"
        return 0
    fi
    log "stopped"
    return 3
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 install|start|stop|status" >&2
        exit 2
        ;;
esac
