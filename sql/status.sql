-- trafficagg.status: one row for the SQL path (no Kafka configured here)
\pset null '(null)'
SET timezone = 'UTC';
SELECT source, topic, partition, assigned, position, lag, broker_state, groups_capacity
  FROM trafficagg.status;
SELECT trafficagg.ingest(ev('2026-01-06T00:00:00Z', '/s1'));
SELECT trafficagg.ingest(ev('2026-01-06T00:01:00Z', '/s2'));
SELECT trafficagg.ingest('not json');
-- two open windows; 2 windows x 4 aggregates = 8 groups
SELECT open_windows, groups_used, consumed = accepted + late + rejected AS balanced
  FROM trafficagg.status WHERE source = 'sql';
SELECT * FROM trafficagg.ingest(ARRAY[ev('2026-01-06T00:01:01Z'), ev('2026-01-06T00:00:00Z'),
                                      ev('2026-01-06T00:01:02Z'), '{}', NULL, '[]'])
  ORDER BY outcome;
SELECT trafficagg.flush(close_all => true);
SELECT open_windows, groups_used, flushes > 0 AS flushed, last_flush_rows,
       max_event_time, watermark = flushed_watermark AS all_flushed
  FROM trafficagg.status WHERE source = 'sql';
