/*-------------------------------------------------------------------------
 *
 * catalog.h
 *	  The aggregate catalog (catalog.c).
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef TRAFFICAGG_CATALOG_H
#define TRAFFICAGG_CATALOG_H

#include "event.h"

/* One row of trafficagg.aggregates, as the data path sees it. */
typedef struct TaAggregate
{
	bool		in_use;
	uint32		generation;		/* bumped when the slot is reused */
	char		name[NAMEDATALEN];
	int			ndims;
	TaField		dims[TA_MAX_DIMENSIONS];
} TaAggregate;

extern Size catalog_shmem_size(void);
extern void catalog_shmem_request(void);
extern void catalog_shmem_init(void);
extern void catalog_sync(void);
extern int	catalog_find(const char *name);
extern uint32 catalog_read(TaAggregate *out);
extern uint32 catalog_version(void);
extern bool catalog_loaded(void);
extern int	catalog_ndims(int agg);

#endif							/* TRAFFICAGG_CATALOG_H */
