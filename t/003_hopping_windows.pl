# Hopping windows (trafficagg.slide): each event goes into every window that
# contains it, checked against an oracle built with generate_series; and an
# event whose oldest windows are closed still counts in the open ones.
use strict;
use warnings;
use lib 't';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('hopping');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'trafficagg'
trafficagg.window = '1min'
trafficagg.slide = '20s'
trafficagg.allowed_lateness = '10s'
trafficagg.flush_interval = '1h'
# the watermark follows each event: the test steps it with single events
trafficagg.watermark_events = 1
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION trafficagg CASCADE');

# 600 events 1.7 s apart, some exactly on window boundaries, in time order
$node->safe_psql(
	'postgres', q{
	CREATE TABLE sent AS
	  SELECT timestamptz '2026-01-01 00:00:00+00' + i * interval '1700 ms' AS ts,
	         '/p' || (i % 7) AS page,
	         (ARRAY['view', 'click'])[1 + i % 2] AS event_type,
	         (ARRAY[200, 404, 503])[1 + i % 3] AS status,
	         (i % 11) * 1.5 AS rt
	    FROM generate_series(0, 599) AS i;
	SELECT * FROM trafficagg.ingest((
	  SELECT array_agg(json_build_object('timestamp', ts, 'page', page, 'event_type', event_type,
	                                     'status_code', status, 'response_time_ms', rt)::text
	                   ORDER BY ts)
	    FROM sent));
	SELECT trafficagg.flush(close_all => true);
});

my $oracle = q{
	SELECT ws AS window_start, ws + interval '1 minute' AS window_end, page, event_type,
	       count(*) AS events,
	       count(*) FILTER (WHERE status >= 500) AS errors,
	       count(*) FILTER (WHERE status BETWEEN 400 AND 499) AS client_errors,
	       count(rt) AS latency_count, sum(rt) AS latency_sum, min(rt) AS latency_min,
	       max(rt) AS latency_max
	  FROM sent,
	       generate_series(date_bin('20 s', ts, 'epoch') - interval '40 s',
	                       date_bin('20 s', ts, 'epoch'), interval '20 s') AS ws
	 WHERE ws + interval '1 minute' > ts
	 GROUP BY 1, 2, 3, 4};
my $cols =
  'window_start, window_end, page, event_type, events, errors, client_errors, latency_count, latency_sum, latency_min, latency_max';
is( $node->safe_psql(
		'postgres', qq{
	SELECT (SELECT count(*) FROM (($oracle) EXCEPT ALL SELECT $cols FROM trafficagg.by_page) a)
	     + (SELECT count(*) FROM (SELECT $cols FROM trafficagg.by_page EXCEPT ALL ($oracle)) b)}),
	'0',
	'hopping windows: by_page equals the generate_series oracle');
is($node->safe_psql('postgres', 'SELECT sum(events) FROM trafficagg.total'),
	'1800', 'each event is counted in 3 windows (1 min / 20 s)');
is( $node->safe_psql(
		'postgres',
		"SELECT count(DISTINCT window_end - window_start) FROM trafficagg.total"),
	'1', 'all windows are one minute long');

# partially late: the watermark has closed the event's two oldest windows
$node->safe_psql(
	'postgres', q{
	SELECT trafficagg.ingest('{"timestamp": "2026-02-01T00:01:40Z", "event_type": "e", "page": "/late"}');
	SELECT trafficagg.ingest('{"timestamp": "2026-02-01T00:02:05Z", "event_type": "e", "page": "/late"}');
});
is( $node->safe_psql(
		'postgres',
		q{SELECT trafficagg.ingest('{"timestamp": "2026-02-01T00:01:05Z", "event_type": "e", "page": "/late"}')}
	),
	'accepted',
	'an event with some windows still open is accepted');
is( $node->safe_psql(
		'postgres', q{
	SELECT string_agg(to_char(window_start, 'HH24:MI:SS') || '=' || events, ' ' ORDER BY window_start)
	  FROM trafficagg.by_page_live WHERE page = '/late'}),
	'00:01:00=2 00:01:20=2 00:01:40=2 00:02:00=1',
	'... and counted only in its open window (00:01:00); the closed ones are untouched');
is( $node->safe_psql(
		'postgres',
		q{SELECT trafficagg.ingest('{"timestamp": "2026-02-01T00:00:59Z", "event_type": "e", "page": "/late"}')}
	),
	'late',
	'an event whose windows are all closed is late');

$node->stop;
done_testing();
