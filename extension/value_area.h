/*-------------------------------------------------------------------------
 *
 * value_area.h
 *	  The shared area the bytes of dimension values live in (value_area.c):
 *	  sized and created with the main shared memory, used by the value
 *	  dictionary (store.c).
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef TRAFFICAGG_VALUE_AREA_H
#define TRAFFICAGG_VALUE_AREA_H

#include "utils/dsa.h"

extern Size value_area_shmem_size(void);
extern void value_area_shmem_init(void *place, bool found);
extern dsa_pointer value_area_store(const char *bytes, Size len, Size own);
extern const char *value_area_bytes(dsa_pointer p);
extern void value_area_free(dsa_pointer p, Size len);
extern uint64 value_area_bytes_used(void);

#endif							/* TRAFFICAGG_VALUE_AREA_H */
