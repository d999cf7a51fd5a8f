/*-------------------------------------------------------------------------
 *
 * request.c
 *	  Requests from SQL to the worker: trafficagg.flush() and
 *	  trafficagg.rewind_watermark(), when the worker consumes Kafka and so
 *	  must do them itself (a flush writes the partitions' offsets and the
 *	  queued dead letters, which only the worker knows).
 *
 * The protocol, one kind of request at a time, each in three verbs:
 *	  submit	(backend) queue a request and wake the worker; returns a
 *				ticket, or 0 when no worker consumes Kafka (the backend then
 *				does the work itself, in its own transaction);
 *	  take		(worker, in its loop) the pending request, if any;
 *	  complete	(worker) done, with its outcome; wakes nobody: the backend
 *				polls for its ticket.
 * Flush requests coalesce: one flush completes every ticket taken with it,
 * and close_all is kept if any of them asked for it.  Rewind requests
 * coalesce to the earliest time asked for.  The worker serves a rewind before
 * a flush.
 *
 * The state is private to this file, in its own piece of shared memory,
 * under its own spinlock (nothing here is held for long).
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "trafficagg.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "request.h"

/* How long a backend waits for the worker. */
#define TA_REQUEST_WAIT_MS 60000
/* How often it looks whether its ticket is done. */
#define TA_REQUEST_POLL_MS 10

/* One kind of request: tickets handed out, taken and completed. */
typedef struct RequestQueue
{
	uint64		submitted;		/* last ticket handed out */
	uint64		taken;			/* tickets up to this one are being served */
	uint64		completed;		/* ... and done */
	bool		ok;				/* outcome of the last completion */
	int64		rows;			/* rows the last completion wrote */
	char		error[TA_ERROR_LEN];	/* its error, if not ok */
} RequestQueue;

typedef struct TaRequests
{
	slock_t		mutex;
	Latch	   *worker_latch;	/* NULL: no worker takes requests */
	RequestQueue flush;
	bool		flush_close_all;
	RequestQueue rewind;
	int64		rewind_to;
} TaRequests;

static TaRequests *requests = NULL;

Size
request_shmem_size(void)
{
	return MAXALIGN(sizeof(TaRequests));
}

/* Called from the shared-memory startup hook, under AddinShmemInitLock. */
void
request_shmem_init(void)
{
	bool		found;

	requests = ShmemInitStruct("trafficagg requests", request_shmem_size(), &found);
	if (!found)
	{
		memset(requests, 0, sizeof(TaRequests));
		SpinLockInit(&requests->mutex);
	}
}

/* The worker takes requests from now on (latch set) or no longer (NULL). */
void
request_set_worker(Latch *latch)
{
	SpinLockAcquire(&requests->mutex);
	requests->worker_latch = latch;
	SpinLockRelease(&requests->mutex);
}

/* Queue a request of q; 0 if no worker takes requests.  Caller holds mutex. */
static uint64
submit_locked(RequestQueue *q)
{
	if (requests->worker_latch == NULL)
		return 0;
	SetLatch(requests->worker_latch);
	return ++q->submitted;
}

uint64
flush_request_submit(bool close_all)
{
	uint64		ticket;

	SpinLockAcquire(&requests->mutex);
	ticket = submit_locked(&requests->flush);
	if (ticket != 0)
		requests->flush_close_all |= close_all;
	SpinLockRelease(&requests->mutex);
	return ticket;
}

uint64
rewind_request_submit(int64 to_ms)
{
	uint64		ticket;

	SpinLockAcquire(&requests->mutex);
	if (requests->rewind.submitted == requests->rewind.taken || to_ms < requests->rewind_to)
		requests->rewind_to = to_ms;
	ticket = submit_locked(&requests->rewind);
	SpinLockRelease(&requests->mutex);
	return ticket;
}

/*
 * Wait until ticket of q is completed; ERROR if it failed, if the worker
 * left, or after TA_REQUEST_WAIT_MS.  Returns the rows it wrote.
 */
static int64
wait_for(RequestQueue *q, uint64 ticket, const char *what)
{
	TimestampTz start = GetCurrentTimestamp();

	for (;;)
	{
		bool		done,
					ok,
					gone;
		int64		rows;
		char		error[TA_ERROR_LEN];

		SpinLockAcquire(&requests->mutex);
		done = q->completed >= ticket;
		gone = requests->worker_latch == NULL;
		ok = q->ok;
		rows = q->rows;
		strlcpy(error, q->error, sizeof(error));
		SpinLockRelease(&requests->mutex);

		if (done && ok)
			return rows;
		if (done)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("trafficagg worker could not %s: %s", what, error),
					 errhint("The data stay in shared memory and the worker retries; see the server log.")));
		if (gone)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("trafficagg worker stopped before it could %s", what),
					 errhint("It restarts by itself; try again.")));
		if (TimestampDifferenceExceeds(start, GetCurrentTimestamp(), TA_REQUEST_WAIT_MS))
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("trafficagg worker did not %s within %d s", what,
							TA_REQUEST_WAIT_MS / 1000),
					 errhint("Check trafficagg.status.last_error and the server log.")));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 TA_REQUEST_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

int64
flush_request_wait(uint64 ticket)
{
	return wait_for(&requests->flush, ticket, "flush");
}

void
rewind_request_wait(uint64 ticket)
{
	(void) wait_for(&requests->rewind, ticket, "rewind the watermark");
}

/* Worker: the pending flush request's ticket (0: none) and its close_all. */
uint64
flush_request_take(bool *close_all)
{
	uint64		ticket;

	SpinLockAcquire(&requests->mutex);
	ticket = requests->flush.submitted > requests->flush.completed ? requests->flush.submitted : 0;
	*close_all = ticket != 0 && requests->flush_close_all;
	if (ticket != 0)
	{
		requests->flush.taken = ticket;
		requests->flush_close_all = false;
	}
	SpinLockRelease(&requests->mutex);
	return ticket;
}

/* Worker: the pending rewind request's ticket (0: none) and its time. */
uint64
rewind_request_take(int64 *to_ms)
{
	uint64		ticket;

	SpinLockAcquire(&requests->mutex);
	ticket = requests->rewind.submitted > requests->rewind.completed ? requests->rewind.submitted : 0;
	*to_ms = requests->rewind_to;
	if (ticket != 0)
		requests->rewind.taken = ticket;
	SpinLockRelease(&requests->mutex);
	return ticket;
}

static void
complete(RequestQueue *q, uint64 ticket, bool ok, int64 rows, const char *error)
{
	SpinLockAcquire(&requests->mutex);
	if (ticket > q->completed)
		q->completed = ticket;
	q->ok = ok;
	q->rows = rows;
	strlcpy(q->error, error ? error : "", sizeof(q->error));
	SpinLockRelease(&requests->mutex);
}

void
flush_request_complete(uint64 ticket, bool ok, int64 rows, const char *error)
{
	complete(&requests->flush, ticket, ok, rows, error);
}

void
rewind_request_complete(uint64 ticket, bool ok, const char *error)
{
	complete(&requests->rewind, ticket, ok, 0, error);
}
