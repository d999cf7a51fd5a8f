/*-------------------------------------------------------------------------
 *
 * consume.c
 *	  The Kafka consumer: a librdkafka high-level consumer owned by the
 *	  worker process, feeding each message to ingest.c.
 *
 * Threads.  librdkafka runs its own threads; none of them ever calls into
 * PostgreSQL.  Logs (log.queue), errors and rebalances are queued by
 * librdkafka and served by callbacks *in the worker's thread*, while it
 * polls.  The worker waits for the next message inside librdkafka
 * (rd_kafka_consumer_poll, at most worker.c's TA_KAFKA_WAIT_MS, so that signals, flush
 * requests and timers are looked at in time), then takes whatever else is
 * queued without waiting (rd_kafka_consume_batch_queue).  Callbacks never
 * raise ERRORs: a longjmp through librdkafka's frames would be unsafe.
 *
 * Offsets.  Auto-commit is off.  The truth is trafficagg.kafka_offsets (recovery.c),
 * written by the flush in the same transaction as the rows.  On assignment a
 * partition starts at, in order of preference: the position in shared
 * memory (the worker restarted but the server did not: shared memory still
 * holds everything before it); the stored resume offset (after a server
 * restart or crash: replay up to the stored position only rebuilds open
 * windows); trafficagg.start_offset.  Every second (and after each flush of
 * a worker that consumes) the positions are committed to Kafka too, for the
 * benefit of lag monitoring only.
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "trafficagg.h"

#include <sys/stat.h>

#include <librdkafka/rdkafka.h>

#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "consume.h"
#include "event.h"
#include "ingest.h"
#include "recovery.h"
#include "source.h"
#include "status.h"
#include "window.h"



static rd_kafka_t *rk = NULL;
static bool kafka_configured = false;	/* consumer_kafka_configured() */
static rd_kafka_queue_t *rkqu = NULL;
static char *consumer_signature = NULL;	/* settings it was made with */

/* source slot of each partition of the topic, -1 if not known yet */
static int *slot_of_partition = NULL;
static int	nslots_cached = 0;


/*
 * The partitions assigned to this worker's consumer (source slots): with
 * trafficagg.workers > 1 the others belong to the other workers.
 */
static int *my_partitions = NULL;
static int	nmy_partitions = 0;

/*
 * trafficagg.shared_group: the partitions revoked and not handed off yet
 * (see rebalance_cb); whether the consumer is being closed (then a
 * revocation gives them up at once: the caller flushed before).
 */
static rd_kafka_topic_partition_list_t *handoff = NULL;
static bool closing = false;

/*
 * ... and the group metadata (member id, generation) the partitions were
 * assigned under: what the group commit fences its offsets with.  Not the
 * consumer's current metadata: once librdkafka itself finds the session
 * timed out it forgets its member id and generation, and offsets sent with
 * those (generation -1) would not be fenced at all.
 */
static rd_kafka_consumer_group_metadata_t *assigned_under = NULL;

#define TA_COMMITTED_WAIT_MS 10000

/* messages taken from librdkafka and not served yet (shared memory was full) */
static rd_kafka_message_t **held = NULL;
static int	nheld = 0;
static int	held_next = 0;

static rd_kafka_resp_err_t last_logged_error = RD_KAFKA_RESP_ERR_NO_ERROR;

/* the brokers' state this process last set (it is the only writer) */
static char broker_state[32] = "";

static void
set_broker_state(const char *state)
{
	/* set for every message: unchanged is the usual case, and costs no lock */
	if (strcmp(broker_state, state) == 0)
		return;
	strlcpy(broker_state, state, sizeof(broker_state));
	if (status_set_broker_state(state))
		ereport(LOG, (errmsg("trafficagg: Kafka brokers %s: %s", ta_brokers, state)));
	if (strcmp(state, "up") == 0)
		last_logged_error = RD_KAFKA_RESP_ERR_NO_ERROR; /* log the next outage */
}

static void
set_last_error(const char *msg)
{
	status_set_error(msg);
}

/*
 * librdkafka log lines, served in our thread thanks to log.queue.  Some
 * repeat at every retry while a broker is away: connection failures (FAIL;
 * they reach error_cb too, which logs once per change) and failed commits of
 * the informational Kafka offsets (COMMITFAIL); those are not logged.
 */
static void
log_cb(const rd_kafka_t *k, int level, const char *fac, const char *buf)
{
	if (level <= 4 &&			/* LOG_WARNING and worse */
		strcmp(fac, "FAIL") != 0 && strcmp(fac, "COMMITFAIL") != 0)
		ereport(LOG, (errmsg("trafficagg: librdkafka %s: %s", fac, buf)));
}

/* Errors: logged once per change of error, not per retry. */
static void
error_cb(rd_kafka_t *k, int err, const char *reason, void *opaque)
{
	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ||
		(err == RD_KAFKA_RESP_ERR__TRANSPORT && strstr(reason, "Connection refused") != NULL))
		set_broker_state("down");
	set_last_error(reason);
	if (err != last_logged_error)
	{
		last_logged_error = err;
		ereport(LOG, (errmsg("trafficagg: Kafka error: %s: %s",
							 rd_kafka_err2name(err), reason)));
	}
}


