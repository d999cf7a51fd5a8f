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
 * a flush.  Each completion is remembered with the range of tickets it
 * served, so a waiter gets the outcome of the flush that served its ticket,
 * not of a later one.  Tickets pending when the worker stops, and rewinds
 * older than the wait (their caller has been told they failed), are failed,
 * never served late.
 *
 * Room requests are generation counters: a worker asks for the next one
 * (room_request_submit), the leader serves every pending one with one spill
 * or flush (room_request_take, room_request_complete), and the worker waits
 * until the generation it asked for is done (room_request_done).
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

/* How many completions are remembered for the waiters. */
#define TA_COMPLETIONS 16

/* A completion: the tickets in (first - 1, last] were served with it. */
typedef struct Completion
{
	uint64		last;
	bool		ok;
	int64		rows;
	char		error[TA_ERROR_LEN];
} Completion;

/* One kind of request: tickets handed out, taken and completed. */
typedef struct RequestQueue
{
	uint64		submitted;		/* last ticket handed out */
	TimestampTz submitted_at;	/* when */
	uint64		taken;			/* tickets up to this one are being served */
	uint64		completed;		/* ... and done */
	uint64		ncompletions;	/* completions so far; the last TA_COMPLETIONS
								 * are in done[n % TA_COMPLETIONS] */
	Completion	done[TA_COMPLETIONS];
} RequestQueue;

typedef struct TaRequests
{
	slock_t		mutex;
	Latch	   *worker_latch;	/* NULL: no worker takes requests */
	RequestQueue flush;
	bool		flush_close_all;
	RequestQueue rewind;
	int64		rewind_to;
	uint64		room_wanted;	/* room requests: last generation asked */
	uint64		room_done;		/* ... and served */
	bool		room_spill;		/* one asked for group room (else the ring) */
	char		room_setting[TA_SETTING_NAME_LEN];	/* the limit it hit (the
													 * last asker's) */
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

/* Record that tickets up to last were served.  Caller holds mutex. */
static void
complete_locked(RequestQueue *q, uint64 last, bool ok, int64 rows, const char *error)
{
	Completion *c = &q->done[q->ncompletions++ % TA_COMPLETIONS];

	c->last = last;
	c->ok = ok;
	c->rows = rows;
	strlcpy(c->error, error ? error : "", sizeof(c->error));
	if (last > q->completed)
		q->completed = last;
}

/*
 * The worker takes requests from now on (latch set) or no longer (NULL).
 * Whatever is pending when it stops fails: a new worker must not serve a
 * request its caller has given up on.
 */
void
request_set_worker(Latch *latch)
{
	SpinLockAcquire(&requests->mutex);
	if (latch == NULL)
	{
		RequestQueue *queues[2] = {&requests->flush, &requests->rewind};

		for (int i = 0; i < 2; i++)
			if (queues[i]->submitted > queues[i]->completed)
			{
				complete_locked(queues[i], queues[i]->submitted, false, 0,
								"the worker stopped before serving the request");
				queues[i]->taken = queues[i]->submitted;
			}
	}
	requests->worker_latch = latch;
	SpinLockRelease(&requests->mutex);
}

/*
 * Queue a request of q at now; 0 if no worker takes requests.  Caller holds
 * mutex.  A request joining others still pending keeps their time: the
 * oldest caller's wait is what expires them.
 */
static uint64
submit_locked(RequestQueue *q, TimestampTz now)
{
	if (requests->worker_latch == NULL)
		return 0;
	if (q->submitted == q->taken)
		q->submitted_at = now;
	return ++q->submitted;
}

static void
wake_worker(void)
{
	Latch	   *latch;

	SpinLockAcquire(&requests->mutex);
	latch = requests->worker_latch;
	SpinLockRelease(&requests->mutex);
	if (latch != NULL)
		SetLatch(latch);
}

uint64
flush_request_submit(bool close_all)
{
	uint64		ticket;
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&requests->mutex);
	ticket = submit_locked(&requests->flush, now);
	if (ticket != 0)
		requests->flush_close_all |= close_all;
	SpinLockRelease(&requests->mutex);
	wake_worker();
	return ticket;
}

uint64
rewind_request_submit(int64 to_ms)
{
	uint64		ticket;
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&requests->mutex);
	if (requests->rewind.submitted == requests->rewind.taken || to_ms < requests->rewind_to)
		requests->rewind_to = to_ms;
	ticket = submit_locked(&requests->rewind, now);
	SpinLockRelease(&requests->mutex);
	wake_worker();
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
		ok = true;
		rows = 0;
		error[0] = '\0';
		if (done)
		{
			/* the completion that served it: the first whose range reaches it */
			uint64		oldest = q->ncompletions > TA_COMPLETIONS ? q->ncompletions - TA_COMPLETIONS : 0;

			for (uint64 n = oldest; n < q->ncompletions; n++)
			{
				Completion *c = &q->done[n % TA_COMPLETIONS];

				if (c->last >= ticket)
				{
					ok = c->ok;
					rows = c->rows;
					strlcpy(error, c->error, sizeof(error));
					break;
				}
			}
		}
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
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&requests->mutex);
	ticket = requests->rewind.submitted > requests->rewind.completed ? requests->rewind.submitted : 0;
	/* its callers have stopped waiting, and were told it failed */
	if (ticket != 0 && TimestampDifferenceExceeds(requests->rewind.submitted_at, now,
												  TA_REQUEST_WAIT_MS))
	{
		complete_locked(&requests->rewind, ticket, false, 0, "the request expired");
		requests->rewind.taken = ticket;
		ticket = 0;
	}
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
		complete_locked(q, ticket, ok, rows, error);
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

/*
 * Another worker asks the leader for room: spill (groups, values, sketches
 * full) or only a flush (the dead-letter ring full).  Returns the generation
 * to wait for (room_request_done).
 */
uint64
room_request_submit(bool spill, const char *setting)
{
	uint64		gen;

	SpinLockAcquire(&requests->mutex);
	gen = requests->room_wanted = Max(requests->room_wanted, requests->room_done) + 1;
	requests->room_spill |= spill;
	if (spill)
		strlcpy(requests->room_setting, setting, TA_SETTING_NAME_LEN);
	SpinLockRelease(&requests->mutex);
	wake_worker();
	return gen;
}

bool
room_request_done(uint64 gen)
{
	bool		done;

	SpinLockAcquire(&requests->mutex);
	done = requests->room_done >= gen;
	SpinLockRelease(&requests->mutex);
	return done;
}

/*
 * The leader: the pending room requests (0: none), whether to spill, and the
 * limit the last asker hit (TA_SETTING_NAME_LEN bytes).
 */
uint64
room_request_take(bool *spill, char *setting)
{
	uint64		gen = 0;

	SpinLockAcquire(&requests->mutex);
	if (requests->room_wanted > requests->room_done)
	{
		gen = requests->room_wanted;
		*spill = requests->room_spill;
		strlcpy(setting, requests->room_setting, TA_SETTING_NAME_LEN);
		requests->room_spill = false;
	}
	SpinLockRelease(&requests->mutex);
	return gen;
}

/* ... served (a failed spill counts too: the asker tries its batch again). */
void
room_request_complete(uint64 gen)
{
	SpinLockAcquire(&requests->mutex);
	if (gen > requests->room_done)
		requests->room_done = gen;
	SpinLockRelease(&requests->mutex);
}
