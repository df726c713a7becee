#!/usr/bin/env bash
# Writes the credentials docker-compose.yml requires to an env file readable by you only, once:
# run again, it keeps the file (and the databases' passwords, which the postgres volume holds).
#
#   deploy/docker/compose-env.sh [FILE]      default .fedelta/compose.env
#   docker compose --env-file .fedelta/compose.env up -d --build
set -euo pipefail

file="${1:-.fedelta/compose.env}"
if [[ -f "$file" ]]; then
    # A file made before the till token existed gets one added; nothing else changes.
    if ! grep -q '^FEDELTA_TILL_TOKEN=' "$file"; then
        (umask 077 && printf 'FEDELTA_TILL_TOKEN=%s\n' "$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')" >>"$file")
        echo "compose-env: added FEDELTA_TILL_TOKEN to $file" >&2
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
    printf 'FEDELTA_ADMIN_TOKEN=%s\n' "${tokens[5]}"
    printf 'FEDELTA_READ_TOKEN=%s\n' "${tokens[6]}"
    printf 'FEDELTA_PARTNER_KEY=fk_%s\n' "${tokens[7]}"
    printf 'FEDELTA_PARTNER_SECRET=fs_%s\n' "${tokens[8]}"
    printf 'FEDELTA_GRAFANA_ADMIN_PASSWORD=%s\n' "${tokens[9]}"
    # Points' till scope, held by ingest only: tills call ingest, never points.
    printf 'FEDELTA_TILL_TOKEN=%s\n' "${tokens[10]}"
} >"$file"
echo "compose-env: wrote $file (mode 600)" >&2
