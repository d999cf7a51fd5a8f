/*-------------------------------------------------------------------------
 *
 * source.c
 *	  The source table: one slot per source of events, slot 0 the SQL ingest
 *	  path (trafficagg.ingest()), then one per Kafka partition the worker has
 *	  met.  A slot is never reused while the server runs, so its number
 *	  identifies the partition for the other modules, which keep their own
 *	  per-source state in arrays indexed by it: recovery.c the positions and
 *	  the windows still open, window.c the event times.
 *
 * What it owns, per slot:
 *	  - identity: topic and partition, set once when the slot is taken
 *		(source_lookup) and never changed, so read without a lock;
 *	  - assignment: whether the worker's consumer holds the partition, and
 *		whether the partition has unread data ("active": window.c lets only
 *		active sources hold the watermark back);
 *	  - the brokers' end offset as last seen (status.lag);
 *	  - message counters per outcome, atomic, so counting takes no lock (a
 *		source's consumed count is their sum).
 *
 * Private to this file, in its own piece of shared memory under an LWLock
 * (held for a scan of the slots at most).  Only the worker writes a Kafka
 * slot's flags and end offset; backends count messages of the SQL slot.
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "trafficagg.h"

#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "event.h"
#include "source.h"


typedef struct SourceSlot
{
	bool		in_use;
	bool		assigned;		/* held by the worker's consumer */
	bool		active;			/* has unread data */
	int32		partition;
	char		topic[NAMEDATALEN];
	int64		end_offset;		/* brokers' end offset, last seen */
	pg_atomic_uint64 outcomes[TA_NUM_OUTCOMES];
} SourceSlot;

typedef struct SourceTable
{
	LWLock	   *lock;
	int			nslots;
	SourceSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} SourceTable;

static SourceTable *table = NULL;

/* max_partitions Kafka partitions and the SQL path */
int
source_slots(void)
{
	return ta_max_partitions + 1;
}

Size
source_shmem_size(void)
{
	return MAXALIGN(add_size(offsetof(SourceTable, slots),
							 mul_size(source_slots(), sizeof(SourceSlot))));
}

/* From the shmem_request hook. */
void
source_shmem_request(void)
{
	RequestNamedLWLockTranche("trafficagg sources", 1);
}

static void
slot_init(SourceSlot *s)
{
	memset(s, 0, offsetof(SourceSlot, outcomes));
	s->end_offset = TA_NO_OFFSET;
	for (int o = 0; o < TA_NUM_OUTCOMES; o++)
		pg_atomic_init_u64(&s->outcomes[o], 0);
}

/* From the shmem_startup hook, under AddinShmemInitLock. */
void
source_shmem_init(void)
{
	bool		found;

	table = ShmemInitStruct("trafficagg sources", source_shmem_size(), &found);
	if (!found)
	{
		table->lock = &GetNamedLWLockTranche("trafficagg sources")[0].lock;
		table->nslots = source_slots();
		for (int i = 0; i < table->nslots; i++)
			slot_init(&table->slots[i]);
		table->slots[TA_SQL_SOURCE].in_use = true;
		table->slots[TA_SQL_SOURCE].partition = -1;
	}
}

/*
 * The slot of a Kafka partition; with create, a free slot is taken for it if
 * it has none.  Returns -1 if it has none (create: no slot is free).
 */
int
source_lookup(const char *topic, int32 partition, bool create)
{
	int			found = -1;
	int			free_slot = -1;

	LWLockAcquire(table->lock, create ? LW_EXCLUSIVE : LW_SHARED);
	for (int i = 1; i < table->nslots && found < 0; i++)
	{
		SourceSlot *s = &table->slots[i];

		if (!s->in_use)
		{
			if (free_slot < 0)
				free_slot = i;
		}
		else if (s->partition == partition && strcmp(s->topic, topic) == 0)
			found = i;
	}
	if (found < 0 && create && free_slot >= 0)
	{
		SourceSlot *s = &table->slots[free_slot];

		/* initialised at start, never used: only the identity to set */
		strlcpy(s->topic, topic, sizeof(s->topic));
		s->partition = partition;
		s->in_use = true;
		found = free_slot;
	}
	LWLockRelease(table->lock);
	return found;
}

/* A slot's identity: set before the slot is in use and never changed. */
const char *
source_topic(int src)
{
	return table->slots[src].topic;
}

int32
source_partition(int src)
{
	return table->slots[src].partition;
}

void
source_set_assigned(int src, bool assigned)
{
	LWLockAcquire(table->lock, LW_EXCLUSIVE);
	table->slots[src].assigned = assigned;
	LWLockRelease(table->lock);
}

/*
 * A partition has unread data (a message came, or stored offsets say it is
 * to be replayed), or reached its end.  The flag is written only by the
 * worker, so the worker reads it without the lock and takes the lock only
 * to change it (this is called for every message).
 */
void
source_set_active(int src, bool active)
{
	if (table->slots[src].active == active)
		return;
	LWLockAcquire(table->lock, LW_EXCLUSIVE);
	table->slots[src].active = active;
	LWLockRelease(table->lock);
}

/* The active flag of every slot (source_slots() entries) into active. */
void
source_read_active(bool *active)
{
	LWLockAcquire(table->lock, LW_SHARED);
	for (int i = 0; i < table->nslots; i++)
		active[i] = table->slots[i].in_use && table->slots[i].active;
	LWLockRelease(table->lock);
}

/*
 * The brokers' end offset of a partition, as the brokers answered (or as
 * the consumer met it at the partition's end).  It may go down: a topic
 * deleted and created again, a log truncated.
 */
void
source_set_end_offset(int src, int64 end_offset)
{
	LWLockAcquire(table->lock, LW_EXCLUSIVE);
	table->slots[src].end_offset = end_offset;
	LWLockRelease(table->lock);
}

/*
 * The end offset as the fetcher last saw it, which may be older than what
 * the brokers answered: it only raises the end offset.
 */
void
source_raise_end_offset(int src, int64 end_offset)
{
	LWLockAcquire(table->lock, LW_EXCLUSIVE);
	if (end_offset > table->slots[src].end_offset)
		table->slots[src].end_offset = end_offset;
	LWLockRelease(table->lock);
}

/* A message of the source had this outcome (replays are not counted again). */
void
source_count(int src, TaOutcome outcome)
{
	SourceSlot *s = &table->slots[src];

	pg_atomic_fetch_add_u64(&s->outcomes[outcome], 1);
}

/* A copy of a slot for status(). */
void
source_read(int src, TaSourceInfo *out)
{
	SourceSlot *s = &table->slots[src];

	LWLockAcquire(table->lock, LW_SHARED);
	out->in_use = s->in_use;
	out->assigned = s->assigned;
	strlcpy(out->topic, s->topic, sizeof(out->topic));
	out->partition = s->partition;
	out->end_offset = s->end_offset;
	LWLockRelease(table->lock);
	out->consumed = 0;
	for (int o = 0; o < TA_NUM_OUTCOMES; o++)
	{
		out->outcomes[o] = pg_atomic_read_u64(&s->outcomes[o]);
		out->consumed += out->outcomes[o];
	}
}
