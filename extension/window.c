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
 * advance it) of each source's event time: Kafka orders events only within a
 * partition, and a consumer catching up on a backlog reads partitions at
 * different speeds, so a global maximum would declare the slower partitions'
 * on-time events late.  A partition at its end (librdkafka's partition EOF)
 * is idle and does not hold the watermark back; when every source is idle
 * the watermark follows the greatest source event time.  The SQL ingest
 * path is a source that is idle between calls.
 *
 * A source's event time is not the greatest event time it has seen but the
 * K-th greatest, K = trafficagg.watermark_events: the watermark follows a
 * time only once K events have reached it, so fewer than K events with a
 * wrong clock (a replay of yesterday's data with one event minutes ahead, a
 * device in 2099) can't close windows for the others.  Events more than
 * trafficagg.max_future ahead of when they were sent are rejected before
 * they get here (ingest.c).  The cost: windows close K events later on the
 * slowest partition (at 1,000 events/s a partition, 9 ms for K = 10), and
 * K - 1 event times per source kept in shared memory.
 *
 * The watermark never moves back, except by trafficagg.rewind_watermark(),
 * the operator's repair of a watermark moved too far (watermark_rewind).
 *
 * A window is closed once the watermark reaches its end; an event whose
 * windows are all closed is late.
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "trafficagg.h"

#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/memutils.h"

#include "source.h"
#include "window.h"



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

/*
 * The watermarks, in shared memory, private to this file: read and written
 * only through the functions below, under their spinlock (never held for
 * more than a few instructions).
 */
typedef struct WatermarkState
{
	slock_t		mutex;
	int64		watermark_ms;	/* windows ending at or before it are closed */
	int64		flushed_ms;		/* ... and flushed */
	int64		replay_cutoff_ms;	/* flushed watermark stored when the worker
									 * started: replayed events skip windows
									 * ending at or before it, and only those */
} WatermarkState;

static WatermarkState *wm = NULL;

/*
 * Per source (by slot, source.c): the event times it vouches for.  In shared
 * memory private to this file, under its LWLock (a scan of the sources
 * holds it).
 */
typedef struct SourceTimes
{
	int64		max_event_ms;	/* greatest event time seen */
	/* the greatest event times seen, a min-heap: the watermark follows the
	 * trafficagg.watermark_events-th greatest */
	int			nrecent;
	int64		recent[TA_MAX_WATERMARK_EVENTS];
} SourceTimes;

typedef struct EventTimes
{
	LWLock	   *lock;
	int			nslots;
	SourceTimes sources[FLEXIBLE_ARRAY_MEMBER];
} EventTimes;

static EventTimes *times = NULL;

static Size
event_times_size(void)
{
	return MAXALIGN(add_size(offsetof(EventTimes, sources),
							 mul_size(source_slots(), sizeof(SourceTimes))));
}

Size
watermark_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(WatermarkState)), event_times_size());
}

/* From the shmem_request hook. */
void
watermark_shmem_request(void)
{
	RequestNamedLWLockTranche("trafficagg event times", 1);
}

/* From the shared-memory startup hook, under AddinShmemInitLock. */
void
watermark_shmem_init(void)
{
	bool		found;

	wm = ShmemInitStruct("trafficagg watermark", MAXALIGN(sizeof(WatermarkState)), &found);
	if (!found)
	{
		SpinLockInit(&wm->mutex);
		wm->watermark_ms = TA_NO_TIME;
		wm->flushed_ms = TA_NO_TIME;
		wm->replay_cutoff_ms = TA_NO_TIME;
	}
	times = ShmemInitStruct("trafficagg event times", event_times_size(), &found);
	if (!found)
	{
		times->lock = &GetNamedLWLockTranche("trafficagg event times")[0].lock;
		times->nslots = source_slots();
		for (int i = 0; i < times->nslots; i++)
		{
			times->sources[i].max_event_ms = TA_NO_TIME;
			times->sources[i].nrecent = 0;
		}
	}
}

/* One of the watermarks, read under the spinlock. */
static int64
read_watermark(const int64 *field)
{
	int64		w;

	SpinLockAcquire(&wm->mutex);
	w = *field;
	SpinLockRelease(&wm->mutex);
	return w;
}

int64
watermark_get(void)
{
	return read_watermark(&wm->watermark_ms);
}

/* Up to where windows are written (status.flushed_watermark). */
int64
watermark_flushed(void)
{
	return read_watermark(&wm->flushed_ms);
}

/* The stored watermark replay judges against (recovery.c). */
int64
watermark_replay_cutoff(void)
{
	return read_watermark(&wm->replay_cutoff_ms);
}

/* The consumer starts with a stored watermark (recovery_load). */
void
watermark_restore(int64 stored_ms)
{
	SpinLockAcquire(&wm->mutex);
	wm->replay_cutoff_ms = stored_ms;
	if (stored_ms > wm->watermark_ms)
		wm->watermark_ms = stored_ms;
	if (stored_ms > wm->flushed_ms)
		wm->flushed_ms = stored_ms;
	SpinLockRelease(&wm->mutex);
}

/* A flush wrote every window ending at or before ms. */
void
watermark_flushed_through(int64 ms)
{
	SpinLockAcquire(&wm->mutex);
	if (ms > wm->flushed_ms)
		wm->flushed_ms = ms;
	SpinLockRelease(&wm->mutex);
}

static void
watermark_raise(int64 candidate)
{
	SpinLockAcquire(&wm->mutex);
	if (candidate > wm->watermark_ms)
		wm->watermark_ms = candidate;
	SpinLockRelease(&wm->mutex);
}

