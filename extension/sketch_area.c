/*-------------------------------------------------------------------------
 *
 * sketch_area.c
 *	  The dynamic shared area (DSA) in which the sketches of groups live
 *	  (hll.c, latency.c): its size, its creation in the main shared memory,
 *	  allocation and release, and the bytes in use.
 *
 * Sketches grow with their contents, so they live in a dynamic shared area
 * created in place inside the main shared memory at server start, of fixed
 * size (trafficagg.sketch_memory plus slack for the allocator).  A small
 * group stays small: a HyperLogLog holds its distinct hashes (8 bytes each)
 * until it has more than the explicit threshold, then one byte per register;
 * a histogram holds (bucket, count) pairs (4 bytes each) until a dense range
 * of counters is at most twice their size.  The forms and sizes are kept in
 * the group (TaSketches, sketch.h), the contents in the area.  Bytes in use
 * are counted here; store.c asks sketch_has_room() before it changes
 * anything, and treats "no room" like a full group table (the oldest window
 * is spilled), so an allocation never fails half-way through a batch.
 *
 * Locking: a sketch belongs to its group and is read and written under the
 * group's partition lock (store.c).  The DSA has its own lock.
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "trafficagg.h"

#include "storage/lwlock.h"
#include "utils/dsa.h"
#include "utils/memutils.h"

#include "sketch_area.h"
#include "window.h"


typedef struct SketchAreaHeader
{
	int			tranche_id;
	pg_atomic_uint64 bytes_used;	/* requested bytes of live sketches */
	/* the DSA follows, MAXALIGN'd */
} SketchAreaHeader;

static SketchAreaHeader *area_header = NULL;
static dsa_area *area = NULL;

/*
 * Worst growth of the two sketches of one group by one event, transient
 * copies included: given by sketch.c (hll_max_growth + latency_max_growth)
 * when the library loads, before the area is sized.
 */
static Size group_max_growth = 0;

void
sketch_area_set_group_growth(Size bytes)
{
	group_max_growth = bytes;
}

static Size
area_size(void)
{
	Size		limit = (Size) ta_sketch_memory_kb * 1024;
	Size		one_batch = mul_size((Size) TA_BATCH_MAX_GROUPS +
									 window_count() * ta_max_aggregates,
									 group_max_growth);

	/*
	 * Beyond the limit: what a batch of each worker (and a message of
	 * trafficagg.ingest()) can add once the limit is reached
	 * (sketch_has_room() lets them start while below it), and slack for
	 * the allocator: our sizes are powers of two or close to a size class
	 * (register arrays of 2^log2m bytes, hash and pair arrays doubling), dense
	 * histograms round up by at most a quarter; plus partly used superblocks.
	 */
	return add_size(add_size(dsa_minimum_size(), mul_size(one_batch, ta_workers + 1)),
					add_size(limit + limit / 4, 4 * 1024 * 1024));
}

Size
sketch_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(SketchAreaHeader)), area_size());
}

static void *
area_place(void)
{
	return (char *) area_header + MAXALIGN(sizeof(SketchAreaHeader));
}

/* In the postmaster, at shared memory (re)initialisation. */
void
sketch_shmem_init(void *place, bool found)
{
	area_header = (SketchAreaHeader *) place;
	if (!found)
	{
		dsa_area   *a;

		area_header->tranche_id = LWLockNewTrancheId();
		pg_atomic_init_u64(&area_header->bytes_used, 0);
		a = dsa_create_in_place(area_place(), area_size(), area_header->tranche_id, NULL);
		dsa_pin(a);
		/* never more than the place: no extra DSM segments */
		dsa_set_size_limit(a, area_size());
		dsa_detach(a);
	}
	area = NULL;
}

/* The place of the area, once its pointers are known to be offsets into it. */
static char *sketch_area_base = NULL;

/* This process's handle on the area, attached on first use. */
dsa_area *
sketch_area(void)
{
	if (area == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		LWLockRegisterTranche(area_header->tranche_id, "trafficagg_sketches");
		area = dsa_attach_in_place(area_place(), NULL);
		dsa_pin_mapping(area);
		MemoryContextSwitchTo(old);

		/*
		 * The area never has a second segment (its size limit is the place),
		 * and a pointer into its first is the offset from the place: checked
		 * on one allocation, else sketch_address() asks dsa_get_address().
		 */
		{
			dsa_pointer probe = dsa_allocate_extended(area, 8, DSA_ALLOC_NO_OOM);

			if (DsaPointerIsValid(probe))
			{
				if (dsa_get_address(area, probe) == (char *) area_place() + probe)
					sketch_area_base = (char *) area_place();
				dsa_free(area, probe);
			}
		}
	}
	return area;
}

/*
 * The address of a sketch's memory: once sketch_area() found that the area's
 * pointers are offsets into the one segment it has (the place in shared
 * memory it was created in), that sum, where dsa_get_address() takes some 30
 * instructions (the merge of every event asks).
 */
void *
sketch_address(dsa_pointer p)
{
	if (likely(sketch_area_base != NULL))
		return sketch_area_base + p;
	return dsa_get_address(sketch_area(), p);
}

dsa_pointer
sketch_alloc(Size size)
{
	dsa_pointer p = dsa_allocate_extended(sketch_area(), size, DSA_ALLOC_NO_OOM);

	if (!DsaPointerIsValid(p))
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("trafficagg sketch memory is exhausted"),
				 errdetail("%llu bytes are in use by sketches.",
						   (unsigned long long) pg_atomic_read_u64(&area_header->bytes_used)),
				 errhint("Increase trafficagg.sketch_memory.")));
	pg_atomic_fetch_add_u64(&area_header->bytes_used, size);
	return p;
}

void
sketch_release(dsa_pointer p, Size size)
{
	dsa_free(sketch_area(), p);
	pg_atomic_fetch_sub_u64(&area_header->bytes_used, size);
}

uint64
sketch_bytes_used(void)
{
	return pg_atomic_read_u64(&area_header->bytes_used);
}

/*
 * May a batch add to its groups' sketches?  Asked before it changes
 * anything: below the limit it may.  The area's size past the limit covers
 * the most one batch can add (a batch ends at TA_BATCH_MAX_GROUPS groups,
 * plus one event's, each growing by group_max_growth at most) for each
 * worker at once, besides the allocator's slack, so an allocation never
 * fails half-way through a batch.  (Reserving each batch's worst case
 * instead made batches of different workers wait for one another, or spill,
 * far below the limit: the worst case is some 26 kB a group.)
 */
bool
sketch_has_room(void)
{
	return sketch_bytes_used() < (uint64) ta_sketch_memory_kb * 1024;
}
