/*-------------------------------------------------------------------------
 *
 * store.c
 *	  The groups of open windows and the value dictionary, in shared memory;
 *	  and the shared-memory hooks, which also set up every other module's
 *	  piece of shared memory, each private to its module: the sources
 *	  (source.c), the recovery state (recovery.c), the watermarks and event
 *	  times (window.c), the catalog (catalog.c), the dead-letter ring
 *	  (deadletter.c), the requests (request.c), the status (status.c), the
 *	  sketch area (sketch_area.c) and the value area (value_area.c).
 *
 * Everything is sized at server start from the settings and never grows.
 * The variable-size parts live in areas also sized at start: the sketches of
 * a group (unique users, latency histogram) in sketch_area.c's, the bytes of
 * dimension values in value_area.c's.
 *
 * Groups.  A group is (aggregate, window start, dimension values) ->
 * TaMetrics.  Dimension values are interned in the dictionary and a group key
 * holds their ids, so keys have a fixed size.
 *
 * The dictionary.  A value may be of any length (up to a message's).  Its
 * entry has a fixed size: the length, the hash, the id, the number of groups
 * using it, and where its bytes are in value_area.c's area, which bounds
 * their total (trafficagg.dictionary_memory).  The number of entries is
 * trafficagg.max_values: the ids index a fixed array (value_by_id), and the
 * entries are a dynahash sized at start.  An event's field is hashed once
 * (store_value_hash over its bytes); lookups compare the length, then the bytes.
 * A value is removed, and its bytes freed, with the last group using it.
 * When the dictionary is full the batch is refused whole (store_merge_batch
 * answers "full": the worker spills the oldest window and retries, with a
 * smaller batch if need be), and an empty dictionary has room for any one
 * message's values (value_area.c), so that ends.
 *
 * Groups are added to in batches (batch.c aggregates a batch's events in the
 * worker's own memory; store_merge_batch adds each of its groups here once).
 *
 * The group table is a partitioned dynahash with TA_LOCK_PARTITIONS LWLocks.
 * Every group is also on one of TA_WINDOW_LISTS lists, the one of its window
 * (window_list(): the window's number, its start over the windows' step,
 * modulo their count), so that what visits groups costs the groups there
 * are, not the table's size (trafficagg.max_groups: dynahash's sequential
 * scan visits every bucket), and a flush visits only the lists of the
 * windows it writes and those it wrote, not every open window's groups: from
 * oldest_start, a bound below every group's window start, up to the last
 * window to write (collecting) or flushed_start, a bound above every window
 * marked flushed (forgetting).  A group joins its list under its partition's
 * lock and groups_push (merges into other partitions run at the same time);
 * it leaves, and lists are walked, only under every partition lock.
 * A group whose window was written by a flush carries the flushing
 * transaction's id in flushed_by: until that transaction commits the group
 * still counts as live data; once it has committed the group is dead and
 * store_forget_flushed() removes it.  An aborted flush leaves groups that
 * simply count as unflushed again.
 *
 * Locking (always in this order; never two partition locks except when
 * taking all of them in index order):
 *	  dict_lock		 the dictionary, entries and bytes (value_area.c).  Shared
 *					 to look values up and to read a group's values; exclusive
 *					 to add or remove values.  Group
 *					 deletion holds it exclusive, so a value can't vanish under
 *					 a reader holding it shared.
 *	  partition_locks[i]  groups hashing to partition i.  Exclusive to add to
 *					 a group or mark it flushed, shared to read.
 *	  (what makes "flushed" and "late" exclusive is recovery.c's batch lock,
 *	  taken before all of these: a batch judges its messages' windows and
 *	  merges them while holding it shared, a flush collects holding it
 *	  exclusive)
 *	  (the other modules' state has their own locks, taken by their
 *	  functions and never held across a call into this file)
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "trafficagg.h"

#include "access/transam.h"
#include "access/xact.h"
#include "common/int.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "lib/ilist.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "batch.h"
#include "catalog.h"
#include "deadletter.h"
#include "event.h"
#include "hll.h"
#include "latency.h"
#include "recovery.h"
#include "request.h"
#include "sketch.h"
#include "sketch_area.h"
#include "source.h"
#include "status.h"
#include "store.h"
#include "value_area.h"
#include "window.h"



/* Extra group slots beyond max_groups: absorbs races between ingesters. */
#define TA_GROUP_SLACK 1024

/* Lists of groups by window (see above). */
#define TA_WINDOW_LISTS 256

/* Which limit the last store_merge_batch() that found no room hit. */
static const char *full_setting = "trafficagg.max_groups";

typedef TaGroupKey GroupKey;

typedef struct GroupEntry
{
	GroupKey	key;			/* must be first */
	dlist_node	node;			/* on its window's list */
	TransactionId flushed_by;
	TaMetrics	m;
	TaSketches	sk;				/* unique users, latencies (sketch.c) */
} GroupEntry;

/*
 * A value as the dictionary's dynahash compares it (value_key_match): the key
 * of a lookup points at the event's bytes (probe); a stored entry's key at
 * its copy in value_area.c's area (bytes; probe NULL).  Zero-length values
 * have no bytes.
 */
typedef struct ValueKey
{
	uint32		len;
	const char *probe;
	dsa_pointer bytes;
} ValueKey;

