/*-------------------------------------------------------------------------
 *
 * consume.h
 *	  The Kafka consumer (consume.c) as the worker loop (worker.c) sees it.
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef TRAFFICAGG_CONSUME_H
#define TRAFFICAGG_CONSUME_H

#include <librdkafka/rdkafka.h>

extern bool consumer_start(bool join);
extern void consumer_stop(void);
extern bool consumer_settings_changed(void);
extern bool consumer_active(void);
extern bool consumer_kafka_configured(void);
extern int	consumer_poll(int max, int wait_ms, bool *memory_full);
extern void consumer_commit_positions(void);
extern void consumer_refresh_end_offsets(void);

/* for groupcommit.c (trafficagg.shared_group) */
extern rd_kafka_conf_t *consumer_client_conf(void);
extern void consumer_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value);
extern void consumer_apply_user_options(rd_kafka_conf_t *conf);
extern bool consumer_handoff_pending(void);
extern void consumer_handoff_done(void);
extern rd_kafka_topic_partition_list_t *consumer_owned_positions(rd_kafka_consumer_group_metadata_t **metadata);
extern bool consumer_assignment_lost(void);

#endif							/* TRAFFICAGG_CONSUME_H */
