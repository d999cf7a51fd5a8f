-- Sketches.  users is postgresql-hll's hll_add_agg(hll_hash_text(user_id))
-- with the configured parameters, byte for byte; the latency percentiles are
-- within 1% of percentile_disc; hour and day rollups of the minute rows
-- equal their raw-event twins.
\pset null '(null)'
SET timezone = 'UTC';
SHOW trafficagg.hll_log2m;
SHOW trafficagg.hll_regwidth;
SHOW trafficagg.hll_expthresh;
SHOW trafficagg.hll_sparseon;

-- Users: one page per set; each id sent twice.  The sizes cross
-- postgresql-hll's forms for log2m 12, regwidth 5: no id (empty), explicit
-- up to 320 ids, then registers, written sparse up to 1414 filled registers
-- and full beyond.
CREATE TABLE user_sets (page text, n int);
INSERT INTO user_sets VALUES ('/u0', 0), ('/u1', 1), ('/u320', 320), ('/u321', 321),
    ('/u1414', 1414), ('/u1415', 1415), ('/u20000', 20000);
CREATE FUNCTION user_event(s user_sets, g int) RETURNS text LANGUAGE sql
RETURN ev('2026-03-01T00:00:30Z', s.page, 'page_view',
          CASE WHEN s.n > 0 THEN jsonb_build_object('user_id', (g % s.n + 1)::text) ELSE '{}' END);
CREATE FUNCTION oracle_users(s user_sets) RETURNS hll LANGUAGE sql
RETURN (SELECT hll_add_agg(hll_hash_text(CASE WHEN s.n > 0 THEN (g % s.n + 1)::text END), 12, 5, -1, 1)
          FROM generate_series(1, greatest(2 * s.n, 3)) g);
SELECT outcome, events FROM trafficagg.ingest(ARRAY(
    SELECT user_event(s, g) FROM user_sets s, generate_series(1, greatest(2 * s.n, 3)) g));

-- live, before the flush
SELECT s.n, l.events, l.unique_users, hll_type(l.users) AS form, l.users = oracle_users(s) AS same_bytes
  FROM user_sets s JOIN trafficagg.by_page_live l ON l.page = s.page ORDER BY s.n;
SELECT trafficagg.flush(close_all => true);
-- in the table
SELECT s.n, t.events, t.unique_users, hll_type(t.users) AS form, t.users = oracle_users(s) AS same_bytes,
       abs(t.unique_users - s.n) <= 0.02 * s.n AS within_2pct
  FROM user_sets s JOIN trafficagg.by_page t ON t.page = s.page ORDER BY s.n;
-- an empty string is a user id too: hash 0, which registers ignore
SELECT trafficagg.ingest(ev('2026-03-01T00:01:00Z', '/empty-id', 'page_view', '{"user_id": ""}'));
SELECT trafficagg.flush(close_all => true);
SELECT unique_users, users = (SELECT hll_add_agg(hll_hash_text(''), 12, 5, -1, 1)) AS same_bytes
  FROM trafficagg.by_page WHERE page = '/empty-id';

-- Latency percentiles against percentile_disc, per distribution (2000
-- events each, values in ms with microsecond precision)
SELECT setseed(0.42);
CREATE TABLE lat (dist text, v float8);
INSERT INTO lat SELECT 'constant', 42.5 FROM generate_series(1, 2000);
INSERT INTO lat SELECT 'uniform', round((random() * 1000)::numeric, 3) FROM generate_series(1, 2000);
INSERT INTO lat SELECT 'lognormal',
    round(exp(4 + sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))::numeric, 3)
  FROM generate_series(1, 2000);
INSERT INTO lat SELECT 'bimodal',
    round((CASE WHEN random() < 0.9 THEN 5 + random() * 10 ELSE 800 + random() * 400 END)::numeric, 3)
  FROM generate_series(1, 2000);
INSERT INTO lat SELECT 'tiny', round((random() * 0.01)::numeric, 3) FROM generate_series(1, 2000);
SELECT outcome, events FROM trafficagg.ingest(ARRAY(
    SELECT ev('2026-03-01T00:02:00Z', '/lat-' || dist, 'page_view', jsonb_build_object('response_time_ms', v))
      FROM lat));
