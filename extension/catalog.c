/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  The catalogs: trafficagg.aggregates and trafficagg.fields (the field
 *	  mapping), copied into shared memory.
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
 * The field mapping is data too: each row of trafficagg.fields says where a
 * field comes from (a path into the JSON value, the Kafka key, timestamp or
 * a header), its type and its role (event time, user id, latency, status).
 * A field keeps its slot while a row of its name exists, as an aggregate
 * does, so aggregates' dimensions (field slots) stay valid across changes
 * of other fields.  An aggregate whose dimension is no field that can be
 * grouped by (text or integer) is left out with a WARNING.  Before the
 * table exists (a server running a new library on an old version of the
 * extension) the mapping is event.c's default, the same as the table's rows
 * after CREATE EXTENSION.
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
	TaMapping	mapping;		/* its version changes when it does */
} CatalogShared;

static CatalogShared *cat = NULL;

/* this process's copy of the mapping (catalog_mapping) */
static TaMapping local_mapping;
static uint32 local_mapping_version = 0;
static bool local_mapping_valid = false;

static int
lookup_name(const char *const *names, int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (s != NULL && strcmp(names[i], s) == 0)
			return i;
	return -1;
}

/*
 * Read trafficagg.fields into rows (TA_MAX_FIELDS at most; the rest are
 * counted in *extra).  Returns false if the table does not exist.
 */
static bool
read_fields(TaFieldDef *rows, int *nrows, int *extra)
{
	static const char *const sources[] = {"value", "key", "timestamp", "header"};
	static const char *const types[] = {"text", "integer", "number", "time"};
	static const char *const roles[] = {"", "event_time", "user_id", "latency", "status"};
	static const char *const formats[] = {"auto", "rfc3339", "epoch_s", "epoch_ms", "epoch_us"};
	int			ret;

	*nrows = *extra = 0;
	ret = SPI_execute("SELECT pg_catalog.to_regclass('trafficagg.fields') IS NOT NULL", true, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "SPI_execute failed looking for trafficagg.fields: %d", ret);
	if (strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "t") != 0)
		return false;
	ret = SPI_execute("SELECT name, source, path, type, required, role, time_format, latency_unit"
					  " FROM trafficagg.fields ORDER BY id, name", true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed reading trafficagg.fields: %d", ret);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		TaFieldDef *d;
		char	   *path = SPI_getvalue(tup, desc, 3);
		char	   *role = SPI_getvalue(tup, desc, 6);
		char	   *format = SPI_getvalue(tup, desc, 7);
		char	   *unit = SPI_getvalue(tup, desc, 8);

		if (*nrows == TA_MAX_FIELDS)
		{
			(*extra)++;
			continue;
		}
		d = &rows[(*nrows)++];
		memset(d, 0, sizeof(*d));
		d->in_use = true;
		strlcpy(d->name, SPI_getvalue(tup, desc, 1), sizeof(d->name));
		/* the table's checks allow only these: anything else is a default */
		d->source = (TaFieldSource) Max(lookup_name(sources, lengthof(sources), SPI_getvalue(tup, desc, 2)), 0);
		strlcpy(d->path, path ? path : "", sizeof(d->path));
		d->type = (TaFieldType) Max(lookup_name(types, lengthof(types), SPI_getvalue(tup, desc, 4)), 0);
		d->required = strcmp(SPI_getvalue(tup, desc, 5), "t") == 0;
		d->role = (TaFieldRole) Max(lookup_name(roles, lengthof(roles), role ? role : ""), 0);
		d->format = (TaTimeFormat) Max(lookup_name(formats, lengthof(formats), format), 0);
		d->unit_us = unit == NULL || strcmp(unit, "ms") == 0 ? 1000 : strcmp(unit, "us") == 0 ? 1 : 1000000;
	}
	return true;
}

