/*-------------------------------------------------------------------------
 *
 * sqlfuncs.c
 *	  SQL-callable functions: ingest, flush, and the set-returning functions
 *	  behind the _live and _realtime views and trafficagg.status.
 *
 * Control functions (ingest, flush) are revoked from PUBLIC by the install
 * script; the readers are granted to PUBLIC.  None of them reveals
 * trafficagg.kafka_options.
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "trafficagg.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "catalog.h"
#include "datums.h"
#include "deadletter.h"
#include "digest.h"
#include "event.h"
#include "flush.h"
#include "ingest.h"
#include "latency.h"
#include "recovery.h"
#include "request.h"
#include "sketch_area.h"
#include "source.h"
#include "status.h"
#include "store.h"
#include "window.h"



PG_FUNCTION_INFO_V1(trafficagg_ingest_text);
PG_FUNCTION_INFO_V1(trafficagg_ingest_jsonb);
PG_FUNCTION_INFO_V1(trafficagg_ingest_array);
PG_FUNCTION_INFO_V1(trafficagg_ingest_message);
PG_FUNCTION_INFO_V1(trafficagg_latency_merge);
PG_FUNCTION_INFO_V1(trafficagg_latency_digest);
PG_FUNCTION_INFO_V1(trafficagg_latency_percentile);
PG_FUNCTION_INFO_V1(trafficagg_flush);
PG_FUNCTION_INFO_V1(trafficagg_rewind_watermark);
PG_FUNCTION_INFO_V1(trafficagg_groups);
PG_FUNCTION_INFO_V1(trafficagg_status);

/*
 * ingest() and flush() write: on a hot standby they would change shared
 * memory that no table can ever receive (and ingest() used to answer
 * "accepted" there).  Refuse them, as PostgreSQL refuses writes.
 */
static void
refuse_during_recovery(const char *function)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot call %s during recovery", function),
				 errdetail("This server is a standby; trafficagg aggregates only on the primary."),
				 errhint("Call it on the primary.  The views and trafficagg.status can be read here.")));
}

static void
sync_catalog_in_backend(const char *function)
{
	store_check_attached();
	refuse_during_recovery(function);
	SPI_connect();
	catalog_sync();
	SPI_finish();
}

/*
 * Ingest one message through the SQL source, a batch of its own; ERROR when
 * memory is full.
 */
static TaOutcome
ingest_msg(const TaMessage *msg)
{
	TaOutcome	outcome;

	ingest_begin(false);
	outcome = ingest_message(TA_SQL_SOURCE, TA_NO_OFFSET, TA_NO_TIME, msg, false);
	if (!ingest_end())
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("trafficagg shared memory is full (%s)", ingest_full_setting()),
				 errhint("Call trafficagg.flush() to write closed windows, or raise %s and restart the server.",
						 ingest_full_setting())));
	watermark_advance();
	return outcome;
}

/* A message with a value only (no key, timestamp or headers). */
static TaOutcome
ingest_one(const char *data, size_t len)
{
	TaMessage	msg = {.data = data, .len = len, .timestamp_ms = TA_NO_TIME};

	return ingest_msg(&msg);
}

/*
 * ingest(text) and ingest(bytea): the message bytes as given (bytea: the raw
 * bytes as Kafka delivers them; both are varlenas).
 */
Datum
trafficagg_ingest_text(PG_FUNCTION_ARGS)
{
	text	   *t = PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0);

	sync_catalog_in_backend("trafficagg.ingest()");
	PG_RETURN_TEXT_P(cstring_to_text(outcome_name(t ? ingest_one(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t))
												  : ingest_one(NULL, 0))));
}

Datum
trafficagg_ingest_jsonb(PG_FUNCTION_ARGS)
{
	Jsonb	   *j = PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0);
	char	   *s = j ? JsonbToCString(NULL, &j->root, VARSIZE(j)) : NULL;

	sync_catalog_in_backend("trafficagg.ingest()");
	PG_RETURN_TEXT_P(cstring_to_text(outcome_name(ingest_one(s, s ? strlen(s) : 0))));
}

