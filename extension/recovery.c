/*-------------------------------------------------------------------------
 *
 * recovery.c
 *	  Exactly once across crashes: the recovery state stored with the rows,
 *	  and the replay that rebuilds what a crash lost.
 *
 * What it owns:
 *	  - per partition (by source slot, source.c), in shared memory private to
 *		this file under its LWLock: the position (next offset to consume), the
 *		resume offset last stored, the position stored before the last restart
 *		(messages before it are replayed: accounted for already), and the
 *		windows still open with the smallest offset of an event in each
 *		(recovery_note_messages), from which the resume offset is computed;
 *	  - trafficagg.kafka_offsets: resume offset, position and flushed
 *		watermark per partition, written by every flush in its transaction
 *		(recovery_write), read when the consumer starts (recovery_load);
 *	  - trafficagg.spilled_windows: windows written early by a spill, with
 *		the offset through which their events are in the tables
 *		(recovery_write, recovery_forget_spilled), which replay skips
 *		(recovery_skip_window);
 *	  - whether partitions are still replaying (recovery_replaying): until
 *		none is, no window past the stored watermark is written;
 *	  - the cut between batches and flushes (below).
 *
 * The protocol.  After a crash the worker replays each partition from its
 * stored resume offset.  Messages before the stored position were accounted
 * for already: they are neither counted nor dead-lettered again, and they go
 * into every window ending after the stored flushed watermark (those were not
 * written before the crash, and the event was in them), except a window a
 * spill wrote early, for the messages the spill covered.  That rebuilds
 * exactly the open windows the crash lost (ingest.c applies it per message).
 *
 * The cut.  Several workers consume at once (trafficagg.workers) while one
 * of them flushes.  What a flush writes must be one consistent cut: the rows
 * of the windows it collects, and for every partition the position, resume
 * offset and dead letters of exactly the messages before that cut.  A batch
 * of messages (consume.c) goes through the whole data path, from judging
 * lateness to the dead-letter ring and the positions, holding the batch lock
 * shared (recovery_batch_begin/end); a flush takes it exclusive while it
 * collects its groups and snapshots the positions (recovery_cut_begin,
 * recovery_snapshot, recovery_cut_end), and writes the snapshot afterwards.
 * So a flush sees every batch either whole or not at all.
 *
 * Every statement here runs as the worker (a superuser): schema-qualified,
 * operators included, values as parameters.
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "trafficagg.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "datums.h"
#include "recovery.h"
#include "source.h"
#include "window.h"


/*
 * A partition's recovery state.  Written by the workers only (the SQL path,
 * slot 0, has none), read by backends for status() and by the flush check.
 */
/* An open window holding data from a partition, and its smallest offset. */
typedef struct TrackedWindow
{
	int64		window_end;
	int64		min_offset;
} TrackedWindow;

typedef struct RecoverySource
{
	int64		position;		/* next offset to consume */
	int64		resume_offset;	/* stored: where replay starts after a crash */
	int64		replay_until;	/* position stored before the last restart:
								 * messages before it are accounted for */
	int			ntracked;
	TrackedWindow tracked[TA_TRACKED_WINDOWS];
	int64		overflow_min_offset;	/* windows beyond the tracked array */
	int64		overflow_end;
} RecoverySource;

typedef struct RecoveryShared
{
	LWLock	   *lock;
	LWLock	   *batch_lock;		/* the cut: batches shared, flushes exclusive */
	LWLock	   *gate_lock;		/* taken first by both, so a waiting cut goes next */
	int			nslots;
	RecoverySource sources[FLEXIBLE_ARRAY_MEMBER];
} RecoveryShared;

static RecoveryShared *rec = NULL;

/* What the flush table said about a partition when the worker started. */
typedef struct StoredOffset
{
	char		topic[NAMEDATALEN];
	int32		partition;
	int64		resume_offset;
	int64		position;
} StoredOffset;

