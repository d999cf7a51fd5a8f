/*-------------------------------------------------------------------------
 *
 * sketch_area.h
 *	  The shared area the sketches live in (sketch_area.c): sized and
 *	  created with the main shared memory (store.c), allocated from by the
 *	  sketches (hll.c, latency.c, sketch.c).
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef TRAFFICAGG_SKETCH_AREA_H
#define TRAFFICAGG_SKETCH_AREA_H

#include "utils/dsa.h"

extern void sketch_area_set_group_growth(Size bytes);
extern Size sketch_shmem_size(void);
extern void sketch_shmem_init(void *place, bool found);
extern dsa_area *sketch_area(void);
extern void *sketch_address(dsa_pointer p);
extern dsa_pointer sketch_alloc(Size size);
extern void sketch_release(dsa_pointer p, Size size);
extern uint64 sketch_bytes_used(void);
extern bool sketch_has_room(void);

#endif							/* TRAFFICAGG_SKETCH_AREA_H */
