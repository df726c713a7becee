-- One role and one database per service, as deploy/local/postgres.sh makes them: no service
-- can connect to another's database.
CREATE ROLE ingest LOGIN PASSWORD 'ingest';
CREATE ROLE points LOGIN PASSWORD 'points';
CREATE ROLE tiers LOGIN PASSWORD 'tiers';
CREATE ROLE notifications LOGIN PASSWORD 'notifications';
CREATE DATABASE fedelta_ingest OWNER ingest;
CREATE DATABASE fedelta_points OWNER points;
CREATE DATABASE fedelta_tiers OWNER tiers;
CREATE DATABASE fedelta_notifications OWNER notifications;
REVOKE CONNECT ON DATABASE fedelta_ingest FROM PUBLIC;
REVOKE CONNECT ON DATABASE fedelta_points FROM PUBLIC;
REVOKE CONNECT ON DATABASE fedelta_tiers FROM PUBLIC;
REVOKE CONNECT ON DATABASE fedelta_notifications FROM PUBLIC;
