/*-------------------------------------------------------------------------
 *
 * hll.c
 *	  The unique users of a group: a HyperLogLog of the user ids, built
 *	  exactly as postgresql-hll builds hll_add_agg(hll_hash_text(user_id),
 *	  log2m, regwidth, expthresh, sparseon): same hash (MurmurHash3 x64 128,
 *	  seed 0, first 64 bits), same explicit -> registers promotion, same
 *	  storage format, so the bytes written are the bytes hll_add_agg gives
 *	  for the same ids.
 *
 * The sketch's form and size are kept in the group (TaSketches, sketch.h),
 * its contents in the shared area (sketch_area.c): explicit hashes (8 bytes
 * each) up to the explicit threshold, then 2^log2m one-byte registers.
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "trafficagg.h"

#include "port/pg_bitutils.h"
#include "utils/dsa.h"

#include "hll.h"
#include "sketch_area.h"


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

/*
 * Worst growth of a group's HyperLogLog by one event, transient copies
 * included: registers allocated while the explicit hashes still exist, or an
 * explicit array doubling (new and old).
 */
Size
hll_max_growth(void)
{
	return ((Size) 1 << ta_hll_log2m) + 3 * (Size) explicit_threshold() * sizeof(uint64);
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

static uint8 *
users_to_registers(TaSketches *sk)
{
	dsa_pointer np = sketch_alloc(USERS_REGISTER_BYTES());
	uint8	   *regs = sketch_address(np);

	memset(regs, 0, USERS_REGISTER_BYTES());
	if (DsaPointerIsValid(sk->users))
	{
		uint64	   *hashes = sketch_address(sk->users);

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
		registers_add(sketch_address(sk->users), hash);
		return;
	}

	/* explicit: binary search, hashes ascending as signed 64-bit values */
	hashes = sketch_address(sk->users);
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
		uint64	   *nh = sketch_address(np);

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

/* Bytes of the area the group's HyperLogLog takes (0: none). */
Size
users_bytes(const TaSketches *sk)
{
	if (!DsaPointerIsValid(sk->users))
		return 0;
	return sk->users_cap > 0 ? USERS_EXPLICIT_BYTES(sk->users_cap) : USERS_REGISTER_BYTES();
}
