/*-------------------------------------------------------------------------
 *
 * value_area.c
 *	  The bytes of the dimension values in the dictionary (store.c): the
 *	  shared area they live in, its size, storing and freeing a value's
 *	  bytes, the bytes in use and the byte budget
 *	  (trafficagg.dictionary_memory).
 *
 * A dimension value may be as long as a message (trafficagg.max_event_bytes),
 * so the dictionary keeps fixed-size entries (store.c: length, id, reference
 * count) and the bytes of each value here, in a dynamic shared area (DSA)
 * created in place inside the main shared memory at server start, like the
 * sketches' (sketch_area.c), and never larger: no extra DSM segments.  A DSA
 * rather than a bump arena because values come and go in any order (a value
 * is freed when the last group using it is removed) and differ in size by
 * four orders of magnitude; it frees and coalesces, and small values share
 * size classes.
 *
 * The budget counts the bytes of the values themselves (a 3,000-byte URL
 * takes 3,000): an event may add a value only if the bytes in use plus its
 * length stay within trafficagg.dictionary_memory.  The area is larger than
 * the budget by the allocator's overhead (size classes a quarter apart,
 * partly used superblocks), so within the budget an allocation does not fail;
 * if it ever does, that is reported as "no room" too, never as an error.  No
 * room is answered like a full group table: the worker spills the oldest
 * window, which frees values, and retries.  That ends: an event's values are
 * never longer than its message (value, key and headers, which event.c
 * bounds by trafficagg.max_event_bytes, which trafficagg.c keeps within the
 * budget) but for the text of integer fields (a few bytes each), and an
 * event alone in the dictionary may exceed the budget by that much, so an
 * empty dictionary always has room for any event.
 *
 * Locking: callers hold store.c's dict_lock, exclusive to store or free a
 * value, at least shared to read one.  The DSA has its own lock besides.
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "trafficagg.h"

#include "port/atomics.h"
#include "storage/lwlock.h"
#include "utils/dsa.h"
#include "utils/memutils.h"

#include "value_area.h"


typedef struct ValueAreaHeader
{
	int			tranche_id;
	pg_atomic_uint64 bytes_used;	/* lengths of the values stored */
	/* the DSA follows, MAXALIGN'd */
} ValueAreaHeader;

static ValueAreaHeader *value_header = NULL;
static dsa_area *area = NULL;

/* The budget in bytes. */
static uint64
budget(void)
{
	return (uint64) ta_dictionary_memory_kb * 1024;
}

static Size
area_size(void)
{
	Size		limit = (Size) ta_dictionary_memory_kb * 1024;

	/*
	 * Beyond the budget, the allocator's overhead: size classes are at most
	 * a quarter apart, a large value rounds up to 4 kB pages, and each size
	 * class may hold a partly used 64 kB superblock (there are under 40).
	 */
	return add_size(dsa_minimum_size(),
					add_size(limit + limit / 4, 4 * 1024 * 1024));
}

Size
value_area_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(ValueAreaHeader)), area_size());
}

static void *
area_place(void)
{
	return (char *) value_header + MAXALIGN(sizeof(ValueAreaHeader));
}

/* In the postmaster, at shared memory (re)initialisation. */
void
value_area_shmem_init(void *place, bool found)
{
	value_header = (ValueAreaHeader *) place;
	if (!found)
	{
		dsa_area   *a;

		value_header->tranche_id = LWLockNewTrancheId();
		pg_atomic_init_u64(&value_header->bytes_used, 0);
		a = dsa_create_in_place(area_place(), area_size(), value_header->tranche_id, NULL);
		dsa_pin(a);
		/* never more than the place: no extra DSM segments */
		dsa_set_size_limit(a, area_size());
		dsa_detach(a);
	}
	area = NULL;
}

/* This process's handle on the area, attached on first use. */
static dsa_area *
value_area(void)
{
	if (area == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		LWLockRegisterTranche(value_header->tranche_id, "trafficagg_values");
		area = dsa_attach_in_place(area_place(), NULL);
		dsa_pin_mapping(area);
		MemoryContextSwitchTo(old);
	}
	return area;
}

/*
 * Store a copy of len bytes (len > 0: a zero-length value needs none) for an
 * event that has stored own bytes already.  Returns InvalidDsaPointer when
 * they don't fit in the budget (or, which the area's size should prevent,
 * the allocator has no room).  An event whose values are the only ones
 * stored may exceed the budget: a message's values are no longer than the
 * message, but integer fields' text may add a few bytes to it, and an event
 * must always fit in an empty dictionary.
 */
dsa_pointer
value_area_store(const char *bytes, Size len, Size own)
{
	dsa_pointer p;
	uint64		used = pg_atomic_read_u64(&value_header->bytes_used);

	Assert(len > 0);
	if (used + len > budget() && used > own)
		return InvalidDsaPointer;
	p = dsa_allocate_extended(value_area(), len, DSA_ALLOC_NO_OOM);
	if (!DsaPointerIsValid(p))
		return InvalidDsaPointer;
	memcpy(dsa_get_address(value_area(), p), bytes, len);
	pg_atomic_fetch_add_u64(&value_header->bytes_used, len);
	return p;
}

/* The bytes of a stored value (valid while the value is in the dictionary). */
const char *
value_area_bytes(dsa_pointer p)
{
	return (const char *) dsa_get_address(value_area(), p);
}

void
value_area_free(dsa_pointer p, Size len)
{
	dsa_free(value_area(), p);
	pg_atomic_fetch_sub_u64(&value_header->bytes_used, len);
}

/* Bytes of the values stored now. */
uint64
value_area_bytes_used(void)
{
	return pg_atomic_read_u64(&value_header->bytes_used);
}
