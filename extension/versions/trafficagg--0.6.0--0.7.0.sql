/*
 * trafficagg 0.6.0 -> 0.7.0: several servers read as one.
 *  - create_union(target, servers): views in schema target that merge this
 *    server's aggregate rows with those of postgres_fdw foreign servers
 *    (servers sharing a consumer group, trafficagg.shared_group).  Nothing
 *    else changes in SQL; the library adds trafficagg.shared_group.
 */
\echo Use "ALTER EXTENSION trafficagg UPDATE TO '0.7.0'" to load this file. \quit

-------------------------------------------------------------------------------
-- Several servers read as one (trafficagg.shared_group)
-------------------------------------------------------------------------------

-- Views in schema target that read every server's rows as one server's:
-- for each aggregate of the local catalog, the local table and, through
-- postgres_fdw, the same table of each foreign server in servers (servers
-- the caller created, with user mappings), merged per key as the _realtime
-- views merge a table row and live data: counts and sums added, min and
-- max, the users sketches unioned (hll_union_agg: the same bytes as one
-- sketch over all the events), the latency digests merged without loss.
-- Also target.rejected_events, every server's dead letters with the
-- server's name.  Each server's tables are imported as foreign tables into
-- a schema of its own, target || '_' || server, dropped and made again.
-- Runs as the caller, with only pg_catalog on its search_path.
CREATE FUNCTION @extschema@.create_union(target name, servers name[],
                                         remote_schema name DEFAULT '@extschema@',
                                         include_local boolean DEFAULT true)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp SET client_min_messages = warning AS
$$
DECLARE
    hll      text := (SELECT quote_ident(n.nspname) FROM pg_extension e
                      JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'hll');
    agg      record;
    srv      name;
    tables   text;
    parts    text;
    rparts   text;
    dim_list text;
    metric_cols text;
    i        int;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'postgres_fdw') THEN
        RAISE EXCEPTION 'trafficagg.create_union() needs postgres_fdw'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'CREATE EXTENSION postgres_fdw; then CREATE SERVER and CREATE USER MAPPING for each server.';
    END IF;
    IF coalesce(cardinality(servers), 0) = 0 AND NOT include_local THEN
        RAISE EXCEPTION 'no server to read' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH srv IN ARRAY coalesce(servers, '{}') LOOP
        IF NOT EXISTS (SELECT FROM pg_foreign_server WHERE srvname = srv) THEN
            RAISE EXCEPTION 'foreign server "%" does not exist', srv
                USING ERRCODE = 'undefined_object',
                      HINT = 'CREATE SERVER ... FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host ..., dbname ...).';
        END IF;
    END LOOP;

    SELECT string_agg(quote_ident(a.name), ', ') || ', rejected_events' INTO tables
      FROM @extschema@.aggregates a;
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', target);
    FOREACH srv IN ARRAY coalesce(servers, '{}') LOOP
        EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', target || '_' || srv);
        EXECUTE format('CREATE SCHEMA %I', target || '_' || srv);
        EXECUTE format('IMPORT FOREIGN SCHEMA %I LIMIT TO (%s) FROM SERVER %I INTO %I',
                       remote_schema, tables, srv, target || '_' || srv);
    END LOOP;

    FOR agg IN SELECT a.name, a.dimensions, a.metrics FROM @extschema@.aggregates a ORDER BY a.name LOOP
        parts := '';
        IF include_local THEN
            parts := format('SELECT * FROM @extschema@.%I', agg.name);
        END IF;
        FOREACH srv IN ARRAY coalesce(servers, '{}') LOOP
            parts := parts || CASE WHEN parts = '' THEN '' ELSE ' UNION ALL ' END
                  || format('SELECT * FROM %I.%I', target || '_' || srv, agg.name);
        END LOOP;
        dim_list := '';
        FOR i IN 1 .. coalesce(cardinality(agg.dimensions), 0) LOOP
            dim_list := dim_list || format(', %I', agg.dimensions[i]);
        END LOOP;
        metric_cols := '';
        FOR i IN 1 .. coalesce(cardinality(agg.metrics), 0) LOOP
            metric_cols := metric_cols || format(
                ', sum(%1$I)::bigint AS %1$I, sum(%2$I) AS %2$I, min(%3$I) AS %3$I, max(%4$I) AS %4$I',
                agg.metrics[i] || '_count', agg.metrics[i] || '_sum',
                agg.metrics[i] || '_min', agg.metrics[i] || '_max');
        END LOOP;
        EXECUTE format(
            'CREATE OR REPLACE VIEW %1$I.%2$I AS SELECT window_start, window_end%3$s,'
            ' sum(events)::bigint AS events, sum(errors)::bigint AS errors,'
            ' sum(client_errors)::bigint AS client_errors,'
            ' sum(latency_count)::bigint AS latency_count, sum(latency_sum) AS latency_sum,'
            ' min(latency_min) AS latency_min, max(latency_max) AS latency_max,'
            ' %5$s.hll_union_agg(users) AS users,'
            ' %5$s.hll_cardinality(%5$s.hll_union_agg(users))::bigint AS unique_users,'
            ' @extschema@.latency_union(latency) AS latency,'
            -- one row: its percentiles, from the exact ranks; several: the merged digest's
            ' CASE WHEN count(latency) > 1 THEN @extschema@.latency_percentile(@extschema@.latency_union(latency), 0.5)'
            '      ELSE max(latency_p50) END AS latency_p50,'
            ' CASE WHEN count(latency) > 1 THEN @extschema@.latency_percentile(@extschema@.latency_union(latency), 0.95)'
            '      ELSE max(latency_p95) END AS latency_p95,'
            ' CASE WHEN count(latency) > 1 THEN @extschema@.latency_percentile(@extschema@.latency_union(latency), 0.99)'
            '      ELSE max(latency_p99) END AS latency_p99%6$s'
            ' FROM (%4$s) AS u GROUP BY window_start, window_end%3$s',
            target, agg.name, dim_list, parts, hll, metric_cols);
    END LOOP;

    rparts := '';
    IF include_local THEN
        rparts := 'SELECT ''local''::text AS server, * FROM @extschema@.rejected_events';
    END IF;
    FOREACH srv IN ARRAY coalesce(servers, '{}') LOOP
        rparts := rparts || CASE WHEN rparts = '' THEN '' ELSE ' UNION ALL ' END
               || format('SELECT %L::text, * FROM %I.rejected_events', srv, target || '_' || srv);
    END LOOP;
    EXECUTE format('CREATE OR REPLACE VIEW %I.rejected_events AS %s', target, rparts);
END;
$$;
COMMENT ON FUNCTION @extschema@.create_union(name, name[], name, boolean) IS
  'views in schema target reading this server''s and the given postgres_fdw servers'' aggregate rows merged as one server''s';
REVOKE ALL ON FUNCTION @extschema@.create_union(name, name[], name, boolean) FROM PUBLIC;
