/*-------------------------------------------------------------------------
 *
 * ingest.h
 *	  One message through the data path (ingest.c), shared by the Kafka
 *	  worker and trafficagg.ingest().
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef TRAFFICAGG_INGEST_H
#define TRAFFICAGG_INGEST_H

#include "event.h"

extern TaOutcome ingest_message(int src, int64 offset, int64 received_ms,
								const TaMessage *msg,
								bool replay, bool hold, bool *full);

#endif							/* TRAFFICAGG_INGEST_H */
