/*-------------------------------------------------------------------------
 *
 * deadletter.c
 *	  Dead letters: every rejected or late message, with its reason, kept in
 *	  trafficagg.rejected_events.
 *
 * From the SQL path (trafficagg.ingest()) a dead letter is inserted at once,
 * in the caller's transaction (deadletter_insert).  From Kafka it waits in a
 * ring in shared memory (deadletter_queue) until the next flush writes it in
 * the same transaction as the partition's offsets (deadletter_write_queued),
 * and leaves the ring only once that transaction has committed
 * (deadletter_release): a crash never loses a dead letter nor writes one
 * twice.  The ring is sized at start (trafficagg.rejected_buffer); the worker
 * flushes when it is half full, and a batch of messages reserves room for
 * its dead letters before it is recorded (deadletter_reserve: no room, and
 * the batch waits for a flush), so none is ever dropped; a message that found
 * it full anyway would be counted in status.rejected_dropped.  Each flush keeps the
 * table at trafficagg.rejected_max_rows rows (deadletter_trim).
 *
 * Locking: the ring has its own LWLock, a leaf: nothing else of ours is
 * taken while it is held.  ingest.c queues a batch's dead letters while
 * holding the batch lock (recovery.c), so that a flush sees a message's
 * accounting and its dead letter together.
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "trafficagg.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "datums.h"
#include "deadletter.h"
#include "event.h"


/* A rejected or late Kafka message waiting to be written. */
typedef struct DeadLetter
{
	TimestampTz received_at;
	char		topic[NAMEDATALEN];
	int32		partition;
	int64		offset;
	TaOutcome	reason;
	char		detail[TA_DETAIL_LEN];
	int32		payload_len;	/* bytes kept, <= ta_rejected_payload_bytes */
	int32		original_len;
	/* payload bytes follow */
} DeadLetter;

typedef struct DeadLetterRing
{
	LWLock	   *lock;
	int			head;			/* oldest entry */
	int			count;			/* entries queued */
	int64		dropped;		/* messages that found the ring full */
	int			reserved;		/* slots kept for batches being merged */
	TransactionId taken_by;		/* the flush that took ... */
	int			taken;			/* ... this many (deadletter_take) */
	/* ta_rejected_buffer slots of slot_size() bytes follow */
} DeadLetterRing;

static DeadLetterRing *ring = NULL;

static Size
slot_size(void)
{
	return MAXALIGN(sizeof(DeadLetter) + ta_rejected_payload_bytes);
}

static DeadLetter *
slot(int i)
{
	return (DeadLetter *) ((char *) ring + MAXALIGN(sizeof(DeadLetterRing)) +
						   (Size) (i % ta_rejected_buffer) * slot_size());
}

Size
deadletter_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(DeadLetterRing)), mul_size(ta_rejected_buffer, slot_size()));
}

/* From the shmem_request hook. */
void
deadletter_shmem_request(void)
{
	RequestNamedLWLockTranche("trafficagg dead letters", 1);
}

/* From the shmem_startup hook, under AddinShmemInitLock. */
void
deadletter_shmem_init(void)
{
	bool		found;

	ring = ShmemInitStruct("trafficagg dead letters", deadletter_shmem_size(), &found);
	if (!found)
	{
		memset(ring, 0, sizeof(DeadLetterRing));
		ring->lock = &GetNamedLWLockTranche("trafficagg dead letters")[0].lock;
	}
}

static bytea *
payload_bytes(const char *data, int32 keep)
{
	bytea	   *payload = palloc(VARHDRSZ + keep);

	SET_VARSIZE(payload, VARHDRSZ + keep);
	if (keep > 0)
		memcpy(VARDATA(payload), data, keep);
	return payload;
}

/*
 * A dead letter from the SQL path, inserted in the caller's transaction (it
 * follows that transaction, as the message's outcome does not: see README).
 */
