/*-------------------------------------------------------------------------
 *
 * flush.c
 *	  Write closed windows to the aggregate tables, exactly once.
 *
 * One flush is one transaction (the caller's) that writes:
 *	  - the rows of every closed window, one INSERT per aggregate: first a
 *		plain one in a subtransaction; if a row for one of the keys exists
 *		(written early by a spill, see below), the same INSERT with ON
 *		CONFLICT DO UPDATE, adding into it.  (Most flushes meet no existing
 *		row, and ON CONFLICT probes the unique index once more per row
 *		before inserting: without it the executor ran 31% fewer
 *		instructions in bench/run.sh's (g).);
 *	  - with Kafka: per partition, in trafficagg.kafka_offsets, the resume
 *		offset (the smallest offset of an event still in an open window, or
 *		the position if none), the position (next offset to read) and the
 *		watermark up to which windows are now flushed;
 *	  - with Kafka: the rejected and late messages queued (deadletter.c).
 * Rows and offsets commit together or not at all.  The offsets, and what
 * replay after a crash does with them, are recovery.c's.
 *
 * Flushes are serialised by a lock held to the end of the transaction (see
 * lock_flushes), so that offsets are never overwritten by an older flush.
 * While partitions replay after a restart, flushes write no window beyond
 * the stored watermark.
 *
 * A spill (shared memory full) flushes the oldest window in memory early as
 * partial rows; later rows for the same window merge into them.  The spill
 * records, in trafficagg.spilled_windows, each partition's position: replay
 * after a crash skips that window for the messages before it.
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "trafficagg.h"

#include "access/xact.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "parser/parse_func.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "datums.h"
#include "deadletter.h"
#include "event.h"
#include "flush.h"
#include "latency.h"
#include "recovery.h"
#include "status.h"
#include "store.h"
#include "window.h"


/*
 * Flushes are serialised by an exclusive lock on the extension's own object
 * (pg_extension's row for trafficagg), held to the end of the flushing
 * transaction.  Unlike an advisory lock, no other role can take it: only the
 * extension's owner can run DDL on the extension, and nothing a role with
 * plain privileges does locks it.
 */
static void
lock_flushes(void)
{
	LockDatabaseObject(ExtensionRelationId, get_extension_oid("trafficagg", false),
					   0, ExclusiveLock);
}


/*
 * A backend flushing (or rewinding) on its own, under the flush lock: if
 * shared memory holds Kafka messages' state, only the worker may, since it
 * writes their offsets with the rows (a replay after a crash would count them
 * again otherwise).  Either the worker restarts (it takes requests again
 * within seconds) or it has just started consuming (the next call goes
 * through it).
 */
static void
refuse_kafka_data(const char *function)
{
	if (recovery_has_positions())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot call %s here while the trafficagg worker is not taking requests", function),
				 errdetail("Shared memory holds Kafka messages; only the worker can write them with their offsets."),
				 errhint("The worker takes requests again within seconds; try again.")));
}

/*
 * The parameters of an aggregate's INSERT after the window bounds and the
 * dimension values, one array each, in this order.  The sketches arrive as
 * the worker's bytes, turned into hll values by the statement, and tdigest
 * values made here through the type's binary input (write_aggregate).
 */
typedef enum MetricParam
{
	MP_EVENTS,
	MP_ERRORS,
	MP_CLIENT_ERRORS,
	MP_LATENCY_COUNT,
	MP_LATENCY_SUM,
	MP_LATENCY_MIN,
	MP_LATENCY_MAX,
	MP_USERS,					/* postgresql-hll bytes */
	MP_LATENCY,					/* tdigest (its type's oid is looked up) */
	MP_LATENCY_P50,
	MP_LATENCY_P95,
	MP_LATENCY_P99,
	MP_COUNT
} MetricParam;

