/*-------------------------------------------------------------------------
 *
 * digest.c
 *	  tdigest values on the SQL side, as their text: parsed, merged without
 *	  loss, written back, and read by percentile_disc's rule.  The SQL
 *	  functions latency_merge and latency_percentile (sqlfuncs.c) use them on
 *	  the digests the flush writes (latency.c) and their unions.
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "lib/stringinfo.h"
#include "miscadmin.h"

#include "digest.h"
#include "latency.h"


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