void
deadletter_insert(TaOutcome reason, const char *detail, const char *data, size_t len)
{
	int32		keep = (int32) Min(len, (size_t) ta_rejected_payload_bytes);
	Oid			types[4] = {TEXTOID, TEXTOID, BYTEAOID, INT4OID};
	Datum		values[4];
	int			ret;

	values[0] = CStringGetTextDatum(outcome_name(reason));
	values[1] = CStringGetTextDatum(detail);
	values[2] = PointerGetDatum(payload_bytes(data, keep));
	values[3] = Int32GetDatum((int32) len);
	SPI_connect();
	ret = SPI_execute_with_args("INSERT INTO trafficagg.rejected_events"
								" (source, reason, detail, payload, payload_bytes)"
								" VALUES ('sql', $1, $2, $3, $4)",
								4, types, values, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "SPI_execute_with_args failed inserting a rejected event: %d", ret);
	SPI_finish();
}

/* A dead letter from Kafka: queued for the next flush. */
void
deadletter_queue(const char *topic, int32 partition, int64 offset, TaOutcome reason,
				 const char *detail, const char *data, size_t len)
{
	int32		keep = (int32) Min(len, (size_t) ta_rejected_payload_bytes);
	DeadLetter *r;

	LWLockAcquire(ring->lock, LW_EXCLUSIVE);
	if (ring->count >= ta_rejected_buffer)
	{
		/* a batch reserves its slots first: not reached; count, never block */
		ring->dropped++;
		LWLockRelease(ring->lock);
		return;
	}
	r = slot(ring->head + ring->count);
	ring->count++;
	r->received_at = GetCurrentTimestamp();
	strlcpy(r->topic, topic, sizeof(r->topic));
	r->partition = partition;
	r->offset = offset;
	r->reason = reason;
	strlcpy(r->detail, detail, sizeof(r->detail));
	r->payload_len = keep;
	r->original_len = (int32) len;
	if (keep > 0)
		memcpy((char *) r + sizeof(DeadLetter), data, keep);
	LWLockRelease(ring->lock);
}

/*
 * Room for a batch's n dead letters, kept for it until it has queued them
 * (deadletter_unreserve), or false: the ring must be flushed first.
 */
bool
deadletter_reserve(int n)
{
	bool		ok;

	LWLockAcquire(ring->lock, LW_EXCLUSIVE);
	ok = ring->count + ring->reserved + n <= ta_rejected_buffer;
	if (ok)
		ring->reserved += n;
	LWLockRelease(ring->lock);
	return ok;
}

void
deadletter_unreserve(int n)
{
	if (n == 0)
		return;
	LWLockAcquire(ring->lock, LW_EXCLUSIVE);
	ring->reserved -= n;
	LWLockRelease(ring->lock);
}

/* Release what the last flush took, if it committed.  Ring lock held. */
static void
settle_locked(void)
{
	if (!TransactionIdIsValid(ring->taken_by))
		return;
	if (TransactionIdDidCommit(ring->taken_by))
	{
		ring->head = (ring->head + ring->taken) % ta_rejected_buffer;
		ring->count -= ring->taken;
	}
	ring->taken_by = InvalidTransactionId;
	ring->taken = 0;
}

/*
 * The dead letters a flush takes, inside its cut: every one queued.  They
 * stay in the ring until that flush's transaction commits: then the next
 * deadletter_release() or deadletter_take() releases them (whichever comes
 * first; a flush whose process died after its commit is settled by the next
 * one).  Returns how many.
 */
int
deadletter_take(void)
{
	int			n;

	LWLockAcquire(ring->lock, LW_EXCLUSIVE);
	settle_locked();
	n = ring->count;
	if (n > 0)
	{
		ring->taken_by = GetTopTransactionId();
		ring->taken = n;
	}
	LWLockRelease(ring->lock);
	return n;
}

/*
 * Write the oldest n queued dead letters (deadletter_take() at the flush's
 * cut), in the flush's transaction.  Returns n.
 */