typedef struct ValueEntry
{
	ValueKey	key;			/* must be first */
	uint32		hash;			/* store_value_hash of the bytes */
	uint32		id;
	pg_atomic_uint32 refs;		/* groups using this value */
} ValueEntry;

/* Dictionary bookkeeping, in its own struct. */
typedef struct TaDict
{
	pg_atomic_uint32 ngroups;	/* groups reserved or present */
	uint32		nfree;			/* ids on the free stack */
	bool		orphans;		/* values may have been added for an event
								 * that then found no room (refs 0) */
	uint32		capacity;
	uint32		free_ids[FLEXIBLE_ARRAY_MEMBER];	/* then ValueEntry *by_id[] */
} TaDict;

/* The locks of the group table and the dictionary. */
typedef struct StoreShared
{
	LWLock	   *dict_lock;		/* the value dictionary */
	LWLock	   *partition_locks[TA_LOCK_PARTITIONS];	/* the group table */
	slock_t		groups_push;	/* adding to a window list, oldest_start */
	int64		oldest_start;	/* no group's window starts before it */
	int64		flushed_start;	/* no group marked flushed starts after it */
	uint32		forgot_version; /* catalog version of the last full forget */
	bool		forget_all;		/* a batch of an older version added groups */
	dlist_head	windows[TA_WINDOW_LISTS];	/* every group, by window */
} StoreShared;

static StoreShared *store_shared = NULL;
static HTAB *group_table = NULL;
static HTAB *value_table = NULL;
static TaDict *dict = NULL;
static ValueEntry **value_by_id = NULL;

/* A window's number: its start over the windows' step, floored. */
static inline int64
window_number(int64 start)
{
	int64		step = ta_slide_ms > 0 ? ta_slide_ms : ta_window_ms;

	return start >= 0 ? start / step : -((-(start + 1)) / step) - 1;
}

/* A window's list of groups. */
static inline dlist_head *
window_list(int64 start)
{
	return &store_shared->windows[(uint64) window_number(start) % TA_WINDOW_LISTS];
}

/*
 * The lists that hold every group whose window starts in [lo, hi]: how many,
 * from *first on (modulo TA_WINDOW_LISTS); all of them when the range spans
 * as many windows.
 */
static int
window_lists(int64 lo, int64 hi, int *first)
{
	uint64		span;

	*first = 0;
	if (lo > hi)
		return 0;
	*first = (int) (window_list(lo) - store_shared->windows);
	span = (uint64) window_number(hi) - (uint64) window_number(lo);
	return span >= TA_WINDOW_LISTS - 1 ? TA_WINDOW_LISTS : (int) span + 1;
}

/* The group table's hash function (keys compare as bytes: dynahash's memcmp). */
static uint32
group_key_hash(const void *key, Size keysize)
{
	Assert(keysize == sizeof(GroupKey));
	return store_group_hash((const GroupKey *) key);
}

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* The bytes of a value's key; caller holds dict_lock. */
static inline const char *
value_key_bytes(const ValueKey *k)
{
	if (k->probe != NULL)
		return k->probe;
	return k->len > 0 ? value_area_bytes(k->bytes) : "";
}

/*
 * The dictionary's hash and match functions (dynahash calls them in every
 * process, through its own HTAB).  Lookups pass the hash computed once per
 * field (hash_search_with_hash_value), and dynahash compares hashes before
 * it calls the match function, so the bytes are compared only for a value
 * that is almost surely there.
 */
static uint32
value_key_hash(const void *key, Size keysize)
{
	const ValueKey *k = key;

	return store_value_hash(value_key_bytes(k), k->len);
}

static int
value_key_match(const void *key1, const void *key2, Size keysize)
{
	const ValueKey *a = key1;
	const ValueKey *b = key2;

	if (a->len != b->len)
		return 1;
	return memcmp(value_key_bytes(a), value_key_bytes(b), a->len);
}

static Size
shared_struct_size(void)
{
	return sizeof(StoreShared);
}

static uint32
dict_capacity(void)
{
	return (uint32) ta_max_values;	/* added under dict_lock: no slack */
}

static Size
dict_struct_size(void)
{
	Size		sz = offsetof(TaDict, free_ids);

	sz = add_size(sz, mul_size(dict_capacity() + 1, sizeof(uint32)));
	sz = MAXALIGN(sz);
	return add_size(sz, mul_size(dict_capacity() + 1, sizeof(ValueEntry *)));
}


/* Bytes of shared memory for the current settings. */
Size
store_shmem_size(void)
{
	Size		sz = MAXALIGN(shared_struct_size());

	sz = add_size(sz, MAXALIGN(dict_struct_size()));
	sz = add_size(sz, deadletter_shmem_size());
	sz = add_size(sz, source_shmem_size());
	sz = add_size(sz, recovery_shmem_size());
	sz = add_size(sz, catalog_shmem_size());
	sz = add_size(sz, hash_estimate_size(ta_max_groups + TA_GROUP_SLACK,
										 sizeof(GroupEntry)));
	sz = add_size(sz, hash_estimate_size(dict_capacity(), sizeof(ValueEntry)));
	sz = add_size(sz, sketch_shmem_size());
	sz = add_size(sz, value_area_shmem_size());
	sz = add_size(sz, request_shmem_size());
	sz = add_size(sz, watermark_shmem_size());
	sz = add_size(sz, status_shmem_size());
	return sz;
}

