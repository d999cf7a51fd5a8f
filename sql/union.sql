-- create_union(): this server's rows and foreign servers', read as one
-- server's.  The foreign server here is a loopback to this database, so
-- through it every row is read twice: merged with the local rows, counts
-- double while the users sketches stay the same (a union of a sketch with
-- itself), and the digests merge; read without the local rows, every view
-- equals its table.
\pset null '(null)'
SET timezone = 'UTC';
DROP EXTENSION trafficagg CASCADE;
CREATE EXTENSION trafficagg CASCADE;
SELECT trafficagg.create_union('everywhere', '{nowhere}');
CREATE EXTENSION postgres_fdw;
SELECT trafficagg.create_union('everywhere', '{nowhere}');
SELECT trafficagg.create_union('everywhere', '{}', include_local => false);
DO $$
BEGIN
    EXECUTE format('CREATE SERVER loopback FOREIGN DATA WRAPPER postgres_fdw'
                   ' OPTIONS (host %L, port %L, dbname %L)',
                   split_part(current_setting('unix_socket_directories'), ',', 1),
                   current_setting('port'), current_database());
END $$;
CREATE USER MAPPING FOR CURRENT_USER SERVER loopback;
SELECT count(*) AS ingested FROM (
  SELECT trafficagg.ingest(ev(to_char(timestamptz '2026-11-26 00:00:00+00' + i * interval '400 ms',
                                      'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                              '/p' || (i % 4), 'click',
                              format('{"user_id": "u%s", "response_time_ms": %s, "country": "c%s"}',
                                     i % 37, 1 + i * 7 % 900, i % 5)::jsonb))
    FROM generate_series(1, 400) i) x;
SELECT trafficagg.ingest('not json');
SELECT trafficagg.flush(close_all => true);
SELECT reason, count(*) AS rejected FROM trafficagg.rejected_events GROUP BY 1;
SELECT trafficagg.create_union('everywhere', '{loopback}', include_local => false);
-- the loopback alone: every view row for row equal to its table
SELECT a.name,
       (SELECT count(*) FROM trafficagg.by_page) AS table_rows,
       (SELECT count(*) FROM everywhere.by_page) AS view_rows
  FROM trafficagg.aggregates a WHERE a.name = 'by_page';
SELECT (SELECT count(*) FROM (SELECT window_start, window_end, page, event_type, events, errors,
                                     client_errors, latency_count, latency_sum, latency_min,
                                     latency_max, users::text, unique_users, latency_p50,
                                     latency_p95, latency_p99 FROM trafficagg.by_page
                              EXCEPT ALL
                              SELECT window_start, window_end, page, event_type, events, errors,
                                     client_errors, latency_count, latency_sum, latency_min,
                                     latency_max, users::text, unique_users, latency_p50,
                                     latency_p95, latency_p99 FROM everywhere.by_page) d) AS differ;
SELECT (SELECT sum(events) FROM trafficagg.total) = (SELECT sum(events) FROM everywhere.total) AS same_total;
-- local and the loopback: counts double, users the same bytes, percentiles from the merged digest
SELECT trafficagg.create_union('everywhere', '{loopback}');
SELECT t.window_start, t.events AS local_events, e.events AS merged_events,
       e.users = t.users AS same_users,
       abs(e.latency_p50 - t.latency_p50) <= 0.01 * t.latency_p50 AS p50_within_1pct,
       e.latency_count = 2 * t.latency_count AS latency_count_doubled,
       e.latency_min = t.latency_min AND e.latency_max = t.latency_max AS same_min_max
  FROM trafficagg.total t JOIN everywhere.total e USING (window_start, window_end)
 WHERE window_start >= '2026-11-26 00:00:00+00'
 ORDER BY 1;
SELECT server, count(*) FROM everywhere.rejected_events GROUP BY 1 ORDER BY 1;
-- the foreign tables are in a schema of the server's own; made again on a second call
SELECT foreign_table_schema, count(*) FROM information_schema.foreign_tables
 GROUP BY 1 ORDER BY 1;
SELECT trafficagg.create_union('everywhere', '{loopback}');
SELECT count(*) AS foreign_tables FROM information_schema.foreign_tables;
-- not for everyone
CREATE ROLE union_nobody;
SET ROLE union_nobody;
SELECT trafficagg.create_union('x', '{loopback}');
RESET ROLE;
DROP SCHEMA everywhere, everywhere_loopback CASCADE;
DROP USER MAPPING FOR CURRENT_USER SERVER loopback;
DROP SERVER loopback;
DROP EXTENSION postgres_fdw;
DROP ROLE union_nobody;
