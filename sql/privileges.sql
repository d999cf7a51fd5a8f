-- Reading results and status is public; control functions are not.
\pset null '(null)'
SET timezone = 'UTC';
CREATE ROLE trafficagg_reader;
SET ROLE trafficagg_reader;
SELECT count(*) >= 0 AS readable FROM trafficagg.by_page_realtime;
SELECT count(*) >= 0 AS readable FROM trafficagg.by_page;
SELECT count(*) >= 0 AS readable FROM trafficagg.total_live;
SELECT count(*) >= 0 AS readable FROM trafficagg.status;
SELECT count(*) >= 0 AS readable FROM trafficagg.aggregates;
SELECT trafficagg.ingest(ev('2026-01-08T00:00:00Z'));
SELECT trafficagg.ingest('{}'::jsonb);
SELECT trafficagg.ingest(ARRAY['{}']);
SELECT trafficagg.flush();
SELECT count(*) FROM trafficagg.rejected_events;
INSERT INTO trafficagg.aggregates VALUES ('mine', '{}');
-- hidden: insufficient_privilege (16 reworded the message, so only its SQLSTATE is compared)
\set VERBOSITY sqlstate
SHOW trafficagg.kafka_options;
\set VERBOSITY default
RESET ROLE;
SHOW trafficagg.kafka_options;
DROP ROLE trafficagg_reader;
