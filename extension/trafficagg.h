/*-------------------------------------------------------------------------
 *
 * trafficagg.h
 *	  Types and entry points shared by the stages of trafficagg's data path:
 *	  consume (consume.c) -> parse/validate (event.c) -> assign windows and
 *	  track the watermark (window.c) -> aggregate in shared memory (store.c)
 *	  -> flush to tables (flush.c) -> query (sqlfuncs.c).  The worker loop is
 *	  worker.c; settings and _PG_init are trafficagg.c.
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef TRAFFICAGG_H
#define TRAFFICAGG_H

#include "postgres.h"

/* latency sums are 128-bit (TaMetrics); every platform PostgreSQL 15+ builds on with gcc or clang has it */
#ifndef HAVE_INT128
#error "trafficagg needs a compiler with a 128-bit integer type"
#endif

#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/dsa.h"

#include "sketch.h"

/* ---------------------------------------------------------------------
 * Fixed limits.  These size arrays inside shared structures; everything a
 * user may want to tune is a setting below.
 * ---------------------------------------------------------------------
 */
#define TA_MAX_AGGREGATES		64	/* ceiling of trafficagg.max_aggregates */
#define TA_MAX_DIMENSIONS		8	/* dimensions of one aggregate */
#define TA_MAX_VALUE_LEN		256 /* bytes of a dimension value, with NUL */
#define TA_LOCK_PARTITIONS		16	/* LWLocks over the group table */
#define TA_TRACKED_WINDOWS		64	/* open windows tracked per partition */
#define TA_MAX_WINDOWS_PER_EVENT 64	/* window / slide */
#define TA_MAX_WATERMARK_EVENTS	100 /* ceiling of trafficagg.watermark_events */
#define TA_ERROR_LEN			256 /* last-error text kept in status */
#define TA_DETAIL_LEN			200 /* rejection detail text */
#define TA_NO_TIME				PG_INT64_MIN	/* "no event time yet" */
#define TA_NO_OFFSET			((int64) -1)
#define TA_NO_REFERENCE_TIME	PG_INT64_MAX	/* a message with no timestamp */

/* Unix-epoch milliseconds to a PostgreSQL timestamptz and back. */
#define TA_PG_EPOCH_MS			INT64CONST(946684800000)
#define ta_ms_to_timestamptz(ms) ((TimestampTz) (((ms) - TA_PG_EPOCH_MS) * 1000))
/* (rounded down to the millisecond; ts finite) */
static inline int64
ta_timestamptz_to_ms(TimestampTz ts)
{
	return (ts >= 0 ? ts / 1000 : -((-ts + 999) / 1000)) + TA_PG_EPOCH_MS;
}

/* ---------------------------------------------------------------------
 * Settings (trafficagg.c).  Read through these variables only.
 * ---------------------------------------------------------------------
 */
extern char *ta_brokers;
extern char *ta_topic;
extern char *ta_group_id;
extern char *ta_database;
extern char *ta_kafka_options;
extern char *ta_kafka_secrets_file;
extern char *ta_start_offset;
extern int	ta_window_ms;
extern int	ta_slide_ms;
extern int	ta_allowed_lateness_ms;
extern int	ta_watermark_events;
extern int	ta_max_future_ms;
extern int	ta_flush_interval_ms;
extern int	ta_max_aggregates;
extern int	ta_max_groups;
extern int	ta_max_values;
extern int	ta_max_partitions;
extern int	ta_max_event_bytes;
extern int	ta_queued_max_kbytes;
extern int	ta_rejected_max_rows;
extern int	ta_rejected_payload_bytes;
extern int	ta_rejected_buffer;
extern int	ta_sketch_memory_kb;
extern int	ta_hll_log2m;
extern int	ta_hll_regwidth;
extern int	ta_hll_expthresh;
extern bool ta_hll_sparseon;
extern int	ta_tdigest_compression;

/* ---------------------------------------------------------------------
 * Events (event.c)
 * ---------------------------------------------------------------------
 */

/* The fields an aggregate may group by, in the order of event.c's table. */
typedef enum TaField
{
	TA_F_EVENT_TYPE,
	TA_F_PAGE,
	TA_F_USER_ID,
	TA_F_SESSION_ID,
	TA_F_COUNTRY,
	TA_F_DEVICE,
	TA_F_REFERRER,
	TA_F_STATUS_CODE,
	TA_NUM_FIELDS
} TaField;

/* What happened to one message.  Every consumed message gets exactly one. */
typedef enum TaOutcome
{
	TA_ACCEPTED,
	TA_LATE,
	TA_REJ_EMPTY,
	TA_REJ_TOO_LARGE,
	TA_REJ_INVALID_UTF8,
	TA_REJ_NOT_JSON,
	TA_REJ_NOT_OBJECT,
	TA_REJ_MISSING_FIELD,
	TA_REJ_WRONG_TYPE,
	TA_REJ_BAD_TIMESTAMP,
	TA_REJ_VALUE_TOO_LONG,
	TA_REJ_FUTURE_TIMESTAMP,
	TA_NUM_OUTCOMES
} TaOutcome;