static const Oid metric_param_type[MP_COUNT] = {
	[MP_EVENTS] = INT8OID,
	[MP_ERRORS] = INT8OID,
	[MP_CLIENT_ERRORS] = INT8OID,
	[MP_LATENCY_COUNT] = INT8OID,
	[MP_LATENCY_SUM] = NUMERICOID,
	[MP_LATENCY_MIN] = NUMERICOID,
	[MP_LATENCY_MAX] = NUMERICOID,
	[MP_USERS] = BYTEAOID,
	[MP_LATENCY] = InvalidOid,	/* tdigest: latency_digest_type() */
	[MP_LATENCY_P50] = FLOAT8OID,
	[MP_LATENCY_P95] = FLOAT8OID,
	[MP_LATENCY_P99] = FLOAT8OID,
};

/* Parameter positions (0-based) of an aggregate's INSERT. */
#define P_WINDOW_START			0
#define P_WINDOW_END			1
#define P_DIM(d)				(2 + (d))
#define P_METRIC(agg, mp)		(2 + (agg)->ndims + (mp))
/* then per metric field: count, sum, min, max */
#define FM_COUNT				0
#define FM_SUM					1
#define FM_MIN					2
#define FM_MAX					3
#define FM_PARAMS				4
#define P_FIELD_METRIC(agg, i, k) (2 + (agg)->ndims + MP_COUNT + FM_PARAMS * (i) + (k))
#define P_COUNT(agg)			(2 + (agg)->ndims + MP_COUNT + FM_PARAMS * (agg)->nmetrics)

static const char *const field_metric_suffix[FM_PARAMS] = {"_count", "_sum", "_min", "_max"};
static const Oid field_metric_type[FM_PARAMS] = {INT8OID, NUMERICOID, NUMERICOID, NUMERICOID};

/*
 * Write the groups of aggregate agg among groups[0..n).  Returns rows.
 *
 * The statement runs with the worker's privileges (a superuser): every name
 * in it is schema-qualified, operators included, and values are parameters.
 */
/*
 * Are the tables unique on each dimension's dimension_key() (0.4.0), or, in
 * a database not yet updated, on the values themselves?  The ON CONFLICT of
 * write_aggregate names the one they have.
 */
static bool
tables_keyed_by_dimension_key(void)
{
	int			ret = SPI_execute("SELECT pg_catalog.to_regprocedure('trafficagg.dimension_key(text)')"
								  " IS NOT NULL", true, 1);

	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "SPI_execute failed looking for trafficagg.dimension_key: %d", ret);
	return strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "t") == 0;
}

/* The tdigest type: what trafficagg.latency_value(text) returns. */
static Oid
latency_digest_type(void)
{
	Oid			argtypes[1] = {TEXTOID};

	return get_func_rettype(LookupFuncName(list_make2(makeString("trafficagg"),
													  makeString("latency_value")),
										   1, argtypes, false));
}

/*
 * Run the plain INSERT in a subtransaction; if it meets an existing row
 * (unique_violation), roll it back and run the upsert.  Returns the SPI
 * result.
 */
static int
insert_rows(const char *plain, const char *upsert, int nparams, Oid *types, Datum *params)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile int ret = 0;
	volatile bool conflict = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		ret = SPI_execute_with_args(plain, nparams, types, params, NULL, false, 0);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (edata->sqlerrcode != ERRCODE_UNIQUE_VIOLATION)
			ReThrowError(edata);
		FreeErrorData(edata);
		conflict = true;
	}
	PG_END_TRY();
	if (conflict)
		ret = SPI_execute_with_args(upsert, nparams, types, params, NULL, false, 0);
	return ret;
}

