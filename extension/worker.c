/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The background worker: waits for the extension, consumes Kafka
 *	  (consume.c) and flushes closed windows (flush.c), until SIGTERM.
 *
 * The loop, one step after the other:
 *	  1. signals: SIGHUP reloads the settings (and rebuilds the consumer if its
 *		 settings changed); SIGTERM leaves the loop, flushes what is closed
 *		 and exits; the postmaster's death ends the process at once;
 *	  2. consume: with Kafka, wait for messages inside librdkafka for at most
 *		 TA_KAFKA_WAIT_MS and serve a batch (consume.c); when shared memory is
 *		 full the batch stops there and comes back here, which spills the
 *		 oldest window (the rest of the batch is served next time);
 *	  3. requests from SQL (request.c): a rewind of the watermark, a flush;
 *	  4. flush if due (below);
 *	  5. the brokers' end offsets, once a second, for status.lag;
 *	  6. without Kafka, wait on the latch for trafficagg.flush_interval.
 *
 * A flush runs when the watermark passes the end of a window (so final rows
 * appear as soon as a window closes), when trafficagg.flush() asks for one,
 * when the dead-letter ring is half full, and every flush_interval if
 * positions moved (to keep the stored resume offsets recent).  A failed
 * flush is logged, recorded in status.last_error and retried; the data stay
 * in shared memory meanwhile.
 *
 * With trafficagg.workers = N > 1, N workers consume (steps 1 and 2, and
 * the end offsets), members of one consumer group, and one more process
 * leads: the writer serves the SQL requests, makes room when a worker asks
 * (request.c) and does every flush, and it consumes nothing, so that no
 * partition waits while a flush writes; it looks for closed windows every
 * TA_LEADER_WAIT_MS.  One worker alone does everything.
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "trafficagg.h"

#include "access/twophase.h"
#include "access/xlog.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/pmsignal.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "catalog.h"
#include "consume.h"
#include "deadletter.h"
#include "event.h"
#include "flush.h"
#include "groupcommit.h"
#include "ingest.h"
#include "recovery.h"
#include "request.h"
#include "status.h"
#include "store.h"
#include "window.h"
#include "worker.h"


/* messages consumed per batch */
#define TA_BATCH 1000
/* longest wait for Kafka messages before looking at signals and timers */
#define TA_KAFKA_WAIT_MS 100
/* how often to look for CREATE EXTENSION */
#define TA_EXTENSION_POLL_MS 2000
/* how often the writer of several workers looks for closed windows */
#define TA_LEADER_WAIT_MS 10

static volatile sig_atomic_t got_sigterm = false;
static MemoryContext worker_context;
static int	worker_index = 0;		/* 0: the leader (the writer of several) */

/* The limit a worker asked the writer for room for (spill warnings). */
static char room_setting[TA_SETTING_NAME_LEN];

/* The data path's processes: one, or trafficagg.workers and the writer. */
static int
worker_processes(void)
{
	return ta_workers == 1 ? 1 : ta_workers + 1;
}

/* Does this process consume?  (The writer only writes.) */
static bool
worker_consumes(void)
{
	return ta_workers == 1 || worker_index != 0;
}

/*
 * Process i's name (BGW_MAXLEN bytes), also its application_name:
 * "trafficagg worker" alone; "trafficagg writer" and "trafficagg worker 1"
 * to N of several.
 */
static void
worker_name(char *name, int i)
{
	if (ta_workers == 1)
		strlcpy(name, "trafficagg worker", BGW_MAXLEN);
	else if (i == 0)
		strlcpy(name, "trafficagg writer", BGW_MAXLEN);
	else
		snprintf(name, BGW_MAXLEN, "trafficagg worker %d", i);
}

static void
handle_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	got_sigterm = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

static void
worker_detach(int code, Datum arg)
{
	if (worker_index != 0)
		return;
	request_set_worker(NULL);
	status_set_worker_pid(0);
}

/*
 * The postmaster is gone: leave at once, as WL_EXIT_ON_PM_DEATH does, without
 * flushing or closing the consumer (either could wait on a broker), so that
 * the shared memory is released and the server can be started again.  The
 * loop waits inside librdkafka rather than on the latch, so it asks here.
 */
