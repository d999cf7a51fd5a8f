/*-------------------------------------------------------------------------
 *
 * recovery.c
 *	  Exactly once across crashes: the recovery state stored with the rows,
 *	  and the replay that rebuilds what a crash lost.
 *
 * What it owns:
 *	  - per partition, the windows still open and the smallest offset of an
 *		event in each (recovery_note_event), from which the resume offset is
 *		computed;
 *	  - trafficagg.kafka_offsets: resume offset, position and flushed
 *		watermark per partition, written by every flush in its transaction
 *		(recovery_write), read when the consumer starts (recovery_load);
 *	  - trafficagg.spilled_windows: windows written early by a spill, with
 *		the offset through which their events are in the tables
 *		(recovery_write, recovery_forget_spilled), which replay skips
 *		(recovery_skip_window);
 *	  - whether partitions are still replaying (recovery_replaying): until
 *		none is, no window past the stored watermark is written.
 *
 * The protocol.  After a crash the worker replays each partition from its
 * stored resume offset.  Messages before the stored position were accounted
 * for already: they are neither counted nor dead-lettered again, and they go
 * into every window ending after the stored flushed watermark (those were not
 * written before the crash, and the event was in them), except a window a
 * spill wrote early, for the messages the spill covered.  That rebuilds
 * exactly the open windows the crash lost (ingest.c applies it per message).
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
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

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

static const StoredOffset *
find_stored(const char *topic, int32 partition)
{
	for (int i = 0; i < nstored; i++)
		if (stored[i].partition == partition && strcmp(stored[i].topic, topic) == 0)
			return &stored[i];
	return NULL;
}

/*
 * Where the stored state says a partition resumes: false if it has none.
 * (consume.c chooses each newly assigned partition's start from it.)
 */
bool
recovery_stored_position(const char *topic, int32 partition, int64 *resume_offset,
						 int64 *position)
{
	const StoredOffset *so = find_stored(topic, partition);

	if (so == NULL)
		return false;
	*resume_offset = so->resume_offset;
	*position = so->position;
	return true;
}

/*
 * Read trafficagg.kafka_offsets and trafficagg.spilled_windows (the consumer
 * starts; caller is in a transaction); restore the watermark they record.
 */
void
recovery_load(void)
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
	 * rebalance may hand out the partitions one by one.
	 */
	LWLockAcquire(ta_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < nstored; i++)
	{
		int			src;

		if (strcmp(stored[i].topic, ta_topic) != 0)
			continue;
		src = source_lookup(stored[i].topic, stored[i].partition, true);
		if (src >= 0 && ta_shared->sources[src].position == TA_NO_OFFSET)
		{
			ta_shared->sources[src].active = true;
			ta_shared->sources[src].replay_until = stored[i].position;
		}
	}
	LWLockRelease(ta_shared->lock);

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
	TaSource   *s = &ta_shared->sources[src];

	for (int i = 0; i < nspilled; i++)
		if (spilled[i].window_start == window_start && spilled[i].partition == s->partition &&
			offset < spilled[i].through_offset && strcmp(spilled[i].topic, s->topic) == 0)
			return true;
	return false;
}

/*
 * Is a partition still replaying what it had read before a restart?  Until
 * none is, windows can't be written: the replay has not rebuilt them whole.
 */
bool
recovery_replaying(void)
{
	bool		replaying = false;

	LWLockAcquire(ta_shared->lock, LW_SHARED);
	for (int i = 1; i < ta_shared->nsources && !replaying; i++)
	{
		TaSource   *s = &ta_shared->sources[i];

		replaying = s->in_use && s->replay_until != TA_NO_OFFSET &&
			(s->position == TA_NO_OFFSET || s->position < s->replay_until);
	}
	LWLockRelease(ta_shared->lock);
	return replaying;
}

/*
 * Note that an event of source src went into windows ending in
 * [first_end, last_end]: replay must start at or before this offset until
 * those windows are flushed.  Caller holds ta_shared->lock exclusively.
 */
