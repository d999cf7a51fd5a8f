/*-------------------------------------------------------------------------
 *
 * ingest.c
 *	  One message through the data path: validate (event.c), assign windows
 *	  and check lateness (window.c), aggregate (store.c), and account for it.
 *
 * Both entry points use it: the Kafka worker (consume.c) and the SQL
 * functions trafficagg.ingest() (sqlfuncs.c), so the two can't disagree on
 * what is accepted, late or rejected.  Every message ends with exactly one
 * outcome, counted on its source; rejected and late messages go to the
 * dead-letter table trafficagg.rejected_events: directly, in the caller's
 * transaction, for the SQL path; through the shared ring, written by the next
 * flush together with the partition's offsets, for Kafka.
 *
 * Replay.  After a crash the worker re-reads each partition from its stored
 * resume offset.  Messages before the stored position were accounted for
 * already (replay = true): they are neither counted nor written to the
 * dead-letter table again, and they go into every window ending after the
 * stored flushed watermark, whatever the watermark is now: those windows
 * were not written before the crash, and the event was in them (the
 * watermark advances differently on replay, so lateness is not re-judged).
 * A window the new watermark closed meanwhile gets a row that merges into
 * the flushed one.  A window a spill wrote early is skipped for the messages
 * the spill covered (trafficagg.spilled_windows).
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "trafficagg.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

/*
 * Note that an event of source src went into windows ending in
 * [first_end, last_end]: replay must start at or before this offset until
 * those windows are flushed.  Caller holds ta_shared->lock exclusively.
 */
