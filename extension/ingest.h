/*-------------------------------------------------------------------------
 *
 * ingest.h
 *	  A batch of messages through the data path (ingest.c), shared by the
 *	  Kafka worker and trafficagg.ingest().
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef TRAFFICAGG_INGEST_H
#define TRAFFICAGG_INGEST_H

#include "event.h"

extern void ingest_begin(bool kafka);
extern TaOutcome ingest_message(int src, int64 offset, int64 received_ms,
								const TaMessage *msg, bool replay);
extern bool ingest_batch_full(void);
extern const char *ingest_full_setting(void);
extern bool ingest_end(void);

#endif							/* TRAFFICAGG_INGEST_H */