/* ingest(text[]): returns one row per outcome that occurred, with its count. */
/*
 * ingest(event text, key text, message_timestamp timestamptz, headers jsonb):
 * one message as Kafka would deliver it, so that a mapping reading the key,
 * the timestamp or headers (an object of strings; a JSON null is a header
 * without a value) can be tried from SQL.
 */
Datum
trafficagg_ingest_message(PG_FUNCTION_ARGS)
{
	text	   *t = PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0);
	text	   *key = PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1);
	TaMessage	msg = {0};
	TaHeader   *headers = NULL;
	int			nheaders = 0;

	sync_catalog_in_backend("trafficagg.ingest()");
	msg.data = t ? VARDATA_ANY(t) : NULL;
	msg.len = t ? VARSIZE_ANY_EXHDR(t) : 0;
	msg.key = key ? VARDATA_ANY(key) : NULL;
	msg.key_len = key ? VARSIZE_ANY_EXHDR(key) : 0;
	msg.timestamp_ms = PG_ARGISNULL(2) ? TA_NO_TIME
		: ta_timestamptz_to_ms(PG_GETARG_TIMESTAMPTZ(2));
	if (!PG_ARGISNULL(3))
	{
		Jsonb	   *j = PG_GETARG_JSONB_P(3);
		JsonbIterator *it;
		JsonbValue	v;
		JsonbIteratorToken tok;
		char	   *name = NULL;

		if (!JB_ROOT_IS_OBJECT(j) || JB_ROOT_IS_SCALAR(j))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("headers must be a JSON object of strings")));
		headers = palloc(Max(JB_ROOT_COUNT(j), 1) * sizeof(TaHeader));
		it = JsonbIteratorInit(&j->root);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
				name = pnstrdup(v.val.string.val, v.val.string.len);
			else if (tok == WJB_VALUE)
			{
				TaHeader   *h = &headers[nheaders++];

				h->name = name;
				if (v.type == jbvNull)
					h->value = NULL, h->len = 0;
				else if (v.type == jbvString)
					h->value = v.val.string.val, h->len = v.val.string.len;
				else
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("header \"%s\" must be a string or null", name)));
			}
		}
	}
	msg.headers = headers;
	msg.nheaders = nheaders;
	PG_RETURN_TEXT_P(cstring_to_text(outcome_name(ingest_msg(&msg))));
}

Datum
trafficagg_ingest_array(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int64		counts[TA_NUM_OUTCOMES] = {0};

	InitMaterializedSRF(fcinfo, 0);
	sync_catalog_in_backend("trafficagg.ingest()");
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		text	   *t = nulls[i] ? NULL : DatumGetTextPP(elems[i]);

		CHECK_FOR_INTERRUPTS();
		counts[ingest_one(t ? VARDATA_ANY(t) : NULL, t ? VARSIZE_ANY_EXHDR(t) : 0)]++;
	}
	for (int o = 0; o < TA_NUM_OUTCOMES; o++)
	{
		Datum		values[2];
		bool		vnulls[2] = {false, false};

		if (counts[o] == 0)
			continue;
		values[0] = CStringGetTextDatum(outcome_name(o));
		values[1] = Int64GetDatum(counts[o]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, vnulls);
	}
	return (Datum) 0;
}

/*
 * flush(close_all): write closed windows now.  While the worker consumes
 * Kafka the flush must also write the partitions' offsets and the queued dead
 * letters, so it is the worker's: ask it and wait (request.c).  Otherwise
 * flush here, in the caller's transaction.  Returns the rows written (by this
 * call).
 */
Datum
trafficagg_flush(PG_FUNCTION_ARGS)
{
	bool		close_all = PG_GETARG_BOOL(0);
	uint64		ticket;
	TaFlushResult res;
	TimestampTz start = GetCurrentTimestamp();
	long		secs;
	int			usecs;

	store_check_attached();
	refuse_during_recovery("trafficagg.flush()");
	if ((ticket = flush_request_submit(close_all)) != 0)
		PG_RETURN_INT64(flush_request_wait(ticket));

	flush_windows(close_all ? FLUSH_CLOSE_ALL : FLUSH_CLOSED, 0, false, &res);
	TimestampDifference(start, GetCurrentTimestamp(), &secs, &usecs);
	flush_after_commit(&res, secs * 1000.0 + usecs / 1000.0);
	PG_RETURN_INT64(res.rows);
}

