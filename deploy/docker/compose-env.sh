#!/usr/bin/env bash
# Writes the credentials docker-compose.yml requires to an env file readable by you only, once:
# run again, it keeps the file (and the databases' passwords, which the postgres volume holds).
#
#   deploy/docker/compose-env.sh [FILE]      default .fedelta/compose.env
#   docker compose --env-file .fedelta/compose.env up -d --build
set -euo pipefail

# Each service's own tokens, by role: FEDELTA_<SERVICE>_<ROLE>_TOKEN for the clients and its
# SHA-256, FEDELTA_<SERVICE>_<ROLE>_TOKEN_SHA256, which is all the service is given.
service_tokens() {
    python3 - "$@" <<'EOT'
import hashlib, secrets, sys
have = set(sys.argv[1:])
for service in ("INGEST", "POINTS", "TIERS", "NOTIFICATIONS", "ENGAGEMENT", "INSIGHTS", "WEB"):
    for role in ("READ", "OPERATE", "ADMIN"):
        name = f"FEDELTA_{service}_{role}_TOKEN"
        if name not in have:
            token = secrets.token_urlsafe(32)
            print(f"{name}={token}")
            print(f"{name}_SHA256={hashlib.sha256(token.encode()).hexdigest()}")
EOT
}

# What came after the first version of this file: the keys ingest and notifications seal
# stored secrets with (base64 of 32 random bytes; a key lost is every sealed secret lost), the
# SHA-256 of the till token in the file (points is given the hash only), and the database
# password of a service added since (engagement, insights, web: docs/operations.md, "Docker
# Compose", says how a postgres volume made before it gets its role and database), and the
# web's: its console token at each service (FEDELTA_WEB_<SERVICE>_TOKEN, the service given its
# SHA-256 as FEDELTA_<SERVICE>_CONSOLE_TOKEN_SHA256), the first staff account's password and
# the secret of a receipt's wallet link (shared with ingest).
later_credentials() {
    python3 - "$1" <<'EOT'
import base64, hashlib, os, secrets, sys
values = {}
for line in open(sys.argv[1], encoding="utf-8"):
    name, sep, value = line.rstrip("\n").partition("=")
    if sep:
        values[name] = value
for service in ("INGEST", "NOTIFICATIONS"):
    name = f"FEDELTA_{service}_SECRETS_KEY"
    if name not in values:
        print(f"{name}={base64.b64encode(os.urandom(32)).decode()}")
for service in ("ENGAGEMENT", "INSIGHTS", "WEB"):
    name = f"FEDELTA_{service}_DB_PASSWORD"
    if name not in values:
        print(f"{name}={secrets.token_urlsafe(32)}")
# The program's secret engagement keys its surprise draws with (docs/engagement.md).
if "FEDELTA_ENGAGEMENT_SURPRISE_SECRET" not in values:
    print(f"FEDELTA_ENGAGEMENT_SURPRISE_SECRET={secrets.token_urlsafe(32)}")
# Kafka's principals (SECURITY.md, "The broker"): the broker's own login, admin, one a service.
for principal in (
    "CONTROLLER", "ADMIN", "INGEST", "POINTS", "TIERS", "NOTIFICATIONS", "ENGAGEMENT", "INSIGHTS",
    "WEB",
):
    name = f"FEDELTA_KAFKA_{principal}_PASSWORD"
    if name not in values:
        print(f"{name}={secrets.token_urlsafe(32)}")
for service in ("INGEST", "POINTS", "TIERS", "NOTIFICATIONS", "ENGAGEMENT", "INSIGHTS"):
    name = f"FEDELTA_WEB_{service}_TOKEN"
    if name not in values:
        token = secrets.token_urlsafe(32)
        print(f"{name}={token}")
        print(f"FEDELTA_{service}_CONSOLE_TOKEN_SHA256={hashlib.sha256(token.encode()).hexdigest()}")
for name in ("FEDELTA_WEB_FIRST_STAFF_PASSWORD", "FEDELTA_RECEIPT_SECRET"):
    if name not in values:
        print(f"{name}={secrets.token_urlsafe(32)}")
if "FEDELTA_TILL_TOKEN" in values and "FEDELTA_TILL_TOKEN_SHA256" not in values:
    digest = hashlib.sha256(values["FEDELTA_TILL_TOKEN"].encode()).hexdigest()
    print(f"FEDELTA_TILL_TOKEN_SHA256={digest}")
EOT
}

file="${1:-.fedelta/compose.env}"
if [[ -f "$file" ]]; then
    # A file made before the till token existed gets one added; nothing else changes.
    if ! grep -q '^FEDELTA_TILL_TOKEN=' "$file"; then
        (umask 077 && printf 'FEDELTA_TILL_TOKEN=%s\n' "$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')" >>"$file")
        echo "compose-env: added FEDELTA_TILL_TOKEN to $file" >&2
    fi
    # Nor the services' own tokens: those missing are added (the one admin and read token
    # of before are no longer used).
    mapfile -t have < <(grep -oE '^FEDELTA_[A-Z]+_(READ|OPERATE|ADMIN)_TOKEN=' "$file" | tr -d '=' || true)
    added="$(service_tokens "${have[@]}")"
    if [[ -n "$added" ]]; then
        (umask 077 && printf '%s\n' "$added" >>"$file")
        echo "compose-env: added the services' own tokens to $file" >&2
    fi
    # Nor the keys secrets are sealed with at rest, nor the till token's hash (points holds
    # the hash only): those missing are added.
    added="$(later_credentials "$file")"
    if [[ -n "$added" ]]; then
        (umask 077 && printf '%s\n' "$added" >>"$file")
        echo "compose-env: added secrets keys / the till token's hash / passwords to $file" >&2
    fi
    echo "compose-env: $file exists; kept" >&2
    exit 0
fi
# Every token from one interpreter: URL-safe, since the database passwords go into
# postgresql:// URLs unescaped.
mapfile -t tokens < <(python3 -c 'import secrets; [print(secrets.token_urlsafe(32)) for _ in range(11)]')
((${#tokens[@]} == 11)) || { echo "compose-env: could not make tokens" >&2; exit 1; }
mkdir -p -- "$(dirname -- "$file")"
umask 077
{
    printf 'FEDELTA_POSTGRES_PASSWORD=%s\n' "${tokens[0]}"
    index=1
    for service in INGEST POINTS TIERS NOTIFICATIONS; do
        printf 'FEDELTA_%s_DB_PASSWORD=%s\n' "$service" "${tokens[index]}"
        index=$((index + 1))
    done
    service_tokens
    printf 'FEDELTA_PARTNER_KEY=fk_%s\n' "${tokens[7]}"
    printf 'FEDELTA_PARTNER_SECRET=fs_%s\n' "${tokens[8]}"
    printf 'FEDELTA_GRAFANA_ADMIN_PASSWORD=%s\n' "${tokens[9]}"
    # Points' till scope, held by ingest only: tills call ingest, never points.
    printf 'FEDELTA_TILL_TOKEN=%s\n' "${tokens[10]}"
} >"$file"
added="$(later_credentials "$file")"
printf '%s\n' "$added" >>"$file"
echo "compose-env: wrote $file (mode 600)" >&2
