#!/usr/bin/env bash
# The whole Fedelta stack from local processes: what `make up` and `make down` run, and what
# the end-to-end tests start on ports of their own.
#
#   deploy/local/stack.sh up      infra, topics, migrations, demo partner, services, dev.env
#   deploy/local/stack.sh down    stop the services and the infrastructure; nothing left running
#   deploy/local/stack.sh status
#
# Running `up` twice is harmless: what runs is left running, what exists is kept.

set -euo pipefail
FEDELTA_COMPONENT=stack
# shellcheck source=deploy/local/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

: "${FEDELTA_INGEST_PORT:=8080}"
: "${FEDELTA_POINTS_PORT:=8081}"
: "${FEDELTA_TIERS_PORT:=8082}"
: "${FEDELTA_NOTIFICATIONS_PORT:=8083}"
: "${FEDELTA_ENGAGEMENT_PORT:=8084}"
: "${FEDELTA_INSIGHTS_PORT:=8085}"
: "${FEDELTA_WEB_PORT:=8086}"
export FEDELTA_INGEST_PORT FEDELTA_POINTS_PORT FEDELTA_TIERS_PORT FEDELTA_NOTIFICATIONS_PORT \
    FEDELTA_ENGAGEMENT_PORT FEDELTA_INSIGHTS_PORT FEDELTA_WEB_PORT

SECRETS_ENV="$FEDELTA_STATE_DIR/secrets.env"
SERVICES_ENV="$FEDELTA_STATE_DIR/services.env"
DEV_ENV="$FEDELTA_STATE_DIR/dev.env"
KAFKA="127.0.0.1:$FEDELTA_KAFKA_PORT"
DEMO_PARTNER_ID=demo

random_token() { "$FEDELTA_PYTHON" -c 'import secrets; print(secrets.token_urlsafe(32))'; }
# What a service is configured with for a token: its SHA-256, hex (the token stays here).
token_sha256() {
    printf %s "$1" | "$FEDELTA_PYTHON" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'
}
SERVICE_NAMES=(ingest points tiers notifications engagement insights web)
TOKEN_ROLES=(read operate admin)
# The services the web calls, each with a console credential of its own (SECURITY.md).
CONSOLE_SERVICES=(ingest points tiers notifications engagement insights)
CONSOLE_USER=admin

# Credentials are made once per state dir and kept, so `up` twice gives the same ones.
ensure_secrets() {
    # (Appended: the infrastructure's scripts may have started the file, with Kafka's passwords.)
    if ! grep -q '^FEDELTA_PARTNER_KEY=' "$SECRETS_ENV" 2>/dev/null; then
        umask 077
        {
            printf 'FEDELTA_PARTNER_KEY=fk_%s\n' "$(random_token)"
            printf 'FEDELTA_PARTNER_SECRET=fs_%s\n' "$(random_token)"
            printf 'FEDELTA_TILL_TOKEN=%s\n' "$(random_token)"
        } >>"$SECRETS_ENV"
        log "made development credentials in $SECRETS_ENV"
    fi
    # The till token (points' till scope, held by ingest only) came later: a state dir made
    # before it gets one added, its other credentials kept.
    if ! grep -q '^FEDELTA_TILL_TOKEN=' "$SECRETS_ENV"; then
        (umask 077 && printf 'FEDELTA_TILL_TOKEN=%s\n' "$(random_token)" >>"$SECRETS_ENV")
        log "added a till token to $SECRETS_ENV"
    fi
    # Every service has tokens of its own, one per role (FEDELTA_<SERVICE>_<ROLE>_TOKEN); a
    # state dir made before them gets them added (its one admin and read token are unused).
    local name role variable
    for name in "${SERVICE_NAMES[@]}"; do
        for role in "${TOKEN_ROLES[@]}"; do
            variable="FEDELTA_${name^^}_${role^^}_TOKEN"
            if ! grep -q "^$variable=" "$SECRETS_ENV"; then
                (umask 077 && printf '%s=%s\n' "$variable" "$(random_token)" >>"$SECRETS_ENV")
            fi
        done
    done
    ensure_kafka_secrets  # each Kafka principal's password (lib.sh; kafka.sh makes them first)
    ensure_secrets_keys  # the keys ingest and notifications seal stored secrets with
    # Engagement's surprise draws are keyed with the program's secret (docs/engagement.md).
    if ! grep -q '^FEDELTA_ENGAGEMENT_SURPRISE_SECRET=' "$SECRETS_ENV"; then
        (umask 077 && printf 'FEDELTA_ENGAGEMENT_SURPRISE_SECRET=%s\n' "$(random_token)" >>"$SECRETS_ENV")
    fi
    ensure_web_secrets
    # shellcheck source=/dev/null
    source "$SECRETS_ENV"
}

