/*-------------------------------------------------------------------------
 *
 * batch.h
 *	  The groups of the batch being served, in this process's memory
 *	  (batch.c), before store.c merges them into shared memory.
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef TRAFFICAGG_BATCH_H
#define TRAFFICAGG_BATCH_H

#include "event.h"
#include "store.h"

/* A distinct dimension value of the batch (its bytes copied). */
typedef struct TaBatchValue
{
	const char *bytes;
	uint32		len;
	uint32		hash;			/* store_value_hash() of the bytes */
} TaBatchValue;

/* A group of the batch: an aggregate's window and dimension values. */
typedef struct TaBatchGroup
{
	int32		agg;
	uint32		generation;		/* the aggregate's, when the batch saw it */
	int64		window_start;
	uint32		dims[TA_MAX_DIMENSIONS];	/* 1 + index into the values, 0 =
											 * missing */
	TaMetrics	m;
	int32		first_user;		/* its user id hashes, in event order: a chain */
	int32		last_user;		/* through TaBatch.users (-1: none) */
	int32		first_latency;	/* its latency buckets, in event order: a */
	int32		last_latency;	/* chain through TaBatch.latencies (-1: none) */
} TaBatchGroup;

/* A user id hash of a group, and the index of its group's next one (-1: none). */
typedef struct TaBatchUser
{
	uint64		hash;
	int32		next;
} TaBatchUser;

/* A latency bucket of a group, and the index of its group's next one (-1: none). */
typedef struct TaBatchLatency
{
	uint16		bucket;
	int32		next;
} TaBatchLatency;

typedef struct TaBatch
{
	int			nmessages;		/* messages whose events are in it */
	int			nvalues;
	TaBatchValue *values;
	int			ngroups;
	TaBatchGroup *groups;
	int			nusers;
	TaBatchUser *users;			/* every group's, one array */
	int			nlatencies;
	TaBatchLatency *latencies;	/* every group's, one array */
	uint32		catalog_version;	/* of the catalog its first event saw (0:
									 * none yet); later ones saw it or newer */
} TaBatch;

extern void batch_reset(void);
extern void batch_add_event(const TaEvent *ev, const int64 *starts, int nstarts);
extern void batch_count_message(void);
extern bool batch_full(void);
extern const TaBatch *batch_contents(void);

#endif							/* TRAFFICAGG_BATCH_H */
