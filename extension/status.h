/*-------------------------------------------------------------------------
 *
 * status.h
 *	  The worker's state shown by trafficagg.status (status.c).
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef TRAFFICAGG_STATUS_H
#define TRAFFICAGG_STATUS_H

#include "datatype/timestamp.h"

typedef struct TaStatus
{
	TimestampTz last_flush_at;	/* 0: none yet */
	double		last_flush_ms;
	int64		last_flush_rows;
	int64		flushes;
	int64		spills;			/* early partial flushes when full */
	char		last_error[TA_ERROR_LEN];
	char		broker_state[32];
	int			worker_pid;
} TaStatus;

extern Size status_shmem_size(void);
extern void status_shmem_init(void);
extern bool status_set_broker_state(const char *state);
extern bool status_brokers_up(void);
extern void status_set_error(const char *message);
extern void status_flushed(int64 rows, double elapsed_ms);
extern void status_spilled(void);
extern void status_set_worker_pid(int pid);
extern void status_read(TaStatus *out);

#endif							/* TRAFFICAGG_STATUS_H */
