/*-------------------------------------------------------------------------
 *
 * hll.h
 *	  A group's unique users as a postgresql-hll HyperLogLog (hll.c).
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef TRAFFICAGG_HLL_H
#define TRAFFICAGG_HLL_H

#include "sketch.h"

extern uint64 sketch_user_hash(const char *data, size_t len);
extern void users_add(TaSketches *sk, uint64 hash);
extern bytea *users_serialize(const TaSketchCopy *copy);
extern Size users_bytes(const TaSketches *sk);
extern Size hll_max_growth(void);

#endif							/* TRAFFICAGG_HLL_H */