static StoredOffset *stored = NULL;
static int	nstored = 0;

/* windows written early by a spill, from trafficagg.spilled_windows */
typedef struct SpilledWindow
{
	char		topic[NAMEDATALEN];
	int32		partition;
	int64		window_start;
	int64		through_offset;
} SpilledWindow;

static SpilledWindow *spilled = NULL;
static int	nspilled = 0;

Size
recovery_shmem_size(void)
{
	return MAXALIGN(add_size(offsetof(RecoveryShared, sources),
							 mul_size(source_slots(), sizeof(RecoverySource))));
}

/* From the shmem_request hook. */
void
recovery_shmem_request(void)
{
	RequestNamedLWLockTranche("trafficagg recovery", 1);
	RequestNamedLWLockTranche("trafficagg batches", 2);
}

/* From the shmem_startup hook, under AddinShmemInitLock. */
void
recovery_shmem_init(void)
{
	bool		found;

	rec = ShmemInitStruct("trafficagg recovery", recovery_shmem_size(), &found);
	if (!found)
	{
		rec->lock = &GetNamedLWLockTranche("trafficagg recovery")[0].lock;
		rec->batch_lock = &GetNamedLWLockTranche("trafficagg batches")[0].lock;
		rec->gate_lock = &GetNamedLWLockTranche("trafficagg batches")[1].lock;
		rec->nslots = source_slots();
		for (int i = 0; i < rec->nslots; i++)
		{
			RecoverySource *r = &rec->sources[i];

			memset(r, 0, sizeof(RecoverySource));
			r->position = TA_NO_OFFSET;
			r->resume_offset = TA_NO_OFFSET;
			r->replay_until = TA_NO_OFFSET;
			r->overflow_min_offset = TA_NO_OFFSET;
		}
	}
}

static const StoredOffset *
find_stored(const char *topic, int32 partition)
{
	for (int i = 0; i < nstored; i++)
		if (stored[i].partition == partition && strcmp(stored[i].topic, topic) == 0)
			return &stored[i];
	return NULL;
}

/*
 * Does the stored state say where a partition resumes?  (consume.c looks up
 * start offsets by time only for partitions without.)
 */
bool
recovery_has_stored(const char *topic, int32 partition)
{
	return find_stored(topic, partition) != NULL;
}

/*
 * Read trafficagg.kafka_offsets and trafficagg.spilled_windows (the consumer
 * starts; caller is in a transaction); restore the watermark they record.
 * replay: partitions with stored offsets replay up to their stored position
 * (not with trafficagg.shared_group, see below).
 */