/*
 * The new mapping from the rows: a field keeps the slot its name has in
 * cur; a new one takes the first slot free in both.  Its version is cur's,
 * or the next one if anything changed.  Caller holds cat->lock.
 */
static void
assign_field_slots(const TaMapping *cur, const TaFieldDef *rows, int nrows, TaMapping *out)
{
	bool		placed[TA_MAX_FIELDS] = {0};

	memset(out, 0, sizeof(*out));
	for (int r = 0; r < nrows; r++)
	{
		int			slot = mapping_find(cur, rows[r].name);

		if (slot >= 0)
		{
			out->fields[slot] = rows[r];
			placed[r] = true;
		}
	}
	for (int r = 0; r < nrows; r++)
	{
		int			slot;

		if (placed[r])
			continue;
		for (slot = 0; slot < TA_MAX_FIELDS; slot++)
			if (!out->fields[slot].in_use && !cur->fields[slot].in_use)
				break;
		if (slot == TA_MAX_FIELDS)	/* every slot taken, freed ones too */
			for (slot = 0; slot < TA_MAX_FIELDS; slot++)
				if (!out->fields[slot].in_use)
					break;
		out->fields[slot] = rows[r];
	}
	out->version = cur->version;
	if (memcmp(out->fields, cur->fields, sizeof(out->fields)) != 0)
		out->version = cur->version + 1;
}

/* the aggregates this process last warned it could not maintain */
static char *last_left_out = NULL;
static char *last_unresolved = NULL;

/*
 * The aggregates' filters (trafficagg.aggregates.filter, a JSON object; the
 * table's trigger checked its form) into want[].conds, their field names
 * into names[] (resolved to slots under the lock).
 */
static void
read_filters(TaAggregate *want, int nwant,
			 char (*names)[TA_MAX_FILTER_FIELDS][NAMEDATALEN])
{
	int			ret;

	ret = SPI_execute("SELECT a.name, f.key, pg_catalog.jsonb_typeof(f.value),"
					  "       f.value OPERATOR(pg_catalog.=) 'true'::jsonb,"
					  "       CASE pg_catalog.jsonb_typeof(f.value)"
					  "         WHEN 'array' THEN ARRAY(SELECT e OPERATOR(pg_catalog.#>>) '{}'"
					  "                                   FROM pg_catalog.jsonb_array_elements(f.value) AS e)"
					  "         WHEN 'boolean' THEN NULL"
					  "         ELSE ARRAY[f.value OPERATOR(pg_catalog.#>>) '{}'] END"
					  "  FROM trafficagg.aggregates a, pg_catalog.jsonb_each(a.filter) AS f"
					  " ORDER BY a.name, f.key", true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed reading the filters of trafficagg.aggregates: %d", ret);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *name = SPI_getvalue(tup, desc, 1);
		char	   *type = SPI_getvalue(tup, desc, 3);
		bool		isnull;
		Datum		values = SPI_getbinval(tup, desc, 5, &isnull);
		TaAggregate *a = NULL;
		TaFilterCond *c;

		for (int w = 0; w < nwant; w++)
			if (strcmp(want[w].name, name) == 0)
				a = &want[w];
		if (a == NULL || a->nconds == TA_MAX_FILTER_FIELDS)
			continue;
		strlcpy(names[a - want][a->nconds], SPI_getvalue(tup, desc, 2), NAMEDATALEN);
		c = &a->conds[a->nconds++];
		if (strcmp(type, "boolean") == 0)
		{
			c->kind = strcmp(SPI_getvalue(tup, desc, 4), "t") == 0 ? TA_FILTER_PRESENT : TA_FILTER_ABSENT;
			continue;
		}
		c->kind = TA_FILTER_IN;
		c->first = 0;
		for (int k = 0; k < a->nconds - 1; k++)
			if (a->conds[k].kind == TA_FILTER_IN)
				c->first = a->conds[k].first + a->conds[k].nvalues;
		c->nvalues = 0;
		if (!isnull)
		{
			Datum	   *elems;
			bool	   *nulls;
			int			nelems;
			int			used = 0;

			for (int k = 0; k < c->first; k++)
				used = Max(used, a->value_off[k] + a->value_len[k] + 1);
			deconstruct_array(DatumGetArrayTypeP(values), TEXTOID, -1, false,
							  TYPALIGN_INT, &elems, &nulls, &nelems);
			for (int k = 0; k < nelems; k++)
			{
				char	   *v = nulls[k] ? NULL : TextDatumGetCString(elems[k]);
				int			len = v ? (int) strlen(v) : 0;

				if (v == NULL || c->first + c->nvalues == TA_MAX_FILTER_VALUES ||
					used + len + 1 > TA_FILTER_TEXT)
					continue;	/* beyond what the trigger allows */
				memcpy(a->filter_text + used, v, len + 1);
				a->value_off[c->first + c->nvalues] = (uint16) used;
				a->value_len[c->first + c->nvalues] = (uint16) len;
				c->nvalues++;
				used += len + 1;
			}
		}
	}
}

