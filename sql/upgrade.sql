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
-- and on to 0.4.0: the field mapping, its rows the schema 0.3.0 had built in;
-- the aggregates and their rows stay; a new aggregate's dimensions must be
-- fields that can be grouped by
ALTER EXTENSION trafficagg UPDATE TO '0.4.0';
SELECT extversion FROM pg_extension WHERE extname = 'trafficagg';
SELECT name, source, path, type, required, role, time_format, latency_unit
  FROM trafficagg.fields ORDER BY id;
SELECT name, dimensions FROM trafficagg.aggregates ORDER BY name;
SELECT events, unique_users FROM trafficagg.by_page WHERE page = '/old';
SELECT trafficagg.ingest('{"timestamp":"2026-01-01T00:00:00Z","event_type":"x","page":"/new"}');
\set VERBOSITY terse
INSERT INTO trafficagg.aggregates VALUES ('by_colour', '{colour}');
\set VERBOSITY default
SELECT has_function_privilege('public', 'trafficagg.ingest(text, text, timestamptz, jsonb)', 'EXECUTE')
       AS public_may_ingest;
-- dimension values of any length: tables with dimensions are unique on each
-- dimension's dimension_key() (the old constraint on the values themselves
-- is replaced); status() reports the dictionary's bytes
SELECT conrelid::regclass AS unique_constraint FROM pg_constraint
 WHERE contype = 'u' AND conrelid IN (SELECT ('trafficagg.' || name)::regclass
                                        FROM trafficagg.aggregates
                                      UNION SELECT 'trafficagg.by_referrer'::regclass)
 ORDER BY 1;
SELECT indrelid::regclass AS table, pg_get_indexdef(indexrelid) AS unique_index
  FROM pg_index WHERE indisunique AND indrelid IN (SELECT ('trafficagg.' || name)::regclass
                                                     FROM trafficagg.aggregates)
 ORDER BY 1;
-- (the indexes belong to their tables, not to the extension)
SELECT count(*) AS index_members FROM pg_depend
 WHERE classid = 'pg_class'::regclass AND deptype = 'e'
   AND objid IN (SELECT indexrelid FROM pg_index);
-- a table kept from a deleted aggregate is converted when it is inserted again
INSERT INTO trafficagg.aggregates VALUES ('by_referrer', '{referrer}');
SELECT pg_get_indexdef(indexrelid) FROM pg_index
 WHERE indrelid = 'trafficagg.by_referrer'::regclass;
SELECT column_name FROM information_schema.columns
 WHERE table_schema = 'trafficagg' AND table_name = 'status' AND column_name LIKE 'dictionary%'
 ORDER BY 1;
-- a flush merges into a row already there by the new key, long values too
INSERT INTO trafficagg.by_page VALUES ('2026-04-01 00:01+00', '2026-04-01 00:02+00',
    repeat('/long', 700), 'click', 5, 0, 0, 0);
SELECT trafficagg.ingest(ev('2026-04-01T00:01:20Z', repeat('/long', 700), 'click',
       jsonb_build_object('referrer', repeat('r', 5000))));
SELECT trafficagg.ingest(ev('2026-04-01T00:01:30Z', '/old', 'click',
       jsonb_build_object('referrer', repeat('r', 5000))));
SELECT trafficagg.flush(close_all => true);
SELECT window_start, octet_length(page), events FROM trafficagg.by_page
 WHERE page LIKE '/long%' OR page = '/old' ORDER BY 1, 2;
SELECT window_start, octet_length(referrer), referrer = repeat('r', 5000) AS whole, events
  FROM trafficagg.by_referrer ORDER BY 1, 2;
DELETE FROM trafficagg.aggregates WHERE name = 'by_referrer';
-- and on to 0.5.0: dimension_key() is no longer STRICT, so the planner
-- inlines it; the keys are the same, so the indexes are kept (the same
-- files).  This session read the indexes before the update: its flush still
-- finds them for its ON CONFLICT, and merges into rows written before it
SELECT string_agg(pg_relation_filenode(indexrelid)::text, ',' ORDER BY indexrelid) AS index_files
  FROM pg_index WHERE indrelid IN (SELECT ('trafficagg.' || name)::regclass FROM trafficagg.aggregates)
\gset
INSERT INTO trafficagg.by_page VALUES ('2026-04-01 00:05+00', '2026-04-01 00:06+00',
    repeat('/long', 700), 'click', 5, 0, 0, 0);
INSERT INTO trafficagg.by_country VALUES ('2026-04-01 00:05+00', '2026-04-01 00:06+00',
    NULL, 5, 0, 0, 0);
ALTER EXTENSION trafficagg UPDATE TO '0.5.0';
SELECT extversion FROM pg_extension WHERE extname = 'trafficagg';
SELECT proisstrict FROM pg_proc WHERE oid = 'trafficagg.dimension_key(text)'::regprocedure;
SELECT string_agg(pg_relation_filenode(indexrelid)::text, ',' ORDER BY indexrelid)
       = :'index_files' AS indexes_kept
  FROM pg_index WHERE indrelid IN (SELECT ('trafficagg.' || name)::regclass FROM trafficagg.aggregates);
