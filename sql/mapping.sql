--
-- The field mapping: events of another shape, mapped with SQL alone.
-- (Runs last: it changes the mapping, and puts the default back at the end.)
--
SET timezone = 'UTC';
SET client_min_messages = error;
SELECT trafficagg.flush(true) >= 0 AS flushed;
SET client_min_messages = warning;
-- the events below come after every earlier test's
SELECT watermark < '2026-11-25 00:00:00+00' AS watermark_before FROM trafficagg.status WHERE source = 'sql';
DELETE FROM trafficagg.rejected_events;

-- the default mapping: the producer's schema
SELECT name, source, path, type, required, role FROM trafficagg.fields ORDER BY id;

-- 1. Nested objects: the README's example shape.  Fields keep their names
-- (the default aggregates group by page and country), their paths change.
UPDATE trafficagg.fields SET path = 'ts', time_format = 'epoch_ms' WHERE name = 'timestamp';
UPDATE trafficagg.fields SET path = 'request.url' WHERE name = 'page';
UPDATE trafficagg.fields SET path = 'type' WHERE name = 'event_type';
UPDATE trafficagg.fields SET path = 'geo.country' WHERE name = 'country';
UPDATE trafficagg.fields SET path = 'visitor' WHERE name = 'user_id';
UPDATE trafficagg.fields SET path = 'request.status' WHERE name = 'status_code';
UPDATE trafficagg.fields SET path = 'request.duration_us', latency_unit = 'us'
 WHERE name = 'response_time_ms';
INSERT INTO trafficagg.fields (name, path, type) VALUES ('order_id', 'order.id', 'text');
INSERT INTO trafficagg.fields (name, path, type) VALUES ('region', 'geo.region.code', 'integer');
INSERT INTO trafficagg.aggregates VALUES ('by_url_region', '{page,region}');

-- 1767225600123 is 2026-01-01; these are 2026-11-25 00:00:xx
SELECT trafficagg.ingest(e) FROM (VALUES
  ('{"ts": 1795564800123, "request": {"url": "/p?utm_source=news&utm_medium=mail", "status": 503, "duration_us": 1234},
     "geo": {"country": "DE", "region": {"code": 9}}, "visitor": "v-17", "order": {"total": 19.99}, "type": "purchase"}'),
  ('{"ts": 1795564801000, "request": {"url": "/p?utm_source=news&utm_medium=mail", "status": 200, "duration_us": 766},
     "geo": {"country": "DE", "region": {"code": 9}}, "visitor": "v-18", "type": "page_view", "tags": ["a", {"b": []}]}'),
  ('{"ts": "1795564802000", "request": {"url": "/", "status": 404}, "geo": {"country": "FR"}, "type": "page_view"}'),
  ('{"type": "page_view", "ts": 1795564803000, "request": {"url": "/", "duration_us": 10.4}}')) AS t(e);

-- what the mapping rejects, and why (paths named as written)
SELECT trafficagg.ingest(e) FROM (VALUES
  ('{"ts": 1795564804000, "type": "x", "request": {"status": 200}}'),
  ('{"ts": 1795564804000, "type": "x", "request": "/flat"}'),
  ('{"ts": 1795564804000, "type": "x", "request": {"url": 7}}'),
  ('{"ts": 1795564804000, "type": "x", "request": {"url": "/", "status": "200"}}'),
  ('{"ts": 1795564804000, "type": "x", "request": {"url": "/"}, "geo": {"region": {"code": "nine"}}}'),
  ('{"ts": "yesterday", "type": "x", "request": {"url": "/"}}'),
  ('{"ts": true, "type": "x", "request": {"url": "/"}}'),
  ('{"ts": 1795564804000, "type": "x", "request": {"url": "/\u0000/"}}'),
  ('{"ts": 1795564804000, "type": "x", "request": {"url": "/", "duration_us": -1}}')) AS t(e);
SELECT reason, detail FROM trafficagg.rejected_events ORDER BY id;