/* Is want the same aggregate as cur (its open groups stay valid)? */
static bool
same_definition(const TaAggregate *want, const TaAggregate *cur)
{
	return strcmp(want->name, cur->name) == 0 &&
		want->ndims == cur->ndims &&
		memcmp(want->dims, cur->dims, sizeof(int) * cur->ndims) == 0 &&
		memcmp(want->dim_names, cur->dim_names, sizeof(cur->dim_names)) == 0 &&
		want->nmetrics == cur->nmetrics &&
		memcmp(want->metrics, cur->metrics, sizeof(int) * cur->nmetrics) == 0 &&
		memcmp(want->metric_names, cur->metric_names, sizeof(cur->metric_names)) == 0 &&
		want->users_field == cur->users_field &&
		strcmp(want->users_name, cur->users_name) == 0 &&
		want->nconds == cur->nconds &&
		memcmp(want->conds, cur->conds, sizeof(TaFilterCond) * cur->nconds) == 0 &&
		memcmp(want->value_off, cur->value_off, sizeof(cur->value_off)) == 0 &&
		memcmp(want->value_len, cur->value_len, sizeof(cur->value_len)) == 0 &&
		memcmp(want->filter_text, cur->filter_text, sizeof(cur->filter_text)) == 0;
}

/*
 * Does the aggregate count this event?  Every test of its filter must hold;
 * a value is compared with the field's text (an integer's is its decimal
 * form).
 */
