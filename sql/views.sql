-- _live: groups in shared memory; _realtime: table rows and live groups,
-- one row per key, summed.
\pset null '(null)'
SET timezone = 'UTC';
SELECT trafficagg.ingest(ev('2026-01-05T00:00:10Z', '/v', 'view', '{"response_time_ms": 5}'));
SELECT trafficagg.ingest(ev('2026-01-05T00:01:15Z', '/v', 'view', '{"response_time_ms": 7}'));
SELECT trafficagg.flush();   -- watermark 00:01:05: writes the 00:00 window
SELECT window_start, events FROM trafficagg.by_page WHERE page = '/v' ORDER BY 1;
SELECT window_start, events FROM trafficagg.by_page_live WHERE page = '/v' ORDER BY 1;
SELECT window_start, events, latency_sum FROM trafficagg.by_page_realtime WHERE page = '/v' ORDER BY 1;

-- a partial row in the table and live data for the same key: one summed row
INSERT INTO trafficagg.by_page VALUES ('2026-01-05 00:01+00', '2026-01-05 00:02+00', '/v', 'view',
    10, 0, 0, 2, 1.5, 0.5, 1);
SELECT window_start, events, latency_count, latency_sum, latency_min, latency_max
  FROM trafficagg.by_page_realtime WHERE page = '/v' ORDER BY 1;
SELECT count(*) AS realtime_rows FROM trafficagg.by_page_realtime WHERE page = '/v';

-- the views have the table's columns, in its order
SELECT attname FROM pg_attribute WHERE attrelid = 'trafficagg.by_page_live'::regclass AND attnum > 0
EXCEPT ALL
SELECT attname FROM pg_attribute WHERE attrelid = 'trafficagg.by_page'::regclass AND attnum > 0;
SELECT (SELECT array_agg(attname ORDER BY attnum) FROM pg_attribute
         WHERE attrelid = 'trafficagg.by_page_realtime'::regclass AND attnum > 0) =
       (SELECT array_agg(attname ORDER BY attnum) FROM pg_attribute
         WHERE attrelid = 'trafficagg.by_page'::regclass AND attnum > 0 AND NOT attisdropped)
       AS same_columns;

-- the function behind the views rejects unknown aggregates
SELECT * FROM trafficagg.groups('nope');
SELECT trafficagg.flush(close_all => true) >= 0 AS flushed;