/*
 * trafficagg.start_offset as a time: the offset of the first message at or
 * after it, per partition of the topic without a stored offset, asked of the
 * brokers when the consumer starts (resolve_start_time), so that the
 * rebalance callback, where librdkafka waits for us, does not wait for them.
 */
static rd_kafka_topic_partition_list_t *start_time_offsets = NULL;
static int	start_time_partitions = -1;	/* the topic's partitions then; -1: unknown */

/* How long the consumer's start may wait for the brokers to answer. */
#define TA_START_TIME_WAIT_MS 10000
/* ... and the rebalance callback, for a partition not known at start. */
#define TA_START_TIME_LATE_WAIT_MS 1000

static bool
start_time(int64 *ts)
{
	return pg_strcasecmp(ta_start_offset, "earliest") != 0 &&
		pg_strcasecmp(ta_start_offset, "latest") != 0 &&
		parse_rfc3339(ta_start_offset, ts);
}

static void
resolve_start_time(void)
{
	int64		ts;
	rd_kafka_topic_t *rkt;
	const rd_kafka_metadata_t *md = NULL;
	rd_kafka_topic_partition_list_t *q;
	rd_kafka_resp_err_t err;

	if (start_time_offsets != NULL)
		rd_kafka_topic_partition_list_destroy(start_time_offsets);
	start_time_offsets = NULL;
	start_time_partitions = -1;
	if (!start_time(&ts))
		return;

	rkt = rd_kafka_topic_new(rk, ta_topic, NULL);
	err = rd_kafka_metadata(rk, 0, rkt, &md, TA_START_TIME_WAIT_MS);
	q = rd_kafka_topic_partition_list_new(8);
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
		md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
		for (int i = 0; i < md->topics[0].partition_cnt; i++)
		{
			int32		p = md->topics[0].partitions[i].id;

			if (!recovery_has_stored(ta_topic, p))
				rd_kafka_topic_partition_list_add(q, ta_topic, p)->offset = ts;
		}
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
		md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
		start_time_partitions = md->topics[0].partition_cnt;
	if (md != NULL)
		rd_kafka_metadata_destroy(md);
	md = NULL;
	rd_kafka_topic_destroy(rkt);
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR && start_time_partitions < 0)
		err = RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR && q->cnt > 0)
		err = rd_kafka_offsets_for_times(rk, q, TA_START_TIME_WAIT_MS);
	/* every message older: start at the end as it is now, not when assigned */
	for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < q->cnt; i++)
	{
		int64		lo,
					hi;

		if (q->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR && q->elems[i].offset < 0 &&
			rd_kafka_query_watermark_offsets(rk, q->elems[i].topic, q->elems[i].partition,
											 &lo, &hi, TA_START_TIME_LATE_WAIT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR)
			q->elems[i].offset = hi;
	}
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		ereport(LOG,
				(errmsg("trafficagg: could not look up the offsets of trafficagg.start_offset %s: %s; partitions are looked up when assigned",
						ta_start_offset, rd_kafka_err2str(err))));
		rd_kafka_topic_partition_list_destroy(q);
		return;
	}
	start_time_offsets = q;
}

