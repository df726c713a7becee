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
for service in ("INGEST", "POINTS", "TIERS", "NOTIFICATIONS"):
    for role in ("READ", "OPERATE", "ADMIN"):
        name = f"FEDELTA_{service}_{role}_TOKEN"
        if name not in have:
            token = secrets.token_urlsafe(32)
            print(f"{name}={token}")
            print(f"{name}_SHA256={hashlib.sha256(token.encode()).hexdigest()}")
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
echo "compose-env: wrote $file (mode 600)" >&2
