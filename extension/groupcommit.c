/*-------------------------------------------------------------------------
 *
 * groupcommit.c
 *	  Servers sharing one consumer group (trafficagg.shared_group): every
 *	  flush commits its rows in PostgreSQL and the partitions' offsets in
 *	  Kafka's consumer group as one two-phase commit.
 *
 * Why.  Kafka's rebalance moves a partition to another server, which starts
 * at the group's committed offset.  That offset must be exactly where the
 * rows this server committed end: rows committed without the offset would be
 * counted again by the next owner, an offset without the rows would be lost.
 * Every flush of a shared group writes every window, the open ones as partial
 * rows that later rows merge into (flush.c), so that the committed position
 * of a partition is all there is to know about it: nothing of it is left in
 * this server's memory, and nothing needs replaying.
 *
 * The protocol (groupcommit_commit, in place of the flush's COMMIT):
 *	 1. the flush's transaction (rows, kafka_offsets, dead letters) is
 *		PREPAREd as "<transactional id>-<time>";
 *	 2. a Kafka transaction of this server's transactional producer
 *		(transactional.id "trafficagg-<group_id>-<system identifier>") sends
 *		one record to trafficagg.ledger_topic, keyed by the transactional id,
 *		with the prepared transaction's name as its value, and the positions
 *		of the partitions the consumer owns as the group's offsets
 *		(send_offsets_to_transaction, with the generation the partitions were
 *		assigned under: the brokers refuse them once the group moved on; none
 *		at all once librdkafka found the session timed out), and commits;
 *	 3. COMMIT PREPARED.
 * If step 2 fails and is aborted: ROLLBACK PREPARED, the flush failed, its
 * groups are still in memory, and the next flush writes them.  But if the
 * consumer was fenced out of the group meanwhile (the partitions are another
 * server's now), or if the outcome of step 2 is unknown, what this server
 * counted since its last commit can't be kept: the worker exits with a
 * crash's exit code, the postmaster restarts the server's processes (shared
 * memory with them), and the worker resumes from the group's offsets.
 *
 * In doubt.  A crash between 1 and 3 leaves the prepared transaction behind
 * (it survives restarts and replicates to standbys).  groupcommit_start(),
 * before the worker consumes or flushes, initializes the transactional
 * producer (the brokers then complete or abort the last Kafka transaction of
 * this transactional id) and reads the ledger: a committed record naming the
 * prepared transaction means Kafka has its offsets, and it is COMMITted;
 * otherwise it is ROLLed BACK.
 *
 * Threads.  As in consume.c: librdkafka's callbacks are served in the
 * worker's thread only (log.queue, rd_kafka_poll here).
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "trafficagg.h"

#include <librdkafka/rdkafka.h>

#include "access/twophase.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "storage/ipc.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "consume.h"
#include "groupcommit.h"

/* how long a Kafka transaction's steps, and reading the ledger, may take */
#define TA_TXN_WAIT_MS 30000
#define TA_LEDGER_WAIT_MS 60000

static rd_kafka_t *producer = NULL;
static bool ready = false;		/* groupcommit_start() succeeded */
/* trafficagg.debug_crash_at when this start decided a flush left prepared */
static char decided_under[32] = "";
static char txn_id[NAMEDATALEN + 64];

/* the offsets the last Kafka transaction committed (NULL: none since start) */
static rd_kafka_topic_partition_list_t *last_committed = NULL;


/* Serve the producer's queued callbacks (logs, errors, delivery reports). */
static void
serve_producer(void)
{
	if (producer != NULL)
		rd_kafka_poll(producer, 0);
}

/*
 * Does the ledger hold a committed record of this server naming each of the
 * given prepared transactions?  found[i] for gids[i].  Reads every partition
 * from its start up to its end as it was when the reading began (a
 * read_committed consumer; a record of this server, if committed, is below
 * those ends: the producer was initialized before).  ERRORs when the ledger
 * can't be read, or does not exist (checked with ngids 0 too): then nothing
 * is decided.
 */
