-- Aggregates are data: a row in trafficagg.aggregates is an aggregate with
-- its table and views.
\pset null '(null)'
SET timezone = 'UTC';
SELECT name, dimensions FROM trafficagg.aggregates ORDER BY name;
INSERT INTO trafficagg.aggregates (name, dimensions) VALUES ('by_referrer', '{referrer,device}');
\d trafficagg.by_referrer
SELECT trafficagg.ingest(ev('2026-01-07T00:00:00Z', '/r', 'view',
       '{"referrer": "https://news.example/", "device": "tablet"}'));
SELECT trafficagg.ingest(ev('2026-01-07T00:00:01Z', '/r', 'view', '{"device": "tablet"}'));
SELECT referrer, device, events FROM trafficagg.by_referrer_live ORDER BY 1;
SELECT trafficagg.flush(close_all => true);
SELECT window_start, referrer, device, events FROM trafficagg.by_referrer ORDER BY 2;

-- invalid definitions
\set VERBOSITY terse
INSERT INTO trafficagg.aggregates VALUES ('bad_dim', '{page,colour}');
INSERT INTO trafficagg.aggregates VALUES ('dup_dim', '{page,page}');
INSERT INTO trafficagg.aggregates VALUES ('Bad Name', '{}');
INSERT INTO trafficagg.aggregates VALUES ('status', '{}');
UPDATE trafficagg.aggregates SET dimensions = '{page}' WHERE name = 'by_referrer';

\set VERBOSITY default

-- removing one drops its views and keeps its table
DELETE FROM trafficagg.aggregates WHERE name = 'by_referrer';
SELECT to_regclass('trafficagg.by_referrer_live') AS live_view,
       to_regclass('trafficagg.by_referrer') AS kept_table;
SELECT trafficagg.ingest(ev('2026-01-07T00:02:00Z', '/r'));
SELECT * FROM trafficagg.groups('by_referrer');
DROP TABLE trafficagg.by_referrer;
SELECT trafficagg.flush(close_all => true) >= 0 AS flushed;