SELECT trafficagg.ingest(ev('2026-04-01T00:05:20Z', repeat('/long', 700), 'click'));
SELECT trafficagg.ingest(ev('2026-04-01T00:05:30Z', '/old', 'click'));
SELECT trafficagg.flush(close_all => true);
SELECT window_start, octet_length(page), events FROM trafficagg.by_page
 WHERE window_start = '2026-04-01 00:05+00' ORDER BY 1, 2;
SELECT window_start, country, events FROM trafficagg.by_country
 WHERE window_start = '2026-04-01 00:05+00' ORDER BY 1, 2;
-- and on to 0.6.0: groups() and live_groups() of one key
ALTER EXTENSION trafficagg UPDATE TO '0.6.0';
SELECT extversion FROM pg_extension WHERE extname = 'trafficagg';
SELECT trafficagg.ingest(ev('2026-04-01T00:06:20Z', '/k', 'click'));
SELECT dims, events FROM trafficagg.groups('by_page', ARRAY['/k', NULL]);
-- and on to 0.7.0: create_union()
ALTER EXTENSION trafficagg UPDATE TO '0.7.0';
SELECT extversion FROM pg_extension WHERE extname = 'trafficagg';
SELECT pg_get_function_identity_arguments('trafficagg.create_union'::regproc);
-- the upgrade path ends in the objects a fresh install makes (views aside:
-- this test changed the aggregates; and the row types of tables and views,
-- members since PostgreSQL 17, which go with their relations)
SELECT current_database() AS upgraded_db \gset
CREATE TEMP VIEW members AS
  SELECT count(*) AS objects,
         md5(string_agg(pg_describe_object(d.classid, d.objid, d.objsubid), ','
                    ORDER BY pg_describe_object(d.classid, d.objid, d.objsubid))) AS digest
    FROM pg_depend d JOIN pg_extension e ON d.refobjid = e.oid
   WHERE e.extname = 'trafficagg' AND d.deptype = 'e'
     AND NOT EXISTS (SELECT FROM pg_class c WHERE d.classid = 'pg_class'::regclass
                     AND c.oid = d.objid AND c.relkind = 'v')
     AND NOT EXISTS (SELECT FROM pg_type t JOIN pg_class c ON c.oid = t.typrelid
                     WHERE d.classid = 'pg_type'::regclass AND c.relkind <> 'c'
                       AND d.objid IN (t.oid, t.typarray));
SELECT * FROM members;
-- and in the same functions (attributes and bodies)
CREATE TEMP VIEW function_defs AS
  SELECT count(*) AS functions,
         md5(string_agg(pg_get_functiondef(p.oid), ',' ORDER BY p.oid::regprocedure::text)) AS digest
    FROM pg_depend d JOIN pg_extension e ON d.refobjid = e.oid JOIN pg_proc p ON p.oid = d.objid
   WHERE e.extname = 'trafficagg' AND d.deptype = 'e' AND d.classid = 'pg_proc'::regclass
     AND p.prokind <> 'a';
SELECT digest AS functions_digest FROM function_defs \gset
SELECT functions FROM function_defs;
CREATE DATABASE trafficagg_fresh;
\c trafficagg_fresh
SET client_min_messages = warning;
CREATE EXTENSION trafficagg CASCADE;
SELECT count(*) AS objects,
       md5(string_agg(pg_describe_object(d.classid, d.objid, d.objsubid), ','
                    ORDER BY pg_describe_object(d.classid, d.objid, d.objsubid))) AS digest
  FROM pg_depend d JOIN pg_extension e ON d.refobjid = e.oid
 WHERE e.extname = 'trafficagg' AND d.deptype = 'e'
   AND NOT EXISTS (SELECT FROM pg_class c WHERE d.classid = 'pg_class'::regclass
                   AND c.oid = d.objid AND c.relkind = 'v')
   AND NOT EXISTS (SELECT FROM pg_type t JOIN pg_class c ON c.oid = t.typrelid
                   WHERE d.classid = 'pg_type'::regclass AND c.relkind <> 'c'
                     AND d.objid IN (t.oid, t.typarray));
SELECT count(*) AS functions,
       md5(string_agg(pg_get_functiondef(p.oid), ',' ORDER BY p.oid::regprocedure::text))
         = :'functions_digest' AS same_functions
  FROM pg_depend d JOIN pg_extension e ON d.refobjid = e.oid JOIN pg_proc p ON p.oid = d.objid
 WHERE e.extname = 'trafficagg' AND d.deptype = 'e' AND d.classid = 'pg_proc'::regclass
   AND p.prokind <> 'a';
\c :upgraded_db
DROP DATABASE trafficagg_fresh;