void
recovery_load(bool replay)
{
	int64		restored = TA_NO_TIME;

	SPI_connect();
	if (SPI_execute("SELECT topic, partition, resume_offset, position, flushed_watermark"
					" FROM trafficagg.kafka_offsets", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read trafficagg.kafka_offsets");
	nstored = (int) SPI_processed;
	if (stored != NULL)
		pfree(stored);
	stored = MemoryContextAllocZero(TopMemoryContext, Max(nstored, 1) * sizeof(StoredOffset));
	for (int i = 0; i < nstored; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		wm;

		strlcpy(stored[i].topic, SPI_getvalue(tup, desc, 1), NAMEDATALEN);
		stored[i].partition = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		stored[i].resume_offset = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
		stored[i].position = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
		wm = SPI_getbinval(tup, desc, 5, &isnull);
		if (!isnull && ta_timestamptz_to_ms(DatumGetTimestampTz(wm)) > restored && strcmp(stored[i].topic, ta_topic) == 0)
			restored = ta_timestamptz_to_ms(DatumGetTimestampTz(wm));
	}
	if (SPI_execute("SELECT topic, partition, window_start, through_offset"
					" FROM trafficagg.spilled_windows", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read trafficagg.spilled_windows");
	nspilled = (int) SPI_processed;
	if (spilled != NULL)
		pfree(spilled);
	spilled = MemoryContextAllocZero(TopMemoryContext, Max(nspilled, 1) * sizeof(SpilledWindow));
	for (int i = 0; i < nspilled; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		strlcpy(spilled[i].topic, SPI_getvalue(tup, desc, 1), NAMEDATALEN);
		spilled[i].partition = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		spilled[i].window_start =
			ta_timestamptz_to_ms(DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull)));
		spilled[i].through_offset = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
	}
	SPI_finish();

	/*
	 * Every partition with stored offsets holds the watermark back, and
	 * counts as replaying, from now on, not only once it is assigned: a
	 * rebalance may hand out the partitions one by one.  (Not when servers
	 * share the group: every flush writes every window and commits the
	 * positions to the group, so nothing is replayed, and a partition
	 * another server owns now must not hold this one's watermark.)
	 */
	for (int i = 0; i < nstored && replay; i++)
	{
		int			src;
		bool		fresh;

		if (strcmp(stored[i].topic, ta_topic) != 0)
			continue;
		src = source_lookup(stored[i].topic, stored[i].partition, true);
		if (src < 0)
			continue;
		LWLockAcquire(rec->lock, LW_EXCLUSIVE);
		fresh = rec->sources[src].position == TA_NO_OFFSET;
		if (fresh)
			rec->sources[src].replay_until = stored[i].position;
		LWLockRelease(rec->lock);
		if (fresh)
			source_set_active(src, true);
	}

	if (restored != TA_NO_TIME)
	{
		watermark_restore(restored);
	}
}

/*
 * During replay: was this message already written, in window_start, by a
 * spill before the crash?  (ingest.c skips that window for it.)
 */
bool
recovery_skip_window(int src, int64 offset, int64 window_start)
{
	int32		partition = source_partition(src);

	for (int i = 0; i < nspilled; i++)
		if (spilled[i].window_start == window_start && spilled[i].partition == partition &&
			offset < spilled[i].through_offset &&
			strcmp(spilled[i].topic, source_topic(src)) == 0)
			return true;
	return false;
}

/*
 * A newly assigned partition: where it starts.  Returns false, leaving the
 * choice to trafficagg.start_offset, when neither shared memory (the worker
 * restarted, the server did not) nor the stored state has a position for it.
 * From the stored state, it replays from the stored resume offset, and the
 * messages before the stored position count as replayed.
 */
bool
recovery_place(int src, int64 *offset)
{
	RecoverySource *r = &rec->sources[src];
	const StoredOffset *so = find_stored(source_topic(src), source_partition(src));
	bool		placed = true;

	LWLockAcquire(rec->lock, LW_EXCLUSIVE);
	if (r->position != TA_NO_OFFSET)
		*offset = r->position;	/* shared memory still valid: its replay
								 * boundary stays as it was */
	else if (so != NULL)
	{
		r->replay_until = so->position;
		r->position = so->resume_offset;
		*offset = so->resume_offset;
	}
	else
		placed = false;
	LWLockRelease(rec->lock);
	return placed;
}

/*
 * trafficagg.shared_group: this server takes a partition over at the group's
 * committed offset (TA_NO_OFFSET: not known yet, nothing is committed for it
 * until a message is read).  Whatever shared memory says of an earlier
 * ownership is stale (another server may have read on since), and nothing of
 * the partition is in memory: every flush wrote all of it, the hand-off's
 * last.
 */
void
recovery_take_over(int src, int64 offset)
{
	RecoverySource *r = &rec->sources[src];

	LWLockAcquire(rec->lock, LW_EXCLUSIVE);
	r->position = offset;
	r->resume_offset = offset;
	r->replay_until = TA_NO_OFFSET;
	r->ntracked = 0;
	r->overflow_min_offset = TA_NO_OFFSET;
	r->overflow_end = 0;
	LWLockRelease(rec->lock);
}

/*
 * Was this message of the partition read before the restart?  The boundary
 * is written (under the lock) only while the partition has no position yet,
 * and only the worker that placed the partition asks: no lock.
 */
bool
recovery_is_replay(int src, int64 offset)
{
	return offset < rec->sources[src].replay_until;
}

/*
 * Does shared memory hold Kafka messages' state (a partition with a
 * position)?  Then only the worker may flush: it writes their offsets with
 * the rows.
 */
bool
recovery_has_positions(void)
{
	bool		found = false;

	LWLockAcquire(rec->lock, LW_SHARED);
	for (int i = 1; i < rec->nslots && !found; i++)
		found = rec->sources[i].position != TA_NO_OFFSET;
	LWLockRelease(rec->lock);
	return found;
}

/* A partition's position and last stored resume offset (or TA_NO_OFFSET). */
void
recovery_read(int src, int64 *position, int64 *resume_offset)
{
	LWLockAcquire(rec->lock, LW_SHARED);
	*position = rec->sources[src].position;
	*resume_offset = rec->sources[src].resume_offset;
	LWLockRelease(rec->lock);
}

/*
 * Is a partition still replaying what it had read before a restart?  Until
 * none is, windows can't be written: the replay has not rebuilt them whole.
 */
bool
recovery_replaying(void)
{
	bool		replaying = false;

	LWLockAcquire(rec->lock, LW_SHARED);
	for (int i = 1; i < rec->nslots && !replaying; i++)
	{
		RecoverySource *r = &rec->sources[i];

		replaying = r->replay_until != TA_NO_OFFSET &&
			(r->position == TA_NO_OFFSET || r->position < r->replay_until);
	}
	LWLockRelease(rec->lock);
	return replaying;
}

/*
 * A message of partition src was processed: the position moves past it, and
 * if it was accepted, into windows ending in [first_end, last_end], replay
 * must start at or before its offset until those windows are flushed.
 * Caller holds rec->lock exclusive.
 */
static void
note_message(int src, int64 offset, bool accepted, int64 first_end, int64 last_end)
{
	RecoverySource *r = &rec->sources[src];
	int64		step = ta_slide_ms > 0 ? ta_slide_ms : ta_window_ms;

	for (int64 end = first_end; accepted && end <= last_end; end += step)
	{
		int			i;

		for (i = 0; i < r->ntracked; i++)
			if (r->tracked[i].window_end == end)
				break;
		if (i < r->ntracked)
		{
			if (offset < r->tracked[i].min_offset)
				r->tracked[i].min_offset = offset;
			continue;
		}
		if (r->ntracked < TA_TRACKED_WINDOWS)
		{
			r->tracked[r->ntracked].window_end = end;
			r->tracked[r->ntracked].min_offset = offset;
			r->ntracked++;
			continue;
		}
		/* too many open windows: remember them coarsely (replay is longer) */
		if (r->overflow_min_offset == TA_NO_OFFSET || offset < r->overflow_min_offset)
			r->overflow_min_offset = offset;
		if (end > r->overflow_end)
			r->overflow_end = end;
	}
	r->position = offset + 1;
}

/* The Kafka messages of a batch were processed (note_message), in order. */
void
recovery_note_messages(const TaProcessed *m, int n)
{
	if (n == 0)
		return;
	LWLockAcquire(rec->lock, LW_EXCLUSIVE);
	for (int i = 0; i < n; i++)
		note_message(m[i].src, m[i].offset, m[i].accepted, m[i].first_end, m[i].last_end);
	LWLockRelease(rec->lock);
}

/*
 * A batch of messages goes through the data path: see "The cut" above.
 * LWLocks let new shared holders pass a waiting exclusive one, so batches
 * back to back could keep a flush out for good: both go through the gate
 * first, which a cut holds until it has the batch lock.
 */
void
recovery_batch_begin(void)
{
	LWLockAcquire(rec->gate_lock, LW_EXCLUSIVE);
	LWLockAcquire(rec->batch_lock, LW_SHARED);
	LWLockRelease(rec->gate_lock);
}

void
recovery_batch_end(void)
{
	LWLockRelease(rec->batch_lock);
}

/* A flush collects its groups and snapshots the positions in between. */
void
recovery_cut_begin(void)
{
	LWLockAcquire(rec->gate_lock, LW_EXCLUSIVE);
	LWLockAcquire(rec->batch_lock, LW_EXCLUSIVE);
	LWLockRelease(rec->gate_lock);
}

void
recovery_cut_end(void)
{
	LWLockRelease(rec->batch_lock);
}

/* What a flush writes for the partitions (recovery_snapshot). */
struct TaRecoveryCut
{
	int			n;
	Datum	   *topics;
	Datum	   *parts;
	Datum	   *resumes;
	Datum	   *positions;
	Datum	   *read_through;
};

/*
 * Per partition, inside the cut: forget the windows ending at or before
 * written_through (the flush writes them), and compute the resume offset and
 * the position to store.  palloc'd, for recovery_write.
 */
TaRecoveryCut *
recovery_snapshot(int64 written_through)
{
	TaRecoveryCut *cut = palloc0(sizeof(TaRecoveryCut));

	cut->topics = palloc(rec->nslots * sizeof(Datum));
	cut->parts = palloc(rec->nslots * sizeof(Datum));
	cut->resumes = palloc(rec->nslots * sizeof(Datum));
	cut->positions = palloc(rec->nslots * sizeof(Datum));
	cut->read_through = palloc(rec->nslots * sizeof(Datum));

	LWLockAcquire(rec->lock, LW_EXCLUSIVE);
	for (int i = 1; i < rec->nslots; i++)
	{
		RecoverySource *s = &rec->sources[i];
		int64		resume;
		int			kept = 0;
		int			n = cut->n;

		if (s->position == TA_NO_OFFSET)
			continue;
		resume = s->position;
		for (int t = 0; t < s->ntracked; t++)
		{
			if (s->tracked[t].window_end <= written_through)
				continue;
			s->tracked[kept++] = s->tracked[t];
			if (s->tracked[t].min_offset < resume)
				resume = s->tracked[t].min_offset;
		}
		s->ntracked = kept;
		if (s->overflow_min_offset != TA_NO_OFFSET)
		{
			if (s->overflow_end <= written_through)
				s->overflow_min_offset = TA_NO_OFFSET;
			else if (s->overflow_min_offset < resume)
				resume = s->overflow_min_offset;
		}
		s->resume_offset = resume;
		cut->topics[n] = CStringGetTextDatum(source_topic(i));
		cut->parts[n] = Int32GetDatum(source_partition(i));
		cut->resumes[n] = Int64GetDatum(resume);
		/* during a replay the accounted-for boundary is still the old one */
		cut->positions[n] = Int64GetDatum(Max(s->position, s->replay_until));
		cut->read_through[n] = Int64GetDatum(s->position);
		cut->n++;
	}
	LWLockRelease(rec->lock);
	return cut;
}

/*
 * Write a snapshot in the flush's transaction: per partition the resume
 * offset, the position and the watermark to store.  If a spill wrote the
 * window starting at spilled early, also record each partition's position
 * as the offset through which that window's events are in the tables
 * (replay after a crash must not add them again).
 */
void
recovery_write(const TaRecoveryCut *cut, int64 watermark, int64 spilled)
{
	Oid			types[5] = {TEXTARRAYOID, INT4ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, TIMESTAMPTZOID};
	Datum		params[5];
	char		nulls[6] = "     ";
	int			n = cut->n;
	int			ret;

	if (n == 0)
		return;

	params[0] = ta_datum_array(cut->topics, NULL, n, TEXTOID);
	params[1] = ta_datum_array(cut->parts, NULL, n, INT4OID);
	params[2] = ta_datum_array(cut->resumes, NULL, n, INT8OID);
	params[3] = ta_datum_array(cut->positions, NULL, n, INT8OID);
	params[4] = TimestampTzGetDatum(ta_ms_to_timestamptz(watermark));
	nulls[4] = (watermark == TA_NO_TIME) ? 'n' : ' ';
	ret = SPI_execute_with_args("INSERT INTO trafficagg.kafka_offsets AS o"
								" (topic, partition, resume_offset, position, flushed_watermark, updated_at)"
								" SELECT u.t, u.p, u.r, u.o, $5, pg_catalog.now()"
								" FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
								"   pg_catalog.unnest($3), pg_catalog.unnest($4)) AS u(t, p, r, o)"
								" ON CONFLICT (topic, partition) DO UPDATE SET"
								" resume_offset = excluded.resume_offset, position = excluded.position,"
								" flushed_watermark = excluded.flushed_watermark, updated_at = pg_catalog.now()",
								5, types, params, nulls, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "SPI_execute_with_args failed writing trafficagg.kafka_offsets: %d", ret);

	if (spilled != TA_NO_TIME)
	{
		Oid			stypes[4] = {TEXTARRAYOID, INT4ARRAYOID, INT8ARRAYOID, TIMESTAMPTZOID};
		Datum		sparams[4] = {params[0], params[1],
			ta_datum_array(cut->read_through, NULL, n, INT8OID),
		TimestampTzGetDatum(ta_ms_to_timestamptz(spilled))};

		ret = SPI_execute_with_args("INSERT INTO trafficagg.spilled_windows AS s"
									" (topic, partition, window_start, through_offset)"
									" SELECT u.t, u.p, $4, u.o"
									" FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
									"   pg_catalog.unnest($3)) AS u(t, p, o)"
									" ON CONFLICT (topic, partition, window_start)"
									" DO UPDATE SET through_offset ="
									"   greatest(s.through_offset, excluded.through_offset)",
									4, stypes, sparams, NULL, false, 0);
		if (ret != SPI_OK_INSERT)
			elog(ERROR, "SPI_execute_with_args failed writing trafficagg.spilled_windows: %d", ret);
	}
}

/* Windows flushed for good need no spill record any more. */
void
recovery_forget_spilled(int64 watermark)
{
	Oid			types[1] = {TIMESTAMPTZOID};
	Datum		params[1];

	if (watermark == TA_NO_TIME)
		return;
	params[0] = TimestampTzGetDatum(ta_ms_to_timestamptz(watermark - ta_window_ms));
	if (SPI_execute_with_args("DELETE FROM trafficagg.spilled_windows"
							  " WHERE window_start OPERATOR(pg_catalog.<=) $1",
							  1, types, params, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "SPI_execute_with_args failed trimming trafficagg.spilled_windows");
}

/*
 * A rewind of the watermark (the rows of every window are being written,
 * with resume offsets at the positions): no spill record is needed any more,
 * since nothing before the positions is replayed, and every stored watermark
 * goes back, also those of partitions this server no longer tracks (the
 * greatest stored one is restored at the next start).
 */
void
recovery_rewind(int64 to_ms)
{
	Oid			types[1] = {TIMESTAMPTZOID};
	Datum		params[1] = {TimestampTzGetDatum(ta_ms_to_timestamptz(to_ms))};

	if (SPI_execute("DELETE FROM trafficagg.spilled_windows", false, 0) != SPI_OK_DELETE)
		elog(ERROR, "SPI_execute failed emptying trafficagg.spilled_windows");
	if (SPI_execute_with_args("UPDATE trafficagg.kafka_offsets"
							  " SET flushed_watermark = $1"
							  " WHERE flushed_watermark OPERATOR(pg_catalog.>) $1",
							  1, types, params, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "SPI_execute_with_args failed rewinding trafficagg.kafka_offsets");
}
