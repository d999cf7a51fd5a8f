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
#include "utils/timestamp.h"

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

/*
 * Process one message of source src (offset: its Kafka offset, or -1;
 * received_ms: its Kafka timestamp, or TA_NO_TIME; msg: its value, and
 * from Kafka its key, timestamp and headers, which the field mapping may
 * read), under the field mapping in force (catalog.c).
 * replay: the message was read before the restart (see the file header).
 * hold: some partition is still replaying; then no window beyond the stored
 * watermark is final yet (flushes hold them back), so fresh messages are
 * judged against the stored watermark too, as replayed ones are: a message
 * judged late now must stay late if it is read again after another crash.
 * Returns its outcome; *full is set (and nothing is recorded) when shared
 * memory had no room for its groups: the caller makes room and retries.
 */
TaOutcome
ingest_message(int src, int64 offset, int64 received_ms, const TaMessage *msg,
			   bool replay, bool hold, bool *full)
{
	const char *data = msg->data;
	size_t		len = msg->len;
	TaEvent		ev;
	char		detail[TA_DETAIL_LEN];
	TaOutcome	outcome;
	int64		starts[TA_MAX_WINDOWS_PER_EVENT];
	int			nstarts = 0;
	int64		watermark = watermark_get();
	int64		cutoff;
	int64		first_end = 0;
	char		t1[32],
				t2[32],
				t3[32];

	*full = false;
	if (replay || hold)
	{
		cutoff = watermark_replay_cutoff();
	}
	else
		cutoff = watermark;
	outcome = event_parse(catalog_mapping(), msg, &ev, detail, sizeof(detail));
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
				if (!recovery_skip_window(src, offset, starts[w]))
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
		deadletter_insert(outcome, detail, data, len);

	if (outcome == TA_ACCEPTED || outcome == TA_LATE)
		window_saw_event_time(src, ev.ts_ms);
	if (src != TA_SQL_SOURCE)
		recovery_note_message(src, offset, outcome == TA_ACCEPTED,
							  first_end, outcome == TA_ACCEPTED ? window_end(starts[nstarts - 1]) : 0);
	if (!replay)
	{
		source_count(src, outcome);
		if (src != TA_SQL_SOURCE && outcome != TA_ACCEPTED)
			deadletter_queue(source_topic(src), source_partition(src), offset, outcome,
							 detail, data, len);
	}

	if (outcome == TA_ACCEPTED || outcome == TA_LATE)
		event_free(&ev);
	return outcome;
}
