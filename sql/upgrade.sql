-- ALTER EXTENSION UPDATE from 0.1.0: every aggregate table gains the sketch
-- columns (rows already there keep theirs NULL), every view is rebuilt, and
-- the next flush merges into the old rows.
\pset null '(null)'
SET timezone = 'UTC';
DROP EXTENSION trafficagg CASCADE;
CREATE EXTENSION trafficagg VERSION '0.1.0';
INSERT INTO trafficagg.aggregates VALUES ('by_referrer', '{referrer}');
INSERT INTO trafficagg.by_page VALUES ('2026-04-01 00:00+00', '2026-04-01 00:01+00', '/old', 'click',
    5, 0, 0, 1, 12.5, 12.5, 12.5);
ALTER EXTENSION trafficagg UPDATE TO '0.2.0';
SELECT extversion FROM pg_extension WHERE extname = 'trafficagg';
\d trafficagg.by_referrer
\d trafficagg.by_page_realtime
SELECT trafficagg.ingest(ev('2026-04-01T00:00:10Z', '/old', 'click',
       '{"user_id": "u1", "response_time_ms": 20}'));
SELECT count(*) AS live_rows FROM trafficagg.by_page_live WHERE page = '/old';
SELECT trafficagg.flush(close_all => true);
SELECT events, latency_count, latency_sum, unique_users, latency_p50,
       users = (SELECT hll_add_agg(hll_hash_text('u1'), 12, 5, -1, 1)) AS users_same_bytes
  FROM trafficagg.by_page WHERE page = '/old';
SELECT count(*) AS hourly_rows FROM trafficagg.by_referrer_hourly;
SELECT column_name FROM information_schema.columns
 WHERE table_schema = 'trafficagg' AND table_name = 'status' AND column_name LIKE 'sketch%'
 ORDER BY 1;
-- deleting an aggregate drops its four views
DELETE FROM trafficagg.aggregates WHERE name = 'by_referrer';
SELECT count(*) FROM pg_views WHERE schemaname = 'trafficagg' AND viewname LIKE 'by_referrer%';
-- so can a default aggregate's, whose views the extension made
DELETE FROM trafficagg.aggregates WHERE name = 'by_device';
SELECT count(*) FROM pg_views WHERE schemaname = 'trafficagg' AND viewname LIKE 'by_device%';
INSERT INTO trafficagg.aggregates VALUES ('by_device', '{device}');
SELECT count(*) FROM pg_views WHERE schemaname = 'trafficagg' AND viewname LIKE 'by_device%';
-- and on to 0.3.0: the functions run by whoever changes the catalog resolve
-- names in pg_catalog only; rewind_watermark() exists; the data stay
ALTER EXTENSION trafficagg UPDATE TO '0.3.0';
SELECT extversion FROM pg_extension WHERE extname = 'trafficagg';
SELECT proname, proconfig FROM pg_proc
 WHERE pronamespace = 'trafficagg'::regnamespace AND proconfig IS NOT NULL ORDER BY 1;
SELECT has_function_privilege('public', 'trafficagg.rewind_watermark(timestamptz)', 'EXECUTE')
       AS public_may_rewind;
SELECT events, unique_users FROM trafficagg.by_page WHERE page = '/old';