static void
ledger_find(char **gids, int ngids, bool *found)
{
	rd_kafka_conf_t *conf = consumer_client_conf();
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	const rd_kafka_metadata_t *md;
	rd_kafka_resp_err_t err;
	rd_kafka_topic_partition_list_t *parts;
	int64	   *ends;
	int64	   *reached;
	char		errstr[512];
	char		group[NAMEDATALEN + 80];
	TimestampTz deadline;
	int			nparts;

	memset(found, 0, Max(ngids, 1) * sizeof(bool));
	snprintf(group, sizeof(group), "%s-ledger-reader", txn_id);
	consumer_apply_user_options(conf);
	/* (after the user's options: what the decision rests on) */
	consumer_conf_set(conf, "group.id", group);
	consumer_conf_set(conf, "isolation.level", "read_committed");
	consumer_conf_set(conf, "enable.auto.commit", "false");
	consumer_conf_set(conf, "enable.partition.eof", "true");
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (rk == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not create a Kafka consumer to read trafficagg.ledger_topic: %s", errstr)));
	rd_kafka_set_log_queue(rk, NULL);
	rd_kafka_poll_set_consumer(rk);

	rkt = rd_kafka_topic_new(rk, ta_ledger_topic, NULL);
	err = rd_kafka_metadata(rk, 0, rkt, &md, TA_TXN_WAIT_MS);
	rd_kafka_topic_destroy(rkt);
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
		md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
	{
		/*
		 * The ledger must exist before the first flush (checked at every
		 * start): missing now, it was deleted or the setting changed, and
		 * nothing can be decided.
		 */
		rd_kafka_metadata_destroy(md);
		rd_kafka_destroy(rk);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("Kafka topic \"%s\" (trafficagg.ledger_topic) does not exist", ta_ledger_topic),
				 errhint("Create it, compacted: kafka-topics.sh --create --topic %s --partitions 1 --config cleanup.policy=compact.",
						 ta_ledger_topic)));
	}
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 || md->topics[0].err)
	{
		const char *why = err ? rd_kafka_err2str(err)
			: md->topic_cnt != 1 ? "no metadata" : rd_kafka_err2str(md->topics[0].err);

		if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
			rd_kafka_metadata_destroy(md);
		rd_kafka_destroy(rk);
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not read Kafka topic \"%s\" (trafficagg.ledger_topic): %s",
						ta_ledger_topic, why)));
	}
	nparts = ngids > 0 ? md->topics[0].partition_cnt : 0;
	parts = rd_kafka_topic_partition_list_new(Max(nparts, 1));
	ends = palloc0(Max(nparts, 1) * sizeof(int64));
	reached = palloc0(Max(nparts, 1) * sizeof(int64));
	for (int i = 0; i < nparts; i++)
	{
		int64		lo,
					hi;
		int32		p = md->topics[0].partitions[i].id;

		err = rd_kafka_query_watermark_offsets(rk, ta_ledger_topic, p, &lo, &hi, TA_TXN_WAIT_MS);
		if (err)
		{
			rd_kafka_metadata_destroy(md);
			rd_kafka_topic_partition_list_destroy(parts);
			rd_kafka_destroy(rk);
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not read the end of partition %d of \"%s\" (trafficagg.ledger_topic): %s",
							p, ta_ledger_topic, rd_kafka_err2str(err))));
		}
		ends[parts->cnt] = hi;	/* (so ends[k] is parts->elems[k]'s) */
		if (hi > lo)
			rd_kafka_topic_partition_list_add(parts, ta_ledger_topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
	}
	rd_kafka_metadata_destroy(md);

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), TA_LEDGER_WAIT_MS);
	if (parts->cnt > 0)
		rd_kafka_assign(rk, parts);
	for (;;)
	{
		rd_kafka_message_t *m;
		bool		done = true;

		/*
		 * A partition is read once the position or the end reached (as a
		 * read_committed consumer sees it: before any transaction still
		 * open) is at its end: the position alone may stop short of the
		 * last transaction's commit marker, never delivered.
		 */
		if (parts->cnt > 0)
		{
			rd_kafka_topic_partition_list_t *pos = rd_kafka_topic_partition_list_copy(parts);

			rd_kafka_position(rk, pos);
			for (int i = 0; i < parts->cnt; i++)
				if (pos->elems[i].offset < ends[i] && reached[i] < ends[i])
					done = false;
			rd_kafka_topic_partition_list_destroy(pos);
		}
		if (done)
			break;
		if (GetCurrentTimestamp() > deadline)
		{
			rd_kafka_topic_partition_list_destroy(parts);
			rd_kafka_consumer_close(rk);
			rd_kafka_destroy(rk);
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not read Kafka topic \"%s\" (trafficagg.ledger_topic) to its end within %d s",
							ta_ledger_topic, TA_LEDGER_WAIT_MS / 1000)));
		}
		m = rd_kafka_consumer_poll(rk, 200);
		if (m == NULL)
			continue;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
		{
			for (int i = 0; i < parts->cnt; i++)
				if (parts->elems[i].partition == m->partition)
					reached[i] = Max(reached[i], m->offset);
		}
		else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR &&
			m->key_len == strlen(txn_id) && memcmp(m->key, txn_id, m->key_len) == 0)
		{
			for (int i = 0; i < ngids; i++)
				if (m->len == strlen(gids[i]) && memcmp(m->payload, gids[i], m->len) == 0)
					found[i] = true;
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_topic_partition_list_destroy(parts);
	pfree(ends);
	pfree(reached);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
}

