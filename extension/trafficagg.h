/*-------------------------------------------------------------------------
 *
 * trafficagg.h
 *	  What every file of trafficagg includes first: the fixed limits, time
 *	  conversions and the settings (trafficagg.c).  Each stage of the data
 *	  path has its own header: consume.h -> event.h (parse/validate) ->
 *	  window.h (windows, watermark) -> store.h (aggregate in shared memory) ->
 *	  flush.h -> the SQL functions (sqlfuncs.c); ingest.h runs one message
 *	  through them; source.h, recovery.h, catalog.h and the others hold the
 *	  state their module owns.
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef TRAFFICAGG_H
#define TRAFFICAGG_H

#include "postgres.h"
#include "compat.h"

/* latency sums are 128-bit (TaMetrics); every platform PostgreSQL 15+ builds on with gcc or clang has it */
#ifndef HAVE_INT128
#error "trafficagg needs a compiler with a 128-bit integer type"
#endif

#include "datatype/timestamp.h"

/* ---------------------------------------------------------------------
 * Fixed limits.  These size arrays inside shared structures; everything a
 * user may want to tune is a setting below.
 * ---------------------------------------------------------------------
 */
#define TA_MAX_AGGREGATES		64	/* ceiling of trafficagg.max_aggregates */
#define TA_MAX_DIMENSIONS		8	/* dimensions of one aggregate */
#define TA_LOCK_PARTITIONS		16	/* LWLocks over the group table */
#define TA_TRACKED_WINDOWS		64	/* open windows tracked per partition */
#define TA_BATCH_MAX_GROUPS		128 /* a batch ends once it has this many groups */
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
extern int	ta_dictionary_memory_kb;
extern int	ta_max_partitions;
extern int	ta_workers;
extern bool ta_shared_group;
extern char *ta_ledger_topic;
extern char *ta_debug_crash_at;
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

#endif							/* TRAFFICAGG_H */
