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

extern bool consumer_start(bool join);
extern void consumer_stop(void);
extern bool consumer_settings_changed(void);
extern bool consumer_active(void);
extern bool consumer_kafka_configured(void);
extern int	consumer_poll(int max, int wait_ms, bool *memory_full);
extern void consumer_commit_positions(void);
extern void consumer_refresh_end_offsets(void);

#endif							/* TRAFFICAGG_CONSUME_H */