static void
store_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(store_shmem_size());
	/* dict_lock, partitions */
	RequestNamedLWLockTranche("trafficagg", 1 + TA_LOCK_PARTITIONS);
	deadletter_shmem_request();
	source_shmem_request();
	recovery_shmem_request();
	watermark_shmem_request();
	catalog_shmem_request();
}

static void
store_shmem_startup(void)
{
	bool		found;
	HASHCTL		info;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);

	store_shared = ShmemInitStruct("trafficagg state", shared_struct_size(), &found);
	dict = ShmemInitStruct("trafficagg dictionary", dict_struct_size(), &found);
	value_by_id = (ValueEntry **) ((char *) dict +
								   MAXALIGN(offsetof(TaDict, free_ids) +
											(dict_capacity() + 1) * sizeof(uint32)));
	deadletter_shmem_init();
	source_shmem_init();
	recovery_shmem_init();
	catalog_shmem_init();
	{
		bool		sketches_found;
		void	   *place = ShmemInitStruct("trafficagg sketches", sketch_shmem_size(),
											&sketches_found);

		sketch_shmem_init(place, sketches_found);
	}
	{
		bool		values_found;
		void	   *place = ShmemInitStruct("trafficagg values", value_area_shmem_size(),
											&values_found);

		value_area_shmem_init(place, values_found);
	}
	request_shmem_init();
	watermark_shmem_init();
	status_shmem_init();
	if (!found)
	{
		LWLockPadded *locks = GetNamedLWLockTranche("trafficagg");

		memset(store_shared, 0, shared_struct_size());
		store_shared->dict_lock = &locks[0].lock;
		for (int i = 0; i < TA_LOCK_PARTITIONS; i++)
			store_shared->partition_locks[i] = &locks[1 + i].lock;
		SpinLockInit(&store_shared->groups_push);
		store_shared->oldest_start = PG_INT64_MAX;
		store_shared->flushed_start = PG_INT64_MIN;
		for (int i = 0; i < TA_WINDOW_LISTS; i++)
			dlist_init(&store_shared->windows[i]);

		pg_atomic_init_u32(&dict->ngroups, 0);
		dict->capacity = dict_capacity();
		dict->orphans = false;
		/* ids 1..capacity, handed out smallest first */
		dict->nfree = dict->capacity;
		for (uint32 i = 0; i < dict->capacity; i++)
			dict->free_ids[i] = dict->capacity - i;
		memset(value_by_id, 0, (dict_capacity() + 1) * sizeof(ValueEntry *));
	}

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(GroupKey);
	info.entrysize = sizeof(GroupEntry);
	info.num_partitions = TA_LOCK_PARTITIONS;
	info.hash = group_key_hash;
	group_table = ShmemInitHash("trafficagg groups",
								ta_max_groups + TA_GROUP_SLACK,
								ta_max_groups + TA_GROUP_SLACK,
								&info, HASH_ELEM | HASH_FUNCTION | HASH_PARTITION);

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(ValueKey);
	info.entrysize = sizeof(ValueEntry);
	info.hash = value_key_hash;
	info.match = value_key_match;
	value_table = ShmemInitHash("trafficagg value dictionary",
								dict_capacity(), dict_capacity(),
								&info, HASH_ELEM | HASH_FUNCTION | HASH_COMPARE);

	LWLockRelease(AddinShmemInitLock);
}

void
store_request_shmem(void)
{
	sketch_configure();
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = store_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = store_shmem_startup;
}

