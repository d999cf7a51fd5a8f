-- Watermark = greatest event time - allowed_lateness (10 s here); a window
-- closes when the watermark reaches its end; an event whose windows are all
-- closed is late: not aggregated, counted, kept as a dead letter.
\pset null '(null)'
SET timezone = 'UTC';
SELECT trafficagg.ingest(ev('2026-01-03T00:00:30Z', '/w'));
SELECT watermark FROM trafficagg.status WHERE source = 'sql';
SELECT trafficagg.ingest(ev('2026-01-03T00:01:05Z', '/w'));   -- watermark 00:00:55
SELECT trafficagg.ingest(ev('2026-01-03T00:00:40Z', '/w'));   -- its window is still open
SELECT trafficagg.ingest(ev('2026-01-03T00:01:10Z', '/w'));   -- watermark 00:01:00: closes 00:00
SELECT watermark FROM trafficagg.status WHERE source = 'sql';
SELECT trafficagg.ingest(ev('2026-01-03T00:00:59.999Z', '/w')); -- late
SELECT trafficagg.ingest(ev('2026-01-03T00:01:00Z', '/w'));     -- on time, next window
SELECT trafficagg.ingest(ev('2026-01-03T00:00:20Z', '/w'));     -- late
-- an older event never moves the watermark back
SELECT watermark FROM trafficagg.status WHERE source = 'sql';

SELECT reason, detail FROM trafficagg.rejected_events WHERE reason = 'late' ORDER BY id;
SELECT late FROM trafficagg.status WHERE source = 'sql';

-- the closed window is still live data until flushed; flush writes only it
SELECT window_start, page, events FROM trafficagg.by_page_live WHERE page = '/w' ORDER BY 1;
SELECT trafficagg.flush();
SELECT window_start, page, events FROM trafficagg.by_page WHERE page = '/w' ORDER BY 1;
SELECT window_start, page, events FROM trafficagg.by_page_live WHERE page = '/w' ORDER BY 1;
-- a second flush has nothing to write
SELECT trafficagg.flush();
-- close_all: move the watermark past every window with data
SELECT trafficagg.flush(close_all => true);
SELECT watermark FROM trafficagg.status WHERE source = 'sql';
SELECT window_start, page, events FROM trafficagg.by_page WHERE page = '/w' ORDER BY 1;
SELECT trafficagg.ingest(ev('2026-01-03T00:01:30Z', '/w'));     -- now late too
