/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  The aggregate catalog: trafficagg.aggregates, copied into shared memory.
 *
 * Aggregates are data.  Each row (name, dimensions) is an aggregate; the
 * install script's trigger creates its table and views.  catalog_sync() makes
 * the shared copy match the table: an unchanged aggregate keeps its slot and
 * its open groups; a removed or changed one loses its slot (its open windows
 * are discarded, with a WARNING); a new one takes a free slot with a new
 * generation, so groups of a slot's previous owner can never be mistaken
 * for its own.  The worker syncs at start and on SIGHUP; backends sync at
 * each call of ingest() and flush().
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "trafficagg.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "lib/stringinfo.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "catalog.h"
#include "event.h"


/*
 * The shared copy of the catalog, private to this file, under its LWLock;
 * its version is also read without the lock.
 */
typedef struct CatalogShared
{
	LWLock	   *lock;
	bool		loaded;			/* some process has synced since the start */
	pg_atomic_uint32 version;	/* bumped at every change */
	TaAggregate aggs[TA_MAX_AGGREGATES];
} CatalogShared;

static CatalogShared *cat = NULL;

/* the aggregates this process last warned it could not maintain */
static char *last_left_out = NULL;

/*
 * Read trafficagg.aggregates and update the shared catalog.  Caller is in a
 * transaction with SPI connected.
 *
 * Aggregates already loaded keep their slots; new ones take free slots
 * oldest first (created_at).  The install script's trigger refuses an INSERT
 * beyond trafficagg.max_aggregates, so a row without a slot can only come
 * from a lowered setting (or concurrent inserts): it is left out with a
 * WARNING, and never pushes out an aggregate that is already maintained.
 */
void
catalog_sync(void)
{
	TaAggregate *want;
	int			nwant = 0;
	bool	   *keep;
	int			ret;
	StringInfoData removed,
				left_out;

	initStringInfo(&removed);
	initStringInfo(&left_out);

	ret = SPI_execute("SELECT name, dimensions FROM trafficagg.aggregates"
					  " ORDER BY created_at, name", true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed reading trafficagg.aggregates: %d", ret);

	want = palloc0(Max(SPI_processed, 1) * sizeof(TaAggregate));
	keep = palloc0(Max(SPI_processed, 1) * sizeof(bool));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *name = SPI_getvalue(tup, desc, 1);
		Datum		dims = SPI_getbinval(tup, desc, 2, &isnull);
		Datum	   *elems;
		bool	   *nulls;
		int			nelems;
		TaAggregate *a = &want[nwant];

		strlcpy(a->name, name, sizeof(a->name));
		if (!isnull)
		{
			deconstruct_array(DatumGetArrayTypeP(dims), TEXTOID, -1, false,
							  TYPALIGN_INT, &elems, &nulls, &nelems);
			for (int i = 0; i < nelems && i < TA_MAX_DIMENSIONS; i++)
			{
				char	   *d = TextDatumGetCString(elems[i]);
				int			f = field_by_name(d);

				if (nulls[i] || f < 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("aggregate \"%s\" has an unknown dimension \"%s\"", name, d)));
				a->dims[a->ndims++] = (TaField) f;
			}
		}
		a->in_use = true;
		nwant++;
	}

	LWLockAcquire(cat->lock, LW_EXCLUSIVE);
	/* keep unchanged aggregates in their slots */
	for (int s = 0; s < ta_max_aggregates; s++)
	{
		TaAggregate *cur = &cat->aggs[s];
		bool		found = false;

		if (!cur->in_use)
			continue;
		for (int w = 0; w < nwant; w++)
		{
			if (!keep[w] && strcmp(want[w].name, cur->name) == 0 &&
				want[w].ndims == cur->ndims &&
				memcmp(want[w].dims, cur->dims, sizeof(TaField) * cur->ndims) == 0)
			{
				keep[w] = found = true;
				break;
			}
		}
		if (!found)
		{
			if (cat->loaded)
				appendStringInfo(&removed, "%s\"%s\"", removed.len ? ", " : "", cur->name);
			cur->in_use = false;
		}
	}
	/* new ones into free slots, oldest first, with a fresh generation */
	for (int w = 0; w < nwant; w++)
	{
		int			s;

		if (keep[w])
			continue;
		for (s = 0; s < ta_max_aggregates; s++)
			if (!cat->aggs[s].in_use)
				break;
		if (s == ta_max_aggregates)
		{
			appendStringInfo(&left_out, "%s\"%s\"", left_out.len ? ", " : "", want[w].name);
			continue;
		}
		want[w].generation = cat->aggs[s].generation + 1;
		cat->aggs[s] = want[w];
	}
	cat->loaded = true;
	pg_atomic_fetch_add_u32(&cat->version, 1);
	LWLockRelease(cat->lock);
	pfree(want);
	pfree(keep);

	/* warnings after the lock (sending one may wait for the client) */
	if (removed.len > 0)
		ereport(WARNING,
				(errmsg("trafficagg aggregate %s was removed or changed; its open windows are discarded",
						removed.data)));
	/* the same rows left out again and again: said once per process */
	if (left_out.len > 0 &&
		(last_left_out == NULL || strcmp(last_left_out, left_out.data) != 0))
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("trafficagg aggregate %s is not maintained: trafficagg.max_aggregates (%d) are already",
						left_out.data, ta_max_aggregates),
				 errhint("Raise trafficagg.max_aggregates and restart the server, or delete an aggregate.")));
	if (last_left_out != NULL)
		pfree(last_left_out);
	last_left_out = MemoryContextStrdup(TopMemoryContext, left_out.data);
}

