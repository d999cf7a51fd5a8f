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
-- invalid_utf8
SELECT trafficagg.ingest('\x7b2274696d657374616d70223a22c328227d'::bytea);
SELECT trafficagg.ingest('\xff'::bytea);
-- value_too_long: a dimension value of 256 bytes or more
SELECT trafficagg.ingest(ev('2026-01-01T00:00:00Z', repeat('p', 256)));
SELECT trafficagg.ingest(ev('2026-01-01T00:00:00Z', repeat('p', 255)));

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
SELECT trafficagg.flush(close_all => true) > 0 AS flushed;
