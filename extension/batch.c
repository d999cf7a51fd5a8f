/*-------------------------------------------------------------------------
 *
 * batch.c
 *	  Aggregate, first step: the events of one batch into groups in this
 *	  process's memory, without a lock; store.c then merges each group into
 *	  shared memory once per batch (store_merge_batch).
 *
 * What it owns: the batch being served (consume.c serves up to a thousand
 * Kafka messages at a time; trafficagg.ingest() one call's): its distinct
 * dimension values, copied, and its groups, each (aggregate, window start,
 * dimension values) with exact metrics, the hashes of its user ids and the
 * buckets of its latencies in event order.  The merge adds the same values in
 * the same order as adding each event to shared memory would, so the tables
 * are byte-identical either way (sketches included); it just takes each
 * group's lock and looks it up once per batch instead of once per event.
 * The value bytes live in a memory context reset with the batch; the arrays
 * and hash tables are kept from one batch to the next (emptied, not freed).
 *
 * Which aggregates an event goes into, and with which fields, is the
 * catalog's (a copy per process, refreshed when its version changes).
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "trafficagg.h"

#include "common/hashfn.h"
#include "utils/memutils.h"

#include "batch.h"
#include "catalog.h"
#include "hll.h"
#include "latency.h"
#include "window.h"


/* A batch's distinct values, by their bytes. */
typedef struct ValueKey
{
	uint32		hash;
	uint32		len;
	const char *bytes;
} ValueKey;

typedef struct ValueSlot
{
	ValueKey	key;
	char		status;			/* simplehash's */
	uint32		index;			/* into batch.values */
} ValueSlot;

#define SH_PREFIX valueset
#define SH_ELEMENT_TYPE ValueSlot
#define SH_KEY_TYPE ValueKey
#define SH_KEY key
#define SH_HASH_KEY(tb, k) (k).hash
#define SH_EQUAL(tb, a, b) ((a).hash == (b).hash && (a).len == (b).len && \
							memcmp((a).bytes, (b).bytes, (a).len) == 0)
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* A batch's groups, by their key (dims: 1 + index into batch.values). */
typedef TaGroupKey GroupKey;

typedef struct GroupSlot
{
	GroupKey	key;
	uint32		hash;
	char		status;			/* simplehash's */
	uint32		index;			/* into batch.groups */
} GroupSlot;

#define SH_PREFIX groupset
#define SH_ELEMENT_TYPE GroupSlot
#define SH_KEY_TYPE GroupKey
#define SH_KEY key
#define SH_HASH_KEY(tb, key) store_group_hash(&(key))
#define SH_EQUAL(tb, a, b) (memcmp(&(a), &(b), sizeof(GroupKey)) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) (a)->hash
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

static MemoryContext batch_context = NULL;	/* the value bytes: reset per batch */
static MemoryContext tables_context = NULL; /* the rest: kept */
static TaBatch batch;
static valueset_hash *values = NULL;
static groupset_hash *groups = NULL;
static int	values_cap = 0;
static int	groups_cap = 0;
static int	users_cap = 0;
static int	latencies_cap = 0;

/*
 * This process's copy of the catalog, refreshed when its version changes (it
 * changes rarely; events are many).
 */
static TaAggregate catalog_copy[TA_MAX_AGGREGATES];
static uint32 catalog_copy_version = 0;
static bool catalog_copy_valid = false;
static int	naggs_in_use = 0;	/* the aggregates in use, by index */
static int	aggs_in_use[TA_MAX_AGGREGATES];

static const TaAggregate *
catalog_snapshot(void)
{
	uint32		version = catalog_version();

	if (!catalog_copy_valid || version != catalog_copy_version)
	{
		version = catalog_read(catalog_copy);
		catalog_copy_version = version;
		catalog_copy_valid = true;
		naggs_in_use = 0;
		for (int a = 0; a < ta_max_aggregates; a++)
			if (catalog_copy[a].in_use)
				aggs_in_use[naggs_in_use++] = a;
	}
	return catalog_copy;
}

/* The arrays and hash tables of a batch, empty, at their first size. */
static void
batch_tables_init(void)
{
	values_cap = 64;
	groups_cap = TA_BATCH_MAX_GROUPS;	/* where a batch ends (batch_full) */
	users_cap = latencies_cap = 1024;
	batch.values = MemoryContextAlloc(tables_context, values_cap * sizeof(TaBatchValue));
	batch.groups = MemoryContextAlloc(tables_context, groups_cap * sizeof(TaBatchGroup));
	batch.users = MemoryContextAlloc(tables_context, users_cap * sizeof(TaBatchUser));
	batch.latencies = MemoryContextAlloc(tables_context, latencies_cap * sizeof(TaBatchLatency));
	groups = groupset_create(tables_context, groups_cap, NULL);
	values = valueset_create(tables_context, values_cap, NULL);	/* last: see batch_reset */
}

