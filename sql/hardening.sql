-- Hardening: limits are settings with clear errors, sums can't overflow,
-- event times can't poison the watermark, an operator can repair it, and no
-- function of the extension resolves a name through the caller's search_path.
\pset null '(null)'
SET timezone = 'UTC';

-- 1. At most trafficagg.max_aggregates aggregates.  One more is an error
-- and never evicts one already maintained (names sorting before "total"
-- used to push it out, silently).
SHOW trafficagg.max_aggregates;
-- (catalog syncs warn about aggregates earlier tests deleted)
SET client_min_messages = error;
SELECT trafficagg.flush() >= 0 AS synced;
SET client_min_messages = warning;
INSERT INTO trafficagg.aggregates
  SELECT 'a' || lpad(i::text, 2, '0'), '{}'
    FROM generate_series(1, 16 - (SELECT count(*) FROM trafficagg.aggregates)) AS i;
SELECT count(*) AS aggregates FROM trafficagg.aggregates;
INSERT INTO trafficagg.aggregates VALUES ('a00', '{}');
SELECT count(*) AS aggregates FROM trafficagg.aggregates;
SELECT trafficagg.ingest(ev('2026-11-01T00:00:00Z', '/h'));
SELECT (SELECT events FROM trafficagg.total_live WHERE window_start = '2026-11-01') AS total,
       (SELECT events FROM trafficagg.a01_live WHERE window_start = '2026-11-01') AS a01,
       (SELECT events FROM trafficagg.a12_live WHERE window_start = '2026-11-01') AS a12;
-- a 17th row that got past the trigger (a restore without triggers, a lowered
-- setting) is left out, with a WARNING, and still evicts nothing
SET session_replication_role = replica;
INSERT INTO trafficagg.aggregates VALUES ('a00', '{}');
RESET session_replication_role;
SELECT trafficagg.ingest(ev('2026-11-01T00:00:01Z', '/h'));
SELECT trafficagg.ingest(ev('2026-11-01T00:00:02Z', '/h'));   -- (warned once)
SELECT (SELECT events FROM trafficagg.total_live WHERE window_start = '2026-11-01') AS total,
       (SELECT events FROM trafficagg.a01_live WHERE window_start = '2026-11-01') AS a01;
SET client_min_messages = error;
DELETE FROM trafficagg.aggregates WHERE name ~ '^a[0-9]{2}$';
SELECT trafficagg.flush() >= 0 AS synced;
RESET client_min_messages;

-- 2. Sums don't overflow: 10,000 latencies of 1e12 ms add up to 1e16 ms
-- (1e19 us, beyond a 64-bit integer; it used to wrap to a negative sum).
SELECT * FROM trafficagg.ingest(ARRAY(
    SELECT ev('2026-11-01T00:00:30Z', '/big', 'view', '{"response_time_ms": 1e12}')
      FROM generate_series(1, 10000)));
SELECT latency_sum FROM trafficagg.by_page_live WHERE page = '/big';
SELECT trafficagg.flush(close_all => true) > 0 AS flushed;
SELECT events, latency_count, latency_sum, latency_sum = 10000 * 1e12 AS exact,
       latency_min, latency_max
  FROM trafficagg.by_page WHERE page = '/big';

-- 3. String timestamps are range-checked like numbers: years 1 to 9999 UTC
SELECT trafficagg.ingest(ev('9999-12-31T23:59:59-23:59'));   -- year 10000 in UTC
SELECT trafficagg.ingest(ev('0000-12-31T23:59:59Z'));        -- year 0
SELECT reason, detail FROM trafficagg.rejected_events ORDER BY id DESC LIMIT 2;

-- 4. An event more than trafficagg.max_future (5 min) ahead of the server
-- clock (the Kafka timestamp, for Kafka) is rejected and doesn't move the
-- watermark.
SELECT watermark FROM trafficagg.status WHERE source = 'sql';
SELECT trafficagg.ingest(ev(to_char(now() AT TIME ZONE 'UTC' + interval '1 hour',
                                    'YYYY-MM-DD"T"HH24:MI:SS"Z"'))) AS one_hour_ahead;
SELECT trafficagg.ingest(ev('2099-01-01T00:00:00Z')) AS year_2099;
SELECT reason, detail LIKE 'event time % is more than trafficagg.max_future (300000 ms) ahead of the server clock %'
       AS detail_ok
  FROM trafficagg.rejected_events ORDER BY id DESC LIMIT 2;
SELECT watermark, rejected_by_reason->'future_timestamp' AS future
  FROM trafficagg.status WHERE source = 'sql';

-- 5. The watermark follows an event time only once trafficagg.watermark_events
-- events have reached it (this suite runs with 1; the default is 10).
ALTER SYSTEM SET trafficagg.watermark_events = 10;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SHOW trafficagg.watermark_events;
SELECT count(*) FROM (SELECT trafficagg.ingest(ev(to_char(timestamptz '2026-11-01 00:02:00+00'
                                                          + i * interval '1 second',
                                                          'YYYY-MM-DD"T"HH24:MI:SS"Z"'), '/w2'))
                        FROM generate_series(0, 19) AS i) AS x;