/* The offset a partition starts at for trafficagg.start_offset as a time. */
static int64
start_time_offset(const char *topic, int32 partition, int64 ts)
{
	rd_kafka_topic_partition_t *found = start_time_offsets
		? rd_kafka_topic_partition_list_find(start_time_offsets, topic, partition) : NULL;
	rd_kafka_topic_partition_list_t *q;
	int64		offset;

	if (found != NULL && found->err == RD_KAFKA_RESP_ERR_NO_ERROR)
		/* -1: every message is older: start at the end */
		return found->offset >= 0 ? found->offset : RD_KAFKA_OFFSET_END;

	/* a partition added since the start: ask now, briefly */
	q = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(q, topic, partition)->offset = ts;
	if (rd_kafka_offsets_for_times(rk, q, TA_START_TIME_LATE_WAIT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR &&
		q->elems[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
		offset = q->elems[0].offset >= 0 ? q->elems[0].offset : RD_KAFKA_OFFSET_END;
	else if (start_time_partitions >= 0 && partition >= start_time_partitions)
	{
		/* added since the start: it holds only messages newer than the start */
		offset = RD_KAFKA_OFFSET_BEGINNING;
		ereport(LOG,
				(errmsg("trafficagg: partition %d of \"%s\", added since the consumer started, is read from its beginning",
						partition, topic)));
	}
	else
	{
		offset = RD_KAFKA_OFFSET_END;
		ereport(WARNING,
				(errmsg("trafficagg: partition %d of \"%s\" starts at its end: the brokers did not say where trafficagg.start_offset %s is in it",
						partition, topic, ta_start_offset),
				 errhint("Messages sent before the partition was assigned are not read; check the brokers.")));
	}
	rd_kafka_topic_partition_list_destroy(q);
	return offset;
}

/* A partition is this worker's now. */
static void
note_assigned(int src)
{
	int			j = 0;

	source_set_assigned(src, true);
	source_set_active(src, true);
	while (j < nmy_partitions && my_partitions[j] != src)
		j++;
	if (j == nmy_partitions)
		my_partitions[nmy_partitions++] = src;
}

/*
 * Choose where each newly assigned partition starts; see the file header.
 * With trafficagg.shared_group the group's committed offsets are the only
 * truth (another server may have moved them since this one last owned the
 * partition): they are asked of the brokers here, in the callback.
 */
static void
place_partitions(rd_kafka_t *k, rd_kafka_topic_partition_list_t *parts)
{
	int64		start_ts;
	bool		by_time = start_time(&start_ts);
	rd_kafka_topic_partition_list_t *committed = NULL;

	if (ta_shared_group)
	{
		rd_kafka_resp_err_t err;

		committed = rd_kafka_topic_partition_list_copy(parts);
		err = rd_kafka_committed(k, committed, TA_COMMITTED_WAIT_MS);
		if (err)
		{
			/*
			 * Then librdkafka fetches them itself as the partitions start
			 * (RD_KAFKA_OFFSET_INVALID), falling back to auto.offset.reset
			 * (trafficagg.start_offset, but not a time) where none is.
			 */
			ereport(LOG,
					(errmsg("trafficagg: could not read the group's committed offsets: %s",
							rd_kafka_err2str(err)),
					 errdetail("librdkafka fetches them itself as the partitions start; a partition "
							   "without one starts at its latest offset if trafficagg.start_offset is "
							   "\"latest\", else at its earliest.")));
			rd_kafka_topic_partition_list_destroy(committed);
			committed = NULL;
		}
	}

	for (int i = 0; i < parts->cnt; i++)
	{
		rd_kafka_topic_partition_t *p = &parts->elems[i];
		int			src = source_lookup(p->topic, p->partition, true);
		int64		offset;

		if (src < 0)
		{
			ereport(WARNING,
					(errmsg("trafficagg: no room to track partition %d of \"%s\"; it is not consumed",
							p->partition, p->topic),
					 errhint("Raise trafficagg.max_partitions and restart the server.")));
			p->offset = RD_KAFKA_OFFSET_END;
			continue;
		}
		note_assigned(src);
		if (ta_shared_group)
		{
			/* the group's committed offset, if any */
			bool		known = committed != NULL &&
				committed->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
				committed->elems[i].offset >= 0;

			recovery_take_over(src, known ? committed->elems[i].offset : TA_NO_OFFSET);
			if (known || committed == NULL)
			{
				p->offset = known ? committed->elems[i].offset : RD_KAFKA_OFFSET_INVALID;
				continue;
			}
		}
		else if (recovery_place(src, &offset))
		{
			p->offset = offset;
			continue;
		}
		if (by_time)
			p->offset = start_time_offset(p->topic, p->partition, start_ts);
		else
			p->offset = pg_strcasecmp(ta_start_offset, "latest") == 0
				? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
	}
	if (committed != NULL)
		rd_kafka_topic_partition_list_destroy(committed);
}

/*
 * Partitions revoked: this worker no longer owns them, and the messages of
 * theirs it has taken but not served are dropped (they are after the
 * position, which is all the next owner reads: another worker of this server
 * starts at the position in shared memory).
 */
static void
revoke_partitions(rd_kafka_topic_partition_list_t *parts)
{
	for (int i = 0; i < parts->cnt; i++)
	{
		int			src = source_lookup(parts->elems[i].topic, parts->elems[i].partition, false);
		int			kept = 0;

		if (src < 0)
			continue;
		source_set_assigned(src, false);
		for (int j = 0; j < nmy_partitions; j++)
			if (my_partitions[j] != src)
				my_partitions[kept++] = my_partitions[j];
		nmy_partitions = kept;
	}
	for (int h = held_next; h < nheld; h++)
	{
		rd_kafka_message_t *m = held[h];

		if (m == NULL)
			continue;
		for (int i = 0; i < parts->cnt; i++)
			if (m->partition == parts->elems[i].partition &&
				strcmp(rd_kafka_topic_name(m->rkt), parts->elems[i].topic) == 0)
			{
				rd_kafka_message_destroy(m);
				held[h] = NULL;
				break;
			}
	}
}

/*
 * The rebalance callback.  With trafficagg.shared_group a revocation is a
 * hand-off to another server, which starts at the group's committed offsets:
 * everything this server counted must be written, and the offsets committed
 * with it, first.  The callback cannot flush (an ERROR must not unwind
 * through librdkafka), so it only records the revocation and returns; the
 * worker loop sees consumer_handoff_pending(), flushes, and calls
 * consumer_handoff_done(), which gives the partitions up.  librdkafka waits
 * for that call (within max.poll.interval.ms) before it rejoins the group,
 * so the generation the flush commits under is still this server's.
 */
static void
rebalance_cb(rd_kafka_t *k, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	if (my_partitions == NULL)
		my_partitions = MemoryContextAlloc(TopMemoryContext, source_slots() * sizeof(int));
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
	{
		place_partitions(k, parts);
		rd_kafka_assign(k, parts);
		if (assigned_under != NULL)
			rd_kafka_consumer_group_metadata_destroy(assigned_under);
		assigned_under = rd_kafka_consumer_group_metadata(k);
		ereport(LOG, (errmsg("trafficagg: assigned %d partition(s) of \"%s\"",
							 parts->cnt, ta_topic)));
	}
	else if (ta_shared_group && !closing)
	{
		if (handoff != NULL)
			rd_kafka_topic_partition_list_destroy(handoff);
		handoff = rd_kafka_topic_partition_list_copy(parts);
		ereport(LOG, (errmsg("trafficagg: %d partition(s) of \"%s\" revoked: writing what this server counted before handing them off",
							 parts->cnt, ta_topic)));
	}
	else
	{
		revoke_partitions(parts);
		rd_kafka_assign(k, NULL);
		ereport(LOG, (errmsg("trafficagg: %d partition(s) of \"%s\" revoked",
							 parts->cnt, ta_topic)));
	}
}



/* trafficagg.shared_group: partitions revoked and not handed off yet? */
bool
consumer_handoff_pending(void)
{
	return handoff != NULL;
}

/*
 * What this server counted of the revoked partitions is written and their
 * offsets committed (or could not be: the caller then discards it):
 * give them up.
 */
void
consumer_handoff_done(void)
{
	if (handoff == NULL)
		return;
	revoke_partitions(handoff);
	rd_kafka_assign(rk, NULL);
	ereport(LOG, (errmsg("trafficagg: %d partition(s) of \"%s\" handed off",
						 handoff->cnt, ta_topic)));
	rd_kafka_topic_partition_list_destroy(handoff);
	handoff = NULL;
}

/*
 * For the group commit: the position of every partition this consumer owns
 * (revoked ones included until handed off), as the offsets to commit, and
 * the group metadata they were assigned under, which fences the commit to
 * that generation (NULL if none; the consumer's, not to be destroyed).
 * NULL without a consumer.  Caller destroys the list.
 */
rd_kafka_topic_partition_list_t *
consumer_owned_positions(rd_kafka_consumer_group_metadata_t **metadata)
{
	rd_kafka_topic_partition_list_t *list;

	*metadata = NULL;
	if (rk == NULL)
		return NULL;
	list = rd_kafka_topic_partition_list_new(Max(nmy_partitions, 1));
	for (int i = 0; i < nmy_partitions; i++)
	{
		int64		position,
					resume;

		recovery_read(my_partitions[i], &position, &resume);
		if (position != TA_NO_OFFSET)
			rd_kafka_topic_partition_list_add(list, source_topic(my_partitions[i]),
											  source_partition(my_partitions[i]))->offset = position;
	}
	*metadata = assigned_under;
	return list;
}

/*
 * Has librdkafka found this consumer's assignment lost (the session timed
 * out: the group may have given the partitions to another member)?
 */
bool
consumer_assignment_lost(void)
{
	return rk != NULL && rd_kafka_assignment_lost(rk);
}

/* A string naming every setting the consumer is built from. */
static char *
settings_signature(void)
{
	struct stat st;
	int64		secrets_mtime = 0;

	/* an edited secrets file counts as a change (its contents stay out of memory) */
	if (ta_kafka_secrets_file[0] != '\0' && stat(ta_kafka_secrets_file, &st) == 0)
		secrets_mtime = (int64) st.st_mtime;
	return psprintf("%s|%s|%s|%s|%s|%d|%s|" INT64_FORMAT, ta_brokers, ta_topic, ta_group_id,
					ta_kafka_options, ta_start_offset, ta_queued_max_kbytes,
					ta_kafka_secrets_file, secrets_mtime);
}

bool
consumer_settings_changed(void)
{
	char	   *sig = settings_signature();
	bool		changed = consumer_signature == NULL || strcmp(sig, consumer_signature) != 0;

	pfree(sig);
	return changed;
}

/* Set a librdkafka property or ERROR (conf destroyed); groupcommit.c's too. */
void
consumer_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
	char		errstr[512];

	if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
	{
		rd_kafka_conf_destroy(conf);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid Kafka setting \"%s\": %s", name, errstr),
				 errhint("Check trafficagg.kafka_options and the other trafficagg.* settings.")));
	}
}

