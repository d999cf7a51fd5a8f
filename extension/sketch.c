/*-------------------------------------------------------------------------
 *
 * sketch.c
 *	  The two mergeable sketches of a group, kept in shared memory beside its
 *	  exact metrics (store.c), and their conversion into the types of two
 *	  PostgreSQL extensions when a group is written or read:
 *
 *	  users		a HyperLogLog of the user ids, built exactly as
 *				postgresql-hll builds hll_add_agg(hll_hash_text(user_id),
 *				log2m, regwidth, expthresh, sparseon): same hash (MurmurHash3
 *				x64 128, seed 0, first 64 bits), same explicit -> registers
 *				promotion, same storage format, so the bytes written are the
 *				bytes hll_add_agg gives for the same ids.
 *	  latency	a log-bucketed histogram of response times with relative
 *				accuracy TA_LATENCY_ALPHA: every value v > 0 falls in bucket
 *				k = ceil(log_g v), g = (1 + alpha) / (1 - alpha), whose
 *				representative 2 g^k / (g + 1) is within alpha of every value
 *				of the bucket.  Percentiles take the exact rank of
 *				percentile_disc and return the representative of the bucket
 *				holding it; at flush the buckets become t-digest centroids.
 *
 * Memory.  Sketches grow with their contents, so they live in a dynamic
 * shared area (DSA) created in place inside the main shared memory at
 * server start, of fixed size (trafficagg.sketch_memory plus slack for the
 * allocator).  A small group stays small: a HyperLogLog holds its distinct
 * hashes (8 bytes each) until it has more than the explicit threshold, then
 * one byte per register; a histogram holds (bucket, count) pairs (4 bytes
 * each) until a dense range of counters is smaller.  The forms and sizes are
 * kept in the group (TaSketches), the contents in the area.  Bytes in use
 * are counted here; store.c asks sketch_has_room() before it changes
 * anything, and treats "no room" like a full group table (the oldest window
 * is spilled), so an allocation never fails half-way through an event.
 *
 * Locking: a sketch belongs to its group and is read and written under the
 * group's partition lock (store.c).  The DSA has its own lock.
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "trafficagg.h"

#include <math.h>

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "storage/lwlock.h"
#include "utils/builtins.h"
#include "utils/dsa.h"
#include "utils/memutils.h"

/* ---------------------------------------------------------------------
 * The shared area
 * ---------------------------------------------------------------------
 */

typedef struct SketchAreaHeader
{
	int			tranche_id;
	pg_atomic_uint64 bytes_used;	/* requested bytes of live sketches */
	/* the DSA follows, MAXALIGN'd */
} SketchAreaHeader;

static SketchAreaHeader *area_header = NULL;
static dsa_area *area = NULL;

static uint32 explicit_threshold(void);

/*
 * Worst growth of the two sketches of one group by one event, transient
 * copies included: registers allocated while the explicit hashes still
 * exist, or an explicit array doubling (new and old); a dense histogram
 * widening to every bucket (new and old).
 */
static Size
group_max_growth(void)
{
	return ((Size) 1 << ta_hll_log2m) + 3 * (Size) explicit_threshold() * sizeof(uint64) +
		2 * (Size) TA_LATENCY_BUCKETS * sizeof(uint32);
}