/*
 * rewind_watermark(to): the operator's repair of a watermark that moved too
 * far (a burst of events with a wrong clock).  Every group in memory is
 * written first (partial rows for the open windows), with resume offsets at
 * the positions, so that nothing before them is ever read again; then the
 * watermark goes back to `to`, and windows ending after it accept events
 * again, their rows merging into those already written.  Returns the new
 * watermark.  Events judged late before the rewind stay in
 * trafficagg.rejected_events.
 */
Datum
trafficagg_rewind_watermark(PG_FUNCTION_ARGS)
{
	TimestampTz to = PG_GETARG_TIMESTAMPTZ(0);
	int64		to_ms;
	uint64		ticket;

	store_check_attached();
	refuse_during_recovery("trafficagg.rewind_watermark()");
	if (TIMESTAMP_NOT_FINITE(to))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the watermark must be a finite time")));
	to_ms = ta_timestamptz_to_ms(to);
	if (to_ms >= watermark_get())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the watermark is already at or before the time given"),
				 errhint("trafficagg.rewind_watermark() only moves the watermark back; see trafficagg.status.watermark.")));

	if ((ticket = rewind_request_submit(to_ms)) != 0)
		rewind_request_wait(ticket);
	else
	{
		/*
		 * SQL ingest only: nothing is ever replayed, so nothing needs writing
		 * first; the groups in memory stay, and windows ending after to_ms
		 * take events again.  (Not transactional, as ingest() is not.)
		 */
		flush_rewind_without_worker(to_ms);
	}
	PG_RETURN_TIMESTAMPTZ(ta_ms_to_timestamptz(watermark_get()));
}

static Datum
numeric_ms(int64 us)
{
	return ta_us_to_numeric(us);
}

/*
 * The SQL declaration and the library must agree on the result columns (they
 * differ when the library was upgraded and ALTER EXTENSION UPDATE not run).
 */
static void
check_result_columns(ReturnSetInfo *rsinfo, int expected, const char *function)
{
	if (rsinfo->setDesc->natts != expected)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s returns %d columns, the trafficagg library fills %d",
						function, rsinfo->setDesc->natts, expected),
				 errhint("Run ALTER EXTENSION trafficagg UPDATE.")));
}

/* The columns of trafficagg.groups(), in the order the install script declares them. */
typedef enum GroupsColumn
{
	GC_WINDOW_START,
	GC_WINDOW_END,
	GC_DIMS,
	GC_EVENTS,
	GC_ERRORS,
	GC_CLIENT_ERRORS,
	GC_LATENCY_COUNT,
	GC_LATENCY_SUM,
	GC_LATENCY_MIN,
	GC_LATENCY_MAX,
	GC_USERS_BYTES,
	GC_LATENCY_HISTOGRAM,
	GC_LATENCY_P50,
	GC_LATENCY_P95,
	GC_LATENCY_P99,
	GC_METRIC_COUNTS,			/* the aggregate's metric fields, in order */
	GC_METRIC_SUMS,
	GC_METRIC_MINS,
	GC_METRIC_MAXS,
	GC_COUNT
} GroupsColumn;

/*
 * The key argument of groups(aggregate, key): a string (or NULL: any value)
 * for each of the aggregate's ndims dimensions.
 */
static const char *const *
key_argument(ArrayType *arr, int ndims, const char *aggregate)
{
	Datum	   *elems;
	bool	   *enulls;
	int			nelems;
	const char **key = palloc0(TA_MAX_DIMENSIONS * sizeof(char *));

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("the key must be a one-dimensional array")));
	deconstruct_array_builtin(arr, TEXTOID, &elems, &enulls, &nelems);
	if (nelems != ndims)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the key of trafficagg aggregate \"%s\" takes %d values, not %d",
						aggregate, ndims, nelems),
				 errhint("Give one value per dimension, in the order of trafficagg.aggregates.dimensions; NULL matches any value.")));
	for (int d = 0; d < nelems; d++)
		key[d] = enulls[d] ? NULL : TextDatumGetCString(elems[d]);
	return key;
}

