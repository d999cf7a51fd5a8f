/*-------------------------------------------------------------------------
 *
 * flush.h
 *	  Writing windows, offsets and dead letters (flush.c).
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef TRAFFICAGG_FLUSH_H
#define TRAFFICAGG_FLUSH_H

typedef struct TaFlushResult
{
	int64		watermark;		/* windows ending at or before it were written */
	int64		rows;			/* group rows written */
	int			rejected_taken; /* ring entries written */
	bool		spilled;		/* FLUSH_SPILL_OLDEST: an open window written early */
} TaFlushResult;

/* What a flush writes. */
typedef enum TaFlushKind
{
	FLUSH_CLOSED,				/* the windows the watermark closed */
	FLUSH_CLOSE_ALL,			/* first move the watermark past every window
								 * with data (trafficagg.flush(true)) */
	FLUSH_SPILL_OLDEST,			/* memory is full: the oldest window in memory,
								 * open or not, as partial rows */
	FLUSH_REWIND				/* every window, open ones as partial rows,
								 * then the watermark goes back
								 * (trafficagg.rewind_watermark) */
} TaFlushKind;

extern void flush_windows(TaFlushKind kind, int64 rewind_to, bool with_kafka,
						  TaFlushResult *res);
extern void flush_after_commit(const TaFlushResult *res, double elapsed_ms);
extern void flush_wait_for_backends(void);
extern void flush_rewind_without_worker(int64 to_ms);

#endif							/* TRAFFICAGG_FLUSH_H */
