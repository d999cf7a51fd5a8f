-- Validation: every rejection reason, and the accepted forms of each field.
-- Runs first: the watermark is still unset, so any event time is on time.
CREATE EXTENSION trafficagg CASCADE;
\pset null '(null)'
SET timezone = 'UTC';

-- helper used by all tests: an event with the given time, page and extra fields
CREATE FUNCTION ev(ts text, page text DEFAULT '/', event_type text DEFAULT 'page_view',
                   extra jsonb DEFAULT '{}') RETURNS text
LANGUAGE sql IMMUTABLE
RETURN (jsonb_build_object('timestamp', ts, 'event_type', event_type, 'page', page) || extra)::text;

-- accepted: before the Unix epoch (window arithmetic must floor, not truncate)
SELECT trafficagg.ingest(ev('1969-12-31T23:59:59.999Z'));
SELECT window_start, window_end, events FROM trafficagg.total_live;
-- accepted: a leap day
SELECT trafficagg.ingest('{"timestamp": "2024-02-29T00:00:00Z", "event_type": "click", "page": "/"}');

-- accepted: the timestamp forms
SELECT trafficagg.ingest(ev('2026-01-01T00:00:00Z'));
SELECT trafficagg.ingest(ev('2026-01-01t00:00:01.5z'));
SELECT trafficagg.ingest(ev('2026-01-01T02:00:02.123456+02:00'));
SELECT trafficagg.ingest(ev('2025-12-31T19:00:03-05:00'));
SELECT trafficagg.ingest('{"timestamp": 1767225604000, "event_type": "click", "page": "/"}');
-- late: the watermark is now in 2026
SELECT trafficagg.ingest('{"timestamp": "2024-02-29T00:00:01Z", "event_type": "click", "page": "/"}');
-- accepted: optional fields present, null, or of other names (ignored)
SELECT trafficagg.ingest(ev('2026-01-01T00:00:05Z', '/p', 'click',
       '{"user_id": "u1", "session_id": "s1", "country": "DE", "device": "mobile",
         "referrer": "https://example.com/", "status_code": 404, "response_time_ms": 12.345,
         "event_id": "e-1", "anything": [1, {"x": null}]}'));
SELECT trafficagg.ingest(ev('2026-01-01T00:00:06Z', '/p', 'click',
       '{"user_id": null, "country": null, "status_code": null, "response_time_ms": null}'));
SELECT trafficagg.ingest(ev('2026-01-01T00:00:07Z', '', 'click', '{"response_time_ms": 0}'));
SELECT trafficagg.ingest(jsonb_build_object('timestamp', '2026-01-01T00:00:08Z',
       'event_type', 'purchase', 'page', '/checkout', 'status_code', 503));
SELECT trafficagg.ingest(convert_to(ev('2026-01-01T00:00:09Z', '/ünïcödé'), 'UTF8'));

-- empty
SELECT trafficagg.ingest(NULL::text);
SELECT trafficagg.ingest('');
SELECT trafficagg.ingest(''::bytea);
-- not_json
SELECT trafficagg.ingest('{oops');
SELECT trafficagg.ingest('{"timestamp": "2026-01-01T00:00:00Z", "timestamp": 1}');
SELECT trafficagg.ingest('{"page": "/"} trailing');
-- not_object
SELECT trafficagg.ingest('[1, 2]');
SELECT trafficagg.ingest('"str"');
SELECT trafficagg.ingest('42');
-- missing_field
SELECT trafficagg.ingest('{"event_type": "click", "page": "/"}');
SELECT trafficagg.ingest('{"timestamp": "2026-01-01T00:00:00Z", "page": "/"}');
SELECT trafficagg.ingest('{"timestamp": "2026-01-01T00:00:00Z", "event_type": "click"}');
SELECT trafficagg.ingest('{"timestamp": null, "event_type": "click", "page": "/"}');
-- wrong_type
SELECT trafficagg.ingest('{"timestamp": true, "event_type": "click", "page": "/"}');
SELECT trafficagg.ingest('{"timestamp": "2026-01-01T00:00:00Z", "event_type": "click", "page": 7}');
SELECT trafficagg.ingest(ev('2026-01-01T00:00:00Z', '/', 'click', '{"status_code": "500"}'));
SELECT trafficagg.ingest(ev('2026-01-01T00:00:00Z', '/', 'click', '{"status_code": 200.0}'));
SELECT trafficagg.ingest(ev('2026-01-01T00:00:00Z', '/', 'click', '{"status_code": 99}'));
SELECT trafficagg.ingest(ev('2026-01-01T00:00:00Z', '/', 'click', '{"response_time_ms": -1}'));
SELECT trafficagg.ingest(ev('2026-01-01T00:00:00Z', '/', 'click', '{"response_time_ms": "12"}'));
SELECT trafficagg.ingest(ev('2026-01-01T00:00:00Z', '/', 'click', '{"user_id": 5}'));
-- bad_timestamp
SELECT trafficagg.ingest(ev('yesterday'));
SELECT trafficagg.ingest(ev(''));
SELECT trafficagg.ingest(ev('2026-13-01T00:00:00Z'));
SELECT trafficagg.ingest(ev('2026-02-29T00:00:00Z'));
SELECT trafficagg.ingest(ev('2026-01-01T24:00:00Z'));
SELECT trafficagg.ingest(ev('2026-01-01T00:00:00'));
SELECT trafficagg.ingest(ev('2026-01-01T00:00:00.Z'));
SELECT trafficagg.ingest(ev('2026-01-01T00:00:00+2:00'));
SELECT trafficagg.ingest('{"timestamp": 99999999999999999, "event_type": "click", "page": "/"}');
-- too_large (trafficagg.max_event_bytes is 64kB here)
SELECT trafficagg.ingest(ev('2026-01-01T00:00:00Z', repeat('x', 70000)));
-- ... the key and headers included (a mapping may take fields from them)
SELECT trafficagg.ingest(ev('2026-01-01T00:00:00Z'), repeat('k', 70000), NULL, NULL);
SELECT trafficagg.ingest(ev('2026-01-01T00:00:00Z'), 'k', NULL,
                         jsonb_build_object('h', repeat('h', 70000)));
-- invalid_utf8
SELECT trafficagg.ingest('\x7b2274696d657374616d70223a22c328227d'::bytea);
SELECT trafficagg.ingest('\xff'::bytea);
-- values of any length (up to max_event_bytes) are accepted: 256 bytes used
-- to be rejected as value_too_long.  A 3,000-byte page of hex digits (it
-- hardly compresses: too long for a btree entry) is one value, kept whole.
CREATE TABLE long_page AS
  SELECT left('/p?q=' || string_agg(md5(i::text), '' ORDER BY i), 3000) AS page
    FROM generate_series(1, 100) AS i;
SELECT trafficagg.ingest(ev('2026-01-01T00:00:00Z', repeat('p', 256)));
SELECT trafficagg.ingest(ev('2026-01-01T00:00:00Z', repeat('p', 255)));
SELECT octet_length(page), trafficagg.ingest(ev('2026-01-01T00:00:00Z', page)) FROM long_page;
SELECT trafficagg.ingest(ev('2026-01-01T00:00:01Z', page, 'click',
                            jsonb_build_object('referrer', page))) FROM long_page;

-- every rejection is in the dead-letter table, with its reason and a
-- payload truncated to trafficagg.rejected_payload_bytes (64 here)
SELECT source, topic, partition, "offset", reason, detail, payload_bytes, octet_length(payload)
  FROM trafficagg.rejected_events ORDER BY id;

-- the SQL source's accounting: consumed = accepted + late + rejected
SELECT consumed, accepted, late, rejected, consumed = accepted + late + rejected AS balanced,
       rejected_by_reason
  FROM trafficagg.status WHERE source = 'sql';

-- the accepted ones, by window
SELECT window_start, sum(events) AS events, sum(errors) AS errors,
       sum(client_errors) AS client_errors, sum(latency_count) AS latency_count,
       sum(latency_sum) AS latency_sum
  FROM trafficagg.by_page_live GROUP BY 1 ORDER BY 1;
SELECT window_start, left(page, 12) AS page, event_type, events, errors, client_errors,
       latency_count, latency_sum, latency_min, latency_max
  FROM trafficagg.by_page_live ORDER BY window_start, page, event_type;
SELECT window_start, country, events FROM trafficagg.by_country_live ORDER BY 1, 2;
SELECT window_start, device, events FROM trafficagg.by_device_live ORDER BY 1, 2;
-- the long values whole in the live view; the dictionary holds the distinct
-- values of the groups in memory, and its bytes are theirs
SELECT octet_length(page) AS bytes, page = (SELECT page FROM long_page) AS whole,
       event_type, events
  FROM trafficagg.by_page_live WHERE octet_length(page) > 255 ORDER BY 1, 3;
CREATE VIEW live_values AS
  SELECT DISTINCT v FROM trafficagg.aggregates a, trafficagg.groups(a.name) g, unnest(g.dims) v
   WHERE v IS NOT NULL;
SELECT values_used = (SELECT count(*) FROM live_values) AS values_match,
       dictionary_bytes = (SELECT sum(octet_length(v)) FROM live_values) AS bytes_match,
       dictionary_bytes > 3256 AS holds_long, dictionary_capacity
  FROM trafficagg.status WHERE source = 'sql';
SELECT trafficagg.flush(close_all => true) > 0 AS flushed;
-- ... and in the table, whole; with the groups gone, their values' bytes are freed
SELECT octet_length(page) AS bytes, page = (SELECT page FROM long_page) AS whole,
       event_type, events
  FROM trafficagg.by_page WHERE octet_length(page) > 255 ORDER BY 1, 3;
SELECT values_used, dictionary_bytes FROM trafficagg.status WHERE source = 'sql';
DROP VIEW live_values;

-- the key the tables are unique on: a value of up to 64 bytes is its own key,
-- a longer one 'sha256:' and the SHA-256 of its bytes (backslashes and
-- multibyte characters included), so no short value equals a long one's key
SELECT v_bytes, trafficagg.dimension_key(v) = v AS own_key,
       trafficagg.dimension_key(v) = 'sha256:' || encode(sha256(convert_to(v, 'UTF8')), 'hex')
         AS sha256_key
  FROM (VALUES ('/short'), (repeat('é', 32)), (repeat('é', 32) || 'x'),
               (E'\\x41\\\\' || repeat('€', 30)), (repeat('/long', 600))) AS t(v),
       LATERAL (SELECT octet_length(v) AS v_bytes) b
 ORDER BY 1;
SELECT trafficagg.dimension_key(NULL) IS NULL AS null_key;
-- dimension_key() is inlined: not STRICT (a STRICT SQL function whose body
-- is not strict is never inlined), immutable, no SET, not SECURITY DEFINER,
-- so the planner puts its body in place of a call, in queries and in the
-- unique indexes' expressions that each index entry and ON CONFLICT check
-- computes; the key of a value read from a table, NULL included, is the
-- same as computed apart
SELECT proisstrict, provolatile, prosecdef, proconfig IS NULL AS no_config
  FROM pg_proc WHERE oid = 'trafficagg.dimension_key(text)'::regprocedure;
CREATE FUNCTION plan_of(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    line text;
    plan text := '';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || query LOOP
        plan := plan || line || E'\n';
    END LOOP;
    RETURN plan;
END;
$$;
SELECT plan ~ 'dimension_key\(' AS calls_function, plan ~ 'CASE WHEN .*sha256\(' AS inlined
  FROM plan_of('SELECT trafficagg.dimension_key(page) FROM trafficagg.by_page') AS plan;
SET enable_seqscan = off;
SELECT plan ~ 'Index Cond' AS uses_index, plan ~ 'dimension_key\(' AS calls_function,
       plan ~ 'CASE WHEN .*sha256\(' AS inlined
  FROM plan_of($$SELECT events FROM trafficagg.by_page
                 WHERE window_start = '2026-01-01 00:00+00' AND window_end = '2026-01-01 00:01+00'
                   AND trafficagg.dimension_key(page) = '/'
                   AND trafficagg.dimension_key(event_type) = 'click'$$) AS plan;
RESET enable_seqscan;
DROP FUNCTION plan_of(text);
CREATE TEMP TABLE key_values AS
  SELECT v FROM (VALUES ('/short'), (''), (E'a\\b'), (repeat(E'\\', 64)), (repeat(E'\\', 65)),
                        (repeat('é', 32)), (repeat('é', 32) || 'x'), (E'\\x41\\\\' || repeat('€', 30)),
                        (repeat('/long', 600)), (NULL)) AS t(v);
SELECT count(*) AS keys,
       count(*) FILTER (WHERE v IS NULL AND trafficagg.dimension_key(v) IS NULL) AS null_keys,
       count(*) FILTER (WHERE octet_length(v) <= 64 AND trafficagg.dimension_key(v) = v) AS own_keys,
       count(*) FILTER (WHERE octet_length(v) > 64 AND trafficagg.dimension_key(v) =
                              'sha256:' || encode(sha256(convert_to(v, 'UTF8')), 'hex')) AS sha256_keys
  FROM key_values;
DROP TABLE key_values;
