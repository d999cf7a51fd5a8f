/*-------------------------------------------------------------------------
 *
 * latency.c
 *	  The latencies of a group: a log-bucketed histogram of response times
 *	  with relative accuracy TA_LATENCY_ALPHA: every value v > 0 falls in
 *	  bucket k = ceil(log_g v), g = (1 + alpha) / (1 - alpha), whose
 *	  representative 2 g^k / (g + 1) is within alpha of every value of the
 *	  bucket.  Percentiles take the exact rank of percentile_disc and return
 *	  the representative of the bucket holding it; at flush the buckets
 *	  become t-digest centroids.
 *
 * The histogram's form and size are kept in the group (TaSketches,
 * sketch.h), its contents in the shared area (sketch_area.c): (bucket,
 * count) pairs (4 bytes each) until a dense range of 4-byte counters is at
 * most twice their size.  Copied out of the area it is a TaLatency, which
 * becomes bytes (what groups() returns) or a tdigest value: through the
 * type's binary input, or as its text.
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "trafficagg.h"

#include <float.h>
#include <math.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/dsa.h"
#include "utils/memutils.h"

#include "latency.h"
#include "sketch.h"
#include "sketch_area.h"


/*
 * Bucket 0 holds 0; bucket b >= 1 holds (g^(b-2), g^(b-1)] microseconds.
 * Latency is at most 1e12 ms = 1e15 us, so b <= 1819 < TA_LATENCY_BUCKETS.
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

/* Bytes of the area the group's histogram takes (0: none). */
Size
latency_bytes(const TaSketches *sk)
{
	if (!DsaPointerIsValid(sk->latency))
		return 0;
	return (Size) (sk->lat_cap > 0 ? sk->lat_cap : sk->lat_nbuckets) * sizeof(uint32);
}

/*
 * Worst growth of a group's histogram by one event, transient copies
 * included: a dense histogram widening to every bucket (new and old).
 */
Size
latency_max_growth(void)
{
	return 2 * (Size) TA_LATENCY_BUCKETS * sizeof(uint32);
}

/* Replace the histogram by dense counters over exactly buckets [lo, hi]. */
static uint32 *
latency_to_dense_exact(TaSketches *sk, uint16 lo, uint16 hi)
{
	dsa_pointer np = sketch_alloc((Size) (hi - lo + 1) * sizeof(uint32));
	uint32	   *d = sketch_address(np);
	const uint32 *old = sketch_address(sk->latency);

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
/* The histogram bucket of a response time (microseconds). */
uint16
latency_bucket(int64 us)
{
	return lat_bucket(us);
}

/* Add one response time, as its bucket (latency_bucket), to the group's histogram. */
void
latency_add_bucket(TaSketches *sk, uint16 b)
{
	uint32	   *data;

	if (!DsaPointerIsValid(sk->latency))
	{
		sk->latency = sketch_alloc(2 * sizeof(uint32));
		sk->lat_cap = 2;
		sk->lat_n = 1;
		data = sketch_address(sk->latency);
		data[0] = LAT_PAIR(b, 1);
		return;
	}
	data = sketch_address(sk->latency);

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
			if (2 * (sk->lat_n + 1) < hi - lo + 1)
			{
				/*
				 * a new pair, in order, while the pairs are less than half the
				 * size of dense counters (the array of pairs doubles, so it
				 * is about that size): a binary search and a move per event
				 * otherwise made the busiest groups the slowest
				 */
				if (sk->lat_n == sk->lat_cap)
				{
					uint16		cap = sk->lat_cap * 2;
					dsa_pointer np = sketch_alloc((Size) cap * sizeof(uint32));
					uint32	   *nd = sketch_address(np);

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

/* One centroid " (ms, count)" of a tdigest value's text (also digest.c). */
void
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
 * The mean tdigest's text input makes of append_ms(ms): the nearest double to
 * the printed decimal (whole nanoseconds).  Below 2^53 ns the nanoseconds and
 * 1e6 are exact doubles, so one correctly rounded division gives it, as
 * strtod would; beyond, strtod of the same text.
 */
static double
centroid_mean(double ms)
{
	StringInfoData s;
	double		mean;

#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0	/* not x87: see event.c */
	if (fabs(ms) < 9e9)			/* ns below 2^53 */
		return (double) llround(ms * 1e6) / 1e6;
#endif
	initStringInfo(&s);
	append_ms(&s, ms);
	mean = strtod(s.data, NULL);
	pfree(s.data);
	return mean;
}

/*
 * The histogram as a tdigest value through the type's binary input (its
 * receive function and I/O parameter, looked up by the caller): the same
 * value its text input makes of one centroid per bucket at its representative
 * in milliseconds (append_centroid), without printing and scanning hundreds
 * of numbers per group.
 * The layout is tdigest's send format: int32 flags (1: centroids hold
 * means), int64 count, int32 compression, int32 centroids, then per centroid
 * float8 mean, int64 count.
 */
Datum
latency_tdigest(const TaLatency *h, int64 min_us, int64 max_us,
				FmgrInfo *receive, Oid ioparam)
{
	StringInfoData buf;
	Datum		d;

	initStringInfo(&buf);
	pq_sendint32(&buf, 1);
	pq_sendint64(&buf, h->total);
	pq_sendint32(&buf, ta_tdigest_compression);
	pq_sendint32(&buf, h->n);
	for (int i = 0; i < h->n; i++)
	{
		pq_sendfloat8(&buf, centroid_mean(clamp_representative(h->bucket[i], min_us, max_us) / 1000.0));
		pq_sendint64(&buf, (int64) h->count[i]);
	}
	d = ReceiveFunctionCall(receive, &buf, ioparam, -1);
	pfree(buf.data);
	return d;
}