/* A validated event.  String fields point into parser-owned memory. */
typedef struct TaEvent
{
	int64		ts_ms;			/* event time, ms since the Unix epoch */
	const char *field[TA_NUM_FIELDS];	/* NULL when absent */
	bool		has_status;
	int32		status_code;
	bool		has_latency;
	int64		latency_us;		/* response_time_ms in microseconds */
	char	   *strings;		/* the field strings, NUL-terminated */
	size_t		strings_used;
	char		status_text[12];	/* field[TA_F_STATUS_CODE] points here */
} TaEvent;

extern TaOutcome event_parse(const char *data, size_t len, TaEvent *ev,
							 char *detail, size_t detail_len);
extern TaOutcome event_parse_with(const char *data, size_t len, TaEvent *ev,
								  char *detail, size_t detail_len, bool use_fast);
extern void event_free(TaEvent *ev);
extern const char *outcome_name(TaOutcome outcome);
extern const char *field_name(TaField field);
extern int	field_by_name(const char *name);
extern bool parse_rfc3339(const char *s, int64 *ms);
extern char *format_rfc3339(int64 ms, char *buf, size_t len);

/* ---------------------------------------------------------------------
 * Windows and watermark (window.c)
 * ---------------------------------------------------------------------
 */
extern int	window_count(void);
extern int	window_assign(int64 ts_ms, int64 *starts);
extern int64 window_end(int64 start);
extern int64 window_last_end(int64 ts_ms);

/* SQL datums of the worker's values (datums.c) */
extern Datum ta_us_to_numeric(int64 us);
extern Datum ta_us_sum_to_numeric(int128 us);
extern Datum ta_datum_array(Datum *values, bool *nulls, int n, Oid type);

/* ---------------------------------------------------------------------
 * Shared state (store.c)
 * ---------------------------------------------------------------------
 */

/* One row of trafficagg.aggregates, as the data path sees it. */
typedef struct TaAggregate
{
	bool		in_use;
	uint32		generation;		/* bumped when the slot is reused */
	char		name[NAMEDATALEN];
	int			ndims;
	TaField		dims[TA_MAX_DIMENSIONS];
} TaAggregate;

/* Exact metrics of one group. */
typedef struct TaMetrics
{
	int64		events;
	int64		errors;			/* status_code >= 500 */
	int64		client_errors;	/* 400 <= status_code < 500 */
	int64		latency_count;
	int128		latency_sum_us; /* 1e12 ms per event: int64 would overflow
								 * after 9,223 events */
	int64		latency_min_us;
	int64		latency_max_us;
} TaMetrics;

/* A group copied out of shared memory, with its dimension values resolved. */
typedef struct TaGroupCopy
{
	int			agg;
	int64		window_start;
	char	   *dims[TA_MAX_DIMENSIONS];	/* palloc'd, NULL = missing */
	TaMetrics	m;
	bytea	   *users;			/* postgresql-hll value of the user ids */
	TaLatency  *latency;		/* NULL when no event had a latency */
	TaSketchCopy sk;			/* raw copy, converted after the locks */
} TaGroupCopy;

/* An open window holding data from a partition, and its smallest offset. */
typedef struct TaTrackedWindow
{
	int64		window_end;
	int64		min_offset;
} TaTrackedWindow;

/*
 * A source of events: one Kafka partition, or the SQL ingest path (slot 0).
 * Protected by TaShared.lock.
 */
typedef struct TaSource
{
	bool		in_use;
	bool		is_sql;
	bool		active;			/* has unread data; EOF sources don't hold the
								 * watermark back */
	bool		assigned;		/* currently assigned to the worker */
	char		topic[NAMEDATALEN];
	int32		partition;
	int64		max_event_ms;	/* greatest event time seen */
	/* the greatest event times seen, a min-heap (window.c): the watermark
	 * follows the trafficagg.watermark_events-th greatest */
	int			nrecent;
	int64		recent[TA_MAX_WATERMARK_EVENTS];
	int64		position;		/* next offset to consume */
	int64		resume_offset;	/* stored: where replay starts after a crash */
	int64		replay_until;	/* position stored before the last restart:
								 * messages before it are accounted for */
	int64		end_offset;		/* broker's high watermark, last seen */
	uint64		consumed;
	uint64		outcomes[TA_NUM_OUTCOMES];
	int			ntracked;
	TaTrackedWindow tracked[TA_TRACKED_WINDOWS];
	int64		overflow_min_offset;	/* windows beyond the tracked array */
	int64		overflow_end;
} TaSource;

