/*-------------------------------------------------------------------------
 *
 * store.h
 *	  The groups of open windows and the value dictionary (store.c).
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef TRAFFICAGG_STORE_H
#define TRAFFICAGG_STORE_H

#include "common/hashfn.h"

#include "catalog.h"
#include "event.h"
#include "sketch.h"

struct TaBatch;

/* Exact metrics of one group. */
typedef struct TaMetrics
{
	int64		events;
	int64		errors;			/* status_code >= 500 */
	int64		client_errors;	/* 400 <= status_code < 500 */
	int64		latency_count;
	int128		latency_sum_us; /* 1e12 ms per event: int64 would overflow
								 * after 9,223 events */
	int64		latency_min_us;
	int64		latency_max_us;
	/* the aggregate's metric fields, in millionths of their unit */
	struct
	{
		int64		count;
		int64		min;
		int64		max;
		int128		sum;
	}			fm[TA_MAX_METRICS];
} TaMetrics;

/* A group copied out of shared memory, with its dimension values resolved. */
typedef struct TaGroupCopy
{
	int			agg;
	int64		window_start;
	char	   *dims[TA_MAX_DIMENSIONS];	/* palloc'd, NULL = missing */
	TaMetrics	m;
	bytea	   *users;			/* postgresql-hll value of the user ids */
	TaLatency  *latency;		/* NULL when no event had a latency */
	TaSketchCopy sk;			/* raw copy, converted after the locks */
} TaGroupCopy;

extern void store_request_shmem(void);
extern Size store_shmem_size(void);
extern void store_check_attached(void);
extern bool store_merge_batch(const struct TaBatch *b);
extern long store_group_count(void);
extern long store_value_count(void);
extern uint64 store_value_bytes(void);
extern const char *store_full_setting(void);
extern int	store_window_count(void);
extern int	store_collect_closed(int64 cutoff, TaGroupCopy **out);
extern int	store_collect_oldest_window(TaGroupCopy **out);
extern int	store_collect_live(int agg, const char *name, const char *const *key, int nkey,
							   TaGroupCopy **out);
extern void store_forget_flushed(void);

/*
 * A group's key: (aggregate, window start, dimension values as dictionary
 * ids here, as batch value indexes in batch.c), zeroed past the aggregate's
 * dimensions so that it compares and hashes as bytes.
 */
typedef struct TaGroupKey
{
	int32		agg;
	uint32		catalog_generation;
	int64		window_start;
	uint32		dims[TA_MAX_DIMENSIONS];	/* 0 = missing */
} TaGroupKey;

/*
 * The hash of a group key, for the group table and batch.c: its 64-bit words
 * folded by multiplication (far fewer instructions than hash_bytes over the
 * 48 bytes; four keys per event or more), then murmur's finalizer.
 */
static inline uint32
store_group_hash(const TaGroupKey *k)
{
	const uint64 m = UINT64CONST(0x9e3779b97f4a7c15);
	uint64		h = ((uint64) (uint32) k->agg << 32 | k->catalog_generation) * m;

	StaticAssertStmt(TA_MAX_DIMENSIONS % 2 == 0, "dimension ids are folded in pairs");
	h = (h ^ (uint64) k->window_start) * m;
	for (int d = 0; d < TA_MAX_DIMENSIONS; d += 2)
		h = (h ^ ((uint64) k->dims[d] << 32 | k->dims[d + 1])) * m;
	h ^= h >> 33;
	h *= UINT64CONST(0xff51afd7ed558ccd);
	h ^= h >> 33;
	return (uint32) h;
}

/*
 * The hash of a dimension value, as the dictionary and batch.c compute it:
 * its length and its bytes, eight at a time (the last four to eight as two
 * overlapping words, one to three bytes each), folded by multiplication with
 * a shift, then murmur's finalizer.  Inline, and about a third of hash_bytes'
 * instructions on the short values of events; several values per event.
 */
static inline uint32
store_value_hash(const char *bytes, uint32 len)
{
	const uint64 m = UINT64CONST(0x9e3779b97f4a7c15);
	uint64		h = (uint64) len * m;
	uint64		w;

	while (len > 8)
	{
		memcpy(&w, bytes, 8);
		h = (h ^ w) * m;
		h ^= h >> 32;
		bytes += 8;
		len -= 8;
	}
	if (len >= 4)
	{
		uint32		first,
					last;

		memcpy(&first, bytes, 4);
		memcpy(&last, bytes + len - 4, 4);
		w = (uint64) first << 32 | last;
	}
	else if (len > 0)
		w = (uint64) (unsigned char) bytes[0] << 16 |
			(uint64) (unsigned char) bytes[len / 2] << 8 |
			(unsigned char) bytes[len - 1];
	else
		w = 0;
	h = (h ^ w) * m;
	h ^= h >> 33;
	h *= UINT64CONST(0xff51afd7ed558ccd);
	h ^= h >> 33;
	return (uint32) h;
}

#endif							/* TRAFFICAGG_STORE_H */
