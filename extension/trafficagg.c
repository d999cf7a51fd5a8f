/*-------------------------------------------------------------------------
 *
 * trafficagg.c
 *	  Module entry: settings (every trafficagg.* GUC) and _PG_init, which
 *	  requests shared memory and registers the background worker.
 *
 * The library must be in shared_preload_libraries: its state lives in shared
 * memory sized at server start, and its worker starts with the server.
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "trafficagg.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "event.h"
#include "store.h"
#include "window.h"
#include "worker.h"


PG_MODULE_MAGIC;

void		_PG_init(void);

char	   *ta_brokers = NULL;
char	   *ta_topic = NULL;
char	   *ta_group_id = NULL;
char	   *ta_database = NULL;
char	   *ta_kafka_options = NULL;
char	   *ta_kafka_secrets_file = NULL;
char	   *ta_start_offset = NULL;
int			ta_window_ms = 60000;
int			ta_slide_ms = 0;
int			ta_allowed_lateness_ms = 10000;
int			ta_watermark_events = 10;
int			ta_max_future_ms = 300000;
int			ta_flush_interval_ms = 1000;
int			ta_max_aggregates = 16;
int			ta_max_groups = 100000;
int			ta_max_values = 50000;
int			ta_dictionary_memory_kb = 8192;
int			ta_max_partitions = 256;
int			ta_workers = 1;
bool		ta_shared_group = false;
char	   *ta_ledger_topic = NULL;
char	   *ta_debug_crash_at = NULL;
int			ta_max_event_bytes = 65536;
int			ta_queued_max_kbytes = 65536;
int			ta_rejected_max_rows = 100000;
int			ta_rejected_payload_bytes = 1024;
int			ta_rejected_buffer = 4096;
int			ta_sketch_memory_kb = 16384;
int			ta_hll_log2m = 12;
int			ta_hll_regwidth = 5;
int			ta_hll_expthresh = -1;
bool		ta_hll_sparseon = true;
int			ta_tdigest_compression = 500;

static bool
check_start_offset(char **newval, void **extra, GucSource source)
{
	int64		ms;

	if (pg_strcasecmp(*newval, "earliest") == 0 || pg_strcasecmp(*newval, "latest") == 0 ||
		parse_rfc3339(*newval, &ms))
		return true;
	GUC_check_errdetail("trafficagg.start_offset must be \"earliest\", \"latest\" or an RFC 3339 timestamp with offset.");
	return false;
}

/*
 * A message's dimension values are no longer than the message (value, key
 * and headers, bounded by max_event_bytes; value_area.c allows for the few
 * bytes integer fields' text may add), so with max_event_bytes within
 * dictionary_memory (defined first, and fixed at start) an empty dictionary
 * has room for any message that is not too large, and making room by
 * spilling windows always ends.
 */
static bool
check_max_event_bytes(int *newval, void **extra, GucSource source)
{
	if ((int64) *newval <= (int64) ta_dictionary_memory_kb * 1024)
		return true;
	GUC_check_errdetail("trafficagg.max_event_bytes must not exceed trafficagg.dictionary_memory (%d kB): a message's dimension values must fit in an empty dictionary.",
						ta_dictionary_memory_kb);
	GUC_check_errhint("Raise trafficagg.dictionary_memory and restart the server.");
	return false;
}

/* postgresql-hll encodes expthresh as -1 (auto), 0 (off) or a power of 2 */
static bool
check_hll_expthresh(int *newval, void **extra, GucSource source)
{
	if (*newval <= 0 || (*newval & (*newval - 1)) == 0)
		return true;
	GUC_check_errdetail("trafficagg.hll_expthresh must be -1 (auto), 0 or a power of 2 up to 8192, as in postgresql-hll.");
	return false;
}