int
deadletter_write_queued(int n)
{
	Datum	   *cols[8];
	bool	   *nulls;
	Oid			types[8] = {TIMESTAMPTZARRAYOID, TEXTARRAYOID, INT4ARRAYOID, INT8ARRAYOID,
	TEXTARRAYOID, TEXTARRAYOID, BYTEAARRAYOID, INT4ARRAYOID};
	Datum		params[8];
	Oid			elemtypes[8] = {TIMESTAMPTZOID, TEXTOID, INT4OID, INT8OID,
	TEXTOID, TEXTOID, BYTEAOID, INT4OID};
	int			ret;

	LWLockAcquire(ring->lock, LW_SHARED);
	Assert(n <= ring->count);
	for (int c = 0; c < 8; c++)
		cols[c] = palloc(Max(n, 1) * sizeof(Datum));
	for (int i = 0; i < n; i++)
	{
		DeadLetter *r = slot(ring->head + i);

		cols[0][i] = TimestampTzGetDatum(r->received_at);
		cols[1][i] = CStringGetTextDatum(r->topic);
		cols[2][i] = Int32GetDatum(r->partition);
		cols[3][i] = Int64GetDatum(r->offset);
		cols[4][i] = CStringGetTextDatum(outcome_name(r->reason));
		cols[5][i] = CStringGetTextDatum(r->detail);
		cols[6][i] = PointerGetDatum(payload_bytes((char *) r + sizeof(DeadLetter), r->payload_len));
		cols[7][i] = Int32GetDatum(r->original_len);
	}
	LWLockRelease(ring->lock);
	if (n == 0)
		return 0;

	nulls = palloc0(n * sizeof(bool));
	for (int c = 0; c < 8; c++)
		params[c] = ta_datum_array(cols[c], nulls, n, elemtypes[c]);
	ret = SPI_execute_with_args("INSERT INTO trafficagg.rejected_events"
								" (received_at, source, topic, partition, \"offset\", reason, detail,"
								" payload, payload_bytes)"
								" SELECT u.r, 'kafka', u.t, u.p, u.o, u.re, u.d, u.pl, u.pb"
								" FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
								"   pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5),"
								"   pg_catalog.unnest($6), pg_catalog.unnest($7), pg_catalog.unnest($8))"
								" AS u(r, t, p, o, re, d, pl, pb)"
								" ORDER BY u.p, u.o",
								8, types, params, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "SPI_execute_with_args failed writing trafficagg.rejected_events: %d", ret);
	return n;
}

/* After the flush committed: the n oldest dead letters are in the table. */
void
deadletter_release(void)
{
	LWLockAcquire(ring->lock, LW_EXCLUSIVE);
	settle_locked();
	LWLockRelease(ring->lock);
}

/* Keep at most trafficagg.rejected_max_rows dead letters, dropping the oldest. */
void
deadletter_trim(void)
{
	Oid			types[1] = {INT8OID};
	Datum		params[1] = {Int64GetDatum(ta_rejected_max_rows)};

	if (SPI_execute_with_args("DELETE FROM trafficagg.rejected_events"
							  " WHERE id OPERATOR(pg_catalog.<=)"
							  "   ((SELECT pg_catalog.max(id) FROM trafficagg.rejected_events)"
							  "    OPERATOR(pg_catalog.-) $1)",
							  1, types, params, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "SPI_execute_with_args failed trimming trafficagg.rejected_events");
}

/* Should the worker flush for the ring's sake? */
bool
deadletter_ring_half_full(void)
{
	bool		half;

	LWLockAcquire(ring->lock, LW_SHARED);
	half = ring->count >= ta_rejected_buffer / 2;
	LWLockRelease(ring->lock);
	return half;
}

/* Messages that found the ring full since the server started (status). */
int64
deadletter_dropped(void)
{
	int64		dropped;

	LWLockAcquire(ring->lock, LW_SHARED);
	dropped = ring->dropped;
	LWLockRelease(ring->lock);
	return dropped;
}