static int64
write_aggregate(const TaAggregate *agg, TaGroupCopy *groups, int n, int aggno,
				bool by_dimension_key)
{
	int			nparams = P_COUNT(agg);
	Oid		   *types = palloc(nparams * sizeof(Oid));
	Datum	   *params = palloc(nparams * sizeof(Datum));
	Datum	  **cols = palloc(nparams * sizeof(Datum *));
	bool	  **nulls = palloc(nparams * sizeof(bool *));
	int			rows = 0;
	StringInfoData sql;
	int			plain_len;
	char	   *plain;
	const char *qname;
	int			ret;
	Oid			digest_type = latency_digest_type();
	Oid			digest_receive,
				digest_ioparam;
	FmgrInfo	digest_flinfo;

	getTypeBinaryInputInfo(digest_type, &digest_receive, &digest_ioparam);
	fmgr_info(digest_receive, &digest_flinfo);
	for (int c = 0; c < nparams; c++)
	{
		cols[c] = palloc(Max(n, 1) * sizeof(Datum));
		nulls[c] = palloc0(Max(n, 1) * sizeof(bool));
	}
#define SET(p, v)	(cols[(p)][rows] = (v))
#define SET_NULL(p) (nulls[(p)][rows] = true)
	for (int i = 0; i < n; i++)
	{
		TaGroupCopy *g = &groups[i];

		if (g->agg != aggno)
			continue;
		SET(P_WINDOW_START, TimestampTzGetDatum(ta_ms_to_timestamptz(g->window_start)));
		SET(P_WINDOW_END, TimestampTzGetDatum(ta_ms_to_timestamptz(window_end(g->window_start))));
		for (int d = 0; d < agg->ndims; d++)
		{
			if (g->dims[d] == NULL)
				SET_NULL(P_DIM(d));
			else
				SET(P_DIM(d), CStringGetTextDatum(g->dims[d]));
		}
		SET(P_METRIC(agg, MP_EVENTS), Int64GetDatum(g->m.events));
		SET(P_METRIC(agg, MP_ERRORS), Int64GetDatum(g->m.errors));
		SET(P_METRIC(agg, MP_CLIENT_ERRORS), Int64GetDatum(g->m.client_errors));
		SET(P_METRIC(agg, MP_LATENCY_COUNT), Int64GetDatum(g->m.latency_count));
		if (g->m.latency_count == 0)
		{
			SET_NULL(P_METRIC(agg, MP_LATENCY_SUM));
			SET_NULL(P_METRIC(agg, MP_LATENCY_MIN));
			SET_NULL(P_METRIC(agg, MP_LATENCY_MAX));
		}
		else
		{
			SET(P_METRIC(agg, MP_LATENCY_SUM), ta_us_sum_to_numeric(g->m.latency_sum_us));
			SET(P_METRIC(agg, MP_LATENCY_MIN), ta_us_to_numeric(g->m.latency_min_us));
			SET(P_METRIC(agg, MP_LATENCY_MAX), ta_us_to_numeric(g->m.latency_max_us));
		}
		SET(P_METRIC(agg, MP_USERS), PointerGetDatum(g->users));
		if (g->latency == NULL)
		{
			SET_NULL(P_METRIC(agg, MP_LATENCY));
			SET_NULL(P_METRIC(agg, MP_LATENCY_P50));
			SET_NULL(P_METRIC(agg, MP_LATENCY_P95));
			SET_NULL(P_METRIC(agg, MP_LATENCY_P99));
		}
		else
		{
			int64		lo = g->m.latency_min_us,
						hi = g->m.latency_max_us;

			SET(P_METRIC(agg, MP_LATENCY),
				latency_tdigest(g->latency, lo, hi, &digest_flinfo, digest_ioparam));
			SET(P_METRIC(agg, MP_LATENCY_P50),
				Float8GetDatum(latency_percentile(g->latency, 0.5, lo, hi)));
			SET(P_METRIC(agg, MP_LATENCY_P95),
				Float8GetDatum(latency_percentile(g->latency, 0.95, lo, hi)));
			SET(P_METRIC(agg, MP_LATENCY_P99),
				Float8GetDatum(latency_percentile(g->latency, 0.99, lo, hi)));
		}
		for (int m = 0; m < agg->nmetrics; m++)
		{
			SET(P_FIELD_METRIC(agg, m, FM_COUNT), Int64GetDatum(g->m.fm[m].count));
			if (g->m.fm[m].count == 0)
			{
				SET_NULL(P_FIELD_METRIC(agg, m, FM_SUM));
				SET_NULL(P_FIELD_METRIC(agg, m, FM_MIN));
				SET_NULL(P_FIELD_METRIC(agg, m, FM_MAX));
				continue;
			}
			SET(P_FIELD_METRIC(agg, m, FM_SUM), ta_micro_to_numeric(g->m.fm[m].sum));
			SET(P_FIELD_METRIC(agg, m, FM_MIN), ta_micro_to_numeric(g->m.fm[m].min));
			SET(P_FIELD_METRIC(agg, m, FM_MAX), ta_micro_to_numeric(g->m.fm[m].max));
		}
		rows++;
	}
#undef SET
#undef SET_NULL
	if (rows == 0)
		return 0;

	for (int c = 0; c < nparams; c++)
	{
		Oid			t;

		if (c == P_WINDOW_START || c == P_WINDOW_END)
			t = TIMESTAMPTZOID;
		else if (c < P_METRIC(agg, 0))
			t = TEXTOID;
		else if (c == P_METRIC(agg, MP_LATENCY))
			t = digest_type;
		else if (c < P_FIELD_METRIC(agg, 0, 0))
			t = metric_param_type[c - P_METRIC(agg, 0)];
		else
			t = field_metric_type[(c - P_FIELD_METRIC(agg, 0, 0)) % FM_PARAMS];
		params[c] = ta_datum_array(cols[c], nulls[c], rows, t);
		types[c] = get_array_type(t);
	}

	/* INSERT INTO t (columns) SELECT ... FROM (SELECT unnest($1) AS c1, ...) */
	qname = quote_qualified_identifier("trafficagg", agg->name);
	initStringInfo(&sql);
	appendStringInfo(&sql, "INSERT INTO %s AS t (window_start, window_end", qname);
	for (int d = 0; d < agg->ndims; d++)
		appendStringInfo(&sql, ", %s", quote_identifier(agg->dim_names[d]));
	appendStringInfoString(&sql, ", events, errors, client_errors, latency_count,"
						   " latency_sum, latency_min, latency_max, users, unique_users,"
						   " latency, latency_p50, latency_p95, latency_p99");
	for (int m = 0; m < agg->nmetrics; m++)
		for (int k = 0; k < FM_PARAMS; k++)
			appendStringInfo(&sql, ", %s",
							 quote_identifier(psprintf("%s%s", agg->metric_names[m],
													   field_metric_suffix[k])));
	appendStringInfoString(&sql, ") SELECT ");
	for (int c = 0; c < P_METRIC(agg, MP_USERS); c++)
		appendStringInfo(&sql, "c%d, ", c + 1);
	appendStringInfo(&sql, "trafficagg.users_value(c%d),"
					 " trafficagg.users_count(trafficagg.users_value(c%d)),"
					 " c%d, c%d, c%d, c%d",
					 P_METRIC(agg, MP_USERS) + 1, P_METRIC(agg, MP_USERS) + 1,
					 P_METRIC(agg, MP_LATENCY) + 1, P_METRIC(agg, MP_LATENCY_P50) + 1,
					 P_METRIC(agg, MP_LATENCY_P95) + 1, P_METRIC(agg, MP_LATENCY_P99) + 1);
	for (int c = P_FIELD_METRIC(agg, 0, 0); c < nparams; c++)
		appendStringInfo(&sql, ", c%d", c + 1);
	/*
	 * the arrays side by side: unnest() in a target list runs in step, a row
	 * at a time (ProjectSet), where ROWS FROM (unnest(), ...) would first copy
	 * each array into a tuplestore of its own
	 */
	appendStringInfoString(&sql, " FROM (SELECT ");
	for (int c = 0; c < nparams; c++)
		appendStringInfo(&sql, "%spg_catalog.unnest($%d) AS c%d", c ? ", " : "", c + 1, c + 1);
	appendStringInfoString(&sql, ") AS x");
	plain_len = sql.len;		/* (see insert_rows) */
	/* the table's unique index: each dimension by its key (the install script) */
	appendStringInfoString(&sql, " ON CONFLICT (window_start, window_end");
	for (int d = 0; d < agg->ndims; d++)
		appendStringInfo(&sql, by_dimension_key ? ", trafficagg.dimension_key(%s)" : ", %s",
						 quote_identifier(agg->dim_names[d]));
	appendStringInfoString(&sql, ") DO UPDATE SET"
						   " events = t.events OPERATOR(pg_catalog.+) excluded.events,"
						   " errors = t.errors OPERATOR(pg_catalog.+) excluded.errors,"
						   " client_errors = t.client_errors OPERATOR(pg_catalog.+) excluded.client_errors,"
						   " latency_count = t.latency_count OPERATOR(pg_catalog.+) excluded.latency_count,"
						   " latency_sum = coalesce(t.latency_sum, 0) OPERATOR(pg_catalog.+)"
						   "   coalesce(excluded.latency_sum, 0),"
						   " latency_min = least(t.latency_min, excluded.latency_min),"
						   " latency_max = greatest(t.latency_max, excluded.latency_max),"
						   " users = trafficagg.users_merge(t.users, excluded.users),"
						   " unique_users = trafficagg.users_count(trafficagg.users_merge(t.users, excluded.users)),"
						   " latency = trafficagg.latency_merge(t.latency, excluded.latency)");
	for (int m = 0; m < agg->nmetrics; m++)
	{
		const char *c = quote_identifier(psprintf("%s_count", agg->metric_names[m]));
		const char *sm = quote_identifier(psprintf("%s_sum", agg->metric_names[m]));
		const char *mn = quote_identifier(psprintf("%s_min", agg->metric_names[m]));
		const char *mx = quote_identifier(psprintf("%s_max", agg->metric_names[m]));

		appendStringInfo(&sql, ", %s = t.%s OPERATOR(pg_catalog.+) excluded.%s,"
						 " %s = CASE WHEN t.%s IS NULL THEN excluded.%s WHEN excluded.%s IS NULL THEN t.%s"
						 " ELSE t.%s OPERATOR(pg_catalog.+) excluded.%s END,"
						 " %s = least(t.%s, excluded.%s), %s = greatest(t.%s, excluded.%s)",
						 c, c, c, sm, sm, sm, sm, sm, sm, sm, mn, mn, mn, mx, mx, mx);
	}
	/* a merged row's percentiles come from the merged digest */
	for (int k = 0; k < 3; k++)
	{
		static const char *const col[3] = {"latency_p50", "latency_p95", "latency_p99"};
		static const char *const frac[3] = {"0.5", "0.95", "0.99"};

		appendStringInfo(&sql, ", %s = CASE WHEN excluded.latency IS NULL THEN t.%s"
						 " WHEN t.latency IS NULL THEN excluded.%s"
						 " ELSE trafficagg.latency_percentile(trafficagg.latency_merge(t.latency,"
						 " excluded.latency), %s) END",
						 col[k], col[k], col[k], frac[k]);
	}

	/* the plain INSERT: the statement up to ON CONFLICT */
	plain = pnstrdup(sql.data, plain_len);
	ret = insert_rows(plain, sql.data, nparams, types, params);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "SPI_execute_with_args failed writing %s: %d", qname, ret);
	return rows;
}

