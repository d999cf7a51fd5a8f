/*
 * trafficagg 0.2.0 -> 0.3.0: hardening.  The functions that run as whoever
 * changes trafficagg.aggregates (usually a superuser) get a search_path of
 * pg_catalog only and schema-qualified names; inserting more aggregates than
 * trafficagg.max_aggregates is an error; trafficagg.rewind_watermark().
 * Tables, rows and views are unchanged.
 */
\echo Use "ALTER EXTENSION trafficagg UPDATE TO '0.3.0'" to load this file. \quit

CREATE OR REPLACE FUNCTION @extschema@.valid_dimensions(dims text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN pg_catalog.cardinality(dims) OPERATOR(pg_catalog.<=) 8
   AND pg_catalog.array_position(dims, NULL) IS NULL
   AND dims OPERATOR(pg_catalog.<@) ARRAY['event_type', 'page', 'user_id', 'session_id', 'country',
                     'device', 'referrer', 'status_code']
   AND pg_catalog.cardinality(dims) OPERATOR(pg_catalog.=)
       (SELECT pg_catalog.count(DISTINCT d) FROM pg_catalog.unnest(dims) AS d);

-- Create the table and the _live, _realtime, _hourly and _daily views of one
-- aggregate.  Run again on an existing table (an upgrade), it adds missing
-- columns.  It runs as whoever inserts into trafficagg.aggregates (a
-- superuser, usually), so its search_path holds only pg_catalog: every other
-- name, in it and in the views it creates, is schema-qualified, hll's
-- functions by the schema hll is installed in.
CREATE OR REPLACE FUNCTION @extschema@.create_aggregate_objects(agg_name text, dims text[])
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
CREATE OR REPLACE FUNCTION @extschema@.aggregates_changed() RETURNS trigger
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

CREATE FUNCTION @extschema@.rewind_watermark(to_time timestamptz) RETURNS timestamptz
AS 'MODULE_PATHNAME', 'trafficagg_rewind_watermark' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION @extschema@.rewind_watermark(timestamptz) IS
  'repair: write every open window, then move the watermark back to the time given';
REVOKE ALL ON FUNCTION @extschema@.rewind_watermark(timestamptz) FROM PUBLIC;
