/*-------------------------------------------------------------------------
 *
 * window.c
 *	  Event-time windows and the watermark.
 *
 * Windows are aligned to the Unix epoch: with trafficagg.slide = 0 they are
 * tumbling, [k*window, (k+1)*window), the buckets of date_bin(window, ts,
 * 'epoch'); with a slide they hop, [k*slide, k*slide + window), and an event
 * belongs to every window that contains it.
 *
 * The watermark is the event time up to which we believe all events have
 * arrived, minus trafficagg.allowed_lateness.  It is the *minimum* over the
 * active sources (Kafka partitions that still have unread data, assigned to
 * the worker or not yet: after a restart every partition with stored offsets
 * counts from the start, so a partial assignment during a rebalance can't
 * advance it) of the
 * greatest event time seen in each: Kafka orders events only within a
 * partition, and a consumer catching up on a backlog reads partitions at
 * different speeds, so a global maximum would declare the slower partitions'
 * on-time events late.  A partition at its end (librdkafka's partition EOF)
 * is idle and does not hold the watermark back; when every source is idle
 * the watermark follows the greatest event time of all.  The SQL ingest path
 * is a source that is idle between calls.  The watermark never moves back.
 *
 * A window is closed once the watermark reaches its end; an event whose
 * windows are all closed is late.
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "trafficagg.h"

#include "utils/fmgrprotos.h"

static inline int64
floor_div(int64 a, int64 b)
{
	int64		q = a / b;

	return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static inline int64
slide_ms(void)
{
	return ta_slide_ms > 0 ? ta_slide_ms : ta_window_ms;
}

/* How many windows an event belongs to at most. */
int
window_count(void)
{
	return (int) ((ta_window_ms + slide_ms() - 1) / slide_ms());
}

int64
window_end(int64 start)
{
	return start + ta_window_ms;
}

/* End of the latest window containing ts: the event is late iff <= watermark. */
int64
window_last_end(int64 ts_ms)
{
	return floor_div(ts_ms, slide_ms()) * slide_ms() + ta_window_ms;
}

/*
 * Fill starts[] (window_count() entries at most) with the starts of the
 * windows containing ts_ms, oldest first; returns how many.
 */
int
window_assign(int64 ts_ms, int64 *starts)
{
	int64		slide = slide_ms();
	int64		last = floor_div(ts_ms, slide) * slide;
	int64		first = last;
	int			n = 0;

	while (first - slide > ts_ms - ta_window_ms)
		first -= slide;
	for (int64 s = first; s <= last; s += slide)
		starts[n++] = s;
	return n;
}

/* Microseconds as an exact numeric of milliseconds (3 decimals). */
Datum
ta_us_to_numeric(int64 us)
{
	char		buf[32];

	snprintf(buf, sizeof(buf), "%s" INT64_FORMAT ".%03d", us < 0 ? "-" : "",
			 (us < 0 ? -us : us) / 1000, (int) ((us < 0 ? -us : us) % 1000));
	return DirectFunctionCall3(numeric_in, CStringGetDatum(buf),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

/* A sum of microseconds as an exact numeric of milliseconds. */
Datum
ta_us_sum_to_numeric(int128 us)
{
	char		buf[48];
	char	   *p = buf + sizeof(buf);
	bool		neg = us < 0;
	uint128		u = neg ? -(uint128) us : (uint128) us;
	int			digits = 0;

	*--p = '\0';
	do
	{
		*--p = '0' + (int) (u % 10);
		u /= 10;
		if (++digits == 3)
			*--p = '.';
	} while (u > 0 || digits < 4);
	if (neg)
		*--p = '-';
	return DirectFunctionCall3(numeric_in, CStringGetDatum(p),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

int64
watermark_get(void)
{
	int64		w;

	SpinLockAcquire(&ta_shared->mutex);
	w = ta_shared->watermark_ms;
	SpinLockRelease(&ta_shared->mutex);
	return w;
}

static void
watermark_raise(int64 candidate)
{
	SpinLockAcquire(&ta_shared->mutex);
	if (candidate > ta_shared->watermark_ms)
		ta_shared->watermark_ms = candidate;
	SpinLockRelease(&ta_shared->mutex);
}

/*
 * Recompute the watermark from the sources.  Caller holds ta_shared->lock
 * (shared is enough: it only reads the sources).
 */
void
watermark_advance(void)
{
	int64		min_active = PG_INT64_MAX;
	int64		max_all = TA_NO_TIME;
	bool		any_active = false;
	int64		candidate;

	for (int i = 0; i < ta_shared->nsources; i++)
	{
		TaSource   *s = &ta_shared->sources[i];

		if (!s->in_use)
			continue;
		if (s->max_event_ms > max_all)
			max_all = s->max_event_ms;
		if (s->active)
		{
			any_active = true;
			/* an active partition that has seen nothing yet holds all back */
			if (s->max_event_ms < min_active)
				min_active = s->max_event_ms;
		}
	}
	candidate = any_active ? min_active : max_all;
	if (candidate == TA_NO_TIME)
		return;
	watermark_raise(candidate - ta_allowed_lateness_ms);
}

/*
 * trafficagg.flush(close_all => true): move the watermark to the end of the
 * newest window holding data, so every window with data closes.  Later
 * events for those windows are late, as for any closed window.
 */
void
watermark_close_all(void)
{
	int64		max_all = TA_NO_TIME;

	LWLockAcquire(ta_shared->lock, LW_SHARED);
	for (int i = 0; i < ta_shared->nsources; i++)
		if (ta_shared->sources[i].in_use &&
			ta_shared->sources[i].max_event_ms > max_all)
			max_all = ta_shared->sources[i].max_event_ms;
	LWLockRelease(ta_shared->lock);
	if (max_all != TA_NO_TIME)
		watermark_raise(window_last_end(max_all));
}
