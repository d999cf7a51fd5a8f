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

-- (names are schema-qualified in every function of this script: a role that
-- can create objects in a schema on the search_path must not be able to
-- substitute its own functions or operators; see "Security" in the README)
CREATE FUNCTION @extschema@.valid_dimensions(dims text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN pg_catalog.cardinality(dims) OPERATOR(pg_catalog.<=) 8
   AND pg_catalog.array_position(dims, NULL) IS NULL
   AND dims OPERATOR(pg_catalog.<@) ARRAY['event_type', 'page', 'user_id', 'session_id', 'country',
                     'device', 'referrer', 'status_code']
   AND pg_catalog.cardinality(dims) OPERATOR(pg_catalog.=)
       (SELECT pg_catalog.count(DISTINCT d) FROM pg_catalog.unnest(dims) AS d);

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

-------------------------------------------------------------------------------
-- Sketches: unique users are postgresql-hll values, latencies tdigest values.
-- These helpers are bound to the two extensions' types when this script runs,
-- so the objects below work whatever the search_path is later.
-------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.users_type() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN pg_typeof(NULL::hll)::text;

CREATE FUNCTION @extschema@.latency_type() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN pg_typeof(NULL::tdigest)::text;

-- the worker's bytes are postgresql-hll's storage format
CREATE FUNCTION @extschema@.users_value(bytes bytea) RETURNS hll
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN bytes::hll;

CREATE FUNCTION @extschema@.users_count(users hll) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN hll_cardinality(users)::bigint;

CREATE FUNCTION @extschema@.users_merge(a hll, b hll) RETURNS hll
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a ELSE hll_union(a, b) END;

-- groups() returns a group's latency histogram as bytes; the _live view
-- turns it into a digest only when the column is read
CREATE FUNCTION @extschema@.latency_digest(histogram bytea) RETURNS tdigest
AS 'MODULE_PATHNAME', 'trafficagg_latency_digest' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.latency_value(digest text) RETURNS tdigest
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN digest::tdigest;

-- The union of latency digests without loss: the worker's digests have one
-- centroid per histogram bucket, and centroids of the same bucket are added
-- up (tdigest's own union would compact them).
CREATE FUNCTION @extschema@.latency_merge(a tdigest, b tdigest) RETURNS tdigest
AS 'MODULE_PATHNAME', 'trafficagg_latency_merge' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE @extschema@.latency_union(tdigest) (
    SFUNC = @extschema@.latency_merge, STYPE = tdigest,
    COMBINEFUNC = @extschema@.latency_merge, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.latency_union(tdigest) IS
  'union of latency t-digests, keeping every centroid of the worker''s digests';

-- percentile_disc's rule over a digest's centroids: the mean of the first
-- centroid whose cumulative count reaches fraction * count.  Over the
-- worker's digests, and their unions, this keeps the histogram's relative
-- accuracy; tdigest_percentile interpolates between centroids, which is far
-- off for small groups (values 1 and 1000: a median near 500).
CREATE FUNCTION @extschema@.latency_percentile(latency tdigest, fraction double precision)
RETURNS double precision
AS 'MODULE_PATHNAME', 'trafficagg_latency_percentile' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.latency_percentile(tdigest, double precision) IS
  'percentile (0..1) of a latency t-digest, in ms, by percentile_disc''s rule over its centroids';

-- Create the table and the _live, _realtime, _hourly and _daily views of one
-- aggregate.  Run again on an existing table (an upgrade), it adds missing
-- columns.  It runs as whoever inserts into trafficagg.aggregates (a
-- superuser, usually), so its search_path holds only pg_catalog: every other
-- name, in it and in the views it creates, is schema-qualified, hll's
-- functions by the schema hll is installed in.
CREATE FUNCTION @extschema@.create_aggregate_objects(agg_name text, dims text[])
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    hll      text := (SELECT quote_ident(n.nspname) FROM pg_extension e
                      JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'hll');
    t        text := format('@extschema@.%I', agg_name);
    dim_cols text := '';
    dim_list text := '';
    live_dims text := '';
    sketch_cols text[] := ARRAY[
        'users', @extschema@.users_type(), 'unique_users', 'bigint',
        'latency', @extschema@.latency_type(), 'latency_p50', 'double precision',
        'latency_p95', 'double precision', 'latency_p99', 'double precision'];
    sketch_defs text := '';
    existed  boolean := to_regclass(t) IS NOT NULL;
    i        int;
BEGIN
    FOR i IN 1 .. cardinality(sketch_cols) BY 2 LOOP
        sketch_defs := sketch_defs || format('%I %s, ', sketch_cols[i], sketch_cols[i + 1]);
    END LOOP;
    FOR i IN 1 .. coalesce(cardinality(dims), 0) LOOP
        dim_cols  := dim_cols  || format('%I text, ', dims[i]);
        dim_list  := dim_list  || format(', %I', dims[i]);
        live_dims := live_dims || format('dims[%s] AS %I, ', i, dims[i]);
    END LOOP;

    -- (an extension script may not CREATE ... IF NOT EXISTS a table it
    -- doesn't own, such as one a user's INSERT created: test first)
    IF NOT existed THEN
        EXECUTE format(
            'CREATE TABLE %s ('
            '  window_start timestamptz NOT NULL,'
            '  window_end timestamptz NOT NULL, %s'
            '  events bigint NOT NULL,'
            '  errors bigint NOT NULL,'
            '  client_errors bigint NOT NULL,'
            '  latency_count bigint NOT NULL,'
            '  latency_sum numeric,'
            '  latency_min numeric,'
            '  latency_max numeric, %s'
            '  UNIQUE NULLS NOT DISTINCT (window_start, window_end%s))',
            t, dim_cols, sketch_defs, dim_list);
    ELSE
        -- a table of an earlier version: add the columns it lacks, at the end
        FOR i IN 1 .. cardinality(sketch_cols) BY 2 LOOP
            IF NOT EXISTS (SELECT FROM pg_attribute
                           WHERE attrelid = t::regclass AND attname = sketch_cols[i]
                             AND NOT attisdropped) THEN
                EXECUTE format('ALTER TABLE %s ADD COLUMN %I %s', t,
                               sketch_cols[i], sketch_cols[i + 1]);
            END IF;
        END LOOP;
    END IF;
    EXECUTE format('COMMENT ON TABLE %s IS %L', t,
                   'trafficagg aggregate: final rows of closed windows');

    EXECUTE format(
        'CREATE OR REPLACE VIEW %s AS SELECT window_start, window_end, %s'
        ' events, errors, client_errors, latency_count, latency_sum, latency_min, latency_max,'
        ' users, @extschema@.users_count(users) AS unique_users, latency,'
        ' latency_p50, latency_p95, latency_p99'
        ' FROM (SELECT g.*, @extschema@.users_value(g.users_bytes) AS users,'
        '              @extschema@.latency_digest(g.latency_histogram) AS latency'
        '       FROM @extschema@.groups(%L) AS g) AS g',
        format('@extschema@.%I', agg_name || '_live'), live_dims, agg_name);

    EXECUTE format(
        'CREATE OR REPLACE VIEW %1$s AS SELECT window_start, window_end%2$s,'
        ' sum(events)::bigint AS events, sum(errors)::bigint AS errors,'
        ' sum(client_errors)::bigint AS client_errors,'
        ' sum(latency_count)::bigint AS latency_count, sum(latency_sum) AS latency_sum,'
        ' min(latency_min) AS latency_min, max(latency_max) AS latency_max,'
        ' %5$s.hll_union_agg(users) AS users,'
        ' %5$s.hll_cardinality(%5$s.hll_union_agg(users))::bigint AS unique_users,'
        ' @extschema@.latency_union(latency) AS latency,'
        -- one row (the usual case): its percentiles, from the exact ranks;
        -- a table row and live data of the same window: from the merged digest
        ' CASE WHEN count(latency) > 1 THEN @extschema@.latency_percentile(@extschema@.latency_union(latency), 0.5)'
        '      ELSE max(latency_p50) END AS latency_p50,'
        ' CASE WHEN count(latency) > 1 THEN @extschema@.latency_percentile(@extschema@.latency_union(latency), 0.95)'
        '      ELSE max(latency_p95) END AS latency_p95,'
        ' CASE WHEN count(latency) > 1 THEN @extschema@.latency_percentile(@extschema@.latency_union(latency), 0.99)'
        '      ELSE max(latency_p99) END AS latency_p99'
        ' FROM (SELECT * FROM %3$s UNION ALL SELECT * FROM %4$s) AS u'
        ' GROUP BY window_start, window_end%2$s',
        format('@extschema@.%I', agg_name || '_realtime'), dim_list,
        t, format('@extschema@.%I', agg_name || '_live'), hll);

    -- Rollups of the real-time rows to hours and days (UTC), for tumbling
    -- windows that divide them: exact sums, the union of the users sketches
    -- (the same as one sketch over all the hour's events), merged digests.
    FOR i IN 1 .. 2 LOOP
        EXECUTE format(
            'CREATE OR REPLACE VIEW %1$s AS SELECT'
            ' date_bin(%2$L, window_start, ''epoch'') AS window_start,'
            ' date_bin(%2$L, window_start, ''epoch'') + %2$L AS window_end%3$s,'
            ' sum(events)::bigint AS events, sum(errors)::bigint AS errors,'
            ' sum(client_errors)::bigint AS client_errors,'
            ' sum(latency_count)::bigint AS latency_count, sum(latency_sum) AS latency_sum,'
            ' min(latency_min) AS latency_min, max(latency_max) AS latency_max,'
            ' %5$s.hll_union_agg(users) AS users,'
            ' %5$s.hll_cardinality(%5$s.hll_union_agg(users))::bigint AS unique_users,'
            ' @extschema@.latency_union(latency) AS latency,'
            ' @extschema@.latency_percentile(@extschema@.latency_union(latency), 0.5) AS latency_p50,'
            ' @extschema@.latency_percentile(@extschema@.latency_union(latency), 0.95) AS latency_p95,'
            ' @extschema@.latency_percentile(@extschema@.latency_union(latency), 0.99) AS latency_p99'
            ' FROM %4$s GROUP BY 1, 2%3$s',
            format('@extschema@.%I', agg_name || (ARRAY['_hourly', '_daily'])[i]),
            (ARRAY['1 hour', '1 day'])[i], dim_list,
            format('@extschema@.%I', agg_name || '_realtime'), hll);
    END LOOP;

    EXECUTE format('GRANT SELECT ON %s, %s, %s, %s, %s TO PUBLIC', t,
                   format('@extschema@.%I', agg_name || '_live'),
                   format('@extschema@.%I', agg_name || '_realtime'),
                   format('@extschema@.%I', agg_name || '_hourly'),
                   format('@extschema@.%I', agg_name || '_daily'));
END;
$$;

-- Runs as whoever changes trafficagg.aggregates: only pg_catalog on its
-- search_path, as in create_aggregate_objects.
CREATE FUNCTION @extschema@.aggregates_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    v     text;
    limit_ int := current_setting('trafficagg.max_aggregates', true)::int;
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- one insert at a time, so that concurrent ones can't both pass the limit
        LOCK TABLE @extschema@.aggregates IN SHARE ROW EXCLUSIVE MODE;
        IF limit_ IS NOT NULL AND (SELECT count(*) FROM @extschema@.aggregates) > limit_ THEN
            RAISE EXCEPTION 'trafficagg maintains at most % aggregates (trafficagg.max_aggregates)', limit_
                USING ERRCODE = 'configuration_limit_exceeded',
                      DETAIL = format('Aggregate "%s" would be number %s.', NEW.name,
                                      (SELECT count(*) FROM @extschema@.aggregates)),
                      HINT = 'Delete an aggregate you no longer need, or raise trafficagg.max_aggregates and restart the server.';
        END IF;
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
        FOREACH v IN ARRAY ARRAY[OLD.name || '_daily', OLD.name || '_hourly',
                                 OLD.name || '_realtime', OLD.name || '_live'] LOOP
            -- views made by the install or upgrade script belong to the extension
            IF EXISTS (SELECT FROM pg_depend
                       WHERE classid = 'pg_class'::regclass AND deptype = 'e'
                         AND objid = to_regclass(format('@extschema@.%I', v))) THEN
                EXECUTE format('ALTER EXTENSION trafficagg DROP VIEW @extschema@.%I', v);
            END IF;
            EXECUTE format('DROP VIEW IF EXISTS @extschema@.%I', v);
        END LOOP;
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

CREATE FUNCTION @extschema@.rewind_watermark(to_time timestamptz) RETURNS timestamptz
AS 'MODULE_PATHNAME', 'trafficagg_rewind_watermark' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION @extschema@.rewind_watermark(timestamptz) IS
  'repair: write every open window, then move the watermark back to the time given';

CREATE FUNCTION @extschema@.groups(aggregate text,
    OUT window_start timestamptz, OUT window_end timestamptz, OUT dims text[],
    OUT events bigint, OUT errors bigint, OUT client_errors bigint,
    OUT latency_count bigint, OUT latency_sum numeric,
    OUT latency_min numeric, OUT latency_max numeric,
    OUT users_bytes bytea, OUT latency_histogram bytea,
    OUT latency_p50 double precision, OUT latency_p95 double precision,
    OUT latency_p99 double precision)
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
    OUT shmem_bytes bigint, OUT sketch_bytes bigint, OUT sketch_capacity bigint,
    OUT values_used bigint, OUT values_capacity bigint)
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
REVOKE ALL ON FUNCTION @extschema@.rewind_watermark(timestamptz) FROM PUBLIC;
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