static Size
area_size(void)
{
	Size		limit = (Size) ta_sketch_memory_kb * 1024;
	Size		one_event = mul_size((Size) window_count() * TA_MAX_AGGREGATES,
									 group_max_growth());

	/*
	 * Beyond the limit: what one event can add once the limit is reached
	 * (sketch_has_room() lets an event start while below it), and slack for
	 * the allocator: our sizes are powers of two or close to a size class
	 * (register arrays of 2^log2m bytes, hash and pair arrays doubling), dense
	 * histograms round up by at most a quarter; plus partly used superblocks.
	 */
	return add_size(add_size(dsa_minimum_size(), one_event),
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

/* This process's handle on the area, attached on first use. */
static dsa_area *
sketch_area(void)
{
	if (area == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		LWLockRegisterTranche(area_header->tranche_id, "trafficagg_sketches");
		area = dsa_attach_in_place(area_place(), NULL);
		dsa_pin_mapping(area);
		MemoryContextSwitchTo(old);
	}
	return area;
}

static dsa_pointer
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

static void
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

/* ---------------------------------------------------------------------
 * Unique users: postgresql-hll's HyperLogLog
 * ---------------------------------------------------------------------
 */

/* postgresql-hll's representations, the low nibble of the first byte */
#define HLL_EMPTY		1
#define HLL_EXPLICIT	2
#define HLL_SPARSE		3
#define HLL_FULL		4
#define HLL_VERSION		1

#define USERS_EXPLICIT_BYTES(cap)	((Size) (cap) * sizeof(uint64))
#define USERS_REGISTER_BYTES()		((Size) 1 << ta_hll_log2m)

static inline uint64
rotl64(uint64 x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static inline uint64
fmix64(uint64 k)
{
	k ^= k >> 33;
	k *= UINT64CONST(0xff51afd7ed558ccd);
	k ^= k >> 33;
	k *= UINT64CONST(0xc4ceb9fe1a85ec53);
	k ^= k >> 33;
	return k;
}

/* little-endian 64-bit load, as MurmurHash3 reads its blocks */
static inline uint64
load_le64(const unsigned char *p)
{
	uint64		v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/*
 * The first 64 bits of MurmurHash3_x64_128(data, len, seed 0): what
 * hll_hash_text() returns for the same bytes.
 */
uint64
sketch_user_hash(const char *data, size_t len)
{
	const unsigned char *p = (const unsigned char *) data;
	const uint64 c1 = UINT64CONST(0x87c37b91114253d5);
	const uint64 c2 = UINT64CONST(0x4cf5ad432745937f);
	size_t		nblocks = len / 16;
	uint64		h1 = 0,
				h2 = 0,
				k1,
				k2;
	const unsigned char *tail;

	for (size_t i = 0; i < nblocks; i++)
	{
		k1 = load_le64(p + i * 16);
		k2 = load_le64(p + i * 16 + 8);

		k1 *= c1;
		k1 = rotl64(k1, 31);
		k1 *= c2;
		h1 ^= k1;
		h1 = rotl64(h1, 27);
		h1 += h2;
		h1 = h1 * 5 + 0x52dce729;

		k2 *= c2;
		k2 = rotl64(k2, 33);
		k2 *= c1;
		h2 ^= k2;
		h2 = rotl64(h2, 31);
		h2 += h1;
		h2 = h2 * 5 + 0x38495ab5;
	}

	tail = p + nblocks * 16;
	k1 = k2 = 0;
	switch (len & 15)
	{
		case 15:
			k2 ^= (uint64) tail[14] << 48;
			/* FALLTHROUGH */
		case 14:
			k2 ^= (uint64) tail[13] << 40;
			/* FALLTHROUGH */
		case 13:
			k2 ^= (uint64) tail[12] << 32;
			/* FALLTHROUGH */
		case 12:
			k2 ^= (uint64) tail[11] << 24;
			/* FALLTHROUGH */
		case 11:
			k2 ^= (uint64) tail[10] << 16;
			/* FALLTHROUGH */
		case 10:
			k2 ^= (uint64) tail[9] << 8;
			/* FALLTHROUGH */
		case 9:
			k2 ^= (uint64) tail[8];
			k2 *= c2;
			k2 = rotl64(k2, 33);
			k2 *= c1;
			h2 ^= k2;
			/* FALLTHROUGH */
		case 8:
			k1 ^= (uint64) tail[7] << 56;
			/* FALLTHROUGH */
		case 7:
			k1 ^= (uint64) tail[6] << 48;
			/* FALLTHROUGH */
		case 6:
			k1 ^= (uint64) tail[5] << 40;
			/* FALLTHROUGH */
		case 5:
			k1 ^= (uint64) tail[4] << 32;
			/* FALLTHROUGH */
		case 4:
			k1 ^= (uint64) tail[3] << 24;
			/* FALLTHROUGH */
		case 3:
			k1 ^= (uint64) tail[2] << 16;
			/* FALLTHROUGH */
		case 2:
			k1 ^= (uint64) tail[1] << 8;
			/* FALLTHROUGH */
		case 1:
			k1 ^= (uint64) tail[0];
			k1 *= c1;
			k1 = rotl64(k1, 31);
			k1 *= c2;
			h1 ^= k1;
	}

	h1 ^= (uint64) len;
	h2 ^= (uint64) len;
	h1 += h2;
	h2 += h1;
	h1 = fmix64(h1);
	h2 = fmix64(h2);
	h1 += h2;
	return h1;
}

/*
 * The explicit threshold: how many distinct hashes are kept before the
 * registers are used.  Auto (-1) is as many hashes as fit in the bytes of
 * the full representation, as postgresql-hll computes it.
 */
static uint32
explicit_threshold(void)
{
	Size		full_bytes;

	if (ta_hll_expthresh >= 0)
		return (uint32) ta_hll_expthresh;
	full_bytes = (((Size) ta_hll_regwidth << ta_hll_log2m) + 7) / 8;
	return (uint32) (full_bytes / sizeof(uint64));
}

/* Register index and value of a hash, as postgresql-hll derives them. */
static inline void
hash_register(uint64 hash, uint32 *index, uint8 *value)
{
	uint64		rest = hash >> ta_hll_log2m;
	uint8		maxval = (uint8) ((1 << ta_hll_regwidth) - 1);

	*index = (uint32) (hash & (((uint64) 1 << ta_hll_log2m) - 1));
	if (rest == 0)
		*value = 0;
	else
	{
		int			v = pg_rightmost_one_pos64(rest) + 1;

		*value = (uint8) Min(v, maxval);
	}
}

static void
registers_add(uint8 *regs, uint64 hash)
{
	uint32		index;
	uint8		value;

	hash_register(hash, &index, &value);
	if (value > regs[index])
		regs[index] = value;
}

/* A group without sketches yet. */
void
sketch_init(TaSketches *sk)
{
	memset(sk, 0, sizeof(TaSketches));
	sk->users = InvalidDsaPointer;
	sk->latency = InvalidDsaPointer;
}

static uint8 *
users_to_registers(TaSketches *sk)
{
	dsa_pointer np = sketch_alloc(USERS_REGISTER_BYTES());
	uint8	   *regs = dsa_get_address(sketch_area(), np);

	memset(regs, 0, USERS_REGISTER_BYTES());
	if (DsaPointerIsValid(sk->users))
	{
		uint64	   *hashes = dsa_get_address(sketch_area(), sk->users);

		for (uint32 i = 0; i < sk->users_n; i++)
			registers_add(regs, hashes[i]);
		sketch_release(sk->users, USERS_EXPLICIT_BYTES(sk->users_cap));
	}
	sk->users = np;
	sk->users_n = 0;
	sk->users_cap = 0;
	return regs;
}

/* Add a user id's hash to the group's HyperLogLog. */
void
users_add(TaSketches *sk, uint64 hash)
{
	uint32		threshold = explicit_threshold();
	uint64	   *hashes;
	int64		h = (int64) hash;
	uint32		lo,
				hi;

	if (!DsaPointerIsValid(sk->users))
	{
		if (threshold == 0)
		{
			/* explicit form disabled: registers from the first id */
			registers_add(users_to_registers(sk), hash);
			return;
		}
		sk->users_cap = Min(threshold, 4);
		sk->users_n = 0;
		sk->users = sketch_alloc(USERS_EXPLICIT_BYTES(sk->users_cap));
	}
	else if (sk->users_cap == 0)
	{
		registers_add(dsa_get_address(sketch_area(), sk->users), hash);
		return;
	}

	/* explicit: binary search, hashes ascending as signed 64-bit values */
	hashes = dsa_get_address(sketch_area(), sk->users);
	lo = 0;
	hi = sk->users_n;
	while (lo < hi)
	{
		uint32		mid = (lo + hi) / 2;

		if ((int64) hashes[mid] < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < sk->users_n && (int64) hashes[lo] == h)
		return;					/* seen */

	if (sk->users_n + 1 > threshold)
	{
		/* one more than the threshold: the registers take over */
		registers_add(users_to_registers(sk), hash);
		return;
	}

	if (sk->users_n == sk->users_cap)
	{
		uint32		cap = Min(sk->users_cap * 2, threshold);
		dsa_pointer np = sketch_alloc(USERS_EXPLICIT_BYTES(cap));
		uint64	   *nh = dsa_get_address(sketch_area(), np);

		memcpy(nh, hashes, sk->users_n * sizeof(uint64));
		sketch_release(sk->users, USERS_EXPLICIT_BYTES(sk->users_cap));
		sk->users = np;
		sk->users_cap = cap;
		hashes = nh;
	}
	memmove(&hashes[lo + 1], &hashes[lo], (sk->users_n - lo) * sizeof(uint64));
	hashes[lo] = hash;
	sk->users_n++;
}

/* Append nbits of value to a big-endian bit stream at bit position *pos. */
static void
put_bits(uint8 *out, Size *pos, uint64 value, int nbits)
{
	for (int b = nbits - 1; b >= 0; b--, (*pos)++)
		if ((value >> b) & 1)
			out[*pos / 8] |= (uint8) (0x80 >> (*pos % 8));
}

/* postgresql-hll's three header bytes */
static void
put_header(uint8 *out, int type)
{
	int			cutoff;

	out[0] = (uint8) ((HLL_VERSION << 4) | type);
	out[1] = (uint8) (((ta_hll_regwidth - 1) << 5) | ta_hll_log2m);
	if (ta_hll_expthresh == -1)
		cutoff = 63;
	else if (ta_hll_expthresh == 0)
		cutoff = 0;
	else
		cutoff = pg_leftmost_one_pos32((uint32) ta_hll_expthresh) + 1;
	out[2] = (uint8) ((ta_hll_sparseon ? 0x40 : 0) | cutoff);
}

/*
 * The sketch as a postgresql-hll value (a bytea-shaped varlena): what
 * hll_add_agg() returns for the same ids and parameters.  No sketch (no
 * user id in the group) gives the empty set.
 */
bytea *
users_serialize(const TaSketchCopy *copy)
{
	const TaSketches *sk = &copy->hdr;
	uint32		m = (uint32) 1 << ta_hll_log2m;
	bytea	   *res;
	uint8	   *out;

	if (copy->users == NULL || (sk->users_cap > 0 && sk->users_n == 0))
	{
		res = palloc0(VARHDRSZ + 3);
		SET_VARSIZE(res, VARHDRSZ + 3);
		put_header((uint8 *) VARDATA(res), HLL_EMPTY);
		return res;
	}

	if (sk->users_cap > 0)
	{
		const uint64 *hashes = copy->users;
		Size		len = 3 + (Size) sk->users_n * 8;

		res = palloc0(VARHDRSZ + len);
		SET_VARSIZE(res, VARHDRSZ + len);
		out = (uint8 *) VARDATA(res);
		put_header(out, HLL_EXPLICIT);
		for (uint32 i = 0; i < sk->users_n; i++)
			for (int b = 0; b < 8; b++)
				out[3 + i * 8 + b] = (uint8) (hashes[i] >> (56 - 8 * b));
		return res;
	}
	else
	{
		const uint8 *regs = copy->users;
		uint32		nfilled = 0;
		Size		full_bits = (Size) m * ta_hll_regwidth;
		Size		sparse_bits;
		int			chunk = ta_hll_log2m + ta_hll_regwidth;
		Size		pos = 0;

		for (uint32 i = 0; i < m; i++)
			nfilled += regs[i] != 0;
		sparse_bits = (Size) nfilled * chunk;

		/* sparse when its bits are fewer, as postgresql-hll decides */
		if (ta_hll_sparseon && sparse_bits < full_bits)
		{
			Size		len = 3 + (sparse_bits + 7) / 8;

			res = palloc0(VARHDRSZ + len);
			SET_VARSIZE(res, VARHDRSZ + len);
			out = (uint8 *) VARDATA(res);
			put_header(out, HLL_SPARSE);
			for (uint32 i = 0; i < m; i++)
				if (regs[i] != 0)
					put_bits(out + 3, &pos, ((uint64) i << ta_hll_regwidth) | regs[i], chunk);
		}
		else
		{
			Size		len = 3 + (full_bits + 7) / 8;

			res = palloc0(VARHDRSZ + len);
			SET_VARSIZE(res, VARHDRSZ + len);
			out = (uint8 *) VARDATA(res);
			put_header(out, HLL_FULL);
			for (uint32 i = 0; i < m; i++)
				put_bits(out + 3, &pos, regs[i], ta_hll_regwidth);
		}
		return res;
	}
}

static Size
users_bytes(const TaSketches *sk)
{
	if (!DsaPointerIsValid(sk->users))
		return 0;
	return sk->users_cap > 0 ? USERS_EXPLICIT_BYTES(sk->users_cap) : USERS_REGISTER_BYTES();
}

/* ---------------------------------------------------------------------
 * Latency: log-bucketed histogram
 * ---------------------------------------------------------------------
 */

/*
 * Bucket 0 holds 0; bucket k + 1 holds (g^(k-1), g^k] microseconds.  Latency
 * is at most 1e12 ms = 1e15 us, so k < 1750.
 */
#define LAT_COUNT_BITS	20
#define LAT_COUNT_MAX	((1U << LAT_COUNT_BITS) - 1)

#define LAT_PAIR(b, n)		(((uint32) (b) << LAT_COUNT_BITS) | (n))
#define LAT_PAIR_BUCKET(x)	((uint16) ((x) >> LAT_COUNT_BITS))
#define LAT_PAIR_COUNT(x)	((x) & LAT_COUNT_MAX)

static double lat_log_gamma = 0;

static inline double
lat_gamma(void)
{
	return (1.0 + TA_LATENCY_ALPHA) / (1.0 - TA_LATENCY_ALPHA);
}

static inline uint16
lat_bucket(int64 us)
{
	if (us <= 0)
		return 0;
	if (lat_log_gamma == 0)
		lat_log_gamma = log(lat_gamma());
	return (uint16) (1 + (int) ceil(log((double) us) / lat_log_gamma));
}

/*
 * The value standing for a bucket: within alpha of each of its values.
 * Computed once per process (pow() per centroid dominated reading groups).
 */
static double
lat_representative(uint16 bucket)
{
	static double *table = NULL;

	if (table == NULL)
	{
		double		g = lat_gamma();
		double	   *t = MemoryContextAlloc(TopMemoryContext,
										   TA_LATENCY_BUCKETS * sizeof(double));

		t[0] = 0;
		for (int b = 1; b < TA_LATENCY_BUCKETS; b++)
			t[b] = 2.0 * pow(g, (double) (b - 1)) / (g + 1.0);
		table = t;
	}
	return table[bucket];
}

static Size
latency_bytes(const TaSketches *sk)
{
	if (!DsaPointerIsValid(sk->latency))
		return 0;
	return (Size) (sk->lat_cap > 0 ? sk->lat_cap : sk->lat_nbuckets) * sizeof(uint32);
}

/* Replace the histogram by dense counters over exactly buckets [lo, hi]. */
static uint32 *
latency_to_dense_exact(TaSketches *sk, uint16 lo, uint16 hi)
{
	dsa_pointer np = sketch_alloc((Size) (hi - lo + 1) * sizeof(uint32));
	uint32	   *d = dsa_get_address(sketch_area(), np);
	const uint32 *old = dsa_get_address(sketch_area(), sk->latency);

	memset(d, 0, (Size) (hi - lo + 1) * sizeof(uint32));
	if (sk->lat_cap > 0)
		for (uint16 i = 0; i < sk->lat_n; i++)
			d[LAT_PAIR_BUCKET(old[i]) - lo] += LAT_PAIR_COUNT(old[i]);
	else
		for (uint16 i = 0; i < sk->lat_nbuckets; i++)
			d[sk->lat_lo + i - lo] = old[i];
	sketch_release(sk->latency, latency_bytes(sk));
	sk->latency = np;
	sk->lat_n = 0;
	sk->lat_cap = 0;
	sk->lat_lo = lo;
	sk->lat_nbuckets = hi - lo + 1;
	return d;
}

/*
 * Replace the histogram by dense counters over buckets [lo, hi], widened on
 * the side(s) it grows by a quarter (at least 8 buckets): a spreading
 * histogram is then reallocated a few times, not once per new bucket.
 */
static uint32 *
latency_to_dense(TaSketches *sk, uint16 lo, uint16 hi, bool grow_lo, bool grow_hi)
{
	int			pad = Max(8, (hi - lo + 1) / 4);

	if (grow_lo)
		lo = (uint16) Max(0, (int) lo - pad);
	if (grow_hi)
		hi = (uint16) Min(TA_LATENCY_BUCKETS - 1, (int) hi + pad);
	return latency_to_dense_exact(sk, lo, hi);
}
/* Add one response time (microseconds) to the group's histogram. */
void
latency_add(TaSketches *sk, int64 us)
{
	uint16		b = lat_bucket(us);
	uint32	   *data;

	if (!DsaPointerIsValid(sk->latency))
	{
		sk->latency = sketch_alloc(2 * sizeof(uint32));
		sk->lat_cap = 2;
		sk->lat_n = 1;
		data = dsa_get_address(sketch_area(), sk->latency);
		data[0] = LAT_PAIR(b, 1);
		return;
	}
	data = dsa_get_address(sketch_area(), sk->latency);

	if (sk->lat_cap == 0)
	{
		uint16		lo = sk->lat_lo,
					hi = sk->lat_lo + sk->lat_nbuckets - 1;

		if (b < lo || b > hi)
			data = latency_to_dense(sk, Min(b, lo), Max(b, hi), b < lo, b > hi);
		if (data[b - sk->lat_lo] < PG_UINT32_MAX)
			data[b - sk->lat_lo]++;
	}
	else
	{
		uint16		i;
		uint16		lo,
					hi;

		uint16		l = 0,
					r = sk->lat_n;

		/* first pair with bucket >= b */
		while (l < r)
		{
			uint16		mid = (l + r) / 2;

			if (LAT_PAIR_BUCKET(data[mid]) < b)
				l = mid + 1;
			else
				r = mid;
		}
		i = l;
		if (i < sk->lat_n && LAT_PAIR_BUCKET(data[i]) == b)
		{
			if (LAT_PAIR_COUNT(data[i]) < LAT_COUNT_MAX)
			{
				data[i]++;
				return;
			}
			/* this pair's count is full: go dense below */
		}
		else
		{
			lo = Min(b, LAT_PAIR_BUCKET(data[0]));
			hi = Max(b, LAT_PAIR_BUCKET(data[sk->lat_n - 1]));
			if (sk->lat_n + 1 < hi - lo + 1)
			{
				/* a new pair, in order (smaller than dense counters) */
				if (sk->lat_n == sk->lat_cap)
				{
					uint16		cap = sk->lat_cap * 2;
					dsa_pointer np = sketch_alloc((Size) cap * sizeof(uint32));
					uint32	   *nd = dsa_get_address(sketch_area(), np);

					memcpy(nd, data, sk->lat_n * sizeof(uint32));
					sketch_release(sk->latency, latency_bytes(sk));
					sk->latency = np;
					sk->lat_cap = cap;
					data = nd;
				}
				memmove(&data[i + 1], &data[i], (sk->lat_n - i) * sizeof(uint32));
				data[i] = LAT_PAIR(b, 1);
				sk->lat_n++;
				return;
			}
		}
		lo = Min(b, LAT_PAIR_BUCKET(data[0]));
		hi = Max(b, LAT_PAIR_BUCKET(data[sk->lat_n - 1]));
		data = latency_to_dense(sk, lo, hi, true, true);
		data[b - sk->lat_lo]++;
	}
}

/* A histogram copied out of shared memory: (bucket, count) ascending. */
struct TaLatency
{
	int			n;
	int64		total;
	uint16	   *bucket;
	uint64	   *count;
};

TaLatency *
latency_copy(const TaSketchCopy *copy)
{
	const TaSketches *sk = &copy->hdr;
	const uint32 *data = copy->latency;
	TaLatency  *c;
	int			n;

	if (data == NULL)
		return NULL;
	n = sk->lat_cap > 0 ? sk->lat_n : sk->lat_nbuckets;
	c = palloc0(sizeof(TaLatency));
	c->bucket = palloc(n * sizeof(uint16));
	c->count = palloc(n * sizeof(uint64));
	for (int i = 0; i < n; i++)
	{
		uint16		b = sk->lat_cap > 0 ? LAT_PAIR_BUCKET(data[i]) : sk->lat_lo + i;
		uint64		k = sk->lat_cap > 0 ? LAT_PAIR_COUNT(data[i]) : data[i];

		if (k == 0)
			continue;
		c->bucket[c->n] = b;
		c->count[c->n] = k;
		c->total += k;
		c->n++;
	}
	return c;
}

static double
clamp_representative(uint16 bucket, int64 min_us, int64 max_us)
{
	double		v = lat_representative(bucket);

	/* the exact extremes are known: never report beyond them */
	if (v < (double) min_us)
		v = (double) min_us;
	if (v > (double) max_us)
		v = (double) max_us;
	return v;
}

/*
 * A copied histogram as bytes, and back: what groups() returns, so that the
 * digest text is only built when a query reads the _live view's latency.
 * Layout: int64 min_us, int64 max_us, int32 n, n x uint16 bucket, n x uint64
 * count (native byte order: it never leaves the server).
 */
bytea *
latency_to_bytes(const TaLatency *h, int64 min_us, int64 max_us)
{
	Size		len = 2 * sizeof(int64) + sizeof(int32) +
		(Size) h->n * (sizeof(uint16) + sizeof(uint64));
	bytea	   *b = palloc(VARHDRSZ + len);
	char	   *p = VARDATA(b);

	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(p, &min_us, sizeof(int64));
	p += sizeof(int64);
	memcpy(p, &max_us, sizeof(int64));
	p += sizeof(int64);
	memcpy(p, &h->n, sizeof(int32));
	p += sizeof(int32);
	memcpy(p, h->bucket, h->n * sizeof(uint16));
	p += h->n * sizeof(uint16);
	memcpy(p, h->count, h->n * sizeof(uint64));
	return b;
}

TaLatency *
latency_from_bytes(const bytea *b, int64 *min_us, int64 *max_us)
{
	const char *p = VARDATA_ANY(b);
	Size		len = VARSIZE_ANY_EXHDR(b);
	TaLatency  *h = palloc0(sizeof(TaLatency));

	if (len < 2 * sizeof(int64) + sizeof(int32))
		goto bad;
	memcpy(min_us, p, sizeof(int64));
	p += sizeof(int64);
	memcpy(max_us, p, sizeof(int64));
	p += sizeof(int64);
	memcpy(&h->n, p, sizeof(int32));
	p += sizeof(int32);
	if (h->n < 0 || h->n > TA_LATENCY_BUCKETS ||
		len != 2 * sizeof(int64) + sizeof(int32) +
		(Size) h->n * (sizeof(uint16) + sizeof(uint64)))
		goto bad;
	h->bucket = palloc(Max(h->n, 1) * sizeof(uint16));
	h->count = palloc(Max(h->n, 1) * sizeof(uint64));
	memcpy(h->bucket, p, h->n * sizeof(uint16));
	p += h->n * sizeof(uint16);
	memcpy(h->count, p, h->n * sizeof(uint64));
	for (int i = 0; i < h->n; i++)
	{
		if (h->bucket[i] >= TA_LATENCY_BUCKETS || (i > 0 && h->bucket[i] <= h->bucket[i - 1]))
			goto bad;
		h->total += h->count[i];
	}
	if (h->n == 0 || h->total <= 0)
		goto bad;
	return h;

bad:
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("not a trafficagg latency histogram")));
	return NULL;				/* keep the compiler quiet */
}

/*
 * The p-th percentile in milliseconds, by percentile_disc's rule (the first
 * value whose cumulative share reaches p): the exact rank, the value within
 * alpha.  min_us/max_us are the group's exact extremes.
 */
double
latency_percentile(const TaLatency *h, double p, int64 min_us, int64 max_us)
{
	int64		rank;
	int64		seen = 0;

	Assert(h != NULL && h->total > 0);
	rank = (int64) ceil(p * (double) h->total);
	if (rank < 1)
		rank = 1;
	for (int i = 0; i < h->n; i++)
	{
		seen += h->count[i];
		if (seen >= rank)
			return clamp_representative(h->bucket[i], min_us, max_us) / 1000.0;
	}
	return (double) max_us / 1000.0;
}

/*
 * Append a value in milliseconds to nanosecond precision ("12.345678"),
 * without printf: digests have hundreds of centroids and the live view
 * builds one per group.
 */
static void
append_ms(StringInfo s, double ms)
{
	char		frac[MAXINT8LEN + 1];
	int64		ns;
	int			len;

	if (!(fabs(ms) < 9e12))
	{
		appendStringInfo(s, "%.17g", ms);
		return;
	}
	enlargeStringInfo(s, 2 * MAXINT8LEN + 4);
	ns = (int64) llround(ms * 1e6);
	if (ns < 0)
	{
		s->data[s->len++] = '-';
		ns = -ns;
	}
	s->len += pg_lltoa(ns / 1000000, s->data + s->len);
	s->data[s->len++] = '.';
	len = pg_lltoa(ns % 1000000, frac);
	for (int i = len; i < 6; i++)
		s->data[s->len++] = '0';
	memcpy(s->data + s->len, frac, len);
	s->len += len;
	s->data[s->len] = '\0';
}

static void
append_centroid(StringInfo s, double ms, int64 count)
{
	enlargeStringInfo(s, 2 * MAXINT8LEN + 16);
	s->data[s->len++] = ' ';
	s->data[s->len++] = '(';
	append_ms(s, ms);
	s->data[s->len++] = ',';
	s->data[s->len++] = ' ';
	s->len += pg_lltoa(count, s->data + s->len);
	s->data[s->len++] = ')';
	s->data[s->len] = '\0';
}

/*
 * The histogram as a tdigest value's text: one centroid per bucket, at its
 * representative, in milliseconds.
 */
char *
latency_tdigest_text(const TaLatency *h, int64 min_us, int64 max_us)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfo(&s, "flags 1 count " INT64_FORMAT " compression %d centroids %d",
					 h->total, ta_tdigest_compression, h->n);
	for (int i = 0; i < h->n; i++)
		append_centroid(&s, clamp_representative(h->bucket[i], min_us, max_us) / 1000.0,
						(int64) h->count[i]);
	return s.data;
}

/* ---------------------------------------------------------------------
 * t-digest values: merged without loss, read by percentile_disc's rule
 * ---------------------------------------------------------------------
 */

/*
 * tdigest_in accepts at most 10 * compression centroids; the histograms give
 * at most TA_LATENCY_BUCKETS, so compression >= 200 always fits.
 */
#define DIGEST_MAX_CENTROIDS(compression) (10 * (compression))

/* Parse a tdigest value's text ("flags 1 count N compression C centroids K (mean, count) ..."). */
TaDigest *
digest_parse(const char *text)
{
	TaDigest   *d = palloc0(sizeof(TaDigest));
	int			flags,
				k,
				used = -1;
	long long	count;
	const char *p = text;

	/* what tdigest_in accepts; its binary input checks less */
	if (sscanf(p, "flags %d count %lld compression %d centroids %d%n",
			   &flags, &count, &d->compression, &k, &used) != 4 || used < 0 ||
		d->compression < 10 || d->compression > 10000 ||
		k < 1 || k > DIGEST_MAX_CENTROIDS(d->compression) || count < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("unexpected tdigest value: \"%.60s\"", text)));
	p += used;
	d->mean = palloc(k * sizeof(double));
	d->count = palloc(k * sizeof(int64));
	for (int i = 0; i < k; i++)
	{
		double		m;
		long long	c;

		used = -1;
		if (sscanf(p, " (%lf, %lld)%n", &m, &c, &used) != 2 || used < 0 ||
			isnan(m) || c < 1 || c > count - d->total)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("unexpected tdigest centroid: \"%.40s\"", p)));
		p += used;
		/* flags 0: the value is the centroid's sum */
		d->mean[i] = (flags & 1) ? m : m / c;
		d->count[i] = c;
		d->total += c;
	}
	d->n = k;
	return d;
}

