#!/usr/bin/env bash
# One role and one database per service, as deploy/local/postgres.sh makes them: no service
# can connect to another's database. The official postgres image runs this once, on an empty
# data volume; the passwords come from the container's environment (docker-compose.yml), never
# from this file.
set -euo pipefail

for service in ingest points tiers notifications; do
    variable="FEDELTA_${service^^}_DB_PASSWORD"
    password="${!variable:?$variable is not set}"
    # psql's :'password' quotes the value as a literal: no quoting of our own to get wrong.
    psql --variable=ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        --set=role="$service" --set=database="fedelta_$service" --set=password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"database" OWNER :"role";
REVOKE CONNECT ON DATABASE :"database" FROM PUBLIC;
SQL
done