# The web's credentials, made once per state dir like the others: its console token at each
# service (FEDELTA_WEB_<SERVICE>_TOKEN; the service is given its SHA-256), the first staff
# account's password, and the secret a receipt's wallet link is signed with (shared with
# ingest, which signs the links the web checks).
ensure_web_secrets() {
    local name variable
    for name in "${CONSOLE_SERVICES[@]}"; do
        variable="FEDELTA_WEB_${name^^}_TOKEN"
        if ! grep -q "^$variable=" "$SECRETS_ENV"; then
            (umask 077 && printf '%s=%s\n' "$variable" "$(random_token)" >>"$SECRETS_ENV")
        fi
    done
    for variable in FEDELTA_WEB_FIRST_STAFF_PASSWORD FEDELTA_WEB_RECEIPT_SECRET; do
        if ! grep -q "^$variable=" "$SECRETS_ENV"; then
            (umask 077 && printf '%s=%s\n' "$variable" "$(random_token)" >>"$SECRETS_ENV")
        fi
    done
}

# The keys ingest and notifications seal the secrets they store with (partners' signing
# secrets, webhooks' secrets: SECURITY.md), base64 of 32 random bytes, made once per state dir
# (a key lost is every sealed secret lost). The databases' passwords are postgres.sh's (it
# makes them before it starts: FEDELTA_PG_<NAME>_PASSWORD).
ensure_secrets_keys() {
    local name variable
    for name in ingest notifications; do
        variable="FEDELTA_${name^^}_SECRETS_KEY"
        if ! grep -q "^$variable=" "$SECRETS_ENV"; then
            (umask 077 && printf '%s=%s\n' "$variable" "$(head -c 32 /dev/urandom | base64 -w 0)" >>"$SECRETS_ENV")
        fi
    done
}

write_services_env() {
    local name upper role token
    umask 077
    {
        for name in "${SERVICE_NAMES[@]}"; do
            upper="${name^^}"
            printf 'FEDELTA_%s_DATABASE_URL=%s\n' "$upper" "$("$FEDELTA_LOCAL_DIR/postgres.sh" dsn "$name")"
            printf 'FEDELTA_%s_KAFKA_BOOTSTRAP_SERVERS=%s\n' "$upper" "$KAFKA"
            kafka_client_env "FEDELTA_${upper}_KAFKA_" "$name"
            # The hashes of the service's own tokens, never the tokens (docs/operations.md).
            for role in "${TOKEN_ROLES[@]}"; do
                token="FEDELTA_${upper}_${role^^}_TOKEN"
                printf 'FEDELTA_%s_%s_TOKEN_SHA256=%s\n' "$upper" "${role^^}" "$(token_sha256 "${!token}")"
            done
        done
        printf 'FEDELTA_INGEST_SECRETS_KEY=%s\n' "$FEDELTA_INGEST_SECRETS_KEY"
        printf 'FEDELTA_NOTIFICATIONS_SECRETS_KEY=%s\n' "$FEDELTA_NOTIFICATIONS_SECRETS_KEY"
        printf 'FEDELTA_ENGAGEMENT_SURPRISE_SECRET=%s\n' "$FEDELTA_ENGAGEMENT_SURPRISE_SECRET"
        # Tills reach points only through ingest, which holds the till token; points grants
        # it the till scope by its hash (docs/operations.md, "Till calls").
        printf 'FEDELTA_POINTS_TILL_TOKEN_SHA256=%s\n' "$(token_sha256 "$FEDELTA_TILL_TOKEN")"
        printf 'FEDELTA_INGEST_POINTS_TOKEN=%s\n' "$FEDELTA_TILL_TOKEN"
        printf 'FEDELTA_INGEST_POINTS_URL=http://127.0.0.1:%s\n' "$FEDELTA_POINTS_PORT"
        printf 'FEDELTA_NOTIFICATIONS_SMTP_HOST=127.0.0.1\n'
        printf 'FEDELTA_NOTIFICATIONS_SMTP_PORT=%s\n' "$FEDELTA_SMTP_PORT"
        printf 'FEDELTA_NOTIFICATIONS_SMS_URL=http://127.0.0.1:%s/v1/messages\n' "${FEDELTA_SMS_PORT:-8026}"
        printf 'FEDELTA_NOTIFICATIONS_SMS_TOKEN=local-sms-token\n'  # the fake provider takes any
        # Where notifications reads a coupon's code when it sends it: points, with points'
        # read token.
        printf 'FEDELTA_NOTIFICATIONS_POINTS_URL=http://127.0.0.1:%s\n' "$FEDELTA_POINTS_PORT"
        printf 'FEDELTA_NOTIFICATIONS_POINTS_TOKEN=%s\n' "$FEDELTA_POINTS_READ_TOKEN"
        write_web_env
    } >"$SERVICES_ENV"
}