-- the 10th greatest is 00:02:10, minus 10 s of lateness
SELECT watermark FROM trafficagg.status WHERE source = 'sql';
-- nine events three minutes ahead of the others (a replay of old data with
-- a wrong clock in it) don't move it ...
SELECT * FROM trafficagg.ingest(ARRAY(SELECT ev('2026-11-01T00:05:00Z', '/w2')
                                        FROM generate_series(1, 9)));
SELECT watermark FROM trafficagg.status WHERE source = 'sql';
SELECT trafficagg.ingest(ev('2026-11-01T00:02:30Z', '/w2')) AS on_time;
-- ... ten do
SELECT trafficagg.ingest(ev('2026-11-01T00:05:00Z', '/w2'));
SELECT watermark FROM trafficagg.status WHERE source = 'sql';
SELECT trafficagg.ingest(ev('2026-11-01T00:02:40Z', '/w2')) AS now_late;

-- 6. The repair: rewind_watermark() moves the watermark back; the windows
-- after it take events again, and their rows merge with those already
-- written.  (With Kafka the worker first writes every window in memory, see
-- t/011_watermark_guard.pl; without, nothing is ever replayed.)
SELECT trafficagg.rewind_watermark('2030-01-01 00:00+00');
SELECT trafficagg.rewind_watermark('2026-11-01 00:02:20+00');
SELECT watermark, flushed_watermark FROM trafficagg.status WHERE source = 'sql';
SELECT window_start, events FROM trafficagg.by_page WHERE page = '/w2' ORDER BY 1;
SELECT trafficagg.ingest(ev('2026-11-01T00:02:45Z', '/w2')) AS on_time_again;
SELECT trafficagg.flush(close_all => true) > 0 AS flushed;
-- 20 + 00:02:30 + 00:02:45, the late 00:02:40 is a dead letter
SELECT window_start, events FROM trafficagg.by_page WHERE page = '/w2' ORDER BY 1;
SELECT window_start, events FROM trafficagg.by_page_realtime WHERE page = '/w2' ORDER BY 1;
ALTER SYSTEM RESET trafficagg.watermark_events;
SELECT pg_reload_conf();

-- 7. Names are resolved in pg_catalog and the extension's schemas only, even
-- for a superuser whose search_path puts a hostile schema first.
CREATE SCHEMA hostile;
CREATE TABLE hostile.calls (f text);
CREATE FUNCTION hostile.format(text, text) RETURNS text LANGUAGE plpgsql AS
$$ BEGIN INSERT INTO hostile.calls VALUES ('format'); RETURN pg_catalog.format($1, $2); END $$;
CREATE FUNCTION hostile.cardinality(text[]) RETURNS int LANGUAGE plpgsql AS
$$ BEGIN INSERT INTO hostile.calls VALUES ('cardinality'); RETURN pg_catalog.cardinality($1); END $$;
CREATE FUNCTION hostile.to_regclass(text) RETURNS regclass LANGUAGE plpgsql AS
$$ BEGIN INSERT INTO hostile.calls VALUES ('to_regclass'); RETURN pg_catalog.to_regclass($1); END $$;
CREATE FUNCTION hostile.int8pl(bigint, bigint) RETURNS bigint LANGUAGE plpgsql AS
$$ BEGIN INSERT INTO hostile.calls VALUES ('+'); RETURN pg_catalog.int8pl($1, $2); END $$;
CREATE OPERATOR hostile.+ (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = hostile.int8pl);
CREATE FUNCTION hostile.unnest(anyarray) RETURNS SETOF anyelement LANGUAGE plpgsql AS
$$ BEGIN INSERT INTO hostile.calls VALUES ('unnest'); RETURN QUERY SELECT pg_catalog.unnest($1); END $$;
SET search_path = hostile, pg_catalog, public;
INSERT INTO trafficagg.aggregates VALUES ('by_hostile', '{page}');
SELECT trafficagg.ingest(ev('2026-11-01T00:04:10Z', '/x'));
SELECT trafficagg.flush(close_all => true) > 0 AS flushed;
-- a rewind, so that the next flush merges into the row (ON CONFLICT)
SELECT trafficagg.rewind_watermark('2026-11-01 00:04:00+00');
SELECT trafficagg.ingest(ev('2026-11-01T00:04:20Z', '/x'));
SELECT trafficagg.flush(close_all => true) > 0 AS flushed;
SELECT window_start, page, events FROM trafficagg.by_hostile ORDER BY 1;
SET client_min_messages = warning;
DELETE FROM trafficagg.aggregates WHERE name = 'by_hostile';
RESET client_min_messages;
-- none of the hostile functions or operators ran
SELECT f, count(*) FROM hostile.calls GROUP BY f ORDER BY f;
RESET search_path;
SELECT p.proname, p.proconfig FROM pg_proc p
 WHERE p.pronamespace = 'trafficagg'::regnamespace AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')
 ORDER BY 1;
DROP SCHEMA hostile CASCADE;
