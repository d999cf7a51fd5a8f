/*-------------------------------------------------------------------------
 *
 * ingest.c
 *	  A batch of messages through the data path: validate (event.c), assign
 *	  windows and check lateness (window.c), aggregate (batch.c, then
 *	  store.c), and account for each message.
 *
 * Both entry points use it: the Kafka worker (consume.c; a batch is what
 * one poll brought) and the SQL functions trafficagg.ingest() (sqlfuncs.c;
 * a batch of one message), so the two can't disagree on what is accepted,
 * late or rejected.  Every message ends with exactly one outcome, counted on
 * its source; rejected and late messages go to the dead-letter table
 * trafficagg.rejected_events: directly, in the caller's transaction, for the
 * SQL path; through the shared ring, written by the next flush together with
 * the partition's offsets, for Kafka.
 *
 * A batch: ingest_begin(), ingest_message() for each message, ingest_end().
 * In between it holds recovery.c's batch lock, so that a flush sees the
 * whole batch or nothing of it.  ingest_message() judges a message and adds
 * its event to the batch's groups in this process (batch.c); ingest_end()
 * merges them into shared memory (store.c) and only then records each
 * message: its outcome, its source's position and open windows, its event
 * time, its dead letter.  When shared memory has no room for the batch,
 * ingest_end() records nothing and answers false: the caller makes room and
 * serves the same messages again (in a smaller batch if need be).
 *
 * Replay (the protocol is recovery.c's).  After a crash the worker re-reads
 * each partition from its stored resume offset.  Messages before the stored
 * position were accounted for already (replay = true): they are neither
 * counted nor written to the dead-letter table again, and they go into every
 * window ending after the stored flushed watermark, whatever the watermark is
 * now: those windows were not written before the crash, and the event was in
 * them (the watermark advances differently on replay, so lateness is not
 * re-judged).  A window the new watermark closed meanwhile gets a row that
 * merges into the flushed one.  A window a spill wrote early is skipped for
 * the messages the spill covered (recovery_skip_window).
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "trafficagg.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "batch.h"
#include "catalog.h"
#include "deadletter.h"
#include "event.h"
#include "ingest.h"
#include "recovery.h"
#include "source.h"
#include "store.h"
#include "window.h"



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

	if (ta_max_future_ms < 0 || received_ms == TA_NO_REFERENCE_TIME)
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

/* A message of the batch, recorded by ingest_end() once the batch is merged. */
typedef struct Pending
{
	int			src;
	int64		offset;
	TaOutcome	outcome;
	bool		replay;
	bool		has_time;		/* accepted or late: an event time to note */
	int64		ts_ms;
	int64		first_end;		/* accepted: its first and last window end */
	int64		last_end;
	const char *data;			/* rejected or late: the message, valid until */
	size_t		len;			/* ingest_end() */
	char		detail[TA_DETAIL_LEN];
} Pending;

static Pending *pending = NULL;
static int	npending = 0;
static int	pending_cap = 0;
static bool batch_hold = false;
static const char *full_setting = NULL;

/*
 * Start a batch (see the file header).  kafka: of Kafka messages; then,
 * while some partition still replays after a restart, fresh messages are
 * judged against the stored watermark (see ingest_message), which is decided
 * here, under the batch lock, so that no flush ends the replay meanwhile.
 */
void
ingest_begin(bool kafka)
{
	batch_reset();
	npending = 0;
	recovery_batch_begin();
	batch_hold = kafka && recovery_replaying();
}

/*
 * Judge one message of source src (offset: its Kafka offset, or -1;
 * received_ms: its Kafka timestamp, or TA_NO_TIME; msg: its value, and
 * from Kafka its key, timestamp and headers, which the field mapping may
 * read), under the field mapping in force (catalog.c), and add its event to
 * the batch.  replay: the message was read before the restart (see the file
 * header).  While some partition is still replaying (ingest_begin), no window
 * beyond the stored watermark is final yet (flushes hold them back), so
 * fresh messages are judged against the stored watermark too, as replayed
 * ones are: a message judged late now must stay late if it is read again
 * after another crash.  Returns its outcome, recorded only by ingest_end().
 */
