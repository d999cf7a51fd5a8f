/*-------------------------------------------------------------------------
 *
 * sketch.h
 *	  A group's sketches (sketch.c) as the group table (store.c) holds them:
 *	  their forms and sizes, kept in the group, and the copy taken under the
 *	  group's lock.  What is done with each sketch is in hll.h and latency.h;
 *	  the area they live in is sketch_area.h.
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef TRAFFICAGG_SKETCH_H
#define TRAFFICAGG_SKETCH_H

#include "utils/dsa.h"

#include "latency.h"			/* TaLatency, held by TaGroupCopy
								 * (store.h) */

/*
 * A group's sketches.  The forms and sizes are kept here, in the group, so
 * that the area holds only the contents: explicit hashes (8 bytes each) or
 * 2^log2m one-byte registers; (bucket, count) pairs (4 bytes each) or a dense
 * range of 4-byte counters.  Those sizes fit the area's size classes well.
 */
typedef struct TaSketches
{
	dsa_pointer users;			/* InvalidDsaPointer: no user id yet */
	dsa_pointer latency;		/* InvalidDsaPointer: no latency yet */
	uint32		users_n;		/* explicit form: distinct hashes held */
	uint32		users_cap;		/* explicit form: room for; 0: registers */
	uint16		lat_n;			/* pairs form: pairs held */
	uint16		lat_cap;		/* pairs form: room for; 0: dense */
	uint16		lat_lo;			/* dense form: first bucket */
	uint16		lat_nbuckets;	/* dense form: counters */
} TaSketches;

/* a group's sketches copied out of the area (sketch_copy) */
typedef struct TaSketchCopy
{
	TaSketches	hdr;
	void	   *users;			/* hashes or registers; NULL: none */
	uint32	   *latency;		/* pairs or counters; NULL: none */
} TaSketchCopy;

extern void sketch_configure(void);
extern void sketch_init(TaSketches *sk);
extern void sketch_copy(const TaSketches *sk, TaSketchCopy *copy);
extern void sketch_free(TaSketches *sk);

#endif							/* TRAFFICAGG_SKETCH_H */