static void
heap_sift_down(int64 *h, int n, int i)
{
	for (;;)
	{
		int			l = 2 * i + 1,
					r = l + 1,
					m = i;
		int64		t;

		if (l < n && h[l] < h[m])
			m = l;
		if (r < n && h[r] < h[m])
			m = r;
		if (m == i)
			return;
		t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

static void
heap_pop_min(SourceTimes *s)
{
	s->recent[0] = s->recent[--s->nrecent];
	heap_sift_down(s->recent, s->nrecent, 0);
}

/*
 * Record an event time of a source: keep the K greatest in its min-heap
 * (K = trafficagg.watermark_events; it may have changed since the last
 * call).  Caller holds times->lock exclusive.
 */
static void
note_event_time(SourceTimes *s, int k, int64 ts_ms)
{
	if (ts_ms > s->max_event_ms)
		s->max_event_ms = ts_ms;
	while (s->nrecent > k)
		heap_pop_min(s);
	if (s->nrecent < k)
	{
		int			i = s->nrecent++;

		/* sift up */
		s->recent[i] = ts_ms;
		while (i > 0 && s->recent[(i - 1) / 2] > s->recent[i])
		{
			int64		t = s->recent[i];

			s->recent[i] = s->recent[(i - 1) / 2];
			s->recent[(i - 1) / 2] = t;
			i = (i - 1) / 2;
		}
	}
	else if (ts_ms > s->recent[0])
	{
		s->recent[0] = ts_ms;
		heap_sift_down(s->recent, s->nrecent, 0);
	}
}

/* Record the event times of a batch's messages (accepted or late), in order. */
void
window_saw_event_times(const TaEventTime *t, int n)
{
	int			k = ta_watermark_events;

	if (n == 0)
		return;
	LWLockAcquire(times->lock, LW_EXCLUSIVE);
	for (int i = 0; i < n; i++)
		note_event_time(&times->sources[t[i].src], k, t[i].ts_ms);
	LWLockRelease(times->lock);
}

/* The greatest event time source src has seen, or TA_NO_TIME. */
int64
window_max_event_time(int src)
{
	int64		t;

	LWLockAcquire(times->lock, LW_SHARED);
	t = times->sources[src].max_event_ms;
	LWLockRelease(times->lock);
	return t;
}

/* The event time a source vouches for: its K-th greatest, or none yet. */
static int64
source_event_time(const SourceTimes *s)
{
	return s->nrecent >= ta_watermark_events ? s->recent[0] : TA_NO_TIME;
}

/*
 * Recompute the watermark from the sources' event times.  The event times'
 * lock is held throughout, from before the active flags are read until the
 * watermark is raised: a rewind (which takes it exclusively) can't come in
 * between and be undone, and the flags are never older than the times they
 * are combined with (a flag read earlier could miss a partition that became
 * active, with older events, while another moved far ahead).
 */
void
watermark_advance(void)
{
	int64		min_active = PG_INT64_MAX;
	int64		max_all = TA_NO_TIME;
	bool		any_active = false;
	int64		candidate;
	static bool *active = NULL;

	if (active == NULL)
		active = MemoryContextAlloc(TopMemoryContext, times->nslots * sizeof(bool));
	LWLockAcquire(times->lock, LW_SHARED);
	/* a source unused so far has no event time: it changes nothing */
	source_read_active(active);
	for (int i = 0; i < times->nslots; i++)
	{
		int64		t = source_event_time(&times->sources[i]);

		if (t > max_all)
			max_all = t;
		if (active[i])
		{
			any_active = true;
			/* an active partition that has seen too little yet holds all back */
			if (t < min_active)
				min_active = t;
		}
	}
	candidate = any_active ? min_active : max_all;
	if (candidate != TA_NO_TIME)
		watermark_raise(candidate - ta_allowed_lateness_ms);
	LWLockRelease(times->lock);
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

	LWLockAcquire(times->lock, LW_SHARED);
	for (int i = 0; i < times->nslots; i++)
		if (times->sources[i].max_event_ms > max_all)
			max_all = times->sources[i].max_event_ms;
	if (max_all != TA_NO_TIME)
		watermark_raise(window_last_end(max_all));
	LWLockRelease(times->lock);
}

/*
 * trafficagg.rewind_watermark(to): the watermark, and the flushed watermark,
 * go back to to_ms.  The caller has just written every group in memory and
 * stored resume offsets equal to the positions (flush.c), so nothing before
 * the positions is ever replayed: windows ending after to_ms are open again,
 * and their new rows merge into those already written.  Event times above
 * to_ms are forgotten, so that the watermark is set again by the events that
 * follow.
 */
void
watermark_rewind(int64 to_ms)
{
	LWLockAcquire(times->lock, LW_EXCLUSIVE);
	for (int i = 0; i < times->nslots; i++)
	{
		SourceTimes *s = &times->sources[i];
		int			kept = 0;

		if (s->max_event_ms > to_ms)
			s->max_event_ms = to_ms;
		for (int j = 0; j < s->nrecent; j++)
			if (s->recent[j] <= to_ms)
				s->recent[kept++] = s->recent[j];
		s->nrecent = kept;
		/* a subset of a heap's array is no heap: rebuild it */
		for (int j = kept / 2 - 1; j >= 0; j--)
			heap_sift_down(s->recent, kept, j);
	}
	SpinLockAcquire(&wm->mutex);
	/* only ever back (two rewinds may cross) */
	if (to_ms < wm->watermark_ms)
		wm->watermark_ms = to_ms;
	if (to_ms < wm->flushed_ms)
		wm->flushed_ms = to_ms;
	if (wm->replay_cutoff_ms > to_ms)
		wm->replay_cutoff_ms = to_ms;
	SpinLockRelease(&wm->mutex);
	LWLockRelease(times->lock);
}