/* Error out in backends of a server that did not preload the library. */
void
store_check_attached(void)
{
	if (store_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("trafficagg must be loaded via shared_preload_libraries"),
				 errhint("Add trafficagg to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/* The partition of a group's hash, and its lock. */
static inline int
partition_of(uint32 hash)
{
	return hash % TA_LOCK_PARTITIONS;
}

static inline LWLock *
partition_lock(uint32 hash)
{
	return store_shared->partition_locks[partition_of(hash)];
}

/* The dictionary id of a value, or 0.  Caller holds dict_lock. */
static inline uint32
value_find(const ValueKey *key, uint32 hash)
{
	ValueEntry *v = hash_search_with_hash_value(value_table, key, hash, HASH_FIND, NULL);

	return v != NULL ? v->id : 0;
}

/*
 * The dictionary id of a value, added (its bytes copied into the value area)
 * if new.  *added: the bytes the current event has added so far (see
 * value_area_store), increased here.  Returns 0 when there is no room, with
 * *limit naming the setting reached: max_values (no id left) or
 * dictionary_memory (no room for the bytes).  Caller holds dict_lock
 * exclusive.
 */
static uint32
value_add(const ValueKey *key, uint32 hash, Size *added, const char **limit)
{
	ValueEntry *v;
	dsa_pointer bytes = InvalidDsaPointer;
	bool		found;
	uint32		id = value_find(key, hash);

	if (id != 0)
		return id;
	if (dict->nfree == 0)
	{
		*limit = "trafficagg.max_values";
		return 0;
	}
	if (key->len > 0 &&
		!DsaPointerIsValid(bytes = value_area_store(key->probe, key->len, *added)))
	{
		*limit = "trafficagg.dictionary_memory";
		return 0;
	}
	v = hash_search_with_hash_value(value_table, key, hash, HASH_ENTER_NULL, &found);
	if (v == NULL)
	{
		/* every entry is preallocated for max_values ids: not reached */
		if (key->len > 0)
			value_area_free(bytes, key->len);
		*limit = "trafficagg.max_values";
		return 0;
	}
	Assert(!found);
	v->key.probe = NULL;		/* the entry's bytes are its own copy */
	v->key.bytes = bytes;
	*added += key->len;
	v->hash = hash;
	v->id = dict->free_ids[--dict->nfree];
	pg_atomic_init_u32(&v->refs, 0);
	value_by_id[v->id] = v;
	return v->id;
}

/* Remove a value from the dictionary and free its bytes.  dict_lock exclusive. */
static void
value_drop(ValueEntry *v)
{
	ValueKey	key = v->key;

	value_by_id[v->id] = NULL;
	dict->free_ids[dict->nfree++] = v->id;
	/* (the match reads the bytes: free them after) */
	hash_search_with_hash_value(value_table, &key, v->hash, HASH_REMOVE, NULL);
	if (key.len > 0)
		value_area_free(key.bytes, key.len);
}

/* A palloc'd, NUL-terminated copy of the value with this id.  dict_lock held. */
static char *
value_copy(uint32 id)
{
	ValueEntry *v = value_by_id[id];
	char	   *s = palloc(v->key.len + 1);

	memcpy(s, value_key_bytes(&v->key), v->key.len);
	s[v->key.len] = '\0';
	return s;
}

/* Add a batch group's exact metrics into a shared group's. */
static inline void
metrics_merge(TaMetrics *m, const TaMetrics *add)
{
	for (int i = 0; i < TA_MAX_METRICS; i++)
	{
		if (add->fm[i].count == 0)
			continue;
		if (m->fm[i].count == 0 || add->fm[i].min < m->fm[i].min)
			m->fm[i].min = add->fm[i].min;
		if (m->fm[i].count == 0 || add->fm[i].max > m->fm[i].max)
			m->fm[i].max = add->fm[i].max;
		m->fm[i].count += add->fm[i].count;
		m->fm[i].sum += add->fm[i].sum;
	}
	m->events += add->events;
	m->errors += add->errors;
	m->client_errors += add->client_errors;
	if (add->latency_count > 0)
	{
		if (m->latency_count == 0 || add->latency_min_us < m->latency_min_us)
			m->latency_min_us = add->latency_min_us;
		if (m->latency_count == 0 || add->latency_max_us > m->latency_max_us)
			m->latency_max_us = add->latency_max_us;
		m->latency_count += add->latency_count;
		m->latency_sum_us += add->latency_sum_us;
	}
}

/* Is the group's flush committed (dead) / in flight / neither? */
typedef enum
{
	GROUP_LIVE,
	GROUP_FLUSHING,
	GROUP_FLUSHED
} GroupFlushState;

static GroupFlushState
group_flush_state(GroupEntry *g)
{
	TransactionId xid = g->flushed_by;

	if (!TransactionIdIsValid(xid))
		return GROUP_LIVE;
	if (TransactionIdIsCurrentTransactionId(xid) || TransactionIdIsInProgress(xid))
		return GROUP_FLUSHING;
	if (TransactionIdDidCommit(xid))
		return GROUP_FLUSHED;
	/* aborted or crashed: the group is live again */
	g->flushed_by = InvalidTransactionId;
	return GROUP_LIVE;
}

/*
 * The group slots the merge under way in this process has reserved and not
 * handed out yet.  Given back at its end, or, if it ended in an ERROR, by the
 * next merge or when the process exits.
 */
static uint32 my_group_slots = 0;
static bool exit_callback_registered = false;

static void
release_reservations(void)
{
	if (my_group_slots > 0)
		pg_atomic_fetch_sub_u32(&dict->ngroups, my_group_slots);
	my_group_slots = 0;
}

static void
release_reservations_at_exit(int code, Datum arg)
{
	release_reservations();
}

/*
 * The dictionary ids of the batch's values, added if new.  Returns false
 * when the dictionary is full, with full_setting naming the setting reached.
 * On return dict_lock is held (mode in *mode).
 */
static bool
resolve_values(const TaBatch *b, uint32 *ids, LWLockMode *mode)
{
	bool		missing = false;
	Size		added = 0;

	*mode = LW_SHARED;
	LWLockAcquire(store_shared->dict_lock, LW_SHARED);
	for (int i = 0; i < b->nvalues; i++)
	{
		ValueKey	key = {.len = b->values[i].len, .probe = b->values[i].bytes,
		.bytes = InvalidDsaPointer};

		if ((ids[i] = value_find(&key, b->values[i].hash)) == 0)
			missing = true;
	}
	if (!missing)
		return true;

	LWLockRelease(store_shared->dict_lock);
	*mode = LW_EXCLUSIVE;
	LWLockAcquire(store_shared->dict_lock, LW_EXCLUSIVE);
	for (int i = 0; i < b->nvalues; i++)
	{
		ValueKey	key = {.len = b->values[i].len, .probe = b->values[i].bytes,
		.bytes = InvalidDsaPointer};
		/* one message may exceed the budget in an empty dictionary; a batch not */
		Size		own = b->nmessages <= 1 ? added : 0;

		if ((ids[i] = value_add(&key, b->values[i].hash, &own, &full_setting)) == 0)
			return false;
		if (b->nmessages <= 1)
			added = own;
	}
	return true;
}

/*
 * Merge a batch (batch.c) into the groups: each batch group into its shared
 * group, created if new, under that group's partition lock; the sketches get
 * the batch's user hashes and latency buckets in event order.  All or
 * nothing: returns false, having changed no group, when there is no room for
 * the batch's new groups, values or sketches (full_setting names the limit):
 * the caller makes room (a spill) and tries again, with fewer messages if
 * need be.  A batch of one message always fits once memory is empty.
 *
 * Windows are not checked here: the caller judged them open under the batch
 * lock (recovery.c, "The cut"), and no flush collects while it is held.
 */
bool
store_merge_batch(const TaBatch *b)
{
	uint32	   *ids;
	GroupKey   *keys;
	uint32	   *hashes;
	int		   *order;
	int			start[TA_LOCK_PARTITIONS + 1] = {0};
	LWLock	   *held = NULL;
	LWLockMode	dict_mode;

	if (b->ngroups == 0)
		return true;
	if (!exit_callback_registered)
	{
		on_shmem_exit(release_reservations_at_exit, (Datum) 0);
		exit_callback_registered = true;
	}
	release_reservations();		/* a merge that ended in an ERROR */

	/*
	 * Room for the sketches to grow, checked before anything changes (they
	 * are the only allocation below): no room counts as full.
	 */
	if (!sketch_has_room())
	{
		full_setting = "trafficagg.sketch_memory";
		return false;
	}

	ids = palloc((b->nvalues + 1) * sizeof(uint32));
	keys = palloc(b->ngroups * sizeof(GroupKey));
	hashes = palloc(b->ngroups * sizeof(uint32));
	order = palloc(b->ngroups * sizeof(int));

	if (!resolve_values(b, ids, &dict_mode))
	{
		dict->orphans = true;
		LWLockRelease(store_shared->dict_lock);
		release_reservations();
		return false;
	}

	for (int i = 0; i < b->ngroups; i++)
	{
		const TaBatchGroup *bg = &b->groups[i];
		GroupKey   *k = &keys[i];

		memset(k, 0, sizeof(GroupKey));
		k->agg = bg->agg;
		k->catalog_generation = bg->generation;
		k->window_start = bg->window_start;
		for (int d = 0; d < TA_MAX_DIMENSIONS; d++)
			k->dims[d] = bg->dims[d] ? ids[bg->dims[d] - 1] : 0;
		hashes[i] = get_hash_value(group_table, k);
		start[partition_of(hashes[i]) + 1]++;
	}

	/*
	 * The batch groups in the order of their partitions (a counting sort), so
	 * that the merge below takes each partition's lock once, not once per
	 * group.  A group's own users and latencies keep their order; the order
	 * of groups does not matter.
	 */
	for (int p = 0; p < TA_LOCK_PARTITIONS; p++)
		start[p + 1] += start[p];
	for (int i = 0; i < b->ngroups; i++)
		order[start[partition_of(hashes[i])]++] = i;

	/*
	 * Reserve a group slot for each batch group, as if all were new; what is
	 * left is given back at the end.  Near the limit, count the new ones.
	 */
	my_group_slots = b->ngroups;
	if (pg_atomic_fetch_add_u32(&dict->ngroups, my_group_slots) + my_group_slots > (uint32) ta_max_groups)
	{
		uint32		nnew = 0;

		pg_atomic_fetch_sub_u32(&dict->ngroups, my_group_slots);
		my_group_slots = 0;
		for (int i = 0; i < b->ngroups; i++)
		{
			LWLock	   *lock = partition_lock(hashes[i]);

			LWLockAcquire(lock, LW_SHARED);
			if (hash_search_with_hash_value(group_table, &keys[i], hashes[i],
											HASH_FIND, NULL) == NULL)
				nnew++;
			LWLockRelease(lock);
		}
		if (pg_atomic_fetch_add_u32(&dict->ngroups, nnew) + nnew > (uint32) ta_max_groups)
		{
			pg_atomic_fetch_sub_u32(&dict->ngroups, nnew);
			release_reservations();
			dict->orphans |= dict_mode == LW_EXCLUSIVE;
			LWLockRelease(store_shared->dict_lock);
			full_setting = "trafficagg.max_groups";
			return false;
		}
		my_group_slots = nnew;
	}

	for (int j = 0; j < b->ngroups; j++)
	{
		int			i = order[j];
		const TaBatchGroup *bg = &b->groups[i];
		LWLock	   *lock = partition_lock(hashes[i]);
		GroupEntry *g;
		bool		found;

		/* one partition lock at a time, held across its groups */
		if (lock != held)
		{
			if (held != NULL)
				LWLockRelease(held);
			LWLockAcquire(lock, LW_EXCLUSIVE);
			held = lock;
		}
		g = hash_search_with_hash_value(group_table, &keys[i], hashes[i],
										HASH_ENTER_NULL, &found);
		if (g == NULL)
			elog(ERROR, "trafficagg group table out of slack space");
		if (!found)
		{
			SpinLockAcquire(&store_shared->groups_push);
			dlist_push_tail(window_list(keys[i].window_start), &g->node);
			if (keys[i].window_start < store_shared->oldest_start)
				store_shared->oldest_start = keys[i].window_start;
			/* (groups of an aggregate the catalog may have lost since) */
			if (b->catalog_version != store_shared->forgot_version)
				store_shared->forget_all = true;
			SpinLockRelease(&store_shared->groups_push);
			memset(&g->m, 0, sizeof(TaMetrics));
			g->flushed_by = InvalidTransactionId;
			sketch_init(&g->sk);
			for (int d = 0; d < TA_MAX_DIMENSIONS; d++)
				if (keys[i].dims[d] != 0)
					pg_atomic_fetch_add_u32(&value_by_id[keys[i].dims[d]]->refs, 1);
			if (my_group_slots > 0)
				my_group_slots--;
			else
				pg_atomic_fetch_add_u32(&dict->ngroups, 1);
		}
		else
		{
			GroupFlushState st = group_flush_state(g);

			if (st == GROUP_FLUSHED)
			{
				/*
				 * An open window flushed early (a spill) whose rows are
				 * committed: start a new partial group in its place; the next
				 * flush merges it into the row.
				 */
				memset(&g->m, 0, sizeof(TaMetrics));
				sketch_free(&g->sk);
				g->flushed_by = InvalidTransactionId;
			}
			else if (st == GROUP_FLUSHING)
			{
				/* a spill by another process is being written: wait for it */
				LWLockRelease(lock);
				held = NULL;
				pg_usleep(1000L);
				CHECK_FOR_INTERRUPTS();
				j--;
				continue;
			}
		}
		metrics_merge(&g->m, &bg->m);
		for (int32 u = bg->first_user; u >= 0; u = b->users[u].next)
			users_add(&g->sk, b->users[u].hash);
		for (int32 l = bg->first_latency; l >= 0; l = b->latencies[l].next)
			latency_add_bucket(&g->sk, b->latencies[l].bucket);
	}
	if (held != NULL)
		LWLockRelease(held);
	release_reservations();
	LWLockRelease(store_shared->dict_lock);
	pfree(ids);
	pfree(keys);
	pfree(hashes);
	pfree(order);
	return true;
}

/* The setting whose limit the last "full" answer of this process hit. */
const char *
store_full_setting(void)
{
	return full_setting;
}

/* Distinct dimension values in the dictionary. */
long
store_value_count(void)
{
	return (long) (dict->capacity - dict->nfree);
}

/* Bytes the values in the dictionary take (within trafficagg.dictionary_memory). */
uint64
store_value_bytes(void)
{
	return value_area_bytes_used();
}

long
store_group_count(void)
{
	return (long) pg_atomic_read_u32(&dict->ngroups);
}

/* Number of distinct windows with live groups. */
int
store_window_count(void)
{
	dlist_iter	it;
	int64	   *starts = NULL;
	int			n = 0,
				cap = 0;

	for (int p = 0; p < TA_LOCK_PARTITIONS; p++)
		LWLockAcquire(store_shared->partition_locks[p], LW_SHARED);
	for (int l = 0; l < TA_WINDOW_LISTS; l++)
	{
		dlist_foreach(it, &store_shared->windows[l])
		{
			GroupEntry *g = dlist_container(GroupEntry, node, it.cur);
			int			i;

			if (TransactionIdIsValid(g->flushed_by))
				continue;
			for (i = 0; i < n; i++)
				if (starts[i] == g->key.window_start)
					break;
			if (i < n)
				continue;
			if (n == cap)
			{
				cap = cap ? cap * 2 : 16;
				starts = starts ? repalloc(starts, cap * sizeof(int64)) : palloc(cap * sizeof(int64));
			}
			starts[n++] = g->key.window_start;
		}
	}
	for (int p = TA_LOCK_PARTITIONS - 1; p >= 0; p--)
		LWLockRelease(store_shared->partition_locks[p]);
	return n;
}

static void
lock_all_partitions(LWLockMode mode)
{
	for (int i = 0; i < TA_LOCK_PARTITIONS; i++)
		LWLockAcquire(store_shared->partition_locks[i], mode);
}

static void
unlock_all_partitions(void)
{
	for (int i = TA_LOCK_PARTITIONS - 1; i >= 0; i--)
		LWLockRelease(store_shared->partition_locks[i]);
}

/* Does the group belong to an aggregate still in the catalog, unchanged? */
static inline bool
group_in_catalog(GroupEntry *g, const TaAggregate *aggs)
{
	return aggs[g->key.agg].in_use &&
		aggs[g->key.agg].generation == g->key.catalog_generation;
}

/* Should a reader see this group as live data (not yet visible in a table)? */
static bool
group_visible_live(GroupEntry *g)
{
	TransactionId xid = g->flushed_by;

	if (!TransactionIdIsValid(xid))
		return true;
	if (TransactionIdIsCurrentTransactionId(xid))
		return false;
	if (TransactionIdIsInProgress(xid) || !TransactionIdDidCommit(xid))
		return true;
	/* committed: its rows are in the table if our snapshot sees them */
	return XidInMVCCSnapshot(xid, GetActiveSnapshot());
}

/* Are the group's dimensions key's (ids: of its values; NULL: any value)? */
static inline bool
key_matches(const GroupEntry *g, const char *const *key, const uint32 *ids, int ndims)
{
	for (int d = 0; d < ndims; d++)
		if (key[d] != NULL && g->key.dims[d] != ids[d])
			return false;
	return true;
}

/* What collect_groups() takes. */
typedef enum CollectMode
{
	COLLECT_CLOSED,				/* flush: windows ending at or before cutoff */
	COLLECT_OLDEST_WINDOW,		/* spill: the oldest window in memory */
	COLLECT_LIVE				/* read: what a reader sees as live, of one
								 * aggregate */
} CollectMode;

/*
 * Copy groups out of shared memory into palloc'd TaGroupCopy, with their
 * dimension values as strings.  The flush modes take live groups only and
 * mark them flushed by the current transaction.
 */
static int
collect_groups(CollectMode mode, int64 cutoff, int agg_filter, const char *agg_name,
			   const char *const *key, int nkey, TaGroupCopy **out)
{
	bool		for_flush = mode != COLLECT_LIVE;
	bool		oldest_window_only = mode == COLLECT_OLDEST_WINDOW;
	dlist_iter	it;
	int			n = 0,
				cap = 64;
	TaGroupCopy *res = palloc(cap * sizeof(TaGroupCopy));
	TransactionId xid = for_flush ? GetCurrentTransactionId() : InvalidTransactionId;
	int64		oldest = PG_INT64_MAX;
	TaAggregate aggs[TA_MAX_AGGREGATES];
	uint32		key_ids[TA_MAX_DIMENSIONS];
	int			first = 0,
				nlists;

	(void) catalog_read(aggs);

	LWLockAcquire(store_shared->dict_lock, LW_SHARED);

	/*
	 * a key (COLLECT_LIVE): its values' ids; one not in the dictionary
	 * matches nothing.  The key was checked against the backend's catalog:
	 * if a reload changed the aggregate since (another one in its slot, other
	 * dimensions), nothing matches.
	 */
	if (key != NULL &&
		(!aggs[agg_filter].in_use || aggs[agg_filter].ndims != nkey ||
		 strcmp(aggs[agg_filter].name, agg_name) != 0))
	{
		LWLockRelease(store_shared->dict_lock);
		*out = res;
		return 0;
	}
	if (key != NULL)
	{
		for (int d = 0; d < aggs[agg_filter].ndims; d++)
		{
			ValueKey	vk = {.probe = key[d], .bytes = InvalidDsaPointer};

			if (key[d] == NULL)
			{
				key_ids[d] = 0;
				continue;
			}
			vk.len = strlen(key[d]);
			if ((key_ids[d] = value_find(&vk, store_value_hash(key[d], vk.len))) == 0)
			{
				LWLockRelease(store_shared->dict_lock);
				*out = res;
				return 0;
			}
		}
	}
	lock_all_partitions(for_flush ? LW_EXCLUSIVE : LW_SHARED);

	/* the lists to visit: a flush's windows', or every list */
	if (for_flush && oldest_window_only)
	{
		for (int l = 0; l < TA_WINDOW_LISTS; l++)
		{
			dlist_foreach(it, &store_shared->windows[l])
			{
				GroupEntry *g = dlist_container(GroupEntry, node, it.cur);

				if (g->key.window_start < oldest && group_in_catalog(g, aggs) &&
					group_flush_state(g) == GROUP_LIVE)
					oldest = g->key.window_start;
			}
		}
		nlists = window_lists(oldest, oldest, &first);
	}
	else if (for_flush)
	{
		int64		last_start;

		/* windows ending at or before cutoff start at or before last_start */
		if (pg_sub_s64_overflow(cutoff, ta_window_ms, &last_start))
			last_start = PG_INT64_MIN;
		nlists = window_lists(store_shared->oldest_start, last_start, &first);
	}
	else
		nlists = TA_WINDOW_LISTS;

	for (int l = 0; l < nlists; l++)
	{
		dlist_foreach(it, &store_shared->windows[(first + l) % TA_WINDOW_LISTS])
		{
			GroupEntry *g = dlist_container(GroupEntry, node, it.cur);
			TaGroupCopy *c;
			TaAggregate *agg;

			if (!group_in_catalog(g, aggs))
				continue;
			if (for_flush)
			{
				if (oldest_window_only ? g->key.window_start != oldest
					: window_end(g->key.window_start) > cutoff)
					continue;
				if (group_flush_state(g) != GROUP_LIVE)
					continue;
				g->flushed_by = xid;
				if (g->key.window_start > store_shared->flushed_start)
					store_shared->flushed_start = g->key.window_start;
			}
			else
			{
				if (agg_filter >= 0 && g->key.agg != agg_filter)
					continue;
				if (key != NULL && !key_matches(g, key, key_ids, aggs[agg_filter].ndims))
					continue;
				if (!group_visible_live(g))
					continue;
			}

			if (n == cap)
			{
				cap *= 2;
				res = repalloc_huge(res, cap * sizeof(TaGroupCopy));
			}
			c = &res[n++];
			c->agg = g->key.agg;
			c->window_start = g->key.window_start;
			c->m = g->m;
			sketch_copy(&g->sk, &c->sk);
			agg = &aggs[g->key.agg];
			for (int d = 0; d < TA_MAX_DIMENSIONS; d++)
				c->dims[d] = (d < agg->ndims && g->key.dims[d] != 0)
					? value_copy(g->key.dims[d]) : NULL;
		}
	}

	unlock_all_partitions();
	LWLockRelease(store_shared->dict_lock);

	/* the conversions need no lock */
	for (int i = 0; i < n; i++)
	{
		res[i].users = users_serialize(&res[i].sk);
		res[i].latency = latency_copy(&res[i].sk);
		if (res[i].sk.users)
			pfree(res[i].sk.users);
		if (res[i].sk.latency)
			pfree(res[i].sk.latency);
	}
	*out = res;
	return n;
}

/* For a flush: the live groups of windows ending at or before cutoff. */
int
store_collect_closed(int64 cutoff, TaGroupCopy **out)
{
	return collect_groups(COLLECT_CLOSED, cutoff, -1, NULL, NULL, 0, out);
}

/* For a spill: the live groups of the oldest window in memory. */
int
store_collect_oldest_window(TaGroupCopy **out)
{
	return collect_groups(COLLECT_OLDEST_WINDOW, 0, -1, NULL, NULL, 0, out);
}

/*
 * For a reader: the groups of aggregate agg (called name) not yet visible in
 * its table; key (NULL: every group): only those whose nkey dimension values
 * equal its strings (NULL: any value).
 */
int
store_collect_live(int agg, const char *name, const char *const *key, int nkey,
				   TaGroupCopy **out)
{
	return collect_groups(COLLECT_LIVE, 0, agg, name, key, nkey, out);
}

static void
group_remove(GroupEntry *g)
{
	for (int d = 0; d < TA_MAX_DIMENSIONS; d++)
	{
		uint32		id = g->key.dims[d];

		if (id != 0 && pg_atomic_sub_fetch_u32(&value_by_id[id]->refs, 1) == 0)
			value_drop(value_by_id[id]);
	}
	sketch_free(&g->sk);
	dlist_delete(&g->node);
	hash_search(group_table, &g->key, HASH_REMOVE, NULL);
	pg_atomic_fetch_sub_u32(&dict->ngroups, 1);
}

/*
 * Remove groups whose flush has committed, and groups of aggregates no longer
 * in the catalog.  Called by flushers after commit and before collecting.
 */
void
store_forget_flushed(void)
{
	HASH_SEQ_STATUS hs;
	dlist_mutable_iter it;
	TaAggregate aggs[TA_MAX_AGGREGATES];
	uint32		version = catalog_read(aggs);
	int			first,
				nlists;
	int64		oldest = PG_INT64_MAX,
				flushed = PG_INT64_MIN;

	LWLockAcquire(store_shared->dict_lock, LW_EXCLUSIVE);
	lock_all_partitions(LW_EXCLUSIVE);

	/*
	 * The lists of the windows marked flushed; every list once the catalog
	 * changed (groups of an aggregate gone or changed, in any window), and
	 * again when a batch that began before the last full walk added groups
	 * after it.  Then the bounds again: the groups left in the lists
	 * visited, and past flushed_start the windows not visited.
	 */
	if (version != store_shared->forgot_version || store_shared->forget_all)
	{
		first = 0;
		nlists = TA_WINDOW_LISTS;
	}
	else
		nlists = window_lists(store_shared->oldest_start, store_shared->flushed_start, &first);
	if (nlists < TA_WINDOW_LISTS && store_shared->flushed_start < PG_INT64_MAX)
		oldest = Max(store_shared->oldest_start, store_shared->flushed_start + 1);
	for (int l = 0; l < nlists; l++)
	{
		dlist_foreach_modify(it, &store_shared->windows[(first + l) % TA_WINDOW_LISTS])
		{
			GroupEntry *g = dlist_container(GroupEntry, node, it.cur);

			if (!group_in_catalog(g, aggs) || group_flush_state(g) == GROUP_FLUSHED)
			{
				group_remove(g);
				continue;
			}
			oldest = Min(oldest, g->key.window_start);
			if (TransactionIdIsValid(g->flushed_by))
				flushed = Max(flushed, g->key.window_start);
		}
	}
	SpinLockAcquire(&store_shared->groups_push);
	store_shared->oldest_start = oldest;
	SpinLockRelease(&store_shared->groups_push);
	store_shared->flushed_start = flushed;
	if (nlists == TA_WINDOW_LISTS)
	{
		store_shared->forgot_version = version;
		store_shared->forget_all = false;
	}

	/* values an event added but never used (it found no room): drop them */
	if (dict->orphans)
	{
		ValueEntry *v;

		hash_seq_init(&hs, value_table);
		while ((v = hash_seq_search(&hs)) != NULL)
			if (pg_atomic_read_u32(&v->refs) == 0)
				value_drop(v);
		dict->orphans = false;
	}
	unlock_all_partitions();
	LWLockRelease(store_shared->dict_lock);
}