/* Slot of the aggregate called name, or -1. */
int
catalog_find(const char *name)
{
	int			found = -1;

	LWLockAcquire(cat->lock, LW_SHARED);
	for (int s = 0; s < ta_max_aggregates; s++)
		if (cat->aggs[s].in_use && strcmp(cat->aggs[s].name, name) == 0)
			found = s;
	LWLockRelease(cat->lock);
	return found;
}

Size
catalog_shmem_size(void)
{
	return MAXALIGN(sizeof(CatalogShared));
}

/* From the shmem_request hook. */
void
catalog_shmem_request(void)
{
	RequestNamedLWLockTranche("trafficagg catalog", 1);
}

/* From the shmem_startup hook, under AddinShmemInitLock. */
void
catalog_shmem_init(void)
{
	bool		found;

	cat = ShmemInitStruct("trafficagg catalog", catalog_shmem_size(), &found);
	if (!found)
	{
		memset(cat, 0, sizeof(CatalogShared));
		cat->lock = &GetNamedLWLockTranche("trafficagg catalog")[0].lock;
		pg_atomic_init_u32(&cat->version, 0);
	}
}

/*
 * A copy of the shared catalog (TA_MAX_AGGREGATES slots, by slot) into out;
 * returns its version, which changes at every catalog_sync().
 */
uint32
catalog_read(TaAggregate *out)
{
	uint32		version;

	LWLockAcquire(cat->lock, LW_SHARED);
	version = pg_atomic_read_u32(&cat->version);
	memcpy(out, cat->aggs, sizeof(cat->aggs));
	LWLockRelease(cat->lock);
	return version;
}

/* The catalog's version, without a lock (to see whether a copy is stale). */
uint32
catalog_version(void)
{
	return pg_atomic_read_u32(&cat->version);
}

/* Has any process loaded the catalog since the server started? */
bool
catalog_loaded(void)
{
	bool		loaded;

	LWLockAcquire(cat->lock, LW_SHARED);
	loaded = cat->loaded;
	LWLockRelease(cat->lock);
	return loaded;
}

/* Dimensions of the aggregate in slot agg. */
int
catalog_ndims(int agg)
{
	int			ndims;

	LWLockAcquire(cat->lock, LW_SHARED);
	ndims = cat->aggs[agg].ndims;
	LWLockRelease(cat->lock);
	return ndims;
}