SELECT trafficagg.flush(true) > 0 AS flushed;
SELECT window_start, page, event_type, events, errors, client_errors, latency_count,
       latency_sum, latency_min, latency_max, unique_users
  FROM trafficagg.by_page WHERE window_start >= '2026-11-25 00:00:00+00' ORDER BY page, event_type;
SELECT window_start, page, region, events FROM trafficagg.by_url_region
 WHERE window_start >= '2026-11-25 00:00:00+00' ORDER BY page, region NULLS FIRST;
SELECT country, events, unique_users FROM trafficagg.by_country
 WHERE window_start >= '2026-11-25 00:00:00+00' ORDER BY country NULLS FIRST;

-- Metrics and filters: the sum of order.total per page, purchases only, and
-- server errors of pages with a region
INSERT INTO trafficagg.fields (name, path, type) VALUES ('order_total', 'order.total', 'number');
INSERT INTO trafficagg.aggregates (name, dimensions, metrics)
  VALUES ('revenue_by_page', '{page}', '{order_total}');
INSERT INTO trafficagg.aggregates (name, dimensions, metrics, filter)
  VALUES ('purchases', '{country}', '{order_total}', '{"event_type": "purchase"}');
INSERT INTO trafficagg.aggregates (name, dimensions, filter)
  VALUES ('errors_by_page', '{page}', '{"status_code": [500, 502, 503], "region": true}');
-- unique users of another field: orders (order_id), per page
INSERT INTO trafficagg.aggregates (name, dimensions, users_field)
  VALUES ('orders_by_page', '{page}', 'order_id');
SELECT trafficagg.ingest(e) FROM (VALUES
  ('{"ts": 1795564980000, "type": "purchase", "request": {"url": "/buy", "status": 200},
     "geo": {"country": "DE"}, "order": {"total": 19.99, "id": "o-1"}, "visitor": "v-1"}'),
  ('{"ts": 1795564981000, "type": "purchase", "request": {"url": "/buy", "status": 503},
     "geo": {"country": "DE", "region": {"code": 2}}, "order": {"total": 0.01, "id": "o-2"}, "visitor": "v-1"}'),
  ('{"ts": 1795564982000, "type": "page_view", "request": {"url": "/buy", "status": 500},
     "geo": {"country": "FR", "region": {"code": 3}}}'),
  ('{"ts": 1795564983000, "type": "purchase", "request": {"url": "/buy"}, "geo": {"country": "FR"},
     "order": {"total": 1000000.123456}}'),
  ('{"ts": 1795564984000, "type": "page_view", "request": {"url": "/x", "status": 502}}')) AS t(e);
SELECT page, events, order_total_count, order_total_sum, order_total_min, order_total_max
  FROM trafficagg.revenue_by_page_live ORDER BY page;
SELECT trafficagg.flush(true) > 0 AS flushed;
SELECT page, events, order_total_count, order_total_sum, order_total_min, order_total_max
  FROM trafficagg.revenue_by_page ORDER BY page;
SELECT page, events, order_total_sum FROM trafficagg.revenue_by_page_hourly ORDER BY page;
SELECT country, events, order_total_count, order_total_sum FROM trafficagg.purchases ORDER BY country;
SELECT page, events, errors FROM trafficagg.errors_by_page ORDER BY page;
-- two orders by one visitor: two unique orders, one unique user
SELECT o.page, o.unique_users AS orders, p.unique_users AS visitors
  FROM trafficagg.orders_by_page o JOIN trafficagg.revenue_by_page p USING (window_start, page)
 WHERE o.page = '/buy';