/*
 * Prepared transactions a flush of this server left behind: committed if
 * the ledger says Kafka has their offsets, rolled back otherwise.  (The
 * ledger is looked up, and must exist, even when there are none.)
 */
static void
resolve_in_doubt(void)
{
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "trafficagg in-doubt flushes",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);

	PG_TRY();
	{
		char	  **gids;
		bool	   *found;
		int			n;
		char		prefix[sizeof(txn_id) + 1];
		Oid			types[1] = {TEXTOID};
		Datum		values[1];

		snprintf(prefix, sizeof(prefix), "%s-", txn_id);
		values[0] = CStringGetTextDatum(prefix);
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		SPI_connect();
		if (SPI_execute_with_args("SELECT gid FROM pg_catalog.pg_prepared_xacts"
								  " WHERE gid OPERATOR(pg_catalog.^@) $1"
								  " AND database OPERATOR(pg_catalog.=) pg_catalog.current_database()"
								  " ORDER BY prepared",
								  1, types, values, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read pg_prepared_xacts");
		n = (int) SPI_processed;
		gids = MemoryContextAlloc(cxt, Max(n, 1) * sizeof(char *));
		for (int i = 0; i < n; i++)
			gids[i] = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[i],
															SPI_tuptable->tupdesc, 1));
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		MemoryContextSwitchTo(cxt);

		found = palloc(Max(n, 1) * sizeof(bool));
		ledger_find(gids, n, found);
		for (int i = 0; i < n; i++)
		{
			StartTransactionCommand();
			FinishPreparedTransaction(gids[i], found[i]);
			CommitTransactionCommand();
			MemoryContextSwitchTo(cxt);
			strlcpy(decided_under, ta_debug_crash_at ? ta_debug_crash_at : "", sizeof(decided_under));
			ereport(LOG,
					(errmsg("trafficagg: flush \"%s\", left prepared by a crash, %s",
							gids[i], found[i]
							? "committed: Kafka has its offsets"
							: "rolled back: Kafka does not have its offsets")));
		}
	}
	PG_FINALLY();
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
	}
	PG_END_TRY();
}