-- (the live view's digests too)
SELECT count(*) AS live_digests, bool_and(tdigest_send(latency) = tdigest_send(latency::text::tdigest)) AS same_as_text
  FROM trafficagg.by_page_live WHERE page LIKE '/lat-%';
SELECT trafficagg.flush(close_all => true);
WITH o AS (
    SELECT dist, count(*) AS n,
           percentile_disc(0.5) WITHIN GROUP (ORDER BY v) AS p50,
           percentile_disc(0.95) WITHIN GROUP (ORDER BY v) AS p95,
           percentile_disc(0.99) WITHIN GROUP (ORDER BY v) AS p99
      FROM lat GROUP BY dist)
SELECT o.dist, t.latency_count = o.n AS count_ok,
       abs(t.latency_p50 - o.p50) <= 0.01 * o.p50 AS p50_within_1pct,
       abs(t.latency_p95 - o.p95) <= 0.01 * o.p95 AS p95_within_1pct,
       abs(t.latency_p99 - o.p99) <= 0.01 * o.p99 AS p99_within_1pct,
       tdigest_count(t.latency) = o.n AS digest_count_ok
  FROM o JOIN trafficagg.by_page t ON t.page = '/lat-' || o.dist ORDER BY o.dist;
-- a group without latencies has none
SELECT latency, latency_p50, latency_p95, latency_p99 FROM trafficagg.by_page WHERE page = '/u1';
-- the flush makes digests through tdigest's binary input: each equals, bit
-- for bit, what its text input makes of the same centroids (means to the
-- nanosecond, as tdigest prints them)
SELECT count(*) > 0 AS digests, bool_and(tdigest_send(latency) = tdigest_send(latency::text::tdigest)) AS same_as_text
  FROM trafficagg.by_page WHERE latency IS NOT NULL;

-- Rollups: three hours of minute rows, an event every 5 s, 400 possible users
SELECT setseed(0.7);
CREATE TABLE raw AS
SELECT ts, 'u' || floor(random() * 400)::int AS user_id,
       round((exp(3 + 0.8 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())))::numeric, 3) AS v
  FROM generate_series('2026-03-02 00:00+00'::timestamptz, '2026-03-02 02:59:55+00', '5 s') ts;
SELECT outcome, events FROM trafficagg.ingest(ARRAY(
    SELECT ev(to_char(ts, 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), '/roll', 'page_view',
              jsonb_build_object('user_id', user_id, 'response_time_ms', v))
      FROM raw ORDER BY ts));
SELECT trafficagg.flush(close_all => true);
SELECT count(*) AS minute_rows FROM trafficagg.by_page WHERE page = '/roll';
-- the README's hour rollup, from the minute rows ...
CREATE VIEW hour_rollup AS
SELECT date_trunc('hour', window_start) AS hour, sum(events) AS events,
       hll_cardinality(hll_union_agg(users))::bigint AS unique_users,
       hll_union_agg(users) AS users,
       tdigest_percentile(latency, 0.95) AS p95
  FROM trafficagg.by_page WHERE page = '/roll' GROUP BY 1;
-- ... and its twin from the raw events
CREATE VIEW hour_raw AS
SELECT date_trunc('hour', ts) AS hour, count(*) AS events,
       hll_cardinality(hll_add_agg(hll_hash_text(user_id), 12, 5, -1, 1))::bigint AS unique_users,
       hll_add_agg(hll_hash_text(user_id), 12, 5, -1, 1) AS users,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY v) AS p95
  FROM raw GROUP BY 1;
SELECT r.hour, r.events = w.events AS events_equal,
       r.unique_users = w.unique_users AS unique_users_equal,
       r.users = w.users AS users_same_bytes,
       abs(r.p95 - w.p95) <= 0.02 * w.p95 AS p95_within_2pct
  FROM hour_rollup r JOIN hour_raw w USING (hour) ORDER BY r.hour;
