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

#define TA_MAX_METRICS			4	/* numeric fields summed per aggregate */
#define TA_MAX_FILTER_FIELDS	8	/* fields a filter tests */
#define TA_MAX_FILTER_VALUES	32	/* values a filter lists, in all */
#define TA_FILTER_TEXT			512 /* bytes of those values */

/* One test of an aggregate's filter, on a field's text. */
typedef enum TaFilterKind
{
	TA_FILTER_IN,				/* one of the values */
	TA_FILTER_PRESENT,
	TA_FILTER_ABSENT
} TaFilterKind;

typedef struct TaFilterCond
{
	int			field;			/* field slot */
	TaFilterKind kind;
	int			first;			/* TA_FILTER_IN: its values */
	int			nvalues;
} TaFilterCond;

/* One row of trafficagg.aggregates, as the data path sees it. */
typedef struct TaAggregate
{
	bool		in_use;
	uint32		generation;		/* bumped when the slot is reused */
	char		name[NAMEDATALEN];
	int			ndims;
	int			dims[TA_MAX_DIMENSIONS];	/* field slots (TaMapping) */
	char		dim_names[TA_MAX_DIMENSIONS][NAMEDATALEN];	/* their columns */
	int			nmetrics;
	int			metrics[TA_MAX_METRICS];	/* field slots */
	char		metric_names[TA_MAX_METRICS][NAMEDATALEN];
	int			users_field;	/* field slot users counts, -1: none */
	char		users_name[NAMEDATALEN];	/* as written; "": the user_id role's */
	int			nconds;			/* the filter; 0: every event */
	TaFilterCond conds[TA_MAX_FILTER_FIELDS];
	uint16		value_off[TA_MAX_FILTER_VALUES];	/* into filter_text */
	uint16		value_len[TA_MAX_FILTER_VALUES];
	char		filter_text[TA_FILTER_TEXT];
} TaAggregate;

extern bool catalog_wants(const TaAggregate *agg, const TaEvent *ev);

extern Size catalog_shmem_size(void);
extern void catalog_shmem_request(void);
extern void catalog_shmem_init(void);
extern void catalog_sync(void);
extern int	catalog_find(const char *name);
extern uint32 catalog_read(TaAggregate *out);
extern uint32 catalog_version(void);
extern bool catalog_loaded(void);
extern int	catalog_ndims(int agg);
extern int	catalog_nmetrics(int agg);
extern const TaMapping *catalog_mapping(void);

#endif							/* TRAFFICAGG_CATALOG_H */