/* Are there flushes of this server left prepared?  (In a transaction.) */
static int
count_in_doubt(void)
{
	char		prefix[sizeof(txn_id) + 1];
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	int			n;

	snprintf(prefix, sizeof(prefix), "%s-", txn_id);
	values[0] = CStringGetTextDatum(prefix);
	SPI_connect();
	if (SPI_execute_with_args("SELECT 1 FROM pg_catalog.pg_prepared_xacts"
							  " WHERE gid OPERATOR(pg_catalog.^@) $1"
							  " AND database OPERATOR(pg_catalog.=) pg_catalog.current_database()",
							  1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_prepared_xacts");
	n = (int) SPI_processed;
	SPI_finish();
	return n;
}

/*
 * Before the worker flushes anything, outside a transaction: the settings
 * checked, the transactional producer started, the ledger found, and the
 * flushes a crash left prepared decided (until then nothing can flush: a
 * prepared flush holds the flush lock and the offsets' rows).  ERRORs if any
 * of that fails; the caller tries again later.  Without brokers there is no
 * producer to start, and a flush left prepared can't be decided: an ERROR
 * then.
 */
void
groupcommit_start(void)
{
	rd_kafka_conf_t *conf;
	rd_kafka_error_t *error;
	char		errstr[512];

	groupcommit_stop();
	if (ta_workers != 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("trafficagg.shared_group needs trafficagg.workers = 1"),
				 errhint("Set trafficagg.workers = 1 and restart the server.")));
	if (max_prepared_xacts < 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("trafficagg.shared_group needs max_prepared_transactions of at least 1"),
				 errhint("Set max_prepared_transactions = 2 (or more, for other uses) and restart the server.")));
	snprintf(txn_id, sizeof(txn_id), "trafficagg-%s-" UINT64_FORMAT,
			 ta_group_id, GetSystemIdentifier());
	if (ta_brokers[0] == '\0')
	{
		int			n;

		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		n = count_in_doubt();
		PopActiveSnapshot();
		CommitTransactionCommand();
		if (n > 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("%d flush(es) left prepared by a crash can't be decided without trafficagg.brokers", n),
					 errhint("Set trafficagg.brokers: the ledger in Kafka says whether each one committed.")));
		return;
	}

	conf = consumer_client_conf();
	consumer_apply_user_options(conf);
	/* (after the user's options: what the protocol rests on) */
	consumer_conf_set(conf, "transactional.id", txn_id);
	consumer_conf_set(conf, "transaction.timeout.ms", "60000");
	producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (producer == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not create the Kafka producer of trafficagg.shared_group: %s", errstr)));
	rd_kafka_set_log_queue(producer, NULL);

	error = rd_kafka_init_transactions(producer, TA_TXN_WAIT_MS);
	serve_producer();
	if (error)
	{
		char		msg[512];

		strlcpy(msg, rd_kafka_error_string(error), sizeof(msg));
		rd_kafka_error_destroy(error);
		groupcommit_stop();
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not start Kafka transactions for trafficagg.shared_group: %s", msg),
				 errhint("The brokers must support transactions (Kafka 2.5 or later; a single broker needs transaction.state.log.replication.factor=1 and transaction.state.log.min.isr=1).")));
	}
	resolve_in_doubt();
	ready = true;
	ereport(LOG,
			(errmsg("trafficagg: sharing consumer group \"%s\" with other servers, as Kafka transactional id \"%s\"",
					ta_group_id, txn_id)));
}

/* Has groupcommit_start() succeeded (since the last groupcommit_stop())? */
bool
groupcommit_ready(void)
{
	return ready;
}

void
groupcommit_stop(void)
{
	ready = false;
	if (last_committed != NULL)
		rd_kafka_topic_partition_list_destroy(last_committed);
	last_committed = NULL;
	if (producer == NULL)
		return;
	serve_producer();
	rd_kafka_destroy(producer);
	producer = NULL;
}

/*
 * An error of the offsets' commit saying that the consumer is not in the
 * group's current generation any more: its partitions are someone else's.
 */
static bool
fenced_from_group(rd_kafka_resp_err_t code)
{
	return code == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION ||
		code == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID ||
		code == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID ||
		code == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS ||
		code == RD_KAFKA_RESP_ERR__FENCED ||
		code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
		code == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH;
}

typedef enum
{
	KAFKA_COMMITTED,
	KAFKA_ABORTED,				/* nothing of it is in Kafka */
	KAFKA_FENCED,				/* aborted, and the partitions are gone */
	KAFKA_UNKNOWN				/* it may or may not have committed */
} KafkaOutcome;