-- the _hourly and _daily views give the same; their percentiles come from
-- the lossless union of the digests (trafficagg.latency_union), within 1%
SELECT h.window_start, h.events = w.events AS events_equal, h.users = w.users AS users_same_bytes,
       abs(h.latency_p95 - w.p95) <= 0.01 * w.p95 AS p95_within_1pct
  FROM trafficagg.by_page_hourly h JOIN hour_raw w ON w.hour = h.window_start
 WHERE h.page = '/roll' ORDER BY 1;
SELECT d.window_start, d.window_end, d.events,
       d.users = (SELECT hll_add_agg(hll_hash_text(user_id), 12, 5, -1, 1) FROM raw) AS users_same_bytes,
       d.unique_users = (SELECT hll_cardinality(hll_add_agg(hll_hash_text(user_id), 12, 5, -1, 1))::bigint
                           FROM raw) AS unique_users_equal,
       abs(d.latency_p99 - (SELECT percentile_disc(0.99) WITHIN GROUP (ORDER BY v) FROM raw))
         <= 0.01 * (SELECT percentile_disc(0.99) WITHIN GROUP (ORDER BY v) FROM raw) AS p99_within_1pct
  FROM trafficagg.by_page_daily d WHERE d.page = '/roll';

-- Memory: bytes of sketches in use now that every window is written
SELECT sketch_bytes FROM trafficagg.status WHERE source = 'sql';
DROP VIEW hour_rollup, hour_raw;

-- merging digests keeps every bucket; percentiles follow percentile_disc
SELECT trafficagg.latency_percentile(trafficagg.latency_union(d), 0.5) AS lossless,
       tdigest_percentile(d, 0.5) AS interpolated
  FROM (VALUES ('flags 1 count 1 compression 500 centroids 1 (1, 1)'::tdigest),
               ('flags 1 count 1 compression 500 centroids 1 (1000, 1)'::tdigest)) v(d);
SELECT tdigest_count(trafficagg.latency_merge(NULL, 'flags 1 count 2 compression 500 centroids 1 (5, 2)'));
SELECT trafficagg.latency_percentile('flags 1 count 2 compression 500 centroids 1 (5, 2)', 1.5);

-- Limits: distinct dimension values are bounded by trafficagg.max_values;
-- the error names the setting, and the values are freed with their groups
SHOW trafficagg.max_values;
SELECT * FROM trafficagg.ingest(ARRAY(
    SELECT ev('2026-03-05T00:00:00Z', '/many/' || g) FROM generate_series(1, 700) g));
SELECT values_used > 500 AS nearly_full, values_capacity FROM trafficagg.status WHERE source = 'sql';
SELECT trafficagg.flush(close_all => true) > 0 AS flushed;
SELECT values_used, sketch_bytes FROM trafficagg.status WHERE source = 'sql';
-- ... and their bytes by trafficagg.dictionary_memory (128kB here): 60 pages
-- of 3,000 bytes don't fit, the error names the setting, a flush frees them
SHOW trafficagg.dictionary_memory;
SELECT * FROM trafficagg.ingest(ARRAY(
    SELECT ev('2026-03-05T00:01:00Z', '/long/' || g || '/' || repeat('x', 3000))
      FROM generate_series(1, 60) g));
SELECT values_used BETWEEN 40 AND 45 AS most_stored, dictionary_bytes <= dictionary_capacity AS within,
       dictionary_capacity
  FROM trafficagg.status WHERE source = 'sql';
SELECT trafficagg.flush(close_all => true) > 0 AS flushed;
SELECT values_used, dictionary_bytes FROM trafficagg.status WHERE source = 'sql';
-- an empty dictionary has room for any event: max_event_bytes can't be set
-- above dictionary_memory
SELECT trafficagg.ingest(ev('2026-03-05T00:02:00Z', repeat('y', 65000)));
SELECT max(octet_length(page)) FROM trafficagg.by_page_live;
SELECT trafficagg.flush(close_all => true) > 0 AS flushed;
ALTER SYSTEM SET trafficagg.max_event_bytes = '129kB';
ALTER SYSTEM SET trafficagg.max_event_bytes = '128kB';
ALTER SYSTEM RESET trafficagg.max_event_bytes;
-- bytes that are not a histogram are refused
SELECT trafficagg.latency_digest('\x0001'::bytea);