/* Start a new batch: everything of the last one is gone. */
void
batch_reset(void)
{
	if (batch_context == NULL)
	{
		batch_context = AllocSetContextCreate(TopMemoryContext, "trafficagg batch",
											  ALLOCSET_DEFAULT_SIZES);
		tables_context = AllocSetContextCreate(TopMemoryContext, "trafficagg batch tables",
											   ALLOCSET_DEFAULT_SIZES);
	}
	if (values == NULL || values->size > 4096 || groups->size > 4096 || users_cap > 65536 ||
		latencies_cap > 65536)
	{
		/*
		 * the first batch, or a big one (SQL ingest) left them big: start
		 * small again (NULL first: an out-of-memory ERROR in between leaves
		 * nothing freed behind for the next call)
		 */
		values = NULL;
		groups = NULL;
		MemoryContextReset(batch_context);
		MemoryContextReset(tables_context);
		batch_tables_init();
	}
	else
	{
		MemoryContextReset(batch_context);
		valueset_reset(values);
		groupset_reset(groups);
	}
	batch.nmessages = batch.nvalues = batch.ngroups = batch.nusers = batch.nlatencies = 0;
	batch.catalog_version = 0;
}

/* A message went into the batch (accepted, late or rejected: all count). */
void
batch_count_message(void)
{
	batch.nmessages++;
}

/* Should the batch end here (TA_BATCH_MAX_GROUPS, sketch_area.c)? */
bool
batch_full(void)
{
	return batch.ngroups >= TA_BATCH_MAX_GROUPS;
}

const TaBatch *
batch_contents(void)
{
	return &batch;
}

/* 1 + the index of a value in the batch, added (its bytes copied) if new. */
static uint32
batch_value(const char *bytes, uint32 len)
{
	ValueKey	probe = {.hash = store_value_hash(bytes, len), .len = len, .bytes = bytes};
	ValueSlot  *slot;
	bool		found;
	TaBatchValue *v;

	slot = valueset_insert(values, probe, &found);
	if (found)
		return slot->index + 1;

	if (batch.nvalues == values_cap)
	{
		values_cap *= 2;
		batch.values = repalloc(batch.values, values_cap * sizeof(TaBatchValue));
	}
	v = &batch.values[batch.nvalues];
	v->len = len;
	v->hash = probe.hash;
	v->bytes = MemoryContextAlloc(batch_context, len + 1);
	memcpy((char *) v->bytes, bytes, len);
	((char *) v->bytes)[len] = '\0';
	/* the slot's key now points at the batch's own copy */
	slot->key.bytes = v->bytes;
	slot->index = batch.nvalues;
	return ++batch.nvalues;
}

/* The batch's group for key, added (empty) if new. */
static TaBatchGroup *
batch_group(const GroupKey *key)
{
	GroupSlot  *slot;
	bool		found;
	TaBatchGroup *g;

	slot = groupset_insert(groups, *key, &found);
	if (found)
		return &batch.groups[slot->index];

	if (batch.ngroups == groups_cap)
	{
		groups_cap *= 2;
		batch.groups = repalloc(batch.groups, groups_cap * sizeof(TaBatchGroup));
	}
	slot->index = batch.ngroups;
	g = &batch.groups[batch.ngroups++];
	memset(g, 0, sizeof(TaBatchGroup));
	g->agg = key->agg;
	g->generation = key->catalog_generation;
	g->window_start = key->window_start;
	memcpy(g->dims, key->dims, sizeof(g->dims));
	g->first_user = g->last_user = g->first_latency = g->last_latency = -1;
	return g;
}

/* A user id hash at the end of the group's chain. */
static void
add_user(TaBatchGroup *g, uint64 hash)
{
	if (batch.nusers == users_cap)
	{
		users_cap *= 2;
		batch.users = repalloc_huge(batch.users, users_cap * sizeof(TaBatchUser));
	}
	batch.users[batch.nusers] = (TaBatchUser) {hash, -1};
	if (g->last_user >= 0)
		batch.users[g->last_user].next = batch.nusers;
	else
		g->first_user = batch.nusers;
	g->last_user = batch.nusers++;
}

