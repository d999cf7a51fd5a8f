/*-------------------------------------------------------------------------
 *
 * sketch.c
 *	  The two mergeable sketches of a group, kept in shared memory beside its
 *	  exact metrics (store.c), as the group table sees them: started empty,
 *	  copied out under the group's lock, freed with the group.  What they
 *	  hold and how they turn into the types of two PostgreSQL extensions is
 *	  in hll.c (unique users, postgresql-hll values) and latency.c (latency
 *	  histogram, tdigest values); they live in the shared area of
 *	  sketch_area.c.
 *
 * Locking: a sketch belongs to its group and is read and written under the
 * group's partition lock (store.c).
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/dsa.h"

#include "hll.h"
#include "latency.h"
#include "sketch.h"
#include "sketch_area.h"


/*
 * At library load: tell the area how much one group's sketches can grow by
 * one event, so that it reserves room for an event started below its limit.
 */
void
sketch_configure(void)
{
	sketch_area_set_group_growth(hll_max_growth() + latency_max_growth());
}

/* A group without sketches yet. */
void
sketch_init(TaSketches *sk)
{
	memset(sk, 0, sizeof(TaSketches));
	sk->users = InvalidDsaPointer;
	sk->latency = InvalidDsaPointer;
}

/*
 * Copy a group's sketches into local memory, under the group's lock; the
 * conversions (users_serialize, latency_copy) then run without it.
 */
void
sketch_copy(const TaSketches *sk, TaSketchCopy *copy)
{
	Size		ub = users_bytes(sk),
				lb = latency_bytes(sk);

	copy->hdr = *sk;
	copy->users = ub ? memcpy(palloc(ub), sketch_address(sk->users), ub) : NULL;
	copy->latency = lb ? memcpy(palloc(lb), sketch_address(sk->latency), lb) : NULL;
}

/* Free a group's sketches. */
void
sketch_free(TaSketches *sk)
{
	if (DsaPointerIsValid(sk->users))
		sketch_release(sk->users, users_bytes(sk));
	if (DsaPointerIsValid(sk->latency))
		sketch_release(sk->latency, latency_bytes(sk));
	sketch_init(sk);
}