void
recovery_note_event(TaSource *s, int64 offset, int64 first_end, int64 last_end)
{
	int64		step = ta_slide_ms > 0 ? ta_slide_ms : ta_window_ms;

	for (int64 end = first_end; end <= last_end; end += step)
	{
		int			i;

		for (i = 0; i < s->ntracked; i++)
			if (s->tracked[i].window_end == end)
				break;
		if (i < s->ntracked)
		{
			if (offset < s->tracked[i].min_offset)
				s->tracked[i].min_offset = offset;
			continue;
		}
		if (s->ntracked < TA_TRACKED_WINDOWS)
		{
			s->tracked[s->ntracked].window_end = end;
			s->tracked[s->ntracked].min_offset = offset;
			s->ntracked++;
			continue;
		}
		/* too many open windows: remember them coarsely (replay is longer) */
		if (s->overflow_min_offset == TA_NO_OFFSET || offset < s->overflow_min_offset)
			s->overflow_min_offset = offset;
		if (end > s->overflow_end)
			s->overflow_end = end;
	}
}

/*
 * Per partition: forget the windows ending at or before written_through
 * (now in the tables), compute the resume offset and write it, with the
 * watermark to store.  If a spill wrote the window starting at spilled
 * early, also record each partition's position as the offset through which
 * that window's events are in the tables (replay after a crash must not add
 * them again).  Caller holds nothing; takes ta_shared->lock.
 */
void
recovery_write(int64 written_through, int64 watermark, int64 spilled)
{
	StringInfoData sql;
	Oid			types[5] = {TEXTARRAYOID, INT4ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, TIMESTAMPTZOID};
	Datum		params[5];
	char		nulls[6] = "     ";
	Datum	   *topics = palloc(ta_shared->nsources * sizeof(Datum));
	Datum	   *parts = palloc(ta_shared->nsources * sizeof(Datum));
	Datum	   *resumes = palloc(ta_shared->nsources * sizeof(Datum));
	Datum	   *positions = palloc(ta_shared->nsources * sizeof(Datum));
	Datum	   *read_through = palloc(ta_shared->nsources * sizeof(Datum));
	int			n = 0;
	int			ret;

	LWLockAcquire(ta_shared->lock, LW_EXCLUSIVE);
	for (int i = 1; i < ta_shared->nsources; i++)
	{
		TaSource   *s = &ta_shared->sources[i];
		int64		resume;
		int			kept = 0;

		if (!s->in_use || s->position == TA_NO_OFFSET)
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
		topics[n] = CStringGetTextDatum(s->topic);
		parts[n] = Int32GetDatum(s->partition);
		resumes[n] = Int64GetDatum(resume);
		/* during a replay the accounted-for boundary is still the old one */
		positions[n] = Int64GetDatum(Max(s->position, s->replay_until));
		read_through[n] = Int64GetDatum(s->position);
		n++;
	}
	LWLockRelease(ta_shared->lock);
	if (n == 0)
		return;

	params[0] = ta_datum_array(topics, NULL, n, TEXTOID);
	params[1] = ta_datum_array(parts, NULL, n, INT4OID);
	params[2] = ta_datum_array(resumes, NULL, n, INT8OID);
	params[3] = ta_datum_array(positions, NULL, n, INT8OID);
	params[4] = TimestampTzGetDatum(ta_ms_to_timestamptz(watermark));
	nulls[4] = (watermark == TA_NO_TIME) ? 'n' : ' ';
	initStringInfo(&sql);
	appendStringInfoString(&sql,
						   "INSERT INTO trafficagg.kafka_offsets AS o"
						   " (topic, partition, resume_offset, position, flushed_watermark, updated_at)"
						   " SELECT u.t, u.p, u.r, u.o, $5, pg_catalog.now()"
						   " FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
						   "   pg_catalog.unnest($3), pg_catalog.unnest($4)) AS u(t, p, r, o)"
						   " ON CONFLICT (topic, partition) DO UPDATE SET"
						   " resume_offset = excluded.resume_offset, position = excluded.position,"
						   " flushed_watermark = excluded.flushed_watermark, updated_at = pg_catalog.now()");
	ret = SPI_execute_with_args(sql.data, 5, types, params, nulls, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "SPI_execute_with_args failed writing trafficagg.kafka_offsets: %d", ret);

	if (spilled != TA_NO_TIME)
	{
		Oid			stypes[4] = {TEXTARRAYOID, INT4ARRAYOID, INT8ARRAYOID, TIMESTAMPTZOID};
		Datum		sparams[4] = {params[0], params[1],
			ta_datum_array(read_through, NULL, n, INT8OID),
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