/* A latency bucket at the end of the group's chain. */
static void
add_latency(TaBatchGroup *g, uint16 bucket)
{
	if (batch.nlatencies == latencies_cap)
	{
		latencies_cap *= 2;
		batch.latencies = repalloc_huge(batch.latencies, latencies_cap * sizeof(TaBatchLatency));
	}
	batch.latencies[batch.nlatencies] = (TaBatchLatency) {bucket, -1};
	if (g->last_latency >= 0)
		batch.latencies[g->last_latency].next = batch.nlatencies;
	else
		g->first_latency = batch.nlatencies;
	g->last_latency = batch.nlatencies++;
}

static inline void
metrics_add(TaMetrics *m, const TaEvent *ev, const TaAggregate *agg)
{
	for (int i = 0; i < agg->nmetrics; i++)
	{
		int			f = agg->metrics[i];

		if (!ev->has_num[f])
			continue;
		if (m->fm[i].count == 0 || ev->num_micro[f] < m->fm[i].min)
			m->fm[i].min = ev->num_micro[f];
		if (m->fm[i].count == 0 || ev->num_micro[f] > m->fm[i].max)
			m->fm[i].max = ev->num_micro[f];
		m->fm[i].count++;
		m->fm[i].sum += ev->num_micro[f];
	}
	m->events++;
	if (ev->has_status)
	{
		if (ev->status_code >= 500)
			m->errors++;
		else if (ev->status_code >= 400)
			m->client_errors++;
	}
	if (ev->has_latency)
	{
		if (m->latency_count == 0 || ev->latency_us < m->latency_min_us)
			m->latency_min_us = ev->latency_us;
		if (m->latency_count == 0 || ev->latency_us > m->latency_max_us)
			m->latency_max_us = ev->latency_us;
		m->latency_count++;
		m->latency_sum_us += ev->latency_us;
	}
}

/*
 * Add an accepted event to the groups of every aggregate whose filter wants
 * it, for each window start given (ingest.c chose them: open windows only).
 */
void
batch_add_event(const TaEvent *ev, const int64 *starts, int nstarts)
{
	const TaAggregate *aggs = catalog_snapshot();
	uint32		ids[TA_MAX_FIELDS];
	uint64		user_hash[TA_MAX_FIELDS];
	bool		hashed[TA_MAX_FIELDS] = {0};
	bool		interned[TA_MAX_FIELDS] = {0};
	bool		wanted[TA_MAX_AGGREGATES];
	uint16		bucket = ev->has_latency ? latency_bucket(ev->latency_us) : 0;

	if (batch.catalog_version == 0)
		batch.catalog_version = catalog_copy_version;
	for (int i = 0; i < naggs_in_use; i++)
	{
		int			a = aggs_in_use[i];
		int			f = aggs[a].users_field;

		wanted[a] = catalog_wants(&aggs[a], ev);
		if (!wanted[a])
			continue;
		/*
		 * each dimension's value once per event, only for aggregates that
		 * want it (a value no group uses would stay in the dictionary)
		 */
		for (int d = 0; d < aggs[a].ndims; d++)
		{
			int			df = aggs[a].dims[d];

			if (!interned[df])
			{
				ids[df] = ev->field[df] != NULL ? batch_value(ev->field[df], ev->field_len[df]) : 0;
				interned[df] = true;
			}
		}
		/* users: each aggregate counts its field's values, hashed once */
		if (f >= 0 && ev->field[f] != NULL && !hashed[f])
		{
			user_hash[f] = sketch_user_hash(ev->field[f], ev->field_len[f]);
			hashed[f] = true;
		}
	}

	for (int w = 0; w < nstarts; w++)
		for (int i = 0; i < naggs_in_use; i++)
		{
			int			a = aggs_in_use[i];
			GroupKey	key;
			TaBatchGroup *g;
			int			uf = aggs[a].users_field;

			if (!wanted[a])
				continue;
			memset(&key, 0, sizeof(key));
			key.agg = a;
			key.catalog_generation = aggs[a].generation;
			key.window_start = starts[w];
			for (int d = 0; d < aggs[a].ndims; d++)
				key.dims[d] = ids[aggs[a].dims[d]];
			g = batch_group(&key);
			metrics_add(&g->m, ev, &aggs[a]);
			if (uf >= 0 && hashed[uf])
				add_user(g, user_hash[uf]);
			if (ev->has_latency)
				add_latency(g, bucket);
		}
}
