/*-------------------------------------------------------------------------
 *
 * latency.h
 *	  A group's latencies as a log-bucketed histogram (latency.c), and the
 *	  histogram copied out of shared memory.
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef TRAFFICAGG_LATENCY_H
#define TRAFFICAGG_LATENCY_H

#include "fmgr.h"
#include "lib/stringinfo.h"

/* relative accuracy of latency percentiles (below the promised 1%) */
#define TA_LATENCY_ALPHA		0.0095
/* histogram buckets: 0, then (g^(k-1), g^k] us up to 1e12 ms */
#define TA_LATENCY_BUCKETS		1830

typedef struct TaLatency TaLatency;	/* a histogram copied out, palloc'd */

/* a group's sketches (sketch.h, which includes this file for TaLatency) */
struct TaSketches;
struct TaSketchCopy;

extern uint16 latency_bucket(int64 us);
extern void latency_add_bucket(struct TaSketches *sk, uint16 bucket);
extern Size latency_bytes(const struct TaSketches *sk);
extern Size latency_max_growth(void);
extern TaLatency *latency_copy(const struct TaSketchCopy *copy);
extern bytea *latency_to_bytes(const TaLatency *h, int64 min_us, int64 max_us);
extern TaLatency *latency_from_bytes(const bytea *b, int64 *min_us, int64 *max_us);
extern double latency_percentile(const TaLatency *h, double p, int64 min_us, int64 max_us);
extern Datum latency_tdigest(const TaLatency *h, int64 min_us, int64 max_us,
							 FmgrInfo *receive, Oid ioparam);
/* " (ms, count)": one centroid of a tdigest value's text (also digest.c) */
extern void append_centroid(StringInfo s, double ms, int64 count);

#endif							/* TRAFFICAGG_LATENCY_H */