/*
 * The union of two digests: centroids with the same mean (the same
 * histogram bucket) are added up, so nothing is lost.  Only past the number
 * of centroids tdigest accepts are neighbours combined.
 */
TaDigest *
digest_merge(const TaDigest *a, const TaDigest *b)
{
	TaDigest   *d = palloc0(sizeof(TaDigest));
	int			i = 0,
				j = 0;
	int			limit;

	d->compression = Max(a->compression, b->compression);
	d->mean = palloc(Max(a->n + b->n, 1) * sizeof(double));
	d->count = palloc(Max(a->n + b->n, 1) * sizeof(int64));
	while (i < a->n || j < b->n)
	{
		double		m;
		int64		c;

		if (j >= b->n || (i < a->n && a->mean[i] <= b->mean[j]))
			m = a->mean[i], c = a->count[i++];
		else
			m = b->mean[j], c = b->count[j++];
		if (d->n > 0 && d->mean[d->n - 1] == m)
			d->count[d->n - 1] += c;
		else
		{
			d->mean[d->n] = m;
			d->count[d->n] = c;
			d->n++;
		}
		d->total += c;
	}

	limit = DIGEST_MAX_CENTROIDS(d->compression);	/* >= 100: checked in parse */
	while (d->n > limit)
	{
		/* combine neighbours pairwise (weighted means) until it fits */
		int			n = 0;

		CHECK_FOR_INTERRUPTS();
		for (int k = 0; k < d->n; k += 2, n++)
		{
			if (k + 1 < d->n)
			{
				int64		c = d->count[k] + d->count[k + 1];

				d->mean[n] = (d->mean[k] * d->count[k] + d->mean[k + 1] * d->count[k + 1]) / c;
				d->count[n] = c;
			}
			else
			{
				d->mean[n] = d->mean[k];
				d->count[n] = d->count[k];
			}
		}
		d->n = n;
	}
	return d;
}