# The web (services/web) calls each service with its console credential, by plaintext token;
# the service holds the SHA-256. Plain http here, hence cookies without `Secure`.
write_web_env() {
    local name upper token web_url="http://127.0.0.1:$FEDELTA_WEB_PORT" port
    for name in "${CONSOLE_SERVICES[@]}"; do
        upper="${name^^}"
        token="FEDELTA_WEB_${upper}_TOKEN"
        port="FEDELTA_${upper}_PORT"
        printf 'FEDELTA_%s_CONSOLE_TOKEN_SHA256=%s\n' "$upper" "$(token_sha256 "${!token}")"
        printf 'FEDELTA_WEB_%s_TOKEN=%s\n' "$upper" "${!token}"
        printf 'FEDELTA_WEB_%s_URL=http://127.0.0.1:%s\n' "$upper" "${!port}"
    done
    printf 'FEDELTA_WEB_PUBLIC_URL=%s\n' "$web_url"
    printf 'FEDELTA_WEB_COOKIE_SECURE=false\n'
    printf 'FEDELTA_WEB_FIRST_STAFF_USER=%s\n' "$CONSOLE_USER"
    printf 'FEDELTA_WEB_FIRST_STAFF_PASSWORD=%s\n' "$FEDELTA_WEB_FIRST_STAFF_PASSWORD"
    # A receipt's QR link: ingest signs it, the web checks it, with the one secret.
    printf 'FEDELTA_WEB_RECEIPT_SECRET=%s\n' "$FEDELTA_WEB_RECEIPT_SECRET"
    printf 'FEDELTA_INGEST_RECEIPT_SECRET=%s\n' "$FEDELTA_WEB_RECEIPT_SECRET"
    printf 'FEDELTA_INGEST_WALLET_URL=%s\n' "$web_url"
}

with_services_env() {
    (
        set -a
        # shellcheck source=/dev/null
        source "$SERVICES_ENV"
        set +a
        cd "$FEDELTA_REPO_ROOT"
        "$@"
    )
}

