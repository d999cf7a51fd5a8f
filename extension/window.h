/*-------------------------------------------------------------------------
 *
 * window.h
 *	  Event-time windows, event times and the watermark (window.c).
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef TRAFFICAGG_WINDOW_H
#define TRAFFICAGG_WINDOW_H

extern int	window_count(void);
extern int	window_assign(int64 ts_ms, int64 *starts);
extern int64 window_end(int64 start);
extern int64 window_last_end(int64 ts_ms);


extern Size watermark_shmem_size(void);
extern void watermark_shmem_request(void);
extern void watermark_shmem_init(void);
extern int64 watermark_get(void);
extern int64 watermark_flushed(void);
extern int64 watermark_replay_cutoff(void);
extern void watermark_restore(int64 stored_ms);
extern void watermark_flushed_through(int64 ms);
extern void watermark_advance(void);
extern void watermark_close_all(void);
/* an event time a source saw (window_saw_event_times) */
typedef struct TaEventTime
{
	int			src;
	int64		ts_ms;
} TaEventTime;

extern void window_saw_event_times(const TaEventTime *t, int n);
extern int64 window_max_event_time(int src);
extern void watermark_rewind(int64 to_ms);

#endif							/* TRAFFICAGG_WINDOW_H */