static void
exit_if_postmaster_died(void)
{
	if (!PostmasterIsAlive())
		proc_exit(1);
}

/*
 * On a hot standby the worker starts once the server accepts read-only
 * connections, consumes and writes nothing, and says once that it waits;
 * on promotion it goes on as on a primary (the offsets it resumes from
 * replicated with the rows).
 */
#define TA_STANDBY_POLL_MS 500

static void
wait_for_promotion(void)
{
	if (!RecoveryInProgress())
		return;
	ereport(LOG,
			(errmsg("trafficagg: this server is a standby: the worker consumes nothing and waits for promotion")));
	while (RecoveryInProgress())
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 TA_STANDBY_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (got_sigterm)
			proc_exit(1);
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
	ereport(LOG, (errmsg("trafficagg: the server was promoted: the worker starts")));
}

static void
begin_tx(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

static void
commit_tx(void)
{
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

static bool
extension_exists(void)
{
	bool		exists;

	begin_tx("trafficagg: looking for the extension");
	SPI_connect();
	if (SPI_execute("SELECT 1 FROM pg_catalog.pg_extension"
					" WHERE extname OPERATOR(pg_catalog.=) 'trafficagg'", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not query pg_extension");
	exists = SPI_processed > 0;
	SPI_finish();
	commit_tx();
	return exists;
}

/*
 * Run a flush (see TaFlushKind) in its own transaction.  Errors are caught:
 * logged, kept in status.last_error (and in *error, if given), and the flush
 * is retried later.  Returns success; *rows: the rows written.
 */
static bool
worker_flush(TaFlushKind kind, int64 rewind_to, int64 *rows, char *error, size_t error_len)
{
	TaFlushResult res;
	TimestampTz start = GetCurrentTimestamp();
	MemoryContext oldcxt = CurrentMemoryContext;
	bool		ok = true;
	static const char *const activity[] = {
		[FLUSH_CLOSED] = "trafficagg: flushing",
		[FLUSH_CLOSE_ALL] = "trafficagg: flushing every window",
		[FLUSH_SPILL_OLDEST] = "trafficagg: spilling the oldest window",
		[FLUSH_REWIND] = "trafficagg: rewinding the watermark",
	};

	memset(&res, 0, sizeof(res));
	if (error)
		error[0] = '\0';
	PG_TRY();
	{
		long		secs;
		int			usecs;

		/*
		 * offsets too while Kafka messages are in memory, consumer or not;
		 * and whenever Kafka is configured (the leader of several workers
		 * consumes nothing: its flushes must still hold back while
		 * partitions replay after a restart, before any is assigned)
		 */
		bool		with_kafka = consumer_active() || consumer_kafka_configured() ||
			recovery_has_positions();

		begin_tx(activity[kind]);
		flush_windows(kind, rewind_to, with_kafka, &res);
		if (ta_shared_group && with_kafka)
		{
			/* servers share the group: the offsets commit with the rows */
			groupcommit_commit(res.rows > 0 || res.rejected_taken > 0);
			pgstat_report_activity(STATE_IDLE, NULL);
		}
		else
			commit_tx();
		if (kind == FLUSH_REWIND)
		{
			char		t[32];

			watermark_rewind(rewind_to);
			ereport(LOG,
					(errmsg("trafficagg: watermark rewound to %s by trafficagg.rewind_watermark()",
							format_rfc3339(rewind_to, t, sizeof(t)))));
		}
		TimestampDifference(start, GetCurrentTimestamp(), &secs, &usecs);
		flush_after_commit(&res, secs * 1000.0 + usecs / 1000.0);
		consumer_commit_positions();
		if (res.spilled)
		{
			const char *setting = room_setting[0] ? room_setting : ingest_full_setting();

			status_spilled();
			ereport(WARNING,
					(errmsg("trafficagg shared memory is full (%s): the oldest open window was written early as partial rows",
							setting),
					 errhint("Raise %s and restart the server.", setting)));
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
		status_set_error(edata->message);
		if (kind == FLUSH_REWIND)
			ereport(LOG,
					(errmsg("trafficagg: rewinding the watermark failed: %s", edata->message)));
		else
			ereport(LOG,
					(errmsg("trafficagg: flush failed, will retry: %s", edata->message)));
		if (error)
			strlcpy(error, edata->message, error_len);
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	if (rows)
		*rows = res.rows;
	return ok;
}

/*
 * A batch found no room (ingest_full_setting() says where): make some.  The
 * leader flushes itself: a spill (groups, values or sketches full: what is
 * closed, else the oldest open window early as partial rows) or, for the
 * dead-letter ring, a plain flush; the others ask the leader
 * (room_request_submit) and wait for it.  While that fails it is tried again
 * every second; after TA_ROOM_PATIENCE_MS the consumer is restarted: Kafka
 * would take the partitions away anyway once it has not polled for
 * max.poll.interval.ms, and the messages it holds, not recorded, are read
 * again from the positions.  Returns false on SIGTERM.
 */
#define TA_ROOM_PATIENCE_MS 30000
#define TA_SHARED_RETRY_MS 10000

static void start_consumer(void);
static void exit_dropping_uncommitted(const char *why);

static bool
make_room(void)
{
	bool		spill = strcmp(ingest_full_setting(), "trafficagg.rejected_buffer") != 0;
	TimestampTz since = GetCurrentTimestamp();
	uint64		gen = 0;

	for (;;)
	{
		if (worker_index == 0)
		{
			if (worker_flush(spill ? FLUSH_SPILL_OLDEST : FLUSH_CLOSED, 0, NULL, NULL, 0))
				return true;
		}
		else
		{
			if (gen == 0)
				gen = room_request_submit(spill, ingest_full_setting());
			if (room_request_done(gen))
				return true;
		}
		CHECK_FOR_INTERRUPTS();
		exit_if_postmaster_died();
		if (got_sigterm)
			return false;
		if (TimestampDifferenceExceeds(since, GetCurrentTimestamp(), TA_ROOM_PATIENCE_MS))
		{
			if (ta_shared_group)
				exit_dropping_uncommitted("no room in shared memory for 30 s");
			ereport(LOG,
					(errmsg("trafficagg: no room in shared memory for %d s: restarting the Kafka consumer",
							TA_ROOM_PATIENCE_MS / 1000)));
			consumer_stop();
			start_consumer();
			return true;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 worker_index == 0 ? 1000L : 10L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * trafficagg.shared_group: what this server counted and did not commit can't
 * be kept once its partitions may have gone to another server, which
 * counts them again from the group's offsets.  Exit as a crash does: the
 * postmaster restarts every process of the server, shared memory with them,
 * and the worker resumes from the group's offsets.
 */
static void
exit_dropping_uncommitted(const char *why)
{
	ereport(LOG,
			(errmsg("trafficagg: %s: dropping what this server counted since its last flush", why),
			 errdetail("Servers share consumer group \"%s\": the server's processes restart, as after a crash, and the worker resumes from the group's offsets.",
					   ta_group_id)));
	proc_exit(2);
}

/*
 * In a PG_CATCH: the error, copied into the worker's context (current on
 * return), the transaction aborted, and status.last_error set.
 */
static ErrorData *
caught_error(void)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(worker_context);
	edata = CopyErrorData();
	FlushErrorState();
	AbortCurrentTransaction();
	MemoryContextSwitchTo(worker_context);
	status_set_error(edata->message);
	return edata;
}

static void
start_consumer(void)
{
	PG_TRY();
	{
		if (ta_shared_group && !groupcommit_ready())
			groupcommit_start();
		begin_tx("trafficagg: starting the Kafka consumer");
		SPI_connect();
		catalog_sync();
		SPI_finish();
		consumer_start(worker_consumes());
		commit_tx();
	}
	PG_CATCH();
	{
		/* a bad setting: report and keep serving SQL ingest and flushes */
		ErrorData  *edata = caught_error();

		/* (the consumers report the brokers' state; the leader has none) */
		if (worker_consumes())
			status_set_broker_state("error");
		ereport(WARNING,
				(errmsg("trafficagg: Kafka consumer not started: %s", edata->message),
				 edata->hint ? errhint("%s", edata->hint) : 0));
		consumer_stop();
	}
	PG_END_TRY();
}

/*
 * Servers sharing the group: before anything flushes, groupcommit_start()
 * (a flush a crash left prepared holds the flush lock: nothing can flush
 * until it is decided), tried every TA_SHARED_RETRY_MS until it succeeds.
 * Without brokers it succeeds at once unless flushes were left prepared.
 */
static void
start_group_commit(void)
{
	for (;;)
	{
		volatile bool ok = true;

		PG_TRY();
		{
			groupcommit_start();
		}
		PG_CATCH();
		{
			ErrorData  *edata = caught_error();

			ereport(WARNING,
					(errmsg("trafficagg: not consuming, trying again in %d s: %s",
							TA_SHARED_RETRY_MS / 1000, edata->message),
					 edata->hint ? errhint("%s", edata->hint) : 0));
			FreeErrorData(edata);
			ok = false;
		}
		PG_END_TRY();
		if (ok)
			return;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 TA_SHARED_RETRY_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (got_sigterm)
			proc_exit(1);
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
}

/* Index of the last window end at or before w (windows closed by w). */
static int64
closed_index(int64 w)
{
	int64		slide = ta_slide_ms > 0 ? ta_slide_ms : ta_window_ms;
	int64		x = w - ta_window_ms;

	if (w == TA_NO_TIME)
		return PG_INT64_MIN;
	return x >= 0 ? x / slide : -((-x + slide - 1) / slide);
}

void
trafficagg_worker_main(Datum arg)
{
	int64		flushed_index = PG_INT64_MIN;
	int			served_last = 0;
	TimestampTz last_flush = GetCurrentTimestamp();
	TimestampTz last_end_offsets = 0;
	TimestampTz handoff_since = 0;
	TimestampTz last_start_try = GetCurrentTimestamp();
	bool		logged_waiting = false;

	worker_index = DatumGetInt32(arg);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, handle_sigterm);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(ta_database, NULL, 0);
	{
		char		name[BGW_MAXLEN];

		worker_name(name, worker_index);
		pgstat_report_appname(name);
	}

	/*
	 * The worker runs as the bootstrap superuser: every statement it sends
	 * resolves names with an always-secure search_path (as autovacuum does),
	 * so that objects a role plants in a schema it can write to (public, in
	 * databases created before PostgreSQL 15) are never picked up.  Its SQL is
	 * schema-qualified besides (flush.c, recovery).
	 */
	SetConfigOption("search_path", "", PGC_SUSET, PGC_S_OVERRIDE);
	worker_context = AllocSetContextCreate(TopMemoryContext, "trafficagg worker",
										   ALLOCSET_DEFAULT_SIZES);

	wait_for_promotion();
	if (worker_index == 0)
		status_set_worker_pid(MyProcPid);
	on_shmem_exit(worker_detach, (Datum) 0);

	/* wait for CREATE EXTENSION trafficagg */
	while (!got_sigterm && !extension_exists())
	{
		if (!logged_waiting)
			ereport(LOG,
					(errmsg("trafficagg: waiting for CREATE EXTENSION trafficagg in database \"%s\"",
							ta_database)));
		logged_waiting = true;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 TA_EXTENSION_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
	if (got_sigterm)
		proc_exit(1);			/* started again, as below */

	/*
	 * From now on trafficagg.flush() and rewind_watermark() go through the
	 * leader: it has offsets to write with the rows.
	 */
	if (worker_index == 0)
		request_set_worker(MyLatch);
	/*
	 * Servers sharing the group: a flush a crash left prepared holds the
	 * flush lock, and nothing flushes until it is decided (groupcommit.c)
	 */
	if (ta_shared_group)
		start_group_commit();
	begin_tx("trafficagg: waiting for flushes begun elsewhere");
	flush_wait_for_backends();
	commit_tx();

	/*
	 * Servers sharing the group: a worker that restarted alone (an ERROR
	 * that ended the last one) finds in shared memory what that one counted
	 * and did not commit; the group's offsets, where it resumes, don't cover
	 * it.
	 */
	if (ta_shared_group && store_group_count() > 0 && recovery_has_positions())
		exit_dropping_uncommitted("the worker restarted with counts it had not committed");
	start_consumer();
	if (ta_workers > 1 && worker_index == 0)
		ereport(LOG, (errmsg("trafficagg writer started in database \"%s\" (writes every flush of %d workers, consumes nothing)",
							 ta_database, ta_workers)));
	else if (ta_workers > 1)
		ereport(LOG, (errmsg("trafficagg worker %d of %d started in database \"%s\"",
							 worker_index, ta_workers, ta_database)));
	else
		ereport(LOG, (errmsg("trafficagg worker started in database \"%s\"", ta_database)));

	while (!got_sigterm)
	{
		int			served;
		uint64		ticket;
		bool		memory_full;
		bool		close_all;
		int64		rewind_to;
		int64		rows;
		char		error[TA_ERROR_LEN];
		int64		w;
		bool		due;

		MemoryContextReset(worker_context);
		MemoryContextSwitchTo(worker_context);
		CHECK_FOR_INTERRUPTS();
		exit_if_postmaster_died();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			if (consumer_settings_changed())
			{
				if (worker_index == 0 && !worker_flush(FLUSH_CLOSED, 0, NULL, NULL, 0) &&
					ta_shared_group && consumer_active())
					exit_dropping_uncommitted("the flush before the consumer's restart failed");
				consumer_stop();
				groupcommit_stop();
				start_consumer();
			}
			else
			{
				begin_tx("trafficagg: reloading the aggregate catalog");
				SPI_connect();
				catalog_sync();
				SPI_finish();
				commit_tx();
			}
		}

		/*
		 * trafficagg.shared_group: a consumer that could not start (the
		 * brokers away while a flush left prepared had to be decided, for
		 * one) is tried again every TA_SHARED_RETRY_MS: until it starts,
		 * this server takes no partition
		 */
		if (ta_shared_group && !consumer_active() && ta_brokers[0] != '\0' &&
			TimestampDifferenceExceeds(last_start_try, GetCurrentTimestamp(), TA_SHARED_RETRY_MS))
		{
			last_start_try = GetCurrentTimestamp();
			start_consumer();
		}

		/* consume */
		served = consumer_poll(TA_BATCH, served_last >= TA_BATCH ? 0 :
							   Min(TA_KAFKA_WAIT_MS, ta_flush_interval_ms), &memory_full);
		served_last = memory_full ? TA_BATCH : served;	/* don't wait after a spill */
		if (memory_full && !make_room())
			break;

		/*
		 * trafficagg.shared_group: partitions revoked, to be handed off once
		 * everything counted is written and the offsets committed with it
		 * (consume.c's rebalance_cb); until then nothing is consumed
		 */
		if (consumer_handoff_pending())
		{
			if (handoff_since == 0)
				handoff_since = GetCurrentTimestamp();
			if (worker_flush(FLUSH_CLOSED, 0, NULL, NULL, 0))
			{
				consumer_handoff_done();
				handoff_since = 0;
				last_flush = GetCurrentTimestamp();
			}
			else if (TimestampDifferenceExceeds(handoff_since, GetCurrentTimestamp(), TA_ROOM_PATIENCE_MS))
				exit_dropping_uncommitted("revoked partitions could not be handed off for 30 s");
			else
				(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 1000L, PG_WAIT_EXTENSION);
			continue;
		}

		/* the leader: room another worker asked for */
		if (worker_index == 0)
		{
			bool		spill;
			uint64		gen = room_request_take(&spill, room_setting);

			if (gen != 0)
			{
				worker_flush(spill ? FLUSH_SPILL_OLDEST : FLUSH_CLOSED, 0, NULL, NULL, 0);
				room_request_complete(gen);
			}
			room_setting[0] = '\0';
		}

		/* the others only consume (and spill); the leader does the rest */
		if (worker_index != 0)
		{
			/*
			 * once a second: positions to Kafka (for lag monitoring; the
			 * leader's flushes can't, it has no consumer), and the end
			 * offsets when not reading a backlog (see below)
			 */
			if (TimestampDifferenceExceeds(last_end_offsets, GetCurrentTimestamp(), 1000))
			{
				if (served_last < TA_BATCH)
					consumer_refresh_end_offsets();
				consumer_commit_positions();
				last_end_offsets = GetCurrentTimestamp();
			}
			if (!consumer_active())
				(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 ta_flush_interval_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			continue;
		}

		/* trafficagg.rewind_watermark(): served before anything else */
		if ((ticket = rewind_request_take(&rewind_to)) != 0)
		{
			bool		ok = worker_flush(FLUSH_REWIND, rewind_to, &rows, error, sizeof(error));

			rewind_request_complete(ticket, ok, error);
			last_flush = GetCurrentTimestamp();
			if (ok)
				flushed_index = closed_index(watermark_get());
		}

		/* decide whether to flush */
		ticket = flush_request_take(&close_all);
		due = ticket != 0 || deadletter_ring_half_full();
		w = watermark_get();
		if (closed_index(w) > flushed_index)
			due = true;
		if (TimestampDifferenceExceeds(last_flush, GetCurrentTimestamp(), ta_flush_interval_ms))
			due = true;

		if (due)
		{
			bool		ok = worker_flush(close_all ? FLUSH_CLOSE_ALL : FLUSH_CLOSED, 0,
										  &rows, error, sizeof(error));

			last_flush = GetCurrentTimestamp();
			if (ok)
				flushed_index = closed_index(watermark_get());
			if (ticket != 0)
				flush_request_complete(ticket, ok, rows, error);
		}

		/*
		 * the brokers' end offsets, for status.lag: once a second, when not
		 * reading a backlog (then every fetch brings the end offsets along,
		 * and a round trip to the brokers would only slow the catch-up)
		 */
		if (served_last < TA_BATCH &&
			TimestampDifferenceExceeds(last_end_offsets, GetCurrentTimestamp(), 1000))
		{
			consumer_refresh_end_offsets();
			last_end_offsets = GetCurrentTimestamp();
		}

		if (consumer_active())
		{
			/* the next consumer_poll waits; just consume the latch */
			ResetLatch(MyLatch);
			continue;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 worker_consumes() ? ta_flush_interval_ms
						 : Min(TA_LEADER_WAIT_MS, ta_flush_interval_ms),
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}

	/*
	 * SIGTERM: write what is closed (every window, with trafficagg.shared_group),
	 * then leave the group
	 */
	if (worker_index == 0 && !worker_flush(FLUSH_CLOSED, 0, NULL, NULL, 0) &&
		ta_shared_group && consumer_active())
		exit_dropping_uncommitted("the last flush failed");
	consumer_stop();
	groupcommit_stop();
	ereport(LOG, (errmsg("trafficagg worker stopped")));

	/*
	 * Exit code 1: the postmaster starts the worker again after
	 * bgw_restart_time unless the server is shutting down, so that a worker
	 * stopped alone (pg_terminate_backend) comes back; its partitions move to
	 * the other workers meanwhile.
	 */
	proc_exit(1);
}

void
worker_register(void)
{
	for (int i = 0; i < worker_processes(); i++)
	{
		BackgroundWorker worker;

		memset(&worker, 0, sizeof(worker));
		worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		/* (on a standby too: it waits there for promotion, saying so) */
		worker.bgw_start_time = BgWorkerStart_ConsistentState;
		worker.bgw_restart_time = 5;
		worker.bgw_main_arg = Int32GetDatum(i);
		strlcpy(worker.bgw_library_name, "trafficagg", BGW_MAXLEN);
		strlcpy(worker.bgw_function_name, "trafficagg_worker_main", BGW_MAXLEN);
		worker_name(worker.bgw_name, i);
		strlcpy(worker.bgw_type, "trafficagg worker", BGW_MAXLEN);
		RegisterBackgroundWorker(&worker);
	}
}
