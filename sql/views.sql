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
SELECT * FROM trafficagg.groups('nope', '{}');

-- groups(aggregate, key): the groups of one key, NULL matching any value;
-- the same rows as groups(aggregate) filtered by their dimensions
SELECT trafficagg.ingest(ev('2026-01-05T00:01:20Z', '/w', 'view'));
SELECT trafficagg.ingest(ev('2026-01-05T00:01:25Z', '/w', 'click'));
SELECT window_start, dims, events FROM trafficagg.groups('by_page', ARRAY['/w', 'view']);
SELECT dims, events FROM trafficagg.groups('by_page', ARRAY['/w', NULL]) ORDER BY dims;
SELECT dims, events FROM trafficagg.groups('by_page', ARRAY[NULL, 'view']) ORDER BY dims;
SELECT count(*) AS any_key FROM trafficagg.groups('by_page', ARRAY[NULL, NULL]);
SELECT count(*) AS all_groups FROM trafficagg.groups('by_page');
SELECT count(*) AS unknown_value FROM trafficagg.groups('by_page', ARRAY['/never-seen', 'view']);
SELECT count(*) AS no_such_pair FROM trafficagg.groups('by_page', ARRAY['/w', 'purchase']);
SELECT count(*) AS empty_string FROM trafficagg.groups('by_page', ARRAY['', 'view']);
SELECT count(*) AS total_key FROM trafficagg.groups('total', '{}');
SELECT (SELECT array_agg(g ORDER BY g::text) FROM trafficagg.live_groups('by_page', ARRAY['/v', NULL]) g) =
       (SELECT array_agg(g ORDER BY g::text) FROM trafficagg.live_groups('by_page') g WHERE dims[1] = '/v')
       AS same_rows;
SELECT * FROM trafficagg.groups('by_page', ARRAY['/w']);
SELECT * FROM trafficagg.groups('by_page', ARRAY[['/w', 'view']]);
SELECT count(*) FROM trafficagg.groups('by_page', NULL);
SELECT trafficagg.flush(close_all => true) >= 0 AS flushed;