/*
 * Is a librdkafka property's value a secret (never to be shown in an error,
 * a log line or status)?  Passwords, keys, secrets, JAAS and OAUTHBEARER
 * configurations.
 */
static bool
is_secret_property(const char *name)
{
	static const char *const marks[] = {"password", "passphrase", "secret", "jaas",
	"oauthbearer.config", "token", ".key.pem", "ssl_key", "keystore"};

	for (int i = 0; i < lengthof(marks); i++)
		if (strstr(name, marks[i]) != NULL)
			return true;
	return false;
}

/*
 * trafficagg.kafka_options: "name=value; name=value".  A value may be in
 * double quotes, which it must be if it contains ';' (a password may):
 * sasl.password="Secr3t;Pa55=w0rd", with "" for a double quote inside.
 * Errors name the entry and the property, never a secret's value: when an
 * entry fails right after an unquoted secret it may be the secret's tail,
 * and is then not named either.
 */
#define UNQUOTED_SECRET_HINT \
	"It follows a secret whose value is not quoted: a value containing \";\" must be in double quotes, as in sasl.password=\"a;b\"."

static void
apply_kafka_options(rd_kafka_conf_t *conf, const char *options, const char *source,
					bool all_secret)
{
	const char *p = options;
	int			entry = 0;
	bool		after_unquoted_secret = false;
	StringInfoData name,
				value;

	initStringInfo(&name);
	initStringInfo(&value);
	for (;;)
	{
		bool		quoted = false;
		char		errstr[512];

		while (*p == ' ' || *p == '\t' || *p == ';' || *p == '\n' || *p == '\r')
			p++;
		if (*p == '\0')
			break;
		entry++;
		resetStringInfo(&name);
		resetStringInfo(&value);
		while (*p != '\0' && *p != '=' && *p != ';' && *p != '\n')
			appendStringInfoChar(&name, *p++);
		while (name.len > 0 && (name.data[name.len - 1] == ' ' || name.data[name.len - 1] == '\t'))
			name.data[--name.len] = '\0';
		if (*p != '=')
		{
			rd_kafka_conf_destroy(conf);
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("entry %d of %s is not name=value", entry, source),
					 after_unquoted_secret
					 ? errhint(UNQUOTED_SECRET_HINT)
					 : errhint("Separate entries with semicolons, as in \"security.protocol=SSL; ssl.ca.location=/etc/ca.pem\".")));
		}
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '"')
		{
			quoted = true;
			for (p++;; p++)
			{
				if (*p == '\0')
				{
					rd_kafka_conf_destroy(conf);
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("entry %d of %s has no closing double quote", entry, source),
							 errhint("Write a double quote inside a quoted value as \"\".")));
				}
				if (*p == '"' && p[1] == '"')
					appendStringInfoChar(&value, *p++);
				else if (*p == '"')
					break;
				else
					appendStringInfoChar(&value, *p);
			}
			p++;
			while (*p == ' ' || *p == '\t')
				p++;
			if (*p != '\0' && *p != ';' && *p != '\n' && *p != '\r')
			{
				rd_kafka_conf_destroy(conf);
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("entry %d of %s has text after its quoted value", entry, source)));
			}
		}
		else
		{
			while (*p != '\0' && *p != ';' && *p != '\n')
				appendStringInfoChar(&value, *p++);
			while (value.len > 0 && (value.data[value.len - 1] == ' ' || value.data[value.len - 1] == '\t' ||
									 value.data[value.len - 1] == '\r'))
				value.data[--value.len] = '\0';
		}

		if (rd_kafka_conf_set(conf, name.data, value.data, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
		{
			bool		secret = all_secret || is_secret_property(name.data);

			/*
			 * A name is shown only if it looks like one (a mangled entry may
			 * hold part of a value) and does not follow an unquoted secret.
			 */
			bool		hide_name = after_unquoted_secret ||
				strspn(name.data, "abcdefghijklmnopqrstuvwxyz0123456789._-") != (size_t) name.len;

			rd_kafka_conf_destroy(conf);
			if (hide_name)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("entry %d of %s is not a valid Kafka setting", entry, source),
						 after_unquoted_secret
						 ? errhint(UNQUOTED_SECRET_HINT)
						 : errhint("Entries are name=value, names as librdkafka spells them.")));
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid Kafka setting \"%s\" (entry %d of %s): %s",
							name.data, entry, source,
							secret ? "the value is not accepted (not shown: it is a secret)" : errstr)));
		}
		after_unquoted_secret = !quoted && (all_secret || is_secret_property(name.data));
		/* don't leave a secret in freed memory longer than needed */
		memset(value.data, 0, value.maxlen);
	}
	pfree(name.data);
	pfree(value.data);
}