write_dev_env() {
    {
        printf 'FEDELTA_INGEST_URL=http://127.0.0.1:%s\n' "$FEDELTA_INGEST_PORT"
        printf 'FEDELTA_POINTS_URL=http://127.0.0.1:%s\n' "$FEDELTA_POINTS_PORT"
        printf 'FEDELTA_TIERS_URL=http://127.0.0.1:%s\n' "$FEDELTA_TIERS_PORT"
        printf 'FEDELTA_NOTIFICATIONS_URL=http://127.0.0.1:%s\n' "$FEDELTA_NOTIFICATIONS_PORT"
        printf 'FEDELTA_ENGAGEMENT_URL=http://127.0.0.1:%s\n' "$FEDELTA_ENGAGEMENT_PORT"
        printf 'FEDELTA_INSIGHTS_URL=http://127.0.0.1:%s\n' "$FEDELTA_INSIGHTS_PORT"
        printf 'FEDELTA_WEB_URL=http://127.0.0.1:%s\n' "$FEDELTA_WEB_PORT"
        # The console's first staff account (the web makes it when it has none).
        printf 'FEDELTA_CONSOLE_USER=%s\n' "$CONSOLE_USER"
        printf 'FEDELTA_CONSOLE_PASSWORD=%s\n' "$FEDELTA_WEB_FIRST_STAFF_PASSWORD"
        printf 'FEDELTA_PARTNER_ID=%s\n' "$DEMO_PARTNER_ID"
        printf 'FEDELTA_PARTNER_KEY=%s\n' "$FEDELTA_PARTNER_KEY"
        printf 'FEDELTA_PARTNER_SECRET=%s\n' "$FEDELTA_PARTNER_SECRET"
        # Each service's own tokens, by role (what the fedelta command, bench, chaos and the
        # end-to-end tests call the services with: fedelta_client.DevEnv).
        grep -E '^FEDELTA_[A-Z]+_(READ|OPERATE|ADMIN)_TOKEN=' "$SECRETS_ENV"
        printf 'FEDELTA_MAIL_DIR=%s\n' "$FEDELTA_MAIL_DIR"
        printf 'FEDELTA_SMS_DIR=%s\n' "$(abspath "${FEDELTA_SMS_DIR:-$FEDELTA_STATE_DIR/sms}")"
        printf 'KAFKA_BOOTSTRAP_SERVERS=%s\n' "$KAFKA"
        kafka_client_env KAFKA_ admin  # the fedelta command's Kafka commands, bench, chaos
        # One broker: what `fedelta topics create` asks for here.
        printf 'FEDELTA_TOPIC_REPLICATION_FACTOR=1\nFEDELTA_TOPIC_MIN_ISR=1\n'
        # For `fedelta migrate`: each service's database, as the services themselves get it.
        grep -E '^FEDELTA_[A-Z]+_DATABASE_URL=' "$SERVICES_ENV"
    } >"$DEV_ENV"
}

