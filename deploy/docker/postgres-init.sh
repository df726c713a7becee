#!/usr/bin/env bash
# One role and one database per service, as deploy/local/postgres.sh makes them: no service
# can connect to another's database. The official postgres image runs this once, on an empty
# data volume; the passwords come from the container's environment (docker-compose.yml), never
# from this file. Run again, it adds only what is missing (a service added since the volume
# was made: docs/operations.md, "Running with Docker Compose"), and changes no password.
set -euo pipefail

for service in ingest points tiers notifications engagement insights web; do
    variable="FEDELTA_${service^^}_DB_PASSWORD"
    password="${!variable:?$variable is not set}"
    # psql's :'password' quotes the value as a literal (and format's %I and %L what it builds):
    # no quoting of our own to get wrong. CREATE DATABASE runs on its own, through \gexec.
    psql --variable=ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
        --set=role="$service" --set=database="fedelta_$service" --set=password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'role', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'database', :'role')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database') \gexec
REVOKE CONNECT ON DATABASE :"database" FROM PUBLIC;
SQL
done