\set VERBOSITY terse
INSERT INTO trafficagg.aggregates (name, metrics) VALUES ('bad_metric', '{page}');
INSERT INTO trafficagg.aggregates (name, filter) VALUES ('bad_filter', '{"nope": "x"}');
INSERT INTO trafficagg.aggregates (name, filter) VALUES ('bad_filter', '{"page": {"a": 1}}');
INSERT INTO trafficagg.aggregates (name, filter) VALUES ('bad_filter', '{"region": 1.5}');
INSERT INTO trafficagg.aggregates (name, filter) VALUES ('bad_filter', '["page"]');
INSERT INTO trafficagg.aggregates (name, users_field) VALUES ('bad_users', 'order_total');
DELETE FROM trafficagg.fields WHERE name = 'order_id';
DELETE FROM trafficagg.fields WHERE name = 'order_total';
UPDATE trafficagg.fields SET type = 'text' WHERE name = 'order_total';
UPDATE trafficagg.aggregates SET filter = NULL WHERE name = 'purchases';
\set VERBOSITY default
DELETE FROM trafficagg.aggregates WHERE name IN ('revenue_by_page', 'purchases', 'errors_by_page',
                                                'orders_by_page');
DELETE FROM trafficagg.fields WHERE name = 'order_total';

-- 2. Event times in seconds (a fraction of milliseconds exactly), in
-- microseconds, as numbers or strings; RFC 3339 strings only.  The window
-- boundary at 00:05 tells the milliseconds apart.
UPDATE trafficagg.fields SET time_format = 'epoch_s' WHERE name = 'timestamp';
SELECT trafficagg.ingest('{"ts": 1795565099.999, "type": "s", "request": {"url": "/s-a"}}'),
       trafficagg.ingest('{"ts": "1795565100.001", "type": "s", "request": {"url": "/s-b"}}'),
       trafficagg.ingest('{"ts": 1795565101, "type": "s", "request": {"url": "/s-c"}}'),
       trafficagg.ingest('{"ts": "17955651x", "type": "s", "request": {"url": "/s"}}');
UPDATE trafficagg.fields SET time_format = 'epoch_us' WHERE name = 'timestamp';
SELECT trafficagg.ingest('{"ts": 1795565159999999, "type": "us", "request": {"url": "/us"}}');
UPDATE trafficagg.fields SET time_format = 'rfc3339' WHERE name = 'timestamp';
SELECT trafficagg.ingest('{"ts": "2026-11-25T00:06:00.25Z", "type": "r", "request": {"url": "/r"}}'),
       trafficagg.ingest('{"ts": 1795565161000, "type": "r", "request": {"url": "/r"}}');
SELECT max_event_time FROM trafficagg.status WHERE source = 'sql';
-- a latency in seconds (kept in microseconds, shown in milliseconds)
UPDATE trafficagg.fields SET latency_unit = 's' WHERE name = 'response_time_ms';
SELECT trafficagg.ingest('{"ts": "2026-11-25T00:06:01Z", "type": "r", "request": {"url": "/sec", "duration_us": 1.5}}'),
       trafficagg.ingest('{"ts": "2026-11-25T00:06:02Z", "type": "r", "request": {"url": "/sec", "duration_us": 2e9}}');
UPDATE trafficagg.fields SET latency_unit = 'us' WHERE name = 'response_time_ms';
SELECT trafficagg.flush(true) > 0 AS flushed;
SELECT page, latency_count, latency_sum FROM trafficagg.by_page WHERE page = '/sec';
SELECT page, window_start, events FROM trafficagg.by_page
 WHERE page IN ('/s-a', '/s-b', '/s-c', '/us', '/r') ORDER BY page;

-- 3. The Kafka key, timestamp and headers as fields (ingest's second form
-- passes them as Kafka would): event time from the message timestamp, the
-- user from the key, a header as a dimension
UPDATE trafficagg.fields SET source = 'timestamp', path = NULL, time_format = NULL
 WHERE name = 'timestamp';
UPDATE trafficagg.fields SET source = 'key', path = NULL WHERE name = 'user_id';
INSERT INTO trafficagg.fields (name, source, path) VALUES ('tenant', 'header', 'x-tenant');
INSERT INTO trafficagg.aggregates VALUES ('by_tenant', '{tenant}');
SELECT trafficagg.ingest('{"type": "k", "request": {"url": "/k"}}', 'user-1',
                         '2026-11-25T00:10:00.5Z', '{"x-tenant": "acme", "other": null}'),
       trafficagg.ingest('{"type": "k", "request": {"url": "/k"}}', 'user-2',
                         '2026-11-25T00:10:01Z', '{"x-tenant": "acme"}'),
       trafficagg.ingest('{"type": "k", "request": {"url": "/k"}}', 'user-1',
                         '2026-11-25T00:10:02Z', '{}'),
       trafficagg.ingest('{"type": "k", "request": {"url": "/k"}}', 'user-3', NULL, NULL);