/*
 * The contents of trafficagg.kafka_secrets_file: the same "name=value"
 * entries as trafficagg.kafka_options, one a line (or separated by ';'),
 * lines starting with '#' ignored.  Secrets kept there never appear in
 * postgresql.conf, nor in the server log line PostgreSQL writes when a
 * setting changes on reload.
 */
static char *
read_secrets_file(const char *path, rd_kafka_conf_t *conf)
{
	FILE	   *f = AllocateFile(path, "r");
	StringInfoData buf;
	char		chunk[4096];
	size_t		n;

	if (f == NULL)
	{
		int			save_errno = errno;

		rd_kafka_conf_destroy(conf);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open trafficagg.kafka_secrets_file \"%s\": %m", path)));
	}
	initStringInfo(&buf);
	/* whole, then comment lines blanked (a line may be of any length) */
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		appendBinaryStringInfo(&buf, chunk, n);
	memset(chunk, 0, sizeof(chunk));
	for (char *l = buf.data; l < buf.data + buf.len;)
	{
		char	   *eol = memchr(l, '\n', buf.data + buf.len - l);
		char	   *p = l;

		if (eol == NULL)
			eol = buf.data + buf.len;
		while (p < eol && (*p == ' ' || *p == '\t'))
			p++;
		if (p < eol && *p == '#')
			memset(p, ' ', eol - p);
		l = eol + 1;
	}
	if (memchr(buf.data, '\0', buf.len) != NULL)
	{
		memset(buf.data, 0, buf.len);
		FreeFile(f);
		rd_kafka_conf_destroy(conf);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("trafficagg.kafka_secrets_file \"%s\" contains a zero byte", path)));
	}
	FreeFile(f);
	return buf.data;
}

/*
 * A librdkafka configuration with what every client of this server's
 * brokers needs: the brokers, the client id, and the log and error
 * callbacks, served in the caller's thread (log.queue: the caller polls).
 * The consumer below adds its own properties, and so does the group commit
 * (groupcommit.c); each then applies the user's with
 * consumer_apply_user_options(), last.
 */
rd_kafka_conf_t *
consumer_client_conf(void)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();

	consumer_conf_set(conf, "bootstrap.servers", ta_brokers);
	consumer_conf_set(conf, "client.id", "trafficagg");
	consumer_conf_set(conf, "log.queue", "true");
	rd_kafka_conf_set_log_cb(conf, log_cb);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	return conf;
}

