/*-------------------------------------------------------------------------
 *
 * catalog.h
 *	  The catalogs: aggregates and the field mapping (catalog.c).
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
	int			dims[TA_MAX_DIMENSIONS];	/* field slots (TaMapping) */
	char		dim_names[TA_MAX_DIMENSIONS][NAMEDATALEN];	/* their columns */
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
extern const TaMapping *catalog_mapping(void);

#endif							/* TRAFFICAGG_CATALOG_H */
