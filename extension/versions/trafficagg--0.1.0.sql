/*
 * trafficagg install script.  The Makefile installs it as
 * trafficagg--<version>.sql; upgrade scripts live beside it.
 */
\echo Use "CREATE EXTENSION trafficagg CASCADE" to load this file. \quit

GRANT USAGE ON SCHEMA @extschema@ TO PUBLIC;

-------------------------------------------------------------------------------
-- The aggregate catalog: one row per aggregate.  Inserting a row creates the
-- aggregate's table and views; the worker starts filling it after a
-- configuration reload (SELECT pg_reload_conf()).
-------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.valid_dimensions(dims text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN cardinality(dims) <= 8
   AND array_position(dims, NULL) IS NULL
   AND dims <@ ARRAY['event_type', 'page', 'user_id', 'session_id', 'country',
                     'device', 'referrer', 'status_code']
   AND cardinality(dims) = (SELECT count(DISTINCT d) FROM unnest(dims) AS d);

CREATE TABLE @extschema@.aggregates (
    name        text PRIMARY KEY
                CHECK (name ~ '^[a-z][a-z0-9_]{0,39}$'
                       AND name NOT IN ('aggregates', 'kafka_offsets', 'rejected_events', 'status')),
    dimensions  text[] NOT NULL DEFAULT '{}'
                CHECK (@extschema@.valid_dimensions(dimensions)),
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE @extschema@.aggregates IS
  'trafficagg aggregates: each row is maintained in the table trafficagg.<name>';

-- Create the table and the _live and _realtime views of one aggregate.
CREATE FUNCTION @extschema@.create_aggregate_objects(agg_name text, dims text[])
RETURNS void LANGUAGE plpgsql AS
$$
DECLARE
    t        text := format('@extschema@.%I', agg_name);
    dim_cols text := '';
    dim_list text := '';
    live_dims text := '';
    i        int;
BEGIN
    FOR i IN 1 .. coalesce(cardinality(dims), 0) LOOP
        dim_cols  := dim_cols  || format('%I text, ', dims[i]);
        dim_list  := dim_list  || format(', %I', dims[i]);
        live_dims := live_dims || format('dims[%s] AS %I, ', i, dims[i]);
    END LOOP;

    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS %s ('
        '  window_start timestamptz NOT NULL,'
        '  window_end timestamptz NOT NULL, %s'
        '  events bigint NOT NULL,'
        '  errors bigint NOT NULL,'
        '  client_errors bigint NOT NULL,'
        '  latency_count bigint NOT NULL,'
        '  latency_sum numeric,'
        '  latency_min numeric,'
        '  latency_max numeric,'
        '  UNIQUE NULLS NOT DISTINCT (window_start, window_end%s))',
        t, dim_cols, dim_list);
    EXECUTE format('COMMENT ON TABLE %s IS %L', t,
                   'trafficagg aggregate: final rows of closed windows');

    EXECUTE format(
        'CREATE OR REPLACE VIEW %s AS SELECT window_start, window_end, %s'
        ' events, errors, client_errors, latency_count, latency_sum, latency_min, latency_max'
        ' FROM @extschema@.groups(%L)',
        format('@extschema@.%I', agg_name || '_live'), live_dims, agg_name);

    EXECUTE format(
        'CREATE OR REPLACE VIEW %s AS SELECT window_start, window_end%s,'
        ' sum(events)::bigint AS events, sum(errors)::bigint AS errors,'
        ' sum(client_errors)::bigint AS client_errors,'
        ' sum(latency_count)::bigint AS latency_count, sum(latency_sum) AS latency_sum,'
        ' min(latency_min) AS latency_min, max(latency_max) AS latency_max'
        ' FROM (SELECT * FROM %s UNION ALL SELECT * FROM %s) AS u'
        ' GROUP BY window_start, window_end%s',
        format('@extschema@.%I', agg_name || '_realtime'), dim_list,
        t, format('@extschema@.%I', agg_name || '_live'), dim_list);

    EXECUTE format('GRANT SELECT ON %s, %s, %s TO PUBLIC', t,
                   format('@extschema@.%I', agg_name || '_live'),
                   format('@extschema@.%I', agg_name || '_realtime'));
END;
$$;

CREATE FUNCTION @extschema@.aggregates_changed() RETURNS trigger
LANGUAGE plpgsql AS
$$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM @extschema@.create_aggregate_objects(NEW.name, NEW.dimensions);
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        IF NEW.name IS DISTINCT FROM OLD.name OR NEW.dimensions IS DISTINCT FROM OLD.dimensions THEN
            RAISE EXCEPTION 'the name and dimensions of a trafficagg aggregate cannot be changed'
                USING ERRCODE = 'feature_not_supported',
                      HINT = 'Delete the aggregate and insert a new one under another name.';
        END IF;
        RETURN NEW;
    ELSE
        EXECUTE format('DROP VIEW IF EXISTS @extschema@.%I, @extschema@.%I',
                       OLD.name || '_realtime', OLD.name || '_live');
        RAISE NOTICE 'table trafficagg.% is kept; drop it yourself if its rows are no longer needed', OLD.name;
        RETURN OLD;
    END IF;
END;
$$;

CREATE TRIGGER aggregates_changed
    AFTER INSERT OR UPDATE OR DELETE ON @extschema@.aggregates
    FOR EACH ROW EXECUTE FUNCTION @extschema@.aggregates_changed();

-------------------------------------------------------------------------------
-- Offsets and dead letters, written by each flush
-------------------------------------------------------------------------------

CREATE TABLE @extschema@.kafka_offsets (
    topic             text NOT NULL,
    partition         integer NOT NULL,
    resume_offset     bigint NOT NULL,
    position          bigint NOT NULL,
    flushed_watermark timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);
COMMENT ON TABLE @extschema@.kafka_offsets IS
  'per partition: where replay starts after a crash (resume_offset), the next offset to read '
  '(position) and the watermark up to which windows are flushed; written with the rows';

CREATE TABLE @extschema@.spilled_windows (
    topic          text NOT NULL,
    partition      integer NOT NULL,
    window_start   timestamptz NOT NULL,
    through_offset bigint NOT NULL,
    PRIMARY KEY (topic, partition, window_start)
);
COMMENT ON TABLE @extschema@.spilled_windows IS
  'open windows written early because shared memory was full: their events before '
  'through_offset are in the tables already, which replay after a crash must know';

CREATE TABLE @extschema@.rejected_events (
    id            bigserial PRIMARY KEY,
    received_at   timestamptz NOT NULL DEFAULT now(),
    source        text NOT NULL CHECK (source IN ('kafka', 'sql')),
    topic         text,
    partition     integer,
    "offset"      bigint,
    reason        text NOT NULL,
    detail        text,
    payload       bytea,
    payload_bytes integer
);
COMMENT ON TABLE @extschema@.rejected_events IS
  'dead letters: rejected and late messages, newest trafficagg.rejected_max_rows kept';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.aggregates', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.kafka_offsets', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.spilled_windows', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.rejected_events', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.rejected_events_id_seq', '');

-------------------------------------------------------------------------------
-- Functions
-------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.ingest(event text) RETURNS text
AS 'MODULE_PATHNAME', 'trafficagg_ingest_text' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.ingest(text) IS
  'validate, window and aggregate one event; returns accepted, late or the rejection reason';

CREATE FUNCTION @extschema@.ingest(event jsonb) RETURNS text
AS 'MODULE_PATHNAME', 'trafficagg_ingest_jsonb' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.ingest(jsonb) IS
  'validate, window and aggregate one event; returns accepted, late or the rejection reason';

CREATE FUNCTION @extschema@.ingest(event bytea) RETURNS text
AS 'MODULE_PATHNAME', 'trafficagg_ingest_text' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.ingest(bytea) IS
  'validate, window and aggregate one raw message (bytes as Kafka delivers them)';

CREATE FUNCTION @extschema@.ingest(events text[], OUT outcome text, OUT events bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'trafficagg_ingest_array' LANGUAGE C VOLATILE ROWS 10;
COMMENT ON FUNCTION @extschema@.ingest(text[]) IS
  'ingest many events in order; returns the count of each outcome';

CREATE FUNCTION @extschema@.flush(close_all boolean DEFAULT false) RETURNS bigint
AS 'MODULE_PATHNAME', 'trafficagg_flush' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION @extschema@.flush(boolean) IS
  'write closed windows now (close_all: close every window with data first); returns rows written';

CREATE FUNCTION @extschema@.groups(aggregate text,
    OUT window_start timestamptz, OUT window_end timestamptz, OUT dims text[],
    OUT events bigint, OUT errors bigint, OUT client_errors bigint,
    OUT latency_count bigint, OUT latency_sum numeric,
    OUT latency_min numeric, OUT latency_max numeric)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'trafficagg_groups' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION @extschema@.groups(text) IS
  'groups of an aggregate held in shared memory and not yet visible in its table';

CREATE FUNCTION @extschema@.status(
    OUT source text, OUT topic text, OUT partition integer, OUT assigned boolean,
    OUT "position" bigint, OUT stored_offset bigint, OUT end_offset bigint, OUT lag bigint,
    OUT consumed bigint, OUT accepted bigint, OUT late bigint, OUT rejected bigint,
    OUT rejected_by_reason jsonb, OUT max_event_time timestamptz,
    OUT watermark timestamptz, OUT flushed_watermark timestamptz,
    OUT open_windows integer, OUT groups_used bigint, OUT groups_capacity bigint,
    OUT spills bigint, OUT rejected_dropped bigint, OUT flushes bigint,
    OUT last_flush_at timestamptz, OUT last_flush_ms double precision,
    OUT last_flush_rows bigint, OUT last_error text, OUT broker_state text,
    OUT shmem_bytes bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'trafficagg_status' LANGUAGE C VOLATILE;

CREATE VIEW @extschema@.status AS SELECT * FROM @extschema@.status();
COMMENT ON VIEW @extschema@.status IS
  'one row per source (the SQL path, each Kafka partition) with the worker''s state';

-------------------------------------------------------------------------------
-- Privileges: reading is public, control is not
-------------------------------------------------------------------------------

REVOKE ALL ON FUNCTION @extschema@.ingest(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ingest(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ingest(text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ingest(bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.flush(boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.create_aggregate_objects(text, text[]) FROM PUBLIC;
GRANT SELECT ON @extschema@.aggregates, @extschema@.kafka_offsets, @extschema@.spilled_windows,
    @extschema@.status TO PUBLIC;

-------------------------------------------------------------------------------
-- The default aggregates
-------------------------------------------------------------------------------

INSERT INTO @extschema@.aggregates (name, dimensions) VALUES
    ('by_page',    '{page,event_type}'),
    ('by_country', '{country}'),
    ('by_device',  '{device}'),
    ('total',      '{}');

-- extension members whose rows pg_dump must keep
SELECT pg_catalog.pg_extension_config_dump('@extschema@.by_page', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.by_country', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.by_device', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.total', '');
