-- Tumbling windows [k*window, (k+1)*window) aligned to the Unix epoch: the
-- buckets of date_bin(window, ts, 'epoch').  Window is 1 minute here.
\pset null '(null)'
SET timezone = 'UTC';
CREATE TABLE sent_windows (ts timestamptz, page text);
INSERT INTO sent_windows VALUES
    ('2026-01-02 00:00:00+00', '/a'),       -- exactly on a boundary: starts a window
    ('2026-01-02 00:00:59.999+00', '/a'),   -- last millisecond of the same window
    ('2026-01-02 00:01:00+00', '/a'),       -- next window
    ('2026-01-02 00:01:00.001+00', '/b'),
    ('2026-01-02 00:02:30+00', '/b'),
    ('2026-01-02 00:02:59.9999+00', '/b');  -- sub-millisecond: same window
SELECT trafficagg.ingest(ev(to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), page))
  FROM sent_windows ORDER BY ts;
SELECT trafficagg.flush(close_all => true);

-- the extension's rows against the oracle computed here with date_bin
SELECT window_start, window_end, page, events FROM trafficagg.by_page
 WHERE window_start >= '2026-01-02' ORDER BY 1, 3;
SELECT b.window_start, b.page, b.events, o.events AS oracle,
       b.window_end = b.window_start + interval '1 minute' AS end_ok
  FROM trafficagg.by_page b
  FULL JOIN (SELECT date_bin('1 minute', ts, 'epoch') AS window_start, page, count(*) AS events
               FROM sent_windows GROUP BY 1, 2) o USING (window_start, page)
 WHERE coalesce(b.window_start, o.window_start) >= '2026-01-02'
 ORDER BY 1, 2;