bool
catalog_wants(const TaAggregate *agg, const TaEvent *ev)
{
	for (int i = 0; i < agg->nconds; i++)
	{
		const TaFilterCond *c = &agg->conds[i];
		const char *v = ev->field[c->field];
		bool		match = false;

		switch (c->kind)
		{
			case TA_FILTER_PRESENT:
				match = v != NULL;
				break;
			case TA_FILTER_ABSENT:
				match = v == NULL;
				break;
			case TA_FILTER_IN:
				for (int k = c->first; k < c->first + c->nvalues && v != NULL && !match; k++)
					match = agg->value_len[k] == ev->field_len[c->field] &&
						memcmp(agg->filter_text + agg->value_off[k], v, agg->value_len[k]) == 0;
				break;
		}
		if (!match)
			return false;
	}
	return true;
}

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

	TaFieldDef *rows = palloc0(TA_MAX_FIELDS * sizeof(TaFieldDef));
	int			nrows,
				extra_fields;
	bool		have_table;
	TaMapping  *map = palloc(sizeof(TaMapping));
	StringInfoData unresolved;
	char		(*filter_names)[TA_MAX_FILTER_FIELDS][NAMEDATALEN];
	bool		changed;

	initStringInfo(&removed);
	initStringInfo(&left_out);
	initStringInfo(&unresolved);

	have_table = read_fields(rows, &nrows, &extra_fields);
	if (!have_table)
	{
		const TaMapping *def = mapping_default();

		nrows = 0;
		for (int f = 0; f < TA_MAX_FIELDS; f++)
			if (def->fields[f].in_use)
				rows[nrows++] = def->fields[f];
	}

	/* (metrics and filters came with the field mapping, in 0.4.0) */
	ret = SPI_execute(have_table
					  ? "SELECT name, dimensions, metrics, users_field FROM trafficagg.aggregates"
					  " ORDER BY created_at, name"
					  : "SELECT name, dimensions, NULL::text[], NULL::text FROM trafficagg.aggregates"
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
		/* names now, field slots under the lock (below) */
		if (!isnull)
		{
			deconstruct_array(DatumGetArrayTypeP(dims), TEXTOID, -1, false,
							  TYPALIGN_INT, &elems, &nulls, &nelems);
			for (int i = 0; i < nelems && i < TA_MAX_DIMENSIONS; i++)
				if (!nulls[i])
					strlcpy(a->dim_names[a->ndims++], TextDatumGetCString(elems[i]), NAMEDATALEN);
		}
		dims = SPI_getbinval(tup, desc, 3, &isnull);
		if (!isnull)
		{
			deconstruct_array(DatumGetArrayTypeP(dims), TEXTOID, -1, false,
							  TYPALIGN_INT, &elems, &nulls, &nelems);
			for (int i = 0; i < nelems && i < TA_MAX_METRICS; i++)
				if (!nulls[i])
					strlcpy(a->metric_names[a->nmetrics++], TextDatumGetCString(elems[i]), NAMEDATALEN);
		}
		{
			char	   *uf = SPI_getvalue(tup, desc, 4);

			strlcpy(a->users_name, uf ? uf : "", sizeof(a->users_name));
		}
		a->in_use = true;
		nwant++;
	}
	filter_names = palloc0(Max(nwant, 1) * sizeof(*filter_names));
	if (have_table)
		read_filters(want, nwant, filter_names);

	LWLockAcquire(cat->lock, LW_EXCLUSIVE);
	assign_field_slots(&cat->mapping, rows, nrows, map);
	/* the dimensions as field slots: a field that can be grouped by */
	for (int w = 0; w < nwant; w++)
		for (int i = 0; i < want[w].ndims; i++)
		{
			int			f = mapping_find(map, want[w].dim_names[i]);

			if (f < 0 || (map->fields[f].type != TA_TYPE_TEXT &&
						  map->fields[f].type != TA_TYPE_INTEGER))
			{
				appendStringInfo(&unresolved, "%s\"%s\" (dimension \"%s\")",
								 unresolved.len ? ", " : "", want[w].name, want[w].dim_names[i]);
				want[w].in_use = false;
				break;
			}
			want[w].dims[i] = f;
		}
	/* metrics: numeric fields; filters: fields with a text */
	for (int w = 0; w < nwant; w++)
	{
		/* users: the named field, or the user_id role's */
		want[w].users_field = -1;
		if (want[w].users_name[0] != '\0')
		{
			int			f = mapping_find(map, want[w].users_name);

			if (f < 0 || (map->fields[f].type != TA_TYPE_TEXT &&
						  map->fields[f].type != TA_TYPE_INTEGER))
			{
				appendStringInfo(&unresolved, "%s\"%s\" (users_field \"%s\")",
								 unresolved.len ? ", " : "", want[w].name, want[w].users_name);
				want[w].in_use = false;
			}
			want[w].users_field = f;
		}
		else
			for (int f = 0; f < TA_MAX_FIELDS; f++)
				if (map->fields[f].in_use && map->fields[f].role == TA_ROLE_USER_ID)
					want[w].users_field = f;
		for (int i = 0; i < want[w].nmetrics && want[w].in_use; i++)
		{
			int			f = mapping_find(map, want[w].metric_names[i]);

			if (f < 0 || (map->fields[f].type != TA_TYPE_NUMBER &&
						  map->fields[f].type != TA_TYPE_INTEGER))
			{
				appendStringInfo(&unresolved, "%s\"%s\" (metric \"%s\")",
								 unresolved.len ? ", " : "", want[w].name, want[w].metric_names[i]);
				want[w].in_use = false;
			}
			else
				want[w].metrics[i] = f;
		}
		for (int i = 0; i < want[w].nconds && want[w].in_use; i++)
		{
			int			f = mapping_find(map, filter_names[w][i]);

			if (f < 0 || (map->fields[f].type != TA_TYPE_TEXT &&
						  map->fields[f].type != TA_TYPE_INTEGER))
			{
				appendStringInfo(&unresolved, "%s\"%s\" (filter on \"%s\")",
								 unresolved.len ? ", " : "", want[w].name, filter_names[w][i]);
				want[w].in_use = false;
			}
			else
				want[w].conds[i].field = f;
		}
	}
	/* the version moves only when something did: copies of it stay valid */
	changed = !cat->loaded || map->version != cat->mapping.version;
	cat->mapping = *map;
	/* keep unchanged aggregates in their slots */
	for (int s = 0; s < ta_max_aggregates; s++)
	{
		TaAggregate *cur = &cat->aggs[s];
		bool		found = false;

		if (!cur->in_use)
			continue;
		for (int w = 0; w < nwant; w++)
		{
			if (!keep[w] && want[w].in_use && same_definition(&want[w], cur))
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
			changed = true;
		}
	}
	/* new ones into free slots, oldest first, with a fresh generation */
	for (int w = 0; w < nwant; w++)
	{
		int			s;

		if (keep[w] || !want[w].in_use)
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
		changed = true;
	}
	cat->loaded = true;
	if (changed)
		pg_atomic_fetch_add_u32(&cat->version, 1);
	LWLockRelease(cat->lock);
	pfree(want);
	pfree(keep);
	pfree(rows);
	pfree(map);
	pfree(filter_names);

	if (unresolved.len > 0 &&
		(last_unresolved == NULL || strcmp(last_unresolved, unresolved.data) != 0))
		ereport(WARNING,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("trafficagg aggregate %s is not maintained: no field of that name that can be grouped by",
						unresolved.data),
				 errhint("Dimensions are fields of trafficagg.fields of type text or integer.")));
	if (last_unresolved != NULL)
		pfree(last_unresolved);
	last_unresolved = MemoryContextStrdup(TopMemoryContext, unresolved.data);
	if (extra_fields > 0)
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("trafficagg.fields has %d fields beyond the %d trafficagg reads; they are ignored",
						extra_fields, TA_MAX_FIELDS)));

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
		cat->mapping = *mapping_default();
		cat->mapping.version = 1;
	}
}

/*
 * A copy of the shared catalog (TA_MAX_AGGREGATES slots, by slot) into out;
 * returns its version, which changes whenever catalog_sync() changes the catalog.
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

/*
 * The field mapping as this process last saw it: a copy, taken again when
 * the catalog changed (one atomic read per call otherwise).  Valid until the
 * next call.
 */
const TaMapping *
catalog_mapping(void)
{
	uint32		version = pg_atomic_read_u32(&cat->version);

	if (!local_mapping_valid || version != local_mapping_version)
	{
		LWLockAcquire(cat->lock, LW_SHARED);
		local_mapping = cat->mapping;
		local_mapping_version = pg_atomic_read_u32(&cat->version);
		LWLockRelease(cat->lock);
		local_mapping_valid = true;
	}
	return &local_mapping;
}

/* Metric fields of the aggregate in slot agg. */
int
catalog_nmetrics(int agg)
{
	int			n;

	LWLockAcquire(cat->lock, LW_SHARED);
	n = cat->aggs[agg].nmetrics;
	LWLockRelease(cat->lock);
	return n;
}