static void
define_settings(void)
{
	DefineCustomStringVariable("trafficagg.brokers",
							   "Kafka bootstrap servers (host:port,...); empty: no Kafka, SQL ingest only.",
							   NULL, &ta_brokers, "", PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("trafficagg.topic",
							   "Kafka topic to consume.",
							   NULL, &ta_topic, "web_events", PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("trafficagg.group_id",
							   "Kafka consumer group id.",
							   NULL, &ta_group_id, "trafficagg", PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("trafficagg.database",
							   "Database the worker connects to; the extension must be created there.",
							   NULL, &ta_database, "postgres", PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("trafficagg.kafka_options",
							   "Extra librdkafka properties, \"name=value; name=value\".",
							   "For security.protocol, sasl.*, ssl.* and the like. Visible to superusers only.",
							   &ta_kafka_options, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomStringVariable("trafficagg.kafka_secrets_file",
							   "File of librdkafka properties whose values are secrets (sasl.password=...), one a line.",
							   "Read when the consumer starts; values never appear in errors, logs or status. Visible to superusers only.",
							   &ta_kafka_secrets_file, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomStringVariable("trafficagg.start_offset",
							   "Where to start a partition with no stored offset: earliest, latest or an RFC 3339 timestamp.",
							   NULL, &ta_start_offset, "earliest", PGC_SIGHUP, 0,
							   check_start_offset, NULL, NULL);
	DefineCustomIntVariable("trafficagg.window",
							"Length of a window.",
							NULL, &ta_window_ms, 60000, 1, INT_MAX, PGC_POSTMASTER,
							GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("trafficagg.slide",
							"Hop between window starts; 0 for tumbling windows.",
							NULL, &ta_slide_ms, 0, 0, INT_MAX, PGC_POSTMASTER,
							GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("trafficagg.allowed_lateness",
							"How far behind the greatest event time the watermark trails.",
							NULL, &ta_allowed_lateness_ms, 10000, 0, INT_MAX, PGC_SIGHUP,
							GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("trafficagg.watermark_events",
							"Events of a partition that must have reached an event time before the watermark follows it.",
							"So that a few events with a wrong clock can't close windows for everyone; 1 follows the greatest event time.",
							&ta_watermark_events, 10, 1, TA_MAX_WATERMARK_EVENTS, PGC_SIGHUP,
							0, NULL, NULL, NULL);
	DefineCustomIntVariable("trafficagg.max_future",
							"How far an event time may be ahead of the time the message was sent; later ones are rejected as future_timestamp.",
							"Compared with the Kafka message timestamp, or the server clock for trafficagg.ingest(); -1 accepts any.",
							&ta_max_future_ms, 300000, -1, INT_MAX, PGC_SIGHUP,
							GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("trafficagg.flush_interval",
							"How often the worker writes offsets and dead letters when no window closes.",
							NULL, &ta_flush_interval_ms, 1000, 10, 3600000, PGC_SIGHUP,
							GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("trafficagg.max_aggregates",
							"Rows of trafficagg.aggregates the worker maintains; inserting more is an error.",
							NULL, &ta_max_aggregates, 16, 1, TA_MAX_AGGREGATES, PGC_POSTMASTER,
							0, NULL, NULL, NULL);
	DefineCustomIntVariable("trafficagg.max_groups",
							"Groups (aggregate, window, dimension values) held in shared memory.",
							NULL, &ta_max_groups, 100000, 100, 100000000, PGC_POSTMASTER,
							0, NULL, NULL, NULL);
	DefineCustomIntVariable("trafficagg.max_values",
							"Distinct dimension values (pages, countries, ...) held by the open groups.",
							"Their bytes are bounded by trafficagg.dictionary_memory.",
							&ta_max_values, 50000, 100, 100000000, PGC_POSTMASTER,
							0, NULL, NULL, NULL);
	/* before max_event_bytes, whose check reads it */
	DefineCustomIntVariable("trafficagg.dictionary_memory",
							"Shared memory for the bytes of the distinct dimension values held by the open groups.",
							"When it is used up, the oldest open window is written early, as when max_groups is reached. At least trafficagg.max_event_bytes.",
							&ta_dictionary_memory_kb, 8192, 64, INT_MAX / 2, PGC_POSTMASTER,
							GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomIntVariable("trafficagg.workers",
							"Background workers that consume and aggregate.",
							"One does everything. With N > 1, the N workers are members of the consumer group trafficagg.group_id, Kafka sharing the partitions among them, and one more process, the writer, takes the SQL requests and does every flush: N + 1 background workers (max_worker_processes).",
							&ta_workers, 1, 1, 64, PGC_POSTMASTER,
							0, NULL, NULL, NULL);
	DefineCustomBoolVariable("trafficagg.shared_group",
							 "Several servers consume the topic as one consumer group.",
							 "Each server consumes a share of the partitions; every flush writes every window (open ones as partial rows) and commits the rows and the group's offsets together, by PostgreSQL's two-phase commit and a Kafka transaction. Needs max_prepared_transactions >= 1 and trafficagg.workers = 1.",
							 &ta_shared_group, false, PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("trafficagg.ledger_topic",
							   "Kafka topic where trafficagg.shared_group records each server's committed flushes.",
							   "One record per flush, keyed by the server; read after a crash to finish or undo a flush left prepared. Best created compacted (cleanup.policy=compact).",
							   &ta_ledger_topic, "trafficagg_ledger", PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("trafficagg.debug_crash_at",
							   "For tests: where a flush of trafficagg.shared_group crashes the server's processes.",
							   "'prepared' (after PREPARE TRANSACTION) or 'kafka_committed' (after the Kafka transaction, before COMMIT PREPARED); not again in a start of the worker that decided a flush left prepared under the same value. Empty: never.",
							   &ta_debug_crash_at, "", PGC_SUSET, GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
	DefineCustomIntVariable("trafficagg.max_partitions",
							"Kafka partitions the worker can track.",
							NULL, &ta_max_partitions, 256, 1, 65536, PGC_POSTMASTER,
							0, NULL, NULL, NULL);
	DefineCustomIntVariable("trafficagg.max_event_bytes",
							"Largest message accepted; larger ones are rejected as too_large.",
							"The value, key and headers together. At most trafficagg.dictionary_memory.",
							&ta_max_event_bytes, 65536, 64, 64 * 1024 * 1024, PGC_SIGHUP,
							GUC_UNIT_BYTE, check_max_event_bytes, NULL, NULL);
	DefineCustomIntVariable("trafficagg.queued_max_kbytes",
							"Memory bound of the messages librdkafka prefetches (queued.max.messages.kbytes).",
							NULL, &ta_queued_max_kbytes, 65536, 64, 2097151, PGC_SIGHUP,
							GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomIntVariable("trafficagg.rejected_max_rows",
							"Rows kept in trafficagg.rejected_events; the oldest are deleted beyond it.",
							NULL, &ta_rejected_max_rows, 100000, 0, INT_MAX, PGC_SIGHUP,
							0, NULL, NULL, NULL);
	DefineCustomIntVariable("trafficagg.rejected_payload_bytes",
							"Bytes of each rejected message kept in trafficagg.rejected_events.",
							NULL, &ta_rejected_payload_bytes, 1024, 0, 1024 * 1024, PGC_POSTMASTER,
							GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomIntVariable("trafficagg.rejected_buffer",
							"Rejected Kafka messages queued in shared memory between flushes.",
							NULL, &ta_rejected_buffer, 4096, 16, 1000000, PGC_POSTMASTER,
							0, NULL, NULL, NULL);
	DefineCustomIntVariable("trafficagg.sketch_memory",
							"Shared memory for the unique-user and latency sketches of open groups.",
							"When it is used up, the oldest open window is written early, as when max_groups is reached.",
							&ta_sketch_memory_kb, 16384, 128, INT_MAX / 2, PGC_POSTMASTER,
							GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomIntVariable("trafficagg.hll_log2m",
							"log2 of the HyperLogLog registers of the users column (postgresql-hll's log2m).",
							"12 gives a standard error of 1.6%.",
							&ta_hll_log2m, 12, 4, 16, PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("trafficagg.hll_regwidth",
							"Bits per HyperLogLog register (postgresql-hll's regwidth).",
							NULL, &ta_hll_regwidth, 5, 1, 7, PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("trafficagg.hll_expthresh",
							"Distinct users kept exactly before HyperLogLog registers are used (postgresql-hll's expthresh; -1: auto).",
							NULL, &ta_hll_expthresh, -1, -1, 8192, PGC_POSTMASTER, 0,
							check_hll_expthresh, NULL, NULL);
	DefineCustomBoolVariable("trafficagg.hll_sparseon",
							 "Whether users values may use postgresql-hll's sparse form (postgresql-hll's sparseon).",
							 NULL, &ta_hll_sparseon, true, PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("trafficagg.tdigest_compression",
							"Compression of the latency t-digests written (how many centroids a merge keeps).",
							NULL, &ta_tdigest_compression, 500, 200, 10000, PGC_SIGHUP,
							0, NULL, NULL, NULL);
	MarkGUCPrefixReserved("trafficagg");
}

void
_PG_init(void)
{
	if (IsBinaryUpgrade)
		return;
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("trafficagg must be loaded via shared_preload_libraries"),
				 errhint("Add trafficagg to shared_preload_libraries in postgresql.conf and restart the server.")));

	define_settings();
	if (ta_slide_ms > ta_window_ms)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("trafficagg.slide (%d ms) is longer than trafficagg.window (%d ms)",
						ta_slide_ms, ta_window_ms),
				 errhint("Use a slide no longer than the window, or 0 for tumbling windows.")));
	if (window_count() > TA_MAX_WINDOWS_PER_EVENT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("trafficagg.window / trafficagg.slide is %d, at most %d windows may overlap",
						window_count(), TA_MAX_WINDOWS_PER_EVENT)));

	store_request_shmem();
	worker_register();
}