/* Step 2: the ledger record and the offsets, in one Kafka transaction. */
static KafkaOutcome
kafka_commit(const char *gid, rd_kafka_topic_partition_list_t *offsets,
			 rd_kafka_consumer_group_metadata_t *md, char *why, size_t whylen)
{
	rd_kafka_error_t *error;
	rd_kafka_resp_err_t err;
	KafkaOutcome outcome = KAFKA_COMMITTED;

	why[0] = '\0';
	error = rd_kafka_begin_transaction(producer);
	if (error == NULL)
	{
		err = rd_kafka_producev(producer,
								RD_KAFKA_V_TOPIC(ta_ledger_topic),
								RD_KAFKA_V_KEY(txn_id, strlen(txn_id)),
								RD_KAFKA_V_VALUE((void *) gid, strlen(gid)),
								RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
								RD_KAFKA_V_END);
		if (err)
			error = rd_kafka_error_new(err, "could not send the ledger record: %s", rd_kafka_err2str(err));
		else if (offsets != NULL && offsets->cnt > 0)
		{
			/* a retriable error (a timeout) may be resumed by calling again */
			for (int tries = 0;; tries++)
			{
				error = rd_kafka_send_offsets_to_transaction(producer, offsets, md, TA_TXN_WAIT_MS);
				if (error == NULL || !rd_kafka_error_is_retriable(error) || tries == 3)
					break;
				rd_kafka_error_destroy(error);
			}
		}
		/* commit only once the offsets are in the transaction */
		for (int tries = 0; error == NULL; tries++)
		{
			error = rd_kafka_commit_transaction(producer, TA_TXN_WAIT_MS);
			if (error == NULL || !rd_kafka_error_is_retriable(error) || tries == 3)
				break;
			rd_kafka_error_destroy(error);
			error = NULL;
		}
		if (error != NULL)
		{
			strlcpy(why, rd_kafka_error_string(error), whylen);
			if (rd_kafka_error_txn_requires_abort(error))
			{
				rd_kafka_error_t *aerror = rd_kafka_abort_transaction(producer, TA_TXN_WAIT_MS);

				if (aerror != NULL)
				{
					outcome = KAFKA_UNKNOWN;
					rd_kafka_error_destroy(aerror);
				}
				else
					outcome = fenced_from_group(rd_kafka_error_code(error))
						? KAFKA_FENCED : KAFKA_ABORTED;
			}
			else
				outcome = KAFKA_UNKNOWN;
			rd_kafka_error_destroy(error);
		}
	}
	else
	{
		/* nothing was sent */
		strlcpy(why, rd_kafka_error_string(error), whylen);
		outcome = rd_kafka_error_is_fatal(error) ? KAFKA_FENCED : KAFKA_ABORTED;
		rd_kafka_error_destroy(error);
	}
	serve_producer();
	return outcome;
}

static bool steps_2_and_3(const char *gid, rd_kafka_topic_partition_list_t *offsets,
						  rd_kafka_consumer_group_metadata_t *md, char *why, size_t whylen);

/*
 * trafficagg.debug_crash_at, for tests: crash here, unless this start of the
 * worker decided a flush left prepared while the setting said the same (so
 * that the restart a crash causes does not crash again before the test
 * resets the setting).
 */
static void
debug_crash(const char *where, const char *gid)
{
	if (ta_debug_crash_at == NULL || strcmp(ta_debug_crash_at, where) != 0 ||
		strcmp(decided_under, where) == 0)
		return;
	ereport(LOG,
			(errmsg("trafficagg: trafficagg.debug_crash_at: crashing with flush \"%s\" %s",
					gid, where)));
	proc_exit(2);
}

/* Are two lists of offsets the same, in the same order? */
static bool
same_offsets(const rd_kafka_topic_partition_list_t *a, const rd_kafka_topic_partition_list_t *b)
{
	if (a == NULL || b == NULL || a->cnt != b->cnt)
		return false;
	for (int i = 0; i < a->cnt; i++)
		if (a->elems[i].partition != b->elems[i].partition ||
			a->elems[i].offset != b->elems[i].offset ||
			strcmp(a->elems[i].topic, b->elems[i].topic) != 0)
			return false;
	return true;
}

/*
 * In place of the flush's COMMIT: steps 1 to 3 of the file header.  The
 * caller is in the flush's transaction, with its snapshot pushed; returns
 * outside any transaction, or ERRORs (the flush failed: nothing of it is in
 * the tables or in Kafka), or does not return at all (see the header).
 * wrote: the flush wrote rows or dead letters.  If it did not, and the
 * positions are those last committed to the group, it just commits: an idle
 * server makes no Kafka transaction (and no ledger record) per flush.
 */