print_next_steps() {
    local env_file="$DEV_ENV"
    [[ "$env_file" == "$FEDELTA_REPO_ROOT/"* ]] && env_file="${env_file#"$FEDELTA_REPO_ROOT/"}"
    cat <<EOT

Fedelta is up.
  ingest          http://127.0.0.1:$FEDELTA_INGEST_PORT/docs   (POS-facing, signed calls)
  points          http://127.0.0.1:$FEDELTA_POINTS_PORT/docs
  tiers           http://127.0.0.1:$FEDELTA_TIERS_PORT/docs
  notifications   http://127.0.0.1:$FEDELTA_NOTIFICATIONS_PORT/docs
  engagement      http://127.0.0.1:$FEDELTA_ENGAGEMENT_PORT/docs   (stamp cards, challenges, badges)
  insights        http://127.0.0.1:$FEDELTA_INSIGHTS_PORT/docs   (RFM, lifecycle, loyalty types, segments, KPIs)
  member wallet   http://127.0.0.1:$FEDELTA_WEB_PORT/wallet/sign-in   (a sign-in link by email, or a receipt's QR)
  console         http://127.0.0.1:$FEDELTA_WEB_PORT/console   (user $CONSOLE_USER; the password: FEDELTA_CONSOLE_PASSWORD in $env_file)
  mail catcher    $FEDELTA_MAIL_DIR (one .eml file per message)
  SMS catcher     http://127.0.0.1:${FEDELTA_SMS_PORT:-8026}/v1/messages -> ${FEDELTA_SMS_DIR:-$FEDELTA_STATE_DIR/sms} (one .json file per SMS)
  Kafka           $KAFKA      PostgreSQL 127.0.0.1:$FEDELTA_PG_PORT
  credentials     $env_file

Try it: run the whole demo (enrol, two purchases, balance, tier, mail) with  make demo
or send a signed purchase yourself (from the repository root, in bash; the signature is over
"<t>.<METHOD>.<path?query>.<raw body>", see SECURITY.md):

  set -a; source $env_file; set +a
  BODY='{"customer_id": "alice", "locale": "en", "time_zone": "Europe/Rome", "email": "alice@example.com", "consent": {"email": true, "sms": false}}'
  T=\$(date +%s); SIG=\$(printf '%s.POST./v1/customers.%s' "\$T" "\$BODY" | openssl dgst -sha256 -hmac "\$FEDELTA_PARTNER_SECRET" | sed 's/^.*= //')
  curl -s -X POST "\$FEDELTA_INGEST_URL/v1/customers" -H "Authorization: Bearer \$FEDELTA_PARTNER_KEY" \\
       -H "Fedelta-Signature: t=\$T,v1=\$SIG" -H 'Content-Type: application/json' -d "\$BODY"; echo
  BODY='{"purchase_id": "p-1001", "customer_id": "alice", "occurred_at": "'\$(date -u +%Y-%m-%dT%H:%M:%SZ)'", "currency": "EUR", "total": "300.00"}'
  T=\$(date +%s); SIG=\$(printf '%s.POST./v1/purchases.%s' "\$T" "\$BODY" | openssl dgst -sha256 -hmac "\$FEDELTA_PARTNER_SECRET" | sed 's/^.*= //')
  curl -s -X POST "\$FEDELTA_INGEST_URL/v1/purchases" -H "Authorization: Bearer \$FEDELTA_PARTNER_KEY" \\
       -H "Fedelta-Signature: t=\$T,v1=\$SIG" -H 'Content-Type: application/json' -d "\$BODY"; echo
  curl -s -H "Authorization: Bearer \$FEDELTA_POINTS_READ_TOKEN" "\$FEDELTA_POINTS_URL/v1/customers/alice/balance"; echo

Logs: $FEDELTA_LOG_DIR    Stop everything: make down
EOT
}

cmd_up() {
    local t0 name
    t0="$(now_s)"
    require_python
    "$FEDELTA_LOCAL_DIR/infra.sh" up
    # Status 3: an existing topic is weaker than asked (say one made by an older version with
    # the broker's 24 h retention). It was printed; a development stack goes on with it.
    # As the admin principal (its password through the environment, not the arguments).
    (set -a && source <(kafka_client_env KAFKA_ admin) && set +a && cd "$FEDELTA_REPO_ROOT" &&
        "$FEDELTA_PYTHON" -m shared.messaging.topics --bootstrap-servers "$KAFKA" \
            --replication-factor 1 --min-insync-replicas 1) || {
        local status=$?
        ((status == 3)) || exit "$status"
        log "WARNING: the topics above are weaker than asked; recreate them with make clean"
    }
    ensure_secrets
    write_services_env
    for name in "${SERVICE_NAMES[@]}"; do
        with_services_env "$FEDELTA_PYTHON" -m "services.$name" migrate
    done
    # The credentials go through the environment of this one command, not its arguments
    # (which `ps` shows to every local user).
    (
        export FEDELTA_PARTNER_KEY FEDELTA_PARTNER_SECRET
        with_services_env "$FEDELTA_PYTHON" -m services.ingest provision-partner \
            --partner-id "$DEMO_PARTNER_ID" --name "Demo Café"
    )
    "$FEDELTA_LOCAL_DIR/services.sh" start
    write_dev_env
    log "up in $(elapsed_since "$t0") s"
    print_next_steps
}

cmd_down() {
    "$FEDELTA_LOCAL_DIR/services.sh" stop
    "$FEDELTA_LOCAL_DIR/infra.sh" down
}

cmd_status() {
    local rc=0
    "$FEDELTA_LOCAL_DIR/infra.sh" status || rc=3
    "$FEDELTA_LOCAL_DIR/services.sh" status || rc=3
    return "$rc"
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) die "usage: $0 up|down|status" ;;
esac