TaOutcome
ingest_message(int src, int64 offset, int64 received_ms, const TaMessage *msg,
			   bool replay)
{
	bool		hold = batch_hold;
	TaEvent		ev;
	TaOutcome	outcome;
	int64		starts[TA_MAX_WINDOWS_PER_EVENT];
	int			nstarts = 0;
	int64		cutoff = (replay || hold) ? watermark_replay_cutoff() : watermark_get();
	char		t1[32],
				t2[32],
				t3[32];
	Pending    *p;

	if (npending == pending_cap)
	{
		pending_cap = Max(pending_cap * 2, 64);
		pending = pending ? repalloc(pending, pending_cap * sizeof(Pending))
			: MemoryContextAlloc(TopMemoryContext, pending_cap * sizeof(Pending));
	}
	p = &pending[npending++];
	p->src = src;
	p->offset = offset;
	p->replay = replay;
	p->has_time = false;
	p->data = msg->data;
	p->len = msg->len;
	batch_count_message();

	outcome = event_parse(catalog_mapping(), msg, &ev, p->detail, sizeof(p->detail));
	if (outcome == TA_ACCEPTED && event_from_future(&ev, received_ms, p->detail, sizeof(p->detail)))
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
				if (!recovery_skip_window(src, offset, starts[w]))
					starts[kept++] = starts[w];
			nstarts = kept;
		}
		p->has_time = true;
		p->ts_ms = ev.ts_ms;
		if (nstarts == 0)
		{
			outcome = TA_LATE;
			snprintf(p->detail, sizeof(p->detail),
					 "event time %s is in windows closed by the watermark %s (last window ended %s)",
					 format_rfc3339(ev.ts_ms, t1, sizeof(t1)),
					 format_rfc3339(watermark_get(), t2, sizeof(t2)),
					 format_rfc3339(window_last_end(ev.ts_ms), t3, sizeof(t3)));
		}
		else
		{
			batch_add_event(&ev, starts, nstarts);
			p->first_end = window_end(starts[0]);
			p->last_end = window_end(starts[nstarts - 1]);
		}
		event_free(&ev);
	}
	p->outcome = outcome;
	return outcome;
}

/*
 * The setting whose limit the last batch that found no room hit:
 * trafficagg.rejected_buffer (the dead-letter ring: a flush makes room) or
 * one of store.c's (a spill makes room).
 */
const char *
ingest_full_setting(void)
{
	return full_setting ? full_setting : store_full_setting();
}

/* Has the batch as many groups as a batch may have?  Then end it. */
bool
ingest_batch_full(void)
{
	return batch_full();
}

/*
 * Merge the batch and record its messages (see the file header).  Returns
 * false, having recorded nothing, when shared memory has no room for it;
 * store_full_setting() says which limit.  Either way the batch is over.
 */
bool
ingest_end(void)
{
	int			letters = 0;
	bool		merged;

	/* room in the dead-letter ring for the batch's, kept for it */
	for (int i = 0; i < npending; i++)
		if (pending[i].src != TA_SQL_SOURCE && !pending[i].replay &&
			pending[i].outcome != TA_ACCEPTED)
			letters++;
	if (letters > 0 && !deadletter_reserve(letters))
	{
		full_setting = "trafficagg.rejected_buffer";
		merged = false;
	}
	else if (!(merged = store_merge_batch(batch_contents())))
	{
		full_setting = store_full_setting();
		deadletter_unreserve(letters);
	}

	if (merged)
	{
		/* event times and positions: one lock round trip each per batch */
		TaEventTime *times = palloc(Max(npending, 1) * sizeof(TaEventTime));
		TaProcessed *processed = palloc(Max(npending, 1) * sizeof(TaProcessed));
		int			ntimes = 0,
					nprocessed = 0;

		for (int i = 0; i < npending; i++)
		{
			Pending    *p = &pending[i];
			bool		accepted = p->outcome == TA_ACCEPTED;

			if (p->has_time)
				times[ntimes++] = (TaEventTime) {.src = p->src, .ts_ms = p->ts_ms};
			if (p->src != TA_SQL_SOURCE)
				processed[nprocessed++] = (TaProcessed) {
					.src = p->src, .offset = p->offset, .accepted = accepted,
					.first_end = accepted ? p->first_end : 0,
					.last_end = accepted ? p->last_end : 0};
		}
		window_saw_event_times(times, ntimes);
		recovery_note_messages(processed, nprocessed);
		pfree(times);
		pfree(processed);
	}
	if (merged)
		for (int i = 0; i < npending; i++)
		{
			Pending    *p = &pending[i];

			if (p->replay)
				continue;
			source_count(p->src, p->outcome);
			if (p->src != TA_SQL_SOURCE && p->outcome != TA_ACCEPTED)
				deadletter_queue(source_topic(p->src), source_partition(p->src), p->offset,
								 p->outcome, p->detail, p->data, p->len);
		}
	recovery_batch_end();
	if (merged)
		deadletter_unreserve(letters);

	/* the SQL path's dead letters: in the caller's transaction, after the lock */
	if (merged)
		for (int i = 0; i < npending; i++)
			if (pending[i].src == TA_SQL_SOURCE && pending[i].outcome != TA_ACCEPTED)
				deadletter_insert(pending[i].outcome, pending[i].detail,
								  pending[i].data, pending[i].len);
	npending = 0;
	return merged;
}