void
groupcommit_commit(bool wrote)
{
	char		gid[GIDSIZE];
	char		why[512];
	bool		aborted = false;
	rd_kafka_consumer_group_metadata_t *md = NULL;
	rd_kafka_topic_partition_list_t *offsets;

	if (!ready)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("trafficagg.shared_group has no Kafka producer: the flush can't commit offsets"),
				 errhint("See the server log for why the Kafka consumer did not start.")));
	offsets = consumer_owned_positions(&md);
	if (!wrote && same_offsets(offsets, last_committed))
	{
		if (offsets != NULL)
			rd_kafka_topic_partition_list_destroy(offsets);
		PopActiveSnapshot();
		CommitTransactionCommand();
		return;
	}

	/*
	 * The session timed out (librdkafka says so before the brokers would
	 * refuse the offsets): the partitions may be another server's already.
	 * (The offsets are fenced by the generation they were assigned under in
	 * any case, consume.c.)
	 */
	if (consumer_assignment_lost())
	{
		ereport(LOG,
				(errmsg("trafficagg: this server is no longer a member of consumer group \"%s\" (its session timed out): the flush is not committed",
						ta_group_id),
				 errdetail("What it counted since its last flush is another server's to count now: the server's processes restart, as after a crash, and the worker resumes from the group's offsets.")));
		proc_exit(2);
	}
	snprintf(gid, sizeof(gid), "%s-" INT64_FORMAT, txn_id, (int64) GetCurrentTimestamp());

	/* 1: PREPARE TRANSACTION, as a client's transaction block would */
	PopActiveSnapshot();
	BeginTransactionBlock();
	CommitTransactionCommand();
	StartTransactionCommand();
	if (!PrepareTransactionBlock(gid))
		elog(ERROR, "could not prepare the flush's transaction");
	CommitTransactionCommand();

	/*
	 * From here until the decision, an ERROR would leave the flush prepared,
	 * holding the flush lock: the server's processes restart instead, and
	 * the worker decides it from the ledger when it starts.
	 */
	debug_crash("prepared", gid);
	PG_TRY();
	{
		aborted = !steps_2_and_3(gid, offsets, md, why, sizeof(why));
	}
	PG_CATCH();
	{
		EmitErrorReport();
		ereport(LOG,
				(errmsg("trafficagg: flush \"%s\" is prepared and could not be finished", gid),
				 errdetail("The server's processes restart, as after a crash; the flush is then committed or rolled back as the ledger says.")));
		proc_exit(2);
	}
	PG_END_TRY();
	if (aborted)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not commit the group's offsets with the flush: %s", why)));
}

/*
 * Steps 2 and 3 of the header, after groupcommit_commit() prepared gid.
 * Returns false if the Kafka transaction was aborted and the flush rolled
 * back (why says why); does not return if the server must restart.
 */
static bool
steps_2_and_3(const char *gid, rd_kafka_topic_partition_list_t *offsets,
			  rd_kafka_consumer_group_metadata_t *md, char *why, size_t whylen)
{
	KafkaOutcome outcome;

	outcome = kafka_commit(gid, offsets, md, why, whylen);
	if (last_committed != NULL)
		rd_kafka_topic_partition_list_destroy(last_committed);
	last_committed = outcome == KAFKA_COMMITTED ? offsets : NULL;
	if (outcome != KAFKA_COMMITTED && offsets != NULL)
		rd_kafka_topic_partition_list_destroy(offsets);
	if (outcome == KAFKA_UNKNOWN)
	{
		ereport(LOG,
				(errmsg("trafficagg: the Kafka transaction of flush \"%s\" failed, its outcome unknown: %s",
						gid, why),
				 errdetail("The server's processes restart, as after a crash; the flush is then committed or rolled back as the ledger says.")));
		proc_exit(2);
	}

	/* 3 */
	if (outcome == KAFKA_COMMITTED)
		debug_crash("kafka_committed", gid);
	StartTransactionCommand();
	FinishPreparedTransaction(gid, outcome == KAFKA_COMMITTED);
	CommitTransactionCommand();
	if (outcome == KAFKA_FENCED)
	{
		ereport(LOG,
				(errmsg("trafficagg: this server is no longer a member of consumer group \"%s\" (%s): the flush was rolled back",
						ta_group_id, why),
				 errdetail("What it counted since its last flush is another server's to count now: the server's processes restart, as after a crash, and the worker resumes from the group's offsets.")));
		proc_exit(2);
	}
	return outcome == KAFKA_COMMITTED;
}