/*
 * Flush in the current transaction (see TaFlushKind).  with_kafka: also
 * write offsets and the rejected ring (the worker only).  For FLUSH_REWIND,
 * rewind_to is the watermark to go back to; the caller moves it with
 * watermark_rewind() once the rows are safe (after commit, in the worker).
 */
void
flush_windows(TaFlushKind kind, int64 rewind_to, bool with_kafka, TaFlushResult *res)
{
	TaGroupCopy *groups;
	int			n;
	TaAggregate aggs[TA_MAX_AGGREGATES];
	int64		written_through;
	TaRecoveryCut *cut = NULL;
	int			queued = 0;

	memset(res, 0, sizeof(*res));
	SPI_connect();
	lock_flushes();

	store_forget_flushed();
	catalog_sync();

	watermark_advance();
	(void) catalog_read(aggs);
	if (kind == FLUSH_CLOSE_ALL)
		watermark_close_all();
	res->watermark = watermark_get();

	/*
	 * While partitions replay after a restart, the windows the new watermark
	 * closes are not whole yet (the replay has not reached all their events):
	 * write nothing past the stored watermark until the replay is over.
	 */
	if (with_kafka && recovery_replaying())
	{
		if (kind == FLUSH_REWIND)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot rewind the watermark while partitions replay after a restart"),
					 errhint("Try again once trafficagg.status shows every position past its stored offset.")));
		res->watermark = Min(res->watermark, watermark_replay_cutoff());
	}

	/*
	 * The cut (recovery.c): no batch is half way through the data path while
	 * the groups are collected and the positions and dead letters counted.
	 */
	recovery_cut_begin();
	/* (checked in the cut: a worker may have just started consuming) */
	if (!with_kafka)
		refuse_kafka_data("trafficagg.flush()");
	if (with_kafka && ta_shared_group)
	{
		/*
		 * Servers sharing the group (groupcommit.c): every window, the open
		 * ones as partial rows, so that the positions committed to the group
		 * with these rows are all there is to know about a partition when
		 * another server takes it.  That makes room as well as a spill.
		 */
		if (kind == FLUSH_REWIND)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot rewind the watermark with trafficagg.shared_group"),
					 errhint("Each server sharing the group has its own watermark.")));
		n = store_collect_closed(PG_INT64_MAX, &groups);
		written_through = PG_INT64_MAX;
	}
	else
	{
		switch (kind)
		{
			case FLUSH_SPILL_OLDEST:
				/*
				 * What is closed first: that makes room as well, and a spill
				 * must not store a watermark past closed windows it did not
				 * write.  Only with nothing closed, the oldest open window,
				 * early.
				 */
				n = store_collect_closed(res->watermark, &groups);
				written_through = res->watermark;
				if (n == 0)
				{
					n = store_collect_oldest_window(&groups);
					res->spilled = n > 0;
				}
				break;
			case FLUSH_REWIND:
				/* checked again: another rewind may have gone further back */
				if (rewind_to >= res->watermark)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("the watermark is already at or before the time given")));
				/* every window: partial rows for the open ones */
				n = store_collect_closed(PG_INT64_MAX, &groups);
				written_through = PG_INT64_MAX;
				res->watermark = rewind_to;
				break;
			default:
				n = store_collect_closed(res->watermark, &groups);
				written_through = res->watermark;
				break;
		}
	}
	if (with_kafka)
	{
		cut = recovery_snapshot(written_through);
		queued = deadletter_take();
	}
	recovery_cut_end();

	if (n > 0)
	{
		bool		by_dimension_key = tables_keyed_by_dimension_key();

		for (int a = 0; a < ta_max_aggregates; a++)
			if (aggs[a].in_use)
				res->rows += write_aggregate(&aggs[a], groups, n, a, by_dimension_key);
	}

	if (with_kafka)
	{
		if (kind == FLUSH_REWIND)
			recovery_rewind(rewind_to);
		else if (!res->spilled)
			recovery_forget_spilled(res->watermark);
		recovery_write(cut, res->watermark,
					   res->spilled ? groups[0].window_start : TA_NO_TIME);
		res->rejected_taken = deadletter_write_queued(queued);
	}
	deadletter_trim();
	SPI_finish();

	if (kind == FLUSH_CLOSED || kind == FLUSH_CLOSE_ALL ||
		(kind == FLUSH_SPILL_OLDEST && !res->spilled))
	{
		watermark_flushed_through(res->watermark);
	}
}

/*
 * After the flush transaction committed: release the ring entries it wrote,
 * remove the flushed groups, record status.
 */
void
flush_after_commit(const TaFlushResult *res, double elapsed_ms)
{
	deadletter_release();
	status_flushed(res->rows, elapsed_ms);
	store_forget_flushed();
}

/*
 * The worker, once it takes requests and before it consumes: wait for any
 * flush a backend started before, so that no backend flush ever sees Kafka
 * data (it could not write their offsets).  Caller is in a transaction; the
 * lock is released when it ends.
 */
void
flush_wait_for_backends(void)
{
	lock_flushes();
}

/*
 * trafficagg.rewind_watermark() without a worker: under the flush lock, so
 * that it neither races a backend's flush nor a worker that has just
 * started consuming.
 */
void
flush_rewind_without_worker(int64 to_ms)
{
	lock_flushes();
	refuse_kafka_data("trafficagg.rewind_watermark()");
	watermark_rewind(to_ms);
}