char *
digest_text(const TaDigest *d)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfo(&s, "flags 1 count " INT64_FORMAT " compression %d centroids %d",
					 d->total, d->compression, d->n);
	for (int i = 0; i < d->n; i++)
		append_centroid(&s, d->mean[i], d->count[i]);
	return s.data;
}

/*
 * percentile_disc's rule over the centroids: the mean of the first centroid
 * whose cumulative count reaches ceil(p * count).  On the worker's digests
 * (one centroid per bucket) this is the histogram's own answer.
 */
double
digest_percentile(const TaDigest *d, double p)
{
	int64		rank = (int64) ceil(p * (double) d->total);
	int64		seen = 0;

	if (rank < 1)
		rank = 1;
	for (int i = 0; i < d->n; i++)
	{
		seen += d->count[i];
		if (seen >= rank)
			return d->mean[i];
	}
	return d->n > 0 ? d->mean[d->n - 1] : 0;
}

/* ---------------------------------------------------------------------
 * Both
 * ---------------------------------------------------------------------
 */

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
	copy->users = ub ? memcpy(palloc(ub), dsa_get_address(sketch_area(), sk->users), ub) : NULL;
	copy->latency = lb ? memcpy(palloc(lb), dsa_get_address(sketch_area(), sk->latency), lb) : NULL;
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

/*
 * May an event add to sketches?  Checked before it changes anything: below
 * the limit it may, and the area's size past the limit covers the most one
 * event can add, so an allocation never fails half-way through an event.
 */
bool
sketch_has_room(void)
{
	return sketch_bytes_used() < (uint64) ta_sketch_memory_kb * 1024;
}