SELECT reason, detail FROM trafficagg.rejected_events WHERE reason <> 'late' ORDER BY id DESC LIMIT 1;
SELECT trafficagg.flush(true) > 0 AS flushed;
SELECT window_start, tenant, events, unique_users FROM trafficagg.by_tenant ORDER BY tenant NULLS FIRST;
SELECT trafficagg.ingest('{}', 'k', now(), '{"x-tenant": 7}');

-- 4. What the table refuses
\set VERBOSITY terse
DELETE FROM trafficagg.fields WHERE name = 'region';
UPDATE trafficagg.fields SET name = 'tenant_name' WHERE name = 'tenant';
UPDATE trafficagg.fields SET type = 'number' WHERE name = 'tenant';
INSERT INTO trafficagg.fields (name, path, type, role) VALUES ('t2', 't2', 'time', 'event_time');
INSERT INTO trafficagg.fields (name, path, type) VALUES ('t3', 'a.b.c.d.e.f.g.h.i', 'text');
INSERT INTO trafficagg.fields (name, path, type) VALUES ('t4', 'a..b', 'text');
INSERT INTO trafficagg.fields (name, path, type) VALUES ('t5', 't5', 'time');
INSERT INTO trafficagg.fields (name, path, type, role) VALUES ('t6', 't6', 'text', 'latency');
INSERT INTO trafficagg.fields (name, path) VALUES ('events', 'e');
INSERT INTO trafficagg.fields (name, source, type) VALUES ('t7', 'key', 'text');
INSERT INTO trafficagg.fields (name, source, path, type) VALUES ('t8', 'key', 'k', 'text');
INSERT INTO trafficagg.aggregates VALUES ('by_latency', '{response_time_ms}');
-- no event time at commit
BEGIN;
UPDATE trafficagg.fields SET role = NULL, type = 'text', source = 'key' WHERE name = 'timestamp';
COMMIT;
-- the role moves in one transaction
BEGIN;
UPDATE trafficagg.fields SET role = NULL, type = 'text', source = 'value', path = 'old_ts'
 WHERE name = 'timestamp';
INSERT INTO trafficagg.fields (name, path, type, role, time_format)
  VALUES ('event_time', 'when', 'time', 'event_time', 'rfc3339');
COMMIT;
SELECT name, type, role FROM trafficagg.fields WHERE name IN ('timestamp', 'event_time') ORDER BY 1;
-- at most 32 fields
INSERT INTO trafficagg.fields (name, path) SELECT 'f' || i, 'f' || i FROM generate_series(1, 40) AS i;
\set VERBOSITY default

-- back to the default mapping
DELETE FROM trafficagg.aggregates WHERE name IN ('by_url_region', 'by_tenant');
DELETE FROM trafficagg.fields WHERE name IN ('order_id', 'region', 'tenant', 't7');
BEGIN;
DELETE FROM trafficagg.fields WHERE name = 'event_time';
UPDATE trafficagg.fields SET source = 'value', path = 'timestamp', type = 'time', role = 'event_time',
       time_format = 'auto' WHERE name = 'timestamp';
COMMIT;
UPDATE trafficagg.fields SET source = 'value', path = name, latency_unit = CASE WHEN role = 'latency' THEN 'ms' END
 WHERE name <> 'timestamp';
SELECT name, source, path, type, required, role, time_format, latency_unit FROM trafficagg.fields ORDER BY id;
SELECT trafficagg.ingest('{"timestamp": "2026-11-25T01:00:00Z", "event_type": "x", "page": "/back"}');
