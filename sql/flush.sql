-- What a flush writes: one row per group with exact metrics, merged into an
-- existing row of the same key (INSERT ... ON CONFLICT DO UPDATE).
\pset null '(null)'
SET timezone = 'UTC';
SELECT trafficagg.ingest(ev('2026-01-04T00:00:01Z', '/f', 'click',
       '{"status_code": 200, "response_time_ms": 10, "country": "FR"}'));
SELECT trafficagg.ingest(ev('2026-01-04T00:00:02Z', '/f', 'click',
       '{"status_code": 404, "response_time_ms": 2.5, "country": "FR"}'));
SELECT trafficagg.ingest(ev('2026-01-04T00:00:03Z', '/f', 'click',
       '{"status_code": 500, "response_time_ms": 1000.001}'));
SELECT trafficagg.ingest(ev('2026-01-04T00:00:04Z', '/f', 'click', '{"status_code": 503}'));
SELECT trafficagg.ingest(ev('2026-01-04T00:00:05Z', '/f', 'view'));

-- a row already in the table for the same key (as a spill writes): merged
INSERT INTO trafficagg.by_page VALUES ('2026-01-04 00:00+00', '2026-01-04 00:01+00', '/f', 'click',
    100, 1, 2, 3, 30.5, 0.5, 20000);
-- missing dimension values are a real value (NULL), merged like any other
INSERT INTO trafficagg.by_country VALUES ('2026-01-04 00:00+00', '2026-01-04 00:01+00', NULL,
    7, 0, 0, 0, NULL, NULL, NULL);

SELECT trafficagg.flush(close_all => true);
SELECT page, event_type, events, errors, client_errors, latency_count, latency_sum,
       latency_min, latency_max
  FROM trafficagg.by_page WHERE page = '/f' ORDER BY event_type;
SELECT country, events, errors, client_errors, latency_count, latency_sum, latency_min, latency_max
  FROM trafficagg.by_country WHERE window_start = '2026-01-04 00:00+00' ORDER BY country;
SELECT events, errors, client_errors, latency_count, latency_sum
  FROM trafficagg.total WHERE window_start = '2026-01-04 00:00+00';
-- nothing left in memory for that window
SELECT count(*) FROM trafficagg.by_page_live WHERE window_start = '2026-01-04 00:00+00';

-- a flush that rolls back leaves the groups in memory, to be written again
SELECT trafficagg.ingest(ev('2026-01-04T00:05:00Z', '/rollback'));
BEGIN;
SELECT trafficagg.flush(close_all => true);
SELECT count(*) FROM trafficagg.by_page_live WHERE page = '/rollback';
ROLLBACK;
SELECT count(*) FROM trafficagg.by_page_live WHERE page = '/rollback';
SELECT count(*) FROM trafficagg.by_page WHERE page = '/rollback';
SELECT trafficagg.flush();
SELECT page, events FROM trafficagg.by_page WHERE page = '/rollback';
