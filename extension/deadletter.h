/*-------------------------------------------------------------------------
 *
 * deadletter.h
 *	  Dead letters (deadletter.c).
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef TRAFFICAGG_DEADLETTER_H
#define TRAFFICAGG_DEADLETTER_H

#include "event.h"

extern Size deadletter_shmem_size(void);
extern void deadletter_shmem_request(void);
extern void deadletter_shmem_init(void);

extern void deadletter_insert(TaOutcome reason, const char *detail, const char *data, size_t len);
extern void deadletter_queue(const char *topic, int32 partition, int64 offset, TaOutcome reason,
							 const char *detail, const char *data, size_t len);
extern bool deadletter_reserve(int n);
extern void deadletter_unreserve(int n);
extern int	deadletter_take(void);
extern int	deadletter_write_queued(int n);
extern void deadletter_release(void);
extern void deadletter_trim(void);
extern bool deadletter_ring_half_full(void);
extern int64 deadletter_dropped(void);

#endif							/* TRAFFICAGG_DEADLETTER_H */