/* trafficagg.kafka_options and the secrets file, onto conf. */
void
consumer_apply_user_options(rd_kafka_conf_t *conf)
{
	apply_kafka_options(conf, ta_kafka_options, "trafficagg.kafka_options", false);
	if (ta_kafka_secrets_file[0] != '\0')
	{
		char	   *secrets = read_secrets_file(ta_kafka_secrets_file, conf);

		apply_kafka_options(conf, secrets, "trafficagg.kafka_secrets_file", true);
		memset(secrets, 0, strlen(secrets));
		pfree(secrets);
	}
}

/*
 * Create the consumer and subscribe.  Caller is in a transaction (to read
 * the stored offsets).  Returns false if no brokers are configured.  join
 * false: only read the stored offsets (the leader of several workers writes
 * and consumes nothing, see worker.c).
 */
bool
consumer_start(bool join)
{
	rd_kafka_conf_t *conf;
	char		errstr[512];
	char		buf[32];
	rd_kafka_topic_partition_list_t *topics;
	rd_kafka_resp_err_t err;

	char	   *sig = settings_signature();

	/* (each restart of the consumer replaces what the last one kept) */
	if (consumer_signature != NULL)
		pfree(consumer_signature);
	consumer_signature = MemoryContextStrdup(TopMemoryContext, sig);
	pfree(sig);
	for (int i = 0; i < nslots_cached; i++)
		slot_of_partition[i] = -1;	/* the topic may have changed */
	if (ta_brokers[0] == '\0')
	{
		kafka_configured = false;
		set_broker_state("not configured");
		return false;
	}

	/* (shared by servers: the group's offsets say where to resume) */
	recovery_load(!ta_shared_group);
	kafka_configured = true;
	if (!join)
		return false;

	conf = consumer_client_conf();
	consumer_conf_set(conf, "group.id", ta_group_id);
	consumer_conf_set(conf, "enable.auto.commit", "false");
	consumer_conf_set(conf, "enable.auto.offset.store", "false");
	consumer_conf_set(conf, "enable.partition.eof", "true");
	consumer_conf_set(conf, "auto.offset.reset",
			 pg_strcasecmp(ta_start_offset, "latest") == 0 ? "latest" : "earliest");
	snprintf(buf, sizeof(buf), "%d", ta_queued_max_kbytes);
	consumer_conf_set(conf, "queued.max.messages.kbytes", buf);

	/*
	 * Keep the fetcher busy while a backlog is read: librdkafka 2.0.2 backs
	 * off a partition's fetches for a whole second once its queue is over
	 * queued.min.messages (measured in bench/: 78k events/s with the
	 * defaults, 335k with these); trafficagg.queued_max_kbytes still bounds
	 * the memory.
	 */
	consumer_conf_set(conf, "queued.min.messages", "1000000");
	consumer_conf_set(conf, "fetch.error.backoff.ms", "20");
	consumer_conf_set(conf, "topic.metadata.refresh.interval.ms", "10000");

	/*
	 * A rebalance (a worker of the server joining, leaving or restarting)
	 * reaches the other members at their next heartbeat: with librdkafka's
	 * 3 s, two workers started together consumed nothing for about 2 s.
	 */
	consumer_conf_set(conf, "heartbeat.interval.ms", "500");

	/* (the user's options last: they may change any of the above) */
	consumer_apply_user_options(conf);
	/*
	 * ... but not this: servers sharing the group must see another server's
	 * offsets only once its transaction committed (rd_kafka_committed waits
	 * for those pending)
	 */
	if (ta_shared_group)
		consumer_conf_set(conf, "isolation.level", "read_committed");
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);

	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (rk == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not create the Kafka consumer: %s", errstr)));
	rd_kafka_set_log_queue(rk, NULL);	/* logs to the main queue ... */
	rd_kafka_poll_set_consumer(rk); /* ... which feeds the consumer queue */
	rkqu = rd_kafka_queue_get_consumer(rk);

	resolve_start_time();

	topics = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(topics, ta_topic, RD_KAFKA_PARTITION_UA);
	err = rd_kafka_subscribe(rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (err)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not subscribe to Kafka topic \"%s\": %s",
						ta_topic, rd_kafka_err2str(err))));

	set_broker_state("connecting");
	ereport(LOG, (errmsg("trafficagg: consuming \"%s\" from %s as group \"%s\"",
						 ta_topic, ta_brokers, ta_group_id)));
	return true;
}

void
consumer_stop(void)
{
	if (rk == NULL)
		return;
	/* messages still held are read again by the next consumer: positions stay */
	for (int i = held_next; i < nheld; i++)
		if (held[i] != NULL)
			rd_kafka_message_destroy(held[i]);
	nheld = held_next = 0;
	if (start_time_offsets != NULL)
		rd_kafka_topic_partition_list_destroy(start_time_offsets);
	start_time_offsets = NULL;
	rd_kafka_queue_destroy(rkqu);
	closing = true;
	rd_kafka_consumer_close(rk);
	closing = false;
	if (handoff != NULL)
		rd_kafka_topic_partition_list_destroy(handoff);
	handoff = NULL;
	if (assigned_under != NULL)
		rd_kafka_consumer_group_metadata_destroy(assigned_under);
	assigned_under = NULL;
	rd_kafka_destroy(rk);
	rk = NULL;
	rkqu = NULL;

	/* (closing revoked them, unless the brokers were away) */
	for (int i = 0; i < nmy_partitions; i++)
		source_set_assigned(my_partitions[i], false);
	nmy_partitions = 0;
}

