/*-------------------------------------------------------------------------
 *
 * status.c
 *	  The worker's state as trafficagg.status shows it: the brokers' state,
 *	  the last error, flush and spill counters.  Private to this file, in its
 *	  own piece of shared memory under a spinlock (held for a copy at most);
 *	  written through the functions below, read whole by status_read().
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "trafficagg.h"

#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "status.h"


typedef struct StatusShared
{
	slock_t		mutex;
	TaStatus	s;
} StatusShared;

static StatusShared *status = NULL;

Size
status_shmem_size(void)
{
	return MAXALIGN(sizeof(StatusShared));
}

/* From the shared-memory startup hook, under AddinShmemInitLock. */
void
status_shmem_init(void)
{
	bool		found;

	status = ShmemInitStruct("trafficagg status", status_shmem_size(), &found);
	if (!found)
	{
		memset(status, 0, sizeof(StatusShared));
		SpinLockInit(&status->mutex);
		strlcpy(status->s.broker_state, "not configured", sizeof(status->s.broker_state));
	}
}

/* Returns whether the state changed (the caller logs changes only). */
bool
status_set_broker_state(const char *state)
{
	bool		changed;

	SpinLockAcquire(&status->mutex);
	changed = strcmp(status->s.broker_state, state) != 0;
	if (changed)
		strlcpy(status->s.broker_state, state, sizeof(status->s.broker_state));
	SpinLockRelease(&status->mutex);
	return changed;
}

bool
status_brokers_up(void)
{
	bool		up;

	SpinLockAcquire(&status->mutex);
	up = strcmp(status->s.broker_state, "up") == 0;
	SpinLockRelease(&status->mutex);
	return up;
}

void
status_set_error(const char *message)
{
	SpinLockAcquire(&status->mutex);
	strlcpy(status->s.last_error, message, sizeof(status->s.last_error));
	SpinLockRelease(&status->mutex);
}

/* A flush committed, writing rows in elapsed_ms. */
void
status_flushed(int64 rows, double elapsed_ms)
{
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&status->mutex);
	status->s.last_flush_at = now;
	status->s.last_flush_ms = elapsed_ms;
	status->s.last_flush_rows = rows;
	status->s.flushes++;
	SpinLockRelease(&status->mutex);
}

/* The oldest window was written early because memory was full. */
void
status_spilled(void)
{
	SpinLockAcquire(&status->mutex);
	status->s.spills++;
	SpinLockRelease(&status->mutex);
}

void
status_set_worker_pid(int pid)
{
	SpinLockAcquire(&status->mutex);
	status->s.worker_pid = pid;
	SpinLockRelease(&status->mutex);
}

/* A copy of everything, for trafficagg.status. */
void
status_read(TaStatus *out)
{
	SpinLockAcquire(&status->mutex);
	*out = status->s;
	SpinLockRelease(&status->mutex);
}
