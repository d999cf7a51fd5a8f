/*-------------------------------------------------------------------------
 *
 * digest.h
 *	  tdigest values as the SQL functions (sqlfuncs.c) read and merge them
 *	  (digest.c).
 *
 * Copyright (c) 2026, trafficagg authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef TRAFFICAGG_DIGEST_H
#define TRAFFICAGG_DIGEST_H

/* a tdigest value's centroids, ascending */
typedef struct TaDigest
{
	int			n;
	int			compression;
	int64		total;
	double	   *mean;
	int64	   *count;
} TaDigest;

extern TaDigest *digest_parse(const char *text);
extern TaDigest *digest_merge(const TaDigest *a, const TaDigest *b);
extern char *digest_text(const TaDigest *d);
extern double digest_percentile(const TaDigest *d, double p);

#endif							/* TRAFFICAGG_DIGEST_H */
