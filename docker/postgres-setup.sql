-- The database setup of the postgres service of docker-compose.yml, run by
-- docker/postgres-entrypoint.sh at every start (psql as the superuser, in the
-- database trafficagg consumes into, ON_ERROR_STOP) and by
-- t/014_grafana_dashboard.pl, which checks what the role grafana may do.
-- Idempotent.  psql variable: grafana_password.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS trafficagg CASCADE;

-- grafana: the data source of docker/grafana/provisioning/datasources.
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'grafana') AS create_grafana \gset
\if :create_grafana
CREATE ROLE grafana;
\endif
ALTER ROLE grafana WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'grafana_password';
ALTER ROLE grafana SET default_transaction_read_only = on;

-- It reads what the extension grants to PUBLIC: the aggregate tables and their
-- _live, _realtime, _hourly and _daily views (those of aggregates added later
-- too), status, aggregates, kafka_offsets, spilled_windows; not
-- rejected_events, whose payloads are whole messages as producers sent them,
-- and none of the functions that change state (ingest, flush,
-- rewind_watermark).  Nothing is granted to grafana itself.  Setups before
-- this one granted it SELECT on every table of the schema, rejected_events
-- included: a data directory they set up loses that here.
REVOKE ALL ON TABLE trafficagg.rejected_events FROM grafana;
REVOKE ALL ON SEQUENCE trafficagg.rejected_events_id_seq FROM grafana;