/*
 * groups(aggregate): the groups in shared memory not yet visible in the
 * aggregate's table (open windows, and closed ones whose flush this snapshot
 * doesn't see yet).
 */
Datum
trafficagg_groups(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int			agg;
	int			ndims;
	int			nmetrics;
	bool		with_metrics;
	TaGroupCopy *groups;
	int			n;
	const char *const *key = NULL;

	InitMaterializedSRF(fcinfo, 0);
	store_check_attached();
	/* a standby consumes nothing: no live data, the tables are all there is */
	if (RecoveryInProgress())
		return (Datum) 0;
	if (!catalog_loaded())
		sync_catalog_in_backend("trafficagg.groups()");
	agg = catalog_find(name);
	if (agg < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("trafficagg aggregate \"%s\" does not exist", name),
				 errhint("Aggregates are the rows of trafficagg.aggregates; after adding one, reload the configuration.")));
	ndims = catalog_ndims(agg);
	nmetrics = catalog_nmetrics(agg);

	/* groups() (views made before 0.4.0) has no metric fields, live_groups() has */
	with_metrics = rsinfo->setDesc->natts == GC_COUNT;
	check_result_columns(rsinfo, with_metrics ? GC_COUNT : GC_METRIC_COUNTS,
						 "trafficagg.groups()");
	if (PG_NARGS() > 1)
		key = key_argument(PG_GETARG_ARRAYTYPE_P(1), ndims, name);
	n = store_collect_live(agg, name, key, ndims, &groups);
	for (int i = 0; i < n; i++)
	{
		TaGroupCopy *g = &groups[i];
		Datum		values[GC_COUNT];
		bool		nulls[GC_COUNT] = {0};
		Datum		dims[TA_MAX_DIMENSIONS];
		bool		dnulls[TA_MAX_DIMENSIONS];
		int			lbs = 1;

		for (int d = 0; d < ndims; d++)
		{
			dnulls[d] = g->dims[d] == NULL;
			dims[d] = dnulls[d] ? (Datum) 0 : CStringGetTextDatum(g->dims[d]);
		}
		values[GC_WINDOW_START] = TimestampTzGetDatum(ta_ms_to_timestamptz(g->window_start));
		values[GC_WINDOW_END] = TimestampTzGetDatum(ta_ms_to_timestamptz(window_end(g->window_start)));
		values[GC_DIMS] = PointerGetDatum(construct_md_array(dims, dnulls, 1, &ndims, &lbs,
													   TEXTOID, -1, false, TYPALIGN_INT));
		values[GC_EVENTS] = Int64GetDatum(g->m.events);
		values[GC_ERRORS] = Int64GetDatum(g->m.errors);
		values[GC_CLIENT_ERRORS] = Int64GetDatum(g->m.client_errors);
		values[GC_LATENCY_COUNT] = Int64GetDatum(g->m.latency_count);
		if (g->m.latency_count > 0)
		{
			values[GC_LATENCY_SUM] = ta_us_sum_to_numeric(g->m.latency_sum_us);
			values[GC_LATENCY_MIN] = numeric_ms(g->m.latency_min_us);
			values[GC_LATENCY_MAX] = numeric_ms(g->m.latency_max_us);
		}
		else
			nulls[GC_LATENCY_SUM] = nulls[GC_LATENCY_MIN] = nulls[GC_LATENCY_MAX] = true;
		values[GC_USERS_BYTES] = PointerGetDatum(g->users);
		if (g->latency != NULL)
		{
			values[GC_LATENCY_HISTOGRAM] = PointerGetDatum(latency_to_bytes(g->latency, g->m.latency_min_us,
														  g->m.latency_max_us));
			values[GC_LATENCY_P50] = Float8GetDatum(latency_percentile(g->latency, 0.5, g->m.latency_min_us,
														   g->m.latency_max_us));
			values[GC_LATENCY_P95] = Float8GetDatum(latency_percentile(g->latency, 0.95, g->m.latency_min_us,
														   g->m.latency_max_us));
			values[GC_LATENCY_P99] = Float8GetDatum(latency_percentile(g->latency, 0.99, g->m.latency_min_us,
														   g->m.latency_max_us));
		}
		else
			nulls[GC_LATENCY_HISTOGRAM] = nulls[GC_LATENCY_P50] = nulls[GC_LATENCY_P95] = nulls[GC_LATENCY_P99] = true;
		if (with_metrics)
		{
			Datum		counts[TA_MAX_METRICS],
						sums[TA_MAX_METRICS],
						mins[TA_MAX_METRICS],
						maxs[TA_MAX_METRICS];
			bool		none[TA_MAX_METRICS];

			for (int m = 0; m < nmetrics; m++)
			{
				none[m] = g->m.fm[m].count == 0;
				counts[m] = Int64GetDatum(g->m.fm[m].count);
				sums[m] = none[m] ? (Datum) 0 : ta_micro_to_numeric(g->m.fm[m].sum);
				mins[m] = none[m] ? (Datum) 0 : ta_micro_to_numeric(g->m.fm[m].min);
				maxs[m] = none[m] ? (Datum) 0 : ta_micro_to_numeric(g->m.fm[m].max);
			}
			values[GC_METRIC_COUNTS] = ta_datum_array(counts, NULL, nmetrics, INT8OID);
			values[GC_METRIC_SUMS] = ta_datum_array(sums, none, nmetrics, NUMERICOID);
			values[GC_METRIC_MINS] = ta_datum_array(mins, none, nmetrics, NUMERICOID);
			values[GC_METRIC_MAXS] = ta_datum_array(maxs, none, nmetrics, NUMERICOID);
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

static Datum
ms_or_null(int64 ms, bool *isnull)
{
	*isnull = (ms == TA_NO_TIME);
	return *isnull ? (Datum) 0 : TimestampTzGetDatum(ta_ms_to_timestamptz(ms));
}

/* The columns of trafficagg.status(), in the order the install script declares them. */
typedef enum StatusColumn
{
	SC_SOURCE,
	SC_TOPIC,
	SC_PARTITION,
	SC_ASSIGNED,
	SC_POSITION,
	SC_STORED_OFFSET,
	SC_END_OFFSET,
	SC_LAG,
	SC_CONSUMED,
	SC_ACCEPTED,
	SC_LATE,
	SC_REJECTED,
	SC_REJECTED_BY_REASON,
	SC_MAX_EVENT_TIME,
	SC_WATERMARK,
	SC_FLUSHED_WATERMARK,
	SC_OPEN_WINDOWS,
	SC_GROUPS_USED,
	SC_GROUPS_CAPACITY,
	SC_SPILLS,
	SC_REJECTED_DROPPED,
	SC_FLUSHES,
	SC_LAST_FLUSH_AT,
	SC_LAST_FLUSH_MS,
	SC_LAST_FLUSH_ROWS,
	SC_LAST_ERROR,
	SC_BROKER_STATE,
	SC_SHMEM_BYTES,
	SC_SKETCH_BYTES,
	SC_SKETCH_CAPACITY,
	SC_VALUES_USED,
	SC_VALUES_CAPACITY,
	SC_DICTIONARY_BYTES,
	SC_DICTIONARY_CAPACITY,
	SC_COUNT
} StatusColumn;

/* status(): one row per source (the SQL path and each Kafka partition). */
Datum
trafficagg_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		watermark,
				flushed;
	int			open_windows;
	long		groups;
	long		values_used;
	uint64		values_bytes;
	int64		dropped;
	TaStatus	st;

	InitMaterializedSRF(fcinfo, 0);
	store_check_attached();

	store_forget_flushed();
	open_windows = store_window_count();
	groups = store_group_count();
	values_used = store_value_count();
	values_bytes = store_value_bytes();
	watermark = watermark_get();
	dropped = deadletter_dropped();
	flushed = watermark_flushed();
	status_read(&st);

	/* 0.3.0's status() ends before the dictionary's columns: served until the update */
	if (rsinfo->setDesc->natts != SC_DICTIONARY_BYTES)
		check_result_columns(rsinfo, SC_COUNT, "trafficagg.status()");
	for (int i = 0; i < source_slots(); i++)
	{
		TaSourceInfo si;
		TaSourceInfo *s = &si;
		bool		is_sql = i == TA_SQL_SOURCE;
		int64		position,
					resume_offset;
		Datum		values[SC_COUNT];
		bool		nulls[SC_COUNT] = {0};
		StringInfoData reasons;
		uint64		rejected = 0;

		source_read(i, &si);
		if (!si.in_use)
			continue;
		recovery_read(i, &position, &resume_offset);
		initStringInfo(&reasons);
		appendStringInfoChar(&reasons, '{');
		for (int o = TA_REJ_EMPTY; o < TA_NUM_OUTCOMES; o++)
		{
			appendStringInfo(&reasons, "%s\"%s\": " UINT64_FORMAT,
							 o == TA_REJ_EMPTY ? "" : ", ", outcome_name(o), s->outcomes[o]);
			rejected += s->outcomes[o];
		}
		appendStringInfoChar(&reasons, '}');

		values[SC_SOURCE] = CStringGetTextDatum(is_sql ? "sql" : "kafka");
		nulls[SC_TOPIC] = is_sql;
		values[SC_TOPIC] = is_sql ? (Datum) 0 : CStringGetTextDatum(s->topic);
		nulls[SC_PARTITION] = is_sql;
		values[SC_PARTITION] = Int32GetDatum(s->partition);
		values[SC_ASSIGNED] = BoolGetDatum(is_sql ? false : s->assigned);
		nulls[SC_POSITION] = position == TA_NO_OFFSET;
		values[SC_POSITION] = Int64GetDatum(position);
		nulls[SC_STORED_OFFSET] = resume_offset == TA_NO_OFFSET;
		values[SC_STORED_OFFSET] = Int64GetDatum(resume_offset);
		nulls[SC_END_OFFSET] = s->end_offset == TA_NO_OFFSET;
		values[SC_END_OFFSET] = Int64GetDatum(s->end_offset);
		nulls[SC_LAG] = s->end_offset == TA_NO_OFFSET || position == TA_NO_OFFSET;
		values[SC_LAG] = Int64GetDatum(Max(s->end_offset - position, 0));
		values[SC_CONSUMED] = Int64GetDatum((int64) s->consumed);
		values[SC_ACCEPTED] = Int64GetDatum((int64) s->outcomes[TA_ACCEPTED]);
		values[SC_LATE] = Int64GetDatum((int64) s->outcomes[TA_LATE]);
		values[SC_REJECTED] = Int64GetDatum((int64) rejected);
		values[SC_REJECTED_BY_REASON] = DirectFunctionCall1(jsonb_in, CStringGetDatum(reasons.data));
		values[SC_MAX_EVENT_TIME] = ms_or_null(window_max_event_time(i), &nulls[SC_MAX_EVENT_TIME]);
		values[SC_WATERMARK] = ms_or_null(watermark, &nulls[SC_WATERMARK]);
		values[SC_FLUSHED_WATERMARK] = ms_or_null(flushed, &nulls[SC_FLUSHED_WATERMARK]);
		values[SC_OPEN_WINDOWS] = Int32GetDatum(open_windows);
		values[SC_GROUPS_USED] = Int64GetDatum((int64) groups);
		values[SC_GROUPS_CAPACITY] = Int64GetDatum((int64) ta_max_groups);
		values[SC_SPILLS] = Int64GetDatum(st.spills);
		values[SC_REJECTED_DROPPED] = Int64GetDatum(dropped);
		values[SC_FLUSHES] = Int64GetDatum(st.flushes);
		nulls[SC_LAST_FLUSH_AT] = st.last_flush_at == 0;
		values[SC_LAST_FLUSH_AT] = TimestampTzGetDatum(st.last_flush_at);
		nulls[SC_LAST_FLUSH_MS] = st.last_flush_at == 0;
		values[SC_LAST_FLUSH_MS] = Float8GetDatum(st.last_flush_ms);
		nulls[SC_LAST_FLUSH_ROWS] = st.last_flush_at == 0;
		values[SC_LAST_FLUSH_ROWS] = Int64GetDatum(st.last_flush_rows);
		nulls[SC_LAST_ERROR] = st.last_error[0] == '\0';
		values[SC_LAST_ERROR] = CStringGetTextDatum(st.last_error);
		values[SC_BROKER_STATE] = CStringGetTextDatum(st.broker_state);
		values[SC_SHMEM_BYTES] = Int64GetDatum((int64) store_shmem_size());
		values[SC_SKETCH_BYTES] = Int64GetDatum((int64) sketch_bytes_used());
		values[SC_SKETCH_CAPACITY] = Int64GetDatum((int64) ta_sketch_memory_kb * 1024);
		values[SC_VALUES_USED] = Int64GetDatum((int64) values_used);
		values[SC_VALUES_CAPACITY] = Int64GetDatum((int64) ta_max_values);
		values[SC_DICTIONARY_BYTES] = Int64GetDatum((int64) values_bytes);
		values[SC_DICTIONARY_CAPACITY] = Int64GetDatum((int64) ta_dictionary_memory_kb * 1024);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* A tdigest argument's centroids, through the type's text output. */
static TaDigest *
digest_arg(FunctionCallInfo fcinfo, int argno)
{
	Oid			outfunc;
	bool		isvarlena;

	getTypeOutputInfo(get_fn_expr_argtype(fcinfo->flinfo, argno), &outfunc, &isvarlena);
	return digest_parse(OidOutputFunctionCall(outfunc, PG_GETARG_DATUM(argno)));
}

/*
 * latency_merge(a tdigest, b tdigest): the union of two latency digests
 * without loss (centroids of the same bucket are added up); NULL-tolerant so
 * that it serves as the transition of the latency_union aggregate.
 */
Datum
trafficagg_latency_merge(PG_FUNCTION_ARGS)
{
	Oid			infunc,
				ioparam;
	TaDigest   *merged;

	if (PG_ARGISNULL(0) && PG_ARGISNULL(1))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(0))
		PG_RETURN_DATUM(PG_GETARG_DATUM(1));
	if (PG_ARGISNULL(1))
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));

	merged = digest_merge(digest_arg(fcinfo, 0), digest_arg(fcinfo, 1));
	getTypeInputInfo(get_fn_expr_rettype(fcinfo->flinfo), &infunc, &ioparam);
	PG_RETURN_DATUM(OidInputFunctionCall(infunc, digest_text(merged), ioparam, -1));
}

/* latency_percentile(latency tdigest, fraction): percentile_disc's rule. */
Datum
trafficagg_latency_percentile(PG_FUNCTION_ARGS)
{
	double		p = PG_GETARG_FLOAT8(1);
	TaDigest   *d;

	if (isnan(p) || p < 0 || p > 1)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("percentile value %g is not between 0 and 1", p)));
	d = digest_arg(fcinfo, 0);
	if (d->total == 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(digest_percentile(d, p));
}

/* latency_digest(histogram bytea): a groups() histogram as a tdigest value. */
Datum
trafficagg_latency_digest(PG_FUNCTION_ARGS)
{
	int64		min_us,
				max_us;
	TaLatency  *h = latency_from_bytes(PG_GETARG_BYTEA_PP(0), &min_us, &max_us);
	Oid			receive,
				ioparam;
	FmgrInfo	flinfo;

	getTypeBinaryInputInfo(get_fn_expr_rettype(fcinfo->flinfo), &receive, &ioparam);
	fmgr_info(receive, &flinfo);
	PG_RETURN_DATUM(latency_tdigest(h, min_us, max_us, &flinfo, ioparam));
}