/*
 * Are Kafka messages this server's business: brokers configured and the
 * stored offsets read (consumer_start ran), whether or not this process
 * consumes?  The leader of several workers consumes nothing, yet its flushes
 * are Kafka flushes (the replay gate, the offsets).
 */
bool
consumer_kafka_configured(void)
{
	return kafka_configured;
}

/* Is a consumer running? */
bool
consumer_active(void)
{
	return rk != NULL;
}

/*
 * The source slot of a message's partition.  Slots are never reused while
 * the server runs, so the worker caches them per partition of its topic.
 */
static int
source_of(const rd_kafka_message_t *m)
{
	int			src;
	const char *topic = rd_kafka_topic_name(m->rkt);
	bool		cacheable = m->partition >= 0 && strcmp(topic, ta_topic) == 0;

	if (cacheable && m->partition < nslots_cached && slot_of_partition[m->partition] >= 0)
		return slot_of_partition[m->partition];

	src = source_lookup(topic, m->partition, true);

	if (cacheable && src >= 0)
	{
		if (m->partition >= nslots_cached)
		{
			int			n = Max(m->partition + 1, nslots_cached * 2);

			slot_of_partition = slot_of_partition
				? repalloc(slot_of_partition, n * sizeof(int))
				: MemoryContextAlloc(TopMemoryContext, n * sizeof(int));
			for (int i = nslots_cached; i < n; i++)
				slot_of_partition[i] = -1;
			nslots_cached = n;
		}
		slot_of_partition[m->partition] = src;
	}
	return src;
}

/* Does the field mapping read any header?  (Asked again when it changes.) */
static bool
mapping_reads_headers(void)
{
	static bool known = false;
	static uint32 version;
	static bool reads;
	const TaMapping *map = catalog_mapping();

	if (!known || map->version != version)
	{
		reads = mapping_uses_headers(map);
		version = map->version;
		known = true;
	}
	return reads;
}

/*
 * The headers of a message, when the field mapping reads any (otherwise
 * none are looked at).  They point into the message; *out is valid until
 * the next call.
 */