static void
track_windows(TaSource *s, int64 offset, int64 first_end, int64 last_end)
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
 * Write a rejected or late message to the dead-letter table (SQL source,
 * in the caller's transaction) or queue it in the ring (Kafka).
 */
void
ingest_reject(int src, int64 offset, TaOutcome reason, const char *detail,
			  const char *data, size_t len)
{
	int32		keep = (int32) Min(len, (size_t) ta_rejected_payload_bytes);

	if (src == TA_SQL_SOURCE)
	{
		Oid			types[4] = {TEXTOID, TEXTOID, BYTEAOID, INT4OID};
		Datum		values[4];
		bytea	   *payload = palloc(VARHDRSZ + keep);
		int			ret;

		SET_VARSIZE(payload, VARHDRSZ + keep);
		if (keep > 0)
			memcpy(VARDATA(payload), data, keep);
		values[0] = CStringGetTextDatum(outcome_name(reason));
		values[1] = CStringGetTextDatum(detail);
		values[2] = PointerGetDatum(payload);
		values[3] = Int32GetDatum((int32) len);
		SPI_connect();
		ret = SPI_execute_with_args("INSERT INTO trafficagg.rejected_events"
									" (source, reason, detail, payload, payload_bytes)"
									" VALUES ('sql', $1, $2, $3, $4)",
									4, types, values, NULL, false, 0);
		if (ret != SPI_OK_INSERT)
			elog(ERROR, "SPI_execute_with_args failed inserting a rejected event: %d", ret);
		SPI_finish();
		return;
	}
	else
	{
		TaRejected *r;

		/* caller holds ta_shared->lock exclusively */
		if (ta_shared->rejected_count >= ta_rejected_buffer)
		{
			/* the worker flushes before this can happen; count, never block */
			ta_shared->rejected_dropped++;
			return;
		}
		r = store_rejected_at(ta_shared->rejected_head + ta_shared->rejected_count);
		ta_shared->rejected_count++;
		r->received_at = GetCurrentTimestamp();
		r->source = src;
		r->offset = offset;
		r->reason = reason;
		strlcpy(r->detail, detail, sizeof(r->detail));
		r->payload_len = keep;
		r->original_len = (int32) len;
		if (keep > 0)
			memcpy((char *) r + sizeof(TaRejected), data, keep);
	}
}

/* The parser could not allocate its buffer: a fault of this server. */
void
event_out_of_memory(size_t bytes)
{
	ereport(ERROR,
			(errcode(ERRCODE_OUT_OF_MEMORY),
			 errmsg("out of memory"),
			 errdetail("Failed on request of size %zu in the trafficagg event parser.", bytes)));
}

/*
 * Is the event stamped further ahead of the time its message was sent
 * (received_ms: the Kafka message timestamp, or TA_NO_TIME for the server
 * clock) than trafficagg.max_future allows?  The Kafka timestamp is used when
 * there is one because it is the same each time the message is read: a
 * message judged "future" stays so when a replay after a crash reads it again.
 */
static bool
event_from_future(const TaEvent *ev, int64 received_ms, char *detail, size_t detail_len)
{
	int64		ref = received_ms;
	char		t1[32],
				t2[32];

	if (ta_max_future_ms < 0)
		return false;
	if (ref == TA_NO_TIME)
		ref = ta_timestamptz_to_ms(GetCurrentTimestamp());
	if (ev->ts_ms <= ref || ev->ts_ms - ref <= ta_max_future_ms)
		return false;
	snprintf(detail, detail_len,
			 "event time %s is more than trafficagg.max_future (%d ms) ahead of %s %s",
			 format_rfc3339(ev->ts_ms, t1, sizeof(t1)), ta_max_future_ms,
			 received_ms == TA_NO_TIME ? "the server clock" : "the message timestamp",
			 format_rfc3339(ref, t2, sizeof(t2)));
	return true;
}

/*
 * Process one message of source src (offset: its Kafka offset, or -1;
 * received_ms: its Kafka timestamp, or TA_NO_TIME).
 * replay: the message was read before the restart (see the file header).
 * hold: some partition is still replaying; then no window beyond the stored
 * watermark is final yet (flushes hold them back), so fresh messages are
 * judged against the stored watermark too, as replayed ones are: a message
 * judged late now must stay late if it is read again after another crash.
 * Returns its outcome; *full is set (and nothing is recorded) when shared
 * memory had no room for its groups: the caller makes room and retries.
 */
TaOutcome
ingest_message(int src, int64 offset, int64 received_ms, const char *data, size_t len,
			   bool replay, bool hold, bool *full)
{
	TaEvent		ev;
	char		detail[TA_DETAIL_LEN];
	TaOutcome	outcome;
	int64		starts[TA_MAX_WINDOWS_PER_EVENT];
	int			nstarts = 0;
	int64		watermark = watermark_get();
	int64		cutoff;
	int64		first_end = 0;
	TaSource   *s = &ta_shared->sources[src];
	char		t1[32],
				t2[32],
				t3[32];

	*full = false;
	if (replay || hold)
	{
		SpinLockAcquire(&ta_shared->mutex);
		cutoff = ta_shared->replay_cutoff_ms;
		SpinLockRelease(&ta_shared->mutex);
	}
	else
		cutoff = watermark;
	outcome = event_parse(data, len, &ev, detail, sizeof(detail));
	if (outcome == TA_ACCEPTED && event_from_future(&ev, received_ms, detail, sizeof(detail)))
	{
		event_free(&ev);
		outcome = TA_REJ_FUTURE_TIMESTAMP;
	}
	if (outcome == TA_ACCEPTED)
	{
		nstarts = window_assign(ev.ts_ms, starts);
		/* skip the windows already closed; none left means late */
		while (nstarts > 0 && window_end(starts[0]) <= cutoff)
		{
			memmove(starts, starts + 1, (nstarts - 1) * sizeof(int64));
			nstarts--;
		}
		/* on replay, windows a spill already wrote this message into */
		if (replay)
		{
			int			kept = 0;

			for (int w = 0; w < nstarts; w++)
				if (!replay_spilled(src, offset, starts[w]))
					starts[kept++] = starts[w];
			nstarts = kept;
		}
		if (nstarts == 0 ||
			!store_add_event(&ev, starts, nstarts, (replay || hold) ? &cutoff : NULL, full))
		{
			if (*full)
			{
				event_free(&ev);
				return TA_ACCEPTED;
			}
			outcome = TA_LATE;
			snprintf(detail, sizeof(detail),
					 "event time %s is in windows closed by the watermark %s (last window ended %s)",
					 format_rfc3339(ev.ts_ms, t1, sizeof(t1)),
					 format_rfc3339(watermark_get(), t2, sizeof(t2)),
					 format_rfc3339(window_last_end(ev.ts_ms), t3, sizeof(t3)));
		}
		else
			first_end = window_end(starts[0]);
	}

	if (src == TA_SQL_SOURCE && outcome != TA_ACCEPTED)
		ingest_reject(src, offset, outcome, detail, data, len);

	LWLockAcquire(ta_shared->lock, LW_EXCLUSIVE);
	if (outcome == TA_ACCEPTED || outcome == TA_LATE)
		source_saw_event_time(s, ev.ts_ms);
	if (!s->is_sql)
	{
		if (outcome == TA_ACCEPTED)
			track_windows(s, offset, first_end, window_end(starts[nstarts - 1]));
		s->position = offset + 1;
	}
	if (!replay)
	{
		s->consumed++;
		s->outcomes[outcome]++;
		if (!s->is_sql && outcome != TA_ACCEPTED)
			ingest_reject(src, offset, outcome, detail, data, len);
	}
	LWLockRelease(ta_shared->lock);

	if (outcome == TA_ACCEPTED || outcome == TA_LATE)
		event_free(&ev);
	return outcome;
}