typedef struct TaShared
{
	LWLock	   *lock;			/* sources, catalog, status */
	LWLock	   *dict_lock;		/* the value dictionary */
	LWLock	   *partition_locks[TA_LOCK_PARTITIONS];	/* the group table */

	/* catalog (under lock; version also read without it) */
	bool		catalog_loaded;
	pg_atomic_uint32 catalog_version;	/* bumped at every change */
	TaAggregate aggs[TA_MAX_AGGREGATES];



	int			nsources;
	TaSource	sources[FLEXIBLE_ARRAY_MEMBER];
} TaShared;

#define TA_SQL_SOURCE 0

extern TaShared *ta_shared;

extern void store_request_shmem(void);
extern Size store_shmem_size(void);
extern void store_check_attached(void);
extern bool store_add_event(const TaEvent *ev, const int64 *starts, int nstarts,
							const int64 *fixed_cutoff, bool *full);
extern long store_group_count(void);
extern bool store_has_kafka_data(void);
extern long store_value_count(void);
extern const char *store_full_setting(void);
extern int	store_window_count(void);
extern int	store_collect_closed(int64 cutoff, TaGroupCopy **out);
extern int	store_collect_oldest_window(TaGroupCopy **out);
extern int	store_collect_live(int agg, TaGroupCopy **out);
extern void store_forget_flushed(void);
extern int	source_lookup(const char *topic, int32 partition, bool create);

/* watermark (window.c) */
extern Size watermark_shmem_size(void);
extern void watermark_shmem_init(void);
extern int64 watermark_get(void);
extern int64 watermark_flushed(void);
extern int64 watermark_replay_cutoff(void);
extern void watermark_restore(int64 stored_ms);
extern void watermark_flushed_through(int64 ms);
extern void watermark_advance(void);
extern void watermark_close_all(void);
extern void source_saw_event_time(TaSource *s, int64 ts_ms);
extern void watermark_rewind(int64 to_ms);

/* ---------------------------------------------------------------------
 * Aggregate catalog (catalog.c)
 * ---------------------------------------------------------------------
 */
extern void catalog_shmem_init(void);
extern void catalog_sync(void);
extern int	catalog_find(const char *name);
extern uint32 catalog_read(TaAggregate *out);
extern uint32 catalog_version(void);
extern bool catalog_loaded(void);
extern int	catalog_ndims(int agg);

/* ---------------------------------------------------------------------
 * Ingest: one message through validation, windowing and accounting
 * (ingest.c), shared by the Kafka worker and trafficagg.ingest().
 * ---------------------------------------------------------------------
 */
extern TaOutcome ingest_message(int src, int64 offset, int64 received_ms,
								const char *data, size_t len,
								bool replay, bool hold, bool *full);

/* ---------------------------------------------------------------------
 * Recovery: the state stored with the rows, replay (recovery.c)
 * ---------------------------------------------------------------------
 */
extern void recovery_load(void);
extern bool recovery_stored_position(const char *topic, int32 partition,
									 int64 *resume_offset, int64 *position);
extern bool recovery_replaying(void);
extern bool recovery_skip_window(int src, int64 offset, int64 window_start);
extern void recovery_note_event(TaSource *s, int64 offset, int64 first_end, int64 last_end);
extern void recovery_write(int64 written_through, int64 watermark, int64 spilled);
extern void recovery_forget_spilled(int64 watermark);
extern void recovery_rewind(int64 to_ms);

/* ---------------------------------------------------------------------
 * Flush (flush.c)
 * ---------------------------------------------------------------------
 */
typedef struct TaFlushResult
{
	int64		watermark;		/* windows ending at or before it were written */
	int64		rows;			/* group rows written */
	int			rejected_taken; /* ring entries written; release after commit */
} TaFlushResult;

/* What a flush writes. */
typedef enum TaFlushKind
{
	FLUSH_CLOSED,				/* the windows the watermark closed */
	FLUSH_CLOSE_ALL,			/* first move the watermark past every window
								 * with data (trafficagg.flush(true)) */
	FLUSH_SPILL_OLDEST,			/* memory is full: the oldest window in memory,
								 * open or not, as partial rows */
	FLUSH_REWIND				/* every window, open ones as partial rows,
								 * then the watermark goes back
								 * (trafficagg.rewind_watermark) */
} TaFlushKind;

extern void flush_windows(TaFlushKind kind, int64 rewind_to, bool with_kafka,
						  TaFlushResult *res);
extern void flush_after_commit(const TaFlushResult *res, double elapsed_ms);
extern void flush_wait_for_backends(void);
extern void flush_rewind_without_worker(int64 to_ms);

/* ---------------------------------------------------------------------
 * Worker (worker.c) and consumer (consume.c)
 * ---------------------------------------------------------------------
 */
extern PGDLLEXPORT void trafficagg_worker_main(Datum arg);
extern void worker_register(void);

#endif							/* TRAFFICAGG_H */