static int
message_headers(rd_kafka_message_t *m, const TaHeader **out)
{
	static TaHeader *headers = NULL;
	static int	cap = 0;
	rd_kafka_headers_t *hdrs;
	int			n;

	*out = NULL;
	if (!mapping_reads_headers() ||
		rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return 0;
	n = (int) rd_kafka_header_cnt(hdrs);
	if (n > cap)
	{
		cap = Max(n, 16);
		headers = headers ? repalloc(headers, cap * sizeof(TaHeader))
			: MemoryContextAlloc(TopMemoryContext, cap * sizeof(TaHeader));
	}
	for (int i = 0; i < n; i++)
	{
		const void *value;
		size_t		size;

		if (rd_kafka_header_get_all(hdrs, i, &headers[i].name, &value, &size) !=
			RD_KAFKA_RESP_ERR_NO_ERROR)
			return i;
		headers[i].value = value;
		headers[i].len = size;
	}
	*out = headers;
	return n;
}

/*
 * One queue entry, in the batch being served: a message (through
 * ingest_message()), a partition EOF or a consumer error.
 */
static void
serve_message(rd_kafka_message_t *m)
{
	int			src;

	if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
	{
		if ((src = source_of(m)) >= 0)
		{
			source_set_active(src, false);
			source_set_end_offset(src, m->offset);
		}
		set_broker_state("up");
	}
	else if (m->err)
	{
		const char *msg = rd_kafka_message_errstr(m);

		if (m->err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
			set_broker_state("down");
		set_last_error(msg);
		if (m->err != last_logged_error)
		{
			last_logged_error = m->err;
			ereport(LOG, (errmsg("trafficagg: Kafka consumer error: %s", msg)));
		}
	}
	else if ((src = source_of(m)) >= 0)
	{
		bool		replay = recovery_is_replay(src, m->offset);
		rd_kafka_timestamp_type_t tstype;
		int64		sent_ms = rd_kafka_message_timestamp(m, &tstype);

		/*
		 * No timestamp (message format v0): no reference that stays the same
		 * when a replay reads the message again, so no future check.
		 */
		TaMessage	msg = {.data = m->payload, .len = m->len,
			.key = m->key, .key_len = m->key_len,
		.timestamp_ms = sent_ms >= 0 ? sent_ms : TA_NO_TIME};

		if (sent_ms < 0)
			sent_ms = TA_NO_REFERENCE_TIME;
		msg.nheaders = message_headers(m, &msg.headers);
		ingest_message(src, m->offset, sent_ms, &msg, replay);
		source_set_active(src, true);
		set_broker_state("up");
	}
}

/*
 * Serve held[next..nheld) in order, in batches of at most batch_limit
 * (ingest.c).  A batch that finds shared memory full is not recorded: its
 * messages stay held, and the next call serves them again, after the caller
 * made room, in a batch of half the size (down to one message, which always
 * fits once memory is empty).
 */
static int	batch_limit = 0;

static int
serve_held(bool *memory_full)
{
	int			served = 0;

	while (held_next < nheld)
	{
		int			end = Min(nheld, held_next + batch_limit);

		ingest_begin(true);
		for (int i = held_next; i < end; i++)
		{
			if (held[i] != NULL)
				serve_message(held[i]);
			if (ingest_batch_full())
				end = i + 1;	/* the rest in the next batch */
		}
		if (!ingest_end())
		{
			*memory_full = true;
			batch_limit = Max(1, (end - held_next) / 2);
			return served;
		}
		for (; held_next < end; held_next++)
		{
			if (held[held_next] != NULL)
				rd_kafka_message_destroy(held[held_next]);
			held[held_next] = NULL;
			served++;
		}
	}
	nheld = held_next = 0;
	return served;
}

/*
 * Consume up to max messages, waiting at most wait_ms for the first one.
 * They are taken from librdkafka first (callbacks, rebalances included, run
 * only then), then each goes through ingest_message(), as one batch.  When
 * shared memory is full the call returns at once with *memory_full set: the
 * message that found no room, and those after it, are kept and served first
 * by the next call, once the caller has made room (the worker loop spills).
 * Returns the number of queue entries served.
 */
int
consumer_poll(int max, int wait_ms, bool *memory_full)
{
	int			served = 0;

	*memory_full = false;
	if (rk == NULL || handoff != NULL)
		return 0;
	if (held == NULL)
		held = MemoryContextAllocZero(TopMemoryContext, max * sizeof(rd_kafka_message_t *));

	if (nheld == 0)
	{
		ssize_t		n;

		batch_limit = max;

		/* wait in librdkafka for the first message; serves callbacks too */
		held[0] = rd_kafka_consumer_poll(rk, wait_ms);
		if (held[0] == NULL)
			return 0;
		nheld = 1;
		held_next = 0;

		/*
		 * then whatever else is queued, without waiting.  A rebalance here
		 * drops the first message if its partition is revoked (see
		 * revoke_partitions): the next owner reads it again from the position.
		 */
		n = rd_kafka_consume_batch_queue(rkqu, 0, held + 1, max - 1);
		nheld += (int) Max(n, 0);
	}
	/* what found no room last time goes first, in order */
	served = serve_held(memory_full);

	/*
	 * high watermarks as last seen by the fetcher: no broker round trip (they
	 * may be older than what consumer_refresh_end_offsets() asked for: only
	 * ever raise end_offset)
	 */
	for (int i = 0; i < nmy_partitions; i++)
	{
		int64		lo,
					hi;
		int			src = my_partitions[i];

		if (rd_kafka_get_watermark_offsets(rk, source_topic(src), source_partition(src),
										   &lo, &hi) == RD_KAFKA_RESP_ERR_NO_ERROR)
			source_raise_end_offset(src, hi);
	}
	watermark_advance();
	return served;
}

/*
 * Ask the brokers for the end offset of every assigned partition, so that
 * status.lag is the broker's end offset minus the position even when the
 * fetcher has not fetched for a while (its high watermarks come only with
 * fetched data).  One ListOffsets request per leader, waiting at most
 * TA_END_OFFSETS_WAIT_MS; skipped while the brokers are down (and by the
 * worker while it reads a backlog).
 */
#define TA_END_OFFSETS_WAIT_MS 200

void
consumer_refresh_end_offsets(void)
{
	rd_kafka_topic_partition_list_t *list;
	int		   *srcs;
	int			n;

	if (rk == NULL || !status_brokers_up())
		return;
	srcs = my_partitions;
	n = nmy_partitions;
	list = rd_kafka_topic_partition_list_new(Max(n, 1));
	for (int i = 0; i < n; i++)
		rd_kafka_topic_partition_list_add(list, source_topic(srcs[i]), source_partition(srcs[i]))->offset =
			RD_KAFKA_OFFSET_END;	/* as a timestamp: "latest" */
	if (list->cnt > 0 &&
		rd_kafka_offsets_for_times(rk, list, TA_END_OFFSETS_WAIT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR)
		for (int i = 0; i < list->cnt; i++)
		{
			int			src = source_lookup(list->elems[i].topic, list->elems[i].partition, false);

			if (src >= 0 && list->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
				list->elems[i].offset >= 0)
				source_set_end_offset(src, list->elems[i].offset);
		}
	rd_kafka_topic_partition_list_destroy(list);
}

/* After a flush committed: tell Kafka our positions (monitoring only). */
void
consumer_commit_positions(void)
{
	rd_kafka_topic_partition_list_t *list;
	int		   *srcs;
	int			n;

	/* (shared by servers: committed with the rows, groupcommit.c) */
	if (rk == NULL || ta_shared_group)
		return;
	srcs = my_partitions;
	n = nmy_partitions;
	list = rd_kafka_topic_partition_list_new(Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		int64		position,
					resume;

		recovery_read(srcs[i], &position, &resume);
		if (position != TA_NO_OFFSET)
			rd_kafka_topic_partition_list_add(list, source_topic(srcs[i]),
											  source_partition(srcs[i]))->offset = position;
	}
	if (list->cnt > 0)
		rd_kafka_commit(rk, list, 1);
	rd_kafka_topic_partition_list_destroy(list);
}
